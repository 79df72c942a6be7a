"""Generation cuts with MadGraph run_card names and meanings.

Object classes (MadGraph, ``maxjetflavor = 4``): ``j`` = g, u, d, s, c and
antiquarks; ``b`` = b, b~; ``a`` = photon; ``l`` = e±, μ± (not τ); neutrinos
make the missing transverse energy.  Only the cuts a card lists are applied.

* ``ptX`` / ``ptXmax``: min / max transverse momentum of every X (GeV)
* ``etaX`` / ``etaXmin``: max / min |pseudorapidity| of every X
* ``eX`` / ``eXmax``: min / max energy of every X (GeV)
* ``drXY`` / ``drXYmax``: min / max ΔR = √(Δη² + Δφ²) between every X–Y pair
* ``mmXX`` / ``mmXXmax``: min / max invariant mass of every X pair; for
  ``mmll`` only same-flavour opposite-charge lepton pairs (as MadGraph)
* ``ptllmin`` / ``ptllmax``: transverse momentum of same-flavour opposite-charge lepton pairs
* ``misset`` / ``missetmax``: missing transverse energy (vector sum of neutrinos)
* ``ihtmin`` / ``ihtmax``: scalar sum of jet pT (GeV)

A max cut of ``-1`` means "no cut", as in MadGraph's run_card.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from .errors import CardError, suggest

CLASSES = ("j", "b", "a", "l")
_PAIRS = ("jj", "bb", "aa", "ll", "bj", "aj", "jl", "ab", "bl", "al")


def _cut_names() -> tuple[str, ...]:
    names: list[str] = []
    for c in CLASSES:
        names += [f"pt{c}", f"pt{c}max", f"eta{c}", f"eta{c}min", f"e{c}", f"e{c}max"]
    for p in _PAIRS:
        names += [f"dr{p}", f"dr{p}max"]
    for c in CLASSES:
        names += [f"mm{c}{c}", f"mm{c}{c}max"]
    names += ["ptllmin", "ptllmax", "misset", "missetmax", "ihtmin", "ihtmax"]
    return tuple(names)


CUT_NAMES = _cut_names()


def object_class(pdg: int) -> str | None:
    """MadGraph cut class of a final-state particle ('j', 'b', 'a', 'l', 'v' or None)."""
    a = abs(pdg)
    if a in (1, 2, 3, 4, 21):
        return "j"
    if a == 5:
        return "b"
    if a == 22:
        return "a"
    if a in (11, 13):
        return "l"
    if a in (12, 14, 16):
        return "v"
    return None


def validate_cuts(cuts: Mapping[str, Any]) -> dict[str, float]:
    """Check names and values; return a plain dict without disabled (-1) max cuts."""
    out: dict[str, float] = {}
    for name, value in cuts.items():
        key = str(name).strip().lower()
        if key not in CUT_NAMES:
            raise CardError(f"unknown cut '{name}'{suggest(key, CUT_NAMES)} (MadGraph run_card names, e.g. ptj, etaj, drjj, mmll)")
        if isinstance(value, bool):
            raise CardError(f"cut '{name}' must be a number, got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise CardError(f"cut '{name}' must be a number, got {value!r}") from None
        if math.isnan(v):
            raise CardError(f"cut '{name}' is NaN")
        is_max = key.endswith("max")
        if is_max and v == -1:
            continue
        if v < 0:
            raise CardError(f"cut '{name}' must be non-negative (or -1 for 'no cut' on a max), got {v}")
        out[key] = v
    # contradictory pairs
    for key, v in out.items():
        if key.endswith("max") and key[:-3] in out and out[key[:-3]] >= v:
            raise CardError(f"cuts '{key[:-3]}' = {out[key[:-3]]} and '{key}' = {v} leave no phase space")
        if key.endswith("min") and key.startswith("eta") and key[:-3] in out and out[key[:-3]] <= v:
            raise CardError(f"cuts '{key}' = {v} and '{key[:-3]}' = {out[key[:-3]]} leave no phase space")
    if "ptllmin" in out and "ptllmax" in out and out["ptllmin"] >= out["ptllmax"]:
        raise CardError("cuts 'ptllmin' >= 'ptllmax' leave no phase space")
    return out


def _pt(p: Tensor) -> Tensor:
    return torch.sqrt(p[..., 1] ** 2 + p[..., 2] ** 2)


def _eta(p: Tensor) -> Tensor:
    pt = _pt(p)
    return torch.asinh(p[..., 3] / pt.clamp_min(1e-300))


def _phi(p: Tensor) -> Tensor:
    return torch.atan2(p[..., 2], p[..., 1])


def _mass2(p: Tensor) -> Tensor:
    return p[..., 0] ** 2 - p[..., 1] ** 2 - p[..., 2] ** 2 - p[..., 3] ** 2


@dataclass
class Cuts:
    """Cuts for one final state; ``passes(p_final)`` -> bool mask ``[n]``.

    ``final_pdgs`` are the outgoing particles' PDG ids in the order of ``p_final [n, n_out, 4]``.
    """

    values: dict[str, float]
    final_pdgs: tuple[int, ...]

    def __post_init__(self) -> None:
        self._idx = {c: [i for i, p in enumerate(self.final_pdgs) if object_class(p) == c] for c in CLASSES + ("v",)}
        ls = self._idx["l"]
        self._sfos = [
            (i, k)
            for i, k in itertools.combinations(ls, 2)
            if self.final_pdgs[i] == -self.final_pdgs[k]
        ]

    @property
    def active(self) -> bool:
        return bool(self.values)

    def passes(self, p: Tensor) -> Tensor:
        n = p.shape[0]
        ok = torch.ones(n, dtype=torch.bool, device=p.device)
        if not self.values:
            return ok
        v = self.values
        pt, eta, phi = _pt(p), _eta(p), _phi(p)
        for c in CLASSES:
            idx = self._idx[c]
            if not idx:
                continue
            sel = torch.tensor(idx, device=p.device)
            ptc, etac, ec = pt[:, sel], eta[:, sel].abs(), p[:, sel, 0]
            if f"pt{c}" in v:
                ok &= (ptc >= v[f"pt{c}"]).all(dim=1)
            if f"pt{c}max" in v:
                ok &= (ptc <= v[f"pt{c}max"]).all(dim=1)
            if f"eta{c}" in v:
                ok &= (etac <= v[f"eta{c}"]).all(dim=1)
            if f"eta{c}min" in v:
                ok &= (etac >= v[f"eta{c}min"]).all(dim=1)
            if f"e{c}" in v:
                ok &= (ec >= v[f"e{c}"]).all(dim=1)
            if f"e{c}max" in v:
                ok &= (ec <= v[f"e{c}max"]).all(dim=1)
        for pair in _PAIRS:
            lo, hi = v.get(f"dr{pair}"), v.get(f"dr{pair}max")
            if lo is None and hi is None:
                continue
            for i, k in self._pairs(pair[0], pair[1]):
                dphi = torch.remainder(phi[:, i] - phi[:, k] + math.pi, 2 * math.pi) - math.pi
                dr = torch.sqrt((eta[:, i] - eta[:, k]) ** 2 + dphi**2)
                if lo is not None:
                    ok &= dr >= lo
                if hi is not None:
                    ok &= dr <= hi
        for c in CLASSES:
            lo, hi = v.get(f"mm{c}{c}"), v.get(f"mm{c}{c}max")
            if lo is None and hi is None:
                continue
            pairs = self._sfos if c == "l" else list(itertools.combinations(self._idx[c], 2))
            for i, k in pairs:
                m = torch.sqrt(_mass2(p[:, i] + p[:, k]).clamp_min(0))
                if lo is not None:
                    ok &= m >= lo
                if hi is not None:
                    ok &= m <= hi
        if "ptllmin" in v or "ptllmax" in v:
            for i, k in self._sfos:
                ptll = _pt(p[:, i] + p[:, k])
                if "ptllmin" in v:
                    ok &= ptll >= v["ptllmin"]
                if "ptllmax" in v:
                    ok &= ptll <= v["ptllmax"]
        if "misset" in v or "missetmax" in v:
            nu = self._idx["v"]
            met = _pt(p[:, nu].sum(dim=1)) if nu else torch.zeros(n, dtype=p.dtype, device=p.device)
            if "misset" in v:
                ok &= met >= v["misset"]
            if "missetmax" in v:
                ok &= met <= v["missetmax"]
        if "ihtmin" in v or "ihtmax" in v:
            js = self._idx["j"]
            ht = pt[:, js].sum(dim=1) if js else torch.zeros(n, dtype=p.dtype, device=p.device)
            if "ihtmin" in v:
                ok &= ht >= v["ihtmin"]
            if "ihtmax" in v:
                ok &= ht <= v["ihtmax"]
        return ok

    def _pairs(self, a: str, b: str) -> list[tuple[int, int]]:
        if a == b:
            return list(itertools.combinations(self._idx[a], 2))
        return [(i, k) for i in self._idx[a] for k in self._idx[b]]

    def pt_min(self, i: int) -> float:
        """The lower pT cut (GeV) on final-state particle ``i`` (0 if none applies)."""
        c = object_class(self.final_pdgs[i])
        return self.values.get(f"pt{c}", 0.0) if c in CLASSES else 0.0

    def eta_max(self, i: int) -> float:
        """The upper |η| cut on final-state particle ``i`` (inf if none applies)."""
        c = object_class(self.final_pdgs[i])
        return self.values.get(f"eta{c}", math.inf) if c in CLASSES else math.inf

    def dr_min(self, i: int, k: int) -> float:
        """The lower ΔR cut ``dr{X}{Y}`` on the pair of final-state particles (i, k) (0 if none applies)."""
        ci, ck = object_class(self.final_pdgs[i]), object_class(self.final_pdgs[k])
        if ci not in CLASSES or ck not in CLASSES:
            return 0.0
        return float(self.values.get(f"dr{ci}{ck}", self.values.get(f"dr{ck}{ci}", 0.0)))

    def pair_mass_min(self, i: int, k: int) -> float:
        """The invariant-mass cut ``mm{c}{c}`` (GeV) on the pair (i, k) (0 if none applies; leptons: SFOS pairs only)."""
        c = object_class(self.final_pdgs[i])
        if c not in CLASSES or c != object_class(self.final_pdgs[k]) or f"mm{c}{c}" not in self.values:
            return 0.0
        if c == "l" and self.final_pdgs[i] != -self.final_pdgs[k]:
            return 0.0
        return self.values[f"mm{c}{c}"]

    def min_partonic_mass(self, masses: tuple[float, ...] | None = None) -> float:
        """A lower bound on √ŝ implied by the cuts (GeV): Σ_i √(m_i² + pT,min²), and any pair-mass cut."""
        n = len(self.final_pdgs)
        masses = masses or (0.0,) * n
        bound = sum(math.sqrt(masses[i] ** 2 + self.pt_min(i) ** 2) for i in range(n))
        return max([bound] + [self.pair_mass_min(i, k) for i, k in itertools.combinations(range(n), 2)])
