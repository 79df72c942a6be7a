"""Two-body phase space: a decay P → p1 p2 with (cosθ, φ) uniform, and the 2 → 2 final state.

Angles are those of p1 in the rest frame of P reached by a pure boost, measured from the
fixed z axis (the beam axis in the CM frame, since longitudinal boosts keep it). With
cosθ = 2u₀ − 1 and φ = 2πu₁ the density w.r.t. dΦ₂(P; p1, p2) is constant:

    dΦ₂ = λ^{1/2}(s, s1, s2) / (8π s) du₀ du₁,   q = 8π s / λ^{1/2}(s, s1, s2),

with dΦ₂ = (2π)⁴ δ⁴(P − p1 − p2) d³p1/((2π)³2E1) d³p2/((2π)³2E2) and s = P².
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .kinematics import (PhaseSpaceError, angles, as_tensor, boost_from_rest, boost_to_rest, from_angles,
                         kallen, msq)


def log_volume(s: Tensor, s1: Tensor | float, s2: Tensor | float) -> Tensor:
    """log Φ₂ = log(λ^{1/2}(s, s1, s2)/(8π s)), the two-body phase-space volume."""
    return 0.5 * torch.log(kallen(s, s1, s2)) - torch.log(8.0 * math.pi * s)


def decay(u: Tensor, p: Tensor, s1: Tensor | float, s2: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
    """``u [n, 2]``, parent ``p [n, 4]``, daughter masses² → ``(p1, p2, log q)`` w.r.t. dΦ₂."""
    if u.dim() != 2 or u.shape[1] != 2:
        raise PhaseSpaceError(f"two-body decay needs u of shape (n, 2), got {tuple(u.shape)}")
    u = u.to(torch.float64)
    s = msq(p)
    s1, s2 = as_tensor(s1, p), as_tensor(s2, p)
    lam = kallen(s, s1, s2)
    if bool((lam <= 0).any()) or bool((s <= 0).any()):
        raise PhaseSpaceError("two-body decay below threshold: need sqrt(s) > m1 + m2")
    root_s = s.sqrt()
    pabs = lam.sqrt() / (2.0 * root_s)
    e1 = (s + s1 - s2) / (2.0 * root_s)
    p1 = boost_from_rest(from_angles(e1, pabs, 2.0 * u[:, 0] - 1.0, 2.0 * math.pi * u[:, 1]), p)
    return p1, p - p1, -log_volume(s, s1, s2)


def decay_inverse(p1: Tensor, p: Tensor, s1: Tensor | float | None = None,
                  s2: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
    """Daughter ``p1`` and parent ``p`` → ``(u [n, 2], log q)``; masses² default to p1², (p − p1)²."""
    s1 = msq(p1) if s1 is None else s1
    s2 = msq(p - p1) if s2 is None else s2
    cos_theta, phi = angles(boost_to_rest(p1, p))
    u = torch.stack([(cos_theta + 1.0) / 2.0, phi / (2.0 * math.pi)], dim=-1)
    return u, -log_volume(msq(p), s1, s2)


class TwoBody:
    """2 → 2 (or 1 → 2) final state with fixed masses, conditioned on the total momentum.

    Final-state protocol: ``forward(u [n, 2], p_tot [n, 4] or √ŝ) -> (p [n, 2, 4], log q)`` and
    ``inverse(p) -> (u, log q)`` (p_tot = Σp); q is the density w.r.t. dΦ₂.
    """

    dims_in = 2
    n_out = 2

    def __init__(self, m1: float = 0.0, m2: float = 0.0):
        self.masses = (float(m1), float(m2))

    def forward(self, u: Tensor, p_tot: Tensor | float) -> tuple[Tensor, Tensor]:
        """``p_tot``: total momentum ``[n, 4]``, or √ŝ (``[n]`` or float) for the CM frame."""
        m1, m2 = self.masses
        p_tot = as_tensor(p_tot, u)
        if p_tot.dim() < 2:
            zero = torch.zeros(u.shape[0], dtype=torch.float64, device=u.device)
            p_tot = torch.stack([p_tot + zero, zero, zero, zero], dim=-1)
        p1, p2, log_q = decay(u, p_tot, m1 * m1, m2 * m2)
        return torch.stack([p1, p2], dim=1), log_q

    def inverse(self, p: Tensor) -> tuple[Tensor, Tensor]:
        m1, m2 = self.masses
        return decay_inverse(p[:, 0], p.sum(1), m1 * m1, m2 * m2)
