"""From a validated card to a cross section: the ``madnis integrate`` job.

card -> process (subprocess groups, |M|²) -> PDFs, α_s, cuts, scales ->
:class:`~madnis_py.integrand.CollisionIntegrand` per external-mass class ->
flat / VEGAS / multi-channel VEGAS integration -> a JSON-ready result dictionary.

Methods: ``flat`` (uniform RAMBO), ``vegas`` (single-channel VEGAS over RAMBO, the ``vegas``
package), ``vegas-multichannel`` (:class:`channels.multichannel.MultiChannelVegas` over the
diagram channels of :class:`~madnis_py.multichannel_integrand.MultiChannelIntegrand`).  A card
without ``integrator.method`` gets ``vegas-multichannel`` for every mass class with more than one
channel (``vegas`` otherwise, or when the channels cannot be built, with a note).
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from matrix_elements import SMParameters
from matrix_elements.base import MatrixElementError
from matrix_elements.particles import is_quark
from matrix_elements.process import (
    Subprocess,
    SubprocessGroup,
    check_process,
    group_subprocesses,
    parse_process,
)
from matrix_elements.registry import matrix_element_for

from .card import RunCard
from .errors import InputError, PhysicsError
from .integrand import CollisionIntegrand
from .integrate import IntegrationResult, integrate_flat, integrate_vegas
from .unweighting import unweighting_efficiency


def run_device(name: str) -> torch.device:
    """The card's device as a torch device; one clear line if this machine does not have it."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"the card asks for device '{name}' but CUDA is not available here "
                             f"(torch {torch.__version__}, torch.cuda.is_available() is False): use 'device: cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"the card asks for device '{name}' but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


@dataclass
class PreparedRun:
    """Everything a run needs, built once from a card."""

    card: RunCard
    params: SMParameters
    integrands: list[CollisionIntegrand]
    dropped: list[tuple[str, str]]
    pdf_name: str | None
    alpha_s_desc: str


def _allowed_from_beams(sub: Subprocess, beam_pdgs: tuple[int, int], hadronic: bool) -> bool:
    if hadronic:
        return all((is_quark(p) and abs(p) <= 5) or p in (21, 22) for p in sub.incoming)
    return sub.incoming == beam_pdgs


def prepare(card: RunCard, quiet: bool = False) -> PreparedRun:
    """Build subprocess groups, matrix elements, PDFs and integrands; raise InputError on bad input."""
    params = SMParameters.from_card(card.parameters)
    definition = parse_process(card.process)
    subs = check_process(definition)
    beams = card.collider.beam_pdgs
    hadronic = card.collider.hadronic
    usable = [s for s in subs if _allowed_from_beams(s, beams, hadronic)]
    if not usable:
        what = "partons of the proton beams" if hadronic else f"the beam particles {card.collider.beams}"
        raise InputError(f"no subprocess of '{card.process}' has incoming {what}")
    groups = group_subprocesses(usable)
    device = run_device(card.device)
    built: list[tuple[SubprocessGroup, Any]] = []
    dropped: list[tuple[str, str]] = []
    for g in groups:
        try:
            me = matrix_element_for(g.representative, params, definition.orders)
        except MatrixElementError as exc:
            dropped.append((g.name, str(exc)))
            continue
        built.append((g, me))
    if not built:
        reason = dropped[0][1] if dropped else "no subprocess"
        raise InputError(f"no matrix element for any subprocess of '{card.process}': {reason}")
    # MadGraph default coupling orders apply to the whole multiprocess: keep the lowest WEIGHTED order
    weighted = [getattr(me, "weighted_order", None) for _, me in built]
    if not definition.orders and all(w is not None for w in weighted):
        w_min = min(weighted)
        for (g, me), w in zip(list(built), weighted):
            if w > w_min:
                dropped.append((g.name, f"WEIGHTED order {w} above the process minimum {w_min}"))
        built = [(g, me) for (g, me), w in zip(built, weighted) if w == w_min]
    for name, why in dropped:
        _log(f"note: subprocess '{name}' dropped: {why}", quiet)

    pdf = alpha_s = None
    pdf_name = None
    if hadronic:
        from .pdf import load_pdf

        pdf = load_pdf(card.pdf)
        pdf_name = str(card.pdf)
    if card.alpha_s == "pdf":
        if pdf is not None:
            alpha_s = pdf.alpha_s
            alpha_s_desc = f"pdf ({pdf_name})"
        else:
            alpha_s = params.aS
            alpha_s_desc = f"fixed {params.aS} (param_card aS; lepton beams have no PDF)"
    else:
        alpha_s = float(card.alpha_s)
        alpha_s_desc = f"fixed {alpha_s}"

    classes: "OrderedDict[tuple, list]" = OrderedDict()
    for g, me in built:
        classes.setdefault(tuple(me.masses), []).append((g, me))
    integrands = []
    for masses, items in classes.items():
        threshold = sum(masses[2:])
        if threshold >= card.collider.sqrt_s:
            raise PhysicsError(
                f"sqrt_s = {card.collider.sqrt_s:g} GeV is below the threshold {threshold:g} GeV of "
                f"'{items[0][0].name}'"
            )
        integrands.append(
            CollisionIntegrand(
                [g for g, _ in items],
                [me for _, me in items],
                card.cuts,
                beams,
                card.collider.sqrt_s,
                pdf=pdf,
                alpha_s=alpha_s,
                scale=(card.scale.renormalization, card.scale.factorization),
                device=device,
            )
        )
    return PreparedRun(card, params, integrands, dropped, pdf_name, alpha_s_desc)


class _Stats:
    """Collects non-finite |M|² counts across calls of an integrand."""

    def __init__(self, integrand: CollisionIntegrand):
        self.integrand = integrand
        self.n_nonfinite = 0

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        batch = self.integrand.events(u)
        self.n_nonfinite += batch.n_nonfinite
        return torch.cat([batch.weight[:, None], batch.group_weights], dim=1)


def _multichannel(integrand: CollisionIntegrand, settings, quiet: bool):
    """The multi-channel integrand when the card asks for it (or by default with > 1 channel), else None."""
    if settings.method_given and settings.method not in ("vegas-multichannel", "madnis"):
        return None
    from .multichannel_integrand import MultiChannelIntegrand

    try:
        # method madnis: unfolded channels (the NIS form needs multiplicity 1)
        multi = MultiChannelIntegrand(integrand, fold_symmetric=settings.method != "madnis",
                                      max_channels=settings.max_channels)
    except InputError as exc:
        if settings.method_given:
            raise
        _log(f"note: using single-channel vegas for '{integrand.terms[0].group.name}': {exc}", quiet)
        return None
    if not settings.method_given and multi.n_channels <= 1:
        return None
    return multi


def integrate_card(card: RunCard, quiet: bool = False) -> dict[str, Any]:
    """Run the card's integration; return the result dictionary (σ in pb)."""
    t0 = time.perf_counter()
    run = prepare(card, quiet)
    settings = card.integrator
    _log(f"process: {card.process}  ({sum(len(i.terms) for i in run.integrands)} subprocess groups)", quiet)
    _log(f"cuts in effect: {card.cuts if card.cuts else 'none'}", quiet)
    _log(f"scales: muR = {card.scale.renormalization}, muF = {card.scale.factorization}; alpha_s: {run.alpha_s_desc}", quiet)
    total = 0.0
    var = 0.0
    n_calls = 0
    n_nonfinite = 0
    n_nonzero = 0
    n_passed = 0
    n_channels = 0
    used_methods: list[str] = []
    chi2s = []
    subprocesses = []
    samples: list[torch.Tensor] = []
    training_calls = 0
    calls_each = max(settings.calls // len(run.integrands), 1000)
    for k, integrand in enumerate(run.integrands):
        stats = _Stats(integrand)
        seed = card.seed + 7919 * k

        def check(calls: int, nonzero: int, _name=integrand.terms[0].group.name) -> None:
            if calls >= 1000 and nonzero == 0:
                raise PhysicsError(
                    f"the cuts remove all phase space of '{_name}': none of {calls} sampled points passed "
                    f"(cuts: {card.cuts})"
                )

        multi = _multichannel(integrand, settings, quiet)
        if multi is not None and settings.method == "madnis":
            from .nis.collider import integrate_madnis

            _log(f"  {integrand.terms[0].group.name} (+{len(integrand.terms) - 1} groups): "
                 f"{multi.n_channels} phase-space channels, neural importance sampling", quiet)
            ckpt = settings.checkpoint
            if ckpt is not None and len(run.integrands) > 1:  # one trained integrator per mass class
                root, ext = os.path.splitext(ckpt)
                ckpt = f"{root}.{k}{ext}"
            res, n_training, _ = integrate_madnis(multi, calls_each, seed, integrand.device,
                                                  None if quiet else (lambda m: _log(m, False)), checkpoint=ckpt)
            check(res.n_calls, res.n_nonzero)
            training_calls += n_training
            n_nonfinite += multi.n_nonfinite
            n_passed += multi.n_passed
            n_channels += multi.n_channels
        elif multi is not None:
            from channels.multichannel import MultiChannelVegas

            _log(f"  {integrand.terms[0].group.name} (+{len(integrand.terms) - 1} groups): "
                 f"{multi.n_channels} phase-space channels", quiet)
            mc = MultiChannelVegas(multi, multi.dims, multi.n_channels, seed=seed, batch_size=settings.batch_size,
                                   device=integrand.device, log=None if quiet else (lambda m: _log(m, False)))
            mres = mc.integrate(calls_each, settings.iterations, settings.warmup_fraction)
            check(mres.n_calls, mres.n_nonzero)
            parts = multi.group_parts(mres.channel_values, mres.channel_errors)
            res = IntegrationResult(mres.value, mres.error, mres.n_calls, "vegas-multichannel", parts, mres.chi2_dof,
                                    mres.n_iterations, mres.n_nonzero, mres.wall_time_s, mres.last_weights)
            n_nonfinite += multi.n_nonfinite
            n_passed += multi.n_passed
            n_channels += multi.n_channels
        else:
            if settings.method == "flat":
                res = integrate_flat(stats, integrand.dims, calls_each, seed, settings.batch_size, integrand.device,
                                     quiet)
                check(res.n_calls, res.n_nonzero)
            else:
                res = integrate_vegas(
                    stats, integrand.dims, calls_each, seed, settings.iterations, settings.warmup_fraction,
                    settings.batch_size, integrand.device, quiet, check_warmup=check, unweighting_sample=True,
                )
            n_nonfinite += stats.n_nonfinite
            n_passed += res.n_nonzero
            n_channels += 1
        used_methods.append(res.method)
        total += res.value
        var += res.error**2
        n_calls += res.n_calls
        n_nonzero += res.n_nonzero
        if res.weights is not None and res.weights.numel():
            samples.append(res.weights)
        if res.chi2_dof is not None:
            chi2s.append(res.chi2_dof)
        for term, (v, e) in zip(integrand.terms, res.parts):
            subprocesses.append(
                {
                    "name": term.group.name,
                    "members": [m.subprocess.name for m in term.group.members],
                    "cross_section_pb": v,
                    "error_pb": e,
                }
            )
    # one sample of all mass classes: class k's n_k events (mean σ_k) enter with weight N/n_k · w
    n_all = sum(w.numel() for w in samples)
    eff = unweighting_efficiency(torch.cat([w * (n_all / w.numel()) for w in samples])) if samples else None
    method = settings.method if settings.method_given else "+".join(dict.fromkeys(used_methods))
    if n_nonfinite:
        _log(f"warning: {n_nonfinite} phase-space points had a non-finite |M|^2; their weight was set to 0", quiet)
    error = math.sqrt(var)
    result: dict[str, Any] = {
        "process": card.process,
        "cross_section_pb": total,
        "error_pb": error,
        "relative_error": error / abs(total) if total else None,
        "n_calls": n_calls,
        "method": method,
        "seed": card.seed,
        "subprocesses": subprocesses,
        "wall_time_s": time.perf_counter() - t0,
        "cuts": dict(card.cuts),
        "collider": {"beams": list(card.collider.beams), "sqrt_s": card.collider.sqrt_s},
        "pdf": run.pdf_name,
        "alpha_s": run.alpha_s_desc,
        "scale": card.scale.describe(),
        "parameters": run.params.as_dict(),
        "chi2_dof": max(chi2s) if chi2s else None,
        "cut_efficiency": n_passed / n_calls if n_calls else None,
        "n_channels": n_channels,
        "unweighting_efficiency": eff,
        "n_nonfinite_me": n_nonfinite,
        "dropped_subprocesses": [{"name": n, "reason": r} for n, r in run.dropped],
    }
    if method == "madnis":
        result["training_calls"] = training_calls  # included in n_calls
    _log(f"sigma = {total:.6g} +- {error:.3g} pb  ({n_calls} calls, {result['wall_time_s']:.1f} s)", quiet)
    return result
