"""Parton luminosity: (τ, y) ↔ (x1, x2), and full collision events (incoming partons + final state).

τ = x1 x2 = ŝ/S and y = ½ log(x1/x2) (the rapidity of the partonic CM frame), so
x1 = √τ e^y, x2 = √τ e^−y and dx1 dx2 = dτ dy (unit Jacobian). ŝ = τS is drawn by an
:class:`InvariantSampler` on [τ_min S, τ_max S] (default ν = 1 power law: flat in log τ; a
:class:`BreitWigner` for a resonance), y uniformly in [½ log τ, −½ log τ]. The density w.r.t.
dx1 dx2 is

    q(x1, x2) = S q_ŝ(τS) / log(1/τ).

Beams are symmetric along ±z with energy √S/2 each; parton momenta are p1 = x1 P1, p2 = x2 P2.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .invariants import InvariantSampler, PowerLaw
from .kinematics import PhaseSpaceError, boost_z
from .mapping import Mapping


def parton_momenta(x1: Tensor, x2: Tensor, sqrt_s: float) -> tuple[Tensor, Tensor]:
    """Massless partons p1 = x1 (√S/2)(1, 0, 0, 1), p2 = x2 (√S/2)(1, 0, 0, −1), each ``[n, 4]``."""
    e = 0.5 * sqrt_s
    zero = torch.zeros_like(x1)
    p1 = torch.stack([x1 * e, zero, zero, x1 * e], dim=-1)
    p2 = torch.stack([x2 * e, zero, zero, -x2 * e], dim=-1)
    return p1, p2


def cm_rapidity(x1: Tensor, x2: Tensor) -> Tensor:
    """Rapidity y = ½ log(x1/x2) of the partonic CM frame in the lab."""
    return 0.5 * torch.log(x1 / x2)


def boost_to_lab(p_cm: Tensor, y: Tensor) -> Tensor:
    """Boost partonic-CM momenta ``[n, ..., 4]`` to the lab by the CM rapidity ``y [n]`` (along +z)."""
    return boost_z(p_cm, y)


def boost_to_cm(p_lab: Tensor, y: Tensor) -> Tensor:
    """Inverse of :func:`boost_to_lab`."""
    return boost_z(p_lab, -y)


class Luminosity(Mapping):
    """``u [n, 2]`` → ``x = (x1, x2) [n, 2]`` with exact density w.r.t. dx1 dx2."""

    dims_in = 2

    def __init__(self, sqrt_s: float, tau_min: float, tau_max: float = 1.0, sampler: InvariantSampler | None = None):
        # τ_min = 0 only with a sampler defined at ŝ = 0 (the default 1/τ is not)
        lowest = 0.0 if sampler is not None else math.ulp(0.0)
        if not lowest <= tau_min < tau_max <= 1.0:
            raise PhaseSpaceError(f"Luminosity needs {'0 <=' if sampler is not None else '0 <'} tau_min < tau_max "
                                  f"<= 1, got {tau_min}, {tau_max}")
        self.sqrt_s, self.s = float(sqrt_s), float(sqrt_s) ** 2
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.sampler = PowerLaw(1.0) if sampler is None else sampler

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        if u.dim() != 2 or u.shape[1] != 2:
            raise PhaseSpaceError(f"Luminosity needs u of shape (n, 2), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        s_hat, log_q = self.sampler.forward(u[:, 0], self.tau_min * self.s, self.tau_max * self.s)
        tau = s_hat / self.s
        log_inv_tau = -torch.log(tau)
        y = (u[:, 1] - 0.5) * log_inv_tau
        x = torch.stack([tau.sqrt() * y.exp(), tau.sqrt() * (-y).exp()], dim=-1)
        return x, log_q + math.log(self.s) - torch.log(log_inv_tau)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        tau = x[:, 0] * x[:, 1]
        u0, log_q = self.sampler.inverse(tau * self.s, self.tau_min * self.s, self.tau_max * self.s)
        log_inv_tau = -torch.log(tau)
        u1 = cm_rapidity(x[:, 0], x[:, 1]) / log_inv_tau + 0.5
        return torch.stack([u0, u1], dim=-1), log_q + math.log(self.s) - torch.log(log_inv_tau)


class Collision(Mapping):
    """Full events: ``u`` → momenta ``[n, 2 + n_out, 4]`` in the lab, incoming partons first.

    ``final_state`` is any final-state block (``forward(u, p_tot)``, ``inverse(p)``, ``dims_in``,
    e.g. :class:`~channels.rambo.Rambo`, :class:`~channels.two_body.TwoBody`) conditioned on
    p_tot = p1 + p2. With a ``luminosity`` the first two columns of ``u`` give (x1, x2) and q is
    the density w.r.t. dx1 dx2 dΦ_n; without one, x1 = x2 = 1 (fixed-energy collider) and q is
    w.r.t. dΦ_n. x1, x2 are recovered from the incoming momenta as 2E/√S.
    """

    def __init__(self, final_state, sqrt_s: float, luminosity: Luminosity | None = None):
        self.final_state, self.luminosity, self.sqrt_s = final_state, luminosity, float(sqrt_s)
        self.n_lumi = 0 if luminosity is None else 2
        self.dims_in = final_state.dims_in + self.n_lumi

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        if u.dim() != 2 or u.shape[1] != self.dims_in:
            raise PhaseSpaceError(f"Collision needs u of shape (n, {self.dims_in}), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        if self.luminosity is None:
            x = torch.ones(u.shape[0], 2, dtype=u.dtype, device=u.device)
            log_q = torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
        else:
            x, log_q = self.luminosity.forward(u[:, :2])
        p1, p2 = parton_momenta(x[:, 0], x[:, 1], self.sqrt_s)
        p_out, log_q_fs = self.final_state.forward(u[:, self.n_lumi:], p1 + p2)
        return torch.cat([p1.unsqueeze(1), p2.unsqueeze(1), p_out], dim=1), log_q + log_q_fs

    def inverse(self, p: Tensor) -> tuple[Tensor, Tensor]:
        u_fs, log_q = self.final_state.inverse(p[:, 2:])
        if self.luminosity is None:
            return u_fs, log_q
        x = p[:, :2, 0] * (2.0 / self.sqrt_s)
        u_l, log_q_l = self.luminosity.inverse(x)
        return torch.cat([u_l, u_fs], dim=1), log_q + log_q_l
