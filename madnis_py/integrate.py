"""Baseline integrators over the unit hypercube: ``flat`` Monte Carlo and VEGAS (the ``vegas`` package).

Both take a batched callable ``g(u) -> [n, k]`` (column 0 = the total weight,
further columns = per-subprocess pieces) and return an :class:`IntegrationResult`.
VEGAS adapts in a warm-up that is *not* part of the estimate; the main
iterations are combined by inverse-variance weighting (vegas' ``RAvgArray``)
with their χ²/dof reported.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor


@dataclass
class IntegrationResult:
    value: float
    error: float
    n_calls: int  # integrand evaluations, warm-up included
    method: str
    parts: list[tuple[float, float]] = field(default_factory=list)  # (value, error) per extra column
    chi2_dof: float | None = None
    n_iterations: int = 1
    n_nonzero: int = 0
    wall_time_s: float = 0.0
    weights: Tensor | None = None  # event weights (mean = σ̂) of one sample, for unweighting efficiencies


class _Counter:
    """Wraps a torch batch integrand for numpy callers; counts calls and non-zero weights."""

    def __init__(self, fn: Callable[[Tensor], Tensor], device: torch.device):
        self.fn = fn
        self.device = device
        self.calls = 0
        self.nonzero = 0

    def torch_call(self, u: Tensor) -> Tensor:
        out = self.fn(u)
        self.calls += u.shape[0]
        self.nonzero += int((out[:, 0] != 0).sum())
        return out

    def numpy_call(self, x: np.ndarray) -> np.ndarray:
        u = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(self.device)
        return self.torch_call(u).cpu().numpy()


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def integrate_flat(
    fn: Callable[[Tensor], Tensor],
    dims: int,
    calls: int,
    seed: int,
    batch_size: int = 100_000,
    device: torch.device | str = "cpu",
    quiet: bool = False,
) -> IntegrationResult:
    """Plain Monte Carlo with uniform points; error = sample standard deviation / √N."""
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    counter = _Counter(fn, device)
    t0 = time.perf_counter()
    s1 = s2 = None
    done = 0
    w = None
    while done < calls:
        n = min(batch_size, calls - done)
        u = torch.rand(n, dims, generator=gen, dtype=torch.float64, device=device)
        w = counter.torch_call(u)
        s1 = w.sum(0) if s1 is None else s1 + w.sum(0)
        s2 = (w**2).sum(0) if s2 is None else s2 + (w**2).sum(0)
        done += n
        _log(f"  flat: {done}/{calls} points, σ = {float(s1[0]) / done:.6g} pb", quiet)
    mean = s1 / calls
    var = (s2 / calls - mean**2).clamp_min(0) / max(calls - 1, 1)
    err = torch.sqrt(var)
    parts = [(float(mean[i]), float(err[i])) for i in range(1, mean.shape[0])]
    return IntegrationResult(
        float(mean[0]), float(err[0]), counter.calls, "flat", parts, None, 1, counter.nonzero,
        time.perf_counter() - t0, weights=None if w is None else w[:, 0],  # the last batch
    )


class _Reporter:
    def __init__(self, quiet: bool, label: str):
        self.quiet, self.label = quiet, label

    def begin(self, itn, integrator):  # noqa: D401 (vegas analyzer protocol)
        pass

    def end(self, itn_result, result):
        _log(f"  {self.label} iteration: σ = {itn_result[0]} pb (cumulative {result[0]})", self.quiet)


def integrate_vegas(
    fn: Callable[[Tensor], Tensor],
    dims: int,
    calls: int,
    seed: int,
    iterations: int = 10,
    warmup_fraction: float = 0.2,
    batch_size: int = 100_000,
    device: torch.device | str = "cpu",
    quiet: bool = False,
    check_warmup: Callable[[int, int], None] | None = None,
    unweighting_sample: bool = False,
) -> IntegrationResult:
    """VEGAS: ``warmup_fraction`` of the calls in 5 adaptation iterations (discarded), the rest in ``iterations``.

    ``unweighting_sample``: afterwards draw one more iteration of points (counted in ``n_calls``,
    not in the estimate) with the final grid and stratification; their event weights (mean ≈ σ̂)
    are returned in ``weights`` (for unweighting efficiencies).
    """
    import vegas

    device = torch.device(device)
    counter = _Counter(fn, device)
    rng = np.random.default_rng(seed)
    integ = vegas.Integrator(
        [[0.0, 1.0]] * dims,
        ran_array_generator=rng.random,
        min_neval_batch=batch_size,
        nproc=1,
    )
    batch_fn = vegas.lbatchintegrand(counter.numpy_call)
    t0 = time.perf_counter()
    n_warm_itn = 5
    warm_calls = int(calls * warmup_fraction)
    if warm_calls >= n_warm_itn * 200:
        _log(f"  vegas warm-up: {n_warm_itn} iterations of {warm_calls // n_warm_itn} points", quiet)
        integ(batch_fn, nitn=n_warm_itn, neval=warm_calls // n_warm_itn, analyzer=_Reporter(quiet, "warm-up"))
    if check_warmup is not None:
        check_warmup(counter.calls, counter.nonzero)
    main_calls = calls - counter.calls
    neval = max(main_calls // iterations, 200)
    result = integ(batch_fn, nitn=iterations, neval=neval, adapt=True, analyzer=_Reporter(quiet, "vegas"))
    if check_warmup is not None:
        check_warmup(counter.calls, counter.nonzero)
    values = [(float(r.mean), float(r.sdev)) for r in result.flat]
    chi2_dof = float(result.chi2 / result.dof) if result.dof > 0 else None
    # chi2 of the array result covers all components jointly; report the total's own where available
    try:
        chi2_dof = float(result.flat[0].chi2 / result.flat[0].dof) if hasattr(result.flat[0], "chi2") else chi2_dof
    except (AttributeError, ZeroDivisionError):
        pass
    weights = None
    if unweighting_sample:
        ws = []
        for x, wgt in integ.random_batch():  # one full iteration (all hypercubes, final grid)
            fx = counter.numpy_call(np.asarray(x))[:, 0]
            ws.append(torch.from_numpy(fx * np.asarray(wgt)))
        if ws:
            w_all = torch.cat(ws)
            weights = w_all * w_all.numel()  # Σ f·wgt = σ̂ of that iteration, so the mean is σ̂
    return IntegrationResult(
        values[0][0], values[0][1], counter.calls, "vegas", values[1:], chi2_dof, iterations, counter.nonzero,
        time.perf_counter() - t0, weights=weights,
    )
