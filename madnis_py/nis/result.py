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


# one implementation, shared with the VEGAS baselines: madnis_py.unweighting (re-exported here)
from ..unweighting import PARTIAL_TOLERANCE, reference_weight, unweighting_efficiencies  # noqa: E402,F401


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
