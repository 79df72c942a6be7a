"""From a validated card to a cross section: the ``madnis integrate`` job.

card -> process (subprocess groups, |M|²) -> PDFs, α_s, cuts, scales ->
:class:`~madnis_py.integrand.CollisionIntegrand` per external-mass class ->
flat / VEGAS integration -> a JSON-ready result dictionary.
"""
from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from matrix_elements import SMParameters
from matrix_elements.base import MatrixElementError
from matrix_elements.particles import is_quark, name_of
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
    device = torch.device(card.device)
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
    chi2s = []
    subprocesses = []
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

        if settings.method == "flat":
            res = integrate_flat(stats, integrand.dims, calls_each, seed, settings.batch_size, integrand.device, quiet)
            check(res.n_calls, res.n_nonzero)
        else:
            res = integrate_vegas(
                stats, integrand.dims, calls_each, seed, settings.iterations, settings.warmup_fraction,
                settings.batch_size, integrand.device, quiet, check_warmup=check,
            )
        total += res.value
        var += res.error**2
        n_calls += res.n_calls
        n_nonzero += res.n_nonzero
        n_nonfinite += stats.n_nonfinite
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
    if n_nonfinite:
        _log(f"warning: {n_nonfinite} phase-space points had a non-finite |M|^2; their weight was set to 0", quiet)
    error = math.sqrt(var)
    result: dict[str, Any] = {
        "process": card.process,
        "cross_section_pb": total,
        "error_pb": error,
        "relative_error": error / abs(total) if total else None,
        "n_calls": n_calls,
        "method": settings.method,
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
        "cut_efficiency": n_nonzero / n_calls if n_calls else None,
        "n_nonfinite_me": n_nonfinite,
        "dropped_subprocesses": [{"name": n, "reason": r} for n, r in run.dropped],
    }
    _log(f"sigma = {total:.6g} +- {error:.3g} pb  ({n_calls} calls, {result['wall_time_s']:.1f} s)", quiet)
    return result
