"""Unweighting of weighted events and unweighting efficiencies (the one implementation in madnis_py).

Weights ``w`` are event weights normalised so that their mean is the cross-section estimate
(⟨w⟩ = σ̂, pb); signed weights are handled through |w| and the sign is carried along.

Hit-or-miss unweighting (``unweight(w, gen)``)
    an event is kept with probability min(1, |w| / w_ref) and then gets the weight
    sign(w) · max(|w|, w_ref).  With ``w_ref = max |w|`` (``partial=False``) all kept events carry
    the same |weight| = max |w| ("strict" unweighting).  With the partial reference weight
    (``partial=True``, MadGraph style) events with |w| > w_ref are all kept and keep their excess
    weight |w| / w_ref > 1 (in units of w_ref).  Either way E[Σ_kept weight] = Σ w, so
    Σ_kept weight / N (N = number of *input* events) is an unbiased estimate of σ, and every kept
    event's distribution is the weighted one.

Reference weight for partial unweighting (``reference_weight``)
    the smallest w_ref for which the part of the cross section carried *above* it by the
    overweight events is at most ``tolerance`` (default 10⁻³) of the total:
    Σ max(|w| − w_ref, 0) ≤ tolerance · Σ |w|.  This is the σ-weighted upper quantile of the
    weight distribution used by MadGraph's partial unweighting and by the MadNIS papers (which cut
    the 0.1 % of the cross section in the tail of the weights instead of the single largest
    weight) — it is stable against a single outlier, unlike max |w|.

Efficiencies (``unweighting_efficiency`` / ``unweighting_efficiencies``)
    strict:  ε = ⟨|w|⟩ / max |w|       (expected acceptance of strict hit-or-miss);
    partial: ε = ⟨min(|w|, w_ref)⟩ / w_ref   (expected acceptance with the partial reference; ≥ strict).
    Zero weights (e.g. events failing cuts) count as events: they are always rejected.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PARTIAL_TOLERANCE = 1e-3


def reference_weight(w: Tensor, tolerance: float = PARTIAL_TOLERANCE) -> float:
    """Smallest w_ref with Σ max(|w| − w_ref, 0) ≤ tolerance Σ|w| (exact, piecewise-linear solve)."""
    a = torch.sort(w.abs().to(torch.float64), descending=True).values
    total = float(a.sum())
    if a.numel() == 0 or total == 0.0:
        return 0.0
    budget = tolerance * total
    csum = torch.cumsum(a, 0)
    k = torch.arange(1, a.numel() + 1, device=a.device, dtype=torch.float64)
    # excess if w_ref = a_j (j-th largest, 0-based): Σ_{i<j}(a_i − a_j) = csum_{j-1} − j a_j
    excess = torch.cat([a.new_zeros(1), csum[:-1]]) - (k - 1) * a
    j = int(torch.searchsorted(excess, torch.tensor([budget], dtype=torch.float64, device=a.device), right=True)) - 1
    # on [a_{j+1}, a_j] the excess is csum_j − (j+1) w_ref: solve for = budget, stay in the segment
    w_ref = (float(csum[j]) - budget) / (j + 1)
    lower = float(a[j + 1]) if j + 1 < a.numel() else 0.0
    return max(min(w_ref, float(a[j])), lower)


def unweighting_efficiencies(w: Tensor, tolerance: float = PARTIAL_TOLERANCE) -> tuple[float, float, float]:
    """(strict ε, partial ε, w_ref) of a weight sample; zeros count as events (they are rejected)."""
    a = w.abs().to(torch.float64)
    if a.numel() == 0 or float(a.max()) == 0.0:
        return 0.0, 0.0, 0.0
    strict = float(a.mean() / a.max())
    w_ref = reference_weight(a, tolerance)
    partial = float(torch.minimum(a, torch.tensor(w_ref, dtype=a.dtype, device=a.device)).mean() / w_ref)
    return strict, partial, w_ref


def unweighting_efficiency(w: Tensor, tolerance: float = PARTIAL_TOLERANCE) -> dict[str, float]:
    """``{"strict": ⟨|w|⟩/max|w|, "partial": ⟨min(|w|, w_ref)⟩/w_ref}`` (see the module docstring)."""
    strict, partial, _ = unweighting_efficiencies(w, tolerance)
    return {"strict": strict, "partial": partial}


@dataclass
class Unweighted:
    """Result of :func:`unweight`: indices of the kept events and their new weights (pb per input event).

    ``Σ weight / n_input`` estimates σ; ``reference`` is the w_ref used; ``n_overweight`` counts
    kept events with |w| > w_ref (always 0 for strict unweighting).
    """

    index: Tensor
    weight: Tensor
    reference: float
    n_input: int
    n_overweight: int

    @property
    def efficiency(self) -> float:
        return self.index.numel() / self.n_input if self.n_input else 0.0


def unweight(w: Tensor, generator: torch.Generator, partial: bool = False,
             tolerance: float = PARTIAL_TOLERANCE, reference: float | None = None) -> Unweighted:
    """Hit-or-miss unweighting of weights ``w [n]`` (batched, random numbers from ``generator``).

    ``reference``: w_ref to use (default: max |w|, or :func:`reference_weight` if ``partial``).
    Kept events get weight sign(w) · max(|w|, w_ref).
    """
    w = w.to(torch.float64)
    a = w.abs()
    n = w.numel()
    if reference is None:
        reference = reference_weight(a, tolerance) if partial else (float(a.max()) if n else 0.0)
    if n == 0 or reference <= 0.0:
        empty = torch.zeros(0, dtype=torch.long, device=w.device)
        return Unweighted(empty, w.new_zeros(0), float(reference), n, 0)
    r = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device).to(w.device)
    keep = (r * reference < a) & (a > 0)
    index = torch.nonzero(keep).flatten()
    kept = w[index]
    weight = torch.sign(kept) * torch.clamp(kept.abs(), min=reference)
    return Unweighted(index, weight, float(reference), n, int((kept.abs() > reference).sum()))
