"""Benchmark (not a test): learned channel weights of :class:`madnis_py.nis.Integrator` on processes (issue 7).

For each process (builders of ``bench_nis_processes.py``): a reference σ from ``vegas-multichannel``
(``run_vegas``, 10⁶ calls, seed 7), then for each seed the NIS integrator with all defaults (warm start
from ``MultiChannelVegas``; 60 % of the budget trains, 40 % integrates on fresh points) and
``learn_channel_weights`` False / True (default ``cw_max_correction``) / True with ``--big-bound``.
Prints a Markdown table: σ, rel. error, strict / partial ε_uw (``madnis_py.unweighting``), pull vs the
reference (combined errors) and the relative variance VEGAS → best of the training history.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_nis_channel_weights.py \
        [--processes gg_ttg ee_uuxgg] [--seeds 1 2] [--calls 100000] [--ref-calls 1000000] [--big-bound 5]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_nis_processes import PROCESSES, build, run_ours, run_vegas  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", nargs="+", default=["gg_ttg", "ee_uuxgg"], choices=list(PROCESSES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--ref-calls", type=int, default=1_000_000)
    ap.add_argument("--big-bound", type=float, default=5.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n_int = int(0.4 * args.calls)
    cfgs = [("False (default)", {}),
            ("True, cw_max_correction 2 (default)", {"learn_channel_weights": True}),
            (f"True, cw_max_correction {args.big_bound:g}",
             {"learn_channel_weights": True, "cw_max_correction": args.big_bound})]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
          f"{args.calls} calls ({args.calls - n_int} train / {n_int} integrate)\n")
    print("| process | learn_channel_weights | seed | σ [pb] | rel. error | ε_uw strict | ε_uw partial "
          "| pull vs ref | rel. var VEGAS → best |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in args.processes:
        base = build(key)
        label = PROCESSES[key][0]
        ref = run_vegas(base, args.ref_calls, n_int, 7)
        print(f"| {label} | reference: vegas-multichannel {args.ref_calls} calls | 7 | {ref['value']:.6g} ± "
              f"{ref['error']:.2g} | {ref['error'] / abs(ref['value']):.2e} | {ref['strict']:.4f} | "
              f"{ref['partial']:.4f} | — | — |", flush=True)
        for seed in args.seeds:
            for name, opts in cfgs:
                r = run_ours(base, args.calls, n_int, seed, **opts)
                pull = (r["value"] - ref["value"]) / math.hypot(r["error"], ref["error"])
                rv = r["note"].split(",")[0].replace("rel.var VEGAS ", "").replace(" best", "")
                print(f"| {label} | {name} | {seed} | {r['value']:.6g} ± {r['error']:.2g} | "
                      f"{r['error'] / abs(r['value']):.2e} | {r['strict']:.4f} | {r['partial']:.4f} | "
                      f"{pull:+.2f}σ | {rv} |", flush=True)


if __name__ == "__main__":
    main()
