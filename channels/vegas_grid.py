"""VEGAS adaptive grids in torch: one separable piecewise-linear map of [0,1]^d per channel.

The map is Lepage's (J. Comput. Phys. 27 (1978) 192; the ``vegas`` package's ``AdaptiveMap``),
batched over channels and dimensions.  Per channel c and dimension j a grid of ``N + 1``
increasing edges ``e_0 = 0 < … < e_N = 1`` maps ``u`` with ``i = ⌊u N⌋``, ``δ = u N − i`` to

    x = e_i + δ (e_{i+1} − e_i),     q(x) = Π_j 1 / (N (e_{i+1} − e_i)).

Adaptation (``adapt``) follows ``vegas.AdaptiveMap.adapt`` step by step: per (channel, dim)
the average of the training values (the squared weights ``w²``) in each u-increment is
smoothed with the (7,1)/8 and (1,6,1)/8 kernels, normalised, damped with
``((1 − f)/ln(1/f))^α`` and the new edges are placed so that each new increment carries the
same share of that piecewise-constant density.  A test checks equality with ``vegas``.
"""
from __future__ import annotations

import sys

import torch
from torch import Tensor

from channels.mapping import Mapping

TINY = 10.0 ** (sys.float_info.min_10_exp + 50)  # same guard as vegas


class VegasMap(Mapping):
    """Adaptive VEGAS grids for ``channels`` channels of ``dims`` dimensions, ``bins`` increments each.

    ``forward(u, channel)`` / ``inverse(x, channel)`` follow the :class:`Mapping` protocol;
    ``channel`` (int tensor ``[n]``) may be omitted for a single channel.
    """

    def __init__(self, dims: int, bins: int = 64, channels: int = 1,
                 device: torch.device | str = "cpu", edges: Tensor | None = None):
        if dims < 1 or bins < 1 or channels < 1:
            raise ValueError(f"VegasMap needs dims, bins, channels >= 1, got {dims}, {bins}, {channels}")
        self.dims_in = dims
        self.bins = bins
        self.channels = channels
        if edges is None:
            edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64, device=device)
            edges = edges.expand(channels, dims, bins + 1).clone()
        elif edges.shape != (channels, dims, bins + 1):
            raise ValueError(f"edges must have shape {(channels, dims, bins + 1)}, got {tuple(edges.shape)}")
        self.edges = edges.to(device=device, dtype=torch.float64)
        self.clear()

    @property
    def device(self) -> torch.device:
        return self.edges.device

    def to(self, device: torch.device | str) -> "VegasMap":
        self.edges = self.edges.to(device)
        self.sum_f, self.n_f = self.sum_f.to(device), self.n_f.to(device)
        return self

    def _channel(self, channel: Tensor | None, n: int) -> Tensor:
        if channel is None:
            if self.channels != 1:
                raise ValueError("VegasMap with several channels needs the channel index of each point")
            return torch.zeros(n, dtype=torch.long, device=self.device)
        return channel.to(device=self.device, dtype=torch.long)

    def _bin(self, u: Tensor) -> tuple[Tensor, Tensor]:
        t = u * self.bins
        i = torch.floor(t).clamp(0, self.bins - 1)
        return i.long(), (t - i).clamp(0.0, 1.0)

    def forward(self, u: Tensor, channel: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``u [n, d]`` → ``(x, log q(x))``.

        Non-finite rows of ``u`` (e.g. from a numerically broken flow in front of the grid) are mapped
        to the cube's centre with ``log q = +inf``, so their weight f/q is exactly 0 instead of a crash.
        """
        u = u.to(torch.float64)
        ok = torch.isfinite(u).all(dim=1)
        u = torch.where(ok[:, None], u, torch.full_like(u, 0.5))
        ch = self._channel(channel, u.shape[0])[:, None]
        dim = torch.arange(self.dims_in, device=u.device)[None, :]
        i, delta = self._bin(u)
        lo = self.edges[ch, dim, i]
        width = self.edges[ch, dim, i + 1] - lo
        x = lo + delta * width
        log_q = -torch.log(width * self.bins).sum(dim=1)
        return x, torch.where(ok, log_q, torch.full_like(log_q, float("inf")))

    def inverse(self, x: Tensor, channel: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x [n, d]`` → ``(u, log q(x))``."""
        x = x.to(torch.float64).clamp(0.0, 1.0)
        n, d = x.shape
        ch = self._channel(channel, n)[:, None]
        dim = torch.arange(d, device=x.device)[None, :]
        # all (channel, dim) rows live in [0, 1]; shifting row r by 2r makes one sorted sequence
        rows = torch.arange(self.channels * d, device=x.device, dtype=torch.float64).view(self.channels, d, 1)
        flat = (self.edges + 2.0 * rows).reshape(-1)
        row = ch * d + dim
        pos = torch.searchsorted(flat, x + 2.0 * row, right=True) - row * (self.bins + 1)
        i = (pos - 1).clamp(0, self.bins - 1)
        lo = self.edges[ch, dim, i]
        width = self.edges[ch, dim, i + 1] - lo
        u = (i + ((x - lo) / width).clamp(0.0, 1.0)) / self.bins
        return u, -torch.log(width * self.bins).sum(dim=1)

    def channel_map(self, channel: int) -> "VegasMap":
        """A single-channel :class:`VegasMap` sharing channel ``channel``'s edges (a view)."""
        return VegasMap(self.dims_in, self.bins, 1, self.device, self.edges[channel:channel + 1])

    # ---------------------------------------------------------------- adaptation
    def clear(self) -> None:
        """Forget accumulated training data."""
        shape = (self.channels, self.dims_in, self.bins)
        self.sum_f = torch.zeros(shape, dtype=torch.float64, device=self.device)
        self.n_f = torch.zeros(shape, dtype=torch.float64, device=self.device)

    def add_training_data(self, u: Tensor, f: Tensor, channel: Tensor | None = None) -> None:
        """Accumulate training values ``f [n]`` (usually ``w²``) at the u-space points ``u [n, d]``."""
        n, d = u.shape
        ch = self._channel(channel, n)[:, None]
        i, _ = self._bin(u.to(torch.float64))
        dim = torch.arange(d, device=u.device)[None, :]
        flat = ((ch * d + dim) * self.bins + i).reshape(-1)
        size = self.channels * d * self.bins
        fv = f.to(torch.float64)[:, None].expand(n, d).reshape(-1)
        self.sum_f += torch.bincount(flat, weights=fv, minlength=size).view_as(self.sum_f)
        self.n_f += torch.bincount(flat, minlength=size).to(torch.float64).view_as(self.n_f)

    def adapt(self, alpha: float = 0.5) -> None:
        """Move the edges towards equal shares of the accumulated training data (vegas ``adapt``)."""
        nb = self.bins
        if nb == 1 or alpha == 0:
            self.clear()
            return
        avg = torch.where(self.n_f > 0, self.sum_f / self.n_f.clamp_min(TINY), torch.zeros_like(self.sum_f))
        avg = avg.reshape(-1, nb)
        edges = self.edges.reshape(-1, nb + 1)
        has_data = (self.n_f.reshape(-1, nb).sum(dim=1) > 0)
        if alpha > 0:
            tmp = torch.empty_like(avg)
            tmp[:, 0] = (7.0 * avg[:, 0] + avg[:, 1]).abs() / 8.0
            tmp[:, -1] = (7.0 * avg[:, -1] + avg[:, -2]).abs() / 8.0
            if nb > 2:
                tmp[:, 1:-1] = (6.0 * avg[:, 1:-1] + avg[:, :-2] + avg[:, 2:]).abs() / 8.0
            norm = tmp.sum(dim=1, keepdim=True)
            avg = torch.where(norm > 0, tmp / norm.clamp_min(TINY) + TINY, torch.full_like(tmp, TINY))
            damp = (avg > 0) & (avg <= 0.99999999)
            a = avg.clamp(TINY, 0.99999999)
            avg = torch.where(damp, (-(1.0 - a) / torch.log(a)) ** alpha, avg)
        # regrid: the edges where the cumulative share reaches i/N, i = 1..N-1
        cum = torch.cumsum(avg, dim=1)
        target = cum[:, -1:] * torch.arange(1, nb, device=avg.device, dtype=torch.float64) / nb
        j = torch.searchsorted(cum, target).clamp(max=nb - 1)
        inc = edges[:, 1:] - edges[:, :-1]
        acc = torch.gather(cum, 1, j) - target
        new_inner = torch.gather(edges, 1, j + 1) - acc / torch.gather(avg, 1, j) * torch.gather(inc, 1, j)
        new = torch.cat([edges[:, :1], new_inner, edges[:, -1:]], dim=1)
        # rows without training data keep their edges (vegas: uniform avg_f leaves the grid as is)
        new = torch.where(has_data[:, None], new, edges)
        # guard against non-increasing edges from round-off
        new = torch.cummax(new, dim=1).values
        self.edges = new.reshape(self.channels, self.dims_in, nb + 1).contiguous()
        self.clear()
