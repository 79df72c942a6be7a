"""Tests of the phase-space building blocks in channels/ (fast, seeded, float64).

The reference helpers below use no code from channels/. The density of a momentum mapping w.r.t. dΦ_n is checked without trusting its own formulas:
the output momenta (in their CM frame) are mapped to independent coordinates

    c = (cosθ₁, φ₁, p⃗₂, …, p⃗_{n−1})        (3n − 4 numbers; p⃗_n = −Σ p⃗_i, |p⃗₁| fixed by energy),

in which dΦ_n = (2π)^(4−3n) |p⃗₁|² / (2E₁ 2E_n Π_{i=2}^{n−1} 2E_i |∂ΣE/∂|p⃗₁||) dc, and the
density of c for uniform u is 1/|det ∂c/∂u| by central finite differences. So
q_Φ = |det ∂c/∂u|⁻¹ / (dΦ/dc).
"""
from __future__ import annotations

import math

import pytest
import torch

from channels import invariants as inv
from channels import kinematics as kin
from channels.luminosity import Collision, Luminosity, boost_to_lab, cm_rapidity, parton_momenta
from channels.rambo import Rambo
from channels.tchannel import TChannel
from channels.two_body import TwoBody, decay, decay_inverse


def numerical_jacobian(f, u: torch.Tensor, h: float = 1e-6, periodic: list[int] | None = None) -> torch.Tensor:
    """∂f/∂u ``[N, m, d]`` by central differences; ``periodic`` output columns are angles mod 2π."""
    n, d = u.shape
    eye = torch.eye(d, dtype=u.dtype) * h
    up = (u[:, None, :] + eye).reshape(-1, d)
    um = (u[:, None, :] - eye).reshape(-1, d)
    diff = f(up) - f(um)
    if periodic:
        diff[:, periodic] = torch.remainder(diff[:, periodic] + math.pi, 2 * math.pi) - math.pi
    return diff.reshape(n, d, -1).transpose(1, 2) / (2 * h)


def log_abs_det(j: torch.Tensor) -> torch.Tensor:
    return torch.linalg.slogdet(j)[1]


def boost_to_frame(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Textbook pure boost Λ(−β) of ``p [N, k, 4]`` into the rest frame of ``q [N, 4]`` (β = q⃗/q⁰)."""
    beta = q[:, 1:] / q[:, :1]
    b2 = (beta * beta).sum(-1)
    gamma = 1 / torch.sqrt(1 - b2)
    lam = torch.zeros(q.shape[0], 4, 4, dtype=q.dtype)
    lam[:, 0, 0] = gamma
    lam[:, 0, 1:] = -gamma[:, None] * beta
    lam[:, 1:, 0] = -gamma[:, None] * beta
    lam[:, 1:, 1:] = torch.eye(3, dtype=q.dtype) + ((gamma - 1) / b2)[:, None, None] * beta[:, :, None] * beta[:, None, :]
    return torch.einsum("nij,nkj->nki", lam, p)


def cm_coordinates(p: torch.Tensor) -> torch.Tensor:
    """c = (cosθ₁, φ₁, p⃗₂ … p⃗_{n−1}) of CM-frame momenta ``[N, n, 4]``; column 1 is an angle."""
    p1 = p[:, 0, 1:]
    cos1 = p1[:, 2] / p1.norm(dim=-1)
    phi1 = torch.atan2(p1[:, 1], p1[:, 0])
    return torch.cat([cos1[:, None], phi1[:, None], p[:, 1:-1, 1:].reshape(p.shape[0], -1)], dim=1)


def log_dphi_dc(p: torch.Tensor) -> torch.Tensor:
    """log dΦ_n/dc at CM-frame momenta ``[N, n, 4]`` (on-shell energies taken from p)."""
    n = p.shape[1]
    e = p[..., 0]
    p1 = p[:, 0, 1:]
    a1 = p1.norm(dim=-1)
    pn = p[:, -1, 1:]
    jac = a1 / e[:, 0] - (pn * p1).sum(-1) / a1 / e[:, -1]
    return ((4 - 3 * n) * math.log(2 * math.pi) + 2 * torch.log(a1) - torch.log(2 * e).sum(-1)
            - torch.log(jac.abs()))


def log_q_numeric(momenta_of_u, u: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Reference log-density w.r.t. dΦ_n of a map ``u -> CM-frame momenta [N, n, 4]``."""
    def coords(v):
        return cm_coordinates(momenta_of_u(v))
    j = numerical_jacobian(coords, u, h, periodic=[1])
    return -log_abs_det(j) - log_dphi_dc(momenta_of_u(u))


def kallen(a, b, c):
    return a * a + b * b + c * c - 2 * a * b - 2 * a * c - 2 * b * c


def massless_volume(n: int, s: float) -> float:
    """(2π)^(4−3n) (π/2)^(n−1) s^(n−2) / ((n−1)! (n−2)!)."""
    return (2 * math.pi) ** (4 - 3 * n) * (math.pi / 2) ** (n - 1) * s ** (n - 2) / (
        math.factorial(n - 1) * math.factorial(n - 2))


def dalitz_volume(s: float, m1: float, m2: float, m3: float, order: int = 400) -> float:
    """Φ₃ = 1/(128π³ s) ∫ dm12² λ^{1/2}(m12², m1², m2²) λ^{1/2}(s, m12², m3²)/m12² (Gauss–Legendre)."""
    import numpy as np

    lo, hi = (m1 + m2) ** 2, (math.sqrt(s) - m3) ** 2
    x, w = np.polynomial.legendre.leggauss(order)
    t = 0.5 * (x + 1) * math.pi  # m12² = lo + (hi − lo)(1 − cos t)/2 removes the endpoint square roots
    m12 = lo + (hi - lo) * (1 - np.cos(t)) / 2
    dm = (hi - lo) * np.sin(t) / 2 * math.pi / 2
    f = np.sqrt(np.clip(kallen(m12, m1**2, m2**2), 0, None) * np.clip(kallen(s, m12, m3**2), 0, None)) / m12
    return float((w * f * dm).sum() / (128 * math.pi**3 * s))


# ----------------------------------------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------------------------------------
F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand(g, *shape, lo=0.0, hi=1.0):
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=F64)


def random_timelike(g, n, mass=(50.0, 300.0), pmax=400.0):
    m = rand(g, n, lo=mass[0], hi=mass[1])
    pv = rand(g, n, 3, lo=-pmax, hi=pmax)
    return torch.cat([(m * m + (pv * pv).sum(-1)).sqrt()[:, None], pv], dim=1)


def mc(w: torch.Tensor) -> tuple[float, float]:
    return float(w.mean()), float(w.std() / math.sqrt(w.numel()))


# -- kinematics --------------------------------------------------------------------------------------------
def test_boosts_match_textbook_lorentz_matrix():
    g = gen(1)
    q, p = random_timelike(g, 50), random_timelike(g, 50)
    ref = boost_to_frame(p[:, None], q)[:, 0]
    assert torch.allclose(kin.boost_to_rest(p, q), ref, rtol=1e-12, atol=1e-9)
    assert torch.allclose(kin.boost_from_rest(kin.boost_to_rest(p, q), q), p, rtol=1e-12, atol=1e-9)
    rest = kin.boost_to_rest(q, q)
    assert torch.allclose(rest[:, 1:], torch.zeros_like(rest[:, 1:]), atol=1e-9)
    assert torch.allclose(rest[:, 0], kin.mass(q), rtol=1e-12)
    beta = -q[:, 1:] / q[:, :1]  # boost(p, β) gives a particle at rest velocity β: here the rest frame of q
    assert torch.allclose(kin.boost(p, beta), ref, rtol=1e-12, atol=1e-9)
    y = rand(g, 50, lo=-3, hi=3)
    bz = torch.zeros(50, 4, dtype=F64)
    bz[:, 0], bz[:, 3] = torch.cosh(y), torch.sinh(y)  # a frame moving with rapidity y; boost_z(-y) enters it
    assert torch.allclose(kin.boost_z(p, -y), boost_to_frame(p[:, None], bz)[:, 0], rtol=1e-12, atol=1e-9)
    assert torch.allclose(kin.mdot(kin.boost_z(p, y), kin.boost_z(q, y)), kin.mdot(p, q), rtol=1e-10)


def test_rotation_to_takes_z_to_direction():
    g = gen(2)
    n = torch.cat([rand(g, 30, 3, lo=-1, hi=1), torch.tensor([[0, 0, 1.0], [0, 0, -2.0], [1e-9, 0, -1.0]], dtype=F64)])
    r = kin.rotation_to(n)
    assert torch.allclose(r[..., 2], n / n.norm(dim=-1, keepdim=True), atol=1e-12)
    assert torch.allclose(r @ r.transpose(-1, -2), torch.eye(3, dtype=F64).expand(33, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(33, dtype=F64), atol=1e-12)
    p = random_timelike(g, 33)
    assert torch.allclose(kin.rotate(kin.rotate(p, r), r.transpose(-1, -2)), p, atol=1e-10)


def test_observables_on_known_values():
    y, ptv, ph, m = 0.7, 35.0, 2.5, 4.0
    mt = math.hypot(ptv, m)
    p = torch.tensor([[mt * math.cosh(y), ptv * math.cos(ph), ptv * math.sin(ph), mt * math.sinh(y)]], dtype=F64)
    assert kin.rapidity(p).item() == pytest.approx(y, rel=1e-13)
    assert kin.pt(p).item() == pytest.approx(ptv, rel=1e-13)
    assert kin.mass(p).item() == pytest.approx(m, rel=1e-10)
    assert kin.eta(p).item() == pytest.approx(math.asinh(mt * math.sinh(y) / ptv), rel=1e-13)
    q = torch.tensor([[10.0, 10.0 * math.cos(-2.9), 10.0 * math.sin(-2.9), 0.0]], dtype=F64)  # η = 0, φ = −2.9
    dphi = 2 * math.pi - (2.5 + 2.9)
    assert kin.delta_phi(p, q).item() == pytest.approx(dphi, rel=1e-12)
    assert kin.delta_r(p, q).item() == pytest.approx(math.hypot(kin.eta(p).item(), dphi), rel=1e-12)
    assert kin.delta_r(p, q, use_rapidity=True).item() == pytest.approx(math.hypot(y, dphi), rel=1e-12)
    s, m1, m2 = 100.0**2, 30.0, 20.0
    pstar = math.sqrt((s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)) / (2 * 100.0)
    assert kin.two_body_momentum(torch.tensor(s, dtype=F64), m1**2, m2**2).item() == pytest.approx(pstar, rel=1e-13)
    assert kin.kallen(torch.tensor(9.0, dtype=F64), 0.0, 0.0).item() == 81.0


# -- invariants --------------------------------------------------------------------------------------------
SAMPLERS = {
    "uniform": inv.Uniform(),
    "bw": inv.BreitWigner(91.188, 2.4952),
    "pow0.8": inv.PowerLaw(0.8),
    "log": inv.PowerLaw(1.0),
    "pow1.5": inv.PowerLaw(1.5),
    "t-prop": inv.PowerLaw(0.8, shift=80.4**2),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_invariant_density_and_inverse(name):
    sam, g = SAMPLERS[name], gen(3)
    lo = rand(g, 200, lo=10.0, hi=80.0**2)
    hi = lo + rand(g, 200, lo=1.0, hi=120.0**2)
    u = rand(g, 200, lo=0.01, hi=0.99)
    s, log_q = sam.forward(u, lo, hi)
    assert bool(((s >= lo) & (s <= hi)).all())
    h = 1e-6
    ds_du = (sam.forward(u + h, lo, hi)[0] - sam.forward(u - h, lo, hi)[0]) / (2 * h)
    assert torch.allclose(log_q, -torch.log(ds_du), atol=1e-7)
    u2, log_q2 = sam.inverse(s, lo, hi)
    assert torch.allclose(u2, u, atol=1e-10) and torch.allclose(log_q2, log_q, atol=1e-10)
    assert torch.allclose(sam.forward(torch.zeros_like(u), lo, hi)[0], lo, rtol=1e-12)
    assert torch.allclose(sam.forward(torch.ones_like(u), lo, hi)[0], hi, rtol=1e-12)


def gauss_legendre(f, a, b, order=200):
    import numpy as np
    x, w = np.polynomial.legendre.leggauss(order)
    xs = 0.5 * (b - a) * x + 0.5 * (b + a)
    return float(0.5 * (b - a) * (w * f(xs)).sum())


def test_breit_wigner_integrates_a_breit_wigner_exactly():
    mz, wz, lo, hi = 91.188, 2.4952, 60.0**2, 120.0**2
    u = rand(gen(4), 1000)
    s, log_q = inv.BreitWigner(mz, wz).forward(u, lo, hi)
    w = 1 / ((s - mz**2) ** 2 + (mz * wz) ** 2) / log_q.exp()
    cuts = [lo, mz**2 - 10 * mz * wz, mz**2 + 10 * mz * wz, hi]
    exact = sum(gauss_legendre(lambda x: 1 / ((x - mz**2) ** 2 + (mz * wz) ** 2), a, b, order=200)
                for a, b in zip(cuts[:-1], cuts[1:]))
    assert float(w.std() / w.mean()) < 1e-12
    assert float(w.mean()) == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("nu", [0.5, 0.8, 1.0, 2.0])
def test_power_law_integrates_its_power_exactly(nu):
    lo, hi, shift = 5.0, 1.0e4, 20.0
    s, log_q = inv.PowerLaw(nu, shift).forward(rand(gen(5), 1000), lo, hi)
    w = (s + shift) ** (-nu) / log_q.exp()
    exact = math.log((hi + shift) / (lo + shift)) if nu == 1 else ((hi + shift) ** (1 - nu) - (lo + shift) ** (1 - nu)) / (1 - nu)
    assert float(w.std() / w.mean()) < 1e-12
    assert float(w.mean()) == pytest.approx(exact, rel=1e-12)


def test_invariant_bad_input():
    u = torch.full((3,), 0.5, dtype=F64)
    with pytest.raises(kin.PhaseSpaceError):
        inv.Uniform().forward(u, 2.0, 1.0)
    with pytest.raises(kin.PhaseSpaceError):
        inv.PowerLaw(1.0).forward(u, 0.0, 1.0)
    with pytest.raises(kin.PhaseSpaceError):
        inv.BreitWigner(91.0, 0.0)
    assert isinstance(inv.sampler_for(80.4, 2.0), inv.BreitWigner) and isinstance(inv.sampler_for(0, 0), inv.PowerLaw)


# -- two-body ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m1,m2", [(0.0, 0.0), (40.0, 0.0), (30.0, 90.0)])
def test_two_body_decay(m1, m2):
    g = gen(6)
    parent = random_timelike(g, 40, mass=(130.0, 400.0))
    u = rand(g, 40, 2, lo=0.02, hi=0.98)

    def rest(v):
        p1, p2, _ = decay(v, parent.repeat_interleave(v.shape[0] // 40, 0), m1**2, m2**2)
        return boost_to_frame(torch.stack([p1, p2], 1), p1 + p2)

    p1, p2, log_q = decay(u, parent, m1**2, m2**2)
    assert torch.allclose(p1 + p2, parent, atol=1e-10)
    assert torch.allclose(kin.msq(torch.stack([p1, p2], 1)), torch.tensor([m1**2, m2**2], dtype=F64).expand(40, 2), atol=1e-7)
    assert torch.allclose(log_q, log_q_numeric(rest, u), atol=1e-7)
    s = kin.msq(parent)
    assert torch.allclose(log_q, -torch.log(torch.sqrt(kallen(s, m1**2, m2**2)) / (8 * math.pi * s)), atol=1e-12)
    u2, log_q2 = decay_inverse(p1, parent, m1**2, m2**2)
    assert torch.allclose(u2, u, atol=1e-10) and torch.allclose(log_q2, log_q, atol=1e-10)


def test_two_body_final_state_volume_and_threshold():
    tb = TwoBody(0.0, 0.0)
    p, log_q = tb.forward(rand(gen(7), 10, 2), torch.tensor([[300.0, 0, 0, 100.0]], dtype=F64).expand(10, 4))
    assert torch.allclose((-log_q).exp(), torch.full((10,), 1 / (8 * math.pi), dtype=F64), rtol=1e-13)
    p, _ = TwoBody(10.0, 20.0).forward(rand(gen(7), 10, 2), 300.0)
    assert torch.allclose(p.sum(1), torch.tensor([300.0, 0, 0, 0], dtype=F64).expand(10, 4), atol=1e-12)
    with pytest.raises(kin.PhaseSpaceError):
        TwoBody(100.0, 100.0).forward(rand(gen(7), 10, 2), torch.tensor([[150.0, 0, 0, 0]], dtype=F64).expand(10, 4))


# -- t-channel ---------------------------------------------------------------------------------------------
def tchannel_setup(case, n, g):
    if case == "massless-lab":  # partons with x1 ≠ x2 at √S = 13 TeV
        x1, x2 = rand(g, n, lo=0.03, hi=0.3), rand(g, n, lo=0.03, hi=0.3)
        pa, pb = parton_momenta(x1, x2, 13000.0)
        return pa, pb, 0.0, 173.0**2
    pa = random_timelike(g, n, mass=(0.0, 5.0))  # general: off-shell incoming, space-like p_b, massive outputs
    q = random_timelike(g, n, mass=(600.0, 900.0))
    return pa, q - pa, 91.0**2, 150.0**2


@pytest.mark.parametrize("case", ["massless-lab", "general"])
@pytest.mark.parametrize("mass", [0.0, 80.4])
def test_tchannel_density_inverse_and_range(case, mass):
    g = gen(8)
    pa, pb, s1, s2 = tchannel_setup(case, 40, g)
    tc = TChannel(mass=mass, nu=0.8)
    u = rand(g, 40, 2, lo=0.02, hi=0.98)

    def cm(v):
        k = v.shape[0] // 40
        a, b = pa.repeat_interleave(k, 0), pb.repeat_interleave(k, 0)
        k1, k2, _ = tc.forward(v, a, b, s1, s2)
        return boost_to_frame(torch.stack([k1, k2], 1), a + b)

    k1, k2, log_q = tc.forward(u, pa, pb, s1, s2)
    assert torch.allclose(k1 + k2, pa + pb, atol=1e-9)
    assert torch.allclose(kin.msq(k1), torch.full((40,), s1, dtype=F64), atol=1e-6)
    assert torch.allclose(kin.msq(k2), torch.full((40,), s2, dtype=F64), atol=1e-5)
    assert torch.allclose(log_q, log_q_numeric(cm, u), atol=1e-6)
    u2, log_q2 = tc.inverse(k1, pa, pb, s1, s2)
    assert torch.allclose(u2, u, atol=1e-10) and torch.allclose(log_q2, log_q, atol=1e-9)
    # u0 = 0, 1 give the extreme t values: p_a ∥ k1 (cosθ = 1) and antiparallel, from CM-frame kinematics
    q = pa + pb
    a_cm, k_ends = boost_to_frame(pa[:, None], q)[:, 0], []
    for u0 in (0.0, 1.0):
        k1e = tc.forward(torch.stack([torch.full((40,), u0, dtype=F64), u[:, 1]], 1), pa, pb, s1, s2)[0]
        k_ends.append(boost_to_frame(k1e[:, None], q)[:, 0])
    cos = [(k[:, 1:] * a_cm[:, 1:]).sum(-1) / k[:, 1:].norm(dim=-1) / a_cm[:, 1:].norm(dim=-1) for k in k_ends]
    assert torch.allclose(cos[0], torch.ones(40, dtype=F64), atol=1e-9)   # −t smallest: forward
    assert torch.allclose(cos[1], -torch.ones(40, dtype=F64), atol=1e-9)
    t_hi, t_lo = (kin.msq(pa - kin.boost_from_rest(k, q)) for k in k_ends)
    t = kin.msq(pa - k1)
    assert bool(((t >= t_lo - 1e-6 * t_lo.abs()) & (t <= t_hi + 1e-6 * t_lo.abs())).all())


def test_tchannel_volume():
    g = gen(9)
    pa, pb, s1, s2 = tchannel_setup("massless-lab", 20000, g)
    _, _, log_q = TChannel(mass=0.0, nu=0.8).forward(rand(g, 20000, 2), pa, pb, s1, s2)
    s = kin.msq(pa + pb)
    w = (-log_q).exp() / (torch.sqrt(kallen(s, s1, s2)) / (8 * math.pi * s))
    mean, err = mc(w)
    assert abs(mean - 1) < 4 * err and err < 0.02


def test_tchannel_log_power_needs_floor():
    g = gen(10)
    pa, pb, _, _ = tchannel_setup("massless-lab", 10, g)
    with pytest.raises(kin.PhaseSpaceError):
        TChannel(nu=1.0).forward(rand(g, 10, 2), pa, pb, 0.0, 0.0)
    u = rand(g, 10, 2)
    k1, k2, log_q = TChannel(nu=1.0, t_floor=1.0).forward(u, pa, pb, 0.0, 0.0)
    u2, log_q2 = TChannel(nu=1.0, t_floor=1.0).inverse(k1, pa, pb, 0.0, 0.0)
    assert torch.allclose(u2, u, atol=1e-10) and torch.allclose(log_q2, log_q, atol=1e-10)


# -- luminosity --------------------------------------------------------------------------------------------
LUMIS = {
    "log-tau": Luminosity(13000.0, 1e-4),
    "power": Luminosity(13000.0, 1e-3, 0.5, sampler=inv.PowerLaw(0.5)),
    "bw": Luminosity(13000.0, (60.0 / 13000) ** 2, sampler=inv.BreitWigner(91.188, 2.4952)),
}


@pytest.mark.parametrize("name", list(LUMIS))
def test_luminosity_density_and_inverse(name):
    lum, g = LUMIS[name], gen(11)
    u = rand(g, 300, 2, lo=0.01, hi=0.99)
    x, log_q = lum.forward(u)
    j = numerical_jacobian(lambda v: lum.forward(v)[0], u, h=1e-7)
    assert torch.allclose(log_q, -log_abs_det(j), atol=1e-6)
    tau = x[:, 0] * x[:, 1]
    assert bool(((tau >= lum.tau_min * (1 - 1e-12)) & (tau <= lum.tau_max * (1 + 1e-12)) & (x <= 1).all(-1)).all())
    u2, log_q2 = lum.inverse(x)
    assert torch.allclose(u2, u, atol=1e-10) and torch.allclose(log_q2, log_q, atol=1e-10)


def test_luminosity_area():
    """∫ dx1 dx2 θ(x1 x2 > τ_min) = 1 − τ_min + τ_min log τ_min."""
    tmin = 1e-3
    _, log_q = Luminosity(13000.0, tmin).forward(rand(gen(12), 20000, 2))
    mean, err = mc((-log_q).exp())
    exact = 1 - tmin + tmin * math.log(tmin)
    assert abs(mean - exact) < 4 * err and err < 0.01 * exact


def test_boost_to_lab_gives_parton_momenta():
    g = gen(13)
    x1, x2 = rand(g, 20, lo=0.01, hi=1), rand(g, 20, lo=0.01, hi=1)
    e = 6500.0 * torch.sqrt(x1 * x2)
    zero = torch.zeros_like(e)
    cm = torch.stack([torch.stack([e, zero, zero, e], -1), torch.stack([e, zero, zero, -e], -1)], 1)
    lab = boost_to_lab(cm, cm_rapidity(x1, x2))
    p1, p2 = parton_momenta(x1, x2, 13000.0)
    assert torch.allclose(lab, torch.stack([p1, p2], 1), rtol=1e-12, atol=1e-9)


# -- RAMBO -------------------------------------------------------------------------------------------------
RAMBO_CASES = [(2, None), (3, None), (4, None), (5, None), (2, [50.0, 70.0]), (3, [10.0, 20.0, 5.0]),
               (4, [173.0, 173.0, 0.0, 4.7])]


@pytest.mark.parametrize("n,masses", RAMBO_CASES)
def test_rambo_density_inverse_and_kinematics(n, masses):
    g = gen(14)
    r = Rambo(n, masses, sqrt_s=500.0)
    u = rand(g, 30, r.dims_in, lo=0.02, hi=0.98)
    p, log_q = r.forward(u)
    assert torch.allclose(log_q, log_q_numeric(lambda v: r.forward(v)[0], u), atol=1e-7)
    m2 = torch.tensor(masses or [0.0] * n, dtype=F64) ** 2
    assert torch.allclose(p.sum(1), torch.tensor([500.0, 0, 0, 0], dtype=F64).expand(30, 4), atol=1e-10)
    assert torch.allclose(kin.msq(p), m2.expand(30, n), atol=1e-9 * 500**2)
    assert bool((p[..., 0] > 0).all())
    u2, log_q2 = r.inverse(p)
    assert torch.allclose(u2, u, atol=1e-10) and torch.allclose(log_q2, log_q, atol=1e-10)
    # conditioned on a moving total momentum: same density, momenta in that frame, still invertible
    p_tot = random_timelike(g, 30, mass=(sum(masses or [0.0]) + 50.0, 700.0))
    pb, log_qb = r.forward(u, p_tot)
    assert torch.allclose(pb.sum(1), p_tot, atol=1e-9)
    assert torch.allclose(log_qb, r.forward(u, kin.mass(p_tot))[1], atol=1e-12)
    u3, log_q3 = r.inverse(pb)
    assert torch.allclose(u3, u, atol=1e-10) and torch.allclose(log_q3, log_qb, atol=1e-10)


def sequential_weights(u: torch.Tensor, sqrt_s: float, masses: list[float]) -> torch.Tensor:
    """Independent n-body generator: chain of two-body decays with uniform intermediate masses²;
    weight = 1/q from dΦ_k(Q) = dΦ₂(Q; p, Q') ds'/(2π) dΦ_{k−1}(Q')."""
    n, col = len(masses), 0
    q = torch.zeros(u.shape[0], 4, dtype=F64)
    q[:, 0] = sqrt_s
    log_w = torch.zeros(u.shape[0], dtype=F64)
    for i in range(n - 1):
        rest = masses[i + 1:]
        if len(rest) >= 2:
            lo, hi = sum(rest) ** 2, (kin.mass(q) - masses[i]) ** 2
            s_next = lo + u[:, col] * (hi - lo)
            log_w = log_w + torch.log(hi - lo) - math.log(2 * math.pi)
            col += 1
        else:
            s_next = torch.full_like(log_w, rest[0] ** 2)
        _, q, lq = decay(u[:, col:col + 2], q, masses[i] ** 2, s_next)
        log_w, col = log_w - lq, col + 2
    return log_w.exp()


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_massless_volume(n):
    s = 500.0**2
    _, log_q = Rambo(n).forward(rand(gen(15), 100, 3 * n - 4), 500.0)
    assert torch.allclose((-log_q).exp(), torch.full((100,), massless_volume(n, s), dtype=F64), rtol=1e-12)
    mean, err = mc(sequential_weights(rand(gen(16), 40000, 3 * n - 4), 500.0, [0.0] * n))
    assert abs(mean - massless_volume(n, s)) <= 4 * err + 1e-12 * mean and err < 0.03 * mean
    if n == 3:
        assert massless_volume(3, s) == pytest.approx(dalitz_volume(s, 0, 0, 0), rel=1e-12)


def test_massive_two_body_weight_is_exact():
    m1, m2, s = 50.0, 70.0, 500.0**2
    _, log_q = Rambo(2, [m1, m2]).forward(rand(gen(17), 100, 2), 500.0)
    exact = math.sqrt(kallen(s, m1**2, m2**2)) / (8 * math.pi * s)
    assert torch.allclose((-log_q).exp(), torch.full((100,), exact, dtype=F64), rtol=1e-12)


def test_massive_three_body_volume_against_dalitz():
    masses, sqrt_s = [173.0, 173.0, 91.188], 600.0
    _, log_q = Rambo(3, masses).forward(rand(gen(18), 40000, 5), sqrt_s)
    mean, err = mc((-log_q).exp())
    exact = dalitz_volume(sqrt_s**2, *masses)
    assert abs(mean - exact) < 4 * err and err < 0.01 * exact


def test_massive_four_body_volume_against_sequential_decays():
    masses, sqrt_s = [173.0, 173.0, 0.0, 4.7], 800.0
    a, ea = mc((-Rambo(4, masses).forward(rand(gen(19), 40000, 8), sqrt_s)[1]).exp())
    b, eb = mc(sequential_weights(rand(gen(20), 40000, 8), sqrt_s, masses))
    assert abs(a - b) < 4 * math.hypot(ea, eb) and ea < 0.02 * a and eb < 0.02 * b


def test_rambo_bad_input():
    with pytest.raises(kin.PhaseSpaceError):
        Rambo(3, [100.0, 100.0, 100.0]).forward(rand(gen(21), 5, 5), 250.0)
    with pytest.raises(kin.PhaseSpaceError):
        Rambo(3).forward(rand(gen(21), 5, 4), 250.0)
    with pytest.raises(kin.PhaseSpaceError):
        Rambo(3).forward(rand(gen(21), 5, 5))
    with pytest.raises(kin.PhaseSpaceError):
        Rambo(1)


# -- full collisions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("final", ["tt", "rambo3"])
def test_collision_density_and_inverse(final):
    g = gen(22)
    fs = TwoBody(173.0, 173.0) if final == "tt" else Rambo(3, [0.0, 0.0, 91.188])
    col = Collision(fs, 13000.0, Luminosity(13000.0, (400.0 / 13000) ** 2, sampler=inv.PowerLaw(0.8)))
    u = rand(g, 30, col.dims_in, lo=0.02, hi=0.98)
    p, log_q = col.forward(u)
    assert torch.allclose(p[:, :2].sum(1), p[:, 2:].sum(1), atol=1e-8)
    assert torch.allclose(kin.msq(p[:, :2]), torch.zeros(30, 2, dtype=F64))
    assert bool((p[:, 0, 3] > 0).all() and (p[:, 1, 3] < 0).all())

    def coords(v):
        q = col.forward(v)[0]
        x = q[:, :2, 0] / 6500.0
        return torch.cat([x, cm_coordinates(boost_to_frame(q[:, 2:], q[:, 2:].sum(1)))], 1)

    j = numerical_jacobian(coords, u, h=1e-7, periodic=[3])
    ref = -log_abs_det(j) - log_dphi_dc(boost_to_frame(p[:, 2:], p[:, 2:].sum(1)))
    assert torch.allclose(log_q, ref, atol=1e-6)
    u2, log_q2 = col.inverse(p)
    assert torch.allclose(u2, u, atol=1e-9) and torch.allclose(log_q2, log_q, atol=1e-9)


def test_collision_hadronic_volume_and_fixed_energy():
    tmin = 1e-2
    col = Collision(TwoBody(), 1000.0, Luminosity(1000.0, tmin))
    mean, err = mc((-col.forward(rand(gen(23), 20000, 4))[1]).exp())
    exact = (1 - tmin + tmin * math.log(tmin)) / (8 * math.pi)  # ∫dx1dx2 Φ₂, Φ₂ = 1/(8π) massless
    assert abs(mean - exact) < 4 * err and err < 0.02 * exact
    ee = Collision(Rambo(4), 500.0)
    u = rand(gen(24), 10, 8)
    p, log_q = ee.forward(u)
    assert torch.allclose(p[:, 0], torch.tensor([250.0, 0, 0, 250.0], dtype=F64).expand(10, 4))
    assert torch.allclose((-log_q).exp(), torch.full((10,), massless_volume(4, 500.0**2), dtype=F64), rtol=1e-12)
    u2, _ = ee.inverse(p)
    assert torch.allclose(u2, u, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_blocks_run_on_cuda():
    g = gen(25)
    u = rand(g, 64, 10)
    col = Collision(Rambo(4, [173.0, 173.0, 0.0, 0.0]), 13000.0, Luminosity(13000.0, (400.0 / 13000) ** 2))
    p, log_q = col.forward(u)
    pc, log_qc = col.forward(u.cuda())
    assert pc.device.type == "cuda" and torch.allclose(pc.cpu(), p, atol=1e-8) and torch.allclose(log_qc.cpu(), log_q)
    uc, _ = col.inverse(pc)
    assert torch.allclose(uc.cpu(), u, atol=1e-9)
    pa, pb = pc[:, 0], pc[:, 1]
    k1, k2, lq = TChannel(mass=80.4).forward(u[:, :2].cuda(), pa, pb, 0.0, 173.0**2)
    assert k1.device.type == "cuda"
    ut, _ = TChannel(mass=80.4).inverse(k1, pa, pb, 0.0, 173.0**2)
    assert torch.allclose(ut.cpu(), u[:, :2], atol=1e-9)
