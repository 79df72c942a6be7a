"""``method: madnis`` for process cards: the NIS :class:`Integrator` on the diagram channels of a process.

The physics integrand is :class:`madnis_py.multichannel_integrand.MultiChannelIntegrand` built with
``fold_symmetric=False`` (its NIS form ``multi.nis(x, channel) -> (F_b/q_c, block-diagonal SDE prior,
None)``); the integrator is the same public :class:`~madnis_py.nis.Integrator` the Python API
offers — no parallel implementation.  The card's ``calls`` is the whole budget: ``TRAIN_FRACTION``
(50 %) of it trains — 40 % of that is the warm start, ``channels.multichannel.MultiChannelVegas``
(the ``vegas-multichannel`` method's grids and allocation), the rest trains the flows — and the
remaining calls (plus any the training left unspent) are a fresh, stratified integration whose events
give σ, its error and the unweighting efficiency.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..integrate import IntegrationResult
from .integrator import Integrator

#: share of the card's ``calls`` spent on training; the rest integrates on fresh samples
TRAIN_FRACTION = 0.5


def integrate_madnis(multi: Any, calls: int, seed: int, device: torch.device | str = "cpu",
                     log: Callable[[str], None] | None = None) -> tuple[IntegrationResult, int, Integrator]:
    """Train and integrate ``multi`` (a MultiChannelIntegrand with fold_symmetric=False) with ``calls`` in all.

    Returns the :class:`IntegrationResult` (``parts``: σ per subprocess group of ``multi.base``,
    ``weights``: the fresh events' weights), the training calls and the trained integrator.
    """
    k = multi.n_channels
    n_train = int(TRAIN_FRACTION * calls)
    integ = Integrator(multi.nis, multi.dims, channels=k, seed=seed, device=device,
                       progress=None if log is not None else False)
    integ.train(calls=n_train)
    # calls the training left unspent (early stop, last partial batch) go to the integration
    res = integ.integrate(calls=max(calls - integ.training_calls, 2 * k))
    parts = []
    for ti in range(len(multi.base.terms)):
        ids = [c for c, s in enumerate(multi.slots) if s.term == ti]
        parts.append((sum(res.channel_values[c] for c in ids), math.sqrt(sum(res.channel_errors[c] ** 2 for c in ids))))
    out = IntegrationResult(res.value, res.error, integ.total_calls, "madnis", parts, None, 1, res.n_nonzero,
                            res.wall_time_s, integ.last_event_weights)
    if log is not None:
        log(f"  madnis: {res}")
    return out, integ.training_calls, integ
