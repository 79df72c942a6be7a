"""Renormalisation and factorisation scales, fixed or dynamic, per event.

Dynamic choices (final-state momenta in any frame related to the lab by a
longitudinal boost; all in GeV):

* ``HT``       = Σ_i pT_i,           ``HT/2`` its half
* ``mT-sum``   = Σ_i √(m_i² + pT_i²), ``mT-sum/2`` its half (MadGraph's
  ``dynamical_scale_choice = 3``)
* ``sqrt_shat``= √ŝ of the partonic collision (MadGraph choice 4)
"""
from __future__ import annotations

import torch
from torch import Tensor


def _pt(p: Tensor) -> Tensor:
    return torch.sqrt(p[..., 1] ** 2 + p[..., 2] ** 2)


def scale_values(choice: float | str, p_out: Tensor, shat: Tensor) -> Tensor:
    """Scale μ in GeV for each event: ``p_out [n, n_out, 4]``, ``shat [n]`` in GeV²."""
    n = p_out.shape[0]
    if not isinstance(choice, str):
        return torch.full((n,), float(choice), dtype=p_out.dtype, device=p_out.device)
    if choice in ("HT", "HT/2"):
        value = _pt(p_out).sum(dim=1)
    elif choice in ("mT-sum", "mT-sum/2"):
        m2 = (p_out[..., 0] ** 2 - (p_out[..., 1:] ** 2).sum(-1)).clamp_min(0)
        value = torch.sqrt(m2 + _pt(p_out) ** 2).sum(dim=1)
    elif choice == "sqrt_shat":
        value = torch.sqrt(shat)
    else:
        raise ValueError(f"unknown dynamic scale '{choice}'")
    if choice.endswith("/2"):
        value = value / 2
    return value
