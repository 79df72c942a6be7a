"""Channel weights, training losses and the sample buffer of madnis_py.nis (independent numbers)."""
from __future__ import annotations

import math

import pytest
import torch

from madnis_py.nis import (ChannelWeights, Integrator, SampleBuffer, kl_loss, stratified_l3_loss,
                           stratified_variance_loss, variance_loss)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.5) -> None:
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))


# ---------------------------------------------------------------- channel weights
def test_channel_weights_equal_prior_with_zero_network_output() -> None:
    k, n = 4, 500
    cw = ChannelWeights(k, features=3, generator=_gen(1))
    prior = torch.rand(n, k, generator=_gen(2), dtype=torch.float64) * 5.0  # unnormalised
    feats = torch.randn(n, 3, generator=_gen(3), dtype=torch.float64)
    active = torch.ones(k, dtype=torch.bool)
    alpha = cw(prior, feats, active)
    assert torch.allclose(alpha, prior / prior.sum(1, keepdim=True), rtol=1e-14, atol=0)
    assert torch.allclose(cw(None, feats, active), torch.full((n, k), 1.0 / k, dtype=torch.float64), rtol=1e-15)


def test_channel_weights_sum_to_one_and_zero_prior_gives_zero_exactly() -> None:
    k, n = 5, 400
    cw = ChannelWeights(k, features=2, generator=_gen(4))
    _randomise(cw.net, seed=5)
    prior = torch.rand(n, k, generator=_gen(6), dtype=torch.float64)
    prior[:, 1] = 0.0           # e.g. channels of another subprocess group
    prior[: n // 2, 3] = 0.0
    feats = torch.randn(n, 2, generator=_gen(7), dtype=torch.float64)
    active = torch.tensor([True, True, True, True, False])  # channel 4 dropped
    alpha = cw(prior, feats, active)
    assert torch.allclose(alpha.sum(1), torch.ones(n, dtype=torch.float64), rtol=0, atol=1e-14)
    assert bool((alpha[:, 1] == 0).all()) and bool((alpha[: n // 2, 3] == 0).all())
    assert bool((alpha[:, 4] == 0).all())
    assert not torch.allclose(alpha[:, 0], prior[:, 0] / prior[:, :4].sum(1))  # the network acts
    # gradients through the softmax with log 0 = -inf entries stay finite
    channel = torch.randint(0, k, (n,), generator=_gen(8))
    loss = (alpha.gather(1, channel[:, None]) ** 2).sum()
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for p in cw.net.parameters()])
    assert bool(torch.isfinite(grads).all()) and float(grads.abs().sum()) > 0
    # an all-zero prior row falls back to the uniform prior over the active channels
    zero = torch.zeros(3, k, dtype=torch.float64)
    a0 = ChannelWeights(k, 0)(zero, None, active)
    assert torch.allclose(a0, torch.tensor([[0.25] * 4 + [0.0]] * 3, dtype=torch.float64))


def test_integrator_gives_zero_weight_to_channels_with_zero_prior() -> None:
    """A 3-channel integrand whose channel 2 never contributes (prior 0 everywhere): α_2 = 0, no NaN."""
    def f(x: torch.Tensor, channel: torch.Tensor):
        prior = torch.stack([x[:, 0], 1.0 - x[:, 0], torch.zeros_like(x[:, 0])], dim=1)
        return 1.0 + x[:, 1] ** 2, prior, x  # I = 4/3 in every channel
    integ = Integrator(f, dims=2, channels=3, seed=4, batch_size=256, buffered_steps=2, drop_threshold=1e-5,
                       progress=False)
    hist = integ.train(calls=6000)
    assert 2 in hist.dropped_channels and not bool(integ.active[2])  # (opt-in) a channel without contribution is dropped
    r = integ.integrate(20_000)
    assert r.channel_calls[2] == 0 and abs(r.value - 4.0 / 3.0) < 4 * r.error
    # without dropping, the channel keeps being sampled with α = 0 exactly and nothing turns NaN
    integ = Integrator(f, dims=2, channels=3, seed=4, batch_size=256, buffered_steps=2, drop_threshold=0.0,
                       learn_channel_weights=True, progress=False)
    integ.train(calls=6000)
    assert integ.cw.net is not None
    for p in integ._parameters():
        assert bool(torch.isfinite(p).all())
    s = integ.sample(3000, allocation="uniform")
    assert bool(torch.isfinite(s.weights).all()) and int((s.channel == 2).sum()) == 1000
    assert bool((s.alpha[s.channel == 2] == 0).all()) and bool((s.weights[s.channel == 2] == 0).all())
    r = integ.integrate(20_000)
    assert math.isfinite(r.error) and abs(r.value - 4.0 / 3.0) < 4 * r.error


# ---------------------------------------------------------------- losses
def _sample_linear(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """u ~ q_s(u) = 1/2 + u on [0,1] (inverse CDF) and log q_s(u)."""
    r = torch.rand(n, generator=_gen(seed), dtype=torch.float64)
    u = -0.5 + torch.sqrt(0.25 + 2.0 * r)
    return u, torch.log(0.5 + u)


def test_variance_loss_on_sample_equals_sample_variance() -> None:
    u = torch.rand(10_000, generator=_gen(1), dtype=torch.float64)
    f = 3.0 * u ** 2
    zero = torch.zeros_like(u)
    expected = float(f.var(unbiased=False) / f.mean() ** 2)
    assert float(variance_loss(f, zero, zero)) == pytest.approx(expected, rel=1e-12)
    # two channels: stratified loss (σ_0 + σ_1)² / (I_0 + I_1)²
    ch = (torch.arange(10_000) % 2)
    f2 = torch.where(ch == 0, f, 2.0 * u)
    s = [f2[ch == c].std(unbiased=False) for c in (0, 1)]
    m = [f2[ch == c].mean() for c in (0, 1)]
    want = float((s[0] + s[1]) ** 2 / (m[0] + m[1]) ** 2)
    assert float(stratified_variance_loss(f2, zero, zero, ch, 2)) == pytest.approx(want, rel=1e-9)


def test_default_loss_is_l3_and_others_stay_selectable() -> None:
    """loss="auto" trains with the tail-weighted l3 loss (benchmarks/RESULTS.md, "At 76abadb"); the rest by name."""
    from madnis_py.nis.losses import LOSSES
    f = lambda x: x.sum(1)  # noqa: E731
    assert Integrator(f, dims=2, seed=1, progress=False).loss_fn is LOSSES["l3"]
    for name in ("variance", "kl", "plain_variance"):
        assert Integrator(f, dims=2, seed=1, progress=False, loss=name).loss_fn is LOSSES[name]


def test_l3_loss_on_sample_and_its_optimum() -> None:
    """The tail-weighted loss: on samples from q_θ itself it is (Σ_c mean_c|w − Î_c|³^(1/3))² / (Σ_c Î_c)²; with
    samples from q_s = 1/2 + u the importance correction gives the uniform density's value (f = 3u²:
    E|f − 1|³ = ∫|3u² − 1|³ du by quadrature, within 4σ); for q_θ = (1−θ) + 2θu and f = 2u it falls towards θ = 1,
    where it vanishes (q ∝ f)."""
    u = torch.rand(10_000, generator=_gen(11), dtype=torch.float64)
    ch = torch.arange(10_000) % 2
    f = torch.where(ch == 0, 3.0 * u ** 2, 2.0 * u)
    zero = torch.zeros_like(u)
    s = [((f[ch == c] - f[ch == c].mean()).abs() ** 3).mean() ** (1 / 3) for c in (0, 1)]
    want = float((s[0] + s[1]) ** 2 / (f[ch == 0].mean() + f[ch == 1].mean()) ** 2)
    assert float(stratified_l3_loss(f, zero, zero, ch, 2)) == pytest.approx(want, rel=1e-9)
    n = 400_000
    u, log_qs = _sample_linear(n, seed=12)
    f = 3.0 * u ** 2
    grid = torch.linspace(0.0, 1.0, 200_001, dtype=torch.float64)
    exact_m3 = float(torch.trapezoid((3.0 * grid ** 2 - 1.0).abs() ** 3, grid))
    terms = (f - 1.0).abs() ** 3 * torch.exp(-log_qs)
    err = float(terms.std() / math.sqrt(n))
    m3 = float(stratified_l3_loss(f, torch.zeros_like(u), log_qs)) ** 1.5  # one channel, Î ≈ 1: L = m3^(2/3)
    assert abs(m3 - exact_m3) < 4 * err + 3 * exact_m3 * 1e-2  # Î's own MC error enters at the per-cent level
    u, log_qs = _sample_linear(100_000, seed=13)
    f = 2.0 * u
    losses = []
    for theta in (0.5, 0.9, 1.0):
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        loss = stratified_l3_loss(f, torch.log((1.0 - t) + 2.0 * t * u), log_qs)
        loss.backward()
        losses.append(float(loss.detach()))
        if theta < 1.0:
            assert float(t.grad) < 0
    assert losses[0] > losses[1] > losses[2] and losses[2] < 1e-3


def test_variance_loss_importance_correction() -> None:
    """Samples from q_s = 1/2 + u estimate the variance of f = 3u² under the *uniform* density (= 4/5)."""
    n = 400_000
    u, log_qs = _sample_linear(n, seed=2)
    f = 3.0 * u ** 2
    log_q = torch.zeros_like(u)                      # current density: uniform
    loss = float(variance_loss(f, log_q, log_qs))
    terms = (f - 1.0) ** 2 * torch.exp(-log_qs)
    err = float(terms.std() / math.sqrt(n))
    assert abs(loss - 0.8) < 4 * err
    uncorrected = float(variance_loss(f, log_qs, log_qs))  # pretending the samples came from q_θ
    assert abs(uncorrected - 0.8) > 0.05                   # would be 0.9: the correction matters


def test_variance_loss_gradient_vanishes_at_the_optimum() -> None:
    """q_θ(u) = (1-θ) + 2θu;  f = 2u: the variance loss is minimal at θ = 1 (q ∝ f) and 0 there."""
    u, log_qs = _sample_linear(100_000, seed=3)
    f = 2.0 * u
    losses = []
    for theta in (0.5, 0.9, 1.0):
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        log_q = torch.log((1.0 - t) + 2.0 * t * u)
        loss = variance_loss(f, log_q, log_qs)
        loss.backward()
        losses.append(float(loss.detach()))
        if theta == 1.0:
            assert losses[-1] < 1e-4  # zero variance up to (Î - 1)² from the MC estimate of I
        else:
            assert float(t.grad) < 0  # increasing θ lowers the variance
    assert losses[0] > losses[1] > losses[2]


def test_kl_loss_value_and_minimum() -> None:
    """With q_θ = f/I the KL loss is the cross entropy −∫p log p = −(ln 2 − 1/2) for p = 2u."""
    n = 400_000
    u, log_qs = _sample_linear(n, seed=4)
    f = 2.0 * u
    at_target = float(kl_loss(f, torch.log(2.0 * u), log_qs))
    uniform = float(kl_loss(f, torch.zeros_like(u), log_qs))
    assert at_target == pytest.approx(-(math.log(2.0) - 0.5), abs=0.005)
    assert uniform == pytest.approx(0.0, abs=1e-15)
    assert at_target < uniform


# ---------------------------------------------------------------- buffer
def test_buffer_fifo_sampling_and_filter() -> None:
    buf = SampleBuffer(capacity=10)
    for i in range(3):
        n = 4
        buf.store(u=torch.full((n, 2), float(i), dtype=torch.float64), channel=torch.tensor([0, 1, 0, 1]),
                  g=torch.ones(n, dtype=torch.float64), log_q_sample=torch.zeros(n, dtype=torch.float64),
                  prior=None, features=None)
    assert buf.size == 10
    assert sorted(buf.data["u"][:, 0].tolist()) == [0.0, 0.0, 1, 1, 1, 1, 2, 2, 2, 2]  # oldest two overwritten
    b = buf.sample(50, _gen(1))
    assert b["u"].shape == (50, 2) and b["prior"] is None
    buf.filter(torch.tensor([True, False]))
    assert buf.size == 5 and bool((buf.data["channel"][:5] == 0).all())


def test_buffered_warmup_samples_are_importance_reweighted() -> None:
    """Warm-up samples stored in the buffer (drawn with an older VEGAS grid, re-expressed in the final
    grid's coordinates) still estimate the integral: mean(g / q_sample) = I within 4σ."""
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((x - 0.4) ** 2).sum(1) / (2 * 0.1 ** 2))
    exact = (0.1 * math.sqrt(2 * math.pi) * 0.5 * (math.erf(0.6 / (0.1 * math.sqrt(2))) + math.erf(0.4 / (0.1 * math.sqrt(2))))) ** 2
    integ = Integrator(f, dims=2, seed=5, warmup_fraction=1.0, vegas_iteration_calls=5000, progress=False)
    integ.train(calls=20_000)
    buf = integ.buffer
    n = buf.size
    assert n == 5000
    w = buf.data["g"][:n] * torch.exp(-buf.data["log_q_sample"][:n])
    assert abs(float(w.mean()) - exact) < 4 * float(w.std()) / math.sqrt(n)
    # the correction is not trivial: the grid moved after these samples were drawn
    assert float(buf.data["log_q_sample"][:n].abs().max()) > 0.05
