"""Issue 4 interfaces: ``matrix_elements.matrix_element(process, parameters)``, the
``madnis matrix-element`` CLI (JSON and .npy input, ``%.17e`` output, ``--param``), and clear
errors for bad input (unknown particle, no tree diagrams, wrong shape, off-shell or
non-conserving momenta).

Independent checks: param_card ``aS`` enters |M|² of ``g g > t t~ g`` exactly as α_s³; ``MT``
changes the top mass the ME expects; the CLI prints the same doubles as the Python API (the
``%.17e`` text round-trips exactly).  The CLI is run in-process through ``madnis_py.cli.main``
(one subprocess run checks the real entry point).
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from channels.rambo import Rambo
from madnis_py.cli import EXIT_BAD_INPUT, EXIT_OK, main
from matrix_elements import MatrixElementError, SMParameters, UnknownParticleError, matrix_element
from matrix_elements.base import check_physical_momenta
from matrix_elements.diagrams import NoDiagramsError
from matrix_elements.process import ProcessError

ROOT = Path(__file__).resolve().parents[1]
PROC = "g g > t t~ g"
FLOAT_LINE = re.compile(r"^-?\d\.\d{17}e[+-]\d{2,3}$")


def points(masses_out, n=5, sqrt_s=1000.0, seed=3) -> torch.Tensor:
    """On-shell, momentum-conserving events with massless incoming partons along ±z."""
    rambo = Rambo(len(masses_out), list(masses_out), sqrt_s)
    u = torch.rand(n, rambo.dims_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out, _ = rambo.forward(u)
    e = sqrt_s / 2
    pin = torch.tensor([[e, 0, 0, e], [e, 0, 0, -e]], dtype=torch.float64).expand(n, 2, 4)
    return torch.cat([pin, out], dim=1).contiguous()


MT = SMParameters().MT
P_TTG = points([MT, MT, 0.0])


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = main(["matrix-element", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ---- Python interface --------------------------------------------------------------------------------
def test_python_api_shape_and_param_card_names():
    me = matrix_element(PROC)
    v = me(P_TTG)
    assert v.shape == (5,) and v.dtype == torch.float64 and bool((v > 0).all())
    assert me.pdgs == (21, 21, 6, -6, 21) and me.n_external == 5
    # aS is the param_card name; |M|²(g g > t t~ g) ∝ g_s⁶ = (4π α_s)³ exactly
    v2 = matrix_element(PROC, {"aS": 0.2})(P_TTG)
    assert torch.allclose(v2, v * (0.2 / SMParameters().aS) ** 3, rtol=1e-12, atol=0)
    # MT is the param_card name: the ME's masses follow it
    assert matrix_element(PROC, {"MT": 175.0}).masses[2:4] == (175.0, 175.0)
    # the same ME from an SMParameters
    assert torch.equal(matrix_element(PROC, SMParameters())(P_TTG), v)


def test_python_api_coupling_orders_in_process_string():
    p = points([0.0, 0.0], n=4)
    assert matrix_element("u u~ > d d~").n_diagrams == 1  # default: lowest QED order, pure QCD
    assert matrix_element("u u~ > d d~ QED<=2").n_diagrams == 4  # + γ, Z (s) and W (t)
    full = matrix_element("u u~ > d d~ QED<=2")(p)
    qcd = matrix_element("u u~ > d d~")(p)
    ew = matrix_element("u u~ > d d~ QCD=0")(p)
    interference = matrix_element("u u~ > d d~ QED<=2 QED^2==2")(p)
    assert torch.allclose(interference, full - qcd - ew, rtol=1e-9, atol=1e-12 * float(full.max()))
    assert bool((interference.abs() > 1e-6 * full).all())  # W(t) × g(s) interferes ...
    # ... but with no t-channel W (CKM = 1), γ/Z(s) × g(s) vanishes by colour: Tr T^a = 0
    zero = matrix_element("u u~ > c c~ QED<=2 QED^2==2")(p)
    full_c = matrix_element("u u~ > c c~ QED<=2")(p)
    assert bool((zero.abs() <= 1e-14 * full_c).all())


def test_python_api_bad_input_is_one_clear_error():
    with pytest.raises((UnknownParticleError, ProcessError), match="zz"):
        matrix_element("e+ e- > zz")
    with pytest.raises(NoDiagramsError, match="no tree-level diagrams"):
        matrix_element("e+ e- > g")
    with pytest.raises(NoDiagramsError, match="no tree-level diagrams"):
        matrix_element("g g > e+ e-")
    with pytest.raises(ProcessError, match="multiparticle"):
        matrix_element("p p > t t~")
    me = matrix_element(PROC)
    with pytest.raises(MatrixElementError, match=r"shape \(n, 5, 4\)"):
        me(P_TTG[:, :4])
    with pytest.raises(MatrixElementError, match="shape"):
        me(P_TTG[0])
    with pytest.raises(MatrixElementError, match="float64"):
        me(P_TTG.float())


def test_unphysical_momenta_documented_behaviour():
    """|M|² does not validate kinematics (hot path; documented tolerance: smooth in the
    off-shellness); :func:`check_physical_momenta`, which the CLI applies, rejects with one line."""
    me = matrix_element(PROC)
    masses = me.masses
    check_physical_momenta(P_TTG, masses)  # physical points pass
    bad = P_TTG.clone()
    bad[:, 4, 1] += 1.0  # breaks momentum conservation (and the gluon's mass shell)
    with pytest.raises(MatrixElementError, match="event 0: momentum not conserved"):
        check_physical_momenta(bad, masses)
    off = P_TTG.clone()
    off[:, 2, 0] = torch.sqrt(off[:, 2, 0] ** 2 + 100.0)  # top off shell, energy not conserved
    off[:, 3, 0] -= off[:, 2, 0] - P_TTG[:, 2, 0]  # restore energy conservation
    with pytest.raises(MatrixElementError, match="particle 3: off shell"):
        check_physical_momenta(off, masses)
    v = me(bad)
    assert bool(torch.isfinite(v).all())  # evaluated as given, no NaN


# ---- CLI -------------------------------------------------------------------------------------------------
def test_cli_json_and_npy_match_python_api(tmp_path, capsys):
    ref = matrix_element(PROC)(P_TTG).tolist()
    js = tmp_path / "points.json"
    js.write_text(json.dumps(P_TTG.tolist()))
    npy = tmp_path / "points.npy"
    np.save(npy, P_TTG.numpy())
    for path in (js, npy):
        rc, out, err = run_cli(capsys, PROC, "--momenta", str(path))
        assert rc == EXIT_OK, err
        lines = out.split()
        assert len(lines) == 5 and all(FLOAT_LINE.match(s) for s in lines), out
        assert [float(s) for s in lines] == ref  # %.17e round-trips doubles exactly
    # --param: aS scales g g > t t~ g by α_s³
    rc, out, err = run_cli(capsys, PROC, "--momenta", str(npy), "--param", "aS=0.2")
    assert rc == EXIT_OK, err
    ratio = (0.2 / SMParameters().aS) ** 3
    assert [float(s) for s in out.split()] == pytest.approx([r * ratio for r in ref], rel=1e-12)


def test_cli_bad_input_one_line_exit_2(tmp_path, capsys):
    good = tmp_path / "p.json"
    good.write_text(json.dumps(P_TTG.tolist()))
    cases = []
    # unknown particle, no tree diagrams
    cases.append(((PROC.replace("g", "zz", 1), "--momenta", str(good)), "zz"))
    p3 = tmp_path / "p3.json"
    p3.write_text(json.dumps([[[500, 0, 0, 500], [500, 0, 0, -500], [1000, 0, 0, 0]]]))
    cases.append((("e+ e- > g", "--momenta", str(p3)), "no tree-level diagrams"))
    # wrong momentum shape (4 instead of 5 particles; 3 components)
    wrong = tmp_path / "w.npy"
    np.save(wrong, P_TTG[:, :4].numpy())
    cases.append(((PROC, "--momenta", str(wrong)), "shape (n, 5, 4)"))
    comp = tmp_path / "c.json"
    comp.write_text(json.dumps(P_TTG[:, :, :3].tolist()))
    cases.append(((PROC, "--momenta", str(comp)), "shape"))
    # not momentum conserving; off shell (top with the wrong mass)
    nc = P_TTG.clone()
    nc[:, 4, 1] += 1.0
    f_nc = tmp_path / "nc.json"
    f_nc.write_text(json.dumps(nc.tolist()))
    cases.append(((PROC, "--momenta", str(f_nc)), "momentum not conserved"))
    off = points([150.0, 150.0, 0.0])
    f_off = tmp_path / "off.npy"
    np.save(f_off, off.numpy())
    cases.append(((PROC, "--momenta", str(f_off)), "off shell"))
    # ... which is fine with the matching MT
    rc, out, err = run_cli(capsys, PROC, "--momenta", str(f_off), "--param", "MT=150", "--param", "WT=0")
    assert rc == EXIT_OK and len(out.split()) == 5, err
    for args, msg in cases:
        rc, out, err = run_cli(capsys, *args)
        assert rc == EXIT_BAD_INPUT and out == "", (args, out, err)
        assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)


def test_cli_entry_point_subprocess(tmp_path):
    """The real command (``python -m madnis_py.cli``): stdout is one %.17e line per event."""
    npy = tmp_path / "points.npy"
    np.save(npy, P_TTG[:2].numpy())
    out = subprocess.run([sys.executable, "-m", "madnis_py.cli", "matrix-element", PROC, "--momenta", str(npy)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert [float(s) for s in out.stdout.split()] == matrix_element(PROC)(P_TTG[:2]).tolist()
    assert math.isfinite(float(out.stdout.split()[0]))
