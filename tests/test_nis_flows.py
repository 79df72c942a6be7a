"""Spline coupling flows of madnis_py.nis: bijection, exact log-det, normalised density, identity warm start."""
from __future__ import annotations

import math

import pytest
import torch

from madnis_py.nis import Integrator, SplineFlow
from madnis_py.nis.splines import rq_spline


def _random_flow(dims: int, seed: int, scale: float = 0.3, **kw) -> SplineFlow:
    """A flow with all parameters (including the zero-initialised output layers) randomised.

    scale 0.3 already gives densities between e^-7 and e^16 in 5 dimensions (far steeper than trained
    flows); much larger random scales make the inverse ill-conditioned in float64 itself.
    """
    g = torch.Generator().manual_seed(seed)
    flow = SplineFlow(dims, generator=g, **kw)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return flow


@pytest.mark.parametrize("dims", [1, 2, 5])
def test_flow_is_a_bijection(dims: int) -> None:
    flow = _random_flow(dims, seed=dims)
    r = torch.rand(2000, dims, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        u, log_q = flow.forward(r)
        r2, log_q2 = flow.inverse(u)
    assert u.dtype == torch.float64 and bool(((u >= 0) & (u <= 1)).all())
    assert not torch.allclose(u, r, atol=1e-3)  # the flow is not the identity
    assert torch.allclose(r2, r, atol=1e-9, rtol=0)
    assert torch.allclose(log_q2, log_q, atol=1e-8, rtol=0)


def test_log_density_equals_autograd_jacobian() -> None:
    dims = 4
    flow = _random_flow(dims, seed=11).double()  # float64 conditioners: autograd through them is exact too
    r = torch.rand(6, dims, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        _, log_q = flow.forward(r)
    for i in range(r.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda z: flow.forward(z[None])[0][0], r[i])
        log_det = torch.linalg.slogdet(jac).logabsdet
        assert float(-log_det) == pytest.approx(float(log_q[i]), abs=1e-9)


def test_flow_density_is_normalised() -> None:
    """∫ q(u) du = 1 by plain MC with uniform u, and E_q[1/q] = 1 with u drawn from the flow (4σ)."""
    dims = 3
    flow = _random_flow(dims, seed=5, scale=0.25)
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(200_000, dims, generator=gen, dtype=torch.float64)
    r = torch.rand(200_000, dims, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        q = torch.exp(flow.inverse(u)[1])
        inv_q = torch.exp(-flow.forward(r)[1])
    assert q.std() > 0.3  # a non-trivial density
    for v in (q, inv_q):
        mean, err = float(v.mean()), float(v.std() / math.sqrt(v.numel()))
        assert abs(mean - 1.0) < 4 * err
    # a wrongly normalised density fails: q scaled by 1.05
    assert abs(float((1.05 * q).mean()) - 1.0) > 4 * float(q.std() / math.sqrt(q.numel()))


def test_spline_zero_parameters_is_identity() -> None:
    x = torch.rand(100, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for inverse in (False, True):
        y, ld = rq_spline(x, torch.zeros(100, 3, 31), inverse=inverse)
        assert torch.equal(y, x)
        assert torch.equal(ld, torch.zeros_like(ld))


def test_untrained_flow_reproduces_the_vegas_map() -> None:
    """Warm start: after the VEGAS warm-up the (untrained) flow + grid map equals the grid map."""
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((x - 0.3) ** 2).sum(1) / 0.02)

    integ = Integrator(f, dims=3, seed=3, warmup_fraction=1.0, flow=True, progress=False)
    integ.train(calls=30_000)
    edges = integ.vegas.edges[0]
    assert not torch.allclose(edges, torch.linspace(0, 1, edges.shape[-1], dtype=torch.float64))  # adapted
    r = torch.rand(5000, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    with torch.no_grad():
        x_chain, lq_chain = integ.mapping(0).forward(r)
    x_vegas, lq_vegas = integ.vegas.channel_map(0).forward(r)
    assert torch.equal(x_chain, x_vegas)
    assert torch.equal(lq_chain, lq_vegas)


def test_channel_flows_batched_dispatch_equals_per_channel_flows() -> None:
    """A mixed-channel batch (splines run once over all points) gives each channel's own flow, to float32 rounding."""
    from madnis_py.nis import ChannelFlows

    g = torch.Generator().manual_seed(1)
    cf = ChannelFlows(5, 4, g)
    with torch.no_grad():
        for p in cf.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    r = torch.rand(3000, 5, dtype=torch.float64, generator=g)
    ch = torch.randint(0, 4, (3000,), generator=g)
    with torch.no_grad():
        u, lq = cf(r, ch)
        r2, lq2 = cf.inverse(u, ch)
        for c in range(4):
            sel = ch == c
            u_c, lq_c = cf.flows[c].forward(r[sel])
            # the padded batched matmul and the per-channel Linear may take different float32 kernels: bit-equal on
            # AMD AVX2, 6e-7 (points) and 1.3e-5 (log q) apart on Intel AVX-512 MKL; a wrong channel is O(0.1) off
            assert torch.allclose(u_c, u[sel], atol=1e-5, rtol=0) and torch.allclose(lq_c, lq[sel], atol=1e-4, rtol=0)
    assert torch.allclose(r2, r, atol=1e-9, rtol=0) and torch.allclose(lq2, lq, atol=1e-8, rtol=0)
    # the per-channel conditioner path (used for large batches) gives the same points and densities
    cf.padded = False
    with torch.no_grad():
        u_loop, lq_loop = cf(r, ch)
    cf.padded = True
    assert torch.allclose(u_loop, u, atol=1e-6, rtol=0) and torch.allclose(lq_loop, lq, atol=1e-4, rtol=0)
    # gradients reach every channel's parameters that had points
    loss = cf.inverse(u, ch)[1].sum()
    loss.backward()
    for c in range(4):
        assert any(float(p.grad.abs().sum()) > 0 for p in cf.flows[c].parameters() if p.grad is not None)
