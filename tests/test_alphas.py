"""alpha_s: closed-form running (textbook β-coefficients, exact π), threshold matching, LHAPDF's conventions.

References are the standard n-loop formulas written out here with exact fractions of π; LHAPDF itself
uses β-coefficients rounded to ~10 digits, hence rel. tolerances of 1e-8 (1e-7 at three loops).
"""
from __future__ import annotations

import bisect
import math

import pytest
import torch

from madnis_py.alphas import (
    DBL_MAX,
    AlphaSError,
    AnalyticAlphaS,
    FixedAlphaS,
    InterpolatedAlphaS,
    alpha_s_from_info,
)
from madnis_py.pdf import load_pdf

MZ, MC, MB, MT = 91.1876, 1.414213563, 4.75, 175.0
THR = {1: 0.0, 2: 0.0, 3: 0.0, 4: MC, 5: MB, 6: MT}


def b0(nf):
    return (33 - 2 * nf) / (12 * math.pi)


def b1(nf):
    return (153 - 19 * nf) / (24 * math.pi**2)


def b2(nf):
    return (2857 - 5033 / 9 * nf + 325 / 27 * nf**2) / (128 * math.pi**3)


def one_loop(a_ref, q2_ref, q2, nf):
    """α(Q²) = α(μ²) / (1 + α(μ²) β0 ln(Q²/μ²))."""
    return a_ref / (1 + a_ref * b0(nf) * math.log(q2 / q2_ref))


def t64(*v):
    return torch.tensor(v, dtype=torch.float64)


@pytest.fixture(scope="module")
def nnpdf_as():
    return load_pdf("NNPDF23_lo_as_0130_qed").alpha_s


def test_alpha_s_mz_is_exact(nnpdf_as):
    assert nnpdf_as(t64(MZ**2)).item() == pytest.approx(0.130, rel=1e-14)
    assert nnpdf_as.alphasQ(t64(MZ)).item() == pytest.approx(0.130, rel=1e-14)


def test_one_loop_running_and_matching(nnpdf_as):
    """AlphaS_OrderQCD 0 = one loop; nf = 3/4/5/6 across MCharm, MBottom, MTop, continuous at each."""
    a_mb = one_loop(0.130, MZ**2, MB**2, 5)
    a_mc = one_loop(a_mb, MB**2, MC**2, 4)
    a_mt = one_loop(0.130, MZ**2, MT**2, 5)
    cases = [
        (10.0, one_loop(0.130, MZ**2, 100.0, 5)),
        (150.0, one_loop(0.130, MZ**2, 150.0**2, 5)),
        (MT, a_mt),  # Q² = m_t² still has nf = 5 (LHAPDF: threshold² < Q² switches)
        (3.0, one_loop(a_mb, MB**2, 9.0, 4)),
        (1.2, one_loop(a_mc, MC**2, 1.44, 3)),
        (500.0, one_loop(a_mt, MT**2, 500.0**2, 6)),
        (5000.0, one_loop(a_mt, MT**2, 5000.0**2, 6)),
    ]
    got = nnpdf_as(t64(*[q * q for q, _ in cases]))
    for (q, want), g in zip(cases, got.tolist()):
        assert g == pytest.approx(want, rel=5e-8), q  # LHAPDF's rounded beta_0(nf) (3e-9 at nf=3), amplified at low Q
    for m in (MC, MB, MT):
        lo, hi = nnpdf_as(t64(m * m * (1 - 1e-12), m * m * (1 + 1e-12))).tolist()
        assert lo == pytest.approx(hi, rel=1e-10)


def test_lhapdf_analytic_with_given_lambdas():
    """LHAPDF-compatible mode: 1/(β0 ln(Q²/Λ²)); a missing Λ_4 falls back to Λ_3 with nf = 4 in β0."""
    a = AnalyticAlphaS({3: 0.3, 5: 0.2}, loops=1, thresholds=THR, num_flavors=5)
    q2 = t64(2.0**2, 20.0**2, 1e6)
    want = [1 / (b0(4) * math.log(4.0 / 0.09)), 1 / (b0(5) * math.log(400.0 / 0.04)), 1 / (b0(5) * math.log(1e6 / 0.04))]
    torch.testing.assert_close(a(q2), t64(*want), rtol=1e-8, atol=0)
    assert a.num_flavors_q2(1e6) == 5  # capped by the largest Λ given
    below = a(t64(0.2**2, 0.0))
    assert torch.all(below == DBL_MAX)  # Q² <= Λ²: LHAPDF returns DBL_MAX
    const = AnalyticAlphaS({5: 0.2}, loops=0, thresholds=THR, alphas_mz=0.118)  # LHAPDF: order 0 = constant
    assert torch.all(const(t64(1.0, 1e4)) == 0.118)
    fixed = AnalyticAlphaS({4: 0.3}, loops=1, thresholds=THR, flavor_scheme="fixed", num_flavors=4)
    assert fixed(t64(1e6)).item() == pytest.approx(1 / (b0(4) * math.log(1e6 / 0.09)), rel=1e-8)


def test_two_and_three_loop_expansions():
    lam = 0.2
    for q2 in (25.0, 1e4, 1e7):
        ell = math.log(q2 / lam**2)
        two = 1 / (b0(5) * ell) * (1 - b1(5) * math.log(ell) / (b0(5) ** 2 * ell))
        three = two + 1 / (b0(5) * ell) * (
            (b1(5) ** 2 * (math.log(ell) ** 2 - math.log(ell) - 1) + b0(5) * b2(5)) / (b0(5) ** 4 * ell**2)
        )
        a2 = AnalyticAlphaS({5: lam}, loops=2, thresholds=THR, num_flavors=5)(t64(q2)).item()
        a3 = AnalyticAlphaS({5: lam}, loops=3, thresholds=THR, num_flavors=5)(t64(q2)).item()
        assert a2 == pytest.approx(two, rel=1e-8)
        assert a3 == pytest.approx(three, rel=1e-7)


def test_lambda_from_alphas_mz_higher_orders():
    """AlphaS_OrderQCD 1 (NLO) → two loops; α(MZ) reproduced, continuous at the thresholds."""
    info = {"AlphaS_Type": "analytic", "AlphaS_OrderQCD": 1, "AlphaS_MZ": 0.118, "MZ": MZ, "NumFlavors": 5,
            "MUp": 0, "MDown": 0, "MStrange": 0, "MCharm": 1.51, "MBottom": 4.92, "MTop": 172.5}
    a = alpha_s_from_info(info)
    assert isinstance(a, AnalyticAlphaS) and a.loops == 2 and sorted(a.lambdas) == [3, 4, 5]
    assert a(t64(MZ**2)).item() == pytest.approx(0.118, rel=1e-12)
    for m in (1.51, 4.92):
        lo, hi = a(t64(m * m * (1 - 1e-12), m * m * (1 + 1e-12))).tolist()
        assert lo == pytest.approx(hi, rel=1e-9)
    ell = math.log(MZ**2 / a.lambdas[5] ** 2)  # the two-loop formula at MZ with the solved Λ5
    assert 1 / (b0(5) * ell) * (1 - b1(5) * math.log(ell) / (b0(5) ** 2 * ell)) == pytest.approx(0.118, rel=1e-8)
    assert a.num_flavors_q2(1e6) == 5  # NumFlavors 5 caps nf above m_t


class IpolScalar:
    """LHAPDF AlphaS_Ipol, scalar: subgrids at repeated Q, Hermite in ln Q², edges as LHAPDF."""

    def __init__(self, qs, vals):
        self.q2 = [q * q for q in qs]
        self.a = list(vals)

    def __call__(self, q2):
        if q2 < self.q2[0]:
            k = next(i for i in range(1, len(self.q2)) if self.q2[i] != self.q2[0])
            p = math.log10(self.a[k] / self.a[0]) / math.log10(self.q2[k] / self.q2[0])
            return self.a[0] * (q2 / self.q2[0]) ** p
        if q2 > self.q2[-1]:
            return self.a[-1]
        starts = [0] + [i for i in range(1, len(self.q2)) if self.q2[i] == self.q2[i - 1]]
        s = starts[bisect.bisect_right([self.q2[i] for i in starts], q2) - 1]
        e = next((i for i in starts if i > s), len(self.q2))
        q, a = self.q2[s:e], self.a[s:e]
        lq = [math.log(v) for v in q]
        i = bisect.bisect_right(q, q2)
        i = (i - 1) if i < len(q) else len(q) - 2
        fwd = lambda j: (a[j + 1] - a[j]) / (lq[j + 1] - lq[j])  # noqa: E731
        bwd = lambda j: (a[j] - a[j - 1]) / (lq[j] - lq[j - 1])  # noqa: E731
        cen = lambda j: 0.5 * (fwd(j) + bwd(j))  # noqa: E731
        if i == 0:
            d0, d1 = fwd(0), cen(1)
        elif i == len(q) - 2:
            d0, d1 = cen(i), bwd(i + 1)
        else:
            d0, d1 = cen(i), cen(i + 1)
        dl = lq[i + 1] - lq[i]
        t = (math.log(q2) - lq[i]) / dl
        t2, t3 = t * t, t * t * t
        return (2 * t3 - 3 * t2 + 1) * a[i] + (t3 - 2 * t2 + t) * d0 * dl + (-2 * t3 + 3 * t2) * a[i + 1] + (t3 - t2) * d1 * dl


def test_interpolated_alpha_s_like_lhapdf():
    """ipol: a one-loop table with a repeated Q at m_b; knots exact, LHAPDF's Hermite, edge rules."""
    exact = AnalyticAlphaS.from_alphas_mz(0.118, MZ, THR, loops=1, num_flavors=5)
    qs = [1.65 * (MB / 1.65) ** (i / 8) for i in range(9)] + [MB * (1e4 / MB) ** (i / 30) for i in range(31)]
    vals = exact(t64(*[q * q for q in qs])).tolist()
    vals[9] *= 1.001  # the upper subgrid's value at the threshold differs slightly (as across a real threshold)
    ip = InterpolatedAlphaS(qs, vals)
    assert len(ip.subgrids) == 2
    torch.testing.assert_close(ip(t64(*[q * q for q in qs[10:]])), t64(*vals[10:]), rtol=1e-15, atol=0)
    assert ip(t64(MB**2)).item() == pytest.approx(vals[9], rel=1e-15)  # threshold Q: upper subgrid
    g = torch.Generator().manual_seed(3)
    q2 = torch.exp(torch.rand(200, generator=g, dtype=torch.float64) * (math.log(2e8) - math.log(1.0)))
    ref = IpolScalar(qs, vals)
    torch.testing.assert_close(ip(q2), t64(*[ref(v) for v in q2.tolist()]), rtol=1e-13, atol=0)
    inside = ((q2 > qs[0] ** 2) & (q2 < MB**2)) | ((q2 > qs[12] ** 2) & (q2 < 1e8))  # away from the x1.001 kink
    torch.testing.assert_close(ip(q2)[inside], exact(q2)[inside], rtol=1e-3, atol=0)  # smooth table: near the truth
    assert ip(t64(1e10)).item() == vals[-1]
    p = math.log10(vals[1] / vals[0]) / math.log10(qs[1] ** 2 / qs[0] ** 2)
    assert ip(t64(1.0)).item() == pytest.approx(vals[0] * (1.0 / qs[0] ** 2) ** p, rel=1e-14)
    info = {"AlphaS_Type": "ipol", "AlphaS_Qs": qs, "AlphaS_Vals": vals}
    assert isinstance(alpha_s_from_info(info), InterpolatedAlphaS)


def test_fixed_and_errors_and_devices(nnpdf_as):
    fixed = FixedAlphaS(0.118)
    out = fixed(torch.ones(3, 2, dtype=torch.float32))
    assert out.shape == (3, 2) and out.dtype == torch.float64 and torch.all(out == 0.118)
    assert nnpdf_as(torch.tensor([100.0], dtype=torch.float32)).dtype == torch.float64
    assert torch.isnan(nnpdf_as(t64(float("nan")))).all()
    with pytest.raises(AlphaSError, match="unphysical"):
        nnpdf_as(t64(-1.0))
    with pytest.raises(ValueError):
        FixedAlphaS(-0.1)
    with pytest.raises(AlphaSError, match="AlphaS_Type"):
        alpha_s_from_info({"MZ": 91.0})
    with pytest.raises(AlphaSError, match="ode"):
        alpha_s_from_info({"AlphaS_Type": "ode"})
    with pytest.raises(AlphaSError, match="differently sized"):
        InterpolatedAlphaS([1.0, 2.0, 3.0], [0.3, 0.2])
    with pytest.raises(AlphaSError, match="quark masses"):
        alpha_s_from_info({"AlphaS_Type": "analytic", "AlphaS_MZ": 0.118, "MZ": MZ})
    if torch.cuda.is_available():
        q2 = t64(10.0, 1e4).cuda()
        for a in (fixed, nnpdf_as, InterpolatedAlphaS([2.0, 10.0, 100.0], [0.3, 0.2, 0.15])):
            assert a(q2).device.type == "cuda"
