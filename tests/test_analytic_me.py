"""Analytic 2→2 |M|² against independent numbers.

* MadGraph's own |M|² for e+ e- > mu+ mu- (512 points, /work/shared/reference/madgraph_me);
* closed-form σ̂ (γ/Z with width, W, massive γ/Z → t t̄, q q̄ → t t̄, g g → t t̄) against
  Gauss–Legendre integrals of |M|² over cosθ;
* a brute-force Dirac-trace evaluation (explicit 4×4 γ matrices) of the s-channel vector
  exchange, including massive and unequal-mass outgoing fermions;
* ESW Table 7.1 and eqs. 10.11–10.12, written out here per process ordering, and one hand
  number (g g → g g at 90°);
* Lorentz invariance and the symmetries physics demands.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from matrix_elements.analytic import (
    analytic_matrix_element,
    sigma_hat_ee_mumu,
    sigma_hat_gg_QQbar,
    sigma_hat_qqbar_QQbar,
)
from matrix_elements.model import SMParameters
from matrix_elements.particles import UnknownParticleError, pdg_id

GEV2_TO_PB = 0.3893793721e9
SM = SMParameters()
REFERENCE = Path("/work/shared/reference/madgraph_me/epem_mupmum.json")


def me_of(process: str, params: SMParameters = SM):
    ins, outs = process.split(">")
    pdgs = tuple(pdg_id(n) for n in ins.split() + outs.split())
    return analytic_matrix_element(pdgs, params)


def dot(a, b):
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def two_to_two(sqrt_s: float, cos_theta, phi, m3: float = 0.0, m4: float = 0.0) -> torch.Tensor:
    """CM momenta [n, 4, 4]: massless beams along ±z, particle 3 at (θ, φ)."""
    cos_theta = torch.as_tensor(cos_theta, dtype=torch.float64)
    phi = torch.as_tensor(phi, dtype=torch.float64).expand_as(cos_theta)
    n = cos_theta.shape[0]
    s = sqrt_s**2
    e = sqrt_s / 2
    pf = math.sqrt((s - (m3 + m4) ** 2) * (s - (m3 - m4) ** 2)) / (2 * sqrt_s)
    e3, e4 = (s + m3**2 - m4**2) / (2 * sqrt_s), (s + m4**2 - m3**2) / (2 * sqrt_s)
    sin_theta = torch.sqrt(1 - cos_theta**2)
    d = torch.stack([sin_theta * torch.cos(phi), sin_theta * torch.sin(phi), cos_theta], -1)
    p = torch.zeros(n, 4, 4, dtype=torch.float64)
    p[:, 0] = torch.tensor([e, 0, 0, e], dtype=torch.float64)
    p[:, 1] = torch.tensor([e, 0, 0, -e], dtype=torch.float64)
    p[:, 2, 0], p[:, 2, 1:] = e3, pf * d
    p[:, 3, 0], p[:, 3, 1:] = e4, -pf * d
    return p


def random_points(sqrt_s, n, m3=0.0, m4=0.0, seed=1):
    g = torch.Generator().manual_seed(seed)
    c = 2 * torch.rand(n, generator=g, dtype=torch.float64) - 1
    phi = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    return two_to_two(sqrt_s, c.clamp(-0.98, 0.98), phi, m3, m4)


def sigma_by_quadrature(me, sqrt_s, m3=0.0, m4=0.0, n_nodes=48) -> float:
    """σ̂ in pb = ∫ dcosθ β |M|² / (32π s) with Gauss–Legendre nodes (phi fixed: |M|² is φ-independent)."""
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    p = two_to_two(sqrt_s, torch.tensor(x), 0.3, m3, m4)
    s = sqrt_s**2
    beta = 2 * float(p[0, 2, 1:].norm()) / sqrt_s
    return float((torch.tensor(w) * me(p)).sum()) * beta / (32 * math.pi * s) * GEV2_TO_PB


# ---- MadGraph reference ---------------------------------------------------------------------------
def test_ee_mumu_matches_madgraph():
    ref = json.loads(REFERENCE.read_text())
    assert ref["process"] == "e+ e- > mu+ mu-"
    p = torch.tensor([pt["momenta"] for pt in ref["points"]], dtype=torch.float64)
    want = torch.tensor([pt["me"] for pt in ref["points"]], dtype=torch.float64)
    rel = (me_of("e+ e- > mu+ mu-")(p) / want - 1).abs()
    assert float(rel.max()) < 1e-13, float(rel.max())
    # the same process in another order: e- e+ > mu- mu+
    rel2 = (me_of("e- e+ > mu- mu+")(p[:, [1, 0, 3, 2]]) / want - 1).abs()
    assert float(rel2.max()) < 1e-13


# ---- electroweak closed forms ----------------------------------------------------------------------
def sigma_gamma_z(s, q_in, t3_in, q_out, t3_out, colour, beta=1.0):
    """σ̂(f f̄ → γ/Z → F F̄) in pb, massive F of velocity β (vector/axial form, v = T3 − 2Q sw², a = T3)."""
    sw2 = SM.sw2
    kappa = 1 / (4 * sw2 * (1 - sw2))
    vi, ai, vo, ao = t3_in - 2 * q_in * sw2, t3_in, t3_out - 2 * q_out * sw2, t3_out
    den = (s - SM.MZ**2) ** 2 + (SM.MZ * SM.WZ) ** 2
    re_chi, chi2 = kappa * s * (s - SM.MZ**2) / den, kappa**2 * s**2 / den
    vector = q_in**2 * q_out**2 + 2 * q_in * q_out * vi * vo * re_chi + (vi**2 + ai**2) * vo**2 * chi2
    axial = (vi**2 + ai**2) * ao**2 * chi2
    return 4 * math.pi * SM.aEW**2 / (3 * s) * beta * ((3 - beta**2) / 2 * vector + beta**2 * axial) * colour * GEV2_TO_PB


@pytest.mark.parametrize("sqrt_s", [10.0, 60.0, 89.0, 91.188, 93.5, 200.0, 1500.0])
def test_ee_mumu_integrates_to_closed_form(sqrt_s):
    s = sqrt_s**2
    ref = sigma_gamma_z(s, -1, -0.5, -1, -0.5, 1)
    assert math.isclose(float(sigma_hat_ee_mumu(s, SM)), ref, rel_tol=1e-13)
    assert math.isclose(sigma_by_quadrature(me_of("e+ e- > mu+ mu-"), sqrt_s), ref, rel_tol=1e-12)


@pytest.mark.parametrize(
    "process, charges, colour",
    [
        ("u u~ > e+ e-", (2 / 3, 0.5, -1, -0.5), 1 / 3),
        ("u~ u > mu+ mu-", (2 / 3, 0.5, -1, -0.5), 1 / 3),
        ("d d~ > vm vm~", (-1 / 3, -0.5, 0, 0.5), 1 / 3),
        ("e+ e- > d d~", (-1, -0.5, -1 / 3, -0.5), 3),
        ("e- e+ > c c~", (-1, -0.5, 2 / 3, 0.5), 3),
        ("mu+ mu- > ve ve~", (-1, -0.5, 0, 0.5), 1),
    ],
)
@pytest.mark.parametrize("sqrt_s", [50.0, 91.188, 500.0])
def test_neutral_current_integrates_to_closed_form(process, charges, colour, sqrt_s):
    ref = sigma_gamma_z(sqrt_s**2, *charges, colour)
    assert math.isclose(sigma_by_quadrature(me_of(process), sqrt_s), ref, rel_tol=1e-12)


@pytest.mark.parametrize("sqrt_s", [350.0, 500.0, 3000.0])
def test_ee_ttbar_massive_integrates_to_closed_form(sqrt_s):
    m = SM.MT
    beta = math.sqrt(1 - 4 * m * m / sqrt_s**2)
    ref = sigma_gamma_z(sqrt_s**2, -1, -0.5, 2 / 3, 0.5, 3, beta)
    assert math.isclose(sigma_by_quadrature(me_of("e+ e- > t t~"), sqrt_s, m, m), ref, rel_tol=1e-12)


@pytest.mark.parametrize("process", ["u d~ > e+ ve", "d u~ > e- ve~", "c s~ > mu+ vm", "d~ u > ve e+"])
@pytest.mark.parametrize("sqrt_s", [40.0, 80.419, 300.0])
def test_w_production_integrates_to_closed_form(process, sqrt_s):
    s = sqrt_s**2
    # σ̂(u d̄ → W → e ν) = π α² s / (36 sw⁴ [(s − MW²)² + MW² ΓW²])
    ref = math.pi * SM.aEW**2 * s / (36 * SM.sw2**2 * ((s - SM.MW**2) ** 2 + (SM.MW * SM.WW) ** 2)) * GEV2_TO_PB
    assert math.isclose(sigma_by_quadrature(me_of(process), sqrt_s), ref, rel_tol=1e-12)


# ---- brute-force Dirac traces ---------------------------------------------------------------------
_I2, _Z2 = np.eye(2), np.zeros((2, 2))
_SIGMA = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]])]
GAMMA = [np.block([[_I2, _Z2], [_Z2, -_I2]]).astype(complex)] + [
    np.block([[_Z2, s], [-s, _Z2]]).astype(complex) for s in _SIGMA
]
G5 = 1j * GAMMA[0] @ GAMMA[1] @ GAMMA[2] @ GAMMA[3]
PL, PR = (np.eye(4) - G5) / 2, (np.eye(4) + G5) / 2
METRIC = np.diag([1.0, -1.0, -1.0, -1.0])


def slash(p):
    return sum(METRIC[mu, mu] * p[mu] * GAMMA[mu] for mu in range(4))


def bar(m):
    return GAMMA[0] @ m.conj().T @ GAMMA[0]


def traced_me(p, bosons, m_out, colour):
    """(1/4) Σ_spins |Σ_V P_V [v̄(p2) Γ_V u(p1)] [ū(p3) Γ'_V v(p4)]|² by explicit traces; p1 = f, p2 = f̄."""
    p1, p2, p3, p4 = p
    s = float(METRIC.diagonal() @ ((p1 + p2) ** 2))
    total = 0.0
    for mv, wv, (a, b), (c, d) in bosons:
        for mw, ww, (a2, b2), (c2, d2) in bosons:
            prop = 1 / (s - mv**2 + 1j * mv * wv) * np.conj(1 / (s - mw**2 + 1j * mw * ww))
            for mu in range(4):
                for nu in range(4):
                    lep = np.trace(slash(p2) @ GAMMA[mu] @ (a * PL + b * PR) @ slash(p1)
                                   @ bar(GAMMA[nu] @ (a2 * PL + b2 * PR)))
                    had = np.trace((slash(p3) + m_out[0] * np.eye(4)) @ GAMMA[mu] @ (c * PL + d * PR)
                                   @ (slash(p4) - m_out[1] * np.eye(4)) @ bar(GAMMA[nu] @ (c2 * PL + d2 * PR)))
                    total += prop * lep * had * METRIC[mu, mu] * METRIC[nu, nu]
    assert abs(total.imag) < 1e-9 * abs(total.real)
    return total.real / 4 * colour


def z_couplings(q, t3):
    g = SM.ee / math.sqrt(SM.sw2 * (1 - SM.sw2))
    return (g * (t3 - q * SM.sw2), -g * q * SM.sw2)


@pytest.mark.parametrize(
    "process, slots, bosons, masses, colour",
    [
        # (f in, f̄ in, F out, F̄ out) positions; bosons as (M, Γ, (cL, cR) in, (cL, cR) out)
        ("e+ e- > t t~", (1, 0, 2, 3),
         [(0, 0, (-SM.ee,) * 2, (2 / 3 * SM.ee,) * 2), (SM.MZ, SM.WZ, z_couplings(-1, -0.5), z_couplings(2 / 3, 0.5))],
         (SM.MT, SM.MT), 3),
        ("u u~ > ta+ ta-", (0, 1, 3, 2),
         [(0, 0, (2 / 3 * SM.ee,) * 2, (-SM.ee,) * 2), (SM.MZ, SM.WZ, z_couplings(2 / 3, 0.5), z_couplings(-1, -0.5))],
         (SM.MTA, SM.MTA), 1 / 3),
        ("u d~ > t b~", (0, 1, 2, 3),
         [(SM.MW, SM.WW, (SM.ee / (math.sqrt(2) * SM.sw), 0), (SM.ee / (math.sqrt(2) * SM.sw), 0))],
         (SM.MT, SM.MB), 1),
        ("e+ e- > mu+ mu-", (1, 0, 3, 2),
         [(0, 0, (-SM.ee,) * 2, (-SM.ee,) * 2), (SM.MZ, SM.WZ, z_couplings(-1, -0.5), z_couplings(-1, -0.5))],
         (0.0, 0.0), 1),
    ],
)
def test_s_channel_matches_dirac_traces(process, slots, bosons, masses, colour):
    me = me_of(process)
    m = [0.0, 0.0, 0.0, 0.0]
    m[slots[2]], m[slots[3]] = masses
    p = random_points(420.0, 6, m[2], m[3], seed=7)
    got = me(p)
    for i in range(p.shape[0]):
        pts = [p[i, k].numpy() for k in slots]
        want = traced_me(pts, bosons, masses, colour)
        assert math.isclose(float(got[i]), want, rel_tol=1e-11), (i, float(got[i]), want)


# ---- QCD: ESW Table 7.1, written out per ordering (s = (p1+p2)², t = (p1−p3)², u = (p1−p4)²) -------------
def esw_qqp(s, t, u):  # q q' → q q' with t = (p_q − p_q')²-channel gluon
    return 4 / 9 * (s * s + u * u) / (t * t)


def esw_qq(s, t, u):
    return 4 / 9 * ((s * s + u * u) / (t * t) + (s * s + t * t) / (u * u)) - 8 / 27 * s * s / (u * t)


def esw_qqbar_qpqpbar(s, t, u):
    return 4 / 9 * (t * t + u * u) / (s * s)


def esw_qqbar_qqbar(s, t, u):
    return 4 / 9 * ((s * s + u * u) / (t * t) + (t * t + u * u) / (s * s)) - 8 / 27 * u * u / (s * t)


def esw_qqbar_gg(s, t, u):
    return 32 / 27 * (t * t + u * u) / (t * u) - 8 / 3 * (t * t + u * u) / (s * s)


def esw_gg_qqbar(s, t, u):
    return 1 / 6 * (t * t + u * u) / (t * u) - 3 / 8 * (t * t + u * u) / (s * s)


def esw_qg(s, t, u):
    return -4 / 9 * (s * s + u * u) / (s * u) + (u * u + s * s) / (t * t)


def esw_gggg(s, t, u):
    return 9 / 2 * (3 - t * u / (s * s) - s * u / (t * t) - s * t / (u * u))


QCD_CASES = [
    # process, ESW value in this ordering's (s, t, u), identical-final-state factor
    ("u d > u d", lambda s, t, u: esw_qqp(s, t, u), 1),
    ("u d > d u", lambda s, t, u: esw_qqp(s, u, t), 1),
    ("u d~ > u d~", lambda s, t, u: esw_qqp(s, t, u), 1),
    ("d~ u > u d~", lambda s, t, u: esw_qqp(s, u, t), 1),
    ("u~ s~ > u~ s~", lambda s, t, u: esw_qqp(s, t, u), 1),
    ("u u > u u", lambda s, t, u: esw_qq(s, t, u), 2),
    ("c~ c~ > c~ c~", lambda s, t, u: esw_qq(s, t, u), 2),
    ("u u~ > d d~", lambda s, t, u: esw_qqbar_qpqpbar(s, t, u), 1),
    ("s~ s > c~ c", lambda s, t, u: esw_qqbar_qpqpbar(s, t, u), 1),
    ("u u~ > u u~", lambda s, t, u: esw_qqbar_qqbar(s, t, u), 1),
    ("u u~ > u~ u", lambda s, t, u: esw_qqbar_qqbar(s, u, t), 1),
    ("u~ u > u u~", lambda s, t, u: esw_qqbar_qqbar(s, u, t), 1),
    ("d~ d > d~ d", lambda s, t, u: esw_qqbar_qqbar(s, t, u), 1),
    ("u u~ > g g", lambda s, t, u: esw_qqbar_gg(s, t, u), 2),
    ("s~ s > g g", lambda s, t, u: esw_qqbar_gg(s, t, u), 2),
    ("g g > u u~", lambda s, t, u: esw_gg_qqbar(s, t, u), 1),
    ("g g > c~ c", lambda s, t, u: esw_gg_qqbar(s, t, u), 1),
    ("u g > u g", lambda s, t, u: esw_qg(s, t, u), 1),
    ("g u > u g", lambda s, t, u: esw_qg(s, u, t), 1),
    ("u g > g u", lambda s, t, u: esw_qg(s, u, t), 1),
    ("u~ g > u~ g", lambda s, t, u: esw_qg(s, t, u), 1),
    ("g d~ > g d~", lambda s, t, u: esw_qg(s, t, u), 1),
    ("g g > g g", lambda s, t, u: esw_gggg(s, t, u), 2),
]


@pytest.mark.parametrize("process, esw, identical", QCD_CASES, ids=[c[0] for c in QCD_CASES])
def test_massless_qcd_matches_esw_table(process, esw, identical):
    me = me_of(process)
    assert me is not None and me.alpha_s_power == 2
    p = random_points(300.0, 64, seed=11)
    s, t, u = dot(p[:, 0] + p[:, 1], p[:, 0] + p[:, 1]), dot(p[:, 0] - p[:, 2], p[:, 0] - p[:, 2]), dot(
        p[:, 0] - p[:, 3], p[:, 0] - p[:, 3]
    )
    want = (4 * math.pi * SM.aS) ** 2 * esw(s, t, u) / identical
    torch.testing.assert_close(me(p), want, rtol=1e-12, atol=0)


def test_gggg_at_90_degrees_by_hand():
    # t = u = −s/2: (9/2)(3 − 1/4 + 2 + 2) = 243/8, halved for the identical gluons
    p = two_to_two(1000.0, torch.tensor([0.0]), 0.7)
    want = 243 / 16 * (4 * math.pi * 0.118) ** 2
    assert math.isclose(float(me_of("g g > g g")(p)), want, rel_tol=1e-13)


# ---- heavy quarks -----------------------------------------------------------------------------------
def test_heavy_quark_point_values_esw_10_11_12():
    m = SM.MT
    p = random_points(700.0, 32, m, m, seed=3)
    g4 = (4 * math.pi * SM.aS) ** 2
    s = dot(p[:, 0] + p[:, 1], p[:, 0] + p[:, 1])
    tau1, tau2, rho = 2 * dot(p[:, 0], p[:, 2]) / s, 2 * dot(p[:, 0], p[:, 3]) / s, 4 * m * m / s
    qq = g4 * 4 / 9 * (tau1**2 + tau2**2 + rho / 2)
    gg = g4 * (1 / (6 * tau1 * tau2) - 3 / 8) * (tau1**2 + tau2**2 + rho - rho**2 / (4 * tau1 * tau2))
    torch.testing.assert_close(me_of("u u~ > t t~")(p), qq, rtol=1e-12, atol=0)
    torch.testing.assert_close(me_of("d~ d > t~ t")(p), qq, rtol=1e-12, atol=0)
    torch.testing.assert_close(me_of("g g > t t~")(p), gg, rtol=1e-12, atol=0)
    assert me_of("t g > t g") is None  # MadGraph puts WT into the s-channel top propagator
    assert me_of("b g > b g") is not None  # width-less b: crossing of g g > b b~


def test_qt_scattering_formula():
    """q Q → q Q by the t-channel gluon: (4/9)[(m² − s)² + (m² − u)² + 2 m² t]/t², u = (p1 − p4)²."""
    m = SM.MT
    # u(p1) t(p2) → u(p3) t(p4) in the CM frame: incoming top massive
    sqrt_s, n = 600.0, 16
    g = torch.Generator().manual_seed(5)
    c = 2 * torch.rand(n, generator=g, dtype=torch.float64) - 1
    s = sqrt_s**2
    k = (s - m * m) / (2 * sqrt_s)
    p = torch.zeros(n, 4, 4, dtype=torch.float64)
    p[:, 0] = torch.tensor([k, 0, 0, k], dtype=torch.float64)
    p[:, 1] = torch.tensor([math.sqrt(k * k + m * m), 0, 0, -k], dtype=torch.float64)
    sn = torch.sqrt(1 - c * c)
    p[:, 2, 0], p[:, 2, 1], p[:, 2, 3] = k, k * sn, k * c
    p[:, 3, 0], p[:, 3, 1], p[:, 3, 3] = math.sqrt(k * k + m * m), -k * sn, -k * c
    t, u = dot(p[:, 0] - p[:, 2], p[:, 0] - p[:, 2]), dot(p[:, 0] - p[:, 3], p[:, 0] - p[:, 3])
    want = (4 * math.pi * SM.aS) ** 2 * 4 / 9 * ((m * m - s) ** 2 + (m * m - u) ** 2 + 2 * m * m * t) / t**2
    torch.testing.assert_close(me_of("u t > u t")(p), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("sqrt_s", [350.0, 400.0, 1000.0, 4000.0])
def test_heavy_quark_integrates_to_closed_form(sqrt_s):
    m, a_s, s = SM.MT, SM.aS, sqrt_s**2
    rho = 4 * m * m / s
    beta = math.sqrt(1 - rho)
    qq = 8 * math.pi * a_s**2 / (27 * s) * beta * (1 + rho / 2) * GEV2_TO_PB
    gg = math.pi * a_s**2 / (3 * s) * ((1 + rho + rho**2 / 16) * math.log((1 + beta) / (1 - beta))
                                       - beta * (7 / 4 + 31 * rho / 16)) * GEV2_TO_PB
    assert math.isclose(float(sigma_hat_qqbar_QQbar(s, m, a_s)), qq, rel_tol=1e-13)
    assert math.isclose(float(sigma_hat_gg_QQbar(s, m, a_s)), gg, rel_tol=1e-13)
    assert math.isclose(sigma_by_quadrature(me_of("u u~ > t t~"), sqrt_s, m, m), qq, rel_tol=1e-12)
    assert math.isclose(sigma_by_quadrature(me_of("g g > t t~"), sqrt_s, m, m, n_nodes=400), gg, rel_tol=1e-10)


def test_closed_forms_vanish_below_threshold():
    assert float(sigma_hat_qqbar_QQbar(300.0**2, 173.0, 0.118)) == 0.0
    assert float(sigma_hat_gg_QQbar(300.0**2, 173.0, 0.118)) == 0.0
    s = torch.tensor([300.0**2, 500.0**2], dtype=torch.float64)
    assert sigma_hat_gg_QQbar(s, 173.0, 0.118).shape == (2,)


# ---- invariance and symmetry ----------------------------------------------------------------------------
def boost_z(p, beta):
    gamma = 1 / math.sqrt(1 - beta**2)
    q = p.clone()
    q[..., 0] = gamma * (p[..., 0] + beta * p[..., 3])
    q[..., 3] = gamma * (p[..., 3] + beta * p[..., 0])
    return q


def rotate(p, axis_angle):
    r = torch.linalg.matrix_exp(torch.tensor(
        [[0, -axis_angle[2], axis_angle[1]], [axis_angle[2], 0, -axis_angle[0]], [-axis_angle[1], axis_angle[0], 0]],
        dtype=torch.float64))
    q = p.clone()
    q[..., 1:] = p[..., 1:] @ r.T
    return q


@pytest.mark.parametrize(
    "process, masses",
    [("e+ e- > mu+ mu-", (0, 0)), ("u d~ > e+ ve", (0, 0)), ("e+ e- > t t~", (SM.MT, SM.MT)),
     ("u d~ > t b~", (SM.MT, SM.MB)), ("g g > t t~", (SM.MT, SM.MT)), ("u u~ > t t~", (SM.MT, SM.MT)),
     ("g u > u g", (0, 0)), ("u u > u u", (0, 0)), ("g g > g g", (0, 0))],
)
def test_lorentz_invariance(process, masses):
    me = me_of(process)
    p = random_points(900.0, 32, *masses, seed=2)
    ref = me(p)
    for q in (boost_z(p, 0.6), boost_z(p, -0.9), rotate(p, (0.3, -1.1, 0.7)), rotate(boost_z(p, 0.4), (1.0, 0.2, 0.0))):
        torch.testing.assert_close(me(q), ref, rtol=1e-10, atol=0)


def test_symmetries():
    p = random_points(800.0, 32, SM.MT, SM.MT, seed=9)
    swap_out, swap_in = p[:, [0, 1, 3, 2]], p[:, [1, 0, 2, 3]]
    for proc in ("g g > t t~", "u u~ > t t~"):
        me = me_of(proc)
        torch.testing.assert_close(me(swap_out), me(p), rtol=1e-12, atol=0)  # symmetric under t ↔ u
        torch.testing.assert_close(me(swap_in), me(p), rtol=1e-12, atol=0)
    # beam mirror: u~ u > e+ e- at swapped beams equals u u~ > e+ e-
    q = random_points(200.0, 32, seed=4)
    torch.testing.assert_close(me_of("u~ u > e+ e-")(q[:, [1, 0, 2, 3]]), me_of("u u~ > e+ e-")(q), rtol=1e-13, atol=0)
    # g g > g g is fully symmetric
    gg = me_of("g g > g g")
    for perm in ([1, 0, 2, 3], [0, 1, 3, 2]):
        torch.testing.assert_close(gg(q[:, perm]), gg(q), rtol=1e-12, atol=0)
    # q q̄ → Z → e e is forward-backward asymmetric: swapping the leptons changes |M|²
    assert not torch.allclose(me_of("u u~ > e+ e-")(q[:, [0, 1, 3, 2]]), me_of("u u~ > e+ e-")(q))


# ---- factory --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "process",
    ["e+ e- > e+ e-", "e+ e- > ve ve~", "ve~ ve > ve~ ve", "e+ ve > e+ ve", "u u~ > a a", "u d~ > u s~",
     "t g > t g", "b b~ > t t~", "ta+ ta- > mu+ mu-", "u u~ > z z", "g g > h"],
)
def test_processes_without_formula(process):
    assert me_of(process) is None


def test_factory_metadata_and_alpha_s_rescaling():
    me = me_of("g g > t t~")
    assert me.process == "g g > t t~" and me.pdgs == (21, 21, 6, -6) and me.masses == (0.0, 0.0, SM.MT, SM.MT)
    assert me.alpha_s_power == 2 and me.alpha_s_ref == SM.aS
    assert me_of("e+ e- > mu+ mu-").alpha_s_power == 0
    assert me_of("u d~ > c s~") is not None  # s-channel W only (no QCD diagram)
    p = random_points(700.0, 4, SM.MT, SM.MT)
    torch.testing.assert_close(me(p, alpha_s=0.2), me(p) * (0.2 / SM.aS) ** 2, rtol=1e-14, atol=0)
    with pytest.raises(UnknownParticleError):
        analytic_matrix_element((2, -2, 11, 99), SM)
    assert analytic_matrix_element((21, 21, 6, -6, 21), SM) is None
    # parameters propagate: a lighter top
    light = SMParameters.from_card({"MT": 150.0})
    assert me_of("g g > t t~", light).masses[2] == 150.0


def test_registry_uses_analytic_backend():
    from matrix_elements.registry import matrix_element

    me = matrix_element("u u~ > e+ e-", backend="analytic")
    p = random_points(91.188, 8)
    assert torch.all(me(p) > 0)
