"""Benchmark (not a test): neural multi-channel importance sampling on collider processes (issue 7).

For each process the same physics weight (PDFs × |M|² × cuts × flux of
:class:`madnis_py.integrand.CollisionIntegrand`, built from a card dict exactly as ``madnis integrate``
does) and the same diagram channels (:class:`madnis_py.multichannel_integrand.MultiChannelIntegrand`)
are integrated by three methods, each with the same total integrand budget N (training / adaptation
included):

* ``mc-vegas``    — :class:`channels.multichannel.MultiChannelVegas` as ``method: vegas-multichannel``
  runs it (symmetric channels folded, 10 iterations, 20 % warm-up); σ is its inverse-variance
  combination of the 10 main iterations;
* ``madnis_py``   — :class:`madnis_py.nis.Integrator` on the NIS form ``multi.nis`` (channels unfolded,
  ``channels=k``, all defaults, ``coordinates=multi.coordinates`` as ``method: madnis``: balance-heuristic
  channel weights at integration; ``--ours-options coordinates=False`` for a row with the learned ones):
  ``train(calls=N - n_int)``, then ``integrate`` with all calls left (n_int plus any the training left unspent by
  stopping early, as ``method: madnis`` does);
* ``madnis 1.0``  — PyPI ``madnis`` (the MadGraph team's library) multi-channel on the same NIS form:
  ``Integrand(fn, channel_count=k, remapped_dim=k, has_channel_weight_prior=True)`` with fn returning
  (F/q_c, features, SDE prior α); the channel-weight network gets the same features as ours
  (log of the prior, a function of the physical point only — PyPI madnis would otherwise feed it the
  channel's own unit-cube point, which biases a multi-channel estimate).  Library defaults (RQ-spline
  flow 3 layers × 32 units, 10 bins, stratified-variance loss, Adam lr 1e-3, batch 1024) plus its
  VEGAS pre-training (64 bins, damping 0.7, 10 % of the training budget, initialised into the flows),
  buffered training (10 buffered steps, capacity 32 batches), cosine learning-rate decay and
  stratified channel allocation (uniform share 0.1) — the settings ``bench_nis_toys.py`` uses.
  Trained until N - n_int calls are spent; σ, error (stratified over channels) and ε from
  ``sample(n_int)`` of fresh points.

Efficiencies use one definition for all (``madnis_py.unweighting``): strict ε = ⟨w⟩/max w and partial ε
with w_ref such that 0.1 % of σ lies above it, always on n_int fresh events of the final state (for
mc-vegas an extra ``sample(n_int)``, not counted in its budget).  Time to 10^4 unweighted events =
training (for mc-vegas: its whole integration, i.e. the adaptation) + 10^4 / (ε_strict · r), r = weighted
events per second of the trained sampler (measured on that fresh sample).  Crossover: the number of
unweighted events from which a NIS method's total wall time is below mc-vegas's.  ``--fresh-repeats R``
integrates the trained madnis_py sampler R − 1 more times on independent fresh samples (outside the budget)
and prints the spread of the relative error: on heavy-tailed processes one sample decides ±15 % of it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_nis_processes.py [--calls 200000] \
        [--processes gg_ttg ug_evdg ee_uuxgg ee_evmv] [--skip-madnis] [--fresh-repeats R]
"""
from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
import torch

from channels.multichannel import MultiChannelVegas
from madnis_py import Integrator
from madnis_py.card import parse_card
from madnis_py.multichannel_integrand import MultiChannelIntegrand
from madnis_py.run import prepare
from madnis_py.unweighting import unweighting_efficiencies

LEPTON_CUTS = {"ptl": 10, "etal": 2.5, "drjl": 0.4}
PROCESSES = {
    "gg_ttg": ("g g > t t~ g", ["p", "p"], 13000.0, {"ptj": 20}, "g g > t t~ g (pp 13 TeV, ptj > 20)"),
    # u g > e+ ve u g violates charge conservation; the charge-conserving partonic channel of p p > e+ ve j j:
    "ug_evdg": ("u g > e+ ve d g", ["p", "p"], 13000.0, {"ptj": 20, "etaj": 5, "drjj": 0.4, **LEPTON_CUTS},
                "u g > e+ ve d g (pp 13 TeV, issue-5 cuts)"),
    "ee_uuxgg": ("e+ e- > u u~ g g", ["e+", "e-"], 500.0, {"ptj": 20, "drjj": 0.4},
                 "e+ e- > u u~ g g (500 GeV, ptj 20, drjj 0.4)"),
    # W+W- / single-W / Z resonances; the t-channel photon off the e+ line needs the lepton cuts
    "ee_evmv": ("e+ e- > e+ ve mu- vm~", ["e+", "e-"], 500.0, {"ptl": 10, "etal": 2.5},
                "e+ e- > e+ ve mu- vm~ (500 GeV, ptl 10, etal 2.5)"),
}
N_UNWEIGHTED = 10_000


def build(key: str):
    process, beams, sqrt_s, cuts, _ = PROCESSES[key]
    card = parse_card({"process": process, "collider": {"beams": beams, "sqrt_s": sqrt_s}, "cuts": cuts})
    run = prepare(card, quiet=True)
    if len(run.integrands) != 1:
        raise SystemExit(f"{process}: expected one mass class, got {len(run.integrands)}")
    return run.integrands[0]


def stratified(w: torch.Tensor, channel: torch.Tensor, k: int) -> tuple[float, float]:
    """Σ_c mean_c(w) and (Σ_c var_c / n_c)^½ for per-channel weights w (not the N/n_c event weights)."""
    n = torch.zeros(k, dtype=torch.float64).index_add(0, channel, torch.ones_like(w))
    mean = torch.zeros(k, dtype=torch.float64).index_add(0, channel, w) / n.clamp_min(1)
    var = torch.zeros(k, dtype=torch.float64).index_add(0, channel, (w - mean[channel]) ** 2) / (n - 1).clamp_min(1)
    ok = n > 0
    return float(mean[ok].sum()), float((var[ok] / n[ok]).sum().sqrt())


def run_vegas(base, calls: int, n_int: int, seed: int) -> dict:
    t0 = time.perf_counter()
    multi = MultiChannelIntegrand(base, fold_symmetric=True)
    mc = MultiChannelVegas(multi, multi.dims, multi.n_channels, seed=seed)
    res = mc.integrate(calls, iterations=10, warmup_fraction=0.2)
    t_train = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = mc.sample(n_int)
    t_gen = time.perf_counter() - t1
    strict, partial, _ = unweighting_efficiencies(ev.weight)
    return dict(value=res.value, error=res.error, calls=res.n_calls, wall=t_train, t_train=t_train,
                rate=ev.weight.numel() / t_gen, strict=strict, partial=partial, k=multi.n_channels,
                note=f"χ²/dof {res.chi2_dof:.2f}")


def _option_value(v: str):
    """A command-line option value: True/False, an int, a float, else the string (e.g. loss=l3)."""
    if v in ("True", "False"):
        return v == "True"
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def run_ours(base, calls: int, n_int: int, seed: int, repeats: int = 1, **options) -> dict:
    """Train on ``calls - n_int``, integrate the rest; ``repeats`` > 1: that many more independent fresh
    integrations of ``n_int`` calls from the same trained state (outside the budget), whose relative errors show
    how much one fresh sample of heavy-tailed weights decides (``fresh_rel_errors``, scaled to ``n_int`` calls)."""
    t0 = time.perf_counter()
    multi = MultiChannelIntegrand(base, fold_symmetric=False)
    options.setdefault("coordinates", multi.coordinates)  # balance-heuristic α at integration, as `method: madnis`
    if options["coordinates"] is False:
        options["coordinates"] = None
    options.setdefault("samplers", multi.samplers())  # symmetric channels share a flow + grid, as `method: madnis`
    if options["samplers"] is False:
        options["samplers"] = None
    integ = Integrator(multi.nis, multi.dims, channels=multi.n_channels, seed=seed, progress=False, **options)
    hist = integ.train(calls=calls - n_int)
    t_train = time.perf_counter() - t0
    # calls the training left unspent (early stop) go to the integration, as `method: madnis` does
    r = integ.integrate(calls=calls - integ.total_calls)
    wall = time.perf_counter() - t0
    budget_calls = integ.total_calls  # before any repeats
    fresh = [r.error / abs(r.value) * math.sqrt(r.n_calls / n_int)]
    for _ in range(repeats - 1):
        rr = integ.integrate(calls=n_int)
        fresh.append(rr.error / abs(rr.value))
    note = (f"rel.var VEGAS {hist.vegas_rel_variance:.3g} → best {hist.best_rel_variance:.3g}, "
            f"{hist.steps} steps, {len(hist.epochs)} epochs{', stopped early' if hist.stopped_early else ''}, "
            f"{int(integ.active.sum())}/{multi.n_channels} active")
    return dict(value=r.value, error=r.error, calls=budget_calls, wall=wall, t_train=t_train,
                rate=r.n_calls / r.wall_time_s, strict=r.unweighting_efficiency, n_fresh=r.n_calls,
                train_calls=integ.training_calls,
                partial=r.partial_unweighting_efficiency, k=multi.n_channels, note=note, fresh_rel_errors=fresh)


def run_pypi_madnis(base, calls: int, n_int: int, seed: int, warmup_fraction: float = 0.1,
                    buffered_steps: int = 10, batch_size: int = 1024) -> dict:
    from madnis.integrator import Integrand as MIntegrand
    from madnis.integrator import Integrator as MI
    from madnis.integrator import VegasPreTraining

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    multi = MultiChannelIntegrand(base, fold_symmetric=False)
    k, dims = multi.n_channels, multi.dims
    count = dict(calls=0, nonzero=0)

    def fn(x, c):
        w, prior, _ = multi.nis(x, c)
        count["calls"] += x.shape[0]
        count["nonzero"] += int((w != 0).sum())
        feats = torch.log(prior.clamp_min(1e-6))
        return w.to(x.dtype), feats.to(x.dtype), prior.to(x.dtype)

    integrand = MIntegrand(fn, input_dim=dims, channel_count=k, remapped_dim=k, has_channel_weight_prior=True)
    mi = MI(integrand, batch_size=batch_size, buffer_capacity=32 * batch_size, buffered_steps=buffered_steps,
            uniform_channel_ratio=0.1)
    train_budget = calls - n_int
    warm = int(warmup_fraction * train_budget)
    if warm >= 1000:
        vp = VegasPreTraining(mi, bins=64, damping=0.7)
        vp.rng = np.random.default_rng(seed)
        it = max(1, warm // 10_000)
        vp.train([max(warm // it // k, 2)] * it)
        vp.initialize_integrator()
    # a fresh training step draws batches until half of them are non-zero (cuts): calls per step
    nz = count["nonzero"] / count["calls"] if count["calls"] else 1.0
    per_step = batch_size * (math.floor(0.5 / max(nz, 1e-3)) + 1)
    steps = max(1, (train_budget - count["calls"]) // per_step)
    mi.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(mi.optimizer, steps * (1 + buffered_steps))
    n_fresh = n_buffered = 0
    while count["calls"] + per_step <= train_budget:
        if mi.train_step().buffered:
            n_buffered += 1
        else:
            n_fresh += 1
    train_calls = count["calls"]
    t_train = time.perf_counter() - t0
    t1 = time.perf_counter()
    s = mi.sample(n_int)
    t_gen = time.perf_counter() - t1
    W = s.weights.detach().to(torch.float64)
    ch = s.channels.long()
    n_c = torch.bincount(ch, minlength=k).to(torch.float64)
    w_raw = W / (W.numel() / n_c.clamp_min(1))[ch]
    value, error = stratified(w_raw, ch, k)
    strict, partial, _ = unweighting_efficiencies(W)
    return dict(value=value, error=error, calls=count["calls"], wall=time.perf_counter() - t0, t_train=t_train,
                rate=W.numel() / t_gen, strict=strict, partial=partial, k=k, n_fresh=n_int, train_calls=train_calls,
                note=f"{train_calls} training calls, {n_fresh} fresh + {n_buffered} buffered steps")


def t_unweighted(r: dict, n_events: float) -> float:
    return r["t_train"] + n_events / (r["strict"] * r["rate"])


def crossover(nis: dict, veg: dict) -> str:
    """Unweighted events from which ``nis`` needs less wall time than ``veg`` (training included)."""
    a = 1.0 / (veg["strict"] * veg["rate"]) - 1.0 / (nis["strict"] * nis["rate"])  # s per event saved
    dt = nis["t_train"] - veg["t_train"]
    if a <= 0:
        return "never" if dt > 0 else "always (0)"
    return "always (0)" if dt <= 0 else f"{dt / a:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000, help="total integrand budget per method and process")
    ap.add_argument("--int-fraction", type=float, default=0.4, help="NIS: share of the budget for the integration")
    ap.add_argument("--processes", nargs="+", default=list(PROCESSES), choices=list(PROCESSES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-madnis", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fresh-repeats", type=int, default=1, metavar="R",
                    help="madnis_py: R-1 more independent fresh integrations of n_int calls from the same trained "
                         "state (outside the budget), to show the spread of one sample's error")
    ap.add_argument("--ours-options", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra row: madnis_py.nis.Integrator with these options (e.g. learning_rate=1e-3)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {args.threads} torch thread(s), "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"budget {args.calls} calls per method, n_int = {int(args.int_fraction * args.calls)}")
    n_int = int(args.int_fraction * args.calls)
    summary = []
    for key in args.processes:
        label = PROCESSES[key][4]
        base = build(key)
        methods = [("mc-vegas", run_vegas),
                   ("madnis_py", lambda b, c, n, s_: run_ours(b, c, n, s_, repeats=args.fresh_repeats))]
        if args.ours_options:
            opts = {k: _option_value(v) for k, v in (o.split("=", 1) for o in args.ours_options)}
            methods.append((f"madnis_py ({', '.join(args.ours_options)})",
                            lambda b, c, n, s, _o=opts: run_ours(b, c, n, s, **_o)))
        if not args.skip_madnis:
            methods.append(("madnis 1.0", run_pypi_madnis))
        res = {}
        failed = {}
        for name, fn in methods:
            try:
                res[name] = fn(base, args.calls, n_int, args.seed)
            except Exception as exc:  # report and go on with the other methods
                failed[name] = f"{type(exc).__name__}: {exc}"
        if "mc-vegas" not in res:
            print(f"\n### {label}\n\nmc-vegas failed: {failed.get('mc-vegas')}")
            continue
        print(f"\n### {label}\n")
        print("| method | channels | σ [pb] | rel. error | ε_uw strict | ε_uw partial | calls | wall [s] "
              "| train [s] | events/s | t(10^4 unw.) [s] | crossover vs mc-vegas [unw. events] |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        veg = res["mc-vegas"]
        for name, r in res.items():
            cross = "—" if name == "mc-vegas" else crossover(r, veg)
            print(f"| {name} | {r['k']} | {r['value']:.6g} ± {r['error']:.2g} | {r['error'] / abs(r['value']):.2e} | "
                  f"{r['strict']:.4f} | {r['partial']:.4f} | {r['calls']} | {r['wall']:.1f} | {r['t_train']:.1f} | "
                  f"{r['rate']:.3g} | {t_unweighted(r, N_UNWEIGHTED):.1f} | {cross} |")
        for name, why in failed.items():
            print(f"| {name} | FAILED: {why} |")
        names = list(res)
        pulls = []
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = res[names[i]], res[names[j]]
                pulls.append(f"{names[i]} − {names[j]}: {(a['value'] - b['value']) / math.hypot(a['error'], b['error']):+.2f}σ")
        print("\npulls: " + "; ".join(pulls))
        for name, r in res.items():
            print(f"  {name}: {r['note']}")
        # rel. error at 10^6 calls: NIS trained once (fixed training calls), the rest integrates;
        # mc-vegas: rel. error ∝ 1/√calls at its measured per-call variance (no further grid gain)
        ext = {}
        for name, r in res.items():
            if name == "mc-vegas":
                ext[name] = r["error"] / abs(r["value"]) * math.sqrt(r["calls"] / 1e6)
            else:
                ext[name] = r["error"] / abs(r["value"]) * math.sqrt(r["n_fresh"] / (1e6 - r["train_calls"]))
        print("rel. error at 10^6 calls (extrapolated): " + ", ".join(f"{n} {e:.2e}" for n, e in ext.items()))
        for name in [n for n in res if n.startswith("madnis_py")]:
            ours = res[name]
            ratio = [f"ε_uw /mc-vegas {ours['strict'] / veg['strict']:.2f} (partial {ours['partial'] / veg['partial']:.2f})",
                     f"rel. error at 10^6 /mc-vegas {ext[name] / ext['mc-vegas']:.2f}"]
            if "madnis 1.0" in res:
                mm = res["madnis 1.0"]
                ratio.append(f"ε_uw /madnis 1.0 {ours['strict'] / mm['strict']:.2f} (partial "
                             f"{ours['partial'] / mm['partial']:.2f}); rel. error at 10^6 /madnis 1.0 "
                             f"{ext[name] / ext['madnis 1.0']:.2f}")
            print(f"ratios {name}: " + "; ".join(ratio))
            fr = sorted(ours.get("fresh_rel_errors", []))
            if len(fr) > 1:
                veg_rel = veg["error"] / abs(veg["value"])  # mc-vegas with the whole budget
                print(f"  {name}: rel. error of {len(fr)} independent fresh samples of {n_int} calls: "
                      f"{', '.join(f'{e:.3e}' for e in fr)}; / mc-vegas (same budget): min {fr[0] / veg_rel:.2f}, "
                      f"median {fr[len(fr) // 2] / veg_rel:.2f}, max {fr[-1] / veg_rel:.2f}")
        summary.append((label, res))


if __name__ == "__main__":
    main()
