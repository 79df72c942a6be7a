"""Throughput of the general matrix-element engine on this machine (float64).

For e+e- → μ+μ-, g g → t t̄ (+ 0..3 gluons): build time, |M|² evaluations per second at batch
sizes 1e3, 1e4, 1e5 (each cut off when it would take longer than ``--max-seconds``), with 1 and 2
torch threads (wall clock, best of up to 3 repetitions; also per CPU-second of the process, which
is the per-core rate and much less sensitive to other jobs on a shared machine), and the peak extra memory per event in flight (peak RSS increase over the engine's
chunk).  Each (process, threads) point runs in a fresh subprocess so RSS and thread settings are
clean.  Momenta: RAMBO at √s = 1.5 TeV.  Prints a markdown table; ``--json`` writes the numbers.

    python benchmarks/bench_me.py                       # all processes, 1 and 2 threads
    python benchmarks/bench_me.py --processes tt ttgg --threads 1
    python benchmarks/bench_me.py --tune-malloc         # glibc: keep freed memory (fewer page faults)

``--tune-malloc`` sets MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ for the worker processes:
PyTorch's CPU allocator returns large blocks to the OS, and re-faulting them costs up to ~40%
for the larger processes; this changes nothing in the library itself.

Reference (MadGraph5_aMC@NLO Fortran standalone, one core, from the project brief):
g g > t t~ g g 1.85e3/s, g g > t t~ g 2.4e4/s, g g > t t~ 1.9e5/s, e+ e- > mu+ mu- 1.07e6/s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROCESSES = {
    "ee_mumu": ("e+ e- > mu+ mu-", (-11, 11, -13, 13)),
    "tt": ("g g > t t~", (21, 21, 6, -6)),
    "ttg": ("g g > t t~ g", (21, 21, 6, -6, 21)),
    "ttgg": ("g g > t t~ g g", (21, 21, 6, -6, 21, 21)),
    "ttggg": ("g g > t t~ g g g", (21, 21, 6, -6, 21, 21, 21)),
}
MADGRAPH_ONE_CORE = {"ee_mumu": 1.07e6, "tt": 1.9e5, "ttg": 2.4e4, "ttgg": 1.85e3}
BATCHES = (1000, 10000, 100000)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(name: str, threads: int, max_seconds: float) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from channels.rambo import Rambo
    from matrix_elements.engine import build_matrix_element
    from matrix_elements.model import SMParameters

    torch.set_num_threads(threads)
    _, pdgs = PROCESSES[name]
    params = SMParameters()
    t0 = time.perf_counter()
    me = build_matrix_element(pdgs, params)
    build = time.perf_counter() - t0
    masses = [params.mass(p) for p in pdgs[2:]]
    rambo = Rambo(len(masses), masses, 1500.0)

    def momenta(n: int):
        u = torch.rand(n, rambo.dims_in, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
        out, _ = rambo.forward(u)
        pin = torch.tensor([[750.0, 0, 0, 750.0], [750.0, 0, 0, -750.0]], dtype=torch.float64)
        return torch.cat([pin.expand(n, 2, 4), out], dim=1).contiguous()

    chunk = me._chunk()
    me(momenta(min(chunk, 64)))  # warm-up
    rss0 = _rss_bytes()
    rates, cpu_rates = {}, {}
    est = None
    for n in BATCHES:
        if est is not None and n / est > max_seconds:
            break
        p = momenta(n)
        reps = 3 if n <= 10000 else (2 if n / (est or 1e300) * 2 < max_seconds else 1)
        best = best_cpu = float("inf")
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            v = me(p)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        assert bool(torch.isfinite(v).all())
        rates[n] = n / best
        cpu_rates[n] = n / best_cpu
        est = rates[n]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    mem_per_event = max(0, peak - rss0) / chunk
    return {"process": name, "threads": threads, "build_s": build, "diagrams": me.n_diagrams,
            "chunk": chunk, "rates": rates, "cpu_rates": cpu_rates, "mem_per_event": mem_per_event}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", nargs="*", default=list(PROCESSES), choices=list(PROCESSES))
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--max-seconds", type=float, default=60.0, help="skip batch sizes that would take longer")
    ap.add_argument("--tune-malloc", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        name, threads, max_s = args.worker
        print(json.dumps(worker(name, int(threads), float(max_s))))
        return
    env = dict(os.environ)
    if args.tune_malloc:
        env.update(MALLOC_MMAP_THRESHOLD_=str(2**32), MALLOC_TRIM_THRESHOLD_=str(2**36))
    results = []
    for name in args.processes:
        for threads in args.threads:
            env["OMP_NUM_THREADS"] = str(threads)
            out = subprocess.run([sys.executable, __file__, "--worker", name, str(threads), str(args.max_seconds)],
                                 env=env, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res["rates"] = {int(k): v for k, v in res["rates"].items()}
            res["cpu_rates"] = {int(k): v for k, v in res["cpu_rates"].items()}
            results.append(res)
            print(f"# done {name} threads={threads}", file=sys.stderr)
    head = "| process | diagrams | threads | build [s] | " + " | ".join(f"ev/s @ {n:.0e}" for n in BATCHES) \
        + " | ev/CPU-s (best) | MadGraph 1 core | bytes/event | chunk |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in results:
        rates = " | ".join(f"{r['rates'][n]:.3g}" if n in r["rates"] else "–" for n in BATCHES)
        rates += f" | {max(r['cpu_rates'].values()):.3g}"
        mg = MADGRAPH_ONE_CORE.get(r["process"])
        print(f"| {PROCESSES[r['process']][0]} | {r['diagrams']} | {r['threads']} | {r['build_s']:.2f} | {rates} | "
              f"{mg:.3g} | {r['mem_per_event']:.3g} | {r['chunk']} |" if mg else
              f"| {PROCESSES[r['process']][0]} | {r['diagrams']} | {r['threads']} | {r['build_s']:.2f} | {rates} | "
              f"– | {r['mem_per_event']:.3g} | {r['chunk']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
