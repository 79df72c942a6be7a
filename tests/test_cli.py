"""The `madnis` command line: JSON contract, exit codes, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def madnis(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "madnis_py.cli", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )


def write(tmp_path, text, name="card.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


EE = """process: e+ e- > mu+ mu-
collider: {beams: [e+, e-], sqrt_s: 500}
integrator: {method: vegas, calls: 20000}
seed: 4
"""


def test_integrate_json_is_exactly_one_object(tmp_path):
    out = madnis("integrate", write(tmp_path, EE), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # the whole stdout parses as one JSON object
    for key in ("process", "cross_section_pb", "error_pb", "n_calls", "method", "seed", "subprocesses",
                "wall_time_s", "cuts"):
        assert key in result
    assert result["method"] == "vegas" and result["seed"] == 4 and result["cuts"] == {}
    assert result["subprocesses"][0]["name"] == "e+ e- > mu+ mu-"
    assert "cuts in effect" in out.stderr  # progress and run information go to stderr


def test_same_seed_same_result(tmp_path):
    card = write(tmp_path, EE)
    a = json.loads(madnis("integrate", card, "--json", "--quiet").stdout)
    b = json.loads(madnis("integrate", card, "--json", "--quiet").stdout)
    c = json.loads(madnis("integrate", card, "--json", "--quiet", "--seed", "5").stdout)
    assert a["cross_section_pb"] == b["cross_section_pb"]
    assert a["cross_section_pb"] != c["cross_section_pb"]


@pytest.mark.parametrize(
    "card, message",
    [
        ("process: e+ e- > mu+ mu-\ncollider: {beams: [e+, e-], sqrt_s: 500}\nintegrator: {method: vegas, calls: 20000}\ncutz: {}\n",
         "did you mean 'cuts'"),
        ("process: e+ e- > mu+ zz\ncollider: {beams: [e+, e-], sqrt_s: 500}\n", "unknown particle 'zz'"),
        ("process: e+ e- > mu+ e-\ncollider: {beams: [e+, e-], sqrt_s: 500}\n", "lepton-family"),
        ("process: e+ e- > t t~\ncollider: {beams: [e+, e-], sqrt_s: 300}\n", "below the threshold"),
        ("process: e+ e- > mu+ mu-\ncollider: {beams: [e+, e-], sqrt_s: 500}\nparameters: {MTT: 1}\n", "did you mean 'MT'"),
        ("process: e+ e- > u u~\ncollider: {beams: [e+, e-], sqrt_s: 500}\ncuts: {ptj: 300}\n"
         "integrator: {method: vegas, calls: 5000}\n", "remove all phase space"),
        ("process: [unclosed\n", "not valid YAML"),
        ("process: p p > t t~\ncollider: {beams: [p, p], sqrt_s: 13000}\npdf: NoSuchSet_lo\n", "NoSuchSet_lo"),
        ("process: p p > j j\ncollider: {beams: [p, p], sqrt_s: 13000}\n", "diverges"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, card, message):
    out = madnis("integrate", write(tmp_path, card), "--json")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    lines = [l for l in out.stderr.splitlines() if l.startswith("madnis:")]
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_missing_card_file():
    out = madnis("integrate", "/nonexistent/card.yaml")
    assert out.returncode == 2 and "not found" in out.stderr


def test_matrix_element_cli_matches_madgraph_reference(tmp_path):
    ref = json.loads((ROOT.parent / "shared/reference/madgraph_me/epem_mupmum.json").read_text()) \
        if (ROOT.parent / "shared/reference/madgraph_me/epem_mupmum.json").exists() else None
    if ref is None:
        pytest.skip("shared/reference not beside the checkout")
    points = [p["momenta"] for p in ref["points"][:20]]
    path = write(tmp_path, json.dumps(points), "points.json")
    out = madnis("matrix-element", "e+ e- > mu+ mu-", "--momenta", path)
    assert out.returncode == 0, out.stderr
    values = [float(v) for v in out.stdout.split()]
    assert len(values) == 20
    for v, p in zip(values, ref["points"][:20]):
        assert v == pytest.approx(p["me"], rel=1e-12)
    assert all("e" in line and len(line.split("e")[0]) >= 19 for line in out.stdout.split())  # %.17e


def test_matrix_element_cli_rejects_unphysical_momenta(tmp_path):
    bad = [[[250, 0, 0, 250], [250, 0, 0, -250], [250, 10, 0, 249], [240, -10, 0, -249]]]
    out = madnis("matrix-element", "e+ e- > mu+ mu-", "--momenta", write(tmp_path, json.dumps(bad), "p.json"))
    assert out.returncode == 2 and "momentum not conserved" in out.stderr
    out = madnis("matrix-element", "e+ e- > mu+ mu-", "--momenta", write(tmp_path, "[[1,2,3]]", "q.json"))
    assert out.returncode == 2 and "shape" in out.stderr
