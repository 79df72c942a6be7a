"""Multi-channel phase space (issue 5): flat RAMBO vs single-channel VEGAS vs multi-channel VEGAS.

For each process the three methods get the same number of integrand calls (phase-space points)
and report σ, the relative error, the unweighting efficiencies (strict ⟨|w|⟩/max|w| and partial
with the 0.1 %-of-σ reference weight, :mod:`madnis_py.unweighting`) and the wall time; a markdown
table goes to stdout.  Efficiencies are measured on samples of the same size for all methods
(≈ 8 % of the calls: multi-channel VEGAS on its last iteration, VEGAS on one extra iteration with
its final grid — those calls are not part of the budget or the estimate —, flat on its last batch).

Note that one call is one phase-space point: for flat and VEGAS it evaluates the |M|² of every
subprocess group at that point, for multi-channel VEGAS only the group of the point's channel.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_multichannel.py --calls 200000
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from madnis_py.card import parse_card  # noqa: E402
from madnis_py.run import integrate_card  # noqa: E402

LHC_CUTS = {"ptj": 20, "etaj": 5, "drjj": 0.4, "ptl": 10, "etal": 2.5, "drjl": 0.4}
PROCESSES = {
    "pp_ttj": ("p p > t t~ j", ["p", "p"], 13000.0, LHC_CUTS),
    "pp_evjj": ("p p > e+ ve j j", ["p", "p"], 13000.0, LHC_CUTS),
    "ee_jjjj": ("e+ e- > j j j j", ["e+", "e-"], 500.0, {"ptj": 20, "drjj": 0.4}),
}
METHODS = ("flat", "vegas", "vegas-multichannel")


def run_one(key: str, method: str, calls: int, iterations: int, seed: int) -> dict:
    process, beams, sqrt_s, cuts = PROCESSES[key]
    integ = {"method": method, "calls": calls, "iterations": iterations}
    if method == "flat":  # last batch = the unweighting sample, as large as the others' (8 % of calls)
        integ["batch_size"] = max(int(calls * 0.8 / iterations), 1000)
    card = parse_card({"process": process, "collider": {"beams": beams, "sqrt_s": sqrt_s}, "cuts": cuts,
                       "integrator": integ, "seed": seed})
    t0 = time.perf_counter()
    res = integrate_card(card, quiet=True)
    res["bench_wall_s"] = time.perf_counter() - t0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--processes", nargs="*", default=list(PROCESSES))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for key in args.processes:
        for method in METHODS:
            r = run_one(key, method, args.calls, args.iterations, args.seed)
            rows.append((key, method, r))
            eff = r["unweighting_efficiency"] or {"strict": math.nan, "partial": math.nan}
            print(f"# {key} {method}: {r['cross_section_pb']:.5g} +- {r['error_pb']:.2g} pb, "
                  f"{r['n_calls']} calls, {r['bench_wall_s']:.1f} s, eps {eff}", file=sys.stderr, flush=True)
    print(f"calls per method: {args.calls}, iterations: {args.iterations}, seed {args.seed}, "
          f"torch threads 1, {platform.processor() or platform.machine()}\n")
    print("| process | method | channels | σ (pb) | rel. error | ε_uw strict | ε_uw partial | calls | wall (s) "
          "| rel. err / flat's | var × time / flat's |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in args.processes:
        flat = next(r for k, m, r in rows if k == key and m == "flat")
        for k, method, r in rows:
            if k != key:
                continue
            rel = r["relative_error"]
            eff = r["unweighting_efficiency"] or {"strict": math.nan, "partial": math.nan}
            ratio = rel / flat["relative_error"]
            cost = ratio**2 * r["bench_wall_s"] / flat["bench_wall_s"]
            print(f"| {PROCESSES[key][0]} | {method} | {r['n_channels']} | {r['cross_section_pb']:.5g} ± "
                  f"{r['error_pb']:.2g} | {rel:.2e} | {eff['strict']:.2e} | {eff['partial']:.2e} | {r['n_calls']} | "
                  f"{r['bench_wall_s']:.1f} | {ratio:.2f} | {cost:.2f} |")


if __name__ == "__main__":
    main()
