"""The one entry point from a process string to a batched |M|².

``matrix_element("g g > t t~", {"MT": 172.5})`` returns a
:class:`~matrix_elements.base.MatrixElement`.  The general Feynman-diagram
engine is used when it is installed (``matrix_elements.engine``); the analytic
2→2 formulas of :mod:`matrix_elements.analytic` serve as its test oracles and as
the fallback.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from .base import MatrixElement, MatrixElementError
from .model import SMParameters
from .process import ProcessError, Subprocess, parse_process


class NoMatrixElementError(MatrixElementError):
    """No backend can provide |M|² for this process."""


def _engine():
    try:
        from . import engine  # noqa: WPS433 (optional until the general engine lands)
    except ImportError:
        return None
    return engine


def single_process(process: str) -> tuple[Subprocess, dict[str, tuple[str, int]]]:
    """Parse a process string that names one partonic process (no multiparticle labels)."""
    definition = parse_process(process)
    for pos in definition.initial + definition.final:
        if len(pos) != 1:
            raise ProcessError(
                f"'{process}' contains a multiparticle label; a matrix element needs one partonic process "
                f"(e.g. 'u u~ > e+ e-')"
            )
    pdgs = tuple(p[0] for p in definition.initial + definition.final)
    return Subprocess(pdgs, len(definition.initial)), dict(definition.orders)


def matrix_element(
    process: str,
    parameters: Mapping[str, Any] | SMParameters | None = None,
    backend: str = "auto",
) -> MatrixElement:
    """Batched |M|² for one partonic process in MadGraph's conventions.

    ``parameters``: MadGraph param_card names (``aS``, ``MT``, ``WT``, ``MZ``, ...) or an
    :class:`SMParameters`.  ``backend``: ``"auto"`` (engine, else analytic), ``"engine"``
    or ``"analytic"``.
    """
    params = parameters if isinstance(parameters, SMParameters) else SMParameters.from_card(parameters)
    sub, orders = single_process(process)
    return _build(sub.pdgs, params, tuple(sorted(orders.items())), backend)


def matrix_element_for(
    sub: Subprocess,
    params: SMParameters,
    orders: Mapping[str, tuple[str, int]] | None = None,
    backend: str = "auto",
) -> MatrixElement:
    """Like :func:`matrix_element` for an already expanded :class:`Subprocess`."""
    return _build(sub.pdgs, params, tuple(sorted((orders or {}).items())), backend)


@lru_cache(maxsize=256)
def _build(pdgs: tuple[int, ...], params: SMParameters, orders: tuple, backend: str) -> MatrixElement:
    if backend not in ("auto", "engine", "analytic"):
        raise ValueError(f"unknown matrix-element backend '{backend}'")
    eng = _engine() if backend in ("auto", "engine") else None
    if eng is not None:
        return eng.build_matrix_element(pdgs, params, dict(orders) or None)
    if backend == "engine":
        raise NoMatrixElementError("the general matrix-element engine is not available")
    from .analytic import analytic_matrix_element

    if orders:
        raise NoMatrixElementError("coupling orders need the general matrix-element engine")
    me = analytic_matrix_element(pdgs, params)
    if me is None:
        from .particles import name_of

        name = " ".join(name_of(p) for p in pdgs[:2]) + " > " + " ".join(name_of(p) for p in pdgs[2:])
        raise NoMatrixElementError(f"no matrix element available for '{name}'")
    return me
