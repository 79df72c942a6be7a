"""LHAPDF6 grid reader: knots, an independent scalar transliteration of LHAPDF's algorithm, parton, sum rules.

References used here, none of them the code under test:
* the raw numbers of the .dat file (parsed again below);
* ``LHAPDFScalar``: a per-point, pure-Python transliteration of LHAPDF 6.2's LogBicubicInterpolator
  (Hermite form with ``_ddlogx``, separate subgrids) and ContinuationExtrapolator — a different code
  path (scalar, per-subgrid, no precomputed coefficients) from the vectorised torch implementation;
* the PyPI package ``parton`` (scipy RectBivariateSpline in ln x, ln Q²): a *different* interpolant.
  It agrees at the knots exactly, and between knots only to the size of the interpolation error
  (measured: median 4e-5, p99 ~4e-4 in smooth regions; up to 1e-2 at the charm-threshold kink,
  at x ~ 1e-7 where this grid has a kink, near x = 0.1 where the knot spacing changes from
  logarithmic to linear, and at large x where xf -> 0). Those regions are checked against the
  scalar LHAPDF transliteration instead.
"""
from __future__ import annotations

import bisect
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from madnis_py.pdf import (
    PACKAGE_PDF_DIR,
    PDFNotFoundError,
    PDFRangeError,
    load_pdf,
    pdf_search_path,
)

SET = "NNPDF23_lo_as_0130_qed"
DAT = PACKAGE_PDF_DIR / SET / f"{SET}_0000.dat"
STD = [-6, -5, -4, -3, -2, -1, 21, 1, 2, 3, 4, 5, 6]


class LHAPDFScalar:
    """Scalar LHAPDF 6.2 semantics: subgrid = last block with first Q² <= Q²; Hermite in ln x, ln Q²."""

    def __init__(self, path: Path):
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        seps = [i for i, ln in enumerate(lines) if ln == "---"]
        self.blocks = []
        for a, b in zip(seps[:-1], seps[1:]):
            body = lines[a + 1 : b]
            xs = [float(t) for t in body[0].split()]
            q2s = [float(t) ** 2 for t in body[1].split()]
            pids = [int(t) for t in body[2].split()]
            rows = [[float(t) for t in ln.split()] for ln in body[3:]]
            self.blocks.append((xs, q2s, pids, rows, [math.log(v) for v in xs], [math.log(v) for v in q2s]))
        self.pids = self.blocks[0][2]

    @staticmethod
    def _below(v, knots):
        i = bisect.bisect_right(knots, v)
        return (i - 1 if i < len(knots) else len(knots) - 2)

    @staticmethod
    def _cubic(t, vl, vdl, vh, vdh):
        t2 = t * t
        t3 = t2 * t
        return (2 * t3 - 3 * t2 + 1) * vl + (t3 - 2 * t2 + t) * vdl + (-2 * t3 + 3 * t2) * vh + (t3 - t2) * vdh

    def interpolate(self, pid, x, q2):
        blk = self.blocks[0]
        for cand in self.blocks:
            if cand[1][0] <= q2:
                blk = cand
        xs, q2s, pids, rows, lx, lq = blk
        j = pids.index(pid)
        nq = len(q2s)
        xf = lambda ix, iq: rows[ix * nq + iq][j]  # noqa: E731

        def ddlogx(ix, iq):
            if ix == 0:
                return (xf(1, iq) - xf(0, iq)) / (lx[1] - lx[0])
            if ix == len(xs) - 1:
                return (xf(ix, iq) - xf(ix - 1, iq)) / (lx[ix] - lx[ix - 1])
            left = (xf(ix, iq) - xf(ix - 1, iq)) / (lx[ix] - lx[ix - 1])
            right = (xf(ix + 1, iq) - xf(ix, iq)) / (lx[ix + 1] - lx[ix])
            return (left + right) / 2.0

        ix, iq = self._below(x, xs), self._below(q2, q2s)
        if nq == 2:  # LHAPDF's bilinear fallback
            def lin(z, zl, zh, yl, yh):
                return yl + (z - zl) / (zh - zl) * (yh - yl)

            fl = lin(math.log(x), lx[ix], lx[ix + 1], xf(ix, 0), xf(ix + 1, 0))
            fh = lin(math.log(x), lx[ix], lx[ix + 1], xf(ix, 1), xf(ix + 1, 1))
            return lin(math.log(q2), lq[0], lq[1], fl, fh)
        dx = lx[ix + 1] - lx[ix]
        tx = (math.log(x) - lx[ix]) / dx

        def vx(k):
            return self._cubic(tx, xf(ix, k), ddlogx(ix, k) * dx, xf(ix + 1, k), ddlogx(ix + 1, k) * dx)

        dq = lq[iq + 1] - lq[iq]
        vl, vh = vx(iq), vx(iq + 1)
        if iq != 0 and iq + 1 != nq - 1:
            vdl = ((vh - vl) / dq + (vl - vx(iq - 1)) / (lq[iq] - lq[iq - 1])) / 2
            vdh = ((vh - vl) / dq + (vx(iq + 2) - vh) / (lq[iq + 2] - lq[iq + 1])) / 2
        elif iq == 0:
            vdl = (vh - vl) / dq
            vdh = (vdl + (vx(iq + 2) - vh) / (lq[iq + 2] - lq[iq + 1])) / 2
        else:
            vdh = (vh - vl) / dq
            vdl = (vdh + (vl - vx(iq - 1)) / (lq[iq] - lq[iq - 1])) / 2
        return self._cubic((math.log(q2) - lq[iq]) / dq, vl, vdl * dq, vh, vdh * dq)

    def xfxQ2(self, pid, x, q2):
        pid = 21 if pid == 0 else pid
        if pid not in self.pids:
            return 0.0
        allq2 = [q for b in self.blocks for q in b[1]]
        xs = self.blocks[0][0]
        xmin, xmin1, xmax = xs[0], xs[1], xs[-1]
        q2min, q2max1, q2max = allq2[0], allq2[-2], allq2[-1]
        ip = lambda a, b: self.interpolate(pid, a, b)  # noqa: E731

        def ext(z, zl, zh, yl, yh):
            f = (math.log(z) - math.log(zl)) / (math.log(zh) - math.log(zl))
            if yl > 1e-3 and yh > 1e-3:
                return math.exp(math.log(yl) + f * (math.log(yh) - math.log(yl)))
            return yl + f * (yh - yl)

        if xmin <= x <= xmax and q2min <= q2 <= q2max:
            return ip(x, q2)
        if x < xmin and q2min <= q2 <= q2max:
            return ext(x, xmin, xmin1, ip(xmin, q2), ip(xmin1, q2))
        if x >= xmin and q2 > q2max:
            return ext(q2, q2max, q2max1, ip(x, q2max), ip(x, q2max1))
        if x < xmin and q2 > q2max:
            a = ext(q2, q2max, q2max1, ip(xmin, q2max), ip(xmin, q2max1))
            b = ext(q2, q2max, q2max1, ip(xmin1, q2max), ip(xmin1, q2max1))
            return ext(x, xmin, xmin1, a, b)
        if x < xmin:
            f0 = ext(x, xmin, xmin1, ip(xmin, q2min), ip(xmin1, q2min))
            f1 = ext(x, xmin, xmin1, ip(xmin, 1.01 * q2min), ip(xmin1, 1.01 * q2min))
        else:
            f0, f1 = ip(x, q2min), ip(x, 1.01 * q2min)
        anom = max(-2.5, (f1 - f0) / f0 / 0.01) if abs(f0) >= 1e-5 else 1.0
        return f0 * (q2 / q2min) ** (anom * q2 / q2min + 1.0 - q2 / q2min)


@pytest.fixture(scope="module")
def pdf():
    return load_pdf(SET)


@pytest.fixture(scope="module")
def scalar_ref():
    return LHAPDFScalar(DAT)


def _compare_to_scalar(pdf_obj, ref, x, q2, pids=STD, rtol=1e-12):
    got = pdf_obj.xfxQ2_all(x, q2)
    for i in range(x.shape[0]):
        for pid in pids:
            c = STD.index(pid)
            want = ref.xfxQ2(pid, float(x[i]), float(q2[i]))
            assert got[i, c].item() == pytest.approx(want, rel=rtol, abs=1e-14), (pid, float(x[i]), float(q2[i]))


# ---- grid content ------------------------------------------------------------------------------------


def test_knots_reproduce_grid_values(pdf, scalar_ref):
    xs, q2s, pids, rows, _, _ = scalar_ref.blocks[0]
    nx, nq = len(xs), len(q2s)
    X, Q2 = torch.meshgrid(torch.tensor(xs, dtype=torch.float64), torch.tensor(q2s, dtype=torch.float64), indexing="ij")
    vals = torch.tensor(rows, dtype=torch.float64).view(nx, nq, len(pids))
    for j, pid in enumerate(pids):
        got = pdf.xfxQ2(pid, X, Q2)
        interior = got[:-1, :-1]  # t = 0 in both directions: bit-exact
        assert torch.equal(interior, vals[:-1, :-1, j]), pid
        torch.testing.assert_close(got, vals[:, :, j], rtol=1e-13, atol=1e-15)


def test_knots_agree_with_parton(pdf):
    parton = pytest.importorskip("parton")
    ref = parton.mkPDF(SET, 0, pdfdir=str(PACKAGE_PDF_DIR))
    grid = ref.pdfgrids[0]
    X, Q = np.meshgrid(grid.x[::7], grid.Q[::5], indexing="ij")
    x, q2 = X.ravel(), Q.ravel() ** 2
    got = pdf.xfxQ2_all(torch.tensor(x), torch.tensor(q2)).numpy()
    for c, pid in enumerate(STD):
        np.testing.assert_allclose(got[:, c], ref.xfxQ2(pid, x, q2, grid=False), rtol=1e-10, atol=1e-14)


# ---- interpolation and extrapolation vs LHAPDF (scalar transliteration) -------------------------------


def test_interpolation_matches_lhapdf_scalar(pdf, scalar_ref):
    g = torch.Generator().manual_seed(11)
    n = 120
    x = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1e-9))
    x[:10] = torch.linspace(0.9, 1.0, 10, dtype=torch.float64)  # large x, last x interval
    q = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1e4))
    q[10:20] = torch.linspace(1.0, 1.5, 10, dtype=torch.float64)  # first Q intervals, charm threshold
    q[20:25] = torch.linspace(8000.0, 1e4, 5, dtype=torch.float64)  # last Q interval
    _compare_to_scalar(pdf, scalar_ref, x, q * q)
    photon = pdf.xfxQ2(22, x, q * q)
    want = torch.tensor([scalar_ref.xfxQ2(22, float(a), float(b) ** 2) for a, b in zip(x, q)], dtype=torch.float64)
    torch.testing.assert_close(photon, want, rtol=1e-12, atol=1e-14)


def test_extrapolation_matches_lhapdf_continuation(pdf, scalar_ref):
    g = torch.Generator().manual_seed(12)
    n = 80
    x = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1e-13))  # half below x_min
    q = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * (math.log(1e6) - math.log(0.2)) + math.log(0.2))
    _compare_to_scalar(pdf, scalar_ref, x, q * q)
    # every case of the extrapolator at least once
    cases_x = torch.tensor([1e-11, 0.3, 1e-11, 1e-11, 0.3, 1e-3], dtype=torch.float64)
    cases_q = torch.tensor([50.0, 2e4, 2e4, 0.5, 0.5, 0.0], dtype=torch.float64)
    _compare_to_scalar(pdf, scalar_ref, cases_x, cases_q * cases_q)
    assert torch.all(pdf.xfxQ2_all(torch.tensor([1e-3]), torch.tensor([0.0])) == 0)  # f -> 0 as Q -> 0


def _write_split_set(tmp: Path, name: str, cuts: list[int], scale_upper: float) -> Path:
    """The bundled grid as len(cuts)+1 subgrids sharing the cut Q knots; blocks above a cut scaled."""
    lines = DAT.read_text().splitlines()
    xs, qs, pids = lines[3], lines[4].split(), lines[5]
    nq = len(qs)
    values = lines[6:-1]
    bounds = [0] + cuts + [nq - 1]
    out = ["PdfType: central", "Format: lhagrid1", "---"]
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        out += [xs, " ".join(qs[lo : hi + 1]), pids]
        fac = scale_upper**b
        for ix in range(len(xs.split())):
            for iq in range(lo, hi + 1):
                row = [float(v) * fac for v in values[ix * nq + iq].split()]
                out.append(" ".join(f"{v:.10e}" for v in row))
        out.append("---")
    d = tmp / name
    d.mkdir(parents=True)
    info = (PACKAGE_PDF_DIR / SET / f"{SET}.info").read_text().replace("SetIndex: 247000", "SetIndex: 990000")
    (d / f"{name}.info").write_text(info)
    (d / f"{name}_0000.dat").write_text("\n".join(out) + "\n")
    return d / f"{name}_0000.dat"


def test_multiple_subgrids_and_two_knot_fallback(tmp_path, monkeypatch):
    """Three blocks split at Q knots 20 and 48 (the last one has 2 Q knots: bilinear fallback)."""
    dat = _write_split_set(tmp_path, "SplitSet", [20, 48], scale_upper=1.05)
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    split = load_pdf("SplitSet")
    ref = LHAPDFScalar(dat)
    c1, c2 = ref.blocks[1][1][0], ref.blocks[2][1][0]  # Q² at the two subgrid boundaries
    g = torch.Generator().manual_seed(13)
    n = 60
    x = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1e-8))
    q2 = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1e8))
    # at, just below and just above the boundaries, and inside the 2-knot block
    special = [c1, c1 * (1 - 1e-9), c1 * (1 + 1e-9), c2, c2 * 0.998, c2 * 1.02, 9.5e7, 1e8]
    q2[: len(special)] = torch.tensor(special, dtype=torch.float64)
    q = q2.sqrt()
    _compare_to_scalar(split, ref, x, q * q)
    # at a boundary Q the upper block's values are used (scaled by 1.05 there)
    at = split.xfxQ2(21, 0.01, c1)
    monkeypatch.delenv("LHAPDF_DATA_PATH")
    base = load_pdf(SET, 0)
    assert at.item() == pytest.approx(1.05 * base.xfxQ2(21, 0.01, c1).item(), rel=1e-9)
    below = split.xfxQ2(21, 0.01, c1 * (1 - 1e-12))
    assert below.item() == pytest.approx(base.xfxQ2(21, 0.01, c1).item(), rel=1e-9)


def test_small_synthetic_grid_all_extrapolation_branches(tmp_path, monkeypatch):
    """Values around the 1e-3 log/linear switch, negative and tiny ones: every ContinuationExtrapolator branch."""
    rng = np.random.default_rng(17)
    xs = [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0]
    qs = [2.0, 5.0, 10.0, 50.0, 100.0]
    cols = {21: rng.uniform(2e-4, 5e-3, (7, 5)), 2: rng.uniform(-1e-3, 3e-3, (7, 5)), -2: rng.uniform(0, 2e-6, (7, 5))}
    rows = [" ".join(f"{cols[p][ix, iq]:.6e}" for p in (21, 2, -2)) for ix in range(7) for iq in range(5)]
    text = "\n".join(["PdfType: central", "Format: lhagrid1", "---", " ".join(map(str, xs)), " ".join(map(str, qs)), "21 2 -2", *rows, "---"])
    d = tmp_path / "TinySet"
    d.mkdir()
    (d / "TinySet_0000.dat").write_text(text + "\n")
    (d / "TinySet.info").write_text("SetIndex: 990100\nNumMembers: 1\nFlavors: [-2, 2, 21]\nFormat: lhagrid1\n")
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    tiny = load_pdf("TinySet")
    assert tiny.alpha_s is None  # no alpha_s metadata in this .info
    ref = LHAPDFScalar(d / "TinySet_0000.dat")
    g = torch.Generator().manual_seed(17)
    n = 150
    x = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * math.log(1e-9))
    q = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * (math.log(1e4) - math.log(0.3)) + math.log(0.3))
    _compare_to_scalar(tiny, ref, x, q * q, pids=[21, 2, -2, 1])


# ---- parton: a different interpolant, same data -------------------------------------------------------


def test_agrees_with_parton_between_knots(pdf):
    """Smooth region (x in [1e-6, 0.6] without [0.05, 0.1], Q in [2.5, 1e4] GeV, heavy quarks at Q > 2 m_Q)."""
    parton = pytest.importorskip("parton")
    ref = parton.mkPDF(SET, 0, pdfdir=str(PACKAGE_PDF_DIR))
    rng = np.random.default_rng(5)
    n = 400
    x = np.exp(rng.uniform(np.log(1e-6), np.log(0.6), n))
    x = x[(x < 0.05) | (x > 0.1)]
    q = np.exp(rng.uniform(np.log(2.5), np.log(1e4), x.size))
    got = pdf.xfxQ2_all(torch.tensor(x), torch.tensor(q * q)).numpy()
    rel = []
    for c, pid in enumerate(STD):
        want = ref.xfxQ2(pid, x, q * q, grid=False)
        thr = {4: 1.414213563, 5: 4.75, 6: 175.0}.get(abs(pid), 0.0)
        sel = (np.abs(want) > 1e-3) & (q > 2 * thr)
        rel.append(np.abs(got[sel, c] - want[sel]) / np.abs(want[sel]))
    rel = np.concatenate(rel)
    assert rel.size > 3000
    assert np.median(rel) < 1e-4
    assert np.percentile(rel, 99) < 1e-3
    assert rel.max() < 3e-3


# ---- physics -----------------------------------------------------------------------------------------


def test_sum_rules_at_100_gev(pdf):
    """∫ Σ xf dx: quarks+gluon 0.99847, +photon 1.00513 (measured; the LO QED fit is not exactly 1)."""
    lx = torch.linspace(math.log(1e-9), 0.0, 20001, dtype=torch.float64)
    x = lx.exp()
    q2 = torch.full_like(x, 100.0**2)
    f = pdf.xfxQ2_all(x, q2)
    momentum = torch.trapezoid(f.sum(1) * x, lx).item()  # ∫ xf dx = ∫ xf x dln x
    photon = torch.trapezoid(pdf.xfxQ2(22, x, q2) * x, lx).item()
    assert abs(momentum - 1.0) < 3e-3
    assert abs(momentum + photon - 1.0) < 1e-2
    u_val = torch.trapezoid(f[:, 8] - f[:, 4], lx).item()  # ∫ (u - ubar) dx = ∫ (xu - xubar) dln x
    d_val = torch.trapezoid(f[:, 7] - f[:, 5], lx).item()
    assert u_val == pytest.approx(2.0, abs=1e-2)
    assert d_val == pytest.approx(1.0, abs=1e-2)
    s_val = torch.trapezoid(f[:, 9] - f[:, 3], lx).item()
    assert abs(s_val) < 1e-3


def test_flavour_ids_and_all_flavours(pdf):
    x = torch.tensor([1e-4, 0.02, 0.3, 0.7], dtype=torch.float64)
    q2 = torch.tensor([4.0, 100.0, 1e4, 1e6], dtype=torch.float64)
    allf = pdf.xfxQ2_all(x, q2)
    assert allf.shape == (4, 13)
    for c, pid in enumerate(STD):
        torch.testing.assert_close(pdf.xfxQ2(pid, x, q2), allf[:, c], rtol=1e-14, atol=0)
    torch.testing.assert_close(pdf.xfxQ2(0, x, q2), allf[:, 6], rtol=0, atol=0)  # 0 = gluon
    assert torch.all(pdf.xfxQ2(7, x, q2) == 0) and torch.all(pdf.xfxQ2(-21, x, q2) == 0)
    pids = torch.tensor([21, 0, 22, 7], dtype=torch.long)
    got = pdf.xfxQ2(pids, x, q2)
    want = torch.stack([allf[0, 6], allf[1, 6], pdf.xfxQ2(22, x[2:3], q2[2:3])[0], torch.zeros((), dtype=torch.float64)])
    torch.testing.assert_close(got, want, rtol=1e-14, atol=0)
    # a scalar call gives a 0-d tensor; xfxQ takes Q in GeV
    assert pdf.xfxQ2(2, 0.1, 100.0).shape == ()
    assert pdf.xfxQ(2, 0.1, 10.0).item() == pytest.approx(pdf.xfxQ2(2, 0.1, 100.0).item(), rel=1e-15)
    assert pdf.flavors == [-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 21, 22]


def test_unphysical_arguments(pdf):
    with pytest.raises(PDFRangeError, match="unphysical"):
        pdf.xfxQ2_all(torch.tensor([0.1, 1.5]), torch.tensor([10.0, 10.0]))
    with pytest.raises(PDFRangeError):
        pdf.xfxQ2_all(torch.tensor([-0.1]), torch.tensor([10.0]))
    with pytest.raises(PDFRangeError):
        pdf.xfxQ2(21, torch.tensor([0.1]), torch.tensor([-1.0]))
    # kinematic rounding above 1 is x = 1; NaN rows propagate instead of failing the batch
    x = torch.tensor([1.0 + 2e-16, float("nan"), 0.1], dtype=torch.float64)
    out = pdf.xfxQ2_all(x, torch.tensor([100.0, 100.0, 100.0]))
    torch.testing.assert_close(out[0], pdf.xfxQ2_all(torch.tensor([1.0]), torch.tensor([100.0]))[0])
    assert torch.isnan(out[1]).all() and torch.isfinite(out[2]).all()


def test_device_and_dtype_kept(pdf):
    x = torch.tensor([0.01, 0.2], dtype=torch.float32)
    out = pdf.xfxQ2_all(x, 1e4)
    assert out.dtype == torch.float64 and out.device == x.device
    devices = ["cuda"] if torch.cuda.is_available() else []
    for dev in devices:
        xd = torch.tensor([1e-10, 0.01, 0.2], dtype=torch.float64, device=dev)
        q2d = torch.tensor([1e4, 0.25, 1e9], dtype=torch.float64, device=dev)
        got = pdf.xfxQ2_all(xd, q2d)
        assert got.device.type == dev
        torch.testing.assert_close(got.cpu(), pdf.xfxQ2_all(xd.cpu(), q2d.cpu()), rtol=1e-12, atol=1e-15)
        assert pdf.alpha_s(q2d).device.type == dev


# ---- finding sets ------------------------------------------------------------------------------------


def test_missing_set_error_names_every_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LHAPDF_DATA_PATH", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("LHAPATH", str(tmp_path / "c"))
    with pytest.raises(PDFNotFoundError) as err:
        load_pdf("NoSuchSet_nlo")
    msg = str(err.value)
    assert "\n" not in msg and "NoSuchSet_nlo" in msg
    for d in ("a", "b", "c"):
        assert str(tmp_path / d) in msg
    assert str(PACKAGE_PDF_DIR) in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(PDFNotFoundError, match="123456"):
        load_pdf(123456)
    with pytest.raises(PDFNotFoundError, match="members"):
        load_pdf(SET, 3)


def test_lhapdf_id_lookup(pdf):
    by_id = load_pdf(247000)
    assert by_id.name == SET and by_id.member == 0 and by_id.lhapdf_id == 247000
    assert load_pdf("247000").name == SET
    assert load_pdf(f"{SET}/0").member == 0
    x, q2 = torch.tensor([0.05]), torch.tensor([50.0])
    torch.testing.assert_close(by_id.xfxQ2_all(x, q2), pdf.xfxQ2_all(x, q2), rtol=0, atol=0)


def test_lhapdf_data_path_is_searched_first(tmp_path, monkeypatch):
    """A same-named copy (values x2) in LHAPDF_DATA_PATH shadows the bundled set; IDs resolve there too."""
    d = tmp_path / SET
    d.mkdir()
    shutil.copy(PACKAGE_PDF_DIR / SET / f"{SET}.info", d / f"{SET}.info")
    lines = DAT.read_text().splitlines()
    doubled = lines[:6] + [" ".join(f"{2 * float(v):.8e}" for v in ln.split()) for ln in lines[6:-1]] + ["---"]
    (d / f"{SET}_0000.dat").write_text("\n".join(doubled) + "\n")
    monkeypatch.setenv("LHAPDF_DATA_PATH", str(tmp_path))
    assert pdf_search_path()[0] == tmp_path
    x, q2 = torch.tensor([0.05, 0.4]), torch.tensor([50.0, 900.0])
    base = load_pdf(SET)
    assert base.path.parent == d
    monkeypatch.delenv("LHAPDF_DATA_PATH")
    bundled = load_pdf(SET)
    assert bundled.path.parent == PACKAGE_PDF_DIR / SET
    torch.testing.assert_close(base.xfxQ2_all(x, q2), 2 * bundled.xfxQ2_all(x, q2), rtol=1e-12, atol=0)
    monkeypatch.setenv("LHAPATH", str(tmp_path))  # the older variable works too
    assert load_pdf(247000).path.parent == d


def test_set_alpha_s_attribute(pdf):
    mz2 = torch.tensor([91.1876**2], dtype=torch.float64)
    assert pdf.alpha_s(mz2).item() == pytest.approx(0.130, rel=1e-14)
    assert pdf.alphasQ2(mz2).item() == pytest.approx(0.130, rel=1e-14)
