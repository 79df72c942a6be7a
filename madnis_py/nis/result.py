"""Integration results and unweighting efficiencies.

Unweighting efficiencies of a sample of event weights w (|w| for signed weights):

* strict:   ε = ⟨|w|⟩ / max |w|  — acceptance of hit-or-miss unweighting against the maximum.
* partial:  unweighting against a reference w_ref below the maximum, MadGraph style: events with
  |w| > w_ref are kept with weight |w|/w_ref > 1 instead of being unweighted.  w_ref is the
  smallest value for which the part of the cross section above it is at most ``tolerance``
  (default 1e-3):  Σ max(|w| − w_ref, 0) ≤ tolerance · Σ |w|.  The efficiency is the expected
  acceptance of that procedure, ε_partial = ⟨min(|w|, w_ref)⟩ / w_ref (≥ ε_strict).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

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


@dataclass
class NISResult:
    """Outcome of :meth:`Integrator.integrate` (fresh samples only).

    ``value ± error``: stratified estimate Σ_c Î_c with error (Σ_c s_c²/n_c)^½ from the sample
    variances.  ``n_calls``: integrand calls of this integration; ``training_calls``: calls spent
    before it (VEGAS warm-up and flow training); ``total_calls``: all calls of the integrator so
    far.  Efficiencies are measured on the normalised event weights of this sample.
    """

    value: float
    error: float
    n_calls: int
    unweighting_efficiency: float
    partial_unweighting_efficiency: float
    reference_weight: float
    max_weight: float
    training_calls: int
    total_calls: int
    n_nonzero: int = 0
    wall_time_s: float = 0.0
    channel_values: list[float] = field(default_factory=list)
    channel_errors: list[float] = field(default_factory=list)
    channel_calls: list[int] = field(default_factory=list)
    method: str = "madnis"

    @property
    def rel_error(self) -> float:
        return self.error / abs(self.value) if self.value != 0 else math.inf

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.value:.6g} ± {self.error:.2g} (rel {self.rel_error:.2e}), {self.n_calls} calls "
                f"(+{self.training_calls} training), eps_uw {self.unweighting_efficiency:.3g} "
                f"(partial {self.partial_unweighting_efficiency:.3g})")
