"""LHAPDF6 grid PDFs (``lhagrid1``) evaluated in torch, batched, float64, on the device of the inputs.

``load_pdf(name_or_id, member)`` finds ``<dir>/<Set>/<Set>.info`` and ``<Set>_<member:04d>.dat`` in
``$LHAPDF_DATA_PATH`` (colon-separated), then ``$LHAPATH``, then the bundled ``madnis_py/data/pdfsets``.
A set is named by its LHAPDF name (``"NNPDF23_lo_as_0130_qed"``, also ``"Name/member"``) or by its integer
LHAPDF ID (``SetIndex`` + member, from the ``.info`` files, or a ``pdfsets.index`` in a search directory).

Values are x·f(x, Q²) (what the grid stores), for PDG ids ±1..±6, 21 (= 0) gluon, 22 photon; flavours
absent from the grid give 0. The numerics follow LHAPDF 6.4/6.5 (``GridPDF``, ``KnotArray``):

* Interpolation (``LogBicubicInterpolator``): all subgrids are concatenated along Q² (the threshold Q
  appears twice); knot search ``upper_bound - 1`` capped at n-2, so Q² equal to a threshold belongs
  to the upper subgrid. In ln x: per Q knot, a cubic Hermite polynomial with knot derivatives
  d(xf)/d ln x = mean of the left and right difference quotients (one-sided at the first/last x knot).
  In ln Q²: cubic Hermite between the two ln-x interpolants at Q knots iq, iq+1, with slopes from the
  neighbours iq-1, iq+2 (one-sided at subgrid edges, LHAPDF's unequal-spacing-weighted mean inside);
  a subgrid with only two Q knots falls back to bilinear in (ln x, ln Q²).
* Outside the grid (``ContinuationExtrapolator``): x < x_min is continued linearly in ln x of ln(xf)
  when both anchors xf(x_min), xf(x_2) > 1e-3, else of xf; Q² > Q²_max likewise in ln Q² from the last two
  Q knots; Q² < Q²_min uses the anomalous dimension γ = dln f/dln Q² at Q²_min (from Q²_min and 1.01 Q²_min,
  floor -2.5, γ = 1 if |f| < 1e-5), f = f(Q²_min)·(Q²/Q²_min)^(γ r + 1 - r), r = Q²/Q²_min.
* Checks (``PDF::xfxQ2``): x outside [0, 1] or Q² < 0 raise :class:`PDFRangeError` (x up to 1e-12 above 1
  is taken as 1: kinematic rounding); x > x_max (sets with x_max < 1) raises too. NaN or infinite
  inputs give NaN rows instead of raising, so a batch with a few invalid events still evaluates.
  ``ForcePositive`` 1/2 from the metadata clamps at 0 / 1e-10 as LHAPDF does. x = 0 exactly is allowed
  (as in LHAPDF) and, through log(0) in the continuation, gives inf/NaN like LHAPDF does.
  ``Extrapolator: nearest`` (clamp into the grid) and ``error`` (raise) in the metadata are honoured.

``pdf.alpha_s`` is the set's own α_s (see :mod:`madnis_py.alphas`).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor

from .alphas import AlphaS, AlphaSError, alpha_s_from_info

__all__ = [
    "PDFError",
    "PDFNotFoundError",
    "PDFFormatError",
    "PDFRangeError",
    "GridPDF",
    "PDF",
    "load_pdf",
    "pdf_search_path",
    "find_pdf_set",
    "read_lhagrid1",
    "STANDARD_PIDS",
]

PACKAGE_PDF_DIR = Path(__file__).resolve().parent / "data" / "pdfsets"
#: Column order of :meth:`GridPDF.xfxQ2_all`: pid -6..6, column = pid + 6, gluon (21) at 6.
STANDARD_PIDS = (-6, -5, -4, -3, -2, -1, 21, 1, 2, 3, 4, 5, 6)
X_ROUNDING = 1e-12
CPU_CHUNK = 4096  # points per interpolation pass on CPU (keeps the gathered coefficients in cache)
GPU_CHUNK = 1 << 20


class PDFError(ValueError):
    """Base class of PDF errors."""


class PDFNotFoundError(PDFError):
    """No PDF set of that name / ID / member in any search directory."""


class PDFFormatError(PDFError):
    """A ``.info`` or ``.dat`` file that cannot be read as an LHAPDF6 lhagrid1 set."""


class PDFRangeError(PDFError):
    """Unphysical arguments: x outside [0, 1], Q² < 0, or x above the grid's x_max."""


# ---- locating sets ---------------------------------------------------------------------------------


def pdf_search_path() -> list[Path]:
    """Directories searched for PDF sets, in order: $LHAPDF_DATA_PATH, $LHAPATH, the bundled sets."""
    dirs: list[Path] = []
    for var in ("LHAPDF_DATA_PATH", "LHAPATH"):
        for part in os.environ.get(var, "").split(os.pathsep):
            if part.strip():
                dirs.append(Path(part.strip()).expanduser())
    dirs.append(PACKAGE_PDF_DIR)
    seen: set[str] = set()
    out = []
    for d in dirs:
        if str(d) not in seen:
            seen.add(str(d))
            out.append(d)
    return out


_SETINDEX_RE = re.compile(r"^\s*SetIndex\s*:\s*(\d+)\s*$", re.M)
_NUMMEMBERS_RE = re.compile(r"^\s*NumMembers\s*:\s*(\d+)\s*$", re.M)


def _lookup_id(lhaid: int, dirs: Sequence[Path]) -> tuple[Path, str, int] | None:
    """(set dir, set name, member) for an LHAPDF ID from the sets' SetIndex, else from pdfsets.index."""
    for d in dirs:
        if not d.is_dir():
            continue
        for info in sorted(d.glob("*/*.info")):
            if info.stem != info.parent.name:
                continue
            try:
                text = info.read_text(errors="replace")
            except OSError:
                continue
            m = _SETINDEX_RE.search(text)
            if not m:
                continue
            first = int(m.group(1))
            nm = _NUMMEMBERS_RE.search(text)
            count = int(nm.group(1)) if nm else 1
            if first <= lhaid < first + count:
                return info.parent, info.stem, lhaid - first
    for d in dirs:  # LHAPDF's own index: the entry with the largest first ID <= lhaid
        index = d / "pdfsets.index"
        if not index.is_file():
            continue
        best: tuple[int, str] | None = None
        for line in index.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit():
                first = int(parts[0])
                if first <= lhaid and (best is None or first > best[0]):
                    best = (first, parts[1])
        if best is not None:
            for dd in dirs:
                if (dd / best[1] / f"{best[1]}.info").is_file():
                    return dd / best[1], best[1], lhaid - best[0]
    return None


def find_pdf_set(name_or_id: str | int, member: int = 0) -> tuple[Path, str, int]:
    """Resolve a set name, ``"Name/member"``, or an integer LHAPDF ID to (set directory, name, member)."""
    dirs = pdf_search_path()
    searched = ", ".join(str(d) for d in dirs)
    if isinstance(name_or_id, bool):
        raise PDFNotFoundError(f"bad PDF set specification {name_or_id!r}")
    spec = name_or_id
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec.strip())
    if isinstance(spec, (int, np.integer)):
        lhaid = int(spec)
        if member != 0:
            raise PDFNotFoundError(f"give either an LHAPDF ID ({lhaid}) or a member ({member}), not both")
        found = _lookup_id(lhaid, dirs)
        if found is None:
            raise PDFNotFoundError(f"no PDF set with LHAPDF ID {lhaid} in any of: {searched}")
        return found
    if not isinstance(spec, str) or not spec.strip():
        raise PDFNotFoundError(f"bad PDF set specification {name_or_id!r}")
    name = spec.strip()
    if "/" in name:
        name, _, mem = name.rpartition("/")
        if not mem.isdigit():
            raise PDFNotFoundError(f"bad PDF member in {spec!r} (expected 'SetName/member')")
        if member != 0 and member != int(mem):
            raise PDFNotFoundError(f"conflicting members in {spec!r} and member={member}")
        member = int(mem)
    if int(member) < 0:
        raise PDFNotFoundError(f"PDF member must be >= 0, got {member}")
    for d in dirs:
        if (d / name / f"{name}.info").is_file():
            return d / name, name, int(member)
    raise PDFNotFoundError(f"PDF set '{name}' not found in any of: {searched} (set LHAPDF_DATA_PATH to add directories)")


# ---- reading files ---------------------------------------------------------------------------------


@dataclass
class Subgrid:
    """One lhagrid1 block: x knots [nx], Q knots [nq] (GeV), pids [nf], values x·f [nx, nq, nf]."""

    xs: np.ndarray
    qs: np.ndarray
    pids: list[int]
    values: np.ndarray


def _read_yaml(path: Path, text: str) -> dict:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise PDFFormatError(f"{path}: invalid YAML metadata ({str(exc).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PDFFormatError(f"{path}: metadata is not a YAML mapping")
    return data


def read_lhagrid1(path: str | Path) -> tuple[dict, list[Subgrid]]:
    """Parse an LHAPDF6 member file: (header metadata, subgrid blocks). Raises PDFFormatError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PDFNotFoundError(f"cannot read PDF member file {path}: {exc.strerror}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if not ln.startswith("#")]
    seps = [i for i, ln in enumerate(lines) if ln == "---"]
    if not seps:
        raise PDFFormatError(f"{path}: no '---' block separator (not an LHAPDF6 grid file)")
    if any(ln for ln in lines[seps[-1] + 1 :]):
        raise PDFFormatError(f"{path}: grid file must end with a '---' separator line")
    header = _read_yaml(path, "\n".join(lines[: seps[0]]))
    fmt = str(header.get("Format", "lhagrid1"))
    if fmt != "lhagrid1":
        raise PDFFormatError(f"{path}: Format '{fmt}' is not supported (only lhagrid1)")
    blocks: list[Subgrid] = []
    for b, (start, stop) in enumerate(zip(seps[:-1], seps[1:])):
        body = [ln for ln in lines[start + 1 : stop] if ln]
        where = f"{path}, block {b + 1}"
        if len(body) < 4:
            raise PDFFormatError(f"{where}: needs x-knot, Q-knot, flavour and value lines")
        try:
            xs = np.array(body[0].split(), dtype=np.float64)
            qs = np.array(body[1].split(), dtype=np.float64)
            pids = [int(t) for t in body[2].split()]
            vals = np.array(" ".join(body[3:]).split(), dtype=np.float64)
        except ValueError as exc:
            raise PDFFormatError(f"{where}: non-numeric entry ({exc})") from None
        nx, nq, nf = len(xs), len(qs), len(pids)
        if vals.size != nx * nq * nf or len(body) - 3 != nx * nq:
            raise PDFFormatError(
                f"{where}: expected {nx}x{nq} value lines of {nf} flavours, found {len(body) - 3} lines / {vals.size} numbers"
            )
        if nx < 4 or nq < 2:
            raise PDFFormatError(f"{where}: log-bicubic interpolation needs >= 4 x knots and >= 2 Q knots")
        if not (np.all(np.diff(xs) > 0) and xs[0] > 0):
            raise PDFFormatError(f"{where}: x knots must be positive and strictly increasing")
        if not (np.all(np.diff(qs) > 0) and qs[0] > 0):
            raise PDFFormatError(f"{where}: Q knots must be positive and strictly increasing")
        if len(set(pids)) != nf:
            raise PDFFormatError(f"{where}: repeated flavour ids {pids}")
        # value lines run over x (outer) and Q (inner); each line lists all flavours
        blocks.append(Subgrid(xs, qs, pids, vals.reshape(nx, nq, nf)))
    if not blocks:
        raise PDFFormatError(f"{path}: no grid blocks")
    for b, blk in enumerate(blocks[1:], start=2):
        if not np.array_equal(blk.xs, blocks[0].xs):
            raise PDFFormatError(f"{path}, block {b}: x knots differ from block 1")
        if blk.pids != blocks[0].pids:
            raise PDFFormatError(f"{path}, block {b}: flavour list differs from block 1")
        if blk.qs[0] < blocks[b - 2].qs[-1]:
            raise PDFFormatError(f"{path}, block {b}: Q knots overlap the previous block")
    return header, blocks


# ---- the PDF ---------------------------------------------------------------------------------------


class _Tables:
    """Device-resident interpolation tables for a set of value columns."""

    def __init__(self, coeff: Tensor, values: Tensor, present: Tensor):
        self.coeff = coeff  # [(nx-1)*nq, 4*K]  x-polynomial coefficients (a, b, c, d), each for all K columns
        self.values = values  # [nx, nq, K] raw knot values (bilinear fallback)
        self.present = present  # [K] bool: flavour in the grid
        self.k = present.shape[0]


class GridPDF:
    """One member of an LHAPDF6 grid set. Evaluate with :meth:`xfxQ2`, :meth:`xfxQ`, :meth:`xfxQ2_all`.

    Attributes: ``name``, ``member``, ``lhapdf_id`` (or None), ``info`` (set .info merged with the member
    header), ``flavors`` (pids in the grid), ``x_knots``, ``q2_knots`` (concatenated subgrids, numpy),
    ``alpha_s`` (the set's α_s, or None if its metadata has none usable), ``path``.
    """

    def __init__(self, name: str, member: int, info: dict, blocks: Sequence[Subgrid], path: Path | None = None):
        self.name, self.member, self.info, self.path = name, int(member), dict(info), path
        first = info.get("SetIndex")
        self.lhapdf_id = int(first) + self.member if isinstance(first, int) else None
        ipol = str(info.get("Interpolator", "logcubic")).lower()
        if ipol != "logcubic":
            raise PDFFormatError(f"{name}: Interpolator '{ipol}' is not supported (only logcubic)")
        self.extrapolator = str(info.get("Extrapolator", "continuation")).lower()
        if self.extrapolator not in ("continuation", "nearest", "error"):
            raise PDFFormatError(f"{name}: unknown Extrapolator '{self.extrapolator}'")
        self.force_positive = int(info.get("ForcePositive", 0))
        if self.force_positive not in (0, 1, 2):
            raise PDFFormatError(f"{name}: ForcePositive must be 0, 1 or 2")

        xs = blocks[0].xs
        q2s = np.concatenate([b.qs for b in blocks]) ** 2
        vals = np.concatenate([b.values for b in blocks], axis=1)  # [nx, nq, nf]
        pids = list(blocks[0].pids)
        self.flavors = sorted(21 if p == 0 else p for p in pids)
        self.x_knots, self.q2_knots = xs, q2s
        nx, nq = len(xs), len(q2s)
        # column layout: the 13 standard pids, then the others present (photon first)
        extra = sorted((p for p in pids if p not in STANDARD_PIDS and p != 0), key=lambda p: (p != 22, p))
        self._columns = list(STANDARD_PIDS) + extra
        table = np.zeros((nx, nq, len(self._columns)))
        present = np.zeros(len(self._columns), dtype=bool)
        for j, p in enumerate(pids):
            c = self._columns.index(21 if p == 0 else p)
            table[:, :, c] = vals[:, :, j]
            present[c] = True
        self._col_of = {p: c for c, p in enumerate(self._columns) if present[c]}
        if 21 in self._col_of:
            self._col_of[0] = self._col_of[21]
        self._table, self._present = table, present
        self._coeff = self._x_coefficients(np.log(xs), table)  # [nx-1, nq, K, 4]
        # Q knots that start a subgrid with a single interval: bilinear fallback there
        lower = np.array([i == 0 or q2s[i] == q2s[i - 1] for i in range(nq - 1)])
        upper = np.array([i + 1 == nq - 1 or q2s[i + 1] == q2s[i + 2] for i in range(nq - 1)])
        self._has_fallback = bool(np.any(lower & upper))
        self._cache: dict[tuple[str, Any], Any] = {}
        self.alpha_s: AlphaS | None
        try:
            self.alpha_s = alpha_s_from_info(info)
        except AlphaSError:
            self.alpha_s = None

    @staticmethod
    def _x_coefficients(logxs: np.ndarray, table: np.ndarray) -> np.ndarray:
        """LHAPDF ``GridPDF::_computePolynomialCoefficients(logspace=true)``: cubic in t per x interval."""
        nx = len(logxs)
        dlog = np.diff(logxs)[:, None, None]  # [nx-1, 1, 1]
        slope = (table[1:] - table[:-1]) / dlog  # [nx-1, nq, K]
        ddx = np.empty_like(table)
        ddx[0] = slope[0]
        ddx[nx - 1] = slope[nx - 2]
        ddx[1 : nx - 1] = (slope[:-1] + slope[1:]) / 2.0
        vl, vh = table[:-1], table[1:]
        vdl, vdh = ddx[:-1] * dlog, ddx[1:] * dlog
        a = vdh + vdl - 2 * vh + 2 * vl
        b = 3 * vh - 3 * vl - 2 * vdl - vdh
        return np.stack([a, b, vdl, vl], axis=-1)

    # -- device tables --------------------------------------------------------------------------------
    def _knots(self, device: torch.device) -> dict[str, Tensor]:
        key = ("knots", device)
        if key not in self._cache:
            f = lambda a: torch.as_tensor(a, dtype=torch.float64).to(device)  # noqa: E731
            self._cache[key] = {
                "xs": f(self.x_knots),
                "logxs": f(np.log(self.x_knots)),
                "q2s": f(self.q2_knots),
                "logq2s": f(np.log(self.q2_knots)),
            }
        return self._cache[key]

    def _tables(self, cols: tuple[int, ...], device: torch.device) -> _Tables:
        key = (cols, device)
        if key not in self._cache:
            idx = list(cols)
            coeff = np.ascontiguousarray(self._coeff[:, :, idx, :].transpose(0, 1, 3, 2)).reshape(-1, 4 * len(idx))
            self._cache[key] = _Tables(
                torch.as_tensor(coeff, dtype=torch.float64).to(device),
                torch.as_tensor(np.ascontiguousarray(self._table[:, :, idx]), dtype=torch.float64).to(device),
                torch.as_tensor(self._present[idx]).to(device),
            )
        return self._cache[key]

    # -- the interpolator ----------------------------------------------------------------------------------
    def _interpolate(self, x: Tensor, q2: Tensor, tab: _Tables) -> Tensor:
        """Log-bicubic interpolation at in-grid points x, q2 [m] → [m, K] (CPU: in cache-sized chunks)."""
        m = x.shape[0]
        chunk = CPU_CHUNK if x.device.type == "cpu" else GPU_CHUNK
        if m <= chunk:
            return self._interpolate_chunk(x, q2, tab)
        out = torch.empty(m, tab.k, dtype=torch.float64, device=x.device)
        for s in range(0, m, chunk):
            out[s : s + chunk] = self._interpolate_chunk(x[s : s + chunk], q2[s : s + chunk], tab)
        return out

    def _interpolate_chunk(self, x: Tensor, q2: Tensor, tab: _Tables) -> Tensor:
        kn = self._knots(x.device)
        xs, logxs, q2s, logq2s = kn["xs"], kn["logxs"], kn["q2s"], kn["logq2s"]
        nx, nq, k = xs.shape[0], q2s.shape[0], tab.k
        m = x.shape[0]
        # knot below: upper_bound - 1, capped at n - 2 (LHAPDF indexbelow)
        ix = (torch.searchsorted(xs, x, right=True).clamp(max=nx - 1) - 1).clamp(min=0)
        iq = (torch.searchsorted(q2s, q2, right=True).clamp(max=nq - 1) - 1).clamp(min=0)
        iqm = (iq - 1).clamp(min=0)
        iqp = iq + 1
        iqpp = (iq + 2).clamp(max=nq - 1)
        logx, logq2 = torch.log(x), torch.log(q2)
        lx0 = logxs[ix]
        tlogx = (logx - lx0) / (logxs[ix + 1] - lx0)
        lq0, lq1 = logq2s[iq], logq2s[iqp]
        dlogq_1 = lq1 - lq0
        dlogq_0 = 1.0 / (lq0 - logq2s[iqm])  # inverse spacings, as in LHAPDF
        dlogq_2 = 1.0 / (logq2s[iqpp] - lq1)
        tlogq = (logq2 - lq0) / dlogq_1
        q2_lower = (iq == 0) | (q2s[iq] == q2s[iqm])
        q2_upper = (iqp == nq - 1) | (q2s[iqp] == q2s[iqpp])

        # ln-x cubic at the Q knots iq-1 .. iq+2: (((a t + b) t + c) t + d)
        base = ix * nq
        rows = torch.stack([base + iqm, base + iq, base + iqp, base + iqpp], dim=1).reshape(-1)
        c = tab.coeff.index_select(0, rows).view(m, 4, 4, k)
        t = tlogx.view(m, 1, 1)
        v = torch.addcmul(c[:, :, 1], c[:, :, 0], t)
        v = torch.addcmul(c[:, :, 2], v, t)
        v = torch.addcmul(c[:, :, 3], v, t)  # [m, 4, K]
        vll, vl, vh, vhh = v.unbind(1)

        # ln-Q² slopes (times the interval), then the Hermite cubic in t = tlogq
        diff = vh - vl
        r1 = dlogq_1.view(m, 1)
        vdl_c = (diff + (vl - vll) * r1 * dlogq_0.view(m, 1)) * 0.5
        vdh_c = (diff + (vhh - vh) * r1 * dlogq_2.view(m, 1)) * 0.5
        low = q2_lower.view(m, 1)
        vdl = torch.where(low, diff, vdl_c)
        vdh = torch.where(q2_upper.view(m, 1) & ~low, diff, vdh_c)
        t = tlogq.view(m, 1)
        t2 = t * t
        t3 = t * t2
        res = (2 * t3 - 3 * t2 + 1) * vl + (t3 - 2 * t2 + t) * vdl + (-2 * t3 + 3 * t2) * vh + (t3 - t2) * vdh

        if self._has_fallback:
            fb = q2_lower & q2_upper
            if bool(fb.any()):
                res[fb] = self._bilinear(logx[fb], logq2[fb], ix[fb], iq[fb], logxs, logq2s, tab)
        return res

    @staticmethod
    def _bilinear(logx, logq2, ix, iq, logxs, logq2s, tab: _Tables) -> Tensor:
        """LHAPDF's linear fallback (``_interpolateFallback``) for two-knot subgrids."""
        v = tab.values
        x0, x1 = logxs[ix].unsqueeze(1), logxs[ix + 1].unsqueeze(1)
        lx = logx.unsqueeze(1)

        def lin(z, zl, zh, yl, yh):
            return yl + (z - zl) / (zh - zl) * (yh - yl)

        f_ql = lin(lx, x0, x1, v[ix, iq], v[ix + 1, iq])
        f_qh = lin(lx, x0, x1, v[ix, iq + 1], v[ix + 1, iq + 1])
        return lin(logq2.unsqueeze(1), logq2s[iq].unsqueeze(1), logq2s[iq + 1].unsqueeze(1), f_ql, f_qh)

    # -- the extrapolator ---------------------------------------------------------------------------------
    @staticmethod
    def _extrapolate_linear(lz: Tensor, lzl: float, lzh: float, yl: Tensor, yh: Tensor) -> Tensor:
        """``ContinuationExtrapolator::_extrapolateLinear`` in log(z); log(y) too when both y > 1e-3."""
        frac = ((lz - lzl) / (lzh - lzl)).unsqueeze(1)
        pos = (yl > 1e-3) & (yh > 1e-3)
        tiny = 1e-300
        lyl, lyh = torch.log(yl.clamp(min=tiny)), torch.log(yh.clamp(min=tiny))
        return torch.where(pos, torch.exp(lyl + frac * (lyh - lyl)), yl + frac * (yh - yl))

    def _continuation(self, x: Tensor, q2: Tensor, tab: _Tables) -> Tensor:
        """Points outside the grid (x <= x_max) → [m, K], following ContinuationExtrapolator case by case."""
        xs, q2s = self.x_knots, self.q2_knots
        xmin, xmin1 = float(xs[0]), float(xs[1])
        q2min, q2max1, q2max = float(q2s[0]), float(q2s[-2]), float(q2s[-1])
        m = x.shape[0]
        lowx = x < xmin
        highq = q2 > q2max
        lowq = q2 < q2min
        # anchors: x_a ∈ {x or x_min, x_2}, Q²_a ∈ {Q² clamped, second anchor}
        xa0 = torch.where(lowx, torch.full_like(x, xmin), x)
        xa1 = torch.full_like(x, xmin1)
        qa0 = q2.clamp(min=q2min, max=q2max)
        qa1 = torch.where(highq, torch.full_like(q2, q2max1), torch.where(lowq, torch.full_like(q2, 1.01 * q2min), q2))
        pts_x = torch.cat([xa0, xa1, xa0, xa1])
        pts_q = torch.cat([qa0, qa0, qa1, qa1])
        f = self._interpolate(pts_x, pts_q, tab).view(4, m, -1)
        i00, i10, i01, i11 = f[0], f[1], f[2], f[3]  # I(x_a, Q²_a): first index x, second Q²
        logx, logq2 = torch.log(x), torch.log(q2)
        lxmin, lxmin1 = float(np.log(xmin)), float(np.log(xmin1))
        lqmax, lqmax1 = float(np.log(q2max)), float(np.log(q2max1))

        def ex(a, b):
            return self._extrapolate_linear(logx, lxmin, lxmin1, a, b)

        def eq(a, b):
            return self._extrapolate_linear(logq2, lqmax, lqmax1, a, b)

        lx, hq = lowx.unsqueeze(1), highq.unsqueeze(1)
        out = torch.where(lx, ex(i00, i10), i00)  # x only (and in-range Q²)
        out = torch.where(hq & ~lx, eq(i00, i01), out)  # large Q² only
        out = torch.where(hq & lx, ex(eq(i00, i01), eq(i10, i11)), out)  # both: Q² first, then x
        if bool(lowq.any()):
            f0 = torch.where(lx, ex(i00, i10), i00)
            f1 = torch.where(lx, ex(i01, i11), i01)
            anom = torch.where(
                f0.abs() >= 1e-5, torch.clamp((f1 - f0) / f0 / 0.01, min=-2.5), torch.ones_like(f0)
            )
            r = (q2 / q2min).unsqueeze(1)
            low = f0 * torch.pow(r, anom * q2.unsqueeze(1) / q2min + 1.0 - r)
            out = torch.where(lowq.unsqueeze(1), low, out)
        return out

    # -- evaluation -------------------------------------------------------------------------------------
    @staticmethod
    def _prepare(x, q2) -> tuple[Tensor, Tensor, tuple[int, ...]]:
        """x, Q² as flat float64 tensors on the inputs' device, and their broadcast shape."""
        device = x.device if isinstance(x, Tensor) else q2.device if isinstance(q2, Tensor) else None
        x = torch.as_tensor(x, dtype=torch.float64, device=device)
        q2 = torch.as_tensor(q2, dtype=torch.float64, device=device)
        x, q2 = torch.broadcast_tensors(x, q2)
        return x.reshape(-1), q2.reshape(-1), tuple(x.shape)

    def _evaluate(self, x: Tensor, q2: Tensor, tab: _Tables) -> Tensor:
        """x·f for the columns of ``tab`` at flat x, q2 [n] → [n, K] (checks, extrapolation, NaN rows)."""
        finite = torch.isfinite(x) & torch.isfinite(q2)
        bad = finite & ((x < 0) | (x > 1.0 + X_ROUNDING) | (q2 < 0))
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise PDFRangeError(
                f"{self.name}: unphysical PDF argument x = {x[i].item():.17g}, Q^2 = {q2[i].item():.17g} GeV^2 "
                f"({int(bad.sum())} of {x.numel()} points; need 0 <= x <= 1, Q^2 >= 0)"
            )
        safe_x = torch.where(finite, x.clamp(max=1.0), torch.full_like(x, float(self.x_knots[-1])))
        safe_q2 = torch.where(finite, q2, torch.full_like(q2, float(self.q2_knots[-1])))
        xmin, xmax = float(self.x_knots[0]), float(self.x_knots[-1])
        q2min, q2max = float(self.q2_knots[0]), float(self.q2_knots[-1])
        if self.extrapolator == "nearest":
            safe_x, safe_q2 = safe_x.clamp(xmin, xmax), safe_q2.clamp(q2min, q2max)
        inr = (safe_x >= xmin) & (safe_x <= xmax) & (safe_q2 >= q2min) & (safe_q2 <= q2max)
        if bool(inr.all()):
            out = self._interpolate(safe_x, safe_q2, tab)
        else:
            if bool((safe_x > xmax).any()):
                i = int(torch.nonzero(safe_x > xmax)[0, 0])
                raise PDFRangeError(f"{self.name}: x = {x[i].item():.17g} above the last x knot {xmax:g}")
            if self.extrapolator == "error":
                i = int(torch.nonzero(~inr)[0, 0])
                raise PDFRangeError(
                    f"{self.name}: point x = {x[i].item():g}, Q^2 = {q2[i].item():g} GeV^2 outside the grid "
                    "and the set's Extrapolator is 'error'"
                )
            # interpolate everywhere at points clamped into the grid, then overwrite the outside ones
            out = self._interpolate(safe_x.clamp(xmin, xmax), safe_q2.clamp(q2min, q2max), tab)
            out[~inr] = self._continuation(safe_x[~inr], safe_q2[~inr], tab)
        present = tab.present.view(1, -1)
        if self.force_positive == 1:
            out = out.clamp(min=0.0)
        elif self.force_positive == 2:
            out = out.clamp(min=1e-10)
        out = torch.where(present, out, torch.zeros_like(out))
        return torch.where(finite.view(-1, 1), out, torch.full_like(out, float("nan")))

    def xfxQ2_all(self, x: Tensor | float, q2: Tensor | float) -> Tensor:  # noqa: N802
        """x·f(x, Q²) for pids -6..6 (column pid + 6, gluon at 6): shape ``broadcast(x, q2).shape + (13,)``."""
        x, q2, shape = self._prepare(x, q2)
        tab = self._tables(tuple(range(len(STANDARD_PIDS))), x.device)
        return self._evaluate(x, q2, tab).view(*shape, len(STANDARD_PIDS))

    def xfxQ2(self, pid: int | Tensor, x: Tensor | float, q2: Tensor | float) -> Tensor:  # noqa: N802
        """x·f(x, Q²) for PDG id ``pid`` (an int, or an int tensor broadcast with x and Q²); unknown pids → 0."""
        if isinstance(pid, Tensor) and pid.dim() > 0:
            x, q2, shape = self._prepare(x, q2)
            pid_b, x_b, q2_b = torch.broadcast_tensors(pid.to(x.device), x.view(shape), q2.view(shape))
            shape = tuple(x_b.shape)
            pid_f, x, q2 = pid_b.reshape(-1).long(), x_b.reshape(-1), q2_b.reshape(-1)
            allv = self._evaluate(x, q2, self._tables(tuple(range(len(self._columns))), x.device))
            lo = min(self._col_of)
            lut = torch.full((max(self._col_of) - lo + 1,), -1, dtype=torch.long)
            for p, c in self._col_of.items():
                lut[p - lo] = c
            lut = lut.to(x.device)
            rel = pid_f - lo
            ok = (rel >= 0) & (rel < lut.shape[0])
            col = torch.where(ok, lut[rel.clamp(0, lut.shape[0] - 1)], torch.full_like(rel, -1))
            val = allv.gather(1, col.clamp(min=0).unsqueeze(1)).squeeze(1)
            return torch.where(col >= 0, val, torch.zeros_like(val)).view(shape)
        p = int(pid)
        x, q2, shape = self._prepare(x, q2)
        if p not in self._col_of:
            return torch.zeros(shape, dtype=torch.float64, device=x.device)
        tab = self._tables((self._col_of[p],), x.device)
        return self._evaluate(x, q2, tab).view(shape)

    def xfxQ(self, pid: int | Tensor, x: Tensor | float, q: Tensor | float) -> Tensor:  # noqa: N802
        """x·f(x, Q) with the scale Q in GeV."""
        q = torch.as_tensor(q, dtype=torch.float64, device=q.device if isinstance(q, Tensor) else None)
        return self.xfxQ2(pid, x, q * q)

    def alphasQ2(self, q2: Tensor | float) -> Tensor:  # noqa: N802
        """The set's α_s at Q² (GeV²)."""
        if self.alpha_s is None:
            raise PDFFormatError(f"{self.name}: the .info has no usable alpha_s metadata")
        return self.alpha_s(q2)

    @property
    def x_range(self) -> tuple[float, float]:
        return float(self.x_knots[0]), float(self.x_knots[-1])

    @property
    def q2_range(self) -> tuple[float, float]:
        return float(self.q2_knots[0]), float(self.q2_knots[-1])

    def __repr__(self) -> str:
        idt = f", LHAPDF ID {self.lhapdf_id}" if self.lhapdf_id is not None else ""
        return f"GridPDF('{self.name}', member {self.member}{idt})"


PDF = GridPDF


def load_pdf(name_or_id: str | int, member: int = 0) -> GridPDF:
    """Load one member of an LHAPDF6 set by name (or ``"Name/member"``) or integer LHAPDF ID."""
    set_dir, name, member = find_pdf_set(name_or_id, member)
    info_path = set_dir / f"{name}.info"
    info = _read_yaml(info_path, info_path.read_text())
    n_members = info.get("NumMembers")
    if isinstance(n_members, int) and not 0 <= member < n_members:
        raise PDFNotFoundError(f"PDF set '{name}' has members 0..{n_members - 1}, not {member} ({set_dir})")
    dat = set_dir / f"{name}_{member:04d}.dat"
    if not dat.is_file():
        raise PDFNotFoundError(f"PDF set '{name}' member {member}: file {dat} not found")
    header, blocks = read_lhagrid1(dat)
    merged = {**info, **header}
    flav = info.get("Flavors")
    norm = lambda pids: sorted(21 if int(p) == 0 else int(p) for p in pids)  # noqa: E731
    if isinstance(flav, list) and norm(flav) != norm(blocks[0].pids):
        raise PDFFormatError(f"{dat}: flavours {blocks[0].pids} differ from the .info Flavors {flav}")
    return GridPDF(name, member, merged, blocks, dat)
