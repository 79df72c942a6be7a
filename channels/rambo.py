"""Flat n-body phase space: RAMBO on diet (Plätzer, arXiv:1308.2922) with the massive
Kleiss–Stirling–Ellis rescaling (Comput. Phys. Commun. 40 (1986) 359).

Massless: 3n − 4 random numbers → n massless momenta whose density w.r.t. dΦ_n is the
constant 1/Φ_n, with the massless volume

    Φ_n(s) = (2π)^(4−3n) (π/2)^(n−1) s^(n−2) / ((n−1)! (n−2)!).

The construction is the recursion dΦ_k(Q) = dΦ₂(Q; p, Q') dM'²/(2π) dΦ_{k−1}(Q'): in the
rest frame of Q_{i−1} (mass M_{i−1}, reached by a pure boost) particle i gets (cosθ, φ)
uniform, and x = M_i²/M_{i−1}² has CDF F_k(x) = (k−1)x^{k−2} − (k−2)x^{k−1} for the k
particles in Q_{i−1}; the map is a bijection, so it has an inverse.

Massive: the massless momenta (CM frame) are rescaled, p⃗_i = ξ q⃗_i, E_i = (m_i² + ξ²|q⃗_i|²)^{1/2},
with ξ from Σ E_i = √s (vectorised Newton); the weight changes by
ξ^(2n−3) Π(|p⃗_i|/E_i) √s / Σ(|p⃗_i|²/E_i), so q = 1 / (Φ_n · that factor). Also invertible.

Layout of ``u [N, 3n−4]``: columns 0..n−3 are the mass variables of steps with k ≥ 3, then
(cosθ, φ) pairs of steps 1..n−1.

Conditioning on the total momentum: like every final-state block, ``forward(u, p_tot)``
takes the total momentum ``p_tot [N, 4]`` of the final state (e.g. p1 + p2 of the incoming
partons in the lab frame; momenta come out in that frame via a pure boost from the CM),
or just √s (``[N]`` tensor or float; momenta then in the CM frame), or nothing if
``sqrt_s`` was fixed at construction (then ``Rambo`` is a plain :class:`Mapping`).
``inverse(p)`` needs only the momenta: p_tot = Σ p.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from .kinematics import PhaseSpaceError, angles, as_tensor, boost_from_rest, boost_to_rest, from_angles, msq
from .mapping import Mapping


def log_massless_volume(n: int, s: Tensor | float) -> Tensor:
    """log Φ_n for n massless particles at total invariant mass² ``s`` (GeV^(2n−4))."""
    s = torch.as_tensor(s, dtype=torch.float64)
    return ((4 - 3 * n) * math.log(2 * math.pi) + (n - 1) * math.log(math.pi / 2)
            - math.lgamma(n) - math.lgamma(n - 1) + (n - 2) * torch.log(s))


def _mass_cdf(x: Tensor, k: int) -> Tensor:
    return (k - 1) * x ** (k - 2) - (k - 2) * x ** (k - 1)


def _solve_mass(r: Tensor, k: int, iterations: int = 62) -> Tensor:
    """x ∈ [0, 1] with F_k(x) = r, by vectorised bisection (F_k is increasing)."""
    lo, hi = torch.zeros_like(r), torch.ones_like(r)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = _mass_cdf(mid, k) < r
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


class Rambo(Mapping):
    """n-body phase space, flat for massless particles; exact density and inverse."""

    def __init__(self, n: int, masses: Sequence[float] | None = None, sqrt_s: float | None = None):
        if n < 2:
            raise PhaseSpaceError(f"Rambo needs n >= 2 particles, got {n}")
        masses = [0.0] * n if masses is None else [float(m) for m in masses]
        if len(masses) != n or any(m < 0 for m in masses):
            raise PhaseSpaceError(f"Rambo needs {n} non-negative masses, got {masses}")
        self.n, self.n_out, self.masses = n, n, masses
        self.massive = any(m > 0 for m in masses)
        self.dims_in = 3 * n - 4
        self.sqrt_s = sqrt_s

    # -- conditioning -----------------------------------------------------------------
    def _total(self, like: Tensor, p_tot: Tensor | float | None) -> tuple[Tensor | None, Tensor]:
        if p_tot is None:
            if self.sqrt_s is None:
                raise PhaseSpaceError("Rambo: give the total momentum or sqrt_s (none fixed at construction)")
            p_tot = self.sqrt_s
        p_tot = as_tensor(p_tot, like)
        if p_tot.dim() == 2 and p_tot.shape[-1] == 4:
            return p_tot, msq(p_tot).clamp_min(0.0).sqrt()
        return None, p_tot.expand(like.shape[0])

    def _check_energy(self, sqrt_s: Tensor) -> None:
        if bool((sqrt_s <= sum(self.masses)).any()):
            raise PhaseSpaceError(f"Rambo: sqrt(s) must exceed the sum of masses {sum(self.masses)} GeV")

    # -- forward ----------------------------------------------------------------------
    def forward(self, u: Tensor, p_tot: Tensor | float | None = None) -> tuple[Tensor, Tensor]:
        """``u [N, 3n−4]`` → ``(p [N, n, 4], log q)``; see the module docstring for ``p_tot``."""
        if u.dim() != 2 or u.shape[1] != self.dims_in:
            raise PhaseSpaceError(f"Rambo({self.n}) needs u of shape (N, {self.dims_in}), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        q_tot, sqrt_s = self._total(u, p_tot)
        self._check_energy(sqrt_s)
        p = self._massless(u, sqrt_s)
        log_q = -log_massless_volume(self.n, sqrt_s * sqrt_s)
        if self.massive:
            p, log_w = self._to_massive(p, sqrt_s)
            log_q = log_q - log_w
        if q_tot is not None:
            p = boost_from_rest(p, q_tot.unsqueeze(1), sqrt_s.unsqueeze(1))
        return p, log_q

    def _massless(self, u: Tensor, sqrt_s: Tensor) -> Tensor:
        n = self.n
        zero = torch.zeros_like(sqrt_s)
        big_m = sqrt_s
        big_q = torch.stack([sqrt_s, zero, zero, zero], dim=-1)
        out = []
        for i in range(n - 1):
            k = n - i
            m_next = big_m * _solve_mass(u[:, i], k).sqrt() if k >= 3 else zero
            pabs = (big_m - m_next) * (big_m + m_next) / (2.0 * big_m)
            cos_theta, phi = 2.0 * u[:, n - 2 + 2 * i] - 1.0, 2.0 * math.pi * u[:, n - 1 + 2 * i]
            p_rest = from_angles(pabs, pabs, cos_theta, phi)
            rest = torch.cat([(pabs * pabs + m_next * m_next).sqrt().unsqueeze(-1), -p_rest[:, 1:]], dim=-1)
            out.append(boost_from_rest(p_rest, big_q, big_m))
            big_q = boost_from_rest(rest, big_q, big_m)
            big_m = m_next
        out.append(big_q)
        return torch.stack(out, dim=1)

    def _to_massive(self, q: Tensor, sqrt_s: Tensor) -> tuple[Tensor, Tensor]:
        """Massless CM momenta → massive ones; also log of the weight factor."""
        m2 = torch.tensor(self.masses, dtype=q.dtype, device=q.device) ** 2
        e0 = q[..., 0]
        xi = torch.ones_like(sqrt_s)
        for _ in range(100):  # Newton on the convex increasing Σ E_i(ξ) − √s, from ξ = 1: monotone
            e = (m2 + (xi.unsqueeze(-1) * e0) ** 2).sqrt()
            step = (e.sum(-1) - sqrt_s) / (xi * (e0 * e0 / e).sum(-1))
            xi = xi - step
            if bool((step.abs() <= 1e-15 * xi).all()):
                break
        pv = xi.unsqueeze(-1).unsqueeze(-1) * q[..., 1:]
        p = torch.cat([(m2 + (pv * pv).sum(-1)).sqrt().unsqueeze(-1), pv], dim=-1)
        return p, self._log_massive_factor(p, sqrt_s)

    def _log_massive_factor(self, p: Tensor, sqrt_s: Tensor) -> Tensor:
        pabs = p[..., 1:].norm(dim=-1)
        e = p[..., 0]
        xi = pabs.sum(-1) / sqrt_s
        return ((2 * self.n - 3) * torch.log(xi) + torch.log(pabs / e).sum(-1)
                + torch.log(sqrt_s) - torch.log((pabs * pabs / e).sum(-1)))

    # -- inverse ----------------------------------------------------------------------
    def inverse(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """``p [N, n, 4]`` (any frame) → ``(u [N, 3n−4], log q)``."""
        if p.dim() != 3 or p.shape[1:] != (self.n, 4):
            raise PhaseSpaceError(f"Rambo({self.n}).inverse needs p of shape (N, {self.n}, 4), got {tuple(p.shape)}")
        q_tot = p.sum(1)
        sqrt_s = msq(q_tot).sqrt()
        p = boost_to_rest(p, q_tot.unsqueeze(1), sqrt_s.unsqueeze(1))
        log_q = -log_massless_volume(self.n, sqrt_s * sqrt_s)
        if self.massive:
            log_q = log_q - self._log_massive_factor(p, sqrt_s)
            pabs = p[..., 1:].norm(dim=-1)
            xi = (pabs.sum(-1) / sqrt_s).unsqueeze(-1)
            p = torch.cat([(pabs / xi).unsqueeze(-1), p[..., 1:] / xi.unsqueeze(-1)], dim=-1)
        return self._massless_inverse(p, sqrt_s), log_q

    def _massless_inverse(self, p: Tensor, sqrt_s: Tensor) -> Tensor:
        n = self.n
        u = torch.empty(p.shape[0], self.dims_in, dtype=p.dtype, device=p.device)
        zero = torch.zeros_like(sqrt_s)
        suffix = p.flip(1).cumsum(1).flip(1)  # suffix[:, i] = Σ_{j ≥ i} p_j
        big_m = sqrt_s
        big_q = torch.stack([sqrt_s, zero, zero, zero], dim=-1)
        for i in range(n - 1):
            k = n - i
            p_rest = boost_to_rest(p[:, i], big_q, big_m)
            cos_theta, phi = angles(p_rest)
            u[:, n - 2 + 2 * i] = (cos_theta + 1.0) / 2.0
            u[:, n - 1 + 2 * i] = phi / (2.0 * math.pi)
            if k >= 3:
                x = (1.0 - 2.0 * p_rest[:, 0] / big_m).clamp(0.0, 1.0)
                u[:, i] = _mass_cdf(x, k)
                big_m = big_m * x.sqrt()
            big_q = suffix[:, i + 1]
        return u
