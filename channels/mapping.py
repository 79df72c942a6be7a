"""The one protocol for every bijection used in sampling.

A :class:`Mapping` takes points ``u`` (shape ``[n, d_in]``, usually in the unit
hypercube) to points ``x`` and returns, in the same pass, the *log-density of
its output* under a uniform input::

    x, log_q = mapping.forward(u)      # q(x) = |det ∂x/∂u|^-1
    u, log_q = mapping.inverse(x)      # the same log_q, computed from x

Densities of composed mappings multiply (log-densities add), so VEGAS grids,
flow layers and analytic phase-space blocks chain in any order with
:class:`Chain`.  For a phase-space mapping, ``x`` is a momentum tensor
``[n, n_particles, 4]`` and ``q`` is the density with respect to the
Lorentz-invariant phase-space measure dΦ_n (including its (2π) factors), so an
event weight is ``f(x) / q(x)``.

All tensors are float64 on the device of the input; randomness comes from
``torch.Generator`` objects passed in explicitly.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


class Mapping(ABC):
    """A batched bijection with exact log-density of its output."""

    #: number of input dimensions (random numbers consumed)
    dims_in: int

    @abstractmethod
    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Map ``u`` to ``x``; return ``(x, log_q(x))``."""

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map ``x`` back to ``u``; return ``(u, log_q(x))``."""
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    def __call__(self, u: Tensor) -> tuple[Tensor, Tensor]:
        return self.forward(u)


class Chain(Mapping):
    """``Chain(a, b)`` applies ``a`` then ``b``; log-densities add."""

    def __init__(self, *mappings: Mapping):
        if not mappings:
            raise ValueError("Chain needs at least one mapping")
        self.mappings = mappings
        self.dims_in = mappings[0].dims_in

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        log_q = torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
        x = u
        for m in self.mappings:
            x, lq = m.forward(x)
            log_q = log_q + lq
        return x, log_q

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_q = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        u = x
        for m in reversed(self.mappings):
            u, lq = m.inverse(u)
            log_q = log_q + lq
        return u, log_q
