"""Tests of the orientation band (channels/orientation_band.py): the event's beam direction drawn outside every cut
leg's pT / |η| caps and inside every ΔR pair's necessary cap.  Fast, seeded, float64; shapes from RAMBO,
orientations set by hand."""
from __future__ import annotations

import math

import pytest
import torch
from test_phase_space import numerical_jacobian

from channels import Rambo
from channels import kinematics as kin
from channels.orientation_band import OrientationBand

F64 = torch.float64
SQRT_S = 500.0


def events(n: int, n_out: int, seed: int, e_min: float = 20.5) -> torch.Tensor:
    """RAMBO events at √s = 500 GeV (beams along ±z) whose legs all have E > ``e_min``."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(8 * n, 3 * n_out - 4, generator=g, dtype=F64)
    p_out, _ = Rambo(n_out, [0.0] * n_out).forward(u, SQRT_S)  # flat: isotropic orientation at every shape
    p_out = p_out[(p_out[..., 0] > e_min).all(1)][:n]
    beams = torch.tensor([[SQRT_S / 2, 0, 0, SQRT_S / 2], [SQRT_S / 2, 0, 0, -SQRT_S / 2]], dtype=F64)
    return torch.cat([beams.expand(p_out.shape[0], 2, 4), p_out], 1)


def band(n_out: int, legs=None, pt=20.0, eta=math.inf, dr=0.0) -> OrientationBand:
    legs = list(range(2, n_out + 2)) if legs is None else legs
    pairs = [(i, j, dr) for i in range(2, n_out + 2) for j in range(i + 1, n_out + 2)] if dr > 0 else []
    return OrientationBand(legs, [pt] * len(legs), [eta] * len(legs), [True] * len(legs), False, pairs)


def passes(ob: OrientationBand, p: torch.Tensor, legs: bool = True) -> torch.Tensor:
    """The legs' pT / |η| cuts, and for the pairs the band's condition, spelled out independently: a pair of
    opening angle ψ whose midpoint is θ_m from the beam axis has at most the ΔR of the same pair along the
    meridian, Δη = ln[tan((θ_m + ψ/2)/2) / tan((θ_m − ψ/2)/2)] (∞ for θ_m ≤ ψ/2), which must reach R."""
    q = p[:, ob.legs]
    ok = torch.ones(p.shape[0], dtype=torch.bool)
    for j, (pt, eta) in enumerate(zip(ob.pt_min, ob.eta_max) if legs else []):
        ok &= kin.pt(q[:, j]) >= pt * (1 - 1e-9)
        if math.isfinite(eta):
            ok &= kin.eta(q[:, j]).abs() <= eta + 1e-9
    for i, j, r in ob.pairs:
        ok &= meridian_reaches(p, i, j, r)
    return ok


def meridian_reaches(p: torch.Tensor, i: int, j: int, r: float) -> torch.Tensor:
    """Whether legs i, j of ``p`` (beam along z, partonic frame) turned along the meridian through their midpoint
    reach ΔR = Δη ≥ r: ln[tan((θ_m + ψ/2)/2) / tan((θ_m − ψ/2)/2)] ≥ r (always for θ_m ≤ ψ/2)."""
    vi, vj = p[:, i, 1:], p[:, j, 1:]
    cos_psi = (vi * vj).sum(-1) / (vi.norm(dim=-1) * vj.norm(dim=-1))
    psi = torch.acos(cos_psi.clamp(-1, 1))
    mid = vi / vi.norm(dim=-1, keepdim=True) + vj / vj.norm(dim=-1, keepdim=True)
    to_axis = torch.acos((mid[:, 2].abs() / mid.norm(dim=-1)).clamp(max=1))
    lo = (to_axis - psi / 2).clamp_min(0.0)
    meridian = torch.log(torch.tan((to_axis + psi / 2) / 2) / torch.tan(lo / 2))
    return (lo == 0) | (meridian >= r * (1 - 1e-9))


def delta_r_passes(ob: OrientationBand, p: torch.Tensor) -> torch.Tensor:
    """The true ΔR cuts of the band's pairs (pseudorapidity, as madnis_py.cuts)."""
    ok = torch.ones(p.shape[0], dtype=torch.bool)
    for i, j, r in ob.pairs:
        ok &= kin.delta_r(p[:, i], p[:, j]) >= r
    return ok


@pytest.mark.parametrize("n_out, legs, eta, dr", [(4, None, math.inf, 0.0), (4, [2, 4], 2.0, 0.0), (3, None, 1.5, 0.0),
                                                  (5, None, math.inf, 0.0), (4, None, math.inf, 1.2),
                                                  (5, [2, 3], 2.0, 0.9), (3, [], math.inf, 1.5)])
def test_orientation_band_keeps_the_shape_passes_the_cuts_and_inverts(n_out, legs, eta, dr):
    """Every turned event keeps its shape (all invariants), its beams and its legs' energies, has every cut leg inside
    its pT / |η| cuts and every ΔR pair's beam inside the pair's cap, and turns back exactly; the inverse flags
    events outside."""
    ob = band(n_out, legs, eta=eta, dr=dr)
    p0 = events(400, n_out, 1)
    p, log_rel, ok = ob.forward(p0)
    assert float(ok.to(F64).mean()) > (0.9 if dr == 0 else 0.8)
    if dr > 0:  # both kinds of z-condition occur
        fr = ob.frame(p0)
        near_z = fr.iz >= len(ob.legs)
        assert 0.05 < float(near_z.to(F64).mean()) <= 1.0 and (not ob.legs or bool((~near_z).any()))
    p, p0, log_rel = p[ok], p0[ok], log_rel[ok]
    assert torch.equal(p[:, :2], p0[:, :2])
    assert torch.allclose(p[..., 0], p0[..., 0], rtol=1e-14, atol=0)
    dots = kin.mdot(p[:, 2:, None], p[:, None, 2:])
    dots0 = kin.mdot(p0[:, 2:, None], p0[:, None, 2:])
    assert torch.allclose(dots, dots0, rtol=1e-11, atol=1e-8)
    assert bool(passes(ob, p).all())
    assert bool((log_rel >= -1e-12).all())  # a band only concentrates: dΩ′/dΩ ≥ 1
    back, log_rel2, inside = ob.inverse(p)
    assert bool(inside.all())
    assert torch.allclose(back, p0, rtol=0, atol=1e-9 * SQRT_S), (back - p0).abs().max()
    assert torch.allclose(log_rel2, log_rel, rtol=0, atol=1e-9)
    fail = ~passes(ob, p0)
    assert bool(fail.any()) and not bool(ob.inverse(p0[fail])[2].any())


@pytest.mark.parametrize("dr", [0.0, 1.2])
def test_orientation_band_density_is_the_numerical_jacobian(dr):
    """On fixed shapes, the map of the beam direction in the body frame n̂′ → n̂ (cos θ, φ) has the Jacobian
    dΩ/dΩ′ = exp(−log_rel), by central differences; the turn about the beam is kept."""
    ob = band(4, dr=dr)
    p0 = events(60 if dr else 30, 4, 2)
    bmat = ob.frame(p0).b
    body = (bmat.transpose(-1, -2).unsqueeze(1) @ p0[:, 2:, 1:].unsqueeze(-1)).squeeze(-1)  # shape only
    g = torch.Generator().manual_seed(3)
    ang = torch.stack([torch.rand(p0.shape[0], generator=g, dtype=F64) * 1.8 - 0.9,
                       torch.rand(p0.shape[0], generator=g, dtype=F64) * 6.0 + 0.1], -1)

    def event(a: torch.Tensor) -> torch.Tensor:
        s = (1 - a[:, 0] ** 2).sqrt()
        n_old = torch.stack([s * a[:, 1].cos(), s * a[:, 1].sin(), a[:, 0]], -1)
        rot = kin.rotation_to(n_old).transpose(-1, -2)  # body frame B′ = S(n̂′)ᵀ: beam at n̂′, no turn
        rep = a.shape[0] // p0.shape[0]  # numerical_jacobian stacks the shifted copies of each point
        q = p0.repeat_interleave(rep, 0)
        q[:, 2:, 1:] = (rot.unsqueeze(1) @ body.repeat_interleave(rep, 0).unsqueeze(-1)).squeeze(-1)
        return q

    def beam_in_body(a: torch.Tensor) -> torch.Tensor:
        p, _, _ = ob.forward(event(a))
        n = ob.frame(p).beam
        return torch.stack([n[:, 2], torch.atan2(n[:, 1], n[:, 0])], -1)

    p, log_rel, ok = ob.forward(event(ang))
    assert float(ok.to(F64).mean()) > 0.8
    if dr:
        assert 0.2 < float((ob.frame(p).iz >= len(ob.legs))[ok].to(F64).mean()) < 0.9  # pairs as z-condition too
    jac = numerical_jacobian(beam_in_body, ang, h=1e-6, periodic=[1])
    det = torch.linalg.det(jac).abs().log()
    assert torch.allclose(det[ok], -log_rel[ok], rtol=0, atol=1e-6)
    fr = ob.frame(p)
    turn = fr.b @ kin.rotation_to(fr.beam)  # R_z(α) = B S(n̂)
    assert torch.allclose(turn, torch.eye(3, dtype=F64).expand_as(turn), atol=1e-10)


@pytest.mark.parametrize("dr", [0.0, 0.4, 1.2])
def test_orientation_band_volume_is_the_cut_solid_angle(dr):
    """Uniform orientations turned by the band: the mean of dΩ′/dΩ over its draws equals the fraction of
    orientations (n̂ uniform, by RAMBO's own isotropy) that meet its conditions, within 4σ, shape by shape averaged;
    the pairs' condition is necessary: every orientation that passes the true ΔR cuts meets it."""
    ob = band(4, dr=dr)
    p0 = events(40000, 4, 5)
    assert bool(passes(ob, p0, legs=False)[delta_r_passes(ob, p0)].all())
    assert bool(ob.inverse(p0)[2][delta_r_passes(ob, p0) & passes(ob, p0)].all())
    _, log_rel, ok = ob.forward(p0)
    w = torch.where(ok, (-log_rel).exp(), torch.zeros_like(log_rel))
    frac = passes(ob, p0).to(F64)
    diff = w - frac
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(diff.numel()), (w.mean(), frac.mean())
    assert 0.3 < float(frac.mean()) < 0.95


def test_orientation_band_hadronic_frame():
    """Hadronic: the band acts in the partonic frame, moving along z; pT passes, η of a massless leg is bounded by
    η_max + |y_boost| there, and the inverse is exact."""
    ob = OrientationBand([2, 3, 4], [20.0] * 3, [2.5] * 3, [True] * 3, True)
    p0 = events(200, 3, 7)
    p0 = kin.boost_z(p0, torch.linspace(-1.5, 1.5, p0.shape[0], dtype=F64))
    p, log_rel, ok = ob.forward(p0)
    p, p0, log_rel = p[ok], p0[ok], log_rel[ok]
    assert bool((kin.pt(p[:, 2:]) >= 20.0 * (1 - 1e-9)).all())
    back, log_rel2, inside = ob.inverse(p)
    assert bool(inside.all()) and torch.allclose(back, p0, rtol=0, atol=1e-8)
    assert torch.allclose(log_rel2, log_rel, atol=1e-9)


def test_delta_r_is_bounded_by_the_same_pair_along_the_meridian():
    """The bound behind the pairs' condition, on random pairs and beams: ΔR (pseudorapidity, φ) of two directions
    never exceeds Δη of the same pair (opening angle ψ, midpoint θ_m from the beam axis) turned along the meridian,
    ln[tan((θ_m + ψ/2)/2) / tan((θ_m − ψ/2)/2)], and comes close to it (the bound is sharp)."""
    g = torch.Generator().manual_seed(13)
    n = 200_000
    v = torch.randn(n, 2, 3, generator=g, dtype=F64)
    v[:, 1] = v[:, 0] + torch.rand(n, 1, generator=g, dtype=F64) ** 2 * 3.0 * v[:, 1]  # many close pairs
    d = v / v.norm(dim=-1, keepdim=True)
    p = torch.cat([torch.ones(n, 2, 1, dtype=F64), d], -1)
    dr = kin.delta_r(p[:, 0], p[:, 1])
    psi = torch.atan2(torch.cross(d[:, 0], d[:, 1], dim=-1).norm(dim=-1), (d[:, 0] * d[:, 1]).sum(-1))
    mid = d[:, 0] + d[:, 1]
    theta_m = torch.atan2(mid[:, :2].norm(dim=-1), mid[:, 2].abs())
    far = theta_m > psi / 2 + 1e-6
    bound = torch.log(torch.tan((theta_m + psi / 2) / 2) / torch.tan((theta_m - psi / 2) / 2))
    assert int(far.sum()) > n // 2
    assert bool((dr[far] <= bound[far] * (1 + 1e-9) + 1e-9).all()), float((dr - bound)[far].max())
    assert float((dr[far] / bound[far]).max()) > 0.999
    # the closed form of the band: ΔR ≥ R needs sin θ_m ≤ sin(ψ/2) coth(R/2)
    for r in (0.4, 1.0):
        need = (torch.sin(psi / 2) / math.tanh(r / 2) >= torch.sin(theta_m) * (1 - 1e-12)) | ~far
        assert bool(need[dr >= r].all())


def test_orientation_band_hadronic_pairs():
    """Hadronic with ΔR pairs (massless legs): the band acts in the partonic frame, where Δη and Δφ are those of the
    lab; every boosted event that passes pT and the lab ΔR cuts is inside the band, turned events invert exactly,
    and the turned events pass the true ΔR cut more often than the untouched ones."""
    pairs = [(2, 3, 1.0), (2, 4, 1.0), (3, 4, 1.0)]
    ob = OrientationBand([2, 3, 4], [20.0] * 3, [math.inf] * 3, [True] * 3, True, pairs)
    p0 = events(4000, 3, 8)
    p0 = kin.boost_z(p0, torch.linspace(-2.0, 2.0, p0.shape[0], dtype=F64))
    passing = passes(band(3), p0) & delta_r_passes(ob, p0)
    assert 0.05 < float(passing.to(F64).mean()) < 0.9
    assert bool(ob.inverse(p0)[2][passing].all())
    p, log_rel, ok = ob.forward(p0)
    p, p0, log_rel = p[ok], p0[ok], log_rel[ok]
    back, log_rel2, inside = ob.inverse(p)
    assert bool(inside.all()) and torch.allclose(back, p0, rtol=0, atol=1e-8)
    assert torch.allclose(log_rel2, log_rel, atol=1e-9)
    assert float(delta_r_passes(ob, p).to(F64).mean()) > float(passing.to(F64).mean()) + 0.1
