"""The seam between matrix elements and everything downstream.

A :class:`MatrixElement` is a batched callable ``me(p) -> |M|²`` for one
partonic process with fixed external order (incoming first, as in the process
string).  ``p`` is float64 ``[n, n_external, 4]`` with (E, px, py, pz) in GeV;
the result ``[n]`` follows MadGraph's convention: averaged over initial
helicities and colours, summed over final ones, divided by the
identical-final-state-particle factor.  Couplings are fixed by the model
parameters except α_s, which may be given per event (running α_s(μ_R)).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


class MatrixElementError(ValueError):
    """Bad input to a matrix element (wrong shape, unknown process, ...)."""


class MatrixElement(ABC):
    """Batched tree-level |M|² of one partonic process."""

    #: the process string, e.g. ``"g g > t t~"``
    process: str
    #: signed PDG ids of the external particles, incoming first
    pdgs: tuple[int, ...]
    #: pole masses of the external particles in GeV
    masses: tuple[float, ...]
    #: power k of α_s in |M|² (|M|² ∝ α_s^k); used to rescale to a running α_s
    alpha_s_power: int
    #: α_s at which the couplings were evaluated (param_card ``aS``)
    alpha_s_ref: float

    n_in: int = 2

    @property
    def n_external(self) -> int:
        return len(self.pdgs)

    @abstractmethod
    def evaluate(self, momenta: Tensor) -> Tensor:
        """|M|² ``[n]`` at the reference α_s; ``momenta`` already validated."""

    def __call__(self, momenta: Tensor, alpha_s: Tensor | float | None = None) -> Tensor:
        """|M|² for ``momenta [n, n_external, 4]``; ``alpha_s`` (scalar or ``[n]``) rescales QCD couplings."""
        self.check_momenta(momenta)
        me = self.evaluate(momenta)
        if alpha_s is not None and self.alpha_s_power:
            me = me * (torch.as_tensor(alpha_s, dtype=me.dtype, device=me.device) / self.alpha_s_ref) ** self.alpha_s_power
        return me

    def check_momenta(self, momenta: Tensor) -> None:
        if not isinstance(momenta, Tensor):
            raise MatrixElementError("momenta must be a torch tensor of shape (n, n_external, 4)")
        if momenta.dim() != 3 or momenta.shape[1] != self.n_external or momenta.shape[2] != 4:
            raise MatrixElementError(
                f"momenta for '{self.process}' must have shape (n, {self.n_external}, 4), got {tuple(momenta.shape)}"
            )
        if momenta.dtype != torch.float64:
            raise MatrixElementError(f"momenta must be float64, got {momenta.dtype}")


def check_physical_momenta(momenta: Tensor, masses: tuple[float, ...], n_in: int = 2, rtol: float = 1e-6) -> None:
    """Raise :class:`MatrixElementError` unless momenta conserve four-momentum and are on shell.

    Tolerance: |Σp_in − Σp_out| ≤ rtol·E_in for each component, and |p² − m²| ≤ rtol·E_in²
    (E_in = total incoming energy of the event).  |M|² itself does not check this (hot path).
    """
    if momenta.dim() != 3 or momenta.shape[1] != len(masses) or momenta.shape[2] != 4:
        raise MatrixElementError(f"momenta must have shape (n, {len(masses)}, 4), got {tuple(momenta.shape)}")
    e_in = momenta[:, :n_in, 0].sum(dim=1).abs().clamp_min(1e-300)
    diff = momenta[:, :n_in].sum(dim=1) - momenta[:, n_in:].sum(dim=1)
    bad = (diff.abs().amax(dim=1) > rtol * e_in).nonzero()
    if bad.numel():
        i = int(bad[0])
        raise MatrixElementError(
            f"event {i}: momentum not conserved (Σp_in − Σp_out = {diff[i].tolist()} GeV, tolerance {rtol:g}·E)"
        )
    p2 = momenta[..., 0] ** 2 - (momenta[..., 1:] ** 2).sum(-1)
    m2 = torch.tensor([m * m for m in masses], dtype=momenta.dtype, device=momenta.device)
    off = (p2 - m2).abs() > rtol * e_in[:, None] ** 2
    bad = off.nonzero()
    if bad.numel():
        i, j = int(bad[0, 0]), int(bad[0, 1])
        raise MatrixElementError(
            f"event {i}, particle {j + 1}: off shell (p² = {float(p2[i, j]):.6g} GeV², m² = {float(m2[j]):.6g} GeV², "
            f"tolerance {rtol:g}·E²)"
        )
