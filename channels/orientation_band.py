"""The event's orientation to the beam drawn only where every cut leg keeps its pT and |η| cuts and every
close pair can keep its ΔR cut.

An s-channel channel builds its final state as a body whose shape (invariant masses, decay angles relative to
each other, partonic-frame energies) does not fix where the beam axis lies in it: three angles, the beam direction
n̂ in the body (two) and a turn about the beam (one), are uniform (Haar measure).  The pT and |η| cuts of a leg i
are conditions on n̂ alone at fixed shape:

    pT_i = |p⃗_i| sin∠(n̂, p̂_i) ≥ pT_min   and   |η_i| ≤ η_max   ⇔   |n̂·p̂_i| ≤ c_i,
    c_i = min(√(1 − (pT_min/|p⃗_i|)²), tanh η_max)                (|p⃗_i|, p̂_i in the partonic rest frame),

two polar caps around ±p̂_i that n̂ must avoid (hadronic: |η| ≤ η_max + |y_boost| of a massless leg, a superset,
since η is additive under the boost along the beam).  Soft jets at the cut have large caps (E = 25 GeV and
pT > 20: c = 0.6, 40 % of the sphere lost), and no channel coordinate follows them: on e+ e- → u u~ g g with
pT > 20 GeV a fifth of all points fail a pT cut this way.

A ΔR cut on a pair i, j (``pairs``) needs the beam *near* the pair when its opening angle ψ is small: on the
(η, φ) cylinder the metric is the sphere's divided by sin θ (θ the angle to the beam axis), so ΔR_ij is at most
the cylinder length ∫ ds / sin θ(s) of the great-circle arc from p̂_i to p̂_j.  With θ_m the angle between the
arc's midpoint m̂_ij and the nearer end of the beam axis, cos θ(s) = cos θ_m cos s + sin θ_m sin s cos β along the
arc (|s| ≤ ψ/2, β its angle to the meridian); 1/sin θ = (1 − cos² θ)^(−1/2) is convex in cos θ, so the pair s, −s
contributes most at |cos β| = 1: the arc along the meridian bounds every orientation,
ΔR_ij ≤ ln[tan((θ_m + ψ/2)/2) / tan((θ_m − ψ/2)/2)], which falls with θ_m, and ΔR_ij ≥ R needs

    |n̂·m̂_ij| ≥ e_ij = cos θ*,   sin θ* = sin(ψ/2) · coth(R/2)      (no condition where that exceeds 1),

(tan A / tan B = e^R ⇔ sin(A + B) / sin(A − B) = coth(R/2)).  It is necessary, so no event passing the cut is
lost, and nearly sharp for small ψ (the true region is sin θ_m ≲ ψ/R, whatever β).  At fixed energy it holds for
every pair (η from the direction); hadronic, for massless pairs (Δη boost invariant).

:class:`OrientationBand` is a bijection of the phase space onto the events whose beam direction avoids every cap,
acting on the orientation only (the shape and the turn about the beam are kept):

* body frame: ẑ_b along the axis of the condition that leaves the smallest solid angle f (a leg: f = c, a pair:
  f = 1 − e), x̂_b towards the leg with the largest component perpendicular to it — rules that depend on the
  shape only, so the frame turns with the event;
* n̂ = (cos θ, φ) in the body frame: cos θ = c₁ cos θ′ for a z-leg (its caps removed exactly), or
  cos θ = sign(cos θ′) (e₁ + (1 − e₁)|cos θ′|) for a z-pair (only its caps kept); φ uniformly on the arcs of the
  circle at that θ that meet the other conditions, walked counter-clockwise from φ = 0 (φ′ = 2π · the fraction of
  the arcs' length L(θ) before φ);
* density w.r.t. the solid angle, relative to the uniform one: dΩ′/dΩ = 2π / (f₁ L(θ)).  Where no arc is left at
  the drawn θ the point is flagged (q = 0 there, as for every point outside the support).

Used by :class:`~channels.channel.PhaseSpaceChannel` on the s-channel trees of three or more final-state legs, by
default at fixed energy only (the event from the channel's own map is turned: p = M p′ with M = B′ S(n̂′) S(n̂)ᵀ B′ᵀ, B′ the body frame of p′
and S(v) the rotation taking ẑ to v); its inverse turns p back and hands p′ to the channel's inverse.
Momenta (E, px, py, pz) in GeV, beams along ±z.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .kinematics import boost_z, rotation_to

TWO_PI = 2.0 * math.pi
TINY = 1e-300
MIN_ARC = 1e-12  # rad: a circle with less left (rounding of a fully covered one) counts as covered


class BodyFrame(NamedTuple):
    """An event seen from its body frame (all ``[n, …]``): ``y`` rapidity of the partonic frame, ``q`` the event
    there, ``c`` the bounds of the K conditions (cut legs first, then ΔR pairs), ``c_z`` the z-condition's,
    ``b`` the frame (columns x̂_b, ŷ_b, ẑ_b in the partonic frame), ``iz`` the z-condition among the K, ``d`` the
    conditions' axes (legs' directions, pairs' midpoints) and ``beam`` the beam direction n̂, both in body
    coordinates; ``f_z`` the solid-angle fraction the z-condition leaves, ``near_z`` whether it is a pair's."""
    y: Tensor
    q: Tensor
    c: Tensor
    c_z: Tensor
    b: Tensor
    iz: Tensor
    d: Tensor
    beam: Tensor
    f_z: Tensor
    near_z: Tensor


class OrientationBand:
    """Orientation of the final state restricted by the legs' pT / |η| cuts and the pairs' ΔR cuts (module
    docstring).

    ``legs``: positions of the cut legs in the event ``[n, 2 + n_out, 4]`` (incoming legs 0, 1 first);
    ``pt_min`` (GeV) and ``eta_max`` per cut leg (0 and inf: none); ``massless`` per cut leg (hadronic: only a
    massless leg's |η| cut bounds its partonic-frame direction); ``hadronic``: the partonic frame moves along z;
    ``pairs``: (leg i, leg j, R_min) of the pairs with a ΔR cut (the caller keeps only massless pairs hadronic).
    """

    def __init__(self, legs: Sequence[int], pt_min: Sequence[float], eta_max: Sequence[float],
                 massless: Sequence[bool], hadronic: bool, pairs: Sequence[tuple[int, int, float]] = ()):
        self.legs = [int(i) for i in legs]
        self.pt_min = [float(v) for v in pt_min]
        self.eta_max = [float(v) for v in eta_max]
        self.massless = [bool(v) for v in massless]
        self.hadronic = bool(hadronic)
        self.pairs = [(int(i), int(j), float(r)) for i, j, r in pairs if float(r) > 0.0]
        if not self.legs and not self.pairs:
            raise ValueError("an orientation band needs at least one cut leg or ΔR pair")
        self._must_be_near = torch.tensor([False] * len(self.legs) + [True] * len(self.pairs))

    def __repr__(self) -> str:
        return (f"OrientationBand(legs={self.legs}, pt_min={self.pt_min}, eta_max={self.eta_max}, "
                f"pairs={self.pairs})")

    # -- shared pieces ---------------------------------------------------------------------------
    def _rapidity(self, p: Tensor) -> Tensor:
        """Rapidity of the partonic frame along z (0 at fixed energy)."""
        if not self.hadronic:
            return torch.zeros_like(p[:, 0, 0])
        return 0.5 * torch.log(p[:, 0, 0].clamp_min(TINY) / p[:, 1, 0].clamp_min(TINY))

    def _caps(self, q: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(c ``[n, k]``, unit directions ``[n, k, 3]``) of the cut legs in the partonic frame ``q [n, legs, 4]``;
        c < 0: the leg cannot pass its pT cut at any orientation."""
        v = q[:, self.legs, 1:]
        pabs = v.norm(dim=-1)
        d = v / pabs.clamp_min(TINY).unsqueeze(-1)
        cols = []
        for j, (pt, eta, light) in enumerate(zip(self.pt_min, self.eta_max, self.massless)):
            c = torch.ones_like(pabs[:, j])
            if pt > 0.0:
                a = pt / pabs[:, j].clamp_min(TINY)
                c = torch.where(a <= 1.0, (1.0 - a * a).clamp_min(0.0).sqrt(), -torch.ones_like(a))
            if math.isfinite(eta) and (light or not self.hadronic):
                c = torch.minimum(c, torch.tanh(eta + y.abs()))
            cols.append(c)
        return torch.stack(cols, -1), d

    def _pair_caps(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """(e ``[n, P]``, unit midpoints ``[n, P, 3]``) of the ΔR pairs: ΔR_ij ≥ R needs |n̂·m̂_ij| ≥ e_ij,
        e = cos θ*, sin θ* = sin(ψ/2) coth(R/2) (0, no condition, where that exceeds 1)."""
        i = [a for a, _, _ in self.pairs]
        j = [b for _, b, _ in self.pairs]
        r_min = torch.tensor([r for _, _, r in self.pairs], dtype=q.dtype, device=q.device)
        vi, vj = q[:, i, 1:], q[:, j, 1:]
        di = vi / vi.norm(dim=-1, keepdim=True).clamp_min(TINY)
        dj = vj / vj.norm(dim=-1, keepdim=True).clamp_min(TINY)
        psi = torch.atan2(torch.cross(di, dj, dim=-1).norm(dim=-1), (di * dj).sum(-1))
        sin_reach = torch.sin(0.5 * psi) / torch.tanh(0.5 * r_min)
        e = (1.0 - sin_reach * sin_reach).clamp_min(0.0).sqrt()
        m = di + dj
        return e, m / m.norm(dim=-1, keepdim=True).clamp_min(TINY)

    def _conditions(self, q: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(bounds ``[n, K]``, axes ``[n, K, 3]``): the cut legs' |n̂·p̂_i| ≤ c_i, then the pairs' |n̂·m̂| ≥ e."""
        bounds, axes = [], []
        if self.legs:
            c, d = self._caps(q, y)
            bounds.append(c)
            axes.append(d)
        if self.pairs:
            e, m = self._pair_caps(q)
            bounds.append(e)
            axes.append(m)
        return torch.cat(bounds, -1), torch.cat(axes, 1)

    def _near(self, device: torch.device) -> Tensor:
        """``[K]``: which conditions keep the beam near their axis (pairs) rather than away from it (legs); kept on
        the device last asked for, so a batch costs no host-device copy."""
        if self._must_be_near.device != device:
            self._must_be_near = self._must_be_near.to(device)
        return self._must_be_near

    def _body_frame(self, q: Tensor, c: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B ``[n, 3, 3]`` with columns x̂_b, ŷ_b, ẑ_b in the partonic frame, index of the z-condition: the one
        leaving the smallest solid angle, that fraction).  Fractions: a leg c, a pair 1 − e (< 0: an impossible
        leg)."""
        f = torch.where(self._near(c.device), 1.0 - c, c)
        f_z, iz = f.min(-1)
        ez = d.gather(1, iz.view(-1, 1, 1).expand(-1, 1, 3)).squeeze(1)
        v = q[:, 2:, 1:]
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(TINY)
        perp = v - (v * ez.unsqueeze(1)).sum(-1, keepdim=True) * ez.unsqueeze(1)
        ix = perp.norm(dim=-1).argmax(-1)
        ex = perp.gather(1, ix.view(-1, 1, 1).expand(-1, 1, 3)).squeeze(1)
        ex = ex / ex.norm(dim=-1, keepdim=True).clamp_min(TINY)
        ey = torch.cross(ez, ex, dim=-1)
        return torch.stack([ex, ey, ez], dim=-1), iz, f_z

    def _gaps(self, cos_theta: Tensor, c: Tensor, d_body: Tensor, iz: Tensor) -> tuple[Tensor, Tensor]:
        """(starts, lengths) ``[n, m]`` of the arcs of the circle cos θ = const of n̂ (body frame) that meet every
        other condition, as ordered disjoint intervals of [0, 2π) (some empty)."""
        n, k = c.shape
        if k == 1:
            return torch.zeros_like(cos_theta).unsqueeze(-1), torch.full_like(cos_theta, TWO_PI).unsqueeze(-1)
        r = (1.0 - cos_theta * cos_theta).clamp_min(0.0).sqrt().unsqueeze(-1)
        ct = cos_theta.unsqueeze(-1)
        a = d_body[..., 2]
        b = d_body[..., :2].norm(dim=-1)
        phi_j = torch.atan2(d_body[..., 1], d_body[..., 0])
        den = (r * b).clamp_min(TINY)
        # n̂·axis = ct a + r b cos(φ − φ_j) crosses +c at |φ − φ_j| = w1 and −c at |φ − φ_j| = w2 ≥ w1
        w1 = torch.acos(((c - ct * a) / den).clamp(-1.0, 1.0))
        w2 = torch.acos(((-c - ct * a) / den).clamp(-1.0, 1.0))
        near = self._near(c.device).expand_as(c)
        # a leg (|n̂·p̂| ≤ c) forbids |φ − φ_j| < w1 and |φ − φ_j − π| < π − w2; a pair (|n̂·m̂| ≥ e) forbids
        # w1 < |φ − φ_j| < w2, two arcs centred at φ_j ± (w1 + w2)/2
        mid = 0.5 * (w1 + w2)
        centres = (torch.where(near, phi_j + mid, phi_j), torch.where(near, phi_j - mid, phi_j + math.pi))
        halves = [torch.where(near, 0.5 * (w2 - w1), w1), torch.where(near, 0.5 * (w2 - w1), math.pi - w2)]
        # the z-condition's own cap is the θ range: no arcs from it
        own = torch.nn.functional.one_hot(iz, k).bool()
        halves = [torch.where(own, torch.zeros_like(h), h) for h in halves]
        # an impossible leg (c < 0) forbids the whole circle
        halves[0] = torch.where(~near & (c < 0), torch.full_like(halves[0], math.pi), halves[0])
        lo_list, hi_list = [], []
        for center, half in zip(centres, halves):
            start = torch.remainder(center - half, TWO_PI)
            end = start + 2.0 * half
            lo_list += [start, torch.zeros_like(start)]
            hi_list += [end.clamp_max(TWO_PI), (end - TWO_PI).clamp_min(0.0)]
        lo = torch.cat(lo_list, -1)
        hi = torch.cat(hi_list, -1)
        lo, order = torch.sort(lo, dim=-1)
        hi = hi.gather(-1, order)
        covered = torch.cummax(hi, dim=-1).values                      # end of the union so far
        prev = torch.cat([torch.zeros_like(covered[:, :1]), covered], -1)  # [n, m+1]
        starts = prev
        ends = torch.cat([lo, torch.full_like(lo[:, :1], TWO_PI)], -1)
        return starts, (ends - starts).clamp_min(0.0)

    def frame(self, p: Tensor) -> BodyFrame:
        """The body frame of events ``p [n, legs, 4]`` and what the maps need of it."""
        y = self._rapidity(p)
        q = boost_z(p, -y) if self.hadronic else p
        c, d = self._conditions(q, y)
        bmat, iz, f_z = self._body_frame(q, c, d)
        c_z = c.gather(-1, iz.unsqueeze(-1)).squeeze(-1)
        d_body = (bmat.transpose(-1, -2).unsqueeze(1) @ d.unsqueeze(-1)).squeeze(-1)
        return BodyFrame(y, q, c, c_z, bmat, iz, d_body, bmat[:, 2, :],  # Bᵀ ẑ: the beam in the body frame
                         f_z, self._near(c.device)[iz])

    def _possible(self, c: Tensor) -> Tensor:
        """Events where every cut leg can pass its pT cut at some orientation (c > 0)."""
        return (self._near(c.device) | (c > 0)).all(-1)

    def _turn(self, p: Tensor, q: Tensor, y: Tensor, bmat: Tensor, n_from: Tensor, n_to: Tensor) -> Tensor:
        """The event with its beam direction in the body frame moved from ``n_from`` to ``n_to``."""
        m = bmat @ rotation_to(n_from) @ rotation_to(n_to).transpose(-1, -2) @ bmat.transpose(-1, -2)
        final = q[:, 2:].clone()
        final[..., 1:] = (m.unsqueeze(1) @ q[:, 2:, 1:].unsqueeze(-1)).squeeze(-1)
        out = p.clone()
        out[:, 2:] = boost_z(final, y) if self.hadronic else final
        return out

    @staticmethod
    def _log_rel(f_z: Tensor, length: Tensor) -> Tensor:
        return math.log(TWO_PI) - torch.log(f_z.clamp_min(TINY)) - torch.log(length.clamp_min(TINY))

    # -- maps ------------------------------------------------------------------------------------
    def forward(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Event ``p′`` (any orientation) → (p with the beam meeting every condition, log(dΩ′/dΩ), ok)."""
        y, q, c, c_z, bmat, iz, d_body, n_old, f_z, near_z = self.frame(p)
        t = n_old[:, 2].clamp(-1.0, 1.0)
        c_z = c_z.clamp(0.0, 1.0)
        # cos θ = c_z cos θ′ (a leg's caps left out) or sign(cos θ′)(e + (1 − e)|cos θ′|) (a pair's caps kept)
        cos_new = torch.where(near_z, torch.where(t < 0, -1.0, 1.0) * (c_z + (1.0 - c_z) * t.abs()),
                              c_z * t)
        u_phi = torch.remainder(torch.atan2(n_old[:, 1], n_old[:, 0]), TWO_PI) / TWO_PI
        starts, widths = self._gaps(cos_new, c, d_body, iz)
        cum = torch.cumsum(widths, -1)
        length = cum[:, -1]
        t = (u_phi * length).unsqueeze(-1)
        idx = torch.searchsorted(cum.contiguous(), t.contiguous()).clamp_max(widths.shape[-1] - 1)
        phi = (starts.gather(-1, idx) + t - (cum - widths).gather(-1, idx)).squeeze(-1)
        sin_new = (1.0 - cos_new * cos_new).clamp_min(0.0).sqrt()
        n_new = torch.stack([sin_new * phi.cos(), sin_new * phi.sin(), cos_new], -1)
        ok = self._possible(c) & (length > MIN_ARC)
        return self._turn(p, q, y, bmat, n_old, n_new), self._log_rel(f_z, length), ok

    def inverse(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Inverse of :meth:`forward`: (p′, log(dΩ′/dΩ), inside: the beam meets every condition)."""
        y, q, c, c_z, bmat, iz, d_body, n_new, f_z, near_z = self.frame(p)
        cos_new = n_new[:, 2].clamp(-1.0, 1.0)
        phi = torch.remainder(torch.atan2(n_new[:, 1], n_new[:, 0]), TWO_PI)
        starts, widths = self._gaps(cos_new, c, d_body, iz)
        length = widths.sum(-1)
        t = (torch.minimum(phi.unsqueeze(-1), starts + widths) - starts).clamp_min(0.0).sum(-1)
        u_phi = (t / length.clamp_min(TINY)).clamp(0.0, 1.0)
        c_z = c_z.clamp(0.0, 1.0)
        cos_old = torch.where(near_z,
                              torch.where(cos_new < 0, -1.0, 1.0) * (cos_new.abs() - c_z) / (1.0 - c_z).clamp_min(TINY),
                              cos_new / c_z.clamp_min(TINY)).clamp(-1.0, 1.0)
        sin_old = (1.0 - cos_old * cos_old).clamp_min(0.0).sqrt()
        phi_old = TWO_PI * u_phi
        n_old = torch.stack([sin_old * phi_old.cos(), sin_old * phi_old.sin(), cos_old], -1)
        dots = (d_body * n_new.unsqueeze(1)).sum(-1).abs()
        meets = torch.where(self._near(c.device), dots >= c * (1.0 - 1e-9) - 1e-12, dots <= c * (1.0 + 1e-9) + 1e-12)
        inside = self._possible(c) & (length > MIN_ARC) & meets.all(-1)
        return self._turn(p, q, y, bmat, n_new, n_old), self._log_rel(f_z, length), inside
