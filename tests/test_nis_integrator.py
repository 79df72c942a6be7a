"""madnis_py.Integrator on integrands with known answers, against the ``vegas`` package at equal calls.

Every toy integrates to a closed form; the estimate must lie within 4 reported errors, and the
error must beat the ``vegas`` package (adaptive map + stratification) run with the same total
number of integrand calls by the stated variance-reduction factor.  For vegas the training
(adaptation) iterations and a fresh, non-adapting iteration use the same call split as ours; the
asserted factor is about half of what the seeded runs give, to stay robust across platforms.
"""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch
import vegas

from madnis_py import Integrator
from madnis_py.errors import InputError
from madnis_py.nis import IntegrandError

SIGMA, CENTRES = 0.05, (0.25, 0.5, 0.75)
GAUSS_FACTOR = 2.5  # seeded run: 5.9


def gaussians_t(x: torch.Tensor) -> torch.Tensor:
    return sum(torch.exp(-((x - c) ** 2).sum(1) / (2 * SIGMA ** 2)) for c in CENTRES)


def gaussians_np(x: np.ndarray) -> np.ndarray:
    return sum(np.exp(-((x - c) ** 2).sum(1) / (2 * SIGMA ** 2)) for c in CENTRES)


def gaussians_exact(dims: int) -> float:
    s2 = SIGMA * math.sqrt(2.0)
    return sum((SIGMA * math.sqrt(2 * math.pi) * 0.5 * (math.erf((1 - c) / s2) + math.erf(c / s2))) ** dims
               for c in CENTRES)


R0, WIDTH = 0.3, 0.01  # thin ring around (1/2, 1/2)


def ring_t(x: torch.Tensor) -> torch.Tensor:
    r = torch.sqrt(((x - 0.5) ** 2).sum(1))
    return torch.exp(-(r - R0) ** 2 / (2 * WIDTH ** 2))


def ring_np(x: np.ndarray) -> np.ndarray:
    r = np.sqrt(((x - 0.5) ** 2).sum(1))
    return np.exp(-(r - R0) ** 2 / (2 * WIDTH ** 2))


# ∫ 2π r exp(-(r-R0)²/2w²) dr over r > 0: 2π w² e^{-R0²/2w²} + 2π R0 w √(2π) Φ(R0/w); the ring lies inside the cube
RING_EXACT = (2 * math.pi * WIDTH ** 2 * math.exp(-R0 ** 2 / (2 * WIDTH ** 2))
              + 2 * math.pi * R0 * WIDTH * math.sqrt(2 * math.pi) * 0.5 * (1 + math.erf(R0 / (WIDTH * math.sqrt(2)))))


def vegas_error(f_np, dims: int, train: int, fresh: int, seed: int = 1) -> tuple[float, float]:
    """vegas package: 10 adaptive iterations with ``train`` calls, then one fresh iteration of ``fresh`` calls."""
    # vegas draws from its own generator: pass a seeded one (np.random.seed alone does not make it repeatable)
    integ = vegas.Integrator([[0.0, 1.0]] * dims, ran_array_generator=np.random.default_rng(seed).random)
    fb = vegas.batchintegrand(f_np)
    integ(fb, nitn=10, neval=train // 10)
    res = integ(fb, nitn=1, neval=fresh, adapt=False)
    return res.mean, res.sdev


@pytest.mark.parametrize("name, f_t, f_np, dims, exact, factor", [
    ("gaussians", gaussians_t, gaussians_np, 3, gaussians_exact(3), GAUSS_FACTOR),
    ("ring", ring_t, ring_np, 2, RING_EXACT, 2.0),   # seeded run: 3.4
])
def test_toy_value_and_variance_reduction_over_vegas(name, f_t, f_np, dims, exact, factor) -> None:
    train, fresh = 24_000, 16_000
    integ = Integrator(f_t, dims=dims, seed=2, progress=False)
    hist = integ.train(calls=train)
    res = integ.integrate(calls=fresh)
    assert abs(res.value - exact) < 4 * res.error, (res.value, res.error, exact)
    v_mean, v_err = vegas_error(f_np, dims, train, fresh)
    assert abs(v_mean - exact) < 4 * v_err
    reduction = (v_err / v_mean) ** 2 / (res.error / res.value) ** 2
    assert reduction > factor, f"{name}: variance reduction over vegas {reduction:.1f}"
    assert hist.best_rel_variance < hist.vegas_rel_variance  # the flow improved on its own VEGAS warm start
    # the trained flow is still an exact bijection
    r = torch.rand(1000, dims, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        x, lq = integ.mapping(0).forward(r)
        r2, lq2 = integ.mapping(0).inverse(x)
    assert torch.allclose(r2, r, atol=1e-9, rtol=0) and torch.allclose(lq2, lq, atol=1e-7, rtol=0)


# ---------------------------------------------------------------- multi-channel toy
# Two narrow, tilted (non-separable) Gaussian peaks; channel c maps the unit square onto a product of
# Cauchy distributions around peak c (axis-aligned and 5x too wide: the flows have work to do).
PEAKS = torch.tensor([[0.3, 0.35], [0.7, 0.65]], dtype=torch.float64)
ANGLES = (math.pi / 4, -math.pi / 4)
SIG_MAJOR, SIG_MINOR, MAP_GAMMA = 0.05, 0.01, 0.05


def _inv_cov(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return rot @ torch.diag(torch.tensor([SIG_MAJOR ** -2, SIG_MINOR ** -2], dtype=torch.float64)) @ rot.T


INV_COVS = [_inv_cov(a) for a in ANGLES]


def peaks_F(p: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(p.shape[0], dtype=torch.float64)
    for m, ic in zip(PEAKS, INV_COVS):
        d = p - m
        out = out + torch.exp(-0.5 * ((d @ ic) * d).sum(1))
    return out


def peaks_F_np(p: np.ndarray) -> np.ndarray:
    return peaks_F(torch.as_tensor(p)).numpy()


# each peak: 2π σ_major σ_minor (the peaks are ≥ 6 σ_major away from the edges: truncation < 1e-8)
PEAKS_EXACT = 2 * 2 * math.pi * SIG_MAJOR * SIG_MINOR


def _cauchy_pieces(m: torch.Tensor, g: float):
    return torch.atan(-m / g), torch.atan((1 - m) / g)


def channel_density(p: torch.Tensor, c: int) -> torch.Tensor:
    """Density of channel c's map: a product of Cauchy distributions (width MAP_GAMMA) truncated to [0,1]."""
    a, b = _cauchy_pieces(PEAKS[c], MAP_GAMMA)
    return torch.prod(1.0 / ((b - a) * MAP_GAMMA * (1 + ((p - PEAKS[c]) / MAP_GAMMA) ** 2)), dim=1)


def peaks_multichannel(x: torch.Tensor, channel: torch.Tensor):
    """f(x, c) = F(p)/g_c(p) with p = G_c(x); prior α ∝ g_c(p); features: the physical point p."""
    m = PEAKS[channel]
    a, b = _cauchy_pieces(m, MAP_GAMMA)
    p = (m + MAP_GAMMA * torch.tan(a + x * (b - a))).clamp(0.0, 1.0)
    dens = torch.stack([channel_density(p, c) for c in range(2)], dim=1)
    own = dens.gather(1, channel[:, None])[:, 0]
    return peaks_F(p) / own, dens, p


def test_multichannel_toy_each_channel_covers_one_peak() -> None:
    """Two channels, each mapping one peak, with balance-heuristic α (``coordinates``, as cards use it): the value
    is exact within its error and the flows reduce the variance of vegas at the same calls more than 10-fold
    (seeds 1-3, four fresh samples each, Intel AVX-512: 18-65; seed 1: 43, 54, 39, 50; without flows 1.9), and
    beat the same channels without flows.  With the learned α instead (the API default without ``coordinates``)
    the value is still tested, but the reduction is not: there the trained flows keep a rare-weight tail near a corner of the
    VEGAS grid, and whether a 6.4e4-point sample hits it decides the error estimate — 1.0-22.6 over the same
    seeds and samples (31 on the AMD machine that set the old bound of 5, 2.5 on Intel AVX-512: the training
    follows the float rounding of the CPU's kernels)."""
    train, fresh = 40_000, 64_000
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False, coordinates=_peaks_coordinates)
    integ.train(calls=train)
    res = integ.integrate(calls=fresh)
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error
    assert len(res.channel_values) == 2 and min(res.channel_values) > 0.3 * PEAKS_EXACT
    v_mean, v_err = vegas_error(peaks_F_np, 2, train, fresh)
    assert abs(v_mean - PEAKS_EXACT) < 4 * v_err
    reduction = (v_err / v_mean) ** 2 / (res.error / res.value) ** 2
    assert reduction > 10.0, f"variance reduction over vegas {reduction:.1f}"
    # multi-channel without flows (VEGAS grids per channel, same α) is worse than with flows
    plain = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, flow=False, progress=False,
                       coordinates=_peaks_coordinates)
    plain.train(calls=train)
    res_plain = plain.integrate(calls=fresh)
    assert abs(res_plain.value - PEAKS_EXACT) < 4 * res_plain.error
    assert res.error < res_plain.error
    # learned α: the estimate stays within its (tail-dominated) error
    learned = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False)
    learned.train(calls=train)
    res_l = learned.integrate(calls=fresh)
    assert abs(res_l.value - PEAKS_EXACT) < 4 * res_l.error


# Symmetric toy for tied channels: F is invariant under σ(p) = 1 − p (two tilted peaks that are point images),
# channel 1 is σ ∘ channel 0 (map and density), so both can share one sampler (flow + grid).
SYM_PEAKS = torch.tensor([[0.3, 0.35], [0.7, 0.65]], dtype=torch.float64)


def sym_F(p: torch.Tensor) -> torch.Tensor:
    ic = _inv_cov(math.pi / 4)  # a point reflection keeps the covariance: F(σp) = F(p)
    return sum(torch.exp(-0.5 * (((p - m) @ ic) * (p - m)).sum(1)) for m in SYM_PEAKS)


def sym_multichannel(x: torch.Tensor, channel: torch.Tensor):
    a, b = _cauchy_pieces(SYM_PEAKS[0], MAP_GAMMA)
    p0 = (SYM_PEAKS[0] + MAP_GAMMA * torch.tan(a + x * (b - a))).clamp(0.0, 1.0)
    p = torch.where(channel[:, None] == 1, 1.0 - p0, p0)
    g0 = lambda q: torch.prod(1.0 / ((b - a) * MAP_GAMMA * (1 + ((q - SYM_PEAKS[0]) / MAP_GAMMA) ** 2)), dim=1)
    dens = torch.stack([g0(p), g0(1.0 - p)], dim=1)
    return sym_F(p) / dens.gather(1, channel[:, None])[:, 0], dens, None


def test_tied_channels_share_one_sampler(tmp_path) -> None:
    """``samplers=[0, 0]``: both channels draw from one flow and one VEGAS grid, trained on the points of both
    (the multi-channel warm-up adapts the shared grid to both channels' weights); the estimate stays unbiased."""
    exact = PEAKS_EXACT  # two peaks of the same shape as the multi-channel toy's (inside the square)
    tied = Integrator(sym_multichannel, dims=2, channels=2, seed=2, samplers=[0, 0], progress=False)
    assert len(tied.flows.flows) == 1 and tied.vegas.edges.shape[0] == 1
    hist = tied.train(calls=40_000)
    assert tied.mapping(0).mappings[0] is tied.mapping(1).mappings[0]
    res = tied.integrate(calls=64_000)
    assert abs(res.value - exact) < 4 * res.error
    # each channel covers its own peak: equal shares within errors
    (v0, v1), (e0, e1) = res.channel_values, res.channel_errors
    assert abs(v0 - v1) < 4 * math.hypot(e0, e1)
    assert hist.best_rel_variance < hist.vegas_rel_variance  # the shared flow improved on the shared grid
    # (on this 2-d toy the error is the same as with one flow per channel within its run-to-run spread: the
    # seeds 1-9 gave tied/untied error ratios 0.17-6.8, median 1.0; the gain needs flows short of data)
    tied.save(tmp_path / "tied.pt")
    loaded = Integrator.load(tmp_path / "tied.pt", sym_multichannel)
    a, b = tied.sample(300), loaded.sample(300)
    assert torch.equal(a.x, b.x) and torch.equal(a.weights, b.weights)


# ---------------------------------------------------------------- API contract
def test_numpy_backend() -> None:
    seen = []

    def f(x):
        seen.append(type(x))
        return np.exp(-((x - 0.5) ** 2).sum(1) / 0.02)

    integ = Integrator(f, dims=2, seed=3, backend="numpy", progress=False)
    integ.train(calls=6000)
    res = integ.integrate(calls=6000)
    exact = (math.sqrt(0.01 * 2 * math.pi) * math.erf(0.5 / math.sqrt(0.02))) ** 2
    assert set(seen) == {np.ndarray}
    assert abs(res.value - exact) < 4 * res.error


def test_multichannel_numpy_backend_plain_weight() -> None:
    def f(x, channel):
        assert isinstance(channel, np.ndarray) and channel.dtype.kind == "i"
        # each channel's weight is the whole integrand in that channel's coordinates: ∫ = 1 in both
        return np.where(channel == 0, 2.0 * x[:, 0], 3.0 * x[:, 1] ** 2)

    integ = Integrator(f, dims=2, channels=2, seed=3, backend="numpy", progress=False)
    integ.train(calls=6000)
    res = integ.integrate(calls=6000)
    assert abs(res.value - 1.0) < 4 * res.error


def test_defensive_flow_mixture_is_unbiased() -> None:
    """flow_mixture = m: a share m of the points bypasses the flow; the mixture density keeps σ unbiased."""
    integ = Integrator(gaussians_t, dims=2, seed=8, flow_mixture=0.3, progress=False)
    integ.train(calls=8000)
    res = integ.integrate(calls=20_000)
    # (a wrong density for the 30 % bypassing points, e.g. q_flow instead of the mixture, biases this)
    assert abs(res.value - gaussians_exact(2)) < 4 * res.error


def _mean_of_runs(runs) -> tuple[float, float]:
    """Mean of independent integrations and its error."""
    return (sum(r.value for r in runs) / len(runs),
            math.sqrt(sum(r.error ** 2 for r in runs)) / len(runs))


def test_grid_mixture_bounds_weights_by_the_analytic_channel() -> None:
    """grid_mixture = m_g: a share m_g of the points is drawn uniformly in the channel's x-space (bypassing flow
    and VEGAS grid), so every weight is at most α f_x / m_g (f_x: the channel's integrand before the grid), and
    the mixture density keeps σ unbiased."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=4, grid_mixture=0.3, progress=False)
    assert integ.config["flow_mixture"] == 0.05 and integ.config["grid_mixture"] == 0.3
    integ.train(calls=20_000)
    ch = torch.arange(2).repeat(20_000)
    s = integ._draw(ch, use_flow=True)
    tiny = 1e-300  # denormal round-off
    assert bool((s["w"] <= s["alpha"] * s["weight"] / 0.3 * (1 + 1e-9) + tiny).all())
    assert bool((s["w"] > s["alpha"] * s["weight"] / 0.3 * 0.999).any())  # the bound is reached (flow/grid ≈ 0)
    res = integ.integrate(calls=40_000)
    # (a wrong density for the grid-bypassing points, e.g. without the 1/q_vegas, biases this)
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error
    with pytest.raises(InputError, match="grid_mixture"):
        Integrator(peaks_multichannel, dims=2, channels=2, flow_mixture=0.5, grid_mixture=0.5)


def test_multichannel_toy_error_is_honest() -> None:
    """Each channel's VEGAS grid squeezes the *other* peak's region (α_c ≈ 1e-3 but |f| large) into its last
    bin; the flows move their density away from it.  Without the grid-bypassing share those points carried
    weights up to 4·10⁴ ⟨w⟩, hit about once per 10⁶ points: typical runs were 1.3e-3 low with errors of 2-3e-4
    (the mean of 8 such runs, seed 1: −6.3σ; 20 runs at 4·10⁵ + 4·10⁵ calls, seed 2: 16 runs ≈ −5σ, 4 runs
    up to +1.9 %).  With grid_mixture = 2 % (the default) the largest weight is ≈ 400 ⟨w⟩, seen in every run,
    and the errors are honest (pulls of the mean of 10 runs +0.3, +0.6, +0.7 for seeds 1-3)."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False)
    assert integ.config["grid_mixture"] == 0.02
    integ.train(calls=100_000)
    runs = [integ.integrate(calls=100_000) for _ in range(8)]
    mean, err = _mean_of_runs(runs)
    assert abs(mean - PEAKS_EXACT) < 4 * err, f"pull {(mean - PEAKS_EXACT) / err:.1f}"
    spread = statistics.stdev(r.value for r in runs)
    assert spread < 3 * max(r.error for r in runs)  # the reported errors are not far below the run-to-run spread


def _peaks_coordinates(x: torch.Tensor, channel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every channel's view of the toy's points: x_c′ = G_c′⁻¹(G_c(x)) and log g_c′ at the physical point."""
    m = PEAKS[channel]
    a, b = _cauchy_pieces(m, MAP_GAMMA)
    p = (m + MAP_GAMMA * torch.tan(a + x * (b - a))).clamp(0.0, 1.0)
    xs, log_g = [], []
    for c in range(2):
        a2, b2 = _cauchy_pieces(PEAKS[c], MAP_GAMMA)
        xs.append(((torch.atan((p - PEAKS[c]) / MAP_GAMMA) - a2) / (b2 - a2)).clamp(0.0, 1.0))
        log_g.append(torch.log(channel_density(p, c)))
    return torch.stack(xs, dim=1), torch.stack(log_g, dim=1)


def test_balance_alpha_is_evaluated_only_where_the_integrand_is_nonzero() -> None:
    """Cut-failing points (f = 0) have w = 0 whatever α is: the balance heuristic (every channel's inverse map and
    flow) is skipped there, α = 0, and the estimate is unchanged — the toy with half the square cut away."""
    seen: list[int] = []

    def cut_f(x, channel):
        w, dens, p = peaks_multichannel(x, channel)
        return torch.where(p[:, 0] < 0.5, w, torch.zeros_like(w)), dens, p

    def coords(x, channel):
        seen.append(x.shape[0])
        return _peaks_coordinates(x, channel)

    integ = Integrator(cut_f, dims=2, channels=2, seed=1, coordinates=coords, progress=False)
    integ.train(calls=20_000)
    seen.clear()
    s = integ.sample(20_000)
    zero = s.weights == 0
    assert int(zero.sum()) > 100  # (channel 1 keeps only its uniform share of the points; most of them fail)
    assert bool((s.alpha[zero] == 0).all()) and bool((s.alpha[~zero] > 0).all())
    assert sum(seen) == int((~zero).sum())  # the heuristic saw the non-zero points only
    res = integ.integrate(calls=40_000)
    # the peak at x = 0.7 lies 5.5 σ_x beyond the cut at 0.5: the integral is half the toy's to 1e-7
    assert abs(res.value - PEAKS_EXACT / 2) < 4 * res.error


def test_balance_alpha_sums_to_one_at_a_physical_point() -> None:
    """The balance α of a point is a function of the physical point alone: drawn by channel 0, and the same point
    drawn by channel 1 (r₁ = flow₁⁻¹(VEGAS₁⁻¹(x₁)), x₁ = G₁⁻¹(G₀(x₀))), the two own-channel α add up to 1 — with
    the own channel's density taken from the draw and the other's from its inverse maps, defensive shares on."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, coordinates=_peaks_coordinates, progress=False)
    integ.train(calls=20_000)
    pi = torch.tensor([0.3, 0.7], dtype=torch.float64)
    n = 4000
    ch0, ch1 = torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)
    s0 = integ._draw(ch0, True, balance_pi=pi)
    x1 = _peaks_coordinates(s0["x"], ch0)[0][:, 1]
    u1 = integ.vegas.inverse(x1, integ._sampler[ch1])[0]
    s1 = integ._draw(ch1, True, r=integ.flows.inverse(u1, integ._sampler[ch1])[0], balance_pi=pi)
    # the same point unless channel 1's draw took a defensive share (u = r or x = r: 1.5 % of the points)
    same = (s1["x"] - x1).abs().max(dim=1).values < 1e-9
    ok = same & (s0["weight"] != 0) & (s1["weight"] != 0)
    assert int(ok.sum()) > 0.9 * n
    total = s0["alpha"][ok] + s1["alpha"][ok]
    assert torch.allclose(total, torch.ones_like(total), rtol=0, atol=1e-7), float((total - 1).abs().max())
    assert float(s0["alpha"][ok].min()) < 0.01 and float(s0["alpha"][ok].max()) > 0.99  # both channels matter


def test_balance_heuristic_keeps_the_toy_honest_with_small_defensive_shares() -> None:
    """With balance-heuristic α (``coordinates``) the defensive shares default to 1 % / 0.5 %: a point of channel c
    at the other peak gets α_c = π_c Q_c / Σ π Q, so its weight is bounded by the other channel's density there —
    the bound the 2 % grid share gives the learned α (previous test).  Same toy, same budget: the mean of the
    fresh runs is exact within its error and the reported errors match the run-to-run spread."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, coordinates=_peaks_coordinates, progress=False)
    assert integ.config["flow_mixture"] == 0.01 and integ.config["grid_mixture"] == 0.005
    assert integ.config["qmc"] is True  # randomised QMC integration with the balance α
    assert integ.config["train_mixture"] == 0.01 and integ.config["train_grid_mixture"] == 0.2
    integ.train(calls=100_000)
    runs = [integ.integrate(calls=100_000) for _ in range(6)]
    mean, err = _mean_of_runs(runs)
    assert abs(mean - PEAKS_EXACT) < 4 * err, f"pull {(mean - PEAKS_EXACT) / err:.1f}"
    spread = statistics.stdev(r.value for r in runs)
    assert spread < 3 * max(r.error for r in runs)
    print("balance toy", [f"{r.value:.6g}±{r.error:.2g} ε {r.unweighting_efficiency:.3f}" for r in runs], mean, err)


def test_qmc_replicas_are_scrambled_sobol_nets() -> None:
    """``qmc=True``: each channel's inputs are M = 16 independently scrambled Sobol sets; a set of 64 points is a
    (0, 6, d)-net, so every one-dimensional projection has exactly one point in each of the 64 equal intervals
    (i.i.d. points would leave ≈ 37 % of them empty), and different sets are different scramblings."""
    integ = Integrator(gaussians_t, dims=3, seed=5, progress=False, qmc=True)
    r, h, big_m = integ._strata(torch.tensor([16 * 64]))
    assert r.shape == (1024, 3) and bool((big_m == 16).all()) and torch.equal(torch.bincount(h), torch.full((16,), 64))
    for j in range(16):
        cells = torch.floor(r[h == j] * 64).long()
        for dim in range(3):
            assert torch.equal(torch.sort(cells[:, dim]).values, torch.arange(64))
    assert not torch.equal(r[h == 0], r[h == 1])
    # sizes that do not divide: the remainder goes to the first sets; fewer points than 16: one set per point
    _, h2, m2 = integ._strata(torch.tensor([100, 5]))
    assert torch.bincount(h2).tolist() == [7] * 4 + [6] * 12 + [1] * 5 and m2.tolist() == [16.0] * 100 + [5.0] * 5


def test_qmc_multichannel_estimate_is_unbiased_and_its_error_honest() -> None:
    """``qmc=True`` on the two-peak toy with balance-heuristic α: the error comes from the spread of the 16
    scrambled sets per channel alone; the mean of 8 fresh runs is exact within its error and the run-to-run
    spread matches the reported errors (a wrong replica weighting or a within-set variance would fail one of
    the two).  Seed 1: pull −0.2, spread / mean error 0.7 (stratified instead: −0.8, 1.0; errors 7.3e-6 and
    6.7e-6: in two dimensions the stratified cubes are as fine)."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, coordinates=_peaks_coordinates, progress=False,
                       qmc=True)
    integ.train(calls=40_000)
    runs = [integ.integrate(calls=20_000) for _ in range(8)]
    mean, err = _mean_of_runs(runs)
    assert abs(mean - PEAKS_EXACT) < 4 * err, f"pull {(mean - PEAKS_EXACT) / err:.1f}"
    spread = statistics.stdev(r.value for r in runs)
    mean_err = sum(r.error for r in runs) / len(runs)
    assert 0.3 * mean_err < spread < 3 * mean_err, (spread, mean_err)
    assert all(r.n_calls == 20_000 for r in runs)


def test_learned_channel_weights_default_and_prior_penalty() -> None:
    """After a multi-channel warm start with ≥ 1e5 flow calls the channel-weight network is on by default.
    Its variance loss is blind where a channel hardly samples: on the two-peak toy (2·10⁵ training calls,
    seed 1) it raised channel 0's weight at the other peak 70-fold, and fresh integrations had a relative error
    of 65 % per 10⁵ points (honest, but useless; 7.5e-4 without the network).  The penalty on raising a
    channel's weight beyond 3× its prior (``cw_prior_penalty`` 1, ``cw_free_ratio`` 3) keeps it at 8.4e-4 with
    the mean exact (a χ² penalty without the free ratio did too, but also took the gain on g g > t t~ g)."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False)
    assert integ.config["learn_channel_weights"] is None and integ.config["cw_prior_penalty"] == 1.0
    assert integ.config["cw_free_ratio"] == 3.0
    integ.train(calls=200_000)
    assert integ.config["learn_channel_weights"] is True and integ.cw.net is not None
    # the penalty is 0 at the prior and positive away from it
    ch = torch.arange(2).repeat_interleave(4000)
    s = integ._draw(ch, use_flow=True)
    b = dict(channel=ch, prior=s["prior"], g=s["g"], log_q_sample=s["log_qf"])
    prior = s["prior"] / s["prior"].sum(1, keepdim=True)
    with torch.no_grad():
        assert abs(float(integ._prior_penalty(prior, b))) < 1e-12
        sharper = prior ** 2 / (prior ** 2).sum(1, keepdim=True)  # α_c / α_c^prior ≤ 1 / Σ prior² ≤ 2: free
        assert abs(float(integ._prior_penalty(sharper, b))) < 1e-12
        assert float(integ._prior_penalty(prior.flip(1), b)) > 1.0  # each channel's weight where it hardly samples
    runs = [integ.integrate(calls=100_000) for _ in range(4)]
    mean, err = _mean_of_runs(runs)
    assert abs(mean - PEAKS_EXACT) < 4 * err
    assert max(r.error / r.value for r in runs) < 2e-3


def test_multichannel_warm_start_share_depends_on_the_budget() -> None:
    """The multi-channel warm start takes MC_WARMUP_CALLS (3·10⁴) calls, as a share of the first training
    budget clipped to [0.1, 0.4]; an explicit warmup_fraction and the one-channel warm-up (10 %) are kept."""
    from madnis_py.nis.integrator import MC_WARMUP_CALLS
    for calls, share in [(20_000, 0.4), (75_000, 0.4), (150_000, MC_WARMUP_CALLS / 150_000), (300_000, 0.1),
                         (1_000_000, 0.1)]:
        integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False)
        assert integ.config["warmup_fraction"] is None
        integ._training_defaults(calls)
        assert integ.config["warmup_fraction"] == pytest.approx(share)
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, warmup_fraction=0.3, progress=False)
    integ._training_defaults(1_000_000)
    assert integ.config["warmup_fraction"] == 0.3
    one = Integrator(gaussians_t, dims=2, seed=1, progress=False)
    assert one.config["warmup"] == "own" and one.config["warmup_fraction"] == 0.1
    hist = Integrator(peaks_multichannel, dims=2, channels=2, seed=1, progress=False).train(calls=20_000)
    assert 0.35 * 20_000 <= hist.vegas_calls <= 0.45 * 20_000


def test_training_mixture_differs_from_the_integration_mixture() -> None:
    """train_mixture / train_grid_mixture: the training draws bypass the flow (and the grid) more often than the
    integration does; the loss's importance ratio uses the density the samples came from, so training stays
    consistent and σ unbiased."""
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=3, train_mixture=0.3, train_grid_mixture=0.2,
                       progress=False)
    assert integ.config["flow_mixture"] == 0.05 and integ.config["train_mixture"] == 0.3
    assert integ.config["grid_mixture"] == 0.02 and integ.config["train_grid_mixture"] == 0.2
    hist = integ.train(calls=20_000)
    assert hist.best_rel_variance < hist.vegas_rel_variance  # the flows still learn
    res = integ.integrate(calls=40_000)
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error


def test_madnis_tuple_order_and_keyword_only_options() -> None:
    """``madnis_order=True`` accepts PyPI madnis' (weight, features, prior); both orders give the same run."""
    def ours(x, channel):
        w, prior, feats = peaks_multichannel(x, channel)
        return w, prior, feats

    def theirs(x, channel):
        w, prior, feats = peaks_multichannel(x, channel)
        return w, feats, prior

    a = Integrator(ours, dims=2, channels=2, seed=7, learn_channel_weights=True, progress=False)
    b = Integrator(theirs, dims=2, channels=2, seed=7, learn_channel_weights=True, madnis_order=True, progress=False)
    ra, rb = (i.train(calls=3000) and i.integrate(calls=2000) for i in (a, b))
    assert ra.value == rb.value and ra.error == rb.error
    with pytest.raises(TypeError):
        Integrator(gaussians_t, 2, 1)  # a positional third argument would be ambiguous (seed? channels?)


def test_call_bookkeeping_and_sample() -> None:
    calls = []

    def f(x):
        calls.append(x.shape[0])
        assert x.dtype == torch.float64 and x.shape[1] == 3
        return 1.0 + x.sum(1)

    integ = Integrator(f, dims=3, seed=4, progress=False)
    hist = integ.train(calls=5000)
    assert hist.calls == sum(calls) == integ.total_calls <= 5000 and integ.training_calls == hist.calls
    res = integ.integrate(calls=3000)
    assert res.n_calls == 3000 and res.training_calls == hist.calls
    assert res.total_calls == integ.total_calls == hist.calls + 3000 == sum(calls)
    x, w = integ.sample(1000)
    assert x.shape == (1000, 3) and w.shape == (1000,)
    assert integ.total_calls == hist.calls + 4000
    assert abs(float(w.mean()) - 2.5) < 4 * float(w.std()) / math.sqrt(1000)
    assert 0 < res.unweighting_efficiency <= res.partial_unweighting_efficiency <= 1
    hist2 = integ.train(calls=2000)  # a second training continues (no second warm-up)
    assert hist2.vegas_calls == 0 and integ.training_calls == hist.calls + hist2.calls


def test_save_load_round_trip(tmp_path) -> None:
    integ = Integrator(gaussians_t, dims=2, seed=5, progress=False)
    integ.train(calls=8000)
    path = tmp_path / "run.pt"
    integ.save(path)
    raw = torch.load(path, weights_only=True)  # plain tensors and builtins only
    assert raw["format"].startswith("madnis_py.nis.Integrator")
    loaded = Integrator.load(path, gaussians_t)
    assert loaded.total_calls == integ.total_calls and loaded.training_calls == integ.training_calls
    a, b = integ.sample(500), loaded.sample(500)
    assert torch.equal(a.x, b.x) and torch.equal(a.weights, b.weights)
    ra, rb = integ.integrate(2000), loaded.integrate(2000)
    assert ra.value == rb.value and ra.error == rb.error


def test_save_load_multichannel_with_channel_weight_network(tmp_path) -> None:
    integ = Integrator(peaks_multichannel, dims=2, channels=2, seed=6, learn_channel_weights=True, progress=False)
    integ.train(calls=6000)
    assert integ.cw is not None and integ.cw.net is not None
    integ.save(tmp_path / "mc.pt")
    loaded = Integrator.load(tmp_path / "mc.pt", peaks_multichannel)
    a, b = integ.sample(400), loaded.sample(400)
    assert torch.equal(a.x, b.x) and torch.equal(a.weights, b.weights) and torch.equal(a.alpha, b.alpha)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dims=0), "dims must be an integer >= 1"),
    (dict(dims=2.5), "dims must be an integer >= 1"),
    (dict(dims=2, channels=0), "channels must be an integer >= 1"),
    (dict(dims=2, backend="jax"), "backend must be 'torch' or 'numpy'"),
    (dict(dims=2, loss="mse"), "loss must be one of"),
    (dict(dims=2, warmup_fraction=0.0), "warmup_fraction must be in (0, 1]"),
    (dict(dims=2, train_mixture=1.0), "train_mixture must be in [0, 1)"),
    (dict(dims=2, grid_mixture=-0.1), "grid_mixture must be in [0, 1)"),
    (dict(dims=2, train_mixture=0.6, train_grid_mixture=0.5), "train_grid_mixture must be in [0, 1)"),
    (dict(dims=2, samplers=[0]), "samplers needs channels and one entry per channel"),
    (dict(dims=2, channels=3, samplers=[0, 2, 2]), "samplers must use every index 0"),
    (dict(dims=2, channels=2, samplers="ab"), "samplers must be a list of integers"),
])
def test_bad_constructor_input(kwargs, message) -> None:
    with pytest.raises(InputError) as exc:
        Integrator(lambda x: x.sum(1), **kwargs)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_bad_calls_and_integrand_output(tmp_path) -> None:
    integ = Integrator(lambda x: x.sum(1), dims=2, progress=False)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InputError, match="calls must be an integer"):
            integ.train(calls=bad)
    with pytest.raises(InputError, match="calls must be an integer"):
        integ.integrate(calls=1)
    with pytest.raises(InputError, match="allocation must be"):
        integ.integrate(calls=100, allocation="random")
    with pytest.raises(InputError, match="must be callable"):
        Integrator(3.0, dims=2)
    cases = [
        (lambda x: x, "shape"),                                         # [n, d] instead of [n]
        (lambda x: torch.full((x.shape[0],), math.nan), "non-finite"),
        (lambda x: (x.sum(1), x), "single-channel integrand must return only"),
        (lambda x: "w", "tensor or array"),
    ]
    for fn, msg in cases:
        with pytest.raises(IntegrandError, match=msg) as exc:
            Integrator(fn, dims=2, progress=False).integrate(100)
        assert "\n" not in str(exc.value)
    with pytest.raises(IntegrandError, match="prior channel weights must have shape"):
        Integrator(lambda x, c: (x.sum(1), torch.ones(x.shape[0], 3)), dims=2, channels=2,
                   progress=False).integrate(100)
    with pytest.raises(IntegrandError, match="non-negative"):
        Integrator(lambda x, c: (x.sum(1), -torch.ones(x.shape[0], 2)), dims=2, channels=2,
                   progress=False).integrate(100)
    with pytest.raises(InputError, match="not a madnis_py integrator checkpoint"):
        torch.save({"a": 1}, tmp_path / "x.pt")
        Integrator.load(tmp_path / "x.pt", lambda x: x.sum(1))


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
def test_training_integration_and_sampling_stay_on_cuda(tmp_path) -> None:
    """device='cuda': the integrand only ever sees float64 CUDA points (warm-up, flow training, integration,
    sampling); the toy's value holds; a checkpoint written from the GPU loads on the CPU with the same sampler."""
    seen = set()

    def f(x):
        seen.add((x.device.type, x.dtype))
        return gaussians_t(x)

    integ = Integrator(f, dims=3, seed=2, device="cuda", progress=False)
    integ.train(calls=60_000)
    res = integ.integrate(calls=60_000)
    x, w = integ.sample(2000)
    assert seen == {("cuda", torch.float64)}
    assert x.device.type == w.device.type == "cuda"
    exact = gaussians_exact(3)
    assert abs(res.value - exact) < 4 * res.error
    integ.save(tmp_path / "run.pt")
    on_cpu = Integrator.load(tmp_path / "run.pt", gaussians_t, device="cpu", progress=False)
    res_cpu = on_cpu.integrate(calls=60_000)
    assert abs(res_cpu.value - exact) < 4 * res_cpu.error
    assert 0.5 < res_cpu.error / res.error < 2.0  # the same trained sampler on either device


@needs_cuda
def test_multichannel_balance_heuristic_on_cuda() -> None:
    """The two-peak toy with learned training weights and balance-heuristic α on CUDA (the toy itself is written
    for the CPU: it is evaluated there, the integrator's tensors stay on the GPU)."""
    seen = set()

    def f(x, channel):
        seen.add(x.device.type)
        return tuple(t.to(x.device) for t in peaks_multichannel(x.cpu(), channel.cpu()))

    def coords(x, channel):
        return tuple(t.to(x.device) for t in _peaks_coordinates(x.cpu(), channel.cpu()))

    integ = Integrator(f, dims=2, channels=2, seed=1, coordinates=coords, device="cuda", progress=False)
    integ.train(calls=60_000)
    res = integ.integrate(calls=100_000)
    assert seen == {"cuda"}
    assert abs(res.value - PEAKS_EXACT) < 4 * res.error, (res.value, res.error)
