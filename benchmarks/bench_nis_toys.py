"""Benchmark (not a test): neural importance sampling on multi-modal Gaussians, same integrand budget.

Compares, at the same total number of integrand calls N (training / adaptation included):

* ``madnis_py``  — ``madnis_py.Integrator(f, dims)`` with its defaults: ``train(calls=N - n_int)``,
  ``integrate(calls=n_int)``;
* ``vegas``      — the ``vegas`` package (adaptive map + stratification): 10 adaptive iterations with
  N - n_int calls, then one fresh non-adapting iteration of n_int calls.  "rel. error" is that of
  the fresh iteration (the same convention as the others: training samples are not re-used);
  "all-iter" is vegas' usual weighted average over all 11 iterations;
* ``madnis 1.0`` — PyPI ``madnis`` (the MadGraph team's library) with its documented defaults
  (RQ-spline flow 3 layers x 32 units, 10 bins, KL loss, Adam lr 1e-3, batch 1024) plus its VEGAS
  pre-training (``VegasPreTraining``, 64 bins, damping 0.7) on the same warm-up share as ours and
  buffered training with the same number of buffered steps and a cosine learning-rate decay;
  the flow is trained with the rest of the budget and evaluated on n_int fresh samples.

Efficiencies use the same definitions for all (``madnis_py.nis.result``): strict ε = ⟨w⟩/max w, partial
ε = ⟨min(w, w_ref)⟩/w_ref with w_ref such that 0.1 % of the integral lies above it.  The vegas
efficiencies are measured on an extra sample of n_int points of the final map (not counted).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_nis_toys.py [--calls 200000] [--dims 4 8] [--skip-madnis]
"""
from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
import torch

from madnis_py import Integrator
from madnis_py.nis.result import unweighting_efficiencies


def gaussians(dims: int, sigma: float, centres=(0.25, 0.5, 0.75)):
    """Equal-weight Gaussians of width ``sigma`` at c·(1,…,1); returns (torch f, numpy f, exact integral)."""
    def f_t(x):
        return sum(torch.exp(-((x - c) ** 2).sum(1) / (2 * sigma ** 2)) for c in centres)

    def f_np(x):
        return sum(np.exp(-((x - c) ** 2).sum(1) / (2 * sigma ** 2)) for c in centres)

    s2 = sigma * math.sqrt(2.0)
    exact = sum((sigma * math.sqrt(2 * math.pi) * 0.5 * (math.erf((1 - c) / s2) + math.erf(c / s2))) ** dims
                for c in centres)
    return f_t, f_np, exact


def row(name, value, error, exact, eff, calls, wall, extra=""):
    strict, partial = eff
    return (f"| {name} | {value:.6g} ± {error:.2g} | {error / abs(value):.2e} | {(value - exact) / error:+.1f} | "
            f"{strict:.4f} | {partial:.4f} | {calls} | {wall:.2f} |{extra}")


def run_ours(f, dims, calls, n_int, seed):
    t0 = time.perf_counter()
    integ = Integrator(f, dims=dims, seed=seed, progress=False)
    integ.train(calls=calls - n_int)
    r = integ.integrate(calls=n_int)
    return r.value, r.error, (r.unweighting_efficiency, r.partial_unweighting_efficiency), integ.total_calls, \
        time.perf_counter() - t0


def run_vegas(f_np, dims, calls, n_int, seed):
    import vegas

    np.random.seed(seed)
    t0 = time.perf_counter()
    fb = vegas.batchintegrand(f_np)
    integ = vegas.Integrator([[0.0, 1.0]] * dims)
    nitn = 10
    train = integ(fb, nitn=nitn, neval=(calls - n_int) // nitn)
    fresh = integ(fb, nitn=1, neval=n_int, adapt=False)
    wall = time.perf_counter() - t0
    w = []
    for x, wgt in integ.random_batch():
        w.append(wgt * f_np(x))
    eff = unweighting_efficiencies(torch.as_tensor(np.concatenate(w)))[:2]
    # vegas' usual answer: inverse-variance weighted average of all iterations (training + fresh)
    wt = np.array([1.0 / train.sdev ** 2, 1.0 / fresh.sdev ** 2])
    combined = (float(wt @ np.array([train.mean, fresh.mean]) / wt.sum()), float(wt.sum() ** -0.5))
    return fresh.mean, fresh.sdev, eff, calls, wall, combined


def run_pypi_madnis(f, dims, calls, n_int, seed, warmup_fraction=0.1, buffered_steps=10, batch_size=1024):
    from madnis.integrator import Integrator as MI
    from madnis.integrator import VegasPreTraining

    torch.manual_seed(seed)
    n_calls = 0

    def counted(x):
        nonlocal n_calls
        n_calls += x.shape[0]
        return f(x)

    t0 = time.perf_counter()
    steps = max(1, (calls - n_int - int(warmup_fraction * (calls - n_int))) // batch_size)
    mi = MI(counted, dims=dims, batch_size=batch_size, buffer_capacity=32 * batch_size, buffered_steps=buffered_steps,
            scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps * (1 + buffered_steps)))
    warm = int(warmup_fraction * (calls - n_int))
    if warm >= 1000:
        vp = VegasPreTraining(mi, bins=64, damping=0.7)
        vp.rng = np.random.default_rng(seed)
        it = max(1, warm // 10_000)
        vp.train([warm // it] * it)
        vp.initialize_integrator()
    while n_calls + batch_size <= calls - n_int:
        mi.train_step()
    train_calls = n_calls
    s = mi.sample(n_int)
    w = s.weights.to(torch.float64)
    value, error = float(w.mean()), float(w.std() / math.sqrt(w.numel()))
    eff = unweighting_efficiencies(w)[:2]
    return value, error, eff, n_calls, time.perf_counter() - t0, train_calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000, help="total integrand budget per method")
    ap.add_argument("--int-fraction", type=float, default=0.4, help="share of the budget for the final integration")
    ap.add_argument("--dims", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--sigma", type=float, nargs="+", default=None, help="Gaussian width per dims (default 0.05 / 0.1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-madnis", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    sigmas = args.sigma or [0.05 if d <= 4 else 0.1 for d in args.dims]
    for dims, sigma in zip(args.dims, sigmas):
        f_t, f_np, exact = gaussians(dims, sigma)
        n_int = int(args.int_fraction * args.calls)
        print(f"\n### {dims} dims, 3 Gaussians σ = {sigma} on the diagonal, I = {exact:.6g}, "
              f"budget {args.calls} calls ({n_int} for the final integration)\n")
        print("| method | I | rel. error | pull | ε_uw strict | ε_uw partial | calls | wall [s] |")
        print("|---|---|---|---|---|---|---|---|")
        v, e, eff, c, t = run_ours(f_t, dims, args.calls, n_int, args.seed)
        print(row("madnis_py (defaults)", v, e, exact, eff, c, t), flush=True)
        v, e, eff, c, t, comb = run_vegas(f_np, dims, args.calls, n_int, args.seed)
        print(row("vegas 6.4", v, e, exact, eff, c, t), flush=True)
        print(row("vegas 6.4, all iterations averaged", comb[0], comb[1], exact, eff, c, t), flush=True)
        if not args.skip_madnis:
            v, e, eff, c, t, tc = run_pypi_madnis(f_t, dims, args.calls, n_int, args.seed)
            print(row("PyPI madnis 1.0", v, e, exact, eff, c, t), flush=True)


if __name__ == "__main__":
    main()
