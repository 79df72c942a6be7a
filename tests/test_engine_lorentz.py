"""HELAS-style building blocks against dense Dirac matrices (Weyl basis) and textbook identities."""

import pytest
import torch

from matrix_elements import lorentz as L

C = torch.complex128
S = [torch.eye(2, dtype=C), torch.tensor([[0, 1], [1, 0]], dtype=C),
     torch.tensor([[0, -1j], [1j, 0]], dtype=C), torch.tensor([[1, 0], [0, -1]], dtype=C)]
SB = [S[0], -S[1], -S[2], -S[3]]
Z2 = torch.zeros(2, 2, dtype=C)
GAMMA = [torch.cat([torch.cat([Z2, S[m]], 1), torch.cat([SB[m], Z2], 1)], 0) for m in range(4)]
METRIC = [1.0, -1.0, -1.0, -1.0]
PL = torch.diag(torch.tensor([1, 1, 0, 0], dtype=C))
PR = torch.diag(torch.tensor([0, 0, 1, 1], dtype=C))
EYE = torch.eye(4, dtype=C)


def slash(v):
    return sum(METRIC[m] * v[m] * GAMMA[m] for m in range(4))


def comps(x):
    return [x[i].reshape(1) for i in range(x.shape[0])]


def vec(xs):
    return torch.stack([x.reshape(()) for x in xs])


@pytest.fixture
def rnd():
    g = torch.Generator().manual_seed(0)
    return lambda *s: torch.complex(torch.randn(*s, generator=g, dtype=torch.float64),
                                    torch.randn(*s, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("cl,cr", [(0.3 + 0.1j, -0.7 + 0.2j), (0.0, 1.1j), (0.4j, 0.0)])
def test_ffv_all_slots(rnd, cl, cr):
    fb, f, v = rnd(4), rnd(4), rnd(4)
    gam = [GAMMA[m] @ (cl * PL + cr * PR) for m in range(4)]
    vl = sum(METRIC[m] * v[m] * gam[m] for m in range(4))
    wfs = [comps(fb), comps(f), comps(v)]
    assert torch.allclose(vec(L.ffv(wfs, 2, cl, cr)), torch.stack([fb @ gam[m] @ f for m in range(4)]))
    assert torch.allclose(vec(L.ffv(wfs, 0, cl, cr)), vl @ f)
    assert torch.allclose(vec(L.ffv(wfs, 1, cl, cr)), fb @ vl)


def test_ffs_all_slots(rnd):
    fb, f, s = rnd(4), rnd(4), rnd(1)
    cl, cr = 0.2 - 0.3j, 1.5j
    m = cl * PL + cr * PR
    wfs = [comps(fb), comps(f), comps(s)]
    assert torch.allclose(vec(L.ffs(wfs, 2, cl, cr)), (fb @ m @ f).reshape(1))
    assert torch.allclose(vec(L.ffs(wfs, 0, cl, cr)), s * (m @ f))
    assert torch.allclose(vec(L.ffs(wfs, 1, cl, cr)), s * (fb @ m))


def test_fermion_propagators(rnd):
    f, fb = rnd(4), rnd(4)
    p = torch.randn(4, dtype=torch.float64)
    m, w = 1.3, 0.2
    den = p[0] ** 2 - (p[1:] ** 2).sum() - m * m + 1j * m * w
    num = slash(p.to(C)) + m * EYE
    pl = comps(p)
    assert torch.allclose(vec(L.fermion_propagator("psi", comps(f), pl, m, w)), 1j * num @ f / den)
    assert torch.allclose(vec(L.fermion_propagator("psibar", comps(fb), pl, m, w)), 1j * fb @ num / den)


def test_vvv_current_matches_structure(rnd):
    v = [rnd(4) for _ in range(3)]
    p = [torch.randn(4, dtype=torch.float64) for _ in range(3)]

    def dot(a, b):
        return sum(METRIC[m] * a[m] * b[m] for m in range(4))

    def lag(v1, v2, v3, p1, p2, p3):
        return dot(v1, v2) * dot(v3, p1 - p2) + dot(v1, v3) * dot(v2, p3 - p1) + dot(v2, v3) * dot(v1, p2 - p3)

    full = lag(*v, *p)
    for k in range(3):
        cur = vec(L.vvv([comps(x) for x in v], [comps(x) for x in p], k, 1.0))
        assert torch.allclose(dot(cur, v[k]), full)


def test_vvvv_current(rnd):
    v = [rnd(4) for _ in range(4)]
    coefs = (1.0, -0.5, 2.0)

    def dot(a, b):
        return sum(METRIC[m] * a[m] * b[m] for m in range(4))

    full = coefs[0] * dot(v[0], v[3]) * dot(v[1], v[2]) + coefs[1] * dot(v[0], v[2]) * dot(v[1], v[3]) \
        + coefs[2] * dot(v[0], v[1]) * dot(v[2], v[3])
    for k in range(4):
        cur = vec(L.vvvv([comps(x) for x in v], k, 1.0, coefs))
        assert torch.allclose(dot(cur, v[k]), full)


def _momentum(m, seed, along=None):
    g = torch.Generator().manual_seed(seed)
    if along is not None:
        p3 = torch.tensor([0.0, 0.0, along], dtype=torch.float64)
    else:
        p3 = 100 * torch.randn(3, generator=g, dtype=torch.float64)
    e = torch.sqrt(m * m + (p3 ** 2).sum())
    return torch.cat([e.reshape(1), p3])


@pytest.mark.parametrize("m,along", [(0.0, None), (4.7, None), (0.0, 50.0), (0.0, -50.0), (173.0, -20.0)])
def test_spinors_solve_dirac_equation_and_spin_sums(m, along):
    p = _momentum(m, 3, along)
    pl = comps(p)
    ps = slash(p.to(C))
    us = [vec(L.spinor_in(pl, m, h, 1)) for h in (-1, 1)]
    vs = [vec(L.spinor_in(pl, m, h, -1)) for h in (-1, 1)]
    ubs = [vec(L.spinor_out(pl, m, h, 1)) for h in (-1, 1)]
    vbs = [vec(L.spinor_out(pl, m, h, -1)) for h in (-1, 1)]
    tol = 1e-10 * float(p[0])
    for u, v, ub, vb in zip(us, vs, ubs, vbs):
        for x in (u, v, ub, vb):
            assert bool(torch.isfinite(x.real).all() and torch.isfinite(x.imag).all())
        assert ((ps - m * EYE) @ u).abs().max() < tol
        assert ((ps + m * EYE) @ v).abs().max() < tol
        assert (ub @ (ps - m * EYE)).abs().max() < tol
        assert (vb @ (ps + m * EYE)).abs().max() < tol
    # Σ u ū = p̸ + m, Σ v v̄ = p̸ − m (ū, v̄ from the ψ̄-type routines)
    assert torch.allclose(sum(torch.outer(u, ub) for u, ub in zip(us, ubs)), ps + m * EYE, atol=tol)
    assert torch.allclose(sum(torch.outer(v, vb) for v, vb in zip(vs, vbs)), ps - m * EYE, atol=tol)


@pytest.mark.parametrize("m,along", [(0.0, None), (80.4, None), (0.0, -30.0), (91.2, 30.0)])
def test_polarisations(m, along):
    p = _momentum(m, 5, along)
    pl = comps(p)
    hels = (-1, 0, 1) if m else (-1, 1)
    eps = [vec(L.polarization(pl, m, h, -1)) for h in hels]
    epsc = [vec(L.polarization(pl, m, h, 1)) for h in hels]

    def dot(a, b):
        return sum(METRIC[k] * a[k] * b[k] for k in range(4))

    for e, ec in zip(eps, epsc):
        assert abs(dot(e, p.to(C))) < 1e-10 * float(p[0])
        assert torch.allclose(ec, e.conj())
        assert abs(dot(e, ec) + 1) < 1e-12
    if m:  # Σ ε^μ ε^ν* = −g^{μν} + p^μ p^ν / m²
        s = sum(torch.outer(e, e.conj()) for e in eps)
        g = torch.diag(torch.tensor(METRIC, dtype=C))
        ref = -g + torch.outer(p, p).to(C) / (m * m)
        assert torch.allclose(s, ref, atol=1e-9 * float(p[0]) ** 2 / m**2)
