"""The user's integrand behind one small adapter: backends, return shapes, validation, call counting.

Single channel: ``f(x) -> w``.  Multi-channel: ``f(x, channel) -> w`` or a tuple
``(w, prior, features)`` / ``(w, prior)`` where ``prior [n, k]`` are the prior channel weights
α^prior(p) and ``features [n, m]`` the channel-weight network input, both functions of the
physical point p (either may be None).  PyPI ``madnis`` orders the full tuple ``(f, y, alpha)``
— remapped point first, prior second; pass ``madnis_order=True`` to accept that order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError


class IntegrandError(InputError):
    """The integrand returned something the integrator cannot use (shape, type, NaN)."""


@dataclass
class Evaluation:
    """Integrand output at a batch of points: float64 weight ``[n]``, optional prior ``[n, k]``, features ``[n, m]``."""

    weight: Tensor
    prior: Tensor | None = None
    features: Tensor | None = None


class Integrand:
    """Wraps the user callable; counts every point it is called on (``calls``)."""

    def __init__(self, fn: Callable, dims: int, channels: int | None, backend: str, device: torch.device,
                 madnis_order: bool = False):
        if not callable(fn):
            raise InputError(f"the integrand must be callable, got {type(fn).__name__}")
        if backend not in ("torch", "numpy"):
            raise InputError(f"backend must be 'torch' or 'numpy', got {backend!r}")
        self.fn = fn
        self.dims = dims
        self.channels = channels
        self.backend = backend
        self.device = device
        self.madnis_order = madnis_order
        self.calls = 0

    def _to_tensor(self, v, name: str, n: int, ndim: int) -> Tensor | None:
        if v is None:
            return None
        if isinstance(v, np.ndarray) or np.isscalar(v) or isinstance(v, (list, tuple)):
            try:
                v = torch.as_tensor(np.asarray(v, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise IntegrandError(f"integrand {name} must be a tensor or array of numbers ({exc})") from None
        if not isinstance(v, Tensor):
            raise IntegrandError(f"integrand {name} must be a tensor or array, got {type(v).__name__}")
        v = v.to(device=self.device, dtype=torch.float64)
        if ndim == 1 and v.dim() == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.dim() != ndim or v.shape[0] != n:
            want = f"[{n}]" if ndim == 1 else f"[{n}, m]"
            raise IntegrandError(f"integrand {name} must have shape {want}, got {tuple(v.shape)}")
        return v

    def __call__(self, x: Tensor, channel: Tensor | None = None) -> Evaluation:
        n = x.shape[0]
        if self.backend == "numpy":
            args = (x.detach().cpu().numpy(),) if self.channels is None else (
                x.detach().cpu().numpy(), channel.detach().cpu().numpy())
        else:
            args = (x,) if self.channels is None else (x, channel)
        with torch.no_grad():
            out = self.fn(*args)
        self.calls += n
        prior = features = None
        if isinstance(out, tuple):
            if self.channels is None:
                raise IntegrandError("a single-channel integrand must return only the weights, not a tuple")
            if len(out) not in (2, 3):
                raise IntegrandError(f"a multi-channel integrand returns w, (w, prior) or (w, prior, features); "
                                     f"got a tuple of {len(out)}")
            if len(out) == 3 and self.madnis_order:
                out = (out[0], out[2], out[1])
            weight, prior = out[0], out[1]
            features = out[2] if len(out) == 3 else None
        else:
            weight = out
        w = self._to_tensor(weight, "weight", n, 1)
        prior = self._to_tensor(prior, "prior", n, 2)
        features = self._to_tensor(features, "features", n, 2)
        if prior is not None and prior.shape[1] != self.channels:
            raise IntegrandError(f"the prior channel weights must have shape [{n}, {self.channels}], "
                                 f"got {tuple(prior.shape)}")
        bad = ~torch.isfinite(w)
        if bool(bad.any()):
            raise IntegrandError(f"the integrand returned {int(bad.sum())} non-finite weights out of {n} "
                                 f"(first at x = {x[bad][0].tolist()})")
        if prior is not None and bool((prior < 0).any()):
            raise IntegrandError("prior channel weights must be non-negative")
        return Evaluation(w, prior, features)
