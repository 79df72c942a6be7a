"""Multi-channel VEGAS: one adaptive grid per channel, stratified over channels (MadEvent's baseline).

The integrand is a channel integrand ``f(u [n, d], channel: int) -> w [n]``: the weight of the
points ``u`` of the unit cube drawn in channel ``channel``, already including the channel weight
α_c and any multiplicity, so that the total integral is

    I = Σ_c ∫_{[0,1]^d} f(u, c) du.

Each channel c gets a VEGAS grid G_c (a :class:`~channels.vegas_grid.VegasMap`, all channels in
one batched object): ``u = G_c(r)``, r uniform, and the point's weight is
w = f(G_c(r), c) / q_c(u).  An iteration draws n_c points in channel c (Σ n_c = N, fixed before
sampling) and estimates

    Î = Σ_c Î_c,   Î_c = (1/n_c) Σ_{j∈c} w_j,     Var Î = Σ_c s_c² / n_c

(stratified sampling over channels; s_c² is the sample variance of w in channel c).  Within a
channel the points are stratified too (``stratify``, as classic VEGAS): r-space is cut into
M = m^d equal cubes, m the largest integer with 2 m^d ≤ n_c, every cube gets ⌊n_c/M⌋ points
and the remainder goes to randomly chosen cubes (fixed before sampling), and
Î_c = Σ_h mean_h / M, Var Î_c = Σ_h s_h² / (n_h M²); this matters in few dimensions (e.g. a
hadronic 2 → 2 process, 4 dims), in 8+ dimensions m = 1 or 2.  After each iteration the
grids are adapted to the accumulated w² (Lepage's rule, as ``vegas``), and the allocation for the
next one is set to n_c ∝ (1 − λ) s_c / Σ s + λ / k (n_c ∝ σ_c minimises Var Î, MadEvent likewise
sends points to the channels with the largest variance; the uniform share λ = ``min_share`` keeps
every channel sampled so none starves; with stratification s_c is the per-point spread
(n_c Var Î_c)^{1/2}), with at least ``min_points`` points per channel.  A
channel's grid is adapted only once it has collected ``min_adapt`` points (default 16 per
increment with 32 increments per dimension; in ≤ 4 dimensions, where the weights of the
channels are not heavy-tailed, 4 per increment with 128 increments; its data are kept across
iterations until then): adapting on a handful of points
shrinks the increments where no point happened to fall, and the rare large weights there then
bias the combined estimate low.  σ_c for the allocation is smoothed over iterations
(s_c² ← (s_c,old² + s_c,new²)/2).

The first ``warmup_fraction`` of the calls go to ``warmup_iterations`` iterations whose estimates
are discarded (grids and allocation only); the remaining iterations are combined with weights
1/Var Î_i, with χ²/dof = Σ_i (Î_i − Ī)² / Var Î_i / (m − 1).  Per-channel values are combined
with the same iteration weights (so they add up to the total).  Random numbers come from a seeded ``torch.Generator``.

Event weights of a combined sample are W_j = (N / n_c) w_j (stratified: N / (M n_h) w_j), whose
mean is Î; ``sample`` draws
such weighted events with the current grids and allocation (for unweighting).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from .kinematics import PhaseSpaceError
from .vegas_grid import VegasMap

ChannelIntegrand = Callable[[Tensor, int], Tensor]
LOW_DIMS = 4  # up to this many dimensions (e.g. hadronic 2 → 2): finer default grids that adapt sooner


@dataclass
class WeightedEvents:
    """Weighted points of a stratified sample: ``u [N, d]`` (the channel's input), ``channel [N]``,
    ``weight [N]`` (W = N/n_c · w, or N/(M n_h) · w with strata; mean = the integral estimate)."""

    u: Tensor
    channel: Tensor
    weight: Tensor


@dataclass
class MultiChannelResult:
    """Outcome of :meth:`MultiChannelVegas.integrate`.

    ``value ± error``: inverse-variance combination of the main iterations; ``n_calls``: all
    integrand evaluations (warm-up included); ``chi2_dof``: of the main iterations (None for one).
    ``channel_values/errors``: per-channel Î_c combined over the main iterations;
    ``channel_calls``: points per channel over all iterations.  ``last_weights``: the event weights
    W of the last iteration (for unweighting efficiencies).
    """

    value: float
    error: float
    n_calls: int
    chi2_dof: float | None
    n_iterations: int
    channel_values: list[float]
    channel_errors: list[float]
    channel_calls: list[int]
    iteration_values: list[tuple[float, float]] = field(default_factory=list)
    n_nonzero: int = 0
    wall_time_s: float = 0.0
    last_weights: Tensor | None = None
    last_channels: Tensor | None = None

    @property
    def rel_error(self) -> float:
        return self.error / abs(self.value) if self.value != 0 else math.inf


def _combine(values: Tensor, variances: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse-variance mean over dim 0 (``[m, ...]``); returns (mean, error, chi2).

    Entries with zero variance: if all variances are zero, the plain mean (error 0) is used.
    """
    pos = variances > 0
    inv = torch.where(pos, 1.0 / variances.clamp_min(1e-300), torch.zeros_like(variances))
    s_inv = inv.sum(dim=0)
    has = s_inv > 0
    mean_w = (inv * values).sum(dim=0) / s_inv.clamp_min(1e-300)
    mean = torch.where(has, mean_w, values.mean(dim=0))
    err = torch.where(has, 1.0 / s_inv.clamp_min(1e-300).sqrt(), torch.zeros_like(mean))
    chi2 = (inv * (values - mean) ** 2).sum(dim=0)
    return mean, err, chi2


class MultiChannelVegas:
    """Multi-channel VEGAS over ``channels`` channels of ``dims`` dimensions.

    ``f(u, c)`` is called once per channel and iteration with all of that channel's points (in
    chunks of at most ``batch_size``).  ``bins``: VEGAS increments per dimension (default 128 for
    dims ≤ 4, else 32); ``min_adapt``: pending points a channel needs before its grid adapts (default
    4 × bins for dims ≤ 4, else 16 × bins); ``stratify``: stratified sampling of r (see the module
    docstring); ``alpha``: grid
    damping (vegas default 0.5); ``min_share``: uniform fraction λ of the channel allocation;
    ``min_points``: least points per channel and iteration.
    """

    def __init__(self, f: ChannelIntegrand, dims: int, channels: int, seed: int = 1, bins: int | None = None,
                 alpha: float = 0.5, min_share: float = 0.1, min_points: int = 10, min_adapt: int | None = None,
                 batch_size: int = 100_000, device: torch.device | str = "cpu",
                 log: Callable[[str], None] | None = None, stratify: bool = True):
        if channels < 1 or dims < 1:
            raise PhaseSpaceError(f"MultiChannelVegas needs channels, dims >= 1, got {channels}, {dims}")
        if not 0.0 <= min_share <= 1.0:
            raise PhaseSpaceError(f"min_share must lie in [0, 1], got {min_share}")
        self.f = f
        self.dims = dims
        self.stratify = bool(stratify)
        self.k = channels
        self.device = torch.device(device)
        low = dims <= LOW_DIMS
        bins = int(bins) if bins is not None else (128 if low else 32)
        self.grid = VegasMap(dims, bins, channels, self.device)
        self.alpha = alpha
        self.min_share = min_share
        self.min_points = max(int(min_points), 2)
        self.batch_size = int(batch_size)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.min_adapt = int(min_adapt) if min_adapt is not None else (4 if low else 16) * bins
        self._pending: list[list[tuple[Tensor, Tensor]]] = [[] for _ in range(channels)]
        self._pending_n = [0] * channels
        self.sigma = torch.ones(channels, dtype=torch.float64)  # per-channel σ_c estimate (allocation)
        self._var_seen = False
        self.calls = 0
        self.nonzero = 0
        self.log = log

    # ------------------------------------------------------------------ allocation
    def allocation(self, n: int) -> Tensor:
        """Points per channel for an iteration of about ``n`` points (int64 ``[k]``, each ≥ min_points)."""
        s = self.sigma.clamp_min(0)
        tot = float(s.sum())
        share = s / tot if tot > 0 else torch.full_like(s, 1.0 / self.k)
        share = (1.0 - self.min_share) * share + self.min_share / self.k
        n_c = torch.floor(share * n).to(torch.long)
        # hand the rounding remainder to the largest fractional parts
        rest = n - int(n_c.sum())
        if rest > 0:
            frac = share * n - n_c
            n_c[torch.argsort(frac, descending=True)[:rest]] += 1
        return n_c.clamp_min(self.min_points)

    # ------------------------------------------------------------------ one channel
    def _strata(self, n: int) -> tuple[int, int]:
        """(m, M): m strata per dimension (M = m^d in all) for ``n`` points, ≥ 2 points per stratum; m = 1: none."""
        if not self.stratify:
            return 1, 1
        m = int((n / 2.0) ** (1.0 / self.dims) + 1e-9)
        while m > 1 and m**self.dims * 2 > n:
            m -= 1
        return max(m, 1), max(m, 1) ** self.dims

    def _draw(self, n: int) -> tuple[Tensor, Tensor, int]:
        """``n`` points r of the unit cube, stratified (equal cubes, m per dimension, ≥ 2 points each, the
        remainder to randomly chosen cubes); returns (r, stratum index [n], M)."""
        r = torch.rand(n, self.dims, generator=self.generator, dtype=torch.float64, device=self.device)
        m, big_m = self._strata(n)
        if big_m == 1:
            return r, torch.zeros(n, dtype=torch.long, device=self.device), 1
        per = n // big_m
        extra = torch.randperm(big_m, generator=self.generator, device=self.device)[:n - per * big_m]
        h = torch.cat([torch.arange(big_m, device=self.device).repeat(per), extra])
        digits = torch.stack([(h // m**k) % m for k in range(self.dims)], dim=1).to(torch.float64)
        return (digits + r) / m, h, big_m

    def _channel_points(self, c: int, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
        """Draw ``n`` points in channel c: (r, u, w, h, M) with w = f(u, c) / q_grid, h the stratum of each
        point and M the number of strata (as :meth:`_draw`)."""
        r, h, big_m = self._draw(n)
        ch = torch.full((n,), c, dtype=torch.long, device=self.device)
        u, log_q = self.grid.forward(r, ch)
        ws = []
        for lo in range(0, n, self.batch_size):
            fu = self.f(u[lo:lo + self.batch_size], c).to(dtype=torch.float64, device=self.device)
            ws.append(fu)
        f = torch.cat(ws) if ws else u.new_zeros(0)
        if f.shape != (n,):
            raise PhaseSpaceError(f"the channel integrand must return weights of shape [{n}], got {tuple(f.shape)}")
        f = torch.where(torch.isfinite(f), f, torch.zeros_like(f))
        self.calls += n
        self.nonzero += int((f != 0).sum())
        return r, u, f * torch.exp(-log_q), h, big_m

    def _iteration(self, n: int, adapt: bool, keep: bool = False):
        n_c = self.allocation(n)
        means = torch.zeros(self.k, dtype=torch.float64)
        var_means = torch.zeros(self.k, dtype=torch.float64)
        stds = torch.zeros(self.k, dtype=torch.float64)
        kept = []
        for c in range(self.k):
            m = int(n_c[c])
            r, u, w, h, big_m = self._channel_points(c, m)
            if big_m == 1:
                mean = w.mean()
                var_mean = ((w - mean) ** 2).sum() / (m - 1) / m
                scale = torch.full_like(w, 1.0 / m)  # estimator weight of each point
            else:  # stratified: Î_c = Σ_h mean_h / M, Var = Σ_h s_h² / (n_h M²)
                n_h = torch.zeros(big_m, dtype=torch.float64, device=w.device).index_add_(0, h, torch.ones_like(w))
                s1 = torch.zeros_like(n_h).index_add_(0, h, w)
                mean_h = s1 / n_h
                s2 = torch.zeros_like(n_h).index_add_(0, h, (w - mean_h[h]) ** 2)
                mean = mean_h.sum() / big_m
                var_mean = (s2 / (n_h - 1) / n_h).sum() / big_m**2
                scale = 1.0 / (big_m * n_h[h])
            means[c] = float(mean)
            var_means[c] = float(var_mean)
            stds[c] = math.sqrt(max(float(var_mean) * m, 0.0))  # per-point spread after stratification
            if adapt:
                self._pending[c].append((r, w**2))
                self._pending_n[c] += m
            if keep:
                kept.append((u, torch.full((m,), c, dtype=torch.long, device=self.device), w * scale * int(n_c.sum())))
        if adapt:
            self._adapt()
        # allocation: σ_c smoothed over iterations (a single small sample underestimates heavy tails)
        self.sigma = stds if not self._var_seen else torch.sqrt(0.5 * self.sigma**2 + 0.5 * stds**2)
        self._var_seen = True
        return means, var_means, n_c, kept

    def _adapt(self) -> None:
        """Adapt the grids of the channels with at least ``min_adapt`` pending points (others keep collecting)."""
        ready = [c for c in range(self.k) if self._pending_n[c] >= self.min_adapt]
        if not ready:
            return
        for c in ready:
            r = torch.cat([x[0] for x in self._pending[c]])
            w2 = torch.cat([x[1] for x in self._pending[c]])
            self.grid.add_training_data(r, w2, torch.full((r.shape[0],), c, dtype=torch.long, device=self.device))
            self._pending[c], self._pending_n[c] = [], 0
        self.grid.adapt(self.alpha)  # rows without data keep their edges

    # ------------------------------------------------------------------ public
    def integrate(self, calls: int, iterations: int = 10, warmup_fraction: float = 0.2,
                  warmup_iterations: int = 5, adapt: bool = True) -> MultiChannelResult:
        """Integrate with about ``calls`` integrand evaluations (see the module docstring)."""
        if iterations < 1:
            raise PhaseSpaceError(f"iterations must be >= 1, got {iterations}")
        t0 = time.perf_counter()
        start_calls, start_nonzero = self.calls, self.nonzero
        warm = int(calls * warmup_fraction)
        if warm > 0 and warmup_iterations > 0:
            per = max(warm // warmup_iterations, self.k * self.min_points)
            for i in range(warmup_iterations):
                means, vm, _, _ = self._iteration(per, adapt)
                self._say(f"  multichannel warm-up {i + 1}/{warmup_iterations}: {float(means.sum()):.6g} "
                          f"+- {math.sqrt(float(vm.sum())):.2g}")
        main = max(calls - (self.calls - start_calls), 0)
        per = max(main // iterations, self.k * self.min_points)
        vals, vms, ncs = [], [], []
        last = []
        for i in range(iterations):
            final = i == iterations - 1
            means, vm, n_c, kept = self._iteration(per, adapt, keep=final)
            vals.append(means)
            vms.append(vm)
            ncs.append(n_c)
            last = kept
            self._say(f"  multichannel iteration {i + 1}/{iterations}: {float(means.sum()):.6g} "
                      f"+- {math.sqrt(float(vm.sum())):.2g}")
        V = torch.stack(vals)  # [m, k]
        VM = torch.stack(vms)
        it_v, tv = V.sum(dim=1), VM.sum(dim=1)  # per-iteration totals and variances
        tot_v, tot_e, chi2 = _combine(it_v, tv)
        # per channel with the iteration weights of the total (so that Σ_c Î_c = Î exactly; a
        # per-channel 1/var_c weighting would be biased low in channels with few points)
        wi = torch.where(tv > 0, 1.0 / tv.clamp_min(1e-300), torch.zeros_like(tv))
        wi = wi / wi.sum() if float(wi.sum()) > 0 else torch.full_like(tv, 1.0 / tv.numel())
        ch_v = (wi[:, None] * V).sum(dim=0)
        ch_e = torch.sqrt((wi[:, None] ** 2 * VM).sum(dim=0))
        m = len(vals)
        w_last = torch.cat([x[2] for x in last]) if last else None
        c_last = torch.cat([x[1] for x in last]) if last else None
        return MultiChannelResult(
            value=float(tot_v), error=float(tot_e), n_calls=self.calls - start_calls,
            chi2_dof=float(chi2) / (m - 1) if m > 1 else None, n_iterations=m,
            channel_values=ch_v.tolist(), channel_errors=ch_e.tolist(),
            channel_calls=torch.stack(ncs).sum(dim=0).tolist(),
            iteration_values=[(float(v), math.sqrt(float(e))) for v, e in zip(it_v, tv)],
            n_nonzero=self.nonzero - start_nonzero, wall_time_s=time.perf_counter() - t0,
            last_weights=w_last, last_channels=c_last,
        )

    def sample(self, n: int) -> WeightedEvents:
        """``n``-ish weighted events (current grids and allocation, no adaptation); mean weight = Î."""
        _, _, _, kept = self._iteration(n, adapt=False, keep=True)
        return WeightedEvents(torch.cat([x[0] for x in kept]), torch.cat([x[1] for x in kept]),
                              torch.cat([x[2] for x in kept]))

    def _say(self, msg: str) -> None:
        if self.log is not None:
            self.log(msg)
