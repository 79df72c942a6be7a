"""Learned multi-channel weights on an analytic prior.

    α_i(p) = softmax_i( log α_i^prior(p) + NN_i(features(p)) ),   i over the active channels,

so Σ_i α_i = 1 at every point, inactive (dropped) channels get α_i = 0 (as do channels whose prior
is 0: log 0 = −inf), and with the network
output at zero (its last layer is zero-initialised) α equals the prior normalised to one
(uniform 1/k without a prior).  The network output is bounded, NN = B tanh(NN_raw / B) with
B = ``max_correction`` (default 2), so α_i changes by at most a factor e^{2B} relative to the
prior: a channel can never be given a large weight in a region its own mapping hardly samples
(where the training samples cannot see the resulting huge weights; unbounded corrections were
seen to run away there and bias the estimate with underestimated errors).  Prior rows that are all zero (or non-finite) are replaced by
the uniform prior over the active channels.  Softmax and α in float64, network in float32.

For the multi-channel estimator to be unbiased, the prior and the features must be functions
of the *physical* point p only, not of the channel it was sampled in (see ``integrator.py``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .flows import MLP


class ChannelWeights(nn.Module):
    """α = softmax(log α_prior + NN(features)) over the active channels."""

    def __init__(self, channels: int, features: int, hidden: int = 32, layers: int = 2,
                 generator: torch.Generator | None = None, max_correction: float = 2.0):
        super().__init__()
        self.max_correction = float(max_correction)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.channels = channels
        self.n_features = features
        self.net = MLP(features, channels, hidden, layers, generator) if features > 0 else None
        # feature standardisation, set once from warm-up samples (buffers: saved with the state)
        self.register_buffer("feat_mean", torch.zeros(max(features, 1)))
        self.register_buffer("feat_scale", torch.ones(max(features, 1)))

    def set_normalisation(self, features: Tensor) -> None:
        """Standardise features with the mean and standard deviation of a sample ``[n, m]``."""
        if self.net is None or features.shape[0] < 2:
            return
        f = features.to(torch.float64)
        f = f[torch.isfinite(f).all(dim=1)]
        if f.shape[0] < 2:
            return
        self.feat_mean.copy_(f.mean(0).to(self.feat_mean))
        self.feat_scale.copy_(f.std(0).clamp_min(1e-12).to(self.feat_scale))

    def log_prior(self, prior: Tensor | None, n: int, active: Tensor) -> Tensor:
        """log of the normalised prior over the active channels, ``[n, k]`` float64 (−inf when inactive)."""
        device = active.device
        if prior is None:
            lp = torch.zeros(n, self.channels, dtype=torch.float64, device=device)
        else:
            p = prior.to(torch.float64).clamp_min(0.0)
            p = torch.where(torch.isfinite(p), p, torch.zeros_like(p)) * active
            bad = ~(p.sum(dim=1, keepdim=True) > 0)
            p = torch.where(bad, active.to(p.dtype).expand_as(p), p)
            lp = torch.log(p)
        lp = lp.masked_fill(~active, float("-inf"))
        return lp - torch.logsumexp(lp, dim=1, keepdim=True)

    def network(self, features: Tensor | None) -> Tensor | None:
        """Raw network output ``[n, k]`` (float64) or None without network/features."""
        if self.net is None or features is None:
            return None
        dtype = self.net[0].weight.dtype
        z = (features.to(dtype) - self.feat_mean.to(dtype)) / self.feat_scale.to(dtype)
        out = self.net(z).to(torch.float64)
        if self.max_correction > 0:
            b = self.max_correction
            out = b * torch.tanh(out / b)
        return out

    def forward(self, prior: Tensor | None, features: Tensor | None, active: Tensor, n: int | None = None) -> Tensor:
        """Channel weights ``α [n, k]`` (float64); ``active``: bool ``[k]``."""
        if n is None:
            n = (prior if prior is not None else features).shape[0]
        logits = self.log_prior(prior, n, active)
        nn_out = self.network(features)
        if nn_out is not None:
            logits = logits + nn_out.masked_fill(~active, 0.0)
        return torch.softmax(logits, dim=1)
