"""Benchmark (not a test): ``method: madnis`` vs ``vegas-multichannel`` through the card path at equal calls.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_madnis_card.py CALLS METHODS PROCESSES [SEED]
    e.g.  ... bench_madnis_card.py 100000 vegas-multichannel,madnis ee,pp 5

ee: e+ e- > u u~ g g, 500 GeV, ptj 20, drjj 0.4;  pp: p p > e+ e- j, 13 TeV, ptj 20, mmll 60.
Prints σ ± error [pb], relative error, ε_uw strict/partial, calls, training calls, channels, wall time.
Environment TRAIN_FRACTION overrides ``madnis_py.nis.collider.TRAIN_FRACTION``.
"""
import os
import sys
import time

import torch

import madnis_py.nis.collider as collider
from madnis_py.card import parse_card
from madnis_py.run import integrate_card

torch.set_num_threads(1)
if os.environ.get("TRAIN_FRACTION"):
    collider.TRAIN_FRACTION = float(os.environ["TRAIN_FRACTION"])
PROC = {
    "ee": {"process": "e+ e- > u u~ g g", "collider": {"beams": ["e+", "e-"], "sqrt_s": 500},
           "cuts": {"ptj": 20, "drjj": 0.4}},
    "pp": {"process": "p p > e+ e- j", "collider": {"beams": ["p", "p"], "sqrt_s": 13000},
           "cuts": {"ptj": 20, "mmll": 60}},
}
calls, methods, procs = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 5
for p in procs:
    for m in methods:
        card = dict(PROC[p], integrator={"method": m, "calls": calls}, seed=seed)
        t0 = time.perf_counter()
        r = integrate_card(parse_card(card), quiet=True)
        eff = r["unweighting_efficiency"]
        print(f"{p} {m:20s} sigma {r['cross_section_pb']:.5g} +- {r['error_pb']:.3g} rel {r['relative_error']:.3g} "
              f"eps {eff['strict']:.3g}/{eff['partial']:.3g} calls {r['n_calls']} train {r.get('training_calls')} "
              f"ch {r['n_channels']} wall {time.perf_counter() - t0:.0f}s", flush=True)
