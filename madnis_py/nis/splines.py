"""Monotone rational-quadratic splines on the unit interval (Durkan et al., arXiv:1906.04032).

Each spline maps [0, 1] onto [0, 1] with ``K`` bins.  Its unconstrained parameters per
element are ``K`` bin widths, ``K`` bin heights and ``K + 1`` knot derivatives (the two
boundary derivatives included: on the unit cube the density at the faces must be learnable,
unlike splines on [-B, B] with linear tails, whose boundary slope is pinned to 1).

Parametrisation (chosen so that all-zero parameters give *exactly* the identity):

    widths  = w_min + (1 - K w_min) softmax(w_raw)          → 1/K each at w_raw = 0
    heights = h_min + (1 - K h_min) softmax(h_raw)
    derivs  = d_min + (1 - d_min) softplus(d_raw) / log 2    → 1 at d_raw = 0

With equal widths and heights and unit derivatives the rational-quadratic segment reduces to
``y = y_k + h_k ξ = x`` and log|dy/dx| = 0; the formulas are arranged as ``y = x + (terms that
vanish there)`` so that the identity holds bit for bit, not just to rounding.

The spline arithmetic runs in float64 (inputs are float64 points that feed a float64
integrand); the raw parameters may come from a float32 network and are cast here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def params_per_dim(bins: int) -> int:
    """Number of unconstrained parameters of one spline with ``bins`` bins."""
    return 3 * bins + 1


def _knots(raw: Tensor, bins: int, minimum: float) -> Tensor:
    """Knot positions ``[..., K+1]`` (first exactly 0, last exactly 1); bin k spans knots k … k+1.

    The softmax runs in the network's dtype (the knots are parameters: any values give an
    exact bijection); the cumulative sum and everything after it in float64.
    """
    e = torch.exp(raw - raw.detach().amax(dim=-1, keepdim=True))  # softmax; torch's is slow for short rows
    sizes = (minimum + (1.0 - minimum * bins) * (e / e.sum(dim=-1, keepdim=True))).to(torch.float64)
    cs = torch.cumsum(sizes, dim=-1)
    return torch.cat([torch.zeros_like(cs[..., :1]), cs[..., :-1], torch.ones_like(cs[..., :1])], dim=-1)


def _derivative(d_raw: Tensor) -> Tensor:
    """Knot derivative = MIN_DERIVATIVE + (1 - MIN_DERIVATIVE) softplus(d)/ln 2, written so that d = 0 gives
    exactly 1."""
    return 1.0 + (1.0 - MIN_DERIVATIVE) * (F.softplus(d_raw.to(torch.float64)) / math.log(2.0) - 1.0)


def _bin(t: Tensor, idx2: Tensor) -> tuple[Tensor, Tensor]:
    """Entries ``idx`` and ``idx + 1`` of the last axis of ``t`` (``idx2``: ``[..., 2]`` = idx, idx + 1)."""
    both = torch.gather(t, -1, idx2)
    return both[..., 0], both[..., 1]


def rq_spline(x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
    """Apply the spline elementwise.

    ``x``: float64 ``[..., D]`` in [0, 1]; ``params``: ``[..., D, 3K+1]`` unconstrained.
    Returns ``(y, log|dy/dx|)`` elementwise (for ``inverse=True``: ``x = S⁻¹(y)`` and
    ``log|dS⁻¹/dy|``, i.e. minus the forward log-derivative at the preimage).
    """
    bins = (params.shape[-1] - 1) // 3
    xk = _knots(params[..., :bins], bins, MIN_BIN_WIDTH)
    yk = _knots(params[..., bins:2 * bins], bins, MIN_BIN_HEIGHT)
    x = x.clamp(0.0, 1.0)
    knots_in = yk if inverse else xk
    # bin index: number of interior knots ≤ x  (0 … K-1)
    idx = (x[..., None] >= knots_in[..., 1:bins]).sum(dim=-1, keepdim=True)
    idx2 = torch.cat([idx, idx + 1], dim=-1)
    x_lo, x_hi = _bin(xk, idx2)
    y_lo, y_hi = _bin(yk, idx2)
    w, h = x_hi - x_lo, y_hi - y_lo
    # the derivatives of all knots, then the bin's two: elementwise kernels may round a contiguous and a strided
    # operand differently, and the result must not depend on a point's position in the batch
    d0, d1 = _bin(_derivative(params[..., 2 * bins:]), idx2)
    s = h / w
    c2 = d0 + d1 - 2.0 * s
    if not inverse:
        xi = ((x - x_lo) / w).clamp(0.0, 1.0)
        om = xi * (1.0 - xi)
        den = s + c2 * om
        # y = y_lo + h (s ξ² + d0 ξ(1-ξ)) / den, written as x + (terms that vanish for the identity spline)
        # so that all-zero parameters give y == x bit for bit (warm start reproduces the VEGAS map exactly)
        y = x + (y_lo - x_lo) + (h - w) * xi + h * om * ((d0 - s) - c2 * xi) / den
        dydx = s * s * (s + (d1 - s) * xi * xi + (d0 - s) * (1.0 - xi) ** 2) / (den * den)
        return y.clamp(0.0, 1.0), torch.log(dydx)
    dy = x - y_lo  # here x is the spline output y
    a = h * (s - d0) + dy * c2
    b = h * d0 - dy * c2
    c = -s * dy
    disc = (b * b - 4.0 * a * c).clamp_min(0.0)
    xi = ((2.0 * c) / (-b - torch.sqrt(disc))).clamp(0.0, 1.0)
    om = xi * (1.0 - xi)
    den = s + c2 * om
    dydx = s * s * (s + (d1 - s) * xi * xi + (d0 - s) * (1.0 - xi) ** 2) / (den * den)
    # x = x_lo + w ξ, written (like the forward pass) as y + terms that vanish for the identity spline
    out = x + (x_lo - y_lo) + (w - h) * xi - h * om * ((d0 - s) - c2 * xi) / den
    return out.clamp(0.0, 1.0), -torch.log(dydx)
