"""Process parsing, multiparticle expansion and MadGraph-style subprocess grouping."""
import pytest

from matrix_elements.process import (
    ProcessError,
    check_process,
    expand,
    group_subprocesses,
    parse_process,
)


def names(text):
    return sorted(s.name for s in expand(parse_process(text)))


def test_pp_ttbar_subprocesses_and_groups():
    subs = expand(parse_process("p p > t t~"))
    # g g, and q q~ / q~ q for u c d s: 1 + 2*4 = 9
    assert len(subs) == 9
    groups = group_subprocesses(subs)
    assert [g.name for g in groups] == ["g g > t t~", "u u~ > t t~", "d d~ > t t~"]
    members = {m.subprocess.name: m.mirror for m in groups[1].members}
    assert members == {"u u~ > t t~": False, "c c~ > t t~": False, "u~ u > t t~": True, "c~ c > t t~": True}
    # every subprocess lands in exactly one group
    assert sum(len(g.members) for g in groups) == len(subs)


def test_drell_yan_and_w_expansion():
    assert len(expand(parse_process("p p > e+ e-"))) == 9  # g g survives conservation checks; no diagrams later
    w = names("p p > e+ ve")
    assert w == sorted(["u d~ > e+ ve", "c s~ > e+ ve", "d~ u > e+ ve", "s~ c > e+ ve"])
    assert names("p p > l+ vl") == sorted(
        [f"{a} > {l} {v}" for a in ("u d~", "c s~", "d~ u", "s~ c") for l, v in (("e+", "ve"), ("mu+", "vm"))]
    )


def test_identical_multiparticle_labels_are_unordered():
    subs = names("p p > j j")
    assert "g g > g g" in subs and "g g > u u~" in subs
    assert "g g > u~ u" not in subs  # one ordering of the same final-state combination
    assert len(subs) == len(set(subs))


def test_coupling_orders_parsed():
    d = parse_process("p p > e+ e- j QED<=2 QCD=1")
    assert d.orders == {"QED": ("<=", 2), "QCD": ("==", 1)}
    assert parse_process("u u~ > d d~ QED^2<=4").orders == {"QED^2": ("<=", 4)}


@pytest.mark.parametrize(
    "text, message",
    [
        ("e+ e- > g", "colour"),
        ("u u > e+ e-", "charge"),
        ("e+ e- > mu+ e-", "lepton-family"),
        ("u u~ > c u~", "generation"),
        ("p p > zz", "unknown particle 'zz'"),
        ("p p t t~", "'>'"),
        ("p > t t~", "two incoming"),
        ("p p > t t~ QXD=2", "coupling order"),
        ("p p > t t~, t > b e+ ve", "decay-chain"),
    ],
)
def test_bad_processes_give_one_clear_error(text, message):
    with pytest.raises(ProcessError, match=message):
        check_process(parse_process(text))
