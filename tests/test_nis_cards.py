"""``integrator: {method: madnis}`` in process cards: the NIS Integrator on the diagram channels."""
from __future__ import annotations

import math

import pytest

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


def test_unknown_method_suggests_madnis() -> None:
    with pytest.raises(CardError, match="did you mean 'madnis'"):
        parse_card(_card("madnys", 12_000))
