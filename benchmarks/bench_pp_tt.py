"""Benchmark (not a test): p p > t t~ at 13 TeV with the VEGAS baseline to 0.1 % relative error.

Prints a markdown row with σ, error, integrand calls, wall time and integrand (= |M|² x PDF)
evaluations per second, for pasting into benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_pp_tt.py [--target 1e-3] [--threads 2]
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from madnis_py.card import parse_card
from madnis_py.run import integrate_card


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=float, default=1e-3, help="target relative error")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scale", default="173.0")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    calls = 200_000
    while True:
        card = parse_card(
            {
                "process": "p p > t t~",
                "collider": {"beams": ["p", "p"], "sqrt_s": 13000},
                "scale": float(args.scale) if args.scale[0].isdigit() else args.scale,
                "integrator": {"method": "vegas", "calls": calls},
                "seed": 1,
            }
        )
        t0 = time.perf_counter()
        res = integrate_card(card, quiet=True)
        wall = time.perf_counter() - t0
        rel = res["error_pb"] / res["cross_section_pb"]
        print(f"calls={res['n_calls']:>9d}  sigma={res['cross_section_pb']:.5f} +- {res['error_pb']:.5f} pb  "
              f"rel={rel:.2e}  wall={wall:.2f}s  chi2/dof={res['chi2_dof']:.2f}", flush=True)
        if rel <= args.target or calls >= 50_000_000:
            break
        calls = int(calls * min(max((rel / args.target) ** 2 * 1.2, 1.5), 8))
    n_me = res["n_calls"] * len(res["subprocesses"])
    print()
    print("| process | σ [pb] | rel. error | integrand calls | |M|² evaluations | wall [s] | calls/s | machine |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| p p > t t~ (13 TeV, μ = {args.scale}) | {res['cross_section_pb']:.3f} ± {res['error_pb']:.3f} | "
          f"{rel:.1e} | {res['n_calls']} | {n_me} | {wall:.1f} | {res['n_calls'] / wall:.3g} | "
          f"{platform.processor() or platform.machine()}, {args.threads} threads |")


if __name__ == "__main__":
    main()
