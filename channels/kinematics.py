"""Batched relativistic kinematics on four-momenta.

Four-momenta are tensors ``[..., 4]`` holding (E, px, py, pz) in GeV, metric (+,−,−,−).
Everything is elementwise over the leading dimensions and keeps the dtype and device
of its inputs (physics is meant to run in float64).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


class PhaseSpaceError(ValueError):
    """Bad input to a phase-space building block (shape, kinematic limits, parameters)."""


def as_tensor(x: Tensor | float, like: Tensor) -> Tensor:
    """``x`` as a float64 tensor on the device of ``like`` (scalars broadcast)."""
    return torch.as_tensor(x, dtype=torch.float64, device=like.device)


def mdot(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product a·b = a⁰b⁰ − a⃗·b⃗ over the last axis."""
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def msq(p: Tensor) -> Tensor:
    """Invariant mass squared p² (GeV²); negative for space-like p."""
    return mdot(p, p)


def mass(p: Tensor) -> Tensor:
    """Invariant mass sqrt(max(p², 0)) (GeV)."""
    return msq(p).clamp_min(0.0).sqrt()


def kallen(a: Tensor | float, b: Tensor | float, c: Tensor | float) -> Tensor:
    """Källén function λ(a,b,c) = a² + b² + c² − 2ab − 2ac − 2bc (arguments are squared masses)."""
    a, b, c = (torch.as_tensor(v, dtype=torch.float64) if not isinstance(v, Tensor) else v for v in (a, b, c))
    return (a - b - c) ** 2 - 4.0 * b * c


def two_body_momentum(s: Tensor, s1: Tensor | float, s2: Tensor | float) -> Tensor:
    """|p⃗| of either daughter in the rest frame of a system of mass² ``s`` decaying to masses² s1, s2."""
    return kallen(s, s1, s2).clamp_min(0.0).sqrt() / (2.0 * s.sqrt())


def boost_from_rest(p: Tensor, q: Tensor, m: Tensor | None = None) -> Tensor:
    """Boost ``p``, given in the rest frame of ``q``, to the frame where ``q`` has its momentum.

    A pure (rotation-free) Lorentz boost; ``q`` must be time-like with q⁰ > 0; its mass ``m``
    may be passed when known more precisely than sqrt(q²). Uses the stable form
    E' = (q⁰E + q⃗·p⃗)/m, p⃗' = p⃗ + q⃗ (E + E')/(q⁰ + m).
    """
    m = (msq(q).sqrt() if m is None else m).unsqueeze(-1)
    q0 = q[..., :1]
    qv = q[..., 1:]
    e = (q0 * p[..., :1] + (qv * p[..., 1:]).sum(-1, keepdim=True)) / m
    pv = p[..., 1:] + qv * (p[..., :1] + e) / (q0 + m)
    return torch.cat([e, pv], dim=-1)


def boost_to_rest(p: Tensor, q: Tensor, m: Tensor | None = None) -> Tensor:
    """Boost ``p`` into the rest frame of ``q`` (inverse of :func:`boost_from_rest`)."""
    return boost_from_rest(p, torch.cat([q[..., :1], -q[..., 1:]], dim=-1), m)


def boost(p: Tensor, beta: Tensor) -> Tensor:
    """Boost ``p`` by velocity ``beta`` [..., 3] (|β| < 1): a particle at rest gets velocity β."""
    gamma = 1.0 / (1.0 - (beta * beta).sum(-1, keepdim=True)).sqrt()
    return boost_from_rest(p, torch.cat([gamma, gamma * beta], dim=-1))


def boost_z(p: Tensor, y: Tensor | float) -> Tensor:
    """Longitudinal boost along +z with rapidity ``y`` (a particle at rest gets rapidity y)."""
    y = as_tensor(y, p)
    while y.dim() < p.dim() - 1:
        y = y.unsqueeze(-1)
    ch, sh = torch.cosh(y), torch.sinh(y)
    e = p[..., 0] * ch + p[..., 3] * sh
    pz = p[..., 3] * ch + p[..., 0] * sh
    return torch.stack([e, p[..., 1], p[..., 2], pz], dim=-1)


def rotation_to(n: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` R = R_z(φ) R_y(θ) taking ẑ to the direction of ``n`` [..., 3].

    (θ, φ) are the polar angles of ``n``; at n ∥ −ẑ, φ = 0. ``R.transpose(-1, -2)`` is the inverse.
    """
    theta = torch.atan2(n[..., :2].norm(dim=-1), n[..., 2])
    phi = torch.atan2(n[..., 1], n[..., 0])
    ct, st, cp, sp = theta.cos(), theta.sin(), phi.cos(), phi.sin()
    zero = torch.zeros_like(ct)
    rows = [
        torch.stack([cp * ct, -sp, cp * st], -1),
        torch.stack([sp * ct, cp, sp * st], -1),
        torch.stack([-st, zero, ct], -1),
    ]
    return torch.stack(rows, dim=-2)


def mirror_beams(p: Tensor) -> Tensor:
    """Events ``[n, legs, 4]`` with the incoming legs 0 ↔ 1 exchanged and (p_y, p_z) → (−p_y, −p_z) (a rotation by
    π about x): an involution that keeps every phase-space density; maps an event drawn with the beams exchanged
    to the process's beam orientation."""
    q = p[:, [1, 0] + list(range(2, p.shape[1]))].clone()
    q[..., 2:] = -q[..., 2:]
    return q


def rotate(p: Tensor, r: Tensor) -> Tensor:
    """Apply rotation matrices ``r`` [..., 3, 3] to the spatial part of four-momenta ``p``."""
    pv = (r @ p[..., 1:].unsqueeze(-1)).squeeze(-1)
    return torch.cat([p[..., :1], pv], dim=-1)


def from_angles(e: Tensor, pabs: Tensor, cos_theta: Tensor, phi: Tensor) -> Tensor:
    """Four-momentum (E, |p| sinθ cosφ, |p| sinθ sinφ, |p| cosθ)."""
    sin_theta = (1.0 - cos_theta * cos_theta).clamp_min(0.0).sqrt()
    return torch.stack([e, pabs * sin_theta * phi.cos(), pabs * sin_theta * phi.sin(), pabs * cos_theta], dim=-1)


def angles(p: Tensor) -> tuple[Tensor, Tensor]:
    """(cosθ, φ ∈ [0, 2π)) of the spatial part of ``p``."""
    cos_theta = (p[..., 3] / p[..., 1:].norm(dim=-1)).clamp(-1.0, 1.0)
    return cos_theta, torch.remainder(torch.atan2(p[..., 2], p[..., 1]), 2.0 * math.pi)


def pt(p: Tensor) -> Tensor:
    """Transverse momentum (GeV)."""
    return torch.hypot(p[..., 1], p[..., 2])


def rapidity(p: Tensor) -> Tensor:
    """Rapidity y = ½ log((E + pz)/(E − pz))."""
    return 0.5 * torch.log((p[..., 0] + p[..., 3]) / (p[..., 0] - p[..., 3]))


def eta(p: Tensor) -> Tensor:
    """Pseudorapidity η = asinh(pz/pT) (±inf along the beam)."""
    return torch.asinh(p[..., 3] / pt(p))


def phi(p: Tensor) -> Tensor:
    """Azimuth in (−π, π]."""
    return torch.atan2(p[..., 2], p[..., 1])


def delta_phi(a: Tensor, b: Tensor) -> Tensor:
    """|φ_a − φ_b| wrapped into [0, π]."""
    d = torch.remainder(phi(a) - phi(b), 2.0 * math.pi)
    return torch.minimum(d, 2.0 * math.pi - d)


def delta_r(a: Tensor, b: Tensor, use_rapidity: bool = False) -> Tensor:
    """ΔR = sqrt(Δη² + Δφ²) (Δy instead of Δη if ``use_rapidity``)."""
    f = rapidity if use_rapidity else eta
    return torch.hypot(f(a) - f(b), delta_phi(a, b))
