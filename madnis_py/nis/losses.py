"""Training losses for importance sampling with samples drawn from an *older* density.

Every loss takes, for a batch of stored samples u_s with channel c_s,

* ``f``: the target integrand α_c(u) g_c(u) (float64; may carry gradients through α),
* ``log_q``: log of the current (trainable) density q_θ(u) of the sample's channel,
* ``log_q_sample``: log of the density the sample was actually drawn from (fixed),

and corrects for the mismatch with the importance ratio q_θ / q_sample, so buffered samples
from earlier stages of training give unbiased estimates (Müller et al. 2019; MadNIS,
Heimel et al. arXiv:2212.06172, 2311.01548).

Per channel, with weights w = f / q_θ:

* variance:  σ²_c = E_qθ[(w − I_c)²] estimated as mean((f/q_θ − Î_c)² q_θ/q_s),  Î_c = mean(f/q_s);
* KL:        KL(|f|/I_c ‖ q_θ) up to constants = −mean(|f|/q_s · log q_θ) / mean(|f|/q_s)
             (target detached: the KL loss trains flows, not channel weights).

Multi-channel variance loss (stratified; n_c ∝ σ_c is the optimal allocation, for which the
variance of the total estimate is (Σ_c σ_c)² / N):

    L = (Σ_c σ_c)² / (Σ_c |Î_c|)².

It trains flows and channel weights jointly.  All losses are normalised to be dimensionless.

Tail-weighted variant (``"l3"``, the default of :class:`~madnis_py.nis.Integrator`): σ_c replaced by the third absolute central moment's root
s_c = (E_qθ|w − I_c|³)^(1/3), estimated as mean(|f/q_θ − Î_c|³ q_θ/q_s)^(1/3); L = (Σ_c s_c)² / (Σ_c |Î_c|)².
Its gradient weighs a point by |w − I|³ instead of (w − I)², so the rare largest weights — which set the strict
unweighting efficiency — pull the flow harder.  Zero where q ∝ f, like the variance.
"""
from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-30


def per_channel_sum(values: Tensor, channel: Tensor, k: int) -> Tensor:
    """Σ of ``values [n]`` per group index ``channel [n]`` in [0, k) → ``[k]`` (differentiable)."""
    return torch.zeros(k, dtype=values.dtype, device=values.device).index_add(0, channel, values)


def channel_moments(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor, k: int, power: int = 2
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """Importance-corrected per-channel (E_qθ|w − I_c|^power, Î_c, n_c); differentiable in ``f`` and ``log_q``."""
    n = per_channel_sum(torch.ones_like(f), channel, k)
    inv_qs = torch.exp(-log_q_sample)
    mean = per_channel_sum(f * inv_qs, channel, k) / n.clamp_min(1.0)
    ratio = torch.exp(log_q - log_q_sample)
    dev = f * torch.exp(-log_q) - mean[channel]
    dev = dev ** 2 if power == 2 else dev.abs() ** power
    return per_channel_sum(dev * ratio, channel, k) / n.clamp_min(1.0), mean, n


def channel_variances(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor, k: int
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Importance-corrected per-channel (σ²_c, Î_c, n_c); differentiable in ``f`` and ``log_q``."""
    return channel_moments(f, log_q, log_q_sample, channel, k)


def variance_loss(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor | None = None,
                  k: int = 1) -> Tensor:
    """Σ_c σ²_c / (Σ_c |Î_c|)²: the (non-stratified) relative variance; single channel: σ²/I²."""
    channel = torch.zeros_like(f, dtype=torch.long) if channel is None else channel
    var, mean, _ = channel_variances(f, log_q, log_q_sample, channel, k)
    return var.sum() / (mean.detach().abs().sum() ** 2 + EPS)


def _stratified_moment_loss(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor | None, k: int,
                            power: int) -> Tensor:
    """(Σ_c s_c)² / (Σ_c |Î_c|)², s_c = (E_qθ|w − I_c|^power)^(1/power) (power 2: σ_c)."""
    channel = torch.zeros_like(f, dtype=torch.long) if channel is None else channel
    m, mean, n = channel_moments(f, log_q, log_q_sample, channel, k, power=power)
    root = torch.sqrt(m + EPS) if power == 2 else (m + EPS) ** (1.0 / power)
    s = root * (n > 0)
    return s.sum() ** 2 / (mean.detach().abs().sum() ** 2 + EPS)


def stratified_variance_loss(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor | None = None,
                             k: int = 1) -> Tensor:
    """(Σ_c σ_c)² / (Σ_c |Î_c|)²: multi-channel variance at optimal stratification."""
    return _stratified_moment_loss(f, log_q, log_q_sample, channel, k, 2)


def stratified_l3_loss(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor | None = None,
                       k: int = 1) -> Tensor:
    """(Σ_c s_c)² / (Σ_c |Î_c|)², s_c = mean_c(|f/q_θ − Î_c|³ q_θ/q_s)^(1/3) (module docstring)."""
    return _stratified_moment_loss(f, log_q, log_q_sample, channel, k, 3)


def kl_loss(f: Tensor, log_q: Tensor, log_q_sample: Tensor, channel: Tensor | None = None, k: int = 1) -> Tensor:
    """Σ_c −mean_c(|f|/q_s log q_θ)/mean_c(|f|/q_s), each channel's target normalised (f detached)."""
    channel = torch.zeros_like(f, dtype=torch.long) if channel is None else channel
    w = f.detach().abs() * torch.exp(-log_q_sample)
    norm = per_channel_sum(w, channel, k)
    per = per_channel_sum(-w * log_q, channel, k)
    return (per / norm.clamp_min(EPS)).sum()


LOSSES = {"variance": stratified_variance_loss, "kl": kl_loss, "plain_variance": variance_loss,
          "l3": stratified_l3_loss}
