"""channels.vegas_grid.VegasMap against the ``vegas`` package's AdaptiveMap (independent implementation)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vegas

from channels import VegasMap


def _training_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random((n, d))
    # a peaked, non-separable integrand squared (what VEGAS adapts to)
    f = np.exp(-((y - 0.3) ** 2).sum(axis=1) / 0.01) + 0.1 * y[:, 0] ** 3
    return y, f**2


@pytest.mark.parametrize("alpha", [0.5, 1.5])
def test_adapt_reproduces_vegas_edges(alpha: float) -> None:
    d, ninc = 3, 20
    ref = vegas.AdaptiveMap([[0.0, 1.0]] * d, ninc=ninc)
    mine = VegasMap(d, bins=ninc)
    for it in range(4):  # several rounds: the edges move away from uniform
        y, f = _training_data(5000, d, seed=it)
        ref.add_training_data(y, f)
        ref.adapt(alpha=alpha)
        mine.add_training_data(torch.from_numpy(y), torch.from_numpy(f))
        mine.adapt(alpha=alpha)
        grid = np.array([[ref.grid[j, i] for i in range(ninc + 1)] for j in range(d)])
        np.testing.assert_allclose(mine.edges[0].numpy(), grid, rtol=1e-10, atol=1e-12)
    # the grid really moved (the test is not comparing two uniform grids)
    assert np.abs(grid - np.linspace(0, 1, ninc + 1)).max() > 0.05


def test_forward_inverse_jacobian_match_vegas() -> None:
    d, ninc = 2, 16
    ref = vegas.AdaptiveMap([[0.0, 1.0]] * d, ninc=ninc)
    y, f = _training_data(4000, d, seed=7)
    ref.add_training_data(y, f)
    ref.adapt(alpha=0.5)
    grid = torch.tensor([[ref.grid[j, i] for i in range(ninc + 1)] for j in range(d)], dtype=torch.float64)
    mine = VegasMap(d, bins=ninc, edges=grid[None])
    u = np.random.default_rng(3).random((1000, d))
    x_ref = np.empty_like(u)
    jac_ref = np.empty(u.shape[0])
    ref.map(u, x_ref, jac_ref)
    x, log_q = mine.forward(torch.from_numpy(u))
    np.testing.assert_allclose(x.numpy(), x_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(torch.exp(-log_q).numpy(), jac_ref, rtol=1e-12)
    # inverse: back to u with the same density
    u_back, log_q_back = mine.inverse(x)
    np.testing.assert_allclose(u_back.numpy(), u, atol=1e-12)
    np.testing.assert_allclose(log_q_back.numpy(), log_q.numpy(), rtol=1e-12)
    y_ref = np.empty_like(x_ref)
    jac2 = np.empty(u.shape[0])
    ref.invmap(x_ref, y_ref, jac2)
    np.testing.assert_allclose(u_back.numpy(), y_ref, atol=1e-12)
    # Jacobian = numerical derivative of the separable map
    h = 1e-7
    num = np.ones(u.shape[0])
    for j in range(d):
        up, dn = u.copy(), u.copy()
        up[:, j] += h
        dn[:, j] -= h
        inside = (up[:, j] < 1) & (dn[:, j] > 0)
        xp, _ = mine.forward(torch.from_numpy(up))
        xm, _ = mine.forward(torch.from_numpy(dn))
        deriv = ((xp[:, j] - xm[:, j]) / (2 * h)).numpy()
        num = np.where(inside, num * deriv, np.nan)
    # skip points within h of an increment edge (the derivative jumps there)
    t = u * ninc
    interior = (np.abs(t - np.round(t)) > 1e-5).all(axis=1) & np.isfinite(num)
    np.testing.assert_allclose(num[interior], jac_ref[interior], rtol=1e-5)


def test_multichannel_rows_are_independent() -> None:
    """Batched channels: adapting with data in channel 1 leaves channel 0 untouched."""
    m = VegasMap(2, bins=8, channels=2)
    y, f = _training_data(2000, 2, seed=1)
    m.add_training_data(torch.from_numpy(y), torch.from_numpy(f), torch.ones(2000, dtype=torch.long))
    m.adapt()
    assert torch.allclose(m.edges[0], torch.linspace(0, 1, 9, dtype=torch.float64).expand(2, 9))
    assert not torch.allclose(m.edges[1], m.edges[0])


def test_non_finite_points_get_zero_weight_not_a_crash():
    """A NaN/inf row (e.g. from a broken flow) maps inside the cube with log q = +inf (weight f/q = 0)."""
    import torch
    from channels.vegas_grid import VegasMap

    m = VegasMap(dims=3, bins=8, channels=2)
    u = torch.tensor([[0.2, 0.5, 0.7], [float("nan"), 0.1, 0.2], [0.3, float("inf"), 0.4]], dtype=torch.float64)
    x, log_q = m.forward(u, torch.tensor([0, 1, 1]))
    assert torch.isfinite(x).all() and ((x >= 0) & (x <= 1)).all()
    assert torch.isfinite(log_q[0]) and torch.isinf(log_q[1:]).all() and (log_q[1:] > 0).all()
    assert torch.equal(torch.exp(-log_q[1:]), torch.zeros(2, dtype=torch.float64))
