"""Tests of the per-topology phase-space channels (channels/channel.py); fast, seeded, float64.

Densities are checked without trusting the channel's own formulas, with the reference helpers of
tests/test_phase_space.py: the momenta of a channel are mapped to independent coordinates

    c = (x1, x2 [hadronic only], cosθ₁, φ₁, p⃗₂, …, p⃗_{n−1})   (final state boosted to its CM frame),

whose density for uniform u is 1/|det ∂c/∂u| (central finite differences, float64), and
dx1 dx2 dΦ_n = (dΦ_n/dc_CM) dc with dΦ_n/dc_CM from ``log_dphi_dc`` (a boost along z at fixed
x1, x2 has unit Jacobian). So log q_ref = −log|det ∂c/∂u| − log(dΦ_n/dc_CM). Volumes are compared
with the massless n-body formula and with RAMBO; channel densities with each other.
"""
from __future__ import annotations

import math

import pytest
import torch
from test_phase_space import (boost_to_frame, cm_coordinates, log_abs_det, log_dphi_dc, massless_volume,
                              numerical_jacobian)
from test_orientation_band import meridian_reaches

from channels import BreitWigner, PhaseSpaceChannel, PhaseSpaceError, Rambo, build_channels, propagator_prior
from channels import kinematics as kin
from matrix_elements.registry import matrix_element

F64 = torch.float64

# process, √S (GeV), hadronic, τ_min
CASES = {
    "ee-mumu": ("e+ e- > mu+ mu-", 500.0, False, 0.0),
    "ee-uug": ("e+ e- > u u~ g", 500.0, False, 0.0),
    "ee-uugg": ("e+ e- > u u~ g g", 500.0, False, 0.0),
    "ee-ttg": ("e+ e- > t t~ g", 1000.0, False, 0.0),
    "uu-ee": ("u u~ > e+ e-", 13000.0, True, (60.0 / 13000) ** 2),
    "gg-ttg": ("g g > t t~ g", 13000.0, True, 0.0),
    "gg-ttz": ("g g > t t~ z", 13000.0, True, 0.0),
    "ud-evgg": ("u d~ > e+ ve g g", 13000.0, True, (100.0 / 13000) ** 2),
    "ug-evdg": ("u g > e+ ve d g", 13000.0, True, (100.0 / 13000) ** 2),
    "ud-udg": ("u d > u d g", 13000.0, True, (100.0 / 13000) ** 2),
    "gg-ggg": ("g g > g g g", 13000.0, True, (100.0 / 13000) ** 2),   # 4-gluon vertices: s-, t-chain, contact
}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand(g, *shape, lo=0.0, hi=1.0):
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=F64)


def mc(w: torch.Tensor) -> tuple[float, float]:
    return float(w.mean()), float(w.std() / math.sqrt(w.numel()))


def inverse_density(log_q: torch.Tensor) -> torch.Tensor:
    """1/q, with 0 for unmappable points (log_q = −inf), as an integrand weights them; few such points."""
    assert float((log_q == -math.inf).to(F64).mean()) < 1e-3
    return torch.where(torch.isfinite(log_q), (-log_q).exp(), torch.zeros_like(log_q))


def channels_for(name: str, **kw) -> tuple[object, list[PhaseSpaceChannel]]:
    proc, sqrt_s, hadronic, tau_min = CASES[name]
    me = matrix_element(proc)
    return me, build_channels(me.topologies, sqrt_s, hadronic, tau_min, **kw)


def reference_log_q(ch: PhaseSpaceChannel, u: torch.Tensor, p: torch.Tensor, h: float = 1e-5,
                    richardson: bool = False) -> torch.Tensor:
    """log density w.r.t. dx1 dx2 dΦ_n (or dΦ_n) from the numerical Jacobian (module docstring); ``richardson``:
    the Jacobian extrapolated from steps h and h/2, (4 J(h/2) − J(h))/3, for maps with strong curvature."""
    def cm(q):
        return boost_to_frame(q[:, 2:], q[:, 2:].sum(1)) if ch.hadronic else q[:, 2:]

    def coords(v):
        q = ch.forward(v)[0]
        c = cm_coordinates(cm(q))
        return torch.cat([q[:, :2, 0] / (ch.sqrt_s / 2), c], 1) if ch.hadronic else c

    j = numerical_jacobian(coords, u, h=h, periodic=[3] if ch.hadronic else [1])
    if richardson:
        j = (4.0 * numerical_jacobian(coords, u, h=h / 2, periodic=[3] if ch.hadronic else [1]) - j) / 3.0
    return -log_abs_det(j) - log_dphi_dc(cm(p))


@pytest.mark.parametrize("name", list(CASES))
def test_every_channel_density_inverse_and_kinematics(name):
    me, chs = channels_for(name, fold_symmetric=False)
    sqrt_s = CASES[name][1]
    n_out = len(me.masses) - 2
    m2 = torch.tensor(me.masses, dtype=F64) ** 2
    assert sorted(d for ch in chs for d in ch.diagrams) == list(range(len(me.topologies)))
    for k, ch in enumerate(chs):
        assert ch.dims_in == 3 * n_out - 4 + (2 if ch.hadronic else 0)
        u = rand(gen(100 + k), 12, ch.dims_in, lo=0.02, hi=0.98)
        p, log_q = ch.forward(u)
        assert p.shape == (12, n_out + 2, 4) and p.dtype == F64
        assert bool(torch.isfinite(log_q).all() and torch.isfinite(p).all()), ch
        scale = p[:, :2, 0].sum(1, keepdim=True)
        assert bool(((p[:, :2].sum(1) - p[:, 2:].sum(1)).abs() <= 1e-12 * scale).all()), ch
        assert bool(((kin.msq(p) - m2).abs() <= 1e-10 * scale**2).all()), ch
        assert bool((p[..., 0] > 0).all())
        x = p[:, :2, 0] / (sqrt_s / 2)
        if ch.hadronic:
            assert bool(((x > 0) & (x <= 1)).all() and (p[:, 0, 3] > 0).all() and (p[:, 1, 3] < 0).all())
        else:
            assert torch.allclose(x, torch.ones_like(x), rtol=1e-15)
        ref = reference_log_q(ch, u, p)
        assert torch.allclose(log_q, ref, rtol=0, atol=2e-5), (ch, (log_q - ref).abs().max())
        u2, log_q2 = ch.inverse(p)
        assert torch.allclose(u2, u, rtol=0, atol=1e-8), (ch, (u2 - u).abs().max())
        assert torch.allclose(log_q2, log_q, rtol=0, atol=1e-8), ch


@pytest.mark.parametrize("name,n", [("ee-uug", 3), ("ee-uugg", 4)])
def test_massless_volume_every_channel(name, n):
    """∫ dΦ_n = mean of 1/q over each channel's own samples = (2π)^(4−3n)(π/2)^(n−1) s^(n−2)/((n−1)!(n−2)!)."""
    _, chs = channels_for(name, fold_symmetric=False)
    exact = massless_volume(n, 500.0**2)
    for k, ch in enumerate(chs):
        _, log_q = ch.forward(rand(gen(200 + k), 40000, ch.dims_in))
        mean, err = mc(inverse_density(log_q))
        assert abs(mean - exact) < 4 * err and err < 0.02 * exact, (ch, mean / exact, err / exact)


def test_massive_volume_against_rambo():
    """e+e- → t t̄ g at 1 TeV: every channel's ∫ dΦ₃ agrees with massive RAMBO's (exact density)."""
    _, chs = channels_for("ee-ttg", fold_symmetric=False)
    _, log_q_r = Rambo(3, [173.0, 173.0, 0.0]).forward(rand(gen(300), 20000, 5), 1000.0)
    ref, err_r = mc(inverse_density(log_q_r))
    for k, ch in enumerate(chs):
        mean, err = mc(inverse_density(ch.forward(rand(gen(301 + k), 20000, ch.dims_in))[1]))
        assert abs(mean - ref) < 4 * math.hypot(err, err_r) and err < 0.02 * mean, (ch, mean / ref)


def test_channel_densities_are_mutually_normalised():
    """g g → t t̄ Z: E_{p~q_i}[q_j(p)/q_i(p)] = ∫ q_j = 1 for every pair (i, j) (every channel covers the
    whole phase space; the massive final state keeps q_j/q_i bounded, so the variance is finite)."""
    _, chs = channels_for("gg-ttz", fold_symmetric=False)
    for i, ci in enumerate(chs):
        p, log_qi = ci.forward(rand(gen(400 + i), 10000, ci.dims_in))
        assert bool(torch.isfinite(log_qi).all())
        for j, cj in enumerate(chs):
            _, log_qj = cj.inverse(p)
            mean, err = mc((log_qj - log_qi).exp())
            if i == j:
                assert mean == pytest.approx(1.0, abs=1e-9)
            else:
                assert abs(mean - 1) < 4 * err and err < 0.15, (ci, cj, mean, err)


def test_channel_densities_agree_on_a_common_region():
    """e+e- → u ū g g (massless, no cuts: q_j/q_i has unbounded variance near collinear limits): on the
    region R where all pair masses exceed 30 GeV, ∫_R q_j estimated from the samples of every channel
    i (mean of 1_R q_j/q_i) agrees with the estimate from channel j's own samples."""
    _, chs = channels_for("ee-uugg", fold_symmetric=False)
    samples = []
    for i, ci in enumerate(chs):
        p, log_q = ci.forward(rand(gen(450 + i), 20000, ci.dims_in))
        pairs = torch.stack([kin.mass(p[:, a] + p[:, b]) for a in range(2, 6) for b in range(a + 1, 6)], 1)
        samples.append((p, log_q, (pairs > 30.0).all(1)))
    for j, cj in enumerate(chs):
        own_p, own_lq, own_in = samples[j]
        ref, ref_err = mc(own_in.to(F64))
        assert 0.05 < ref < 0.95
        for i, (p, log_qi, inside) in enumerate(samples):
            _, log_qj = cj.inverse(p)
            mean, err = mc(torch.where(inside, (log_qj - log_qi).exp(), torch.zeros_like(log_qi)))
            assert abs(mean - ref) < 4 * math.hypot(err, ref_err) and err < 0.1 * ref, (i, cj, mean, ref, err)


def test_invariant_min_restricts_tree_invariants():
    """With invariant_min, every tree invariant of a channel stays above its bound, the density is
    still exact, and the channel volume equals RAMBO's volume of the same region."""
    cut = 40.0
    me = matrix_element("e+ e- > u u~ g")
    chs = build_channels(me.topologies, 500.0, False, invariant_min=lambda legs: cut if len(legs) == 2 else 0.0,
                         fold_symmetric=False)
    pr, log_qr = Rambo(3).forward(rand(gen(500), 40000, 5), 500.0)
    for k, ch in enumerate(chs):
        pairs = [n.legs for n in ch.tree.nodes if len(n.legs) == 2]
        assert pairs
        u = rand(gen(501 + k), 40000, ch.dims_in)
        p, log_q = ch.forward(u)
        for legs in pairs:
            assert bool((kin.mass(p[:, sorted(legs)].sum(1)) >= cut * (1 - 1e-12)).all())
        ref = reference_log_q(ch, u[:12].clamp(0.02, 0.98), ch.forward(u[:12].clamp(0.02, 0.98))[0])
        assert torch.allclose(ch.forward(u[:12].clamp(0.02, 0.98))[1], ref, atol=2e-5)
        inside = torch.ones(40000, dtype=torch.bool)
        for legs in pairs:
            inside &= kin.mass(pr[:, [i - 2 for i in sorted(legs)]].sum(1)) >= cut
        a, ea = mc(inverse_density(log_q))
        b, eb = mc(inside.to(F64) * (-log_qr).exp())
        assert abs(a - b) < 4 * math.hypot(ea, eb) and ea < 0.02 * a, (ch, a / b)
        u2, _ = ch.inverse(p[:100])
        assert torch.allclose(u2, u[:100], atol=1e-8)


def test_grouping_and_drell_yan_luminosity():
    # fixed energy: the γ* and Z diagrams share the one channel (its invariant is s)
    _, chs = channels_for("ee-mumu")
    assert len(chs) == 1 and chs[0].diagrams == (0, 1) and chs[0].dims_in == 2
    # hadronic: γ* (1/ŝ^ν) and Z (Breit–Wigner) channels; the Z channel's ŝ peaks at MZ²
    _, chs = channels_for("uu-ee")
    assert [c.diagrams for c in chs] == [(0,), (1,)]
    z = chs[1]
    assert isinstance(z.luminosity.sampler, BreitWigner)
    p, _ = z.forward(rand(gen(600), 20000, 4))
    m = kin.mass(p[:, 2:].sum(1))
    mz, wz = z.topology.propagators[0].mass, z.topology.propagators[0].width
    assert float(((m - mz).abs() < 3 * wz).to(F64).mean()) > 0.75
    m_a = kin.mass(chs[0].forward(rand(gen(601), 20000, 4))[0][:, 2:].sum(1))
    assert float(((m_a - mz).abs() < 3 * wz).to(F64).mean()) < 0.05


def test_channel_counts_folding_and_limit():
    me = matrix_element("g g > t t~ g g")
    folded = build_channels(me.topologies, 13000.0, True)
    unfolded = build_channels(me.topologies, 13000.0, True, fold_symmetric=False)
    assert len(me.topologies) == 123 and len(unfolded) == 123 and len(folded) == 73
    assert sum(c.multiplicity for c in folded) == len(unfolded)
    assert {c.multiplicity for c in folded} == {1, 2}
    with pytest.raises(PhaseSpaceError, match="73 phase-space channels exceed max_channels=50; raise integrator.max_channels"):
        build_channels(me.topologies, 13000.0, True, max_channels=50)
    _, chs = channels_for("ee-uugg")
    assert len(chs) == 5 and sorted(c.multiplicity for c in chs) == [1, 1, 2, 2, 2]
    _, chs = channels_for("gg-ggg")
    assert sum(c.multiplicity for c in chs) == 25 and len(chs) == 8


def test_folded_orbit_partner_is_a_permuted_channel():
    """The gluon-swapped image of a folded channel has the density of the channel at swapped momenta."""
    me, folded = channels_for("ee-uugg")
    _, unfolded = channels_for("ee-uugg", fold_symmetric=False)
    rep = next(c for c in folded if c.multiplicity == 2)
    swap = [0, 1, 2, 3, 5, 4]
    p, log_q = rep.forward(rand(gen(700), 200, rep.dims_in))
    partners = [c for c in unfolded if c.diagrams != rep.diagrams]
    matches = [c for c in partners if torch.allclose(c.inverse(p[:, swap])[1], log_q, atol=1e-8)]
    assert len(matches) == 1


def test_propagator_prior():
    me, chs = channels_for("uu-ee")
    p, _ = chs[1].forward(rand(gen(800), 500, 4))
    alpha = propagator_prior(chs, p)
    s = kin.msq(p[:, 2:].sum(1))
    mz, wz = 91.188, me.topologies[1].propagators[0].width
    pa, pz = 1 / s**2, 1 / ((s - mz**2) ** 2 + mz**2 * wz**2)
    assert torch.allclose(alpha[:, 1], pz / (pa + pz), rtol=1e-10)
    assert torch.allclose(alpha.sum(1), torch.ones(500, dtype=F64), rtol=1e-12)
    # folded channels: the normalisation runs over all diagrams, so Σ_c α_c ≤ 1 at a point
    me, folded = channels_for("gg-ggg")
    _, unfolded = channels_for("gg-ggg", fold_symmetric=False)
    p, _ = unfolded[3].forward(rand(gen(801), 300, unfolded[3].dims_in))
    a_u, a_f = propagator_prior(unfolded, p), propagator_prior(folded, p)
    assert torch.allclose(a_u.sum(1), torch.ones(300, dtype=F64), rtol=1e-12)
    assert bool((a_f.sum(1) <= 1 + 1e-12).all() and (a_f >= 0).all())
    col = {c.diagrams: k for k, c in enumerate(unfolded)}
    assert torch.allclose(a_f, a_u[:, [col[c.diagrams] for c in folded]], rtol=1e-12)


def test_edge_points_are_flagged_not_fatal():
    """u on the boundary (massless invariant exactly 0) gives log_q = −inf and valid momenta, not an error."""
    _, chs = channels_for("ee-uugg", fold_symmetric=False)
    for ch in chs:
        u = rand(gen(900), 8, ch.dims_in)
        u[:4] = 0.0
        p, log_q = ch.forward(u)
        assert bool(torch.isfinite(p).all())
        assert torch.allclose(p[:, :2].sum(1), p[:, 2:].sum(1), atol=1e-9)
        assert bool(torch.isfinite(log_q[4:]).all())
        assert bool((log_q[:4] == -math.inf).all())
    # hadronic, massless, tau_min = 0: τ = 0 exactly at u = 0
    me = matrix_element("u d > u d g")
    for ch in build_channels(me.topologies, 13000.0, True, 0.0):
        u = rand(gen(901), 6, ch.dims_in)
        u[:2] = 0.0
        p, log_q = ch.forward(u)
        assert bool(torch.isfinite(p).all()) and bool((log_q[:2] == -math.inf).all())
        assert bool(torch.isfinite(log_q[2:]).all())
        assert torch.allclose(p[:, :2].sum(1), p[:, 2:].sum(1), atol=1e-8)
    # hadronic, tau_min = 0, τ so small that ŝ = E² − p_z² of the partons is lost to rounding: flagged points whose
    # incoming momenta the RAMBO fallback cannot use (it raised "sqrt(s) must exceed the sum of masses" here)
    me = matrix_element("u g > e+ ve d g")
    for ch in build_channels(me.topologies, 13000.0, True, 0.0):
        u = rand(gen(902), 400, ch.dims_in)
        u[:, 0] = 10.0 ** rand(gen(903), 400, lo=-6.0, hi=-3.0)
        p, log_q = ch.forward(u)
        assert bool(torch.isfinite(p).all()) and not bool(torch.isnan(log_q).any())
        assert torch.allclose(p[:, :2].sum(1), p[:, 2:].sum(1), rtol=1e-9, atol=1e-6)


def test_bad_input():
    me = matrix_element("e+ e- > t t~ g")
    with pytest.raises(PhaseSpaceError, match="threshold"):
        build_channels(me.topologies, 300.0, False)
    _, chs = channels_for("ee-uug")
    with pytest.raises(PhaseSpaceError):
        chs[0].forward(torch.rand(5, 4, dtype=F64))
    with pytest.raises(PhaseSpaceError):
        build_channels([], 500.0, False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_channels_on_cuda():
    _, chs = channels_for("gg-ttg")
    u = rand(gen(1000), 64, chs[0].dims_in, lo=0.02, hi=0.98)
    for ch in chs:
        p, log_q = ch.forward(u)
        pc, log_qc = ch.forward(u.cuda())
        assert pc.device.type == "cuda" and torch.allclose(pc.cpu(), p, atol=1e-8)
        assert torch.allclose(log_qc.cpu(), log_q, atol=1e-9)
        uc, _ = ch.inverse(pc)
        assert torch.allclose(uc.cpu(), u, atol=1e-8)
    alpha = propagator_prior(chs, pc)
    assert alpha.device.type == "cuda"


@pytest.mark.parametrize("fold", [True, False])
def test_single_diagram_enhanced_multichannel_integral(fold):
    """σ-like integral ∫ |M|² 1_R dΦ₄ for e+e- → u ū g g (R: all pair masses > 50 GeV) from the
    channels with single-diagram enhancement, Σ_c multiplicity_c E_{q_c}[α_c |M|² 1_R / q_c],
    α_c = Σ_{d∈c}|A_d|²/Σ_d|A_d|², agrees with flat RAMBO; channels built with invariant_min = 50 GeV."""
    from channels import Collision
    me = matrix_element("e+ e- > u u~ g g")
    cut = 50.0

    def inside(p):
        return torch.stack([kin.mass(p[:, a] + p[:, b]) for a in range(2, 6) for b in range(a + 1, 6)], 1).gt(cut).all(1)

    chs = build_channels(me.topologies, 500.0, False, invariant_min=lambda legs: cut, fold_symmetric=fold)
    total, var = 0.0, 0.0
    for k, ch in enumerate(chs):
        p, log_q = ch.forward(rand(gen(1100 + k), 6000, ch.dims_in))
        m2, a2 = me.evaluate_with_amplitudes2(p)
        alpha = a2[:, list(ch.diagrams)].sum(1) / a2.sum(1)
        mean, err = mc(ch.multiplicity * alpha * m2 * inside(p) * inverse_density(log_q))
        total, var = total + mean, var + err**2
    p, log_q = Collision(Rambo(4), 500.0).forward(rand(gen(1199), 40000, 8))
    ref, err_ref = mc(me(p) * inside(p) * (-log_q).exp())
    err = math.sqrt(var)
    assert abs(total - ref) < 4 * math.hypot(err, err_ref) and err < 0.05 * total, (total, err, ref, err_ref)


def test_inverse_outside_support_has_zero_density():
    """With invariant_min, a channel's density vanishes where one of its tree invariants is below the bound
    (inverse gives log_q = −inf there) and is finite and reproducible (forward ∘ inverse = id) elsewhere;
    likewise below τ_min for hadronic channels."""
    from channels import Collision
    cut = 40.0
    me = matrix_element("e+ e- > u u~ g")
    chs = build_channels(me.topologies, 500.0, False, invariant_min=lambda legs: cut, fold_symmetric=False)
    p, _ = Collision(Rambo(3), 500.0).forward(rand(gen(1200), 2000, 5))
    for ch in chs:
        legs = [sorted(n.legs) for n in ch.tree.nodes if len(n.legs) == 2]
        ok = torch.stack([kin.mass(p[:, lg].sum(1)) >= cut for lg in legs], 1).all(1)
        assert 0.1 < float(ok.to(F64).mean()) < 0.99
        u, log_q = ch.inverse(p)
        assert bool((log_q[~ok] == -math.inf).all()) and bool(torch.isfinite(log_q[ok]).all())
        assert bool(((u >= 0) & (u <= 1)).all())
        p2, log_q2 = ch.forward(u[ok])
        assert torch.allclose(p2, p[ok], atol=1e-8) and torch.allclose(log_q2, log_q[ok], atol=1e-8)
    me = matrix_element("u u~ > e+ e-")
    tau_min = (60.0 / 13000) ** 2
    chs = build_channels(me.topologies, 13000.0, True, tau_min)
    low = build_channels(me.topologies, 13000.0, True, tau_min / 4)
    p, _ = low[1].forward(rand(gen(1201), 2000, 4))
    below = p[:, 0, 0] * p[:, 1, 0] * (2 / 13000.0) ** 2 < tau_min
    assert 0.001 < float(below.to(F64).mean()) < 0.9
    for ch in chs:
        _, log_q = ch.inverse(p)
        assert bool((log_q[below] == -math.inf).all()) and bool(torch.isfinite(log_q[~below]).all())


def test_channels_pickle_with_lambda_cuts():
    import pickle
    me = matrix_element("u d~ > e+ ve g g")
    chs = build_channels(me.topologies, 13000.0, True, 1e-4, invariant_min=lambda legs: 10.0)
    copies = pickle.loads(pickle.dumps(chs))
    u = rand(gen(1300), 5, chs[0].dims_in)
    for a, b in zip(chs, copies):
        assert torch.equal(a.forward(u)[1], b.forward(u)[1]) and a.diagrams == b.diagrams


def test_drell_yan_luminosity_integral_against_quadrature():
    """∫dx1 dx2 θ(τ > τ_min) σ̂(x1 x2 S) for u ū → e+e- (no PDFs) from the γ* and Z channels with
    single-diagram enhancement, against ∫ dŝ/S log(S/ŝ) σ̂(ŝ) by Gauss–Legendre quadrature
    (σ̂ = Φ₂ ⟨|M|²⟩_angles / (2ŝ), angular average exact with 8 points; Breit–Wigner substitution
    around the Z)."""
    import numpy as np
    me = matrix_element("u u~ > e+ e-")
    big_s, tau_min = 13000.0**2, (60.0 / 13000) ** 2
    mz, wz = me.topologies[1].propagators[0].mass, me.topologies[1].propagators[0].width

    def sigma_hat(s_hat):
        c, wc = (torch.as_tensor(v, dtype=F64) for v in np.polynomial.legendre.leggauss(8))
        n = s_hat.shape[0]
        e = (s_hat.sqrt() / 2)[:, None].expand(n, 8)
        sn, cs = (1 - c**2).sqrt().expand(n, 8), c.expand(n, 8)
        zero = torch.zeros_like(e)
        p = torch.stack([torch.stack([e, zero, zero, e], -1), torch.stack([e, zero, zero, -e], -1),
                         torch.stack([e, e * sn, zero, e * cs], -1), torch.stack([e, -e * sn, zero, -e * cs], -1)], 2)
        m2 = me(p.reshape(-1, 4, 4)).reshape(n, 8)
        return (m2 * wc).sum(1) / 2 / (8 * math.pi) / (2 * s_hat)

    def gl(lo, hi, k=400):
        x, w = (torch.as_tensor(v, dtype=F64) for v in np.polynomial.legendre.leggauss(k))
        return lo + (hi - lo) * (x + 1) / 2, w * (hi - lo) / 2

    split = 200.0**2
    y, wy = gl(math.atan((tau_min * big_s - mz**2) / (mz * wz)), math.atan((split - mz**2) / (mz * wz)))
    s1 = mz**2 + mz * wz * torch.tan(y)
    part1 = (wy * mz * wz / torch.cos(y) ** 2 * torch.log(big_s / s1) * sigma_hat(s1)).sum() / big_s
    v, wv = gl(math.log(split), math.log(big_s))
    s2 = v.exp()
    part2 = (wv * s2 * torch.log(big_s / s2) * sigma_hat(s2)).sum() / big_s
    exact = float(part1 + part2)
    total, var = 0.0, 0.0
    for k, ch in enumerate(build_channels(me.topologies, 13000.0, True, tau_min)):
        p, log_q = ch.forward(rand(gen(1400 + k), 20000, ch.dims_in))
        m2, a2 = me.evaluate_with_amplitudes2(p)
        s_hat = kin.msq(p[:, :2].sum(1))
        mean, err = mc(a2[:, list(ch.diagrams)].sum(1) / a2.sum(1) * m2 / (2 * s_hat) * inverse_density(log_q))
        total, var = total + mean, var + err**2
    err = math.sqrt(var)
    assert abs(total - exact) < 4 * err and err < 0.01 * exact, (total, err, exact)


def _leg_cut(leg: int) -> tuple[float, float]:
    return 20.0, 2.5


def _pair_cut(i: int, j: int) -> float:
    return 0.4


@pytest.mark.parametrize("name", ["ug-evdg", "gg-ggg", "gg-ttg"])
def test_leg_cuts_first_t_step_density_and_inverse(name):
    """With ``leg_cuts`` the first t-channel angle is drawn on a cut-bounded range: density = numerical
    Jacobian and exact inverse still hold for every channel (hadronic: the bound uses the frame's rapidity)."""
    me, chs = channels_for(name, fold_symmetric=False, leg_cuts=_leg_cut)
    assert any(ch._root_cuts for ch in chs)
    for k, ch in enumerate(chs):
        if not ch._root_cuts:
            continue
        u = rand(gen(300 + k), 16, ch.dims_in, lo=0.02, hi=0.98)
        p, log_q = ch.forward(u)
        ok = torch.isfinite(log_q)  # q = 0 only where no angle passes (E₁ < pT_min at small ŝ)
        assert int(ok.sum()) >= 8, ch
        u, p, log_q = u[ok], p[ok], log_q[ok]
        ref = reference_log_q(ch, u, p)
        assert torch.allclose(log_q, ref, rtol=0, atol=2e-5), (ch, (log_q - ref).abs().max())
        u2, log_q2 = ch.inverse(p)
        assert torch.allclose(u2, u, rtol=0, atol=1e-8), (ch, (u2 - u).abs().max())
        assert torch.allclose(log_q2, log_q, rtol=0, atol=1e-8), ch


@pytest.mark.parametrize("process, n_bounded, n_second, n_swapped",
                         [("e+ e- > e+ ve mu- vm~", 4, 0, 0), ("e+ e- > mu+ mu- a", 4, 2, 0), ("e+ e- > z z a", 4, 0, 2)])
def test_leg_cuts_support_is_the_cut_region_at_fixed_energy(process, n_bounded, n_second, n_swapped):
    """e+ e- > e+ ve mu- vm~ (t-channel photon/Z/W off the e+ line), e+ e- > mu+ mu- a (one-step spines whose
    photon is the first emitted object k1 or the other one k2) and e+ e- > z z a (two-step spines; where the photon
    is emitted last the spine is drawn from the e- side, ``swap_beams``), pT > 20 GeV and |η| < 2.5 on every leg:
    at fixed energy the bound is exact, so every point of a bounded channel has its cut leg inside
    the cuts, points outside get q = 0 from the inverse, and the channel's volume (mean of 1/q over its own
    samples) equals the cut region's volume measured with the unbounded channel (mean of 1_cut/q), within 4σ."""
    me = matrix_element(process)
    free = build_channels(me.topologies, 500.0, False, fold_symmetric=False)
    cut = build_channels(me.topologies, 500.0, False, fold_symmetric=False, leg_cuts=_leg_cut)
    bounded = [k for k, ch in enumerate(cut) if ch._root_cuts]
    assert len(bounded) >= n_bounded
    assert sum(ch._root_cuts[0][0] == 1 for ch in cut if ch._root_cuts) >= n_second  # k2 bounded (one-step spine)
    assert sum(ch.swap_beams for ch in cut) >= n_swapped
    for k in bounded:
        ch, ch0 = cut[k], free[k]
        pos = ch._root_cuts[0][0]  # the cut leg: the root's first child k1 or, on a one-step spine, k2
        leg = next(iter(ch.tree.nodes[ch.tree.nodes[ch.tree.root].children[pos]].legs))

        def inside(p):
            q = p[:, leg]
            pt = q[:, 1].hypot(q[:, 2])
            eta = torch.asinh(q[:, 3] / pt)
            return (pt >= 20.0 * (1 - 1e-9)) & (eta.abs() <= 2.5 + 1e-9)

        p, log_q = ch.forward(rand(gen(400 + k), 40000, ch.dims_in))
        ok = torch.isfinite(log_q)  # q = 0 where E₁ < pT_min leaves no angle (those points fail the cuts anyway)
        assert bool(inside(p[ok]).all()), ch
        vol, err = mc(torch.where(ok, (-log_q).exp(), torch.zeros_like(log_q)))
        p0, log_q0 = ch0.forward(rand(gen(500 + k), 40000, ch.dims_in))
        vol0, err0 = mc(torch.where(inside(p0), inverse_density(log_q0), torch.zeros_like(log_q0)))
        assert abs(vol - vol0) < 4 * math.hypot(err, err0), (ch, vol / vol0, err / vol, err0 / vol0)
        out = ~inside(p0)
        assert bool(out.any()) and bool((ch.inverse(p0[out])[1] == -math.inf).all()), ch


def _band_region(ch: PhaseSpaceChannel, p: torch.Tensor, eta: bool = True) -> torch.Tensor:
    """Points whose every banded decay P → a b has E_a ≥ E_a,min and E_b ≥ E_b,min in the partonic frame,
    from the momenta alone (energies summed over each daughter's legs), and whose leaf daughters of the root
    with cuts (root-decay bound) or, with an orientation band, every leg with cuts passes them (pT; |η| too with
    ``eta``, exact at fixed energy only)."""
    q = p[:, :2].sum(1)
    e = kin.mdot(p[:, 2:], q.unsqueeze(1)) / kin.mass(q).unsqueeze(1)  # leg energies in the Q rest frame
    keep = torch.ones(p.shape[0], dtype=torch.bool)
    for leaf, pt_min, eta_max in ch._root_decay_cuts:
        leg = p[:, next(iter(ch.tree.nodes[leaf].legs))]  # topology leg numbers index p
        keep &= kin.pt(leg) >= pt_min * (1 - 1e-9)
        if eta:
            keep &= kin.eta(leg).abs() <= eta_max + 1e-9
    if ch._orient is not None:
        for leg, pt_min, eta_max in zip(ch._orient.legs, ch._orient.pt_min, ch._orient.eta_max):
            keep &= kin.pt(p[:, leg]) >= pt_min * (1 - 1e-9)
            if eta:
                keep &= kin.eta(p[:, leg]).abs() <= eta_max + 1e-9
        for i, j, r in ch._orient.pairs:  # ΔR ≥ r needs the same pair along the meridian to reach it
            keep &= meridian_reaches(p, i, j, r)
    for i, (ea, eb, _aligned) in ch._band.items():
        for child, e_min in zip(ch.tree.nodes[i].children, (ea, eb)):
            legs = [k - 2 for k in ch.tree.nodes[child].legs]
            keep &= e[:, legs].sum(1) >= e_min * (1 - 1e-9)
    return keep


@pytest.mark.parametrize("name, pairs", [("ee-uugg", False), ("ud-evgg", False), ("ug-evdg", False), ("gg-ttg", False),
                                         ("ee-uugg", True), ("gg-ttg", True)])
def test_energy_band_decays_density_and_inverse(name, pairs):
    """With pT cuts on the legs, decays below the root draw their angles inside the energy band (both daughters
    keep Σ √(m² + pT_min²) of their legs in the partonic frame): density = numerical Jacobian, exact inverse,
    every generated point inside the band; aligned (daughters of the root) and misaligned axes both occur.  The
    s-channel trees (3+ legs) turn the event so that every cut leg passes its pT (and, at fixed energy, |η|) cut
    (:mod:`channels.orientation_band`; hadronic only when asked for, as here) and, with ΔR cuts (``pairs``), lies
    near the axis of every close pair."""
    me, chs = channels_for(name, fold_symmetric=False, leg_cuts=_leg_cut, orientation_band=True,
                           pair_cuts=_pair_cut if pairs else None)
    banded = [ch for ch in chs if ch._band or ch._root_decay_cuts or ch._orient]
    assert banded and any(ch._band for ch in banded)
    assert any(ch._orient for ch in banded) == (name != "ud-evgg")  # its gluons all come off the quark lines
    if pairs:  # hadronic: only the massless pairs (g g > t t~ g has none)
        assert all(bool(ch._orient.pairs) == (name == "ee-uugg") for ch in banded if ch._orient)
    for k, ch in enumerate(banded):
        u = rand(gen(700 + k), 24, ch.dims_in, lo=0.02, hi=0.98)
        p, log_q = ch.forward(u)
        ok = torch.isfinite(log_q)  # q = 0 where a band is empty (the parent too soft for its daughters' cuts)
        assert int(ok.sum()) >= 8, ch
        u, p, log_q = u[ok], p[ok], log_q[ok]
        assert bool(_band_region(ch, p, eta=not ch.hadronic).all()), ch
        # the arc lengths vary fast near the bands' edges (energy band) and the orientation band's arcs can be
        # narrow: the best of two steps (truncation vs rounding) and a Richardson extrapolation
        dev = torch.minimum((log_q - reference_log_q(ch, u, p, h=1e-5)).abs(),
                            (log_q - reference_log_q(ch, u, p, h=1e-6)).abs())
        dev = torch.minimum(dev, (log_q - reference_log_q(ch, u, p, h=1e-5, richardson=True)).abs())
        assert float(dev.max()) < 2e-5, (ch, dev.max())
        u2, log_q2 = ch.inverse(p)
        assert torch.allclose(u2, u, rtol=0, atol=1e-8), (ch, (u2 - u).abs().max())
        assert torch.allclose(log_q2, log_q, rtol=0, atol=1e-8), ch


@pytest.mark.parametrize("orientation", [True, False, "pairs"])
def test_energy_band_support_is_the_band_region(orientation):
    """e+ e- > u u~ g g, pT > 20 GeV and |η| < 2.5 on every leg: each banded channel's volume (mean of 1/q over its
    own points) equals the band region's volume measured with the same channel without bands (mean of 1_band/q),
    within 4σ; points outside the region get q = 0 from the inverse, and no point passing the cuts is outside the
    support.  With the orientation band every leg passes its cuts; without it (``orientation_band=False``) the
    leaf daughters of the root bound the root decay's angle instead.  ``"pairs"``: the band with ΔR > 0.4 on every
    pair too (its condition on the beam is necessary: no point passing all cuts is lost)."""
    me = matrix_element("e+ e- > u u~ g g")
    free = build_channels(me.topologies, 500.0, False, fold_symmetric=False, leg_cuts=_leg_cut, energy_band=False,
                          orientation_band=False)
    cut = build_channels(me.topologies, 500.0, False, fold_symmetric=False, leg_cuts=_leg_cut,
                         orientation_band=bool(orientation), pair_cuts=_pair_cut if orientation == "pairs" else None)
    assert all(ch._band for ch in cut) and not any(ch._band or ch._root_decay_cuts or ch._orient for ch in free)
    if orientation:
        assert all(ch._orient is not None and not ch._root_decay_cuts for ch in cut)
    else:
        assert sum(bool(ch._root_decay_cuts) for ch in cut) == 6  # γ*/Z → q + (q̄ g g) and (q g g) + q̄
    for k, (ch, ch0) in enumerate(zip(cut, free)):
        p, log_q = ch.forward(rand(gen(800 + k), 40000, ch.dims_in))
        ok = torch.isfinite(log_q)
        vol, err = mc(torch.where(ok, (-log_q).exp(), torch.zeros_like(log_q)))
        p0, log_q0 = ch0.forward(rand(gen(900 + k), 40000, ch.dims_in))
        region = _band_region(ch, p0)
        vol0, err0 = mc(torch.where(region, inverse_density(log_q0), torch.zeros_like(log_q0)))
        assert abs(vol - vol0) < 4 * math.hypot(err, err0), (ch, vol / vol0, err / vol, err0 / vol0)
        assert err < 0.02 * vol
        back = ch.inverse(p0)[1]
        assert bool(region.any()) and bool((~region).any())
        assert bool((back[~region] == -math.inf).all()), ch
        assert bool(torch.isfinite(back[region]).all()), ch
        passing = (p0[:, 2:, 0] >= 20.0).all(1) & (kin.pt(p0[:, 2:]) >= 20.0).all(1) & (kin.eta(p0[:, 2:]).abs() <= 2.5).all(1)
        if orientation == "pairs":
            assert len(ch._orient.pairs) == 6
            passing &= torch.stack([kin.delta_r(p0[:, i], p0[:, j]) >= 0.4
                                    for i in range(2, 6) for j in range(i + 1, 6)], 1).all(1)
        assert bool(region[passing].all()), ch


def test_orientation_band_default_is_fixed_energy_only():
    """``orientation_band=None`` (default): e+ e- s-channel trees of 3+ legs get the band, hadronic ones keep the
    root-decay bound (their maps are those without the band, bit for bit), 2-leg final states never get it."""
    _, ee = channels_for("ee-uugg", fold_symmetric=False, leg_cuts=_leg_cut)
    assert all(ch._orient is not None for ch in ee)
    _, gg = channels_for("gg-ttg", fold_symmetric=False, leg_cuts=_leg_cut)
    _, gg_off = channels_for("gg-ttg", fold_symmetric=False, leg_cuts=_leg_cut, orientation_band=False)
    _, gg_on = channels_for("gg-ttg", fold_symmetric=False, leg_cuts=_leg_cut, orientation_band=True)
    assert not any(ch._orient for ch in gg) and any(ch._orient for ch in gg_on)
    u = rand(gen(11), 64, gg[0].dims_in)
    for ch, ch_off in zip(gg, gg_off):
        assert torch.equal(ch.forward(u)[0], ch_off.forward(u)[0])
    _, mumu = channels_for("ee-mumu", fold_symmetric=False, leg_cuts=_leg_cut, orientation_band=True)
    assert not any(ch._orient for ch in mumu) and any(ch._root_decay_cuts for ch in mumu)
