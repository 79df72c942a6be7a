"""``integrator: {method: madnis}`` in process cards: the NIS Integrator on the diagram channels."""
from __future__ import annotations

import math

import pytest
import torch

from madnis_py.card import parse_card
from madnis_py.errors import CardError
from madnis_py.run import integrate_card


def _card(method: str, calls: int, seed: int = 5) -> dict:
    return {"process": "e+ e- > u u~ g", "collider": {"beams": ["e+", "e-"], "sqrt_s": 500},
            "cuts": {"ptj": 20, "drjj": 0.4}, "integrator": {"method": method, "calls": calls}, "seed": seed}


def test_madnis_card_agrees_with_multichannel_vegas() -> None:
    nis = integrate_card(parse_card(_card("madnis", 12_000)), quiet=True)
    ref = integrate_card(parse_card(_card("vegas-multichannel", 40_000, seed=6)), quiet=True)
    assert nis["method"] == "madnis" and nis["n_channels"] == ref["n_channels"] == 2
    diff = abs(nis["cross_section_pb"] - ref["cross_section_pb"])
    assert diff < 4 * math.hypot(nis["error_pb"], ref["error_pb"]), (nis["cross_section_pb"], ref["cross_section_pb"])
    assert nis["relative_error"] < 0.03
    # budget: n_calls counts everything, training included; training_calls is its training part
    assert 0 < nis["training_calls"] < nis["n_calls"] <= 12_000
    assert "training_calls" not in ref
    eff = nis["unweighting_efficiency"]
    assert 0 < eff["strict"] <= eff["partial"] <= 1
    assert 0.3 < nis["cut_efficiency"] < 1
    (group,) = nis["subprocesses"]
    assert group["cross_section_pb"] == pytest.approx(nis["cross_section_pb"], rel=1e-12)
    for key in ref:
        assert key in nis  # the same JSON keys as the VEGAS methods


HADRONIC = {
    # Drell-Yan: gamma/Z Breit-Wigner channels, u u~ / d d~ / ... groups, both beam orientations (mirror blocks)
    "pp_ee": {"process": "p p > e+ e-", "collider": {"beams": ["p", "p"], "sqrt_s": 13000}, "cuts": {"mmll": 60}},
    # top pairs: g g (s, t, u channels) and q q~ groups with PDFs and running alpha_s
    "pp_tt": {"process": "p p > t t~", "collider": {"beams": ["p", "p"], "sqrt_s": 13000}},
}


@pytest.mark.parametrize("name", list(HADRONIC))
def test_madnis_card_agrees_with_multichannel_vegas_on_hadronic_processes(name) -> None:
    """method: madnis (flows trained on the unfolded channels) vs vegas-multichannel, |Δ| < 4 combined σ."""
    base = HADRONIC[name]
    nis = integrate_card(parse_card({**base, "integrator": {"method": "madnis", "calls": 16_000}, "seed": 3}),
                         quiet=True)
    ref = integrate_card(parse_card({**base, "integrator": {"method": "vegas-multichannel", "calls": 40_000},
                                     "seed": 4}), quiet=True)
    assert nis["n_channels"] > 2 and len(nis["subprocesses"]) > 1
    diff = abs(nis["cross_section_pb"] - ref["cross_section_pb"])
    assert diff < 4 * math.hypot(nis["error_pb"], ref["error_pb"]), (nis["cross_section_pb"], nis["error_pb"],
                                                                    ref["cross_section_pb"], ref["error_pb"])
    assert nis["relative_error"] < 0.02 and nis["n_calls"] <= 16_000
    assert sum(g["cross_section_pb"] for g in nis["subprocesses"]) == pytest.approx(nis["cross_section_pb"], rel=1e-9)


def test_unknown_method_suggests_madnis() -> None:
    with pytest.raises(CardError, match="did you mean 'madnis'"):
        parse_card(_card("madnys", 12_000))


def test_checkpoint_trains_once_then_is_reused(tmp_path) -> None:
    """integrator.checkpoint: the first run trains and saves; the second loads it, spends all calls on integration."""
    path = tmp_path / "ckpt" / "ee_uuxg.pt"
    card = _card("madnis", 12_000)
    card["integrator"]["checkpoint"] = str(path)
    first = integrate_card(parse_card(card), quiet=True)
    assert path.exists() and first["training_calls"] > 0
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    second = integrate_card(parse_card(card), quiet=True)
    assert second["training_calls"] == 0
    assert 12_000 <= second["n_calls"] <= 12_000 + 2 * second["n_channels"]
    diff = abs(first["cross_section_pb"] - second["cross_section_pb"])
    assert diff < 4 * math.hypot(first["error_pb"], second["error_pb"])
    # the loaded integrator is the trained one: all calls integrate, so the error is not larger than the first's
    assert second["error_pb"] < 1.2 * first["error_pb"]


def test_checkpoint_of_another_process_is_one_clear_error(tmp_path) -> None:
    from madnis_py.errors import InputError

    path = tmp_path / "other.pt"
    card = _card("madnis", 12_000)
    card["integrator"]["checkpoint"] = str(path)
    integrate_card(parse_card(card), quiet=True)
    other = dict(card, process="e+ e- > u u~ g g")
    with pytest.raises(InputError, match="was trained for .* channels"):
        integrate_card(parse_card(other), quiet=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read the checkpoint"):
        integrate_card(parse_card(card), quiet=True)


def test_checkpoint_needs_method_madnis() -> None:
    card = _card("vegas-multichannel", 12_000)
    card["integrator"]["checkpoint"] = "run.pt"
    with pytest.raises(CardError, match="needs 'method: madnis'"):
        parse_card(card)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("base", [_card("madnis", 12_000), {**HADRONIC["pp_tt"], "integrator": {"method": "madnis",
                                                                                                "calls": 16_000}}])
def test_madnis_card_on_cuda_agrees_with_multichannel_vegas_on_cpu(base) -> None:
    """``device: cuda``: |M|², PDFs, channels, flows and training on the GPU give the CPU's σ within 4 combined σ."""
    gpu = integrate_card(parse_card({**base, "device": "cuda", "seed": 7}), quiet=True)
    ref = integrate_card(parse_card({**base, "integrator": {"method": "vegas-multichannel", "calls": 40_000},
                                     "seed": 8}), quiet=True)
    diff = abs(gpu["cross_section_pb"] - ref["cross_section_pb"])
    assert diff < 4 * math.hypot(gpu["error_pb"], ref["error_pb"]), (gpu["cross_section_pb"], ref["cross_section_pb"])
    assert gpu["n_calls"] <= base["integrator"]["calls"] and gpu["relative_error"] < 0.03
