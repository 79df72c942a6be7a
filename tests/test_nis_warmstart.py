"""madnis_py.nis.Integrator: warm start from MultiChannelVegas, stratified integration, lr back-off (issue 7)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from channels.multichannel import MultiChannelVegas
from madnis_py import Integrator
from madnis_py.errors import InputError
from madnis_py.nis import integrator as nis_integrator

sys.path.insert(0, str(Path(__file__).parent))
from test_nis_integrator import PEAKS_EXACT, gaussians_exact, gaussians_t, peaks_multichannel  # noqa: E402


def test_warm_start_takes_over_the_multichannel_vegas_grids() -> None:
    """The warm-up is MultiChannelVegas itself: an independent run on α_c f_c with the same seed, calls and
    iterations gives identical grids, and the untrained flows reproduce those channel densities exactly."""
    calls = 16_000
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=4, warmup_fraction=1.0, progress=False)
    hist = integ.train(calls=calls)
    assert integ.config["warmup"] == "multichannel" and hist.vegas_calls == hist.calls == calls
    n_it = max(2, min(nis_integrator.MC_MAX_ITERATIONS, calls // nis_integrator.MC_ITERATION_CALLS))
    per = calls // (n_it + 1)

    def f(u: torch.Tensor, c: int) -> torch.Tensor:
        w, prior, _ = peaks_multichannel(u, torch.full((u.shape[0],), c, dtype=torch.long))
        return prior[:, c] / prior.sum(dim=1) * w

    mc = MultiChannelVegas(f, 2, 2, seed=4 + 15485863, min_share=0.1, min_points=nis_integrator.MC_MIN_POINTS)
    mc.integrate(per * n_it, iterations=n_it, warmup_fraction=0.0)
    assert integ.vegas.bins == mc.grid.bins == 128
    # equal up to the rounding of α (softmax of log prior vs prior / Σ prior)
    assert torch.allclose(integ.vegas.edges, mc.grid.edges, atol=1e-9, rtol=0)
    assert not torch.equal(mc.grid.edges[0], mc.grid.edges[1])  # the channels' grids did adapt, differently
    r = torch.rand(500, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for c in range(2):
        ch = torch.full((500,), c, dtype=torch.long)
        with torch.no_grad():
            x, lq = integ.mapping(c).forward(r)
        x_mc, lq_mc = mc.grid.forward(r, ch)
        assert torch.allclose(x, x_mc, atol=1e-12, rtol=0) and torch.allclose(lq, lq_mc, atol=1e-12, rtol=0)
    # the reference iteration's allocation and statistics are in place: integrating now is the VEGAS channels
    res = integ.integrate(8_000)
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error


def test_stratified_integration_is_unbiased_and_beats_plain_sampling() -> None:
    exact = gaussians_exact(3)
    errors = {}
    for stratify in (True, False):
        integ = Integrator(gaussians_t, dims=3, seed=2, flow=False, stratify=stratify, progress=False)
        integ.train(calls=20_000)
        res = integ.integrate(16_000)
        assert abs(res.value - exact) < 4 * res.error, (stratify, res.value, res.error, exact)
        x, w = integ.sample(4_000)  # W = N/(M n_h) w has mean Î
        assert abs(float(w.mean()) - exact) < 4 * float(w.std()) / math.sqrt(4_000)
        errors[stratify] = res.error
    assert errors[True] < 0.6 * errors[False], errors  # seeded run: 0.28
    # the flows' input is stratified too (a bijection with uniform base density): still unbiased
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False)
    integ.train(calls=12_000)
    res = integ.integrate(12_000)
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error
    assert sum(res.channel_values) == pytest.approx(res.value, rel=1e-12)


def test_lr_backoff_restores_the_best_state() -> None:
    """With an absurd learning rate every epoch gets worse: the back-off restores the best (VEGAS) state."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, learning_rate=3.0, epochs=4, patience=10,
                       progress=False)
    hist = integ.train(calls=12_000)
    assert hist.best_rel_variance <= hist.vegas_rel_variance
    res = integ.integrate(8_000)
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error


@pytest.mark.parametrize("kwargs, message", [
    (dict(warmup="fast"), "warmup must be 'auto', 'multichannel' or 'own'"),
    (dict(lr_backoff=0.0), "lr_backoff must be in"),
    (dict(divergence_factor=0.5), "divergence_factor must be >= 1"),
    (dict(learning_rate=-1.0), "learning_rate must be > 0"),
])
def test_bad_warm_start_options(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        Integrator(gaussians_t, dims=2, **kwargs)
