"""The ``madnis`` command line.

    madnis integrate CARD.yaml [--json] [--quiet] [--calls N] [--seed S]
    madnis matrix-element "g g > t t~ g" --momenta points.json [--param aS=0.118 ...]

Exit codes: 0 success, 2 bad input (one line on stderr), 1 internal error.
Progress goes to stderr; with ``--json`` stdout carries exactly one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Sequence

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def _bad_input_types() -> tuple[type, ...]:
    from matrix_elements.base import MatrixElementError
    from matrix_elements.model import ParameterError
    from matrix_elements.particles import UnknownParticleError
    from matrix_elements.process import ProcessError

    from .errors import InputError

    types: list[type] = [InputError, ProcessError, ParameterError, UnknownParticleError, MatrixElementError]
    try:
        from .pdf import PDFNotFoundError

        types.append(PDFNotFoundError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _cmd_integrate(args: argparse.Namespace) -> int:
    from .card import load_card
    from .errors import CardError
    from .run import integrate_card

    card = load_card(args.card)
    if args.calls is not None:
        if args.calls < 1000:
            raise CardError("--calls must be at least 1000")
        card = replace(card, integrator=replace(card.integrator, calls=args.calls))
    if args.seed is not None:
        card = replace(card, seed=args.seed)
    result = integrate_card(card, quiet=args.quiet)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['process']}: sigma = {result['cross_section_pb']:.6g} +- {result['error_pb']:.3g} pb")
        for sub in result["subprocesses"]:
            print(f"  {sub['name']:<28s} {sub['cross_section_pb']:.6g} +- {sub['error_pb']:.3g} pb")
    return EXIT_OK


def _read_momenta(path: str, n_external: int):
    import numpy as np
    import torch

    from .errors import InputError

    if not os.path.exists(path):
        raise InputError(f"momenta file '{path}' not found")
    if path.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"cannot read '{path}' as .npy: {exc}") from None
    else:
        try:
            with open(path, encoding="utf-8") as fh:
                arr = np.asarray(json.load(fh), dtype=np.float64)
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            raise InputError(f"'{path}' must be a JSON list of events, each a list of [E, px, py, pz]: {exc}") from None
    if arr.ndim == 2 and arr.shape == (n_external, 4):
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (n_external, 4):
        raise InputError(f"momenta must have shape (n, {n_external}, 4), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("momenta contain NaN or inf")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))


def _cmd_matrix_element(args: argparse.Namespace) -> int:
    from matrix_elements import matrix_element

    from .errors import InputError
    from matrix_elements.base import check_physical_momenta

    params: dict[str, float] = {}
    for item in args.param or []:
        if "=" not in item:
            raise InputError(f"--param expects NAME=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        params[k.strip()] = v.strip()
    me = matrix_element(args.process, params)
    p = _read_momenta(args.momenta, me.n_external)
    check_physical_momenta(p, me.masses, me.n_in)
    values = me(p)
    out = sys.stdout
    for v in values.tolist():
        out.write(f"{v:.17e}\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="madnis", description="Neural multi-channel importance sampling for LHC processes")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    p_int = sub.add_parser("integrate", help="integrate the cross section of a process card")
    p_int.add_argument("card", help="process card (YAML)")
    p_int.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p_int.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p_int.add_argument("--calls", type=int, help="override integrator.calls")
    p_int.add_argument("--seed", type=int, help="override the card's seed")
    p_int.set_defaults(func=_cmd_integrate)
    p_me = sub.add_parser("matrix-element", help="evaluate |M|^2 at given momenta")
    p_me.add_argument("process", help="one partonic process, e.g. 'g g > t t~ g'")
    p_me.add_argument("--momenta", required=True, help="JSON list of events [[E,px,py,pz], ...] or .npy (n, n_ext, 4)")
    p_me.add_argument("--param", action="append", metavar="NAME=VALUE", help="param_card override, e.g. aS=0.118")
    p_me.set_defaults(func=_cmd_matrix_element)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("madnis: interrupted", file=sys.stderr)
        return 130
    except _bad_input_types() as exc:
        if args.debug:
            raise
        print(f"madnis: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 (one line, never a traceback, unless --debug)
        if args.debug:
            raise
        print(f"madnis: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
