"""MadGraph's default coupling orders for multiprocesses: WEIGHTED = QCD + 2·QED.

``EngineMatrixElement.weighted_order`` is the WEIGHTED order of a subprocess's lowest-order
diagrams; without explicit orders, :func:`madnis_py.run.prepare` keeps only the subprocesses at
the multiprocess minimum, as MadGraph does (``p p > j j`` loses the purely electroweak
``u s > c d``-type subprocesses; MadGraph's ``p p > j j`` has no such P-directory either).
Expected orders are counted by hand from the Feynman rules (each QCD/QED vertex one power of
g_s/e, four-point vertices two).
"""
from __future__ import annotations

import pytest

from madnis_py.card import parse_card
from madnis_py.run import prepare
from matrix_elements import matrix_element
from matrix_elements.engine import build_matrix_element
from matrix_elements.model import SMParameters

PARAMS = SMParameters()


@pytest.mark.parametrize("process,weighted", [
    ("e+ e- > mu+ mu-", 4),            # e²
    ("g g > t t~", 2),                 # g_s²
    ("g g > t t~ g", 3),
    ("g g > g g", 2),                  # the 4-gluon vertex counts QCD = 2
    ("u u~ > d d~", 2),                # default: pure QCD
    ("u s > c d", 4),                  # lowest order is t-channel W exchange
    ("u u~ > d d~ QED<=2", 2),         # γ/Z/W diagrams added; the lowest kept is still QCD
    ("u u~ > d d~ QCD=0", 4),
    ("e+ e- > u u~ g", 5),             # e² g_s
    ("u g > e+ ve d g g", 7),          # e² g_s³
    ("g g > t t~ h", 4),               # g_s² y_t (Yukawa counts QED = 1)
])
def test_weighted_order_of_lowest_diagrams(process, weighted):
    assert matrix_element(process).weighted_order == weighted


def test_weighted_order_is_the_minimum_over_diagrams():
    me = build_matrix_element((2, -2, 1, -1), PARAMS, {"QED": ("<=", 2)})
    orders = me._ds.diagram_orders
    assert sorted(set(orders)) == [(0, 2), (2, 0)]
    assert me.weighted_order == min(q + 2 * e for q, e in orders) == 2


def _prepare(process: str, cuts: dict):
    card = parse_card({"process": process, "collider": {"beams": ["p", "p"], "sqrt_s": 13000}, "cuts": cuts})
    run = prepare(card, quiet=True)
    kept = {t.group.name: t.me.weighted_order for i in run.integrands for t in i.terms}
    return kept, dict(run.dropped)


def test_pp_jj_keeps_only_qcd_subprocesses():
    kept, dropped = _prepare("p p > j j", {"ptj": 20})
    ew_only = {"u s > c d", "u c~ > d s~", "u d~ > c s~", "d u~ > s c~", "d s~ > u c~", "u~ s~ > c~ d~"}
    assert set(dropped) == ew_only
    assert all("WEIGHTED order 4 above the process minimum 2" in why for why in dropped.values())
    assert len(kept) == 35 and set(kept.values()) == {2}
    assert {"g g > g g", "u u~ > d d~", "u d > u d", "u s > u s", "u u > u u"} <= set(kept)
    # explicit coupling orders switch the multiprocess rule off (MadGraph: orders are as given)
    kept_qed, dropped_qed = _prepare("p p > j j QED<=2", {"ptj": 20})
    assert ew_only <= set(kept_qed) and not dropped_qed


def test_pp_ee_unaffected():
    kept, dropped = _prepare("p p > e+ e-", {"mmll": 50})
    assert kept == {"u u~ > e+ e-": 4, "d d~ > e+ e-": 4}
    assert list(dropped) == ["g g > e+ e-"] and "no tree-level diagrams" in dropped["g g > e+ e-"]
