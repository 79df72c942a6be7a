"""Engine API: per-diagram amplitudes², topologies, colour flows, coupling orders, α_s pieces,
decays, and clear errors for bad input."""

import pytest
import torch

from channels.rambo import Rambo
from matrix_elements.base import MatrixElementError
from matrix_elements.diagrams import NoDiagramsError
from matrix_elements.engine import build_matrix_element
from matrix_elements.model import SMParameters
from matrix_elements.particles import UnknownParticleError

PARAMS = SMParameters()


def momenta(pdgs, sqrt_s=1000.0, n=5, seed=1):
    masses = [PARAMS.mass(p) for p in pdgs]
    rambo = Rambo(len(pdgs) - 2, masses[2:], sqrt_s)
    out, _ = rambo.forward(torch.rand(n, rambo.dims_in, generator=torch.Generator().manual_seed(seed),
                                      dtype=torch.float64))
    e = sqrt_s / 2
    pin = torch.tensor([[e, 0, 0, e], [e, 0, 0, -e]], dtype=torch.float64)
    return torch.cat([pin.expand(n, 2, 4), out], dim=1).contiguous()


# ---- amplitudes² ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pdgs", [(2, -2, 6, -6), (2, -1, -11, 12), (21, 21, 21, 21)])
def test_amplitudes2_shape_and_single_diagram(pdgs):
    me = build_matrix_element(pdgs, PARAMS)
    p = momenta(pdgs)
    a2 = me.amplitudes2(p)
    assert a2.shape == (p.shape[0], me.n_diagrams)
    assert bool((a2 >= 0).all())
    full, a2b = me.evaluate_with_amplitudes2(p)
    assert torch.allclose(a2, a2b) and torch.allclose(full, me(p))
    if me.n_diagrams == 1:  # a lone diagram's square is |M|²
        assert torch.allclose(a2[:, 0], full, rtol=1e-12)


def test_amplitudes2_four_gluon_contact_diagram():
    # the contact diagram has three Lorentz/colour terms; its weight is their colour-summed square
    me = build_matrix_element((21, 21, 21, 21), PARAMS)
    p = momenta((21, 21, 21, 21))
    a2 = me.amplitudes2(p)
    contact = [i for i, d in enumerate(me.diagrams) if "(g,g,g,g)" in d]
    assert len(contact) == 1 and bool((a2[:, contact[0]] > 0).all())


def test_amplitudes2_alpha_s_scaling():
    me = build_matrix_element((21, 21, 6, -6, 21), PARAMS)
    p = momenta((21, 21, 6, -6, 21))
    a2 = me.amplitudes2(p)
    a2x = me.amplitudes2(p, alpha_s=2 * PARAMS.aS)
    assert torch.allclose(a2x, a2 * 8, rtol=1e-13)


# ---- topologies ----------------------------------------------------------------------------------
def test_topologies_ee_mumu():
    me = build_matrix_element((-11, 11, -13, 13), PARAMS)
    assert len(me.topologies) == 2
    pdgs = sorted(t.propagators[0].pdg for t in me.topologies)
    assert pdgs == [22, 23]
    for t in me.topologies:
        (prop,) = t.propagators
        assert prop.channel == "s" and prop.legs == (2, 3) and prop.daughters == (2, 3)
        assert t.t_chain == ((-1,),)
        if prop.pdg == 23:
            assert prop.mass == PARAMS.MZ and prop.width == PARAMS.WZ


def test_topologies_gg_tt():
    me = build_matrix_element((21, 21, 6, -6), PARAMS)
    kinds = sorted(tuple(p.channel for p in t.propagators) for t in me.topologies)
    assert kinds == [("s",), ("t",), ("t",)]
    for t in me.topologies:
        for prop in t.t_channel:
            assert 0 in prop.legs and 1 not in prop.legs and abs(prop.pdg) == 6
            assert prop.mass == PARAMS.MT and prop.width == PARAMS.WT
        assert t.externals == ((21, 0.0), (21, 0.0), (6, PARAMS.MT), (-6, PARAMS.MT))


def test_topologies_t_chain_covers_final_state():
    pdgs = (21, 21, 6, -6, 21, 21)
    me = build_matrix_element(pdgs, PARAMS)
    assert len(me.topologies) == me.n_diagrams == 123
    for t in me.topologies:
        emitted = set()

        def expand(code):
            if code >= 0:
                return {code}
            prop = t.propagators[-code - 1]
            assert prop.channel == "s"
            return set(prop.legs)

        for vertex in t.t_chain:
            for code in vertex:
                legs = expand(code)
                assert not (legs & emitted)
                emitted |= legs
        assert emitted == {2, 3, 4, 5}
        assert len(t.t_chain) == len(t.t_channel) + 1
        for prop in t.s_channel:
            assert set(prop.legs) <= {2, 3, 4, 5}
            covered = set()
            for code in prop.daughters:
                covered |= expand(code)
            assert covered == set(prop.legs)


def test_w_resonance_topology_and_description():
    me = build_matrix_element((2, -1, -11, 12), PARAMS)
    (t,) = me.topologies
    (prop,) = t.propagators
    assert (prop.pdg, prop.mass, prop.width, prop.channel) == (24, PARAMS.MW, PARAMS.WW, "s")
    assert "w+" in me.diagrams[0]


# ---- colour flows --------------------------------------------------------------------------------
@pytest.mark.parametrize("pdgs", [(21, 21, 6, -6), (2, -2, 6, -6, 21), (21, 21, 21, 21, 21), (2, 21, 2, 21),
                                  (-2, 2, -2, 2)])
def test_colour_flows_are_valid_lhe(pdgs):
    me = build_matrix_element(pdgs, PARAMS)
    p = momenta(pdgs)
    flows, w = me.colour_flows(p)
    assert w.shape == (p.shape[0], len(flows)) and bool((w >= 0).all())
    assert bool((w.sum(dim=1) > 0).all())
    for flow in flows:
        assert len(flow) == len(pdgs)
        cols, acols = [], []
        for i, (c, a) in enumerate(flow):
            if i < 2:  # back to the all-outgoing reading
                c, a = a, c
            if c:
                cols.append(c)
            if a:
                acols.append(a)
            assert not (c and c == a)
        assert sorted(cols) == sorted(acols) and len(set(cols)) == len(cols)


def test_colour_flows_leading_colour_only():
    # u u~ > d d~ through one gluon: only the planar flow (u→d̄ lines crossing the s-channel)
    me = build_matrix_element((2, -2, 1, -1), PARAMS)
    flows, w = me.colour_flows(momenta((2, -2, 1, -1)))
    assert len(flows) == 1
    (flow,) = flows
    assert flow[0][0] == flow[2][0] and flow[1][1] == flow[3][1]  # u colour → d, u~ anticolour → d~


def test_colourless_process_has_one_trivial_flow():
    me = build_matrix_element((-11, 11, -13, 13), PARAMS)
    flows, w = me.colour_flows(momenta((-11, 11, -13, 13)))
    assert flows == [((0, 0),) * 4] and w.shape[1] == 1


# ---- coupling orders and α_s ----------------------------------------------------------------------
def test_default_orders_lowest_qed():
    assert build_matrix_element((2, -2, 1, -1), PARAMS).n_diagrams == 1
    # g, γ, Z in the s-channel and W in the t-channel (CKM = 1)
    assert build_matrix_element((2, -2, 1, -1), PARAMS, {"QED": ("<=", 2)}).n_diagrams == 4
    assert build_matrix_element((2, -2, 1, -1), PARAMS, {"QCD": ("==", 0)}).n_diagrams == 3
    assert build_matrix_element((2, -2, -11, 11, 21), PARAMS).n_diagrams == 4


def test_mixed_orders_rescale_each_alpha_s_power_exactly():
    pdgs = (2, -2, 2, -2)
    p = momenta(pdgs)
    full = build_matrix_element(pdgs, PARAMS, {"QED": ("<=", 2)})
    qcd = build_matrix_element(pdgs, PARAMS)
    ew = build_matrix_element(pdgs, PARAMS, {"QCD": ("==", 0)})
    assert sorted(full._powers) == [0.0, 1.0, 2.0]
    for a in (PARAMS.aS, 0.2):
        interference = full(p, alpha_s=a) - qcd(p, alpha_s=a) - ew(p, alpha_s=a)
        ref = (full(p) - qcd(p) - ew(p)) * a / PARAMS.aS
        assert torch.allclose(interference, ref, rtol=1e-9, atol=1e-12 * float(full(p).abs().max()))
    only_interference = build_matrix_element(pdgs, PARAMS, {"QED": ("<=", 2), "QED^2": ("==", 2)})
    assert torch.allclose(only_interference(p), full(p) - qcd(p) - ew(p), rtol=1e-9,
                          atol=1e-12 * float(full(p).abs().max()))


def test_decay_top_three_body():
    me = build_matrix_element((6, 5, -11, 12), PARAMS, n_in=1)
    assert me.n_diagrams == 1
    (t,) = me.topologies
    assert t.propagators[0].pdg == 24 and t.propagators[0].channel == "s"
    rambo = Rambo(3, [PARAMS.MB, 0.0, 0.0], PARAMS.MT)
    out, _ = rambo.forward(torch.rand(4, rambo.dims_in, generator=torch.Generator().manual_seed(2),
                                      dtype=torch.float64))
    p = torch.cat([torch.tensor([[PARAMS.MT, 0, 0, 0]], dtype=torch.float64).expand(4, 1, 4), out], dim=1)
    v = me(p)
    assert bool(torch.isfinite(v).all()) and bool((v > 0).all())


# ---- errors --------------------------------------------------------------------------------------
def test_no_diagrams():
    with pytest.raises(NoDiagramsError, match="no tree-level diagrams"):
        build_matrix_element((-11, 11, 21), PARAMS)
    with pytest.raises(NoDiagramsError):
        build_matrix_element((-11, 11, -13, 11), PARAMS)
    with pytest.raises(NoDiagramsError):
        build_matrix_element((2, -2, 1, -1), PARAMS, {"QCD": ("==", 1)})
    assert issubclass(NoDiagramsError, MatrixElementError)


def test_bad_particles_and_orders():
    with pytest.raises(UnknownParticleError):
        build_matrix_element((99, -99, 21, 21), PARAMS)
    with pytest.raises(UnknownParticleError, match="own antiparticle"):
        build_matrix_element((-21, 21, 21, 21), PARAMS)
    with pytest.raises(MatrixElementError, match="unknown coupling order"):
        build_matrix_element((21, 21, 21, 21), PARAMS, {"QXD": ("<=", 2)})
    with pytest.raises(MatrixElementError):
        build_matrix_element((21, 21), PARAMS)
    with pytest.raises(MatrixElementError):
        build_matrix_element((21, 21, 21, 21), PARAMS, n_in=3)


def test_bad_momenta():
    me = build_matrix_element((21, 21, 6, -6), PARAMS)
    with pytest.raises(MatrixElementError, match="shape"):
        me(torch.zeros(3, 5, 4, dtype=torch.float64))
    with pytest.raises(MatrixElementError, match="float64"):
        me(torch.zeros(3, 4, 4, dtype=torch.float32))
    with pytest.raises(MatrixElementError):
        me.amplitudes2([[0.0]])
    assert me(torch.zeros(0, 4, 4, dtype=torch.float64)).shape == (0,)


# ---- helicity layout and input tolerance ------------------------------------------------------------
@pytest.mark.parametrize("pdgs", [(2, 21, -11, 12, 1, 21), (-11, 11, 2, -2, 21), (2, 1, 2, 1, 21)])
def test_pruned_helicity_layout_is_exact(pdgs):
    me = build_matrix_element(pdgs, PARAMS)
    full = 1
    for h in me._hels:
        full *= len(h)
    assert me._nhel < full  # identically-zero configurations were removed
    p = momenta(pdgs, n=4)
    pruned = me(p)
    me._set_layout([((i,), [(h,) for h in hels]) for i, hels in enumerate(me._hels)])
    me._device_cache.clear()
    assert me._nhel == full
    assert torch.allclose(me(p), pruned, rtol=1e-13)


def test_slightly_off_shell_input_changes_me_smoothly():
    pdgs = (21, 21, 6, -6, 21)
    me = build_matrix_element(pdgs, PARAMS)
    p = momenta(pdgs)
    q = p.clone()
    q[..., 0] *= 1 + 1e-9  # energies off by 1e-9 relative
    rel = ((me(q) - me(p)) / me(p)).abs()
    assert bool((rel < 1e-6).all())
