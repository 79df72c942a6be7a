"""The process card: YAML -> validated, typed :class:`RunCard`.

Example (every key but ``process`` and ``collider`` is optional)::

    process: p p > t t~            # MadGraph syntax
    collider: {beams: [p, p], sqrt_s: 13000}   # GeV; beams p, p~, e+, e-
    pdf: NNPDF23_lo_as_0130_qed    # LHAPDF set name or ID (default: the bundled set)
    scale: 173.0                   # fixed μR = μF (GeV), a dynamic name, or {renormalization: .., factorization: ..}
    alpha_s: pdf                   # 'pdf' = the set's α_s(μR), or a fixed number
    cuts: {ptj: 20, etaj: 5}       # MadGraph run_card names; only the listed cuts are applied
    parameters: {MT: 173.0}        # MadGraph param_card names
    integrator: {method: vegas-multichannel, calls: 1000000}   # or vegas, flat; default: vegas-multichannel
                                   # when the process has > 1 phase-space channel, else vegas
    seed: 1
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from .errors import CardError, suggest

#: beam names -> PDG id of the beam particle
BEAMS: dict[str, int] = {"p": 2212, "p~": -2212, "e+": -11, "e-": 11}

#: dynamic scale names (case-insensitive) accepted by :mod:`madnis_py.scales`
DYNAMIC_SCALES = ("HT/2", "HT", "mT-sum/2", "mT-sum", "sqrt_shat")

METHODS = ("vegas", "flat", "vegas-multichannel", "madnis")
DEFAULT_PDF = "NNPDF23_lo_as_0130_qed"

TOP_KEYS = ("process", "collider", "pdf", "scale", "alpha_s", "cuts", "parameters", "integrator", "seed", "device")
COLLIDER_KEYS = ("beams", "sqrt_s")
SCALE_KEYS = ("renormalization", "factorization")
INTEGRATOR_KEYS = ("method", "calls", "iterations", "warmup_fraction", "batch_size", "max_channels", "checkpoint")


@dataclass(frozen=True)
class Collider:
    """Two beams and the hadronic (or e+e-) centre-of-mass energy √s in GeV."""

    beams: tuple[str, str]
    sqrt_s: float

    @property
    def beam_pdgs(self) -> tuple[int, int]:
        return BEAMS[self.beams[0]], BEAMS[self.beams[1]]

    @property
    def hadronic(self) -> bool:
        return all(abs(p) == 2212 for p in self.beam_pdgs)


@dataclass(frozen=True)
class ScaleChoice:
    """μ_R and μ_F: each a fixed value in GeV or a dynamic-scale name."""

    renormalization: float | str
    factorization: float | str

    def describe(self) -> dict[str, float | str]:
        return {"renormalization": self.renormalization, "factorization": self.factorization}


@dataclass(frozen=True)
class IntegratorSettings:
    method: str = "vegas"
    calls: int = 1_000_000
    iterations: int = 10
    warmup_fraction: float = 0.2
    batch_size: int = 100_000
    max_channels: int = 1000
    #: False when the card names no method: run.py then uses vegas-multichannel for processes with
    #: more than one phase-space channel (``method`` stays "vegas", the single-channel fallback)
    method_given: bool = True
    #: ``method: madnis`` only: file of the trained integrator (grids, flows, channel weights); loaded and
    #: reused without training when it exists, written (atomically) after training when it does not
    checkpoint: str | None = None


@dataclass(frozen=True)
class RunCard:
    process: str
    collider: Collider
    pdf: str | int = DEFAULT_PDF
    scale: ScaleChoice = field(default_factory=lambda: ScaleChoice("mT-sum/2", "mT-sum/2"))
    alpha_s: str | float = "pdf"
    cuts: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, float] = field(default_factory=dict)
    integrator: IntegratorSettings = field(default_factory=IntegratorSettings)
    seed: int = 1
    device: str = "cpu"
    source: str = ""


def _check_keys(section: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in given:
        if key not in allowed:
            where = f" in '{section}'" if section else ""
            raise CardError(f"unknown card key '{key}'{where}{suggest(str(key), allowed)}; allowed: {', '.join(allowed)}")


def _number(section: str, value: Any, positive: bool = True) -> float:
    if isinstance(value, bool):
        raise CardError(f"'{section}' must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CardError(f"'{section}' must be a number, got {value!r}") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise CardError(f"'{section}' must be a finite {'positive ' if positive else ''}number, got {value!r}")
    return v


def _scale_value(section: str, value: Any) -> float | str:
    if isinstance(value, str):
        for name in DYNAMIC_SCALES:
            if value.strip().lower() == name.lower():
                return name
        try:
            return _number(section, value)
        except CardError:
            raise CardError(
                f"unknown scale '{value}' for {section}{suggest(value, DYNAMIC_SCALES)}; "
                f"use a fixed value in GeV or one of {', '.join(DYNAMIC_SCALES)}"
            ) from None
    return _number(section, value)


DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")


def _device(value: Any) -> str:
    """The card's ``device``: ``cpu`` (default), ``cuda`` or ``cuda:N`` (whether it exists is checked at run time)."""
    text = str(value).strip().lower()
    if not DEVICE_PATTERN.fullmatch(text):
        raise CardError(f"'device' must be 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return text


def parse_card(data: Any, source: str = "") -> RunCard:
    """Validate a card already loaded from YAML (a mapping)."""
    if not isinstance(data, Mapping):
        raise CardError(f"card{' ' + source if source else ''} must be a YAML mapping of keys to values")
    _check_keys("", data, TOP_KEYS)
    if "process" not in data:
        raise CardError("card has no 'process' (e.g. process: p p > t t~)")
    if not isinstance(data["process"], str):
        raise CardError("'process' must be a string such as 'p p > t t~'")
    if "collider" not in data or not isinstance(data["collider"], Mapping):
        raise CardError("card needs 'collider: {beams: [p, p], sqrt_s: 13000}'")
    col = data["collider"]
    _check_keys("collider", col, COLLIDER_KEYS)
    beams = col.get("beams", ["p", "p"])
    if not isinstance(beams, (list, tuple)) or len(beams) != 2:
        raise CardError("'collider.beams' must be a list of two beams, e.g. [p, p]")
    beams = tuple(str(b).strip().lower() for b in beams)
    for b in beams:
        if b not in BEAMS:
            raise CardError(f"unknown beam '{b}'{suggest(b, BEAMS)}; beams are {', '.join(BEAMS)}")
    hadronic = [abs(BEAMS[b]) == 2212 for b in beams]
    if hadronic[0] != hadronic[1]:
        raise CardError("mixed lepton-hadron beams are not supported; use [p, p], [p, p~] or [e+, e-]")
    if not hadronic[0] and BEAMS[beams[0]] == BEAMS[beams[1]]:
        raise CardError("lepton beams must be a particle-antiparticle pair: [e+, e-] or [e-, e+]")
    if "sqrt_s" not in col:
        raise CardError("'collider.sqrt_s' (GeV) is required")
    collider = Collider(beams, _number("collider.sqrt_s", col["sqrt_s"]))

    pdf = data.get("pdf", DEFAULT_PDF)
    if pdf is None:
        pdf = DEFAULT_PDF
    if isinstance(pdf, bool) or not isinstance(pdf, (str, int)):
        raise CardError(f"'pdf' must be an LHAPDF set name or ID, got {pdf!r}")

    scale = data.get("scale", "mT-sum/2")
    if isinstance(scale, Mapping):
        _check_keys("scale", scale, SCALE_KEYS)
        if set(scale) != set(SCALE_KEYS):
            raise CardError("'scale' as a mapping needs both 'renormalization' and 'factorization'")
        scale_choice = ScaleChoice(
            _scale_value("scale.renormalization", scale["renormalization"]),
            _scale_value("scale.factorization", scale["factorization"]),
        )
    else:
        s = _scale_value("scale", scale)
        scale_choice = ScaleChoice(s, s)

    alpha_s = data.get("alpha_s", "pdf")
    if isinstance(alpha_s, str) and alpha_s.strip().lower() == "pdf":
        alpha_s = "pdf"
    else:
        alpha_s = _number("alpha_s", alpha_s)
        if alpha_s >= 1:
            raise CardError(f"'alpha_s' must be 'pdf' or a number below 1, got {alpha_s}")

    from .cuts import validate_cuts  # local import: cuts depends on nothing from the card

    cuts = data.get("cuts") or {}
    if not isinstance(cuts, Mapping):
        raise CardError("'cuts' must be a mapping such as {ptj: 20, etaj: 5}")
    cuts = validate_cuts(cuts)

    params = data.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise CardError("'parameters' must be a mapping of param_card names to values, e.g. {MT: 173.0}")

    integ = data.get("integrator") or {}
    if not isinstance(integ, Mapping):
        raise CardError("'integrator' must be a mapping such as {method: vegas, calls: 1000000}")
    _check_keys("integrator", integ, INTEGRATOR_KEYS)
    method = str(integ.get("method", "vegas")).strip().lower()
    if method not in METHODS:
        raise CardError(f"unknown integrator method '{method}'{suggest(method, METHODS)}; available: {', '.join(METHODS)}")
    calls = _number("integrator.calls", integ.get("calls", 1_000_000))
    if calls < 1000 or calls != int(calls):
        raise CardError(f"'integrator.calls' must be an integer of at least 1000, got {integ.get('calls')!r}")
    iterations = _number("integrator.iterations", integ.get("iterations", 10))
    if iterations != int(iterations) or iterations < 2:
        raise CardError("'integrator.iterations' must be an integer of at least 2")
    warm = _number("integrator.warmup_fraction", integ.get("warmup_fraction", 0.2), positive=False)
    if not 0 <= warm < 1:
        raise CardError("'integrator.warmup_fraction' must lie in [0, 1)")
    batch = _number("integrator.batch_size", integ.get("batch_size", 100_000))
    max_channels = _number("integrator.max_channels", integ.get("max_channels", 1000))
    if max_channels != int(max_channels) or max_channels < 1:
        raise CardError(f"'integrator.max_channels' must be a positive integer, got {integ.get('max_channels')!r}")
    checkpoint = integ.get("checkpoint")
    if checkpoint is not None:
        if not isinstance(checkpoint, str) or not checkpoint.strip():
            raise CardError(f"'integrator.checkpoint' must be a file path, got {checkpoint!r}")
        if method != "madnis":
            raise CardError("'integrator.checkpoint' stores a trained neural integrator: it needs 'method: madnis'")
    settings = IntegratorSettings(method, int(calls), int(iterations), warm, int(batch), int(max_channels),
                                  method_given="method" in integ, checkpoint=checkpoint)

    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CardError(f"'seed' must be a non-negative integer, got {seed!r}")
    device = _device(data.get("device", "cpu"))

    return RunCard(
        process=data["process"],
        collider=collider,
        pdf=pdf,
        scale=scale_choice,
        alpha_s=alpha_s,
        cuts=cuts,
        parameters=dict(params),
        integrator=settings,
        seed=seed,
        device=device,
        source=source,
    )


def load_card(path: str | os.PathLike) -> RunCard:
    """Read and validate a YAML card (``yaml.safe_load``)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise CardError(f"card file '{path}' not found") from None
    except IsADirectoryError:
        raise CardError(f"card '{path}' is a directory, not a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CardError(f"card '{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_card(data, source=path)
