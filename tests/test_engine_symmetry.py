"""Symmetry and gauge checks of the engine: Lorentz invariance, Ward identities per helicity,
time-reversal crossing, Bose symmetry, high-energy gauge cancellations, robustness (no NaN).

Gauge-sensitive checks use zero widths: MadGraph's fixed-width Breit–Wigner (which the engine
reproduces) breaks Ward identities at O(MΓ/(p²−M²)) — and with them Lorentz invariance of sums
over the frame-dependent polarisation vectors of massless gauge bosons — and spoils the
high-energy cancellations by O(sΓ/M³).
"""
import math

import pytest
import torch

from channels.rambo import Rambo
from matrix_elements.engine import build_matrix_element
from matrix_elements.model import SMParameters
from matrix_elements.process import check_process, group_subprocesses, parse_process

PARAMS = SMParameters()
NO_WIDTH = SMParameters.from_card({"WT": 0, "WW": 0, "WZ": 0, "WH": 0})


def momenta(pdgs, sqrt_s=1000.0, n=8, seed=1, n_in=2):
    masses = [PARAMS.mass(p) for p in pdgs]
    rambo = Rambo(len(pdgs) - n_in, masses[n_in:], sqrt_s)
    g = torch.Generator().manual_seed(seed)
    out, _ = rambo.forward(torch.rand(n, rambo.dims_in, generator=g, dtype=torch.float64))
    m1, m2 = masses[0], masses[1]
    s = sqrt_s**2
    pz = math.sqrt((s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)) / (2 * sqrt_s)
    pin = torch.tensor([[math.hypot(pz, m1), 0, 0, pz], [math.hypot(pz, m2), 0, 0, -pz]], dtype=torch.float64)
    return torch.cat([pin.expand(n, 2, 4), out], dim=1).contiguous()


def fixed_angle(pdgs, sqrt_s, cos_theta=0.3, phi=0.7):
    """2→2 momenta at a fixed scattering angle (on shell)."""
    m = [PARAMS.mass(p) for p in pdgs]
    s = sqrt_s**2

    def pabs(ma, mb):
        return math.sqrt((s - (ma + mb) ** 2) * (s - (ma - mb) ** 2)) / (2 * sqrt_s)

    pi, pf = pabs(m[0], m[1]), pabs(m[2], m[3])
    st = math.sqrt(1 - cos_theta**2)
    d = (st * math.cos(phi), st * math.sin(phi), cos_theta)
    rows = [[math.hypot(pi, m[0]), 0, 0, pi], [math.hypot(pi, m[1]), 0, 0, -pi],
            [math.hypot(pf, m[2])] + [pf * x for x in d], [math.hypot(pf, m[3])] + [-pf * x for x in d]]
    return torch.tensor([rows], dtype=torch.float64)


def lorentz_transform(p: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # rotation from a random unit quaternion
    q = torch.randn(4, generator=g, dtype=torch.float64)
    a, b, c, d = (q / q.norm()).tolist()
    rot = torch.tensor([[a*a+b*b-c*c-d*d, 2*(b*c-a*d), 2*(b*d+a*c)],
                        [2*(b*c+a*d), a*a-b*b+c*c-d*d, 2*(c*d-a*b)],
                        [2*(b*d-a*c), 2*(c*d+a*b), a*a-b*b-c*c+d*d]], dtype=torch.float64)
    beta = 0.6 * torch.randn(3, generator=g, dtype=torch.float64)
    beta = beta / max(1.0, float(beta.norm()) / 0.8)
    b2 = float(beta @ beta)
    gam = 1 / math.sqrt(1 - b2)
    lam = torch.eye(4, dtype=torch.float64)
    lam[0, 0] = gam
    lam[0, 1:] = lam[1:, 0] = gam * beta
    lam[1:, 1:] += (gam - 1) * torch.outer(beta, beta) / b2
    r4 = torch.eye(4, dtype=torch.float64)
    r4[1:, 1:] = rot
    return p @ (lam @ r4).T


@pytest.mark.parametrize("pdgs", [(21, 21, 6, -6, 21), (-11, 11, 24, -24), (2, 21, -11, 12, 1, 21),
                                  (-11, 11, 2, -2, 21, 21), (2, -2, 23, 25), (21, 21, 21, 21, 21)])
def test_lorentz_invariance(pdgs):
    p = momenta(pdgs, n=6, seed=2)
    me = build_matrix_element(pdgs, NO_WIDTH)
    ref = me(p)
    for seed in range(2):
        assert torch.allclose(me(lorentz_transform(p, seed)), ref, rtol=1e-9, atol=0)


def _per_helicity(me, p, replace=None):
    J = me.helicity_flow_amplitudes(p, replace)  # [n, H, F]
    K = me.colour_matrix.to(torch.complex128)
    return torch.einsum("nhf,fg,nhg->nh", J.conj(), K, J).real


@pytest.mark.parametrize("pdgs,leg", [((21, 21, 6, -6, 21), 4), ((21, 21, 6, -6, 21), 0),
                                      ((2, -2, 21, 21, 21), 3), ((21, 21, 21, 21, 21), 2),
                                      ((2, -1, 24, 22), 3), ((-11, 11, -13, 13, 22), 4),
                                      ((-11, 11, 24, -24, 22), 4)])
def test_ward_identity_per_helicity(pdgs, leg):
    """ε → k for one external gluon/photon: the colour-summed |amplitude|² vanishes for every
    helicity configuration of the other legs (relative to the physical one, scaled by E²)."""
    p = momenta(pdgs, n=4, seed=4)
    me = build_matrix_element(pdgs, NO_WIDTH)
    phys = _per_helicity(me, p)
    ward = _per_helicity(me, p, replace={leg: "momentum"})
    scale = (p[:, leg, 0] ** 2)[:, None] * phys.sum(dim=1, keepdim=True)
    assert bool((ward.abs() <= 1e-20 * scale).all()), (ward / scale).abs().max()


@pytest.mark.parametrize("fwd,rev", [((2, -2, 21, 21), (21, 21, 2, -2)), ((-11, 11, -13, 13), (-13, 13, -11, 11)),
                                     ((2, -1, -11, 12), (-11, 12, 2, -1)), ((21, 21, 6, -6), (6, -6, 21, 21))])
def test_time_reversal_crossing(fwd, rev):
    """Σ_spins,colours |M|² of ab → cd equals that of cd → ab at the same momenta."""
    def unaveraged(pdgs, me, p):
        avg = 1.0
        for q in pdgs[:2]:
            part = 2 if abs(q) != 21 else 2
            if abs(q) in (23, 24):
                part = 3
            col = 3 if 1 <= abs(q) <= 6 else (8 if q == 21 else 1)
            avg *= part * col
        ident = math.factorial(pdgs[2:].count(pdgs[2])) if pdgs[2] == pdgs[3] else 1
        return me(p) * avg * ident

    p = fixed_angle(fwd, 800.0)
    q = p[:, [2, 3, 0, 1]].clone()
    a = unaveraged(fwd, build_matrix_element(fwd, PARAMS), p)
    b = unaveraged(rev, build_matrix_element(rev, PARAMS), q)
    assert torch.allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("pdgs,i,j", [((21, 21, 6, -6, 21, 21), 4, 5), ((21, 21, 21, 21, 21), 2, 4),
                                      ((21, 21, 6, -6, 21, 21), 0, 1), ((2, 2, 2, 2, 21), 2, 3)])
def test_bose_and_fermi_symmetry(pdgs, i, j):
    p = momenta(pdgs, n=6, seed=7)
    q = p.clone()
    q[:, [i, j]] = p[:, [j, i]]
    me = build_matrix_element(pdgs, PARAMS)
    assert torch.allclose(me(q), me(p), rtol=1e-11)


@pytest.mark.parametrize("pdgs", [(-11, 11, 24, -24), (24, -24, 24, -24), (24, -24, 23, 23),
                                  (6, -6, 24, -24), (24, -24, 25, 25), (23, 23, 24, -24)])
def test_high_energy_gauge_cancellation(pdgs):
    """Unitarity cancellations between gauge, Higgs and fermion diagrams: at fixed angle |M|²
    is flat from √s = 3 to 300 TeV (one wrong relative sign makes it grow like s or s²)."""
    me = build_matrix_element(pdgs, NO_WIDTH)
    lo = me(fixed_angle(pdgs, 3000.0))
    hi = me(fixed_angle(pdgs, 300000.0))
    assert abs(float(hi / lo) - 1.0) < 0.05, float(hi / lo)


def test_fixed_width_breaks_ward_identity_only_at_order_width():
    pdgs, leg = (21, 21, 6, -6, 21), 4
    p = momenta(pdgs, n=4, seed=4)
    me = build_matrix_element(pdgs, PARAMS)
    ward = _per_helicity(me, p, replace={leg: "momentum"}).sum(dim=1)
    phys = _per_helicity(me, p).sum(dim=1) * p[:, leg, 0] ** 2
    rel = (ward / phys).abs()
    assert bool((rel > 1e-12).all()) and bool((rel < (PARAMS.WT / PARAMS.MT) ** 2 * 10).all())


# every subprocess group that p p > t t~ j j expands into (41 groups, 141 subprocesses)
PP_TTJJ = group_subprocesses(check_process(parse_process("p p > t t~ j j")))


def test_pp_ttjj_expansion_is_complete():
    assert len(PP_TTJJ) == 41 and sum(len(g.members) for g in PP_TTJJ) == 141


@pytest.mark.parametrize("group", PP_TTJJ, ids=[g.name for g in PP_TTJJ])
def test_no_nan_pp_ttjj_subprocesses(group):
    """Every subprocess of p p > t t~ j j has tree diagrams and a finite, positive |M|², also with a
    final-state parton exactly along the beam axis; each group member (generation relabelling,
    beam mirror) equals the group's representative at the correspondingly ordered momenta."""
    pdgs = group.representative.pdgs
    me = build_matrix_element(pdgs, PARAMS)
    p = momenta(pdgs, sqrt_s=2000.0, n=4, seed=11)
    # also final-state partons exactly along the beam axis (pT = 0)
    e = p[:, 4, 0].clone()
    p2 = p.clone()
    p2[:, 4] = torch.stack([e, 0 * e, 0 * e, -e], dim=-1)
    p2[:, 5, 1:] = -(p2[:, 2, 1:] + p2[:, 3, 1:] + p2[:, 4, 1:])
    p2[:, 5, 0] = p2[:, 5, 1:].norm(dim=-1)
    ref = me(p)
    for q in (p, p2):
        v = me(q)
        assert bool(torch.isfinite(v).all()) and bool((v > 0).all())
    for m in group.members:
        q = p[:, [1, 0, 2, 3, 4, 5]] if m.mirror else p
        assert torch.allclose(build_matrix_element(m.subprocess.pdgs, PARAMS)(q), ref, rtol=1e-12, atol=0), \
            m.subprocess.name


def test_no_nan_two_to_five():
    pdgs = (21, 21, 6, -6, 21, 21, 21)
    me = build_matrix_element(pdgs, PARAMS)
    v = me(momenta(pdgs, sqrt_s=1500.0, n=2, seed=3))
    assert bool(torch.isfinite(v).all()) and bool((v > 0).all())
