"""channels.multichannel.MultiChannelVegas on toys with known integrals (the stratified estimator)."""
from __future__ import annotations

import math

import pytest
import torch

from channels.multichannel import MultiChannelVegas
from madnis_py.unweighting import unweighting_efficiency

SIG = 0.05
# ∫_0^1 exp(-(x-0.5)²/(2 SIG²)) dx per dimension (erf of the cut tails)
G1 = SIG * math.sqrt(2 * math.pi) * math.erf(0.5 / (SIG * math.sqrt(2)))


def toy(u: torch.Tensor, c: int) -> torch.Tensor:
    if c == 0:  # narrow 3d Gaussian, integral 10 G1³
        return 10.0 * torch.exp(-((u - 0.5) ** 2).sum(dim=1) / (2 * SIG**2))
    if c == 1:  # 8 u0 u1 u2, integral 1
        return 8.0 * u.prod(dim=1)
    return torch.zeros(u.shape[0], dtype=torch.float64)  # an empty channel, integral 0


EXACT = 10.0 * G1**3 + 1.0


def test_stratified_estimate_matches_exact_integral() -> None:
    mc = MultiChannelVegas(toy, dims=3, channels=3, seed=5, bins=32)
    res = mc.integrate(60_000, iterations=6)
    assert abs(res.value - EXACT) < 4 * res.error
    assert res.error / EXACT < 5e-3
    assert sum(res.channel_values) == pytest.approx(res.value, rel=1e-9)
    assert abs(res.channel_values[0] - 10 * G1**3) < 4 * res.channel_errors[0]
    assert abs(res.channel_values[1] - 1.0) < 4 * res.channel_errors[1]
    assert res.channel_values[2] == 0.0
    assert res.chi2_dof is not None and res.chi2_dof < 5
    # all calls accounted for, warm-up included
    assert res.n_calls == mc.calls and sum(res.channel_calls) < res.n_calls  # warm-up calls are not in channel_calls
    assert 55_000 <= res.n_calls <= 66_000
    # the allocation follows σ_c: the empty channel gets only the minimum share
    n_c = mc.allocation(10_000)
    assert int(n_c[2]) <= 10_000 * 0.1 / 3 + 2
    assert int(n_c[2]) >= mc.min_points
    # the adapted grid beats plain MC by far on the peak (error of flat MC with the same calls)
    u = torch.rand(60_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat_err = math.sqrt(float(toy(u, 0).var() / 60_000))
    assert res.channel_errors[0] < 0.3 * flat_err


def test_seeded_and_weighted_sample() -> None:
    a = MultiChannelVegas(toy, dims=3, channels=3, seed=11, bins=16).integrate(20_000, iterations=4)
    mc = MultiChannelVegas(toy, dims=3, channels=3, seed=11, bins=16)
    b = mc.integrate(20_000, iterations=4)
    assert a.value == b.value and a.error == b.error
    # last-iteration weights: mean = that iteration's estimate
    assert b.last_weights is not None
    assert math.isclose(float(b.last_weights.mean()), b.iteration_values[-1][0], rel_tol=1e-9)
    ev = mc.sample(40_000)
    assert ev.u.shape[1] == 3 and ev.u.shape[0] == ev.weight.shape[0] == ev.channel.shape[0]
    err = float(ev.weight.std()) / math.sqrt(ev.weight.numel())  # conservative (ignores stratification gain)
    assert abs(float(ev.weight.mean()) - EXACT) < 4 * err
    eff = unweighting_efficiency(ev.weight)
    assert 0 < eff["strict"] <= eff["partial"] <= 1
