"""Cuts follow MadGraph's definitions on hand-made momenta."""
import math

import torch

from madnis_py.cuts import Cuts


def massless(pt, eta, phi):
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return [pt * math.cosh(eta), px, py, pz]


def event(*parts):
    return torch.tensor([parts], dtype=torch.float64)


def test_pt_eta_dr_on_jets():
    pdgs = (21, 2)
    cuts = Cuts({"ptj": 20, "etaj": 2.5, "drjj": 0.4}, pdgs)
    ok = event(massless(30, 0.1, 0.0), massless(25, -1.0, 2.0))
    low_pt = event(massless(15, 0.1, 0.0), massless(25, -1.0, 2.0))
    forward = event(massless(30, 3.0, 0.0), massless(25, -1.0, 2.0))
    close = event(massless(30, 0.1, 0.0), massless(25, 0.3, 0.2))  # ΔR ≈ 0.28
    p = torch.cat([ok, low_pt, forward, close])
    assert cuts.passes(p).tolist() == [True, False, False, False]


def test_mmll_only_same_flavour_opposite_sign():
    # e+ e- mu+: the e+ e- pair has mass 90, the e+ mu+ pair is ignored by mmll
    pdgs = (-11, 11, -13)
    cuts = Cuts({"mmll": 60, "mmllmax": 120}, pdgs)
    e1 = [45.0, 45.0, 0.0, 0.0]
    e2 = [45.0, -45.0, 0.0, 0.0]
    mu = [1.0, 0.0, 0.0, 1.0]
    assert cuts.passes(event(e1, e2, mu)).tolist() == [True]
    e2_low = [10.0, -10.0, 0.0, 0.0]
    assert cuts.passes(event(e1, e2_low, mu)).tolist() == [False]


def test_dr_across_phi_boundary_and_missing_et():
    pdgs = (-11, 12)
    cuts = Cuts({"misset": 30}, pdgs)
    assert cuts.passes(event(massless(40, 0, 0), massless(40, 0, math.pi))).tolist() == [True]
    assert cuts.passes(event(massless(40, 0, 0), massless(20, 0, math.pi))).tolist() == [False]
    jets = Cuts({"drjj": 0.4}, (21, 21))
    # φ = ±(π - 0.1): Δφ = 0.2 across the boundary, so ΔR = 0.2 < 0.4
    assert jets.passes(event(massless(30, 0, math.pi - 0.1), massless(30, 0, -math.pi + 0.1))).tolist() == [False]


def test_no_cuts_passes_everything():
    p = torch.rand(5, 2, 4, dtype=torch.float64)
    assert Cuts({}, (21, 21)).passes(p).all()
