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
