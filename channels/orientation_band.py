"""The event's orientation to the beam drawn only where every cut leg keeps its pT and |η| cuts.

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

:class:`OrientationBand` is a bijection of the phase space onto the events whose beam direction avoids every cap,
acting on the orientation only (the shape and the turn about the beam are kept):

* body frame: ẑ_b along the cut leg with the smallest c (the most constrained), x̂_b towards the leg with the
  largest component perpendicular to it — rules that depend on the shape only, so the frame turns with the event;
* n̂ = (cos θ, φ) in the body frame: cos θ = c₁ cos θ′ (the z-leg's cap removed exactly), φ uniformly on the arcs
  of the circle at that θ that avoid the other legs' caps, walked counter-clockwise from φ = 0 (φ′ = 2π · the
  fraction of the arcs' length L(θ) before φ);
* density w.r.t. the solid angle, relative to the uniform one: dΩ′/dΩ = 2π / (c₁ L(θ)).  Where no arc is left at
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


class BodyFrame(NamedTuple):
    """An event seen from its body frame (all ``[n, …]``): ``y`` rapidity of the partonic frame, ``q`` the event
    there, ``c`` the cut legs' cap bounds, ``c_z`` the z-leg's, ``b`` the frame (columns x̂_b, ŷ_b, ẑ_b in the
    partonic frame), ``iz`` the z-leg among the cut legs, ``d`` the cut legs' directions and ``beam`` the beam
    direction n̂, both in body coordinates."""
    y: Tensor
    q: Tensor
    c: Tensor
    c_z: Tensor
    b: Tensor
    iz: Tensor
    d: Tensor
    beam: Tensor


class OrientationBand:
    """Orientation of the final state restricted by the legs' pT / |η| cuts (module docstring).

    ``legs``: positions of the cut legs in the event ``[n, 2 + n_out, 4]`` (incoming legs 0, 1 first);
    ``pt_min`` (GeV) and ``eta_max`` per cut leg (0 and inf: none); ``massless`` per cut leg (hadronic: only a
    massless leg's |η| cut bounds its partonic-frame direction); ``hadronic``: the partonic frame moves along z.
    """

    def __init__(self, legs: Sequence[int], pt_min: Sequence[float], eta_max: Sequence[float],
                 massless: Sequence[bool], hadronic: bool):
        if not legs:
            raise ValueError("an orientation band needs at least one cut leg")
        self.legs = [int(i) for i in legs]
        self.pt_min = [float(v) for v in pt_min]
        self.eta_max = [float(v) for v in eta_max]
        self.massless = [bool(v) for v in massless]
        self.hadronic = bool(hadronic)

    def __repr__(self) -> str:
        return f"OrientationBand(legs={self.legs}, pt_min={self.pt_min}, eta_max={self.eta_max})"

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

    def _body_frame(self, q: Tensor, c: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        """(B ``[n, 3, 3]`` with columns x̂_b, ŷ_b, ẑ_b in the partonic frame, index of the z-leg among the cut legs)."""
        iz = c.argmin(-1)
        ez = d.gather(1, iz.view(-1, 1, 1).expand(-1, 1, 3)).squeeze(1)
        v = q[:, 2:, 1:]
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(TINY)
        perp = v - (v * ez.unsqueeze(1)).sum(-1, keepdim=True) * ez.unsqueeze(1)
        ix = perp.norm(dim=-1).argmax(-1)
        ex = perp.gather(1, ix.view(-1, 1, 1).expand(-1, 1, 3)).squeeze(1)
        ex = ex / ex.norm(dim=-1, keepdim=True).clamp_min(TINY)
        ey = torch.cross(ez, ex, dim=-1)
        return torch.stack([ex, ey, ez], dim=-1), iz

    def _gaps(self, cos_theta: Tensor, c: Tensor, d_body: Tensor, iz: Tensor) -> tuple[Tensor, Tensor]:
        """(starts, lengths) ``[n, m]`` of the arcs of the circle cos θ = const of n̂ (body frame) outside every
        other leg's caps, as ordered disjoint intervals of [0, 2π) (some empty)."""
        n, k = c.shape
        if k == 1:
            return torch.zeros_like(cos_theta).unsqueeze(-1), torch.full_like(cos_theta, TWO_PI).unsqueeze(-1)
        r = (1.0 - cos_theta * cos_theta).clamp_min(0.0).sqrt().unsqueeze(-1)
        ct = cos_theta.unsqueeze(-1)
        a = d_body[..., 2]
        b = d_body[..., :2].norm(dim=-1)
        phi_j = torch.atan2(d_body[..., 1], d_body[..., 0])
        den = (r * b).clamp_min(TINY)
        t_hi = ((c - ct * a) / den).clamp(-1.0, 1.0)  # cos(φ − φ_j) ≤ t_hi: n̂·p̂_j ≤ c_j
        t_lo = ((-c - ct * a) / den).clamp(-1.0, 1.0)  # cos(φ − φ_j) ≥ t_lo: n̂·p̂_j ≥ −c_j
        w_near = torch.acos(t_hi)                       # forbidden |φ − φ_j| < w_near
        w_far = math.pi - torch.acos(t_lo)              # forbidden |φ − φ_j − π| < w_far
        # the z-leg's own cap is the θ range: no arcs from it
        own = torch.nn.functional.one_hot(iz, k).bool()
        w_near = torch.where(own, torch.zeros_like(w_near), w_near)
        w_far = torch.where(own, torch.zeros_like(w_far), w_far)
        # an impossible leg (c < 0) forbids the whole circle
        w_near = torch.where(c < 0, torch.full_like(w_near, math.pi), w_near)
        lo_list, hi_list = [], []
        for center, half in ((phi_j, w_near), (phi_j + math.pi, w_far)):
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
        c, d = self._caps(q, y)
        bmat, iz = self._body_frame(q, c, d)
        c_z = c.gather(-1, iz.unsqueeze(-1)).squeeze(-1)
        d_body = (bmat.transpose(-1, -2).unsqueeze(1) @ d.unsqueeze(-1)).squeeze(-1)
        return BodyFrame(y, q, c, c_z, bmat, iz, d_body, bmat[:, 2, :])  # Bᵀ ẑ: the beam in the body frame

    def _turn(self, p: Tensor, q: Tensor, y: Tensor, bmat: Tensor, n_from: Tensor, n_to: Tensor) -> Tensor:
        """The event with its beam direction in the body frame moved from ``n_from`` to ``n_to``."""
        m = bmat @ rotation_to(n_from) @ rotation_to(n_to).transpose(-1, -2) @ bmat.transpose(-1, -2)
        final = q[:, 2:].clone()
        final[..., 1:] = (m.unsqueeze(1) @ q[:, 2:, 1:].unsqueeze(-1)).squeeze(-1)
        out = p.clone()
        out[:, 2:] = boost_z(final, y) if self.hadronic else final
        return out

    @staticmethod
    def _log_rel(c_z: Tensor, length: Tensor) -> Tensor:
        return math.log(TWO_PI) - torch.log(c_z.clamp_min(TINY)) - torch.log(length.clamp_min(TINY))

    # -- maps ------------------------------------------------------------------------------------
    def forward(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Event ``p′`` (any orientation) → (p with the beam outside every cap, log(dΩ′/dΩ), ok)."""
        y, q, c, c_z, bmat, iz, d_body, n_old = self.frame(p)
        cos_new = c_z.clamp_min(0.0) * n_old[:, 2].clamp(-1.0, 1.0)
        u_phi = torch.remainder(torch.atan2(n_old[:, 1], n_old[:, 0]), TWO_PI) / TWO_PI
        starts, widths = self._gaps(cos_new, c, d_body, iz)
        cum = torch.cumsum(widths, -1)
        length = cum[:, -1]
        t = (u_phi * length).unsqueeze(-1)
        idx = torch.searchsorted(cum.contiguous(), t.contiguous()).clamp_max(widths.shape[-1] - 1)
        phi = (starts.gather(-1, idx) + t - (cum - widths).gather(-1, idx)).squeeze(-1)
        sin_new = (1.0 - cos_new * cos_new).clamp_min(0.0).sqrt()
        n_new = torch.stack([sin_new * phi.cos(), sin_new * phi.sin(), cos_new], -1)
        ok = (c.min(-1).values > 0) & (length > 0)
        return self._turn(p, q, y, bmat, n_old, n_new), self._log_rel(c_z, length), ok

    def inverse(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Inverse of :meth:`forward`: (p′, log(dΩ′/dΩ), inside: every cut leg within its cap bound)."""
        y, q, c, c_z, bmat, iz, d_body, n_new = self.frame(p)
        cos_new = n_new[:, 2].clamp(-1.0, 1.0)
        phi = torch.remainder(torch.atan2(n_new[:, 1], n_new[:, 0]), TWO_PI)
        starts, widths = self._gaps(cos_new, c, d_body, iz)
        length = widths.sum(-1)
        t = (torch.minimum(phi.unsqueeze(-1), starts + widths) - starts).clamp_min(0.0).sum(-1)
        u_phi = (t / length.clamp_min(TINY)).clamp(0.0, 1.0)
        cos_old = (cos_new / c_z.clamp_min(TINY)).clamp(-1.0, 1.0)
        sin_old = (1.0 - cos_old * cos_old).clamp_min(0.0).sqrt()
        phi_old = TWO_PI * u_phi
        n_old = torch.stack([sin_old * phi_old.cos(), sin_old * phi_old.sin(), cos_old], -1)
        dots = (d_body * n_new.unsqueeze(1)).sum(-1).abs()
        inside = (c.min(-1).values > 0) & (length > 0) & (dots <= c * (1.0 + 1e-9) + 1e-12).all(-1)
        return self._turn(p, q, y, bmat, n_new, n_old), self._log_rel(c_z, length), inside
