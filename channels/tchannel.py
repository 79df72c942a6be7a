"""The t-channel 2 → 2 block: p_a + p_b → k1 + k2 with t = (p_a − k1)² and φ as variables.

In the CM frame of Q = p_a + p_b (reached by a pure boost), k1 has polar angle θ about the
direction of p_a and azimuth φ about it (measured from the frame of :func:`rotation_to`),
t = A + B cosθ with

    A = m_a² + s1 − (s + m_a² − m_b²)(s + s1 − s2)/(2s),   B = λ^{1/2}(s, m_a², m_b²) λ^{1/2}(s, s1, s2)/(2s),

so t ∈ [t_lo, t_hi] = [A − B, A + B] (computed stably via t_lo t_hi = A² − B²). The variable
y = c − t is drawn by an :class:`InvariantSampler` (default :class:`PowerLaw` ν, i.e. density
∝ 1/(c − t)^ν) on [c − t_hi, c − t_lo], with c = max(M², t_hi + t_floor): normally c = M², the
propagator mass², so the density follows the propagator; c is raised only where t can come
within ``t_floor`` of M² (massless propagator at t_hi = 0, or t_hi > 0 for off-shell legs).
ν ≥ 1 with a massless propagator needs ``t_floor`` > 0 (e.g. a few GeV²). φ = 2πu₁. The density
w.r.t. dΦ₂(Q; k1, k2) is

    q = q_t(t) · 8π λ^{1/2}(s, m_a², m_b²),       since dΦ₂ = dt dφ / (16π² λ^{1/2}(s, m_a², m_b²)).

p_a, p_b may be off-shell (also space-like, as in t-channel chains); Q must be time-like.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .invariants import InvariantSampler, PowerLaw
from .kinematics import (PhaseSpaceError, angles, as_tensor, boost_from_rest, boost_to_rest, from_angles,
                         kallen, msq, rotate, rotation_to)


def t_range(s: Tensor, ma2: Tensor | float, mb2: Tensor | float, s1: Tensor | float,
            s2: Tensor | float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(t_lo, t_hi, A, B)`` for a + b → 1 + 2 at CM energy² ``s`` (all arguments squared masses)."""
    lam_ab, lam_12 = kallen(s, ma2, mb2), kallen(s, s1, s2)
    a = ma2 + s1 - (s + ma2 - mb2) * (s + s1 - s2) / (2.0 * s)
    b = (lam_ab.clamp_min(0.0) * lam_12.clamp_min(0.0)).sqrt() / (2.0 * s)
    prod = (ma2 - s1) * (mb2 - s2) + (ma2 - mb2 - s1 + s2) * (ma2 * s2 - mb2 * s1) / s
    neg = a <= 0
    far = torch.where(neg, a - b, a + b)  # the end without cancellation
    near = prod / torch.where(far == 0, torch.ones_like(far), far)
    t_lo = torch.where(neg, far, near)
    t_hi = torch.where(neg, near, far)
    return torch.minimum(t_lo, a), torch.maximum(t_hi, a), a, b


class TChannel:
    """Sample (t, φ) for p_a + p_b → k1 + k2 with k1² = s1, k2² = s2; exact density and inverse."""

    dims_in = 2

    def __init__(self, mass: float = 0.0, nu: float = 0.8, t_floor: float = 0.0,
                 sampler: InvariantSampler | None = None):
        if t_floor < 0:
            raise PhaseSpaceError(f"TChannel needs t_floor >= 0, got {t_floor}")
        self.m2, self.t_floor = float(mass) ** 2, float(t_floor)
        self.sampler = PowerLaw(nu) if sampler is None else sampler

    def _frame(self, p_a: Tensor, p_b: Tensor, s1, s2):
        q = p_a + p_b
        s = msq(q)
        if bool((s <= 0).any()):
            raise PhaseSpaceError("TChannel: p_a + p_b must be time-like")
        s1, s2 = as_tensor(s1, q).expand_as(s), as_tensor(s2, q).expand_as(s)
        ma2, mb2 = msq(p_a), msq(p_b)
        lam_12 = kallen(s, s1, s2)
        if bool((lam_12 <= 0).any()) or bool((s1 + s2 + 2.0 * (s1 * s2).clamp_min(0).sqrt() >= s).any()):
            raise PhaseSpaceError("TChannel: below threshold, need sqrt(s) > m1 + m2")
        root_s = s.sqrt()
        r = rotation_to(boost_to_rest(p_a, q, root_s)[..., 1:])
        t_lo, t_hi, a, b = t_range(s, ma2, mb2, s1, s2)
        log_jac = math.log(8.0 * math.pi) + 0.5 * torch.log(kallen(s, ma2, mb2))
        c = (t_hi + self.t_floor).clamp_min(self.m2)
        return q, s, root_s, s1, s2, r, c - t_hi, c - t_lo, a, b, log_jac, c

    def forward(self, u: Tensor, p_a: Tensor, p_b: Tensor, s1: Tensor | float,
                s2: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
        """``u [n, 2]``, incoming ``p_a, p_b [n, 4]``, outgoing masses² → ``(k1, k2, log q)`` w.r.t. dΦ₂."""
        if u.dim() != 2 or u.shape[1] != 2:
            raise PhaseSpaceError(f"TChannel needs u of shape (n, 2), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        q, s, root_s, s1, s2, r, y_lo, y_hi, a, b, log_jac, c = self._frame(p_a, p_b, s1, s2)
        y, log_qt = self.sampler.forward(u[:, 0], y_lo, y_hi)
        cos_theta = ((c - y - a) / b).clamp(-1.0, 1.0)
        k_abs = kallen(s, s1, s2).sqrt() / (2.0 * root_s)
        e1 = (s + s1 - s2) / (2.0 * root_s)
        k1_cm = rotate(from_angles(e1, k_abs, cos_theta, 2.0 * math.pi * u[:, 1]), r)
        k1 = boost_from_rest(k1_cm, q, root_s)
        return k1, q - k1, log_qt + log_jac

    def inverse(self, k1: Tensor, p_a: Tensor, p_b: Tensor, s1: Tensor | float | None = None,
                s2: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """``k1`` and incoming ``p_a, p_b`` → ``(u [n, 2], log q)``; masses² default to k1², (p_a + p_b − k1)²."""
        s1 = msq(k1) if s1 is None else s1
        s2 = msq(p_a + p_b - k1) if s2 is None else s2
        q, s, root_s, s1, s2, r, y_lo, y_hi, a, b, log_jac, c = self._frame(p_a, p_b, s1, s2)
        local = rotate(boost_to_rest(k1, q, root_s), r.transpose(-1, -2))
        cos_theta, phi = angles(local)
        t = a + b * cos_theta
        u0, log_qt = self.sampler.inverse((c - t).clamp(y_lo, y_hi), y_lo, y_hi)
        return torch.stack([u0, phi / (2.0 * math.pi)], dim=-1), log_qt + log_jac
