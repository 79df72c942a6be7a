"""Neural multi-channel importance sampling: VEGAS grids + spline flows + learned channel weights.

Sampling in channel c (c = 0 … k−1)::

    r ~ U[0,1]^d  --flow_c-->  u  --VEGAS_c-->  x  --user-->  f_c(x)

with density q_c(x) = q_flow,c(u) · q_vegas,c(x).  The flow is placed *in front of* the grid: it
refines the VEGAS-flattened cube, and an untrained (identity) flow leaves the VEGAS channel as is.

The multi-channel estimator
---------------------------
Channel c has its own parametrisation x ↦ p = G_c(x) of the physical space, with density g_c(p);
the user's ``f(x, c)`` returns f_c(x) = F(G_c(x)) / g_c(G_c(x)), the integrand already divided by
that channel's analytic density.  With channel weights α_c(p) ≥ 0, Σ_c α_c(p) = 1 at every p,

    I = ∫ F dp = Σ_c ∫ α_c(p) F(p) dp = Σ_c ∫_{[0,1]^d} α_c(G_c(x)) f_c(x) dx.

Each term is estimated by importance sampling with n_c points from q_c (stratified sampling):

    Î = Σ_c Î_c,   Î_c = (1/n_c) Σ_{j∈c} w_j,   w_j = α_c(p_j) f_c(x_j) / q_c(x_j),
    Var(Î) = Σ_c σ_c² / n_c,  σ_c² estimated by the sample variance of w in channel c.

The n_c are fixed before sampling (from the per-channel σ_c measured during training; n_c ∝ σ_c
minimises the variance, plus a small uniform share so every active channel keeps samples), so the
estimator is unbiased.  Event weights of the combined sample are W_j = (N / n_c) w_j, ⟨W⟩ = Î.

α_c(p) = softmax_c(log α_c^prior(p) + NN_c(features(p))) over the active channels (dropped
channels have α = 0, the others renormalise, so Σ α = 1 still holds).  Unbiasedness needs the prior
and the features to depend on p only, not on the channel the point came from; therefore the
network is used only when the integrand returns features, or a prior (then the features default
to log α^prior), or when ``shared_coordinates=True`` declares that x is the same point in every
channel (then the features default to x).  Otherwise α is the prior, or 1/k.

The network is *on by default after a multi-channel warm start with ≥ 10⁵ calls left for the flows*
(``learn_channel_weights=None``; smaller budgets and one channel: α = normalised prior), with the output
bound ``cw_max_correction`` = 10 and the flows' learning rate (``cw_lr_factor`` = 1).  Every sample-based loss
has a blind spot here: the gradient that lowers α_c where channel c's weights vary moves that weight to
channels c′ at points their own mappings almost never sample, so the loss never sees the resulting huge,
rare weights of c′.  Three things make it usable (two-peak toy of ``tests/test_nis_integrator.py``):

* the training draws take 20 % of their points from the analytic channel alone (``train_grid_mixture``),
  so the loss sees each channel where its grid and flow do not go (without: −1.3 % / −1.4 % biased results,
  seeds 1, 2 at 10⁵ calls; with the wide bound −72 % / −20 %);
* the validation variance is that of the integration density, estimated by importance from the training
  draws (the selected state follows what the integration will see);
* a penalty on weights raised beyond K = ``cw_free_ratio`` (3) × the prior, ``cw_prior_penalty`` (1) ×
  ∫|f| Σ_c α_c^prior relu(α_c/α_c^prior − K)² / ∫|f| (``_prior_penalty``), estimated from each channel's own
  points, which sees the cost of raising α_c where channel c hardly samples: at 2·10⁵ training calls (seed 1)
  the network without it raised channel 0's weight at the other peak 70-fold (fresh relative error 65 % per
  10⁵ points; 8.4e-4 with the penalty, 7.5e-4 without the network).  The plain χ² distance to the prior
  (K = 0) was safe too but took the gain on g g > t t~ g (10⁶ calls: rel. error 4.87e-4 without penalty,
  6.27e-4 with χ² weight 1, 6.01e-4 with 0.3, 4.93e-4 with K = 3; 6.37e-4 without the network).
On the toy at 4·10⁵ calls the network then lowers the error ≈ 2.9× (errors 2.0-2.5e-6 per 4·10⁵ points
against 5.9e-6; seeds 1-3 before the penalty existed, seed 2 with it: 2.0e-6; run-to-run spread ≈ reported
error, pulls of the mean within ±2.1).  On processes at 10⁶ calls see benchmarks/
RESULTS.md.

Balance-heuristic channel weights (``coordinates=``; integration and sampling only).  Given
``coordinates(x, channel) -> (x_all [n, k, d], log_g [n, k])``, every channel's unit-cube coordinates of each point
and its analytic log-density there (−inf outside that channel's support; for collider processes
:meth:`madnis_py.multichannel_integrand.MultiChannelIntegrand.coordinates`, from the channels' exact inverse maps),
``integrate`` and ``sample`` use α_c(p) = π_c Q_c(p) / Σ_c' π_c' Q_c'(p), with Q_c the full sampling density of
channel c at the physical point (analytic map × VEGAS × flow, defensive shares included) and π_c the channel
shares of the sample: the α of least variance for the given samplers (Veach's balance heuristic; the
Kleiss–Pittau multi-channel weights), a function of p alone with Σ α = 1, so the estimate stays unbiased — and
with no blind spot: a channel gets weight only where its sampler actually goes.  Training keeps the learned α.
Price: every channel's inverse map, grid and flow per point (≈ k flow passes instead of one).  Measured on the
trained samplers of the benchmark (seed 1, 3·10⁵ training calls): see benchmarks/RESULTS.md.

Defensive mixture: a share ``flow_mixture`` = m of the points bypasses the flow (u = r), so
the sampling density in u-space is q = (1 − m) q_flow + m ≥ m: weights can never exceed 1/m times
those of the VEGAS map alone (training and estimator both use this q).  Default m = 5 % with the
multi-channel VEGAS warm start, off with the own warm-up: where the VEGAS map itself is poor it
imports VEGAS' tails (8-d Gaussians, m = 2 %: relative error 0.12 instead of 2.3e-3), and it adds
≈ m to the relative variance of a good flow.  m = 5 % vs 20 % is not settled by the data: with few
calls per channel the flows move density away from regions whose rare large weights their training
samples never contain (e+ e- > e+ ve mu- vm~, 6·10⁴ training calls, m = 5 %: 71 % of Σw² on 2·10⁵
fresh points came from the 6.6 % of points where the flow density was below e⁻¹ of the VEGAS map;
fresh relative variance 6.4 against 0.71 on the validation samples).  At that budget (one seed, 2·10⁵
fresh points) m = 20 % lowered the fresh relative variance / raised strict ε_uw on three of four
processes (e+ e- > e+ ve mu- vm~ 6.4 / 0.0011 → 2.0 / 0.0031, u g > e+ ve d g 32 / 0.0008 → 21 / 0.0012,
e+ e- > u u~ g g 5.2 / 0.0047 → 3.8 / 0.0067, g g > t t~ g 1.4 / 0.0127 → 1.6 / 0.0126), but at 10⁶ calls
(3·10⁵ training, 7·10⁵ fresh, one seed; ``bench_nis_processes.py --calls 1000000 --int-fraction 0.7``)
it was worse: relative error 7.75e-4 → 8.52e-4 and ε 0.0179 → 0.0067 on g g > t t~ g, 1.10e-3 → 1.64e-3
and ε 0.0046 → 0.0012 on e+ e- > e+ ve mu- vm~.  Both are single draws of a rare-weight tail.
(No mixture vs 5 % on e+ e- > u u~ g g, 10⁵ calls, earlier code: rel. error 0.0128 vs 0.0094.)
``train_mixture`` (default: = ``flow_mixture``) lets the *training* draws bypass the flow more often than the
integration's, to show the loss the regions the flow under-covers, while the loss still optimises the
integration density (the importance ratio uses the density the samples came from).  Measured with 0.2 at
10⁶ calls (one seed): g g > t t~ g rel. error 7.75e-4 → 8.33e-4, ε 0.0179 → 0.0110; e+ e- > e+ ve mu- vm~
1.10e-3 → 1.08e-3, ε 0.0046 → 0.0058; u g > e+ ve d g 3.32e-3 → 2.61e-3, ε 0.0011 → 0.0020; e+ e- > u u~ g g
unchanged (flows unused) — better on two, worse on one, within single-seed noise: off by default.
With balance-heuristic α (``coordinates``) the defaults are m = 1 % and m_g = 0.5 % (``BALANCE_FLOW_MIXTURE``,
``BALANCE_GRID_MIXTURE``; training: ``train_mixture`` = m, ``train_grid_mixture`` 20 % as before): there a point's weight
is already bounded by every channel that samples it, which is what the grid share does for the learned α, and the
shares cost up to m (1 + r)/(1 − m) relative variance where the flows are good.  Measured at 10⁶ calls (3·10⁵ training,
7·10⁵ fresh; rel. error and strict / partial ε, 5 % + 2 % → 1 % + 0.5 %): g g > t t~ g seed 1 3.82e-4 → 3.36e-4, 0.047 /
0.39 → 0.032 / 0.43; seed 2 3.73e-4 → 3.26e-4, 0.049 / 0.43 → 0.080 / 0.43; u g > e+ ve d g seed 1 1.39e-3 → 1.33e-3,
0.0082 / 0.040 → 0.0103 / 0.051; e+ e- > u u~ g g seed 1 1.15e-3 → 1.13e-3, 0.0129 / 0.048 → 0.0141 / 0.048
(benchmarks/RESULTS.md).

Training (``train(calls)``)
---------------------------
1. VEGAS warm-up with ``warmup_fraction`` of the first budget.  ``warmup="multichannel"`` (the
   default with ``channels``; by default 3·10⁴ calls = ``MC_WARMUP_CALLS``, as a fraction clipped to
   [0.1, 0.4]: 40 % of budgets up to 7.5·10⁴, 10 % from 3·10⁵.  The grids are not converged by then (iterations
   of 10⁴: g g > t t~ g relative variance per point 49.6, 8.3, 3.6, 2.6, 1.8, 1.8, 1.6, then ≈ 1.5; u g > e+ ve d g
   ≈ 10 from the 6th), but the flows in front make up for that and the calls are worth more to them: at 10⁶
   calls (3·10⁵ training, 7·10⁵ fresh; rel. error with 40 % → 10 %, seeds 1, 2) g g > t t~ g 4.93e-4, 5.03e-4 →
   4.12e-4, 4.25e-4; e+ e- > e+ ve mu- vm~ 8.23e-4, 7.39e-4 → 7.12e-4, 7.12e-4; u g > e+ ve d g 2.00e-3, 2.50e-3 →
   1.95e-3, 2.21e-3.  Not on e+ e- > u u~ g g (1.84e-3, 2.05e-3 → 1.90e-3, 2.20e-3), where the flows only make up
   for the grid (relative variance 6.1 after 3·10⁴ calls, 2.8 after the 10⁶ of multi-channel VEGAS): the issue-5 baseline
   :class:`channels.multichannel.MultiChannelVegas` itself runs on α_c f_c — its grids (32 bins in
   > 4 dims, 128 in ≤ 4), damping, stratification, n_c ∝ σ_c allocation and adaptation rules — in
   ``warmup_fraction · calls / 4000`` iterations (2 … 10); its grids then *replace* ours, so the
   untrained (identity) flows reproduce its channel densities exactly.  One last, unstratified
   reference iteration (1/(iterations + 1) of the warm-up, flows off, its allocation) measures the
   validation reference, the per-channel statistics and seeds the buffer.  ``warmup="own"`` (the
   default for one channel; fraction 0.1): iterations of ``vegas_iteration_calls`` fresh samples, grids adapted to w² (per
   channel; a channel's grid only once ≥ 16 points per bin are pending — adapting
   on a few dozen points collapses it), channel allocation n_c ∝ σ_c, optional channel dropping
   (``drop_threshold``, off by default: with many channels and few points each, a noisy zero
   estimate dropped 39 of 48 channels of p p > e+ e- j and biased σ).
2. Flow (and channel-weight) training with the rest: each fresh batch of ``batch_size`` samples
   (channels allocated ∝ σ_c with a ``uniform_channel_ratio`` share) gives one Adam step and is
   stored in a buffer; ``buffered_steps`` more steps follow on buffered samples, whose loss carries
   the importance ratio q_θ/q_sample (so re-use is unbiased, and training costs few calls).  The
   last warm-up iteration seeds the buffer.  Learning rate: cosine decay over the planned steps
   (defaults: 1e-3 with batches of 1024 after the multi-channel warm start when ≥ 10⁵ calls are left for
   the flows, else 1e-2 with batches of 512), times ``lr_backoff`` (0.3) after every epoch whose validation variance exceeds
   ``divergence_factor`` (3) × the best one — the best state is then restored and Adam's moments are
   reset.  (Without any back-off the validation variance of e+ e- > u u~ g g rose epoch by epoch at
   1e-2.)  Epochs that are merely not better do *not* trigger it: the validation estimate is noisy and
   the VEGAS reference is biased low for heavy-tailed weights (u g > e+ ve d g, 10⁵ calls: reference
   13.8, the same state on fresh points 33–37), so backing off on every non-improving epoch kept
   restoring the VEGAS state and the flows never trained there (relative error 3.0e-2; with this rule
   1.4–2.0e-2, fresh relative variance per point 7–16).  The multi-channel defaults were measured at
   10⁶ calls (3·10⁵ training, 7·10⁵ fresh, seed 1; fresh relative variance per point, rel. error, strict
   ε_uw): g g > t t~ g with 1e-2/512 0.486, 8.3e-4, 0.0089 (the first epoch at 1e-2 always overshot: validation
   4.1 against the VEGAS reference 1.57, then a back-off); 1e-3/512 0.309; 1e-3/1024 0.268, 6.2e-4, 0.024
   (still improving in the last epoch: 20 instead of 10 buffered steps gave 0.233 for 1.5× the time);
   u g > e+ ve d g 31 → 9.9 (rel. error 6.7e-3 → 3.5e-3).
   The loss (``loss="auto"`` = ``"l3"``, see :mod:`.losses`) is the stratified one with each channel's σ_c
   replaced by (E|w − I_c|³)^(1/3): it weighs the rare largest weights, which set the unweighting efficiency,
   harder than the variance loss (``"variance"``) does.  Measured at 10⁶ calls (3·10⁵ training, three fresh
   7·10⁵ samples, seeds 1 and 2; rel. error, strict / partial ε_uw, variance → l3): e+ e- > u u~ g g
   3.4–4.0e-4 → 3.4–3.9e-4, mean ε 0.046 / 0.26 → 0.068 / 0.335; u g > e+ ve d g 1.03–1.07e-3 → 0.85–1.0e-3,
   ε ≈ 0.02 / 0.07 → 0.010–0.028 / 0.09–0.10; e+ e- > e+ ve mu- vm~ 3.7 / 4.0e-4 → 3.2–4.1e-4, ε 0.09–0.11 /
   0.35 → 0.11–0.14 / 0.39–0.40; Gaussian toys (4 and 8 dims, 2·10⁵ calls) ε 0.08 / 0.30 → 0.15 / 0.43 and
   0.03 / 0.07 → 0.04 / 0.09 at the same error.  Where it loses: g g > t t~ g 1.26e-4 → 1.50–1.57e-4 (seed 1;
   ε unchanged 0.18–0.23 / 0.62).
3. Validation: every epoch (≈ 1/``epochs`` of the budget) the stratified relative variance
   (Σ_c σ_c)² / (Σ_c Î_c)² of that epoch's fresh samples (drawn before being trained on) is
   compared with the best so far (the VEGAS state to start with); training stops after
   ``patience`` epochs without improvement (not before half of the budget is spent) and the best
   state is restored, so training cannot
   end worse than the VEGAS warm start (up to the noise of the validation estimate).

Integration and sampling are stratified (``stratify``, default on) in the flows' uniform input r,
as in MultiChannelVegas: channel c's r-cube is cut into M_c = m^d equal cubes (2 m^d ≤ n_c), each
with ⌊n_c/M_c⌋ points (the rest to random cubes), Î_c = Σ_h mean_h / M_c, Var Î_c = Σ_h s_h²/(n_h M_c²),
W = N/(M_c n_h) w.  The flow is a bijection with uniform base density, so this is unbiased; it
matters in few dimensions (2-d toy, 16k points: error 6× smaller without flows).

Randomised quasi-Monte Carlo (``qmc``; on by default with balance-heuristic α, as cards use it, else off):
channel c's n_c uniform inputs r are instead M_c = 16 independently scrambled Sobol point sets
(``torch.quasirandom.SobolEngine``: linear matrix scrambling and a random digital shift, so every point is uniform
and each set's mean unbiased); Î_c is their average and Var Î_c = Σ_j (mean_j − Î_c)² / (M_c (M_c − 1)) comes from
their spread alone — an unbiased variance estimate with 15 degrees of freedom per channel.  In the 7–8 dimensions
of 2 → 3 and 2 → 4 processes the stratified cubes are coarse (3–4 per axis at 10⁵ points), while a Sobol set is
balanced in every projection: on the benchmark's trained samplers (3·10⁵ training calls, 7·10⁵ fresh points) the
variance fell 2.5–3.3× on g g > t t~ g, 2.0–2.2× on
u g > e+ ve d g and e+ e- > e+ ve mu- vm~, 30 % on e+ e- > u u~ g g (benchmarks/RESULTS.md); on the 2-d toys of the
tests the cubes are as good.  Event weights W = N/(M_c n_j) w as for the strata.

Grid-bypassing share (``grid_mixture`` = m_g, default 2 % with the multi-channel warm start, else 0): these
points are drawn uniformly in the channel's x-space, i.e. from the channel's analytic mapping alone, so
q_x ≥ m_g and every weight is at most α f_x / m_g — the bound the analytic channels are built to keep small.
Without it, a region that the VEGAS grid squeezes into one bin and the flow leaves carries weights up to
1/(m q_vegas): on the two-peak toy each channel's grid puts the *other* peak (α_c ≈ 1e-3, |f| large) into its
last bin, and at 4·10⁵ + 4·10⁵ calls 16 of 20 fresh integrations (seed 2) were ≈ 0.13 % low at ≈ −5σ while
4 caught weights up to 8000 ⟨w⟩ (+0.6 to +1.9 %); the mean of 10 runs at 10⁵ + 10⁵ calls had pulls −6.3,
+2.6, −5.2 (seeds 1-3).  With m_g = 2 % the largest weight is ≈ 400 ⟨w⟩, met in every run, and the same pulls
are +0.3, +0.6, +0.7 (run-to-run spread ≈ reported error).  The price is a larger but honest error on that
toy and ≈ m_g more relative variance where the flows are good.  The estimate stays unbiased whatever the
mixture (the density of every share enters q), but an error is only as honest as the sample's coverage of
the largest weights: cross-check new integrands with a few independent runs.  ``train_grid_mixture`` (default
20 % with the multi-channel warm start) is the same share for the training draws: the loss (importance-
corrected to the integration density) and the validation then see each channel where its grid and flow do not
go — needed by the learned channel weights (above).

Tied channels (``samplers``, one sampler index per channel): channels with the same index draw from one
flow and one VEGAS grid, q_c = q_s for every c of sampler s.  Each channel keeps its own points, weights,
channel weight α_c and share of the sample, so the estimator is unchanged and unbiased for any tying; it pays
where the tied channels are images of each other under a symmetry of the integrand (identical final-state
particles: channel c′ = σ ∘ channel c, see :meth:`madnis_py.multichannel_integrand.MultiChannelIntegrand.samplers`),
because then they have one optimal sampler and it trains on the points of all of them — the counterpart of
multi-channel VEGAS' folding of symmetric channels.  In the multi-channel warm-up each point of a sampler
goes to one of its m channels at random with weight m α_c f_c (an unbiased estimate of their sum).

Calls: ``total_calls`` counts every integrand evaluation (warm-up, training, integration,
sampling); results record ``n_calls`` (that integration) and ``training_calls``.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor

from channels.mapping import Chain

from ..errors import InputError
from .buffer import SampleBuffer
from .channel_weights import ChannelWeights
from .flows import ChannelFlows
from .integrand import Evaluation, Integrand
from .losses import LOSSES, per_channel_sum
from .result import NISResult, unweighting_efficiencies
from channels.multichannel import MultiChannelVegas
from channels.vegas_grid import VegasMap

FORMAT = "madnis_py.nis.Integrator/1"
#: multi-channel VEGAS warm-up: calls per adaptation iteration (at most MC_MAX_ITERATIONS, at least 2)
MC_ITERATION_CALLS = 4_000
MC_MAX_ITERATIONS = 10
MC_MIN_POINTS = 10
#: multi-channel VEGAS warm-up calls by default, as a fraction of the first training budget clipped to
#: [0.1, 0.4]; the flows then make up for the not yet converged grids (see "Training")
MC_WARMUP_CALLS = 30_000
#: flow-training calls from which the multi-channel defaults switch to learning rate 1e-3, batches of 1024
LARGE_FLOW_CALLS = 100_000
#: defensive shares (``flow_mixture``, ``grid_mixture``) by default with balance-heuristic α (``coordinates``):
#: the balance heuristic already bounds a point's weight by every channel that samples it, and the shares cost up to
#: m (1 + r) relative variance where the flows are good (see "Defensive mixture")
BALANCE_FLOW_MIXTURE = 0.01
BALANCE_GRID_MIXTURE = 0.005
#: ``qmc``: independently scrambled Sobol point sets per channel in integration and sampling
QMC_REPLICAS = 16


@dataclass
class TrainingHistory:
    """What one :meth:`Integrator.train` call did."""

    calls: int = 0
    vegas_calls: int = 0
    steps: int = 0
    #: (calls so far, validation relative variance (Σσ_c)²/I², learning rate) per epoch
    epochs: list[tuple[int, float, float]] = field(default_factory=list)
    vegas_rel_variance: float = math.nan
    best_rel_variance: float = math.nan
    stopped_early: bool = False
    dropped_channels: list[int] = field(default_factory=list)


class WeightedSample:
    """Weighted points from :meth:`Integrator.sample`; unpacks as ``x, w = sample``.

    ``x [n, d]``: the points handed to the integrand (in their channel's coordinates);
    ``weights [n]``: event weights W with ⟨W⟩ = Î; ``channel [n]``; ``alpha [n]``: α of the own channel (with
    the balance heuristic 0 where the integrand is 0: α is not evaluated there).
    """

    def __init__(self, x: Tensor, weights: Tensor, channel: Tensor, alpha: Tensor):
        self.x, self.weights, self.channel, self.alpha = x, weights, channel, alpha

    def __iter__(self):
        return iter((self.x, self.weights))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> Tensor:
        return (self.x, self.weights)[i]


class _Progress:
    """Throttled one-line progress reports on stderr (only for trainings longer than a few seconds)."""

    def __init__(self, enabled: bool | None, every: float = 3.0):
        self.enabled = enabled
        self.every = every
        self.t0 = self.last = time.perf_counter()

    def __call__(self, msg: str, final: bool = False) -> None:
        if self.enabled is False:
            return
        now = time.perf_counter()
        if self.enabled is None and now - self.t0 < self.every and not (final and now - self.t0 > self.every):
            return
        if final or now - self.last >= self.every or self.enabled is True:
            print(f"madnis_py: {msg} [{now - self.t0:.1f} s]", file=sys.stderr, flush=True)
            self.last = now


def _check_samplers(samplers: Sequence[int] | None, channels: int | None) -> list[int] | None:
    """``samplers``: for each channel the index of its sampler (flow + VEGAS grid), 0 … k_s − 1, each used."""
    if samplers is None:
        return None
    try:
        out = [int(v) for v in samplers]
    except (TypeError, ValueError):
        raise InputError(f"samplers must be a list of integers (one per channel), got {samplers!r}") from None
    if channels is None or len(out) != channels:
        raise InputError(f"samplers needs channels and one entry per channel ({channels}), got {len(out)}")
    if sorted(set(out)) != list(range(max(out) + 1)):
        raise InputError(f"samplers must use every index 0 … {max(out)} at least once, got {out}")
    return out


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class Integrator:
    """Neural importance sampling integrator over [0,1]^dims (see the module docstring).

    >>> integrator = Integrator(f, dims=4, seed=1)
    >>> integrator.train(calls=200_000)
    >>> result = integrator.integrate(calls=200_000)
    """

    def __init__(
        self,
        f: Callable,
        dims: int,
        *,
        channels: int | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        backend: str = "torch",
        madnis_order: bool = False,
        flow: bool = True,
        vegas_bins: int = 64,
        vegas_alpha: float = 1.0,
        vegas_iteration_calls: int = 10_000,
        warmup_fraction: float | None = None,
        warmup: str = "auto",
        flow_bins: int = 10,
        flow_hidden: int = 64,
        flow_layers: int = 2,
        flow_blocks: int = 1,
        spline: str = "own",
        learn_channel_weights: bool | None = None,
        shared_coordinates: bool = False,
        cw_hidden: int = 32,
        cw_layers: int = 2,
        cw_lr_factor: float = 1.0,
        cw_max_correction: float = 10.0,
        cw_prior_penalty: float = 1.0,
        cw_free_ratio: float = 3.0,
        loss: str = "auto",
        batch_size: int | None = None,
        buffered_steps: int = 10,
        buffer_capacity: int | None = None,
        learning_rate: float | None = None,
        final_lr_factor: float = 0.05,
        lr_backoff: float = 0.3,
        divergence_factor: float = 3.0,
        epochs: int = 10,
        patience: int = 3,
        uniform_channel_ratio: float = 0.1,
        flow_mixture: float | None = None,
        train_mixture: float | None = None,
        grid_mixture: float | None = None,
        train_grid_mixture: float | None = None,
        stratify: bool = True,
        qmc: bool | None = None,
        drop_threshold: float = 0.0,
        progress: bool | None = None,
        coordinates: Callable | None = None,
        samplers: Sequence[int] | None = None,
    ):
        self.dims = _check_int("dims", dims, 1)
        if channels is not None:
            _check_int("channels", channels, 1)
        samplers = _check_samplers(samplers, channels)
        if coordinates is not None and (channels is None or backend != "torch"):
            raise InputError("coordinates (balance-heuristic channel weights) need channels and the torch backend")
        if loss not in ("auto", *LOSSES):
            raise InputError(f"loss must be one of 'auto', {', '.join(map(repr, LOSSES))}; got {loss!r}")
        if warmup not in ("auto", "multichannel", "own"):
            raise InputError(f"warmup must be 'auto', 'multichannel' or 'own', got {warmup!r}")
        if warmup == "auto":
            warmup = "multichannel" if channels is not None else "own"
        if warmup_fraction is None and warmup == "own":
            warmup_fraction = 0.1
        # multi-channel warm start and None: chosen by the first train() from its budget (MC_WARMUP_CALLS)
        if warmup_fraction is not None and not 0.0 < warmup_fraction <= 1.0:
            raise InputError(f"warmup_fraction must be in (0, 1], got {warmup_fraction}")
        if not 0.0 < lr_backoff <= 1.0:
            raise InputError(f"lr_backoff must be in (0, 1], got {lr_backoff}")
        if not divergence_factor >= 1.0:
            raise InputError(f"divergence_factor must be >= 1, got {divergence_factor}")
        # learning_rate / batch_size None: chosen by the first train() from its budget (see "Training" above)
        if learning_rate is not None and not learning_rate > 0:
            raise InputError(f"learning_rate must be > 0, got {learning_rate}")
        balance = coordinates is not None  # balance-heuristic α at integration: smaller defensive shares
        if flow_mixture is None:
            flow_mixture = (BALANCE_FLOW_MIXTURE if balance else 0.05) if warmup == "multichannel" else 0.0
        if not 0.0 <= flow_mixture < 1.0:
            raise InputError(f"flow_mixture must be in [0, 1), got {flow_mixture}")
        if train_mixture is None:
            train_mixture = flow_mixture
        if not 0.0 <= train_mixture < 1.0:
            raise InputError(f"train_mixture must be in [0, 1), got {train_mixture}")
        if grid_mixture is None:
            grid_mixture = (BALANCE_GRID_MIXTURE if balance else 0.02) if warmup == "multichannel" else 0.0
        if not 0.0 <= grid_mixture < 1.0 or flow_mixture + grid_mixture >= 1.0 or train_mixture + grid_mixture >= 1.0:
            raise InputError(f"grid_mixture must be in [0, 1) with flow_mixture + grid_mixture < 1 and "
                             f"train_mixture + grid_mixture < 1, got {grid_mixture}")
        if train_grid_mixture is None:
            train_grid_mixture = 0.2 if warmup == "multichannel" and grid_mixture > 0 else grid_mixture
        if not 0.0 <= train_grid_mixture < 1.0 or train_mixture + train_grid_mixture >= 1.0:
            raise InputError(f"train_grid_mixture must be in [0, 1) with train_mixture + train_grid_mixture < 1, "
                             f"got {train_grid_mixture}")
        if qmc is None:  # randomised QMC integration by default with balance-heuristic α (see the module docstring)
            qmc = balance
        if not 0.0 <= uniform_channel_ratio <= 1.0:
            raise InputError(f"uniform_channel_ratio must be in [0, 1], got {uniform_channel_ratio}")
        self.config = dict(
            dims=dims, channels=channels, seed=int(seed), backend=backend, madnis_order=madnis_order, flow=flow,
            vegas_bins=_check_int("vegas_bins", vegas_bins, 1), vegas_alpha=float(vegas_alpha),
            vegas_iteration_calls=_check_int("vegas_iteration_calls", vegas_iteration_calls, 10),
            warmup_fraction=None if warmup_fraction is None else float(warmup_fraction), warmup=warmup,
            flow_bins=_check_int("flow_bins", flow_bins, 1),
            flow_hidden=_check_int("flow_hidden", flow_hidden, 1), flow_layers=_check_int("flow_layers", flow_layers, 0),
            flow_blocks=_check_int("flow_blocks", flow_blocks, 1), spline=spline,
            learn_channel_weights=None if learn_channel_weights is None else bool(learn_channel_weights),
            shared_coordinates=shared_coordinates,
            cw_hidden=cw_hidden, cw_layers=cw_layers, cw_lr_factor=float(cw_lr_factor),
            cw_max_correction=float(cw_max_correction), cw_prior_penalty=float(cw_prior_penalty),
            cw_free_ratio=float(cw_free_ratio), loss=loss,
            batch_size=None if batch_size is None else _check_int("batch_size", batch_size, 2),
            buffered_steps=_check_int("buffered_steps", buffered_steps, 0), buffer_capacity=buffer_capacity,
            learning_rate=None if learning_rate is None else float(learning_rate), final_lr_factor=float(final_lr_factor),
            lr_backoff=float(lr_backoff), divergence_factor=float(divergence_factor),
            epochs=_check_int("epochs", epochs, 1), patience=_check_int("patience", patience, 1),
            uniform_channel_ratio=float(uniform_channel_ratio), drop_threshold=float(drop_threshold),
            flow_mixture=float(flow_mixture), train_mixture=float(train_mixture), grid_mixture=float(grid_mixture),
            train_grid_mixture=float(train_grid_mixture),
            stratify=bool(stratify), qmc=bool(qmc), samplers=samplers,
        )
        self.device = torch.device(device)
        self.multi = channels is not None
        self.k = channels if channels is not None else 1
        #: channel -> its sampler (flow + VEGAS grid); channels sharing one are tied (``samplers``)
        self._samplers = samplers if samplers is not None else list(range(self.k))
        self.k_s = max(self._samplers) + 1
        self._sampler = torch.tensor(self._samplers, dtype=torch.long, device=self.device)
        self._members: list[list[int]] = [[] for _ in range(self.k_s)]
        for c, s_ in enumerate(self._samplers):
            self._members[s_].append(c)
        self.progress = progress
        self.coordinates = coordinates
        self.integrand = Integrand(f, dims, channels, backend, self.device, madnis_order)
        self.gen = torch.Generator(device=self.device).manual_seed(int(seed))
        init_gen = torch.Generator().manual_seed(int(seed) + 7919)
        self.vegas = VegasMap(dims, vegas_bins, self.k_s, self.device)
        self.flows = ChannelFlows(dims, self.k_s, init_gen, bins=flow_bins, hidden=flow_hidden, layers=flow_layers,
                                  blocks=flow_blocks, spline=spline).to(self.device)
        self.cw: ChannelWeights | None = None  # built at the first evaluation (feature count known then)
        self.active = torch.ones(self.k, dtype=torch.bool, device=self.device)
        self.chan_mean = torch.full((self.k,), math.nan, dtype=torch.float64, device=self.device)
        self.chan_var = torch.full((self.k,), math.nan, dtype=torch.float64, device=self.device)
        self.training_calls = 0
        self.last_event_weights: Tensor | None = None
        self.warmed = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.buffer = SampleBuffer(0)  # sized by _training_defaults (32 batches unless buffer_capacity is given)
        self.loss_name = loss if loss != "auto" else "l3"
        self.loss_fn = LOSSES[self.loss_name]

    # ------------------------------------------------------------------ small helpers
    @property
    def total_calls(self) -> int:
        """Integrand calls so far: warm-up, training, integration and sampling."""
        return self.integrand.calls

    def _rand(self, n: int) -> Tensor:
        return torch.rand(n, self.dims, generator=self.gen, dtype=torch.float64, device=self.device)

    def _features(self, ev: Evaluation, x: Tensor) -> Tensor | None:
        if ev.features is not None:
            return ev.features
        if self.config["shared_coordinates"]:
            return x
        if ev.prior is not None:
            p = ev.prior / ev.prior.sum(dim=1, keepdim=True).clamp_min(1e-300)
            return torch.log(p.clamp_min(1e-6))
        return None

    def _ensure_cw(self, feats: Tensor | None) -> None:
        if self.cw is not None or not self.multi:
            return
        m = 0
        if self.config["learn_channel_weights"] and self.k > 1 and feats is not None:
            m = feats.shape[1]
        self.cw = self._build_cw(m)

    def _build_cw(self, n_features: int) -> ChannelWeights:
        """The channel-weight model (network on ``n_features`` inputs; 0: prior only), seeded from the config."""
        gen = torch.Generator().manual_seed(self.config["seed"] + 104729)
        return ChannelWeights(self.k, n_features, self.config["cw_hidden"], self.config["cw_layers"], gen,
                              self.config["cw_max_correction"]).to(self.device)

    def _alpha(self, prior: Tensor | None, feats: Tensor | None, channel: Tensor) -> Tensor:
        """α of each point's own channel ``[n]`` (float64, differentiable w.r.t. the network)."""
        if not self.multi:
            return torch.ones(channel.shape[0], dtype=torch.float64, device=self.device)
        return self._alphas(prior, feats, channel.shape[0]).gather(1, channel[:, None])[:, 0]

    def _alphas(self, prior: Tensor | None, feats: Tensor | None, n: int) -> Tensor:
        """α of every channel ``[n, k]`` (multi-channel only; differentiable w.r.t. the network)."""
        return self.cw(prior, feats if self.cw.net is not None else None, self.active, n=n)

    def _mix(self, log_q_flow: Tensor, log_qv: Tensor, mix: float | None = None, gmix: float | None = None) -> Tensor:
        """log of the sampling density in the flow's u-space: (1 − m − m_g) q_flow(u) + m + m_g / q_vegas(x(u))
        (m = ``flow_mixture``, m_g = ``grid_mixture`` unless given; x uniform has u-density 1 / q_vegas)."""
        mix = self.config["flow_mixture"] if mix is None else mix
        gmix = self.config["grid_mixture"] if gmix is None else gmix
        if mix <= 0 and gmix <= 0:
            return log_q_flow
        terms = [log_q_flow + math.log1p(-mix - gmix)]
        if mix > 0:
            terms.append(torch.full_like(log_q_flow, math.log(mix)))
        if gmix > 0:
            terms.append(math.log(gmix) - log_qv)
        return torch.logsumexp(torch.stack(terms), dim=0)

    def _draw(self, channel: Tensor, use_flow: bool, r: Tensor | None = None, mix: float | None = None,
              gmix: float | None = None, balance_pi: Tensor | None = None) -> dict:
        """Sample points of the given channels (from the uniform ``r``, fresh if None), evaluate the integrand;
        returns everything the losses need.  With the flows, a share ``mix`` of the points takes u = r (VEGAS
        map alone) and a share ``gmix`` (default ``grid_mixture``) takes x = r (the channel's analytic mapping
        alone).  ``balance_pi`` (channel shares of the sample): α from the balance heuristic (``_balance_alpha``),
        evaluated only where the integrand is non-zero (every channel's inverse map and flow per point; the
        cut-failing points of e+ e- > u u~ g g are a third of them)."""
        r = self._rand(channel.shape[0]) if r is None else r
        with torch.no_grad():
            if use_flow:
                smp = self._sampler[channel]
                u, log_qf = self.flows(r, smp)
                mix = self.config["flow_mixture"] if mix is None else mix
                gmix = self.config["grid_mixture"] if gmix is None else gmix
                if mix > 0 or gmix > 0:  # defensive shares: these points bypass the flow (and the grid)
                    v = torch.rand(r.shape[0], generator=self.gen, dtype=torch.float64, device=self.device)
                    pick_u, pick_x = v < mix, (v >= mix) & (v < mix + gmix)
                    pick = pick_u | pick_x
                    if bool(pick.any()):
                        u = torch.where(pick_u[:, None], r, u)
                        if bool(pick_x.any()):
                            u[pick_x] = self.vegas.inverse(r[pick_x], smp[pick_x])[0]
                        log_qf = log_qf.clone()
                        log_qf[pick] = self.flows.inverse(u[pick], smp[pick])[1]
            else:
                u, log_qf = r, torch.zeros(r.shape[0], dtype=torch.float64, device=self.device)
            x, log_qv = self.vegas.forward(u, self._sampler[channel])
            log_qflow = log_qf
            if use_flow:
                log_qf = self._mix(log_qf, log_qv, mix, gmix)
        ev = self.integrand(x, channel if self.multi else None)
        feats = self._features(ev, x)
        self._ensure_cw(feats)
        g = ev.weight * torch.exp(-log_qv)
        with torch.no_grad():
            if balance_pi is None:
                a = self._alpha(ev.prior, feats, channel)
            else:  # only where the integrand is non-zero (cut-failing points: w = 0 whatever α is; α = 0 there)
                a = torch.zeros_like(g)
                nz = (ev.weight != 0).nonzero()[:, 0]
                if nz.numel():
                    a[nz] = self._balance_alpha(x[nz], channel[nz], use_flow, balance_pi, mix, gmix,
                                                own_log_q=(log_qv + log_qf)[nz])
        w = a * g * torch.exp(-log_qf)
        return dict(u=u, x=x, channel=channel, g=g, log_qf=log_qf, log_qv=log_qv, prior=ev.prior, features=feats,
                    weight=ev.weight, alpha=a, w=w, log_qflow=log_qflow)

    def _balance_alpha(self, x: Tensor, channel: Tensor, use_flow: bool, pi: Tensor, mix: float | None,
                       gmix: float | None, own_log_q: Tensor | None = None) -> Tensor:
        """Balance-heuristic weight of each point's own channel, α_c(p) = π_c Q_c(p) / Σ_c' π_c' Q_c'(p): Q_c' is
        channel c''s full sampling density at the same point p (analytic map × VEGAS × flow with the defensive
        shares), from ``coordinates`` (every channel's inverse map), π the channel shares of the sample.  A
        function of p alone with Σ α = 1, so the estimate stays unbiased; for fixed samplers it is the α of least
        variance (Veach's balance heuristic; Kleiss–Pittau multi-channel weights).  ``own_log_q``: log of the own
        channel's VEGAS × flow density at the points, known from drawing them (its inverses are then skipped; equal
        to them up to rounding)."""
        x_all, log_g = self.coordinates(x, channel)
        x_all = x_all.to(device=self.device, dtype=torch.float64)
        log_g = log_g.to(device=self.device, dtype=torch.float64)
        log_q = torch.full_like(log_g, -math.inf)
        for c in range(self.k):
            if float(pi[c]) <= 0.0:
                continue
            need = torch.isfinite(log_g[:, c])
            if own_log_q is not None:
                need = need & (channel != c)
            idx = need.nonzero()[:, 0]
            if idx.numel() == 0:
                continue
            ch = torch.full((idx.numel(),), self._samplers[c], dtype=torch.long, device=self.device)
            u, log_qv = self.vegas.inverse(x_all[idx, c], ch)
            lq = log_g[idx, c] + log_qv
            if use_flow:
                lq = lq + self._mix(self.flows.inverse(u, ch)[1], log_qv, mix, gmix)
            log_q[idx, c] = lq
        if own_log_q is not None:
            rows = torch.arange(x.shape[0], device=self.device)
            log_q[rows, channel] = log_g[rows, channel] + own_log_q.to(log_q)
        lw = torch.log(pi.to(log_q))[None, :] + log_q
        own = lw.gather(1, channel[:, None])[:, 0]
        a = torch.exp(own - torch.logsumexp(lw, dim=1))
        return torch.where(torch.isfinite(a), a, torch.zeros_like(a))

    def _counts(self, n: int, mode: str, uniform_ratio: float) -> Tensor:
        """Samples per channel: ∝ σ_c ('variance') or |Î_c| ('mean'), plus a uniform share over active channels."""
        k_act = int(self.active.sum())
        score = self.chan_var.sqrt() if mode == "variance" else self.chan_mean.abs()
        score = torch.where(self.active & torch.isfinite(score), score, torch.zeros_like(score))
        if not float(score.sum()) > 0:
            share = self.active.to(torch.float64) / k_act
        else:
            share = (uniform_ratio * self.active.to(torch.float64) / k_act
                     + (1.0 - uniform_ratio) * score / score.sum())
        exact = share * n
        counts = torch.floor(exact).long()
        rest = n - int(counts.sum())
        if rest > 0:
            order = torch.argsort(exact - counts, descending=True)
            counts[order[:rest]] += 1
        # at least 2 points in every active channel (sample variance), taken from the largest
        need = torch.where(self.active, (2 - counts).clamp_min(0), torch.zeros_like(counts))
        while int(need.sum()) > 0 and n >= 2 * k_act:
            big = int(torch.argmax(counts))
            take = min(int(need.sum()), int(counts[big]) - 2)
            if take <= 0:
                break
            counts[big] -= take
            for c in torch.nonzero(need)[:, 0].tolist():
                give = min(int(need[c]), take)
                counts[c] += give
                need[c] -= give
                take -= give
        return counts

    def _channels(self, n: int, mode: str, uniform_ratio: float) -> tuple[Tensor, Tensor]:
        counts = self._counts(n, mode, uniform_ratio)
        return torch.repeat_interleave(torch.arange(self.k, device=self.device), counts), counts

    @staticmethod
    def _chan_stats(w: Tensor, channel: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Per group index ``channel`` in [0, k) (channels, or strata): mean, sample variance and count of ``w``."""
        n = torch.zeros(k, dtype=torch.float64, device=w.device).index_add(0, channel, torch.ones_like(w))
        s1 = torch.zeros_like(n).index_add(0, channel, w)
        mean = s1 / n.clamp_min(1.0)
        m2 = torch.zeros_like(n).index_add(0, channel, (w - mean[channel]) ** 2)
        var = m2 / (n - 1.0).clamp_min(1.0)
        return mean, var, n

    def _update_stats(self, w: Tensor, channel: Tensor, w_int: Tensor | None = None) -> float:
        """Store per-channel mean/variance of fresh weights; return the stratified relative variance.

        ``w`` are weights under the density the points were drawn from; ``w_int`` (if given) the same points'
        weights under the integration density q_int.  The variance is then the one of the integration,
        estimated by importance: E_int[w_int²] = E_draw[w_int² q_int / q_draw] = E_draw[w_int w]."""
        mean, var, n = self._chan_stats(w, channel, self.k)
        if w_int is not None:
            m2 = per_channel_sum(w_int * w, channel, self.k) / n.clamp_min(1.0)
            var = ((m2 - mean ** 2) * n / (n - 1.0).clamp_min(1.0)).clamp_min(0.0)
        seen = n > 1
        self.chan_mean = torch.where(seen, mean, self.chan_mean)
        self.chan_var = torch.where(seen, var, self.chan_var)
        return self._stored_rel_variance()

    def _drop_channels(self) -> list[int]:
        thr = self.config["drop_threshold"]
        if not self.multi or thr <= 0 or int(self.active.sum()) <= 1:
            return []
        contrib = torch.where(self.active, self.chan_mean.abs(), torch.zeros_like(self.chan_mean))
        if not torch.isfinite(contrib).all() or not float(contrib.sum()) > 0:
            return []
        rel = contrib / contrib.sum()
        order = torch.argsort(rel)
        cum = torch.cumsum(rel[order], 0)
        cand = [int(c) for c, s in zip(order.tolist(), cum.tolist()) if s < thr and bool(self.active[c])]
        cand = cand[: int(self.active.sum()) - 1]
        if cand:
            self.active[cand] = False
            self.buffer.filter(self.active)
        return cand

    def mapping(self, channel: int = 0) -> Chain:
        """Channel ``channel``'s map r → x as a :class:`channels.mapping.Mapping` (flow, then VEGAS grid)."""
        s = self._samplers[channel]
        return Chain(self.flows.flows[s], self.vegas.channel_map(s))

    # ------------------------------------------------------------------ training
    def _training_defaults(self, calls: int) -> None:
        """Fill in learning rate and batch size left at None from the first training budget ``calls``:
        after the multi-channel warm start with ≥ ``LARGE_FLOW_CALLS`` calls for the flows, 1e-3 and 1024
        (many steps: 1e-2 overshoots on processes), else 1e-2 and 512 (few steps: 1e-3 barely moves the
        flows — the two-peak toy with 4·10⁴ calls gained 1.2× over VEGAS instead of > 5×)."""
        cfg = self.config
        if cfg["warmup_fraction"] is None:
            cfg["warmup_fraction"] = max(0.1, min(0.4, MC_WARMUP_CALLS / calls))
        flow_calls = calls * (1.0 - cfg["warmup_fraction"]) if not self.warmed else calls
        large = cfg["warmup"] == "multichannel" and flow_calls >= LARGE_FLOW_CALLS
        if cfg["learning_rate"] is None:
            cfg["learning_rate"] = 1e-3 if large else 1e-2
        if cfg["batch_size"] is None:
            cfg["batch_size"] = 1024 if large else 512
        if cfg["learn_channel_weights"] is None:
            cfg["learn_channel_weights"] = large and cfg["train_grid_mixture"] > 0
        if self.buffer.capacity == 0 and self.buffer.size == 0:
            cap = cfg["buffer_capacity"] if cfg["buffer_capacity"] is not None else 32 * cfg["batch_size"]
            self.buffer = SampleBuffer(cap)

    def train(self, calls: int) -> TrainingHistory:
        """Spend at most ``calls`` integrand calls on training (VEGAS warm-up included on the first call)."""
        _check_int("calls", calls, 1)
        self._training_defaults(calls)
        hist = TrainingHistory()
        start = self.total_calls
        prog = _Progress(self.progress)
        flow = self.config["flow"]
        warm = calls if (not flow) else (int(calls * self.config["warmup_fraction"]) if not self.warmed else 0)
        if warm > 0:
            hist.vegas_rel_variance = self._vegas_phase(warm, hist, prog)
            self.warmed = True
        if flow and calls - (self.total_calls - start) >= self.config["batch_size"]:
            self._flow_phase(calls - (self.total_calls - start), hist, prog)
        hist.calls = self.total_calls - start
        self.training_calls += hist.calls
        prog(f"training done: {hist.calls} calls, {hist.steps} steps, "
             f"rel. variance {hist.best_rel_variance:.3g} (VEGAS {hist.vegas_rel_variance:.3g})", final=True)
        return hist

    def _vegas_phase(self, calls: int, hist: TrainingHistory, prog: _Progress) -> float:
        k_min = 2 * self.k * MC_MIN_POINTS  # MultiChannelVegas needs >= min_points per channel and iteration
        if self.config["warmup"] == "multichannel" and calls >= 3 * k_min:
            return self._multichannel_vegas_phase(calls, hist, prog)
        it_calls = max(min(self.config["vegas_iteration_calls"], calls), 2 * self.k)
        n_it = max(1, calls // it_calls)
        rel_var = math.nan
        last = None
        for it in range(n_it):
            n = calls - it * it_calls if it == n_it - 1 else it_calls
            ch, _ = self._channels(n, "variance", self.config["uniform_channel_ratio"] if it else 1.0)
            s = self._draw(ch, use_flow=False)
            self.vegas.add_training_data(s["u"], s["w"] ** 2, self._sampler[ch])
            rel_var = self._update_stats(s["w"], ch)
            if it == n_it - 1 and s["features"] is not None and self.cw is not None:
                self.cw.set_normalisation(s["features"])
            hist.dropped_channels += self._drop_channels()
            last = s
            self._adapt_ready_grids()
            prog(f"VEGAS warm-up iteration {it + 1}/{n_it}: rel. variance {rel_var:.3g}")
        hist.vegas_calls += calls
        if last is not None and self.config["flow"]:
            self._seed_buffer(last)
        hist.vegas_rel_variance = rel_var
        return rel_var

    def _mc_channel_f(self, x: Tensor, s: int) -> Tensor:
        """Channel integrand of :class:`MultiChannelVegas` for sampler ``s``: α_c(p) f_c(x) for the points ``x``
        (c = s without tied channels); with m tied channels each point goes to one of them at random with
        weight m α_c f_c, an unbiased estimate of Σ_{c of s} α_c f_c(x), which the shared grid adapts to."""
        members = self._members[s]
        n = x.shape[0]
        if len(members) == 1:
            ch = torch.full((n,), members[0], dtype=torch.long, device=self.device)
        else:
            pick = torch.randint(len(members), (n,), generator=self.gen, device=self.device)
            ch = torch.tensor(members, dtype=torch.long, device=self.device)[pick]
        ev = self.integrand(x, ch if self.multi else None)
        feats = self._features(ev, x)
        self._ensure_cw(feats)
        with torch.no_grad():
            return len(members) * self._alpha(ev.prior, feats, ch) * ev.weight

    def _multichannel_vegas_phase(self, calls: int, hist: TrainingHistory, prog: _Progress) -> float:
        """Warm start from the issue-5 baseline: :class:`channels.multichannel.MultiChannelVegas` (its grids,
        bins, damping, stratification, n_c ∝ σ_c allocation and adaptation rules) with all but the last
        ``calls / (iterations + 1)`` calls; its grids replace ours, so the identity flows reproduce its channels
        exactly.  The last share is one unstratified reference iteration of our own (flows off) with its channel
        allocation: it measures the validation reference (the same (Σσ_c)²/I² the flow epochs are compared with),
        sets the per-channel statistics and seeds the buffer."""
        n_it = max(2, min(MC_MAX_ITERATIONS, calls // MC_ITERATION_CALLS))
        per = calls // (n_it + 1)
        mc = MultiChannelVegas(self._mc_channel_f, self.dims, self.k_s, seed=self.config["seed"] + 15485863,
                               min_share=self.config["uniform_channel_ratio"], min_points=MC_MIN_POINTS,
                               device=self.device)
        res = mc.integrate(per * n_it, iterations=n_it, warmup_fraction=0.0)
        for i, (v, e) in enumerate(res.iteration_values):
            prog(f"multi-channel VEGAS warm-up iteration {i + 1}/{n_it}: {v:.6g} +- {e:.2g}")
        self.vegas = VegasMap(self.dims, mc.grid.bins, self.k_s, self.device, edges=mc.grid.edges.clone())
        # its allocation (σ_c: per-point spread in channel c) for the reference iteration; a sampler's m tied
        # channels share its value and spread (each ≈ 1/m of the sampler's weight m α_c f_c)
        m = torch.tensor([len(mb) for mb in self._members], dtype=torch.float64, device=self.device)[self._sampler]
        self.chan_var = (mc.sigma.to(self.device, torch.float64)[self._sampler] / m) ** 2
        self.chan_mean = torch.tensor(res.channel_values, dtype=torch.float64, device=self.device)[self._sampler] / m
        ch, _ = self._channels(max(calls - res.n_calls, 2 * self.k), "variance", self.config["uniform_channel_ratio"])
        s = self._draw(ch, use_flow=False)
        rel_var = self._update_stats(s["w"], ch)
        if s["features"] is not None and self.cw is not None:
            self.cw.set_normalisation(s["features"])
        hist.dropped_channels += self._drop_channels()
        prog(f"reference iteration (multi-channel VEGAS grids): rel. variance {rel_var:.3g}")
        hist.vegas_calls += res.n_calls + ch.shape[0]
        if self.config["flow"]:
            self._seed_buffer(s)
        hist.vegas_rel_variance = rel_var
        return rel_var

    def _adapt_ready_grids(self) -> None:
        """Adapt the VEGAS grids of channels with ≥ 16 points per bin pending; the others keep collecting.

        (Adapting a channel on a few dozen points collapses its grid onto them, and the regions it then
        hardly samples bias the estimate with underestimated errors — seen with 48 channels.)"""
        v = self.vegas
        ready = v.n_f[:, 0, :].sum(dim=-1) >= 16 * v.bins
        if not bool(ready.any()):
            return
        wait = ~ready
        kept_sum, kept_n = v.sum_f[wait].clone(), v.n_f[wait].clone()
        v.sum_f[wait] = 0.0
        v.n_f[wait] = 0.0
        v.adapt(self.config["vegas_alpha"])
        v.sum_f[wait] = kept_sum
        v.n_f[wait] = kept_n

    def _seed_buffer(self, s: dict) -> None:
        """Store warm-up samples, re-expressed in the final grid's u-space (importance-corrected)."""
        keep = self.active[s["channel"]]
        u, log_qv_new = self.vegas.inverse(s["x"][keep], self._sampler[s["channel"][keep]])
        g = s["weight"][keep] * torch.exp(-log_qv_new)
        log_q_sample = s["log_qv"][keep] - log_qv_new
        self.buffer.store(u=u, channel=s["channel"][keep], g=g, log_q_sample=log_q_sample, log_qv=log_qv_new,
                          prior=None if s["prior"] is None else s["prior"][keep],
                          features=None if s["features"] is None else s["features"][keep])

    def _parameters(self) -> list[torch.nn.Parameter]:
        params = list(self.flows.parameters())
        if self.cw is not None and self.cw.net is not None:
            params += list(self.cw.net.parameters())
        return params

    def _state(self) -> dict:
        """Snapshot of the model *and* the per-channel statistics/active set that were measured with it."""
        return {"flows": copy.deepcopy(self.flows.state_dict()),
                "cw": None if self.cw is None else copy.deepcopy(self.cw.state_dict()),
                "chan_mean": self.chan_mean.clone(), "chan_var": self.chan_var.clone(), "active": self.active.clone()}

    def _load_state(self, st: dict) -> None:
        self.flows.load_state_dict(st["flows"])
        if st["cw"] is not None and self.cw is not None:
            self.cw.load_state_dict(st["cw"])
        # the channel allocation of later sampling must follow the restored model, not the last epoch's
        self.chan_mean, self.chan_var = st["chan_mean"].clone(), st["chan_var"].clone()
        if not torch.equal(st["active"], self.active):
            self.active = st["active"].clone()

    def _step(self, b: dict, lr: float) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_factor", 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        log_q = self._mix(self.flows.inverse(b["u"], self._sampler[b["channel"]])[1], b["log_qv"])
        penalty = None
        if self.multi and self.cw.net is not None:
            alpha = self._alphas(b["prior"], b["features"], b["channel"].shape[0])
            a = alpha.gather(1, b["channel"][:, None])[:, 0]
            if self.config["cw_prior_penalty"] > 0:
                penalty = self._prior_penalty(alpha, b)
        else:
            with torch.no_grad():
                a = self._alpha(b["prior"], b["features"], b["channel"])
        loss = self.loss_fn(a * b["g"], log_q, b["log_q_sample"], b["channel"], self.k)
        if penalty is not None:
            loss = loss + self.config["cw_prior_penalty"] * penalty
        if not torch.isfinite(loss):
            return math.nan
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, 10.0, foreach=True)
        self.optimizer.step()
        return float(loss.detach())

    def _prior_penalty(self, alpha: Tensor, b: dict) -> Tensor:
        """Penalty on channel weights raised far above the prior, averaged over |f|:

            P = ∫ |f| Σ_c α_c^prior relu(α_c / α_c^prior − K)² / ∫ |f|   (K = ``cw_free_ratio``; ≥ 0),

        for K = 0 the χ² distance ∫|f| Σ_c α_c²/α_c^prior / ∫|f| − 1, the relative variance the channel weights
        would add if every channel sampled exactly its prior share α_c^prior |f|.  Estimated from each channel's
        own points with weights α_c^prior |f| / q_sample (the share its mapping is built for), so it is seen
        where the variance loss is blind: raising α_c where channel c hardly samples (α_c^prior small) costs
        (α_c / α_c^prior)² α_c^prior here, while the loss would only see it through rare huge weights.  Moderate
        reshaping (within K × the prior) is left to the variance loss."""
        ch = b["channel"]
        lp = self.cw.log_prior(b["prior"], ch.shape[0], self.active)
        prior = torch.exp(lp)
        free = self.config["cw_free_ratio"]
        if free > 0:  # only raises beyond `free` × the prior count: Σ_c α_c^prior relu(α_c/α_c^prior − K)²
            t = torch.where(prior > 0, alpha / prior.clamp_min(1e-300), torch.zeros_like(alpha))
            ratio = 1.0 + (prior * torch.relu(t - free) ** 2).sum(1)
        else:
            ratio = torch.where(prior > 0, alpha ** 2 / prior.clamp_min(1e-300), torch.zeros_like(alpha)).sum(1)
        v = prior.gather(1, ch[:, None])[:, 0] * (b["g"].abs() * torch.exp(-b["log_q_sample"]))
        v = torch.where(torch.isfinite(v), v, torch.zeros_like(v))
        n = per_channel_sum(torch.ones_like(v), ch, self.k).clamp_min(1.0)
        num = (per_channel_sum(v * ratio, ch, self.k) / n).sum()  # Σ_c of channel c's mean
        den = (per_channel_sum(v, ch, self.k) / n).sum()
        return num / den.clamp_min(1e-300) - 1.0

    def _flow_phase(self, calls: int, hist: TrainingHistory, prog: _Progress) -> None:
        cfg = self.config
        bs = cfg["batch_size"]
        if self.optimizer is None:
            groups = [{"params": list(self.flows.parameters())}]
            if self.cw is not None and self.cw.net is not None:
                groups.append({"params": list(self.cw.net.parameters()), "lr_factor": cfg["cw_lr_factor"]})
            try:  # the fused kernel: one update for all parameters (3x faster per step on CPU with 16 flows)
                self.optimizer = torch.optim.Adam(groups, lr=cfg["learning_rate"], fused=True)
            except (RuntimeError, TypeError, ValueError):
                self.optimizer = torch.optim.Adam(groups, lr=cfg["learning_rate"])
        n_fresh = calls // bs
        per_epoch = max(1, round(n_fresh / cfg["epochs"]))
        planned = n_fresh * (1 + cfg["buffered_steps"])
        lr0, lr1 = cfg["learning_rate"], cfg["learning_rate"] * cfg["final_lr_factor"]
        best_var = self._stored_rel_variance() if math.isnan(hist.vegas_rel_variance) else hist.vegas_rel_variance
        best_state = self._state()
        hist.best_rel_variance = best_var
        bad_epochs = 0
        lr_scale = 1.0  # × LR_BACKOFF after every epoch that did not improve (and the best state is restored)
        ep_w: list[Tensor] = []
        ep_wi: list[Tensor] = []  # the same points' weights under the integration density
        other_density = (cfg["train_mixture"], cfg["train_grid_mixture"]) != (cfg["flow_mixture"], cfg["grid_mixture"])
        ep_c: list[Tensor] = []
        step = 0

        def lr_at(step: int) -> float:  # cosine decay over the planned steps, times the back-off factor
            return lr_scale * (lr1 + 0.5 * (lr0 - lr1) * (1 + math.cos(math.pi * min(step / max(planned, 1), 1.0))))

        for i in range(n_fresh):
            ch, _ = self._channels(bs, "variance", cfg["uniform_channel_ratio"])
            s = self._draw(ch, use_flow=True, mix=cfg["train_mixture"], gmix=cfg["train_grid_mixture"])
            ep_w.append(s["w"])
            if other_density:
                ep_wi.append(s["alpha"] * s["g"] * torch.exp(-self._mix(s["log_qflow"], s["log_qv"])))
            ep_c.append(ch)
            fresh = dict(u=s["u"], channel=ch, g=s["g"], log_q_sample=s["log_qf"], log_qv=s["log_qv"],
                         prior=s["prior"], features=s["features"])
            lr = lr_at(step)
            self._step(fresh, lr)
            step += 1
            self.buffer.store(**fresh)
            for _ in range(cfg["buffered_steps"]):
                lr = lr_at(step)
                self._step(self.buffer.sample(bs, self.gen), lr)
                step += 1
            hist.steps = step
            if (i + 1) % per_epoch == 0 or i == n_fresh - 1:
                if i == n_fresh - 1 and (i + 1) % per_epoch and len(ep_w) < per_epoch / 2:
                    break  # a short last epoch is too noisy to validate on
                rel_var = self._update_stats(torch.cat(ep_w), torch.cat(ep_c),
                                             torch.cat(ep_wi) if other_density else None)
                ep_w, ep_wi, ep_c = [], [], []
                hist.epochs.append((self.total_calls, rel_var, lr))
                if rel_var < best_var:
                    best_var, best_state, bad_epochs = rel_var, self._state(), 0
                else:
                    bad_epochs += 1
                    if cfg["lr_backoff"] < 1.0 and rel_var > cfg["divergence_factor"] * best_var:
                        # the step size overshoots (seen on processes: the variance rises epoch by epoch at
                        # lr 1e-2): go back to the best state, forget Adam's moments, continue with smaller steps
                        self._load_state(best_state)
                        self.optimizer.state.clear()
                        lr_scale *= cfg["lr_backoff"]
                hist.dropped_channels += self._drop_channels()
                prog(f"flow training {100 * (i + 1) / n_fresh:3.0f}%: rel. variance {rel_var:.3g} "
                     f"(best {best_var:.3g}), lr {lr:.2g}")
                # no early stop in the first half: with many channels and few points each, the validation
                # variance (and the VEGAS reference) is noisy enough to stop a run that is still improving
                if bad_epochs >= cfg["patience"] and i + 1 >= n_fresh // 2:
                    hist.stopped_early = True
                    break
        self._load_state(best_state)
        hist.best_rel_variance = best_var

    def _stored_rel_variance(self) -> float:
        """(Σ_c σ_c)² / (Σ_c Î_c)² of the stored per-channel statistics of the active channels."""
        act = self.active & torch.isfinite(self.chan_var)
        total = float(self.chan_mean[act].sum())
        return math.inf if total == 0 else float(self.chan_var[act].sqrt().sum()) ** 2 / total ** 2

    # ------------------------------------------------------------------ integration and sampling
    def _strata(self, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stratified uniform numbers for a channel-sorted sample with ``counts [k]`` points per channel.

        Channel c's r-cube is cut into M_c = m_c^d equal cubes, m_c the largest integer with 2 m_c^d ≤ n_c
        (``stratify=False``: m_c = 1); every cube gets ⌊n_c/M_c⌋ points, the remainder goes to randomly
        chosen cubes (fixed before sampling, as in :class:`channels.multichannel.MultiChannelVegas`).
        ``qmc``: instead, M_c = min(``QMC_REPLICAS``, n_c) independently scrambled Sobol point sets of ≈ n_c/M_c
        points each play the strata.  Returns (r [n, d], global stratum index [n], M of each point's channel [n])."""
        d = self.dims
        rs, hs, ms = [], [], []
        offset = 0
        for c, n_c in enumerate(counts.tolist()):
            if n_c == 0:
                continue
            if self.config["qmc"]:  # replicas of scrambled Sobol points play the strata (see _run for the error)
                reps = min(QMC_REPLICAS, n_c)
                sizes = [n_c // reps + (1 if j < n_c % reps else 0) for j in range(reps)]
                # all seeds in one draw (one host sync; on CPU the same numbers as one draw each)
                seeds = torch.randint(0, 2 ** 31 - 1, (reps,), generator=self.gen, device=self.device).tolist()
                sets = [torch.quasirandom.SobolEngine(d, scramble=True, seed=s_).draw(size, dtype=torch.float64)
                        for s_, size in zip(seeds, sizes)]  # drawn on the CPU, moved in one copy
                rs.append(torch.cat(sets).to(self.device).clamp(1e-16, 1.0 - 1e-16))
                hs.append(offset + torch.repeat_interleave(
                    torch.arange(reps, device=self.device), torch.tensor(sizes, device=self.device)))
                ms.append(torch.full((n_c,), float(reps), dtype=torch.float64, device=self.device))
                offset += reps
                continue
            m = int((n_c / 2.0) ** (1.0 / d) + 1e-9) if self.config["stratify"] else 1
            while m > 1 and m ** d * 2 > n_c:
                m -= 1
            m = max(m, 1)
            big_m = m ** d
            per = n_c // big_m
            extra = torch.randperm(big_m, generator=self.gen, device=self.device)[:n_c - per * big_m]
            h = torch.cat([torch.arange(big_m, device=self.device).repeat(per), extra])
            r = self._rand(n_c)
            if big_m > 1:
                digits = torch.stack([(h // m ** j) % m for j in range(d)], dim=1).to(torch.float64)
                r = (digits + r) / m
            rs.append(r)
            hs.append(h + offset)
            ms.append(torch.full((n_c,), float(big_m), dtype=torch.float64, device=self.device))
            offset += big_m
        return torch.cat(rs), torch.cat(hs), torch.cat(ms)

    def _run(self, n: int, allocation: str, batch_size: int, keep: bool) -> dict:
        if allocation not in ("variance", "mean", "uniform"):
            raise InputError(f"allocation must be 'variance', 'mean' or 'uniform', got {allocation!r}")
        ratio = 1.0 if allocation == "uniform" else 0.05
        channel, counts = self._channels(n, "mean" if allocation == "mean" else "variance", ratio)
        use_flow = self.config["flow"] and self.warmed
        k = self.k
        r_all, h, big_m = self._strata(counts)
        ws, xs, als = [], [], []
        nonzero = 0
        pi = counts.to(torch.float64) / n if self.coordinates is not None else None
        for start in range(0, n, batch_size):
            ch = channel[start:start + batch_size]
            s = self._draw(ch, use_flow, r_all[start:start + batch_size], balance_pi=pi)
            nonzero += int((s["weight"] != 0).sum())
            ws.append(s["w"])
            if keep:
                xs.append(s["x"])
                als.append(s["alpha"])
        w = torch.cat(ws)
        # stratified estimator: Î_c = Σ_h mean_h / M_c, Var Î_c = Σ_h s_h² / (n_h M_c²) (M_c = 1: plain mean)
        n_s = int(h.max()) + 1
        mean_h, s2_h, n_h = self._chan_stats(w, h, n_s)  # per stratum: mean, sample variance, count
        var_h = s2_h / n_h.clamp_min(1.0)  # variance of mean_h
        m_h = torch.zeros_like(n_h).index_add_(0, h, big_m) / n_h.clamp_min(1.0)  # M of the stratum's channel
        ch_h = torch.zeros(n_s, dtype=torch.long, device=self.device).scatter_(0, h, channel)  # stratum's channel
        mean = torch.zeros(k, dtype=torch.float64, device=self.device).index_add_(0, ch_h, mean_h / m_h)
        if self.config["qmc"]:
            # M_c independent randomisations: Var Î_c = Σ_j (mean_j − Î_c)² / (M_c (M_c − 1))
            dev2 = (mean_h - mean[ch_h]) ** 2 / (m_h * (m_h - 1.0).clamp_min(1.0))
            err2 = torch.zeros_like(mean).index_add_(0, ch_h, dev2)
        else:
            err2 = torch.zeros_like(mean).index_add_(0, ch_h, var_h / m_h ** 2)
        event_w = w * n / (big_m * n_h[h])  # W = N / (M_c n_h) w, ⟨W⟩ = Î
        out = dict(value=float(mean.sum()), error=float(err2.sum().sqrt()), event_w=event_w, channel=channel,
                   mean=mean, err=err2.sqrt(), counts=counts, nonzero=nonzero)
        if keep:
            out["x"], out["alpha"] = torch.cat(xs), torch.cat(als)
        return out

    def integrate(self, calls: int, batch_size: int = 65_536, allocation: str = "variance") -> NISResult:
        """Integrate with ``calls`` fresh samples (never the training ones); see the module docstring."""
        _check_int("calls", calls, 2 * int(self.active.sum()))
        t0 = time.perf_counter()
        before = self.total_calls
        r = self._run(calls, allocation, batch_size, keep=False)
        self.last_event_weights = r["event_w"]  # event weights W of this integration (⟨W⟩ = value)
        strict, partial, w_ref = unweighting_efficiencies(r["event_w"])
        return NISResult(
            value=r["value"], error=r["error"], n_calls=self.total_calls - before,
            unweighting_efficiency=strict, partial_unweighting_efficiency=partial, reference_weight=w_ref,
            max_weight=float(r["event_w"].abs().max()), training_calls=self.training_calls,
            total_calls=self.total_calls, n_nonzero=r["nonzero"], wall_time_s=time.perf_counter() - t0,
            channel_values=r["mean"].tolist(), channel_errors=r["err"].tolist(), channel_calls=r["counts"].tolist(),
        )

    def sample(self, n: int, batch_size: int = 65_536, allocation: str = "variance") -> WeightedSample:
        """``n`` fresh weighted points: ``x, w = integrator.sample(n)`` (also ``.channel``, ``.alpha``)."""
        _check_int("n", n, 2 * int(self.active.sum()))
        r = self._run(n, allocation, batch_size, keep=True)
        return WeightedSample(r["x"], r["event_w"], r["channel"], r["alpha"])

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Checkpoint grids, flows, channel weights and statistics (loadable with ``weights_only=True``)."""
        torch.save({
            "format": FORMAT,
            "config": dict(self.config),
            "vegas_edges": self.vegas.edges.cpu(),
            "flows": {k: v.cpu() for k, v in self.flows.state_dict().items()},
            "cw_features": None if self.cw is None else self.cw.n_features,
            "cw": None if self.cw is None else {k: v.cpu() for k, v in self.cw.state_dict().items()},
            "active": self.active.cpu(),
            "chan_mean": self.chan_mean.cpu(),
            "chan_var": self.chan_var.cpu(),
            "training_calls": self.training_calls,
            "total_calls": self.total_calls,
            "warmed": self.warmed,
            "rng_state": self.gen.get_state().cpu(),
            "rng_device": self.device.type,
        }, path)

    @classmethod
    def load(cls, path, f: Callable, device: torch.device | str = "cpu", **overrides) -> "Integrator":
        """Rebuild a saved integrator around the integrand ``f`` (``overrides``: e.g. ``progress``, ``backend``)."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{path} is not a madnis_py integrator checkpoint")
        cfg = dict(data["config"])
        progress = overrides.pop("progress", None)
        coordinates = overrides.pop("coordinates", None)
        cfg.update(overrides)
        dims, channels = cfg.pop("dims"), cfg.pop("channels")
        obj = cls(f, dims, channels=channels, device=device, progress=progress, coordinates=coordinates, **cfg)
        edges = data["vegas_edges"].to(obj.device, torch.float64)
        obj.vegas = VegasMap(obj.dims, edges.shape[-1] - 1, obj.k_s, obj.device, edges=edges)
        obj.flows.load_state_dict(data["flows"])
        if data["cw"] is not None:
            obj.cw = obj._build_cw(data["cw_features"])
            obj.cw.load_state_dict(data["cw"])
        obj.active = data["active"].to(obj.device)
        obj.chan_mean = data["chan_mean"].to(obj.device)
        obj.chan_var = data["chan_var"].to(obj.device)
        obj.training_calls = int(data["training_calls"])
        obj.integrand.calls = int(data["total_calls"])
        obj.warmed = bool(data["warmed"])
        if data.get("rng_device") == obj.device.type:
            obj.gen.set_state(data["rng_state"])
        return obj

    def __repr__(self) -> str:
        return (f"Integrator(dims={self.dims}, channels={self.config['channels']}, active={int(self.active.sum())}, "
                f"flow={self.config['flow']}, total_calls={self.total_calls})")
