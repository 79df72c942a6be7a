"""Standard Model parameters in MadGraph's ``sm`` model conventions.

Independent (external) parameters carry MadGraph param_card names and the
``sm`` model defaults; the rest are derived exactly as in the model's
``parameters.py``:

    aEW = 1/aEWM1,  MW = sqrt(MZ²/2 + sqrt(MZ⁴/4 − π aEW MZ²/(√2 Gf))),
    sw² = 1 − MW²/MZ²,  ee = √(4π aEW),  gs = √(4π aS),
    vev = 2 MW sw / ee,  yt = √2 ymt / vev, ...

Masses and widths in GeV; CKM = identity; fixed-width Breit–Wigner propagators.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

#: MadGraph sm model default param_card values (restrict_default).
SM_DEFAULTS: dict[str, float] = {
    "aEWM1": 132.507,
    "Gf": 1.16639e-5,
    "aS": 0.118,
    "ymb": 4.7,
    "ymt": 173.0,
    "ymtau": 1.777,
    "MZ": 91.188,
    "MT": 173.0,
    "MB": 4.7,
    "MH": 125.0,
    "MTA": 1.777,
    "WZ": 2.441404,
    "WW": 2.0476,
    "WT": 1.4915,
    "WH": 6.382339e-3,
}

#: Parameters that MadGraph's sm model derives; they cannot be set directly.
DERIVED = ("MW", "aEW", "sw2", "cw", "sw", "ee", "gs", "vev", "g1", "gw", "lam", "yt", "yb", "ytau")


class ParameterError(ValueError):
    """An unknown or invalid model parameter."""


@dataclass(frozen=True)
class SMParameters:
    """The SM parameter point; build it with :meth:`from_card` to validate overrides."""

    aEWM1: float = SM_DEFAULTS["aEWM1"]
    Gf: float = SM_DEFAULTS["Gf"]
    aS: float = SM_DEFAULTS["aS"]
    ymb: float = SM_DEFAULTS["ymb"]
    ymt: float = SM_DEFAULTS["ymt"]
    ymtau: float = SM_DEFAULTS["ymtau"]
    MZ: float = SM_DEFAULTS["MZ"]
    MT: float = SM_DEFAULTS["MT"]
    MB: float = SM_DEFAULTS["MB"]
    MH: float = SM_DEFAULTS["MH"]
    MTA: float = SM_DEFAULTS["MTA"]
    WZ: float = SM_DEFAULTS["WZ"]
    WW: float = SM_DEFAULTS["WW"]
    WT: float = SM_DEFAULTS["WT"]
    WH: float = SM_DEFAULTS["WH"]

    # ---- construction -------------------------------------------------
    @classmethod
    def from_card(cls, overrides: Mapping[str, Any] | None = None) -> "SMParameters":
        """Defaults with param_card-style overrides (case-insensitive names)."""
        if not overrides:
            return cls()
        names = {f.name.lower(): f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for key, value in overrides.items():
            k = str(key)
            if k.lower() in names:
                canonical = names[k.lower()]
            elif k in DERIVED or k.upper() == "MW":
                raise ParameterError(
                    f"parameter '{k}' is derived in the sm model (from aEWM1, Gf, MZ, aS, ...) and cannot be set"
                )
            else:
                close = difflib.get_close_matches(k, [f.name for f in fields(cls)], n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ParameterError(f"unknown model parameter '{k}'{hint}")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ParameterError(f"parameter '{k}' must be a number, got {value!r}") from None
            if not math.isfinite(v) or v < 0:
                raise ParameterError(f"parameter '{k}' must be finite and non-negative, got {v}")
            values[canonical] = v
        params = replace(cls(), **values)
        if params.aEWM1 <= 0 or params.Gf <= 0 or params.MZ <= 0:
            raise ParameterError("aEWM1, Gf and MZ must be positive")
        if params.MZ**4 / 4 - math.pi * params.aEW * params.MZ**2 / (math.sqrt(2) * params.Gf) < 0:
            raise ParameterError("aEWM1, Gf and MZ admit no real W mass")
        return params

    # ---- derived electroweak parameters ------------------------------
    @property
    def aEW(self) -> float:
        return 1.0 / self.aEWM1

    @property
    def MW(self) -> float:
        mz2 = self.MZ**2
        return math.sqrt(mz2 / 2 + math.sqrt(mz2**2 / 4 - math.pi * self.aEW * mz2 / (math.sqrt(2) * self.Gf)))

    @property
    def sw2(self) -> float:
        return 1.0 - self.MW**2 / self.MZ**2

    @property
    def sw(self) -> float:
        return math.sqrt(self.sw2)

    @property
    def cw(self) -> float:
        return self.MW / self.MZ

    @property
    def ee(self) -> float:
        """Electric charge e = √(4π α)."""
        return 2 * math.sqrt(self.aEW) * math.sqrt(math.pi)

    @property
    def gs(self) -> float:
        """Strong coupling g_s = √(4π α_s) at the param_card's aS."""
        return 2 * math.sqrt(self.aS) * math.sqrt(math.pi)

    @property
    def g1(self) -> float:
        return self.ee / self.cw

    @property
    def gw(self) -> float:
        return self.ee / self.sw

    @property
    def vev(self) -> float:
        return 2 * self.MW * self.sw / self.ee

    @property
    def lam(self) -> float:
        return self.MH**2 / (2 * self.vev**2)

    @property
    def yt(self) -> float:
        return self.ymt * math.sqrt(2) / self.vev

    @property
    def yb(self) -> float:
        return self.ymb * math.sqrt(2) / self.vev

    @property
    def ytau(self) -> float:
        return self.ymtau * math.sqrt(2) / self.vev

    # ---- lookups -------------------------------------------------------
    def value(self, name: str) -> float:
        """Numerical value of a parameter name (``'ZERO'`` is 0)."""
        if name == "ZERO":
            return 0.0
        return float(getattr(self, name))

    def mass(self, pdg: int) -> float:
        """Pole mass in GeV of a signed PDG id."""
        from .particles import particle

        return self.value(particle(pdg).mass)

    def width(self, pdg: int) -> float:
        """Total width in GeV of a signed PDG id."""
        from .particles import particle

        return self.value(particle(pdg).width)

    def as_dict(self) -> dict[str, float]:
        """External parameters plus the derived MW and sw2 (for run records)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(MW=self.MW, sw2=self.sw2)
        return d
