"""Channel options of channels/channel.py (issue 5 tuning) and stratified MultiChannelVegas; fast, seeded.

* Every combination of ``order`` (bottom-up / top-down), ``decay_axis`` (sibling / fixed), ``nu_cut``
  (1/s above a cut bound) and ``nu_free`` (power-law spine/pseudo invariants): the density equals the
  numerical-Jacobian reference of tests/test_channels.py and forward ∘ inverse is the identity; with
  cut bounds, which these options are about, the points respect the channel's invariant bounds.
* Stratified sampling inside MultiChannelVegas: unbiased against a closed-form integral and with a
  smaller error than unstratified sampling at equal calls in 2 dimensions.
"""
from __future__ import annotations

import math

import pytest
import torch
from test_channels import CASES, gen, rand, reference_log_q

from channels import build_channels
from channels.multichannel import MultiChannelVegas
from matrix_elements.registry import matrix_element

F64 = torch.float64
OPTIONS = [dict(order="top-down", decay_axis="fixed", nu_cut=None),
           dict(order="top-down", decay_axis="sibling", nu_cut=1.0),
           dict(order="bottom-up", decay_axis="sibling", nu_cut=1.0, nu_free=0.8),
           dict(order="bottom-up", decay_axis="fixed", nu_cut=1.2, nu_free=1.0)]


@pytest.mark.parametrize("name", ["ee-uugg", "ud-evgg"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_channel_options_density_and_inverse(name, opts):
    proc, sqrt_s, hadronic, tau_min = CASES[name]
    me = matrix_element(proc)
    bound = 15.0  # GeV, on every pair/triple of final-state legs: gives massless lines a positive lower limit
    chs = build_channels(me.topologies, sqrt_s, hadronic, tau_min, invariant_min=lambda legs: bound,
                         fold_symmetric=False, **opts)
    for k, ch in enumerate(chs[:6]):
        u = rand(gen(500 + k), 10, ch.dims_in, lo=0.02, hi=0.98)
        p, log_q = ch.forward(u)
        assert bool(torch.isfinite(log_q).all()), ch
        ref = reference_log_q(ch, u, p)
        # finite-difference reference: ~1e-5 accuracy, worse near steep peaks (log q ≈ 17 here and there)
        assert torch.allclose(log_q, ref, rtol=0, atol=2e-4), (ch, opts, (log_q - ref).abs().max())
        u2, log_q2 = ch.inverse(p)
        assert torch.allclose(u2, u, rtol=0, atol=1e-8), (ch, opts, (u2 - u).abs().max())
        assert torch.allclose(log_q2, log_q, rtol=0, atol=1e-8)
        for node in ch.tree.nodes:  # tree invariants respect the bound
            if node.kind in ("prop", "pseudo", "spine"):
                q = p[:, sorted(node.legs)].sum(1)
                m = (q[:, 0] ** 2 - (q[:, 1:] ** 2).sum(-1)).clamp_min(0).sqrt()
                assert bool((m >= bound * (1 - 1e-9)).all()), (ch, node.legs)


def test_stratified_multichannel_is_unbiased_and_more_precise():
    """∫ over 2 channels of f(u) = exp(u0 + 2 u1) (each channel half of it) = (e − 1)(e² − 1)/2."""
    exact = (math.e - 1.0) * (math.e**2 - 1.0) / 2.0

    def f(u, c):
        return 0.5 * torch.exp(u[:, 0] + 2.0 * u[:, 1])

    res = {}
    for strat in (True, False):
        mc = MultiChannelVegas(f, dims=2, channels=2, seed=3, bins=8, stratify=strat)
        res[strat] = mc.integrate(20_000, iterations=5, warmup_fraction=0.0, adapt=False)
        assert abs(res[strat].value - exact) < 4 * res[strat].error, (strat, res[strat].value, res[strat].error)
    assert res[True].error < 0.2 * res[False].error
    # event weights of the last iteration average to its estimate
    mc = MultiChannelVegas(f, dims=2, channels=2, seed=4, bins=8)
    ev = mc.sample(4000)
    assert abs(float(ev.weight.mean()) - exact) < 0.01 * exact
