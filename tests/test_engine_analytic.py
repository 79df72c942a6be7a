"""Engine |M|² against closed-form results (independent of the engine's code).

* 2→2 QCD and electroweak processes against :mod:`matrix_elements.analytic` (ESW Table 7.1,
  Combridge, γ/Z/W s-channel helicity formulas);
* g g → g g g against the exact five-gluon result (Berends et al. / Gunion–Kunszt),
  Σ|M|² = g⁶ N³(N²−1) Σ_{i<j} (p_i·p_j)⁴ Σ_{σ∈S₄} 1/[(p₁·p_σ1)(p_σ1·p_σ2)(p_σ2·p_σ3)(p_σ3·p_σ4)(p_σ4·p₁)]
  (sum over all 24 orderings, i.e. twice the 12 distinct cyclic classes; all momenta outgoing),
  which follows from the Parke–Taylor MHV amplitudes and is exact in colour for five gluons;
* e+ e- → q q̄ g: averaged over the beam orientation, (1/σ₀) dσ/dx₁dx₂ = (α_s/2π) C_F
  (x₁² + x₂²)/((1−x₁)(1−x₂)) (ESW eq. 3.4, valid for γ and Z exchange with massless quarks).
  |M|² is a quadratic polynomial in the beam direction n, so its average over n ∈ S² is exact on
  the six points ±x̂, ±ŷ, ±ẑ.
"""
import itertools
import math

import pytest
import torch

from channels.rambo import Rambo
from matrix_elements.analytic import analytic_matrix_element
from matrix_elements.engine import build_matrix_element
from matrix_elements.model import SMParameters

PARAMS = SMParameters()


def _incoming(sqrt_s: float, m1: float, m2: float, n: int) -> torch.Tensor:
    s = sqrt_s**2
    pz = math.sqrt((s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)) / (2 * sqrt_s)
    e1, e2 = math.sqrt(pz**2 + m1**2), math.sqrt(pz**2 + m2**2)
    return torch.tensor([[e1, 0, 0, pz], [e2, 0, 0, -pz]], dtype=torch.float64).expand(n, 2, 4)


def momenta(pdgs, sqrt_s=500.0, n=16, seed=1, params=PARAMS):
    masses = [params.mass(p) for p in pdgs]
    rambo = Rambo(len(pdgs) - 2, masses[2:], sqrt_s)
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, rambo.dims_in, generator=g, dtype=torch.float64)
    out, _ = rambo.forward(u)
    return torch.cat([_incoming(sqrt_s, masses[0], masses[1], n), out], dim=1).contiguous()


QCD_22 = [
    (2, 1, 2, 1), (2, 2, 2, 2), (2, -2, 1, -1), (2, -2, 2, -2), (2, -2, 21, 21), (21, 21, 2, -2),
    (2, 21, 2, 21), (21, 2, 21, 2), (-1, 21, -1, 21), (21, 21, 21, 21), (-2, -2, -2, -2), (1, -2, 1, -2),
    (3, -3, 21, 21), (2, -2, 6, -6), (-1, 1, 6, -6), (21, 21, 6, -6), (21, 21, 5, -5),
]
EW_22 = [(-11, 11, -13, 13), (2, -1, -11, 12), (1, -2, 11, -12), (2, -2, -11, 11), (-11, 11, 2, -2),
         (-11, 11, 6, -6), (4, -3, -13, 14)]


@pytest.mark.parametrize("pdgs", QCD_22 + EW_22)
def test_two_to_two_against_analytic(pdgs):
    ana = analytic_matrix_element(pdgs, PARAMS)
    assert ana is not None, pdgs
    # the analytic heavy-quark formulas have no width in t-channel propagators
    me = build_matrix_element(pdgs, PARAMS, tchannel_width=False)
    p = momenta(pdgs)
    assert torch.allclose(me(p), ana(p), rtol=1e-12, atol=0)
    # running α_s: both rescale identically
    a_s = torch.linspace(0.08, 0.2, p.shape[0], dtype=torch.float64)
    assert torch.allclose(me(p, alpha_s=a_s), ana(p, alpha_s=a_s), rtol=1e-12, atol=0)


def test_top_width_in_t_channel_is_madgraph_default():
    pdgs = (21, 21, 6, -6)
    p = momenta(pdgs)
    with_w = build_matrix_element(pdgs, PARAMS)(p)
    no_w = build_matrix_element(pdgs, PARAMS, tchannel_width=False)(p)
    rel = ((with_w - no_w) / no_w).abs()
    assert bool((rel > 0).all()) and bool((rel < 1e-3).all())


def _five_gluon(p: torch.Tensor, gs: float) -> torch.Tensor:
    q = p.clone()
    q[:, :2] = -q[:, :2]  # all outgoing

    def d(i, j):
        return q[:, i, 0] * q[:, j, 0] - (q[:, i, 1:] * q[:, j, 1:]).sum(-1)

    num = sum(d(i, j) ** 4 for i, j in itertools.combinations(range(5), 2))
    den = 0
    for perm in itertools.permutations(range(1, 5)):
        order = (0,) + perm
        prod = 1.0
        for k in range(5):
            prod = prod * d(order[k], order[(k + 1) % 5])
        den = den + 1.0 / prod
    n = 3
    return gs**6 * n**3 * (n * n - 1) * num * den


def test_five_gluons_exact_formula():
    pdgs = (21, 21, 21, 21, 21)
    p = momenta(pdgs, sqrt_s=1000.0, n=32, seed=3)
    me = build_matrix_element(pdgs, PARAMS)
    ref = _five_gluon(p, PARAMS.gs) / (4 * 64) / 6  # average 2·2 helicities, 8·8 colours; 3! identical
    assert torch.allclose(me(p), ref, rtol=1e-11, atol=0)


def _rotate_beam(p3: torch.Tensor, sqrt_s: float, axis: torch.Tensor) -> torch.Tensor:
    e = sqrt_s / 2
    beam = torch.stack([torch.cat([torch.tensor([e]), e * axis]), torch.cat([torch.tensor([e]), -e * axis])])
    return torch.cat([beam.to(torch.float64).expand(p3.shape[0], 2, 4), p3], dim=1)


def test_epem_to_qqbar_g_against_esw():
    sqrt_s = 91.0
    n = 8
    rambo3 = Rambo(3, [0.0, 0.0, 0.0], sqrt_s)
    fs, _ = rambo3.forward(torch.rand(n, rambo3.dims_in, generator=torch.Generator().manual_seed(5),
                                      dtype=torch.float64))
    rambo2 = Rambo(2, [0.0, 0.0], sqrt_s)
    fs2, _ = rambo2.forward(torch.rand(n, rambo2.dims_in, generator=torch.Generator().manual_seed(6),
                                       dtype=torch.float64))
    me3 = build_matrix_element((-11, 11, 2, -2, 21), PARAMS)
    me2 = build_matrix_element((-11, 11, 2, -2), PARAMS)
    axes = [torch.tensor(v, dtype=torch.float64) for v in
            ([1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1])]
    avg3 = sum(me3(_rotate_beam(fs, sqrt_s, a)) for a in axes) / 6
    avg2 = sum(me2(_rotate_beam(fs2, sqrt_s, a)) for a in axes) / 6
    assert torch.allclose(avg2, avg2[0].expand(n), rtol=1e-12)  # orientation-averaged 2-body is constant
    x1 = 2 * fs[:, 0, 0] / sqrt_s
    x2 = 2 * fs[:, 1, 0] / sqrt_s
    esw = (4 / 3) * (x1**2 + x2**2) / ((1 - x1) * (1 - x2))
    # dσ3/(σ2 dx1 dx2) = <M3>/<M2> s/(16π²) = (α_s/2π) C_F (x1²+x2²)/((1−x1)(1−x2))
    lhs = avg3 / avg2 * sqrt_s**2 / (16 * math.pi**2)
    rhs = PARAMS.aS / (2 * math.pi) * esw
    assert torch.allclose(lhs, rhs, rtol=1e-11, atol=0)


def test_six_gluon_colour_ordered_amplitudes_are_parke_taylor():
    """g g → g g g g: the colour-flow amplitudes J_σ (external gluons contracted with √2 T^a) are
    g⁴ times the colour-ordered amplitudes, so for MHV helicities |J_σ|² = g⁸ s_ij⁴ / Π s_{k,k+1}
    along the cyclic order of σ (Parke–Taylor), and they vanish for all-plus / one-minus."""
    pdgs = (21,) * 6
    p = momenta(pdgs, sqrt_s=1000.0, n=3, seed=8)
    me = build_matrix_element(pdgs, PARAMS)
    J = me.helicity_flow_amplitudes(p)  # [n, H, F]
    q = p.clone()
    q[:, :2] = -q[:, :2]

    def s(i, j):
        k = q[:, i] + q[:, j]
        return k[:, 0] ** 2 - (k[:, 1:] ** 2).sum(-1)

    hels = me.helicities
    # outgoing helicity = nhel for final legs, −nhel for incoming legs
    out_hel = [tuple(-h if i < 2 else h for i, h in enumerate(c)) for c in hels]
    checked = 0
    for hi, oh in enumerate(out_hel):
        neg = [i for i, h in enumerate(oh) if h < 0]
        amp2 = J[:, hi].abs() ** 2  # [n, F]
        if len(neg) <= 1 or len(neg) >= 5:
            assert bool((amp2 < 1e-20 * (J.abs() ** 2).max()).all())
            continue
        if len(neg) not in (2, 4):
            continue
        i, j = neg if len(neg) == 2 else [k for k in range(6) if k not in neg]
        for f, links in enumerate(me.flow_links):
            order = [0]
            while len(order) < 6:
                order.append(links[order[-1]])
            assert links[order[-1]] == 0  # single trace
            den = 1.0
            for k in range(6):
                den = den * s(order[k], order[(k + 1) % 6])
            ref = PARAMS.gs**8 * s(i, j) ** 4 / den
            assert torch.allclose(amp2[:, f], ref.abs(), rtol=1e-9), (oh, links)
            checked += 1
    assert checked == 30 * 120  # 15 MHV + 15 anti-MHV configurations × 120 orderings
