"""``method: madnis`` for process cards: the NIS :class:`Integrator` on the diagram channels of a process.

The physics integrand is :class:`madnis_py.multichannel_integrand.MultiChannelIntegrand` built with
``fold_symmetric=False`` (its NIS form ``multi.nis(x, channel) -> (F_b/q_c, block-diagonal SDE prior,
None)``); the integrator is the same public :class:`~madnis_py.nis.Integrator` the Python API
offers — no parallel implementation.  The card's ``calls`` is the whole budget: ``TRAIN_FRACTION``
(50 %) of it trains — 3·10⁴ calls of that (10–40 %) are the warm start, ``channels.multichannel.MultiChannelVegas``
(the ``vegas-multichannel`` method's grids and allocation), the rest trains the flows — and the
remaining calls (plus any the training left unspent) are a fresh, stratified integration whose events
give σ, its error and the unweighting efficiency.  The integration weighs the channels by the balance
heuristic (``coordinates=multi.coordinates``: every channel's density at every point, from the channels'
inverse maps), training by the learned channel weights.  Channels that are images of each other under a
permutation of identical final-state particles share one flow and VEGAS grid (``samplers=multi.samplers()``),
as multi-channel VEGAS folds them.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import torch

from ..errors import InputError
from ..integrate import IntegrationResult
from .integrator import Integrator

#: share of the card's ``calls`` spent on training; the rest integrates on fresh samples
TRAIN_FRACTION = 0.5


def _load_checkpoint(path: str, multi: Any, device, progress) -> Integrator:
    """A saved integrator for ``multi``; one clear line if it belongs to another process or run."""
    try:
        integ = Integrator.load(path, multi.nis, device=device, progress=progress, coordinates=multi.coordinates)
    except InputError:
        raise
    except Exception as exc:  # unreadable, truncated or foreign file
        raise InputError(f"cannot read the checkpoint {path}: {exc.__class__.__name__}: {exc}") from None
    if integ.k != multi.n_channels or integ.dims != multi.dims:
        raise InputError(f"the checkpoint {path} was trained for {integ.k} channels in {integ.dims} dimensions, "
                         f"this process has {multi.n_channels} channels in {multi.dims}: delete it or change the path")
    return integ


def _save_atomically(integ: Integrator, path: str) -> None:
    """Write the checkpoint to a temporary file first, so an interrupted run never leaves a half-written one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.part{os.getpid()}"
    try:
        integ.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def integrate_madnis(multi: Any, calls: int, seed: int, device: torch.device | str = "cpu",
                     log: Callable[[str], None] | None = None,
                     checkpoint: str | None = None) -> tuple[IntegrationResult, int, Integrator]:
    """Train and integrate ``multi`` (a MultiChannelIntegrand with fold_symmetric=False) with ``calls`` in all.

    With ``checkpoint``: an existing file is loaded and all ``calls`` integrate (no training; the
    stored training happened in an earlier run); otherwise the integrator trains and is saved there.
    Returns the :class:`IntegrationResult` (``parts``: σ per subprocess group of ``multi.base``,
    ``weights``: the fresh events' weights, ``n_calls``: this run's calls), the training calls of this
    run and the trained integrator.
    """
    k = multi.n_channels
    progress = None if log is not None else False
    if checkpoint is not None and os.path.exists(checkpoint):
        integ = _load_checkpoint(checkpoint, multi, device, progress)
        if log is not None:
            log(f"  madnis: loaded the trained integrator from {checkpoint}; no training in this run")
        calls_before, n_training = integ.total_calls, 0
        res = integ.integrate(calls=max(calls, 2 * k))
    else:
        integ = Integrator(multi.nis, multi.dims, channels=k, seed=seed, device=device, progress=progress,
                           coordinates=multi.coordinates, samplers=multi.samplers())
        calls_before = 0
        integ.train(calls=int(TRAIN_FRACTION * calls))
        n_training = integ.training_calls
        if checkpoint is not None:
            _save_atomically(integ, checkpoint)
            if log is not None:
                log(f"  madnis: trained integrator saved to {checkpoint}")
        # calls the training left unspent (early stop, last partial batch) go to the integration
        res = integ.integrate(calls=max(calls - integ.training_calls, 2 * k))
    parts = multi.group_parts(res.channel_values, res.channel_errors)
    out = IntegrationResult(res.value, res.error, integ.total_calls - calls_before, "madnis", parts, None, 1,
                            res.n_nonzero, res.wall_time_s, integ.last_event_weights)
    if log is not None:
        log(f"  madnis: {res}")
    return out, n_training, integ
