"""Multi-channel phase space (issue 5): flat RAMBO vs single-channel VEGAS vs multi-channel VEGAS.

For each process the three methods get the same number of integrand calls (phase-space points)
and report σ, the relative error, the unweighting efficiencies (strict ⟨|w|⟩/max|w| and partial
with the 0.1 %-of-σ reference weight, :mod:`madnis_py.unweighting`) and the wall time; a markdown
table goes to stdout.  Efficiencies are measured on samples of the same size for all methods
(≈ 8 % of the calls: multi-channel VEGAS on its last iteration, VEGAS on one extra iteration with
its final grid — those calls are not part of the budget or the estimate —, flat on its last batch).

Optional fourth method for the fixed-energy (e+e-) process: ``madspace-multichannel`` — the same
channels (diagram grouping, multiplicities, SDE weights, multi-channel VEGAS, cuts in the integrand)
but each channel's mapping is PyPI ``madspace``'s ``PhaseSpaceMapping`` built from the same diagram
topology (its density w.r.t. dΦ_n, (2π) factors included, was checked against the massless n-body
volume).  Hadronic madspace channels are not wired (their luminosity sampling and ŝ bounds would
need the cuts folded into madspace's own ``Cuts``).

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


def _madspace_diagram(topo):
    """``madspace.Diagram`` of a :class:`matrix_elements.topology.Topology` (same legs and propagators)."""
    import madspace as ms

    def line(code: int):
        return ms.LineRef(f"o{code - topo.n_in}") if code >= 0 else ms.LineRef(f"p{-code - 1}")

    props = list(topo.propagators)
    n_s = len(topo.s_channel)
    vertices = [[ms.LineRef(f"p{k}")] + [line(c) for c in p.daughters] for k, p in enumerate(props[:n_s])]
    chain = topo.t_chain
    if len(chain) == 1:
        vertices.append([ms.LineRef("i0"), ms.LineRef("i1")] + [line(c) for c in chain[0]])
    else:
        for i, objs in enumerate(chain):
            left = ms.LineRef("i0") if i == 0 else ms.LineRef(f"p{n_s + i - 1}")
            right = ms.LineRef("i1") if i == len(chain) - 1 else ms.LineRef(f"p{n_s + i}")
            vertices.append([left] + [line(c) for c in objs] + [right])
    masses = [m for _, m in topo.externals]
    return ms.Diagram(masses[:2], masses[2:], [ms.Propagator(mass=p.mass, width=p.width, pdg_id=p.pdg) for p in props],
                      vertices)


class MadSpaceChannel:
    """A channel of :func:`channels.channel.build_channels` with its mapping replaced by madspace's (e+e- only)."""

    def __init__(self, channel, sqrt_s: float):
        import madspace as ms

        self.topology, self.diagrams, self.multiplicity = channel.topology, channel.diagrams, channel.multiplicity
        self.mapping = ms.PhaseSpaceMapping(ms.Topology(_madspace_diagram(channel.topology)), sqrt_s, leptonic=True)
        self.dims_in = self.mapping.random_dim()

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.mapping.map_forward([u.contiguous()])
        det = out.det  # Jacobian 1/g w.r.t. dΦ_n
        return out.momenta, torch.where(det > 0, -torch.log(det), torch.full_like(det, -math.inf))


def run_madspace(key: str, calls: int, iterations: int, seed: int) -> dict:
    """Multi-channel VEGAS with madspace channel mappings, the settings run.py uses for vegas-multichannel."""
    from channels.channel import build_channels
    from channels.multichannel import MultiChannelVegas
    from madnis_py.multichannel_integrand import MultiChannelIntegrand
    from madnis_py.run import prepare
    from madnis_py.unweighting import unweighting_efficiency

    process, beams, sqrt_s, cuts = PROCESSES[key]
    card = parse_card({"process": process, "collider": {"beams": beams, "sqrt_s": sqrt_s}, "cuts": cuts,
                       "integrator": {"calls": calls, "iterations": iterations}, "seed": seed})
    t0 = time.perf_counter()
    run = prepare(card, quiet=True)
    (base,) = run.integrands

    def builder(topologies, sqrt_s, hadronic, **kw):
        return [MadSpaceChannel(c, sqrt_s) for c in build_channels(topologies, sqrt_s, hadronic, **kw)]

    multi = MultiChannelIntegrand(base, builder=builder)
    res = MultiChannelVegas(multi, multi.dims, multi.n_channels, seed=seed).integrate(
        calls, iterations, card.integrator.warmup_fraction)
    return {"cross_section_pb": res.value, "error_pb": res.error, "relative_error": res.error / abs(res.value),
            "n_calls": res.n_calls, "n_channels": multi.n_channels, "bench_wall_s": time.perf_counter() - t0,
            "unweighting_efficiency": unweighting_efficiency(res.last_weights), "chi2_dof": res.chi2_dof}


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
    ap.add_argument("--no-madspace", action="store_true", help="skip the madspace channels (e+e- only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for key in args.processes:
        methods = list(METHODS)
        if not args.no_madspace and PROCESSES[key][1][0].startswith("e"):
            methods.append("madspace-multichannel")
        for method in methods:
            if method == "madspace-multichannel":
                r = run_madspace(key, args.calls, args.iterations, args.seed)
            else:
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
