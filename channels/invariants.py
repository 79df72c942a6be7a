"""One-dimensional samplers for invariants (s-channel masses², −t, ŝ) between per-event limits.

Each sampler maps ``u ∈ [0, 1]`` (shape ``[n]``) to ``s ∈ [lo, hi]`` and returns the exact
log-density ``log q(s)`` of ``s`` (w.r.t. ds, in GeV⁻²), ``q(s) = 1/|ds/du|``; ``inverse``
maps back and returns the same log-density. Limits ``lo``, ``hi`` are tensors ``[n]`` or floats,
so they may depend on the event (e.g. on ŝ). The density of each sampler is the normalised
restriction to [lo, hi] of

* :class:`BreitWigner`: 1/((s − M²)² + M²Γ²)   (arctan mapping; massive propagators),
* :class:`PowerLaw`:    1/(s + shift)^ν        (ν = 1: logarithmic; massless lines, ν ≈ 0.8 à la MadGraph;
  ``shift`` = M² of a t-channel propagator when the variable is −t),
* :class:`Uniform`:     1.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from .kinematics import PhaseSpaceError, as_tensor


class InvariantSampler(ABC):
    """Bijection u ∈ [0,1] ↔ s ∈ [lo, hi] with exact density."""

    @abstractmethod
    def forward(self, u: Tensor, lo: Tensor | float, hi: Tensor | float) -> tuple[Tensor, Tensor]:
        """``u [n]`` → ``(s [n], log q(s) [n])``."""

    @abstractmethod
    def inverse(self, s: Tensor, lo: Tensor | float, hi: Tensor | float) -> tuple[Tensor, Tensor]:
        """``s [n]`` → ``(u [n], log q(s) [n])``."""

    @staticmethod
    def _limits(x: Tensor, lo: Tensor | float, hi: Tensor | float) -> tuple[Tensor, Tensor]:
        lo, hi = as_tensor(lo, x), as_tensor(hi, x)
        if bool((hi < lo).any()):
            raise PhaseSpaceError("invariant sampler: upper limit below lower limit")
        return lo, hi


class Uniform(InvariantSampler):
    """Flat in s."""

    def forward(self, u, lo, hi):
        lo, hi = self._limits(u, lo, hi)
        s = lo + u * (hi - lo)
        return s, -torch.log(hi - lo).expand_as(s)

    def inverse(self, s, lo, hi):
        lo, hi = self._limits(s, lo, hi)
        return (s - lo) / (hi - lo), -torch.log(hi - lo).expand_as(s)


class BreitWigner(InvariantSampler):
    """Density ∝ 1/((s − M²)² + M²Γ²) via s = M² + MΓ tan(y), y uniform."""

    def __init__(self, mass: float, width: float):
        if not (mass > 0 and width > 0):
            raise PhaseSpaceError(f"BreitWigner needs mass > 0 and width > 0, got {mass}, {width}")
        self.m2, self.mg = mass * mass, mass * width

    def _y(self, s: Tensor) -> Tensor:
        return torch.atan((s - self.m2) / self.mg)

    def _log_q(self, s: Tensor, ylo: Tensor, yhi: Tensor) -> Tensor:
        return math.log(self.mg) - torch.log((s - self.m2) ** 2 + self.mg**2) - torch.log(yhi - ylo)

    def forward(self, u, lo, hi):
        lo, hi = self._limits(u, lo, hi)
        ylo, yhi = self._y(lo), self._y(hi)
        s = self.m2 + self.mg * torch.tan(ylo + u * (yhi - ylo))
        s = torch.minimum(torch.maximum(s, lo), hi)
        return s, self._log_q(s, ylo, yhi)

    def inverse(self, s, lo, hi):
        lo, hi = self._limits(s, lo, hi)
        ylo, yhi = self._y(lo), self._y(hi)
        return (self._y(s) - ylo) / (yhi - ylo), self._log_q(s, ylo, yhi)


class PowerLaw(InvariantSampler):
    """Density ∝ (s + shift)^(−ν) on [lo, hi]; ν = 1 is flat in log(s + shift).

    Requires lo + shift > 0 (≥ 0 if ν < 1).
    """

    def __init__(self, nu: float = 0.8, shift: float = 0.0):
        if nu < 0:
            raise PhaseSpaceError(f"PowerLaw needs nu >= 0, got {nu}")
        self.nu, self.shift = float(nu), float(shift)

    def _check(self, x: Tensor, lo, hi) -> tuple[Tensor, Tensor]:
        lo, hi = self._limits(x, lo, hi)
        a = lo + self.shift
        if bool((a < 0).any()) or (self.nu >= 1 and bool((a <= 0).any())):
            raise PhaseSpaceError(f"PowerLaw(nu={self.nu}) needs lower limit + shift > 0 (got {float(a.min())})")
        return lo + self.shift, hi + self.shift

    def _w(self, a: Tensor) -> Tensor:
        return torch.log(a) if self.nu == 1.0 else a ** (1.0 - self.nu)

    def _log_q(self, a: Tensor, wlo: Tensor, whi: Tensor) -> Tensor:
        if self.nu == 1.0:
            return -torch.log(a) - torch.log(whi - wlo)
        return math.log(abs(1.0 - self.nu)) - self.nu * torch.log(a) - torch.log((whi - wlo).abs())

    def forward(self, u, lo, hi):
        alo, ahi = self._check(u, lo, hi)
        wlo, whi = self._w(alo), self._w(ahi)
        w = wlo + u * (whi - wlo)
        a = torch.exp(w) if self.nu == 1.0 else w ** (1.0 / (1.0 - self.nu))
        a = torch.minimum(torch.maximum(a, alo), ahi)
        return a - self.shift, self._log_q(a, wlo, whi)

    def inverse(self, s, lo, hi):
        alo, ahi = self._check(s, lo, hi)
        a = s + self.shift
        wlo, whi = self._w(alo), self._w(ahi)
        return (self._w(a) - wlo) / (whi - wlo), self._log_q(a, wlo, whi)


def sampler_for(mass: float, width: float, nu: float = 0.8) -> InvariantSampler:
    """The usual choice for an s-channel line: Breit–Wigner if it has a width, else 1/s^ν."""
    return BreitWigner(mass, width) if mass > 0 and width > 0 else PowerLaw(nu)
