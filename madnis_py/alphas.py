"""The strong coupling α_s(Q²) as LHAPDF6 computes it, batched in torch (float64, device of the input).

Three kinds, all callable as ``alpha_s(q2) -> Tensor`` with Q² in GeV²:

* :class:`FixedAlphaS` – a constant.
* :class:`AnalyticAlphaS` – LHAPDF's ``AlphaS_Analytic``: the truncated large-log expansion of the
  n-loop solution in powers of ``1/ln(Q²/Λ²_nf)`` with a Λ_QCD per number of active flavours nf
  (nf from quark thresholds, LHAPDF's ``numFlavorsQ2`` and ``_lambdaQCD`` rules, its rounded
  β-coefficients). ``loops`` is LHAPDF's ``_qcdorder``: 0 = constant ``alphas_mz``, 1 = one loop, …, 4.
* :class:`InterpolatedAlphaS` – LHAPDF's ``AlphaS_Ipol``: cubic Hermite in ln Q² through
  ``AlphaS_Qs``/``AlphaS_Vals`` (subgrids split at repeated Q), power-law below the first knot,
  constant above the last.

:func:`alpha_s_from_info` builds the set's own coupling from its ``.info`` metadata. For
``AlphaS_Type: analytic`` with ``AlphaS_Lambda3/4/5`` given it reproduces LHAPDF exactly. Without
Λ values (LHAPDF itself refuses such an .info with a MetadataError), Λ_nf is derived from
``AlphaS_MZ`` at ``MZ`` and made continuous at each quark threshold, and ``AlphaS_OrderQCD`` is read in
the .info-file convention (0 = LO = one loop, 1 = NLO = two loops, …) — see
:meth:`AnalyticAlphaS.from_alphas_mz`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "AlphaSError",
    "AlphaS",
    "FixedAlphaS",
    "AnalyticAlphaS",
    "InterpolatedAlphaS",
    "alpha_s_from_info",
    "lhapdf_beta",
]

#: What LHAPDF returns where α_s diverges (Q² ≤ Λ², or an interpolated |α_s| ≥ 2).
DBL_MAX = 1.7976931348623157e308

QUARK_NAMES = ("Down", "Up", "Strange", "Charm", "Bottom", "Top")


class AlphaSError(ValueError):
    """Bad α_s metadata or an unphysical argument (Q² < 0)."""


def lhapdf_beta(i: int, nf: int) -> float:
    """β_i(nf) exactly as LHAPDF's ``AlphaS::_beta`` (rounded decimals of e.g. β_0 = (33 - 2nf)/(12π))."""
    if i == 0:
        return 0.875352187 - 0.053051647 * nf
    if i == 1:
        return 0.6459225457 - 0.0802126037 * nf
    if i == 2:
        return 0.719864327 - 0.140904490 * nf + 0.00303291339 * nf * nf
    if i == 3:
        return 1.172686 - 0.2785458 * nf + 0.01624467 * nf * nf + 0.0000601247 * nf * nf * nf
    raise AlphaSError(f"no beta-function coefficient beta_{i}")


def _as_q2(q2: Tensor | float) -> Tensor:
    """Q² as a float64 tensor on its own device; Q² < 0 raises, NaN propagates."""
    t = torch.as_tensor(q2)
    t = t.to(dtype=torch.float64)
    if bool((t < 0).any()):
        bad = t[t < 0].flatten()[0].item()
        raise AlphaSError(f"unphysical Q^2 = {bad:g} GeV^2 for alpha_s (need Q^2 >= 0)")
    return t


class AlphaS:
    """Base class: ``alpha_s(q2)`` with Q² in GeV² (tensor or float) → float64 tensor of the same shape."""

    def alphasQ2(self, q2: Tensor | float) -> Tensor:  # noqa: N802 (LHAPDF name)
        raise NotImplementedError

    def __call__(self, q2: Tensor | float) -> Tensor:
        return self.alphasQ2(q2)

    def alpha_s(self, q2: Tensor | float) -> Tensor:
        """Same as calling the object: α_s at Q² (GeV²)."""
        return self.alphasQ2(q2)

    def alphasQ(self, q: Tensor | float) -> Tensor:  # noqa: N802
        """α_s at the scale Q (GeV)."""
        q = torch.as_tensor(q, dtype=torch.float64)
        return self.alphasQ2(q * q)


class FixedAlphaS(AlphaS):
    """A constant coupling ``value`` at every scale."""

    def __init__(self, value: float):
        value = float(value)
        if not (0.0 < value < 4 * math.pi) or math.isnan(value):
            raise AlphaSError(f"fixed alpha_s must lie in (0, 4 pi), got {value}")
        self.value = value

    def alphasQ2(self, q2: Tensor | float) -> Tensor:  # noqa: N802
        q2 = _as_q2(q2)
        return torch.full_like(q2, self.value)

    def __repr__(self) -> str:
        return f"FixedAlphaS({self.value})"


def _analytic(q2_over_lambda2: float, nf: int, loops: int) -> float:
    """LHAPDF's analytic α_s for ln(Q²/Λ²) > 0 (scalar, used to fix Λ)."""
    beta = [lhapdf_beta(i, nf) for i in range(4)]
    lnx = math.log(q2_over_lambda2)
    return _series(lnx, beta, loops)


def _series(lnx, beta: Sequence[float], loops: int):
    """The expansion of ``AlphaS_Analytic::alphasQ2`` in y = 1/ln(Q²/Λ²); works on floats and tensors."""
    lnlnx = torch.log(lnx) if isinstance(lnx, Tensor) else math.log(lnx)
    y = 1 / lnx
    beta02 = beta[0] * beta[0]
    beta12 = beta[1] * beta[1]
    tmp = 1.0
    if loops > 1:
        tmp = tmp - beta[1] * lnlnx / beta02 * y
    if loops > 2:
        b = beta12 / (beta02 * beta02)
        tmp = tmp + b * y * y * (lnlnx * lnlnx - lnlnx + beta[2] * beta[0] / beta12 - 1)
    if loops > 3:
        c = 1.0 / (beta02 * beta02 * beta02)
        a30 = (beta12 * beta[1]) * (lnlnx * lnlnx * lnlnx - 2.5 * lnlnx * lnlnx - 2 * lnlnx + 0.5)
        a31 = 3 * beta[0] * beta[1] * beta[2] * lnlnx
        a32 = 0.5 * beta02 * beta[3]
        tmp = tmp - c * y * y * y * (a30 + a31 - a32)
    return (1 / beta[0]) * y * tmp


class AnalyticAlphaS(AlphaS):
    """LHAPDF ``AlphaS_Analytic``: α_s(Q²) from Λ_QCD per active-flavour number.

    ``lambdas``: {nf: Λ_nf in GeV}. ``loops``: LHAPDF's ``_qcdorder`` (0 = constant ``alphas_mz``,
    1..4 = n-loop expansion). ``thresholds``: {quark id 1..6: threshold (or mass) in GeV}; nf(Q²) is
    the largest id in [nf_min, nf_max] (the range of given Λ's) whose threshold² < Q², capped at
    ``num_flavors``; ``flavor_scheme="fixed"`` uses nf = ``num_flavors`` everywhere. A missing Λ_nf falls
    back to the next lower one, as in LHAPDF. Q² ≤ Λ² returns LHAPDF's DBL_MAX.
    """

    def __init__(
        self,
        lambdas: Mapping[int, float],
        loops: int = 1,
        thresholds: Mapping[int, float] | None = None,
        flavor_scheme: str = "variable",
        num_flavors: int = -1,
        alphas_mz: float | None = None,
    ):
        if not lambdas:
            raise AlphaSError("AnalyticAlphaS needs at least one Lambda_QCD value")
        self.lambdas = {int(k): float(v) for k, v in lambdas.items()}
        for nf, lam in self.lambdas.items():
            if not 0 <= nf <= 6 or not lam > 0:
                raise AlphaSError(f"bad Lambda_QCD entry nf={nf}: {lam} GeV (need 0 <= nf <= 6, Lambda > 0)")
        if not 0 <= int(loops) <= 4:
            raise AlphaSError(f"analytic alpha_s supports 0..4 loops, got {loops}")
        self.loops = int(loops)
        self.thresholds = {int(k): float(v) for k, v in (thresholds or {}).items()}
        self.flavor_scheme = flavor_scheme.lower()
        if self.flavor_scheme not in ("variable", "fixed"):
            raise AlphaSError(f"flavour scheme must be 'variable' or 'fixed', got {flavor_scheme!r}")
        self.num_flavors = int(num_flavors)
        if self.flavor_scheme == "fixed" and self.num_flavors not in self.lambdas:
            raise AlphaSError(f"fixed {self.num_flavors}-flavour scheme needs Lambda_{self.num_flavors}")
        if self.loops == 0 and alphas_mz is None:
            raise AlphaSError("loops = 0 (constant alpha_s, LHAPDF convention) needs alphas_mz")
        self.alphas_mz = None if alphas_mz is None else float(alphas_mz)
        self.nf_min = min(self.lambdas)
        self.nf_max = max(self.lambdas)

    # -- LHAPDF's flavour-number rules -------------------------------------------------------------
    def num_flavors_q2(self, q2: float) -> int:
        """Active flavours at Q² (LHAPDF ``AlphaS_Analytic::numFlavorsQ2``)."""
        if self.flavor_scheme == "fixed":
            return self.num_flavors
        nf = self.nf_min
        for it in range(self.nf_min, self.nf_max + 1):
            thr = self.thresholds.get(it)
            if thr is not None and thr * thr < q2:
                nf = it
        if self.num_flavors != -1 and nf > self.num_flavors:
            nf = self.num_flavors
        return nf

    def lambda_qcd(self, nf: int) -> float:
        """Λ for nf active flavours, falling back to the closest lower defined one (LHAPDF ``_lambdaQCD``)."""
        if self.flavor_scheme == "fixed":
            return self.lambdas[self.num_flavors]
        for k in range(nf, -1, -1):
            if k in self.lambdas:
                return self.lambdas[k]
        raise AlphaSError(f"no Lambda_QCD defined for nf <= {nf}")

    def _edges(self) -> list[tuple[float, int]]:
        """Q² intervals of constant nf: [(lower Q² edge, nf)], first edge 0."""
        if self.flavor_scheme == "fixed":
            return [(0.0, self.num_flavors)]
        cands = sorted({0.0} | {t * t for k, t in self.thresholds.items() if self.nf_min <= k <= self.nf_max})
        out: list[tuple[float, int]] = []
        for c in cands:
            # nf is constant on (c, next]; probe just above c
            nf = self.num_flavors_q2(math.nextafter(c, math.inf))
            if not out or out[-1][1] != nf:
                out.append((c, nf))
        return out

    def alphasQ2(self, q2: Tensor | float) -> Tensor:  # noqa: N802
        q2 = _as_q2(q2)
        if self.loops == 0:
            return torch.full_like(q2, self.alphas_mz)
        out = torch.empty_like(q2)
        edges = self._edges()
        for j, (lo, nf) in enumerate(edges):
            # LHAPDF: thr² < Q² switches up, so each interval is (lo, hi]
            sel = q2 > lo if j > 0 else torch.ones_like(q2, dtype=torch.bool)
            if j + 1 < len(edges):
                sel = sel & (q2 <= edges[j + 1][0])
            lam = self.lambda_qcd(nf)
            beta = [lhapdf_beta(i, nf) for i in range(4)]
            lnx = torch.log(q2 / (lam * lam))
            val = _series(lnx, beta, self.loops)
            val = torch.where(q2 <= lam * lam, torch.full_like(val, DBL_MAX), val)
            out = torch.where(sel, val, out)
        return torch.where(torch.isnan(q2), q2, out)

    # -- Λ from α_s(M_Z) ------------------------------------------------------------------------
    @classmethod
    def from_alphas_mz(
        cls,
        alphas_mz: float,
        mz: float,
        thresholds: Mapping[int, float],
        loops: int = 1,
        flavor_scheme: str = "variable",
        num_flavors: int = 6,
    ) -> "AnalyticAlphaS":
        """Λ_nf fixed by α_s(M_Z) and continuity of α_s at each quark threshold.

        Not an LHAPDF feature (its analytic α_s takes Λ's from the .info): Λ_{nf(M_Z)} solves
        α_s(M_Z²) = ``alphas_mz``; going down (up) in nf, Λ_nf solves α_s^(nf)(m²) = α_s^(nf±1)(m²) at the
        threshold m between them. nf runs from the number of massless quarks (at least 3 quarks with
        threshold 0 → 3) up to ``num_flavors``. ``loops`` ≥ 1 (one loop = ``AlphaS_OrderQCD: 0``).
        """
        if not 1 <= loops <= 4:
            raise AlphaSError(f"Lambda from alpha_s(MZ) needs 1..4 loops, got {loops}")
        alphas_mz, mz = float(alphas_mz), float(mz)
        if not (0 < alphas_mz < 1) or not mz > 0:
            raise AlphaSError(f"need 0 < alpha_s(MZ) < 1 and MZ > 0, got {alphas_mz}, {mz}")
        thr = {int(k): float(v) for k, v in thresholds.items()}
        if flavor_scheme.lower() == "fixed":
            nf = int(num_flavors)
            lam = _solve_lambda(alphas_mz, mz * mz, nf, loops)
            return cls({nf: lam}, loops, thr, "fixed", nf, alphas_mz)
        massless = [k for k in range(1, 7) if thr.get(k, 0.0) == 0.0]
        nf_lo = max(massless) if massless else 0
        nf_hi = min(6, int(num_flavors)) if num_flavors != -1 else 6
        if nf_hi < nf_lo:
            raise AlphaSError(f"NumFlavors = {num_flavors} is below the {nf_lo} massless quarks")
        probe = cls({k: 1.0 for k in range(nf_lo, nf_hi + 1)}, loops, thr, "variable", num_flavors, alphas_mz)
        nf_z = probe.num_flavors_q2(mz * mz)
        lambdas = {nf_z: _solve_lambda(alphas_mz, mz * mz, nf_z, loops)}
        for nf in range(nf_z - 1, nf_lo - 1, -1):  # downwards: match at threshold of quark nf+1
            m2 = thr[nf + 1] ** 2
            target = _analytic(m2 / lambdas[nf + 1] ** 2, nf + 1, loops)
            lambdas[nf] = _solve_lambda(target, m2, nf, loops)
        for nf in range(nf_z + 1, nf_hi + 1):  # upwards: match at threshold of quark nf
            m2 = thr[nf] ** 2
            target = _analytic(m2 / lambdas[nf - 1] ** 2, nf - 1, loops)
            lambdas[nf] = _solve_lambda(target, m2, nf, loops)
        return cls(lambdas, loops, thr, "variable", num_flavors, alphas_mz)

    def __repr__(self) -> str:
        lam = ", ".join(f"{k}: {v:.6g}" for k, v in sorted(self.lambdas.items()))
        return f"AnalyticAlphaS(loops={self.loops}, lambdas={{{lam}}}, scheme={self.flavor_scheme})"


def _solve_lambda(alpha: float, mu2: float, nf: int, loops: int) -> float:
    """Λ (GeV) with analytic α_s^(nf, loops)(μ²) = alpha: bisection in L = ln(μ²/Λ²) (α decreasing in L)."""
    b0 = lhapdf_beta(0, nf)
    l1 = 1.0 / (b0 * alpha)  # one-loop solution
    if loops == 1:
        return math.sqrt(mu2 * math.exp(-l1))
    lo, hi = 0.05 * l1, 20.0 * l1 + 10.0

    def f(ell: float) -> float:
        return _series(ell, [lhapdf_beta(i, nf) for i in range(4)], loops) - alpha

    # the expansion is monotone only at large L: move lo up until f(lo) > 0
    for _ in range(200):
        if lo > 1.0 and f(lo) > 0:
            break
        lo *= 1.1
    if not (f(lo) > 0 > f(hi)):
        raise AlphaSError(f"cannot solve for Lambda_{nf} from alpha_s = {alpha} at Q = {math.sqrt(mu2):g} GeV")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 4e-16 * hi:
            break
    ell = 0.5 * (lo + hi)
    return math.sqrt(mu2 * math.exp(-ell))


class InterpolatedAlphaS(AlphaS):
    """LHAPDF ``AlphaS_Ipol``: cubic Hermite interpolation in ln Q² of tabulated (Q, α_s).

    Repeated Q values split the table into subgrids (flavour thresholds; a knot equal to a threshold
    belongs to the upper subgrid). Derivatives: one-sided at subgrid ends, mean of the neighbouring
    slopes inside. Below the first knot: α_s(Q₀²)·(Q²/Q₀²)^p with the log-log slope p of the first two
    distinct knots; above the last knot: the last value. |α_s| ≥ 2 returns DBL_MAX, as in LHAPDF.
    """

    def __init__(self, qs: Sequence[float], values: Sequence[float]):
        qs = [float(q) for q in qs]
        values = [float(v) for v in values]
        if len(qs) != len(values):
            raise AlphaSError(
                f"AlphaS value and Q interpolation arrays are differently sized ({len(values)} vs {len(qs)})"
            )
        if len(qs) < 2:
            raise AlphaSError("AlphaS_Qs needs at least two knots")
        q2s = [q * q for q in qs]
        if any(b < a for a, b in zip(q2s, q2s[1:])) or q2s[0] <= 0:
            raise AlphaSError("AlphaS_Qs must be positive and non-decreasing")
        self.q2s, self.values = q2s, values
        # split into subgrids at repeated Q² (LHAPDF's _setup_grids)
        self.subgrids: list[tuple[list[float], list[float]]] = []
        cur_q, cur_a = [q2s[0]], [values[0]]
        for q2, a in zip(q2s[1:], values[1:]):
            if abs(q2 - cur_q[-1]) < 2.220446049250313e-16:
                self.subgrids.append((cur_q, cur_a))
                cur_q, cur_a = [], []
            cur_q.append(q2)
            cur_a.append(a)
        self.subgrids.append((cur_q, cur_a))
        for sq, _ in self.subgrids:
            if len(sq) < 2:
                raise AlphaSError("each AlphaS_Qs subgrid (between repeated Q values) needs at least two knots")
        nxt = next((i for i in range(1, len(q2s)) if q2s[i] != q2s[0]), None)
        if nxt is None:
            raise AlphaSError("AlphaS_Qs has a single distinct value")
        self._loggrad = math.log10(values[nxt] / values[0]) / math.log10(q2s[nxt] / q2s[0])
        self._cache: dict[torch.device, list[tuple[Tensor, Tensor, Tensor, Tensor]]] = {}

    def _tables(self, device: torch.device) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
        if device not in self._cache:
            tabs = []
            for sq, sa in self.subgrids:
                q2 = torch.tensor(sq, dtype=torch.float64, device=device)
                lq = torch.log(q2)
                a = torch.tensor(sa, dtype=torch.float64, device=device)
                # derivatives d α / d ln Q² at each knot of this subgrid
                fwd = (a[1:] - a[:-1]) / (lq[1:] - lq[:-1])
                d = torch.empty_like(a)
                d[0] = fwd[0]
                d[-1] = fwd[-1]
                if len(sq) > 2:
                    d[1:-1] = 0.5 * (fwd[1:] + fwd[:-1])
                tabs.append((q2, lq, a, d))
            self._cache[device] = tabs
        return self._cache[device]

    def alphasQ2(self, q2: Tensor | float) -> Tensor:  # noqa: N802
        q2 = _as_q2(q2)
        tabs = self._tables(q2.device)
        out = torch.full_like(q2, self.values[-1])  # above the last knot
        below = q2 < self.q2s[0]
        low = self.values[0] * torch.pow(q2 / self.q2s[0], self._loggrad)
        out = torch.where(below, low, out)
        starts = [sq[0] for sq, _ in self.subgrids]
        flat = q2.reshape(-1)
        res = out.reshape(-1).clone()
        for j, (kq2, lq, a, d) in enumerate(tabs):
            sel = (flat >= starts[j]) & (flat <= self.q2s[-1])
            if j + 1 < len(starts):
                sel = sel & (flat < starts[j + 1])
            if not bool(sel.any()):
                continue
            qq = flat[sel]
            n = kq2.shape[0]
            i = (torch.searchsorted(kq2, qq, right=True).clamp(max=n - 1) - 1).clamp(min=0)
            dl = lq[i + 1] - lq[i]
            t = (torch.log(qq) - lq[i]) / dl
            vl, vh = a[i], a[i + 1]
            vdl, vdh = d[i] * dl, d[i + 1] * dl
            t2 = t * t
            t3 = t2 * t
            v = (2 * t3 - 3 * t2 + 1) * vl + (t3 - 2 * t2 + t) * vdl + (-2 * t3 + 3 * t2) * vh + (t3 - t2) * vdh
            v = torch.where(v.abs() < 2.0, v, torch.full_like(v, DBL_MAX))
            res[sel] = v
        return res.reshape(q2.shape)

    def __repr__(self) -> str:
        return f"InterpolatedAlphaS({len(self.q2s)} knots, Q in [{math.sqrt(self.q2s[0]):g}, {math.sqrt(self.q2s[-1]):g}] GeV)"


def _quark_scales(info: Mapping[str, Any]) -> dict[int, float] | None:
    """Flavour thresholds as LHAPDF's mkAlphaS picks them: AlphaS_Threshold*, Threshold*, AlphaS_M*, M*."""
    for prefix in ("AlphaS_Threshold", "Threshold", "AlphaS_M", "M"):
        keys = [prefix + q for q in QUARK_NAMES]
        if all(k in info for k in keys):
            return {i + 1: float(info[k]) for i, k in enumerate(keys)}
    return None


def alpha_s_from_info(info: Mapping[str, Any]) -> AlphaS:
    """The α_s of a PDF set from its ``.info`` metadata (see the module docstring for the conventions)."""
    kind = str(info.get("AlphaS_Type", "")).strip().lower()
    if kind == "ipol":
        if "AlphaS_Qs" not in info or "AlphaS_Vals" not in info:
            raise AlphaSError("AlphaS_Type ipol needs AlphaS_Qs and AlphaS_Vals in the .info")
        return InterpolatedAlphaS(info["AlphaS_Qs"], info["AlphaS_Vals"])
    if kind == "analytic":
        scales = _quark_scales(info)
        if scales is None:
            raise AlphaSError(
                "analytic alpha_s needs all six quark masses (MDown..MTop) or thresholds in the .info"
            )
        scheme = str(info.get("AlphaS_FlavorScheme", info.get("FlavorScheme", "variable"))).lower()
        nflav = int(info.get("AlphaS_NumFlavors", info.get("NumFlavors", 5)))
        if scheme not in ("variable", "fixed"):
            scheme, nflav = "variable", 5
        order = int(info.get("AlphaS_OrderQCD", 4))
        lambdas = {nf: float(info[f"AlphaS_Lambda{nf}"]) for nf in (3, 4, 5) if f"AlphaS_Lambda{nf}" in info}
        if lambdas:  # LHAPDF's own behaviour, exactly
            amz = info.get("AlphaS_MZ")
            return AnalyticAlphaS(lambdas, order, scales, scheme, nflav, None if amz is None else float(amz))
        if "AlphaS_MZ" not in info or "MZ" not in info:
            raise AlphaSError("analytic alpha_s needs AlphaS_Lambda3/4/5 or AlphaS_MZ and MZ in the .info")
        return AnalyticAlphaS.from_alphas_mz(
            float(info["AlphaS_MZ"]), float(info["MZ"]), scales, order + 1, scheme, nflav
        )
    if kind == "ode":
        raise AlphaSError("AlphaS_Type ode (numerical RGE solution) is not implemented; use ipol or analytic")
    raise AlphaSError(f"unknown or missing AlphaS_Type {info.get('AlphaS_Type')!r} (expected analytic or ipol)")
