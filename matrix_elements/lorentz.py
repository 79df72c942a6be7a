"""HELAS-style external wavefunctions, vertices and propagators, batched in torch.

Conventions (those of HELAS/ALOHA, so MadGraph's numbers are reproduced):

* Dirac matrices in the chiral (Weyl) basis, γ^μ = [[0, σ^μ], [σ̄^μ, 0]], σ^μ = (1, σ⃗),
  σ̄^μ = (1, −σ⃗), γ5 = diag(−1, −1, 1, 1): components 0,1 of a spinor are left-handed, 2,3
  right-handed.  P_L = diag(1, 1, 0, 0), P_R = diag(0, 0, 1, 1).
* Vector wavefunctions carry contravariant components ε^μ; a·b is the Minkowski product (+,−,−,−).
* A *ψ-type* fermion wavefunction is a column spinor (u for an incoming fermion, v for an
  outgoing antifermion); a *ψ̄-type* one is a row spinor (ū for an outgoing fermion, v̄ for an
  incoming antifermion), stored as its four components.
* Every vertex function returns the *amputated* vertex: the vertex factor (coupling constants
  include the factor i of the Feynman rule, as MadGraph's ``GC_*``) contracted with all
  wavefunctions but one.  :func:`propagate` then multiplies by the propagator of the open line:
  fermion i(p̸ + m)/(p² − m² + i mΓ) with p along the fermion-number flow, massive vector
  −i(g^{μν} − p^μp^ν/M²)/(p² − M² + i MΓ) (unitary gauge), massless vector −i g^{μν}/p²
  (Feynman gauge), scalar i/(p² − M² + i MΓ).
* Momenta ``P`` passed to vertices are *outgoing from the vertex* along each leg (the
  convention of UFO Lorentz structures as evaluated by ALOHA).

Every tensor carries arbitrary leading (broadcast) dimensions: events and one axis per external
helicity.  Wavefunctions are complex with a trailing component axis (4 for spinors and vectors,
1 for scalars); momenta are real ``[..., 4]``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

SQH = math.sqrt(0.5)


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------
def mdot(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product of the trailing 4-vectors, metric (+,−,−,−)."""
    return a[..., 0] * b[..., 0] - a[..., 1] * b[..., 1] - a[..., 2] * b[..., 2] - a[..., 3] * b[..., 3]


def _stack(*xs: Tensor) -> Tensor:
    xs = torch.broadcast_tensors(*xs)
    return torch.stack(xs, dim=-1)


def _sigma_blocks(v: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Entries of A = σ^μ v_μ = v⁰ − σ⃗·v⃗ and B = σ̄^μ v_μ = v⁰ + σ⃗·v⃗ (row-major 2×2)."""
    v0, v1, v2, v3 = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
    v12p = v1 + 1j * v2
    v12m = v1 - 1j * v2
    a00, a01, a10, a11 = v0 - v3, -v12m, -v12p, v0 + v3
    b00, b01, b10, b11 = v0 + v3, v12m, v12p, v0 - v3
    return a00, a01, a10, a11, b00, b01, b10, b11


# ------------------------------------------------------------------------------------------------
# external wavefunctions (HELAS ixxxxx, oxxxxx, vxxxxx); p is [..., 4] real, result [..., 4] complex
# ------------------------------------------------------------------------------------------------
def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return num / torch.where(den == 0, torch.ones_like(den), den)


def spinor_in(p: Tensor, mass: float, nhel: int, nsf: int) -> Tensor:
    """ψ-type spinor: u(p, λ) for an incoming fermion (nsf=+1), v(p, λ) for an outgoing antifermion (nsf=−1).

    ``nhel`` = ±1 is twice the helicity.  Massless momenta along ±z (and momenta with E + p_z = 0)
    are handled without division by zero, as in HELAS.
    """
    p0, p1, p2, p3 = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    nh = nhel * nsf
    if mass != 0.0:
        pp = torch.minimum(p0, torch.sqrt(p1 * p1 + p2 * p2 + p3 * p3))
        sf = ((1 + nsf + (1 - nsf) * nh) * 0.5, (1 + nsf - (1 - nsf) * nh) * 0.5)
        om0 = torch.sqrt(p0 + pp)
        om1 = mass / om0
        omega = (om0, om1)
        ip, im = (1 + nh) // 2, (1 - nh) // 2
        sfo0, sfo1 = sf[0] * omega[ip], sf[1] * omega[im]
        pp3 = torch.clamp(pp + p3, min=0.0)
        chi0 = torch.sqrt(_safe_div(pp3 * 0.5, pp)).to(torch.complex128)
        den = torch.sqrt(2.0 * pp * pp3)
        chi1 = torch.where(pp3 == 0, torch.full_like(p0, float(-nh)) + 0j, _safe_div(nh * p1 + 1j * p2, den + 0j))
        chi = (chi0, chi1)
        res = _stack(sfo0 * chi[im], sfo0 * chi[ip], sfo1 * chi[im], sfo1 * chi[ip])
        # particle at rest: HELAS special case
        sqm = math.sqrt(abs(mass))
        rest = torch.tensor([ip * sqm, im * nsf * sqm, ip * nsf * sqm, im * sqm], dtype=torch.complex128,
                            device=p.device)
        return torch.where((pp == 0)[..., None], rest, res)
    on_minus_z = (p1 == 0) & (p2 == 0) & (p3 < 0)
    sqp0p3 = torch.where(on_minus_z, torch.zeros_like(p0), torch.sqrt(torch.clamp(p0 + p3, min=0.0)) * nsf)
    chi0 = sqp0p3 + 0j
    chi1 = torch.where(sqp0p3 == 0, (-nhel * torch.sqrt(torch.clamp(2.0 * p0, min=0.0))) + 0j,
                       _safe_div(nh * p1 + 1j * p2, sqp0p3 + 0j))
    zero = torch.zeros_like(chi0)
    if nh == 1:
        return _stack(zero, zero, chi0, chi1)
    return _stack(chi1, chi0, zero, zero)


def spinor_out(p: Tensor, mass: float, nhel: int, nsf: int) -> Tensor:
    """ψ̄-type spinor: ū(p, λ) for an outgoing fermion (nsf=+1), v̄(p, λ) for an incoming antifermion (nsf=−1)."""
    p0, p1, p2, p3 = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    nh = nhel * nsf
    if mass != 0.0:
        pp = torch.minimum(p0, torch.sqrt(p1 * p1 + p2 * p2 + p3 * p3))
        sf = ((1 + nsf + (1 - nsf) * nh) * 0.5, (1 + nsf - (1 - nsf) * nh) * 0.5)
        om0 = torch.sqrt(p0 + pp)
        om1 = mass / om0
        omega = (om0, om1)
        ip, im = (1 + nh) // 2, (1 - nh) // 2
        sfo0, sfo1 = sf[0] * omega[ip], sf[1] * omega[im]
        pp3 = torch.clamp(pp + p3, min=0.0)
        chi0 = torch.sqrt(_safe_div(pp3 * 0.5, pp)).to(torch.complex128)
        den = torch.sqrt(2.0 * pp * pp3)
        chi1 = torch.where(pp3 == 0, torch.full_like(p0, float(-nh)) + 0j, _safe_div(nh * p1 - 1j * p2, den + 0j))
        chi = (chi0, chi1)
        res = _stack(sfo1 * chi[im], sfo1 * chi[ip], sfo0 * chi[im], sfo0 * chi[ip])
        sqm = math.sqrt(abs(mass))
        jp = -((1 - nh) // 2) * nhel
        jm = ((1 + nh) // 2) * nhel
        rest = torch.tensor([jm * sqm, jp * nsf * sqm, jm * nsf * sqm, jp * sqm], dtype=torch.complex128,
                            device=p.device)
        return torch.where((pp == 0)[..., None], rest, res)
    on_minus_z = (p1 == 0) & (p2 == 0) & (p3 < 0)
    sqp0p3 = torch.where(on_minus_z, torch.zeros_like(p0), torch.sqrt(torch.clamp(p0 + p3, min=0.0)) * nsf)
    chi0 = sqp0p3 + 0j
    chi1 = torch.where(sqp0p3 == 0, (-nhel * torch.sqrt(torch.clamp(2.0 * p0, min=0.0))) + 0j,
                       _safe_div(nh * p1 - 1j * p2, sqp0p3 + 0j))
    zero = torch.zeros_like(chi0)
    if nh == 1:
        return _stack(chi0, chi1, zero, zero)
    return _stack(zero, zero, chi1, chi0)


def polarization(p: Tensor, mass: float, nhel: int, nsv: int) -> Tensor:
    """Vector polarisation ε^μ(p, λ) for an incoming boson (nsv=−1) or ε^μ* for an outgoing one (nsv=+1).

    ``nhel`` ∈ {−1, 0, +1} (0 only for massive bosons).  HELAS vxxxxx conventions.
    """
    p0, p1, p2, p3 = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    hel = float(nhel)
    zero = torch.zeros_like(p0)
    sign_z = torch.where(p3 < 0, -torch.ones_like(p0), torch.ones_like(p0))
    if mass != 0.0:
        nsvahl = nsv * abs(hel)
        pt2 = p1 * p1 + p2 * p2
        pp = torch.minimum(p0, torch.sqrt(pt2 + p3 * p3))
        pt = torch.minimum(pp, torch.sqrt(pt2))
        hel0 = 1.0 - abs(hel)
        emp = _safe_div(p0, mass * pp)
        v0 = (hel0 * pp / mass) + 0j
        v3 = (hel0 * p3 * emp + hel * _safe_div(pt, pp) * SQH) + 0j
        pzpt = _safe_div(p3, pp * pt) * SQH * hel
        v1 = hel0 * p1 * emp - p1 * pzpt - 1j * nsvahl * _safe_div(p2, pt) * SQH
        v2 = hel0 * p2 * emp - p2 * pzpt + 1j * nsvahl * _safe_div(p1, pt) * SQH
        v1 = torch.where(pt != 0, v1, (-hel * SQH) + 0j * zero)
        v2 = torch.where(pt != 0, v2, 1j * nsvahl * sign_z * SQH)
        res = _stack(v0, v1, v2, v3)
        rest = _stack(zero + 0j, (-hel * SQH) + 0j * zero, (1j * nsvahl * SQH) + 0 * zero, (hel0 + 0j) + 0 * zero)
        return torch.where((pp == 0)[..., None], rest, res)
    pt = torch.sqrt(p1 * p1 + p2 * p2)
    v3 = (hel * _safe_div(pt, p0) * SQH) + 0j
    pzpt = _safe_div(p3, p0 * pt) * SQH * hel
    v1 = -p1 * pzpt - 1j * nsv * _safe_div(p2, pt) * SQH
    v2 = -p2 * pzpt + 1j * nsv * _safe_div(p1, pt) * SQH
    v1 = torch.where(pt != 0, v1, (-hel * SQH) + 0j * zero)
    v2 = torch.where(pt != 0, v2, 1j * nsv * sign_z * SQH)
    return _stack(zero + 0j, v1, v2, v3)


def scalar_wf(p: Tensor) -> Tensor:
    """External scalar wavefunction (1)."""
    return torch.ones(p.shape[:-1] + (1,), dtype=torch.complex128, device=p.device)


# ------------------------------------------------------------------------------------------------
# propagators
# ------------------------------------------------------------------------------------------------
def denominator(p: Tensor, mass: float, width: float) -> Tensor:
    """p² − M² + i MΓ (complex)."""
    return mdot(p, p) - mass * mass + 1j * (mass * width)


def propagate(kind: str, cur: Tensor, p: Tensor, mass: float, width: float) -> Tensor:
    """Attach the propagator of the open line to an amputated current.

    ``kind``: ``'psi'`` (column spinor, ``p`` = momentum along the fermion flow into the vertex the
    current feeds), ``'psibar'`` (row spinor, ``p`` along the fermion flow out of that vertex),
    ``'V'`` (vector, either sign of ``p``), ``'S'`` (scalar).
    """
    den = denominator(p, mass, width)
    if kind == "V":
        if mass != 0.0:
            pj = mdot(p, cur)
            num = cur - p * (pj / (mass * mass))[..., None]
        else:
            num = cur
        return num * (-1j / den)[..., None]
    if kind == "S":
        return cur * (1j / den)[..., None]
    a00, a01, a10, a11, b00, b01, b10, b11 = _sigma_blocks(p)
    c0, c1, c2, c3 = cur[..., 0], cur[..., 1], cur[..., 2], cur[..., 3]
    m = mass
    if kind == "psi":  # (p̸ + m) χ
        out = _stack(m * c0 + a00 * c2 + a01 * c3, m * c1 + a10 * c2 + a11 * c3,
                     b00 * c0 + b01 * c1 + m * c2, b10 * c0 + b11 * c1 + m * c3)
    elif kind == "psibar":  # χ̄ (p̸ + m)
        out = _stack(m * c0 + c2 * b00 + c3 * b10, m * c1 + c2 * b01 + c3 * b11,
                     c0 * a00 + c1 * a10 + m * c2, c0 * a01 + c1 * a11 + m * c3)
    else:
        raise ValueError(f"unknown propagator kind {kind!r}")
    return out * (1j / den)[..., None]


# ------------------------------------------------------------------------------------------------
# vertices.  Slot conventions: FFV/FFS (ψ̄, ψ, boson); VVV (V1, V2, V3); VVVV (V1..V4);
# VVS (V1, V2, S); VVSS (V1, V2, S1, S2); SSS, SSSS.  ``open`` is the slot left uncontracted;
# wfs[open] is ignored.  Returned: the amputated current of the open slot (same layout as a
# wavefunction of that slot) or, with open=None, the amplitude [...] (complex).
# ------------------------------------------------------------------------------------------------
def ffv(wfs: list, open: int | None, cl: complex, cr: complex) -> Tensor:
    """ψ̄ γ^μ (cL P_L + cR P_R) ψ V_μ."""
    fb, f, v = wfs
    if open == 2 or open is None:
        a0, a1, b0, b1 = fb[..., 0], fb[..., 1], f[..., 2], f[..., 3]  # ψ̄_up, ψ_R
        c0, c1, d0, d1 = fb[..., 2], fb[..., 3], f[..., 0], f[..., 1]  # ψ̄_lo, ψ_L
        x00, x01, x10, x11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
        y00, y01, y10, y11 = c0 * d0, c0 * d1, c1 * d0, c1 * d1
        j0 = cr * (x00 + x11) + cl * (y00 + y11)
        j1 = cr * (x01 + x10) - cl * (y01 + y10)
        j2 = cr * (-1j * x01 + 1j * x10) - cl * (-1j * y01 + 1j * y10)
        j3 = cr * (x00 - x11) - cl * (y00 - y11)
        if open is None:
            return j0 * v[..., 0] - j1 * v[..., 1] - j2 * v[..., 2] - j3 * v[..., 3]
        return _stack(j0, j1, j2, j3)
    a00, a01, a10, a11, b00, b01, b10, b11 = _sigma_blocks(v)
    if open == 0:  # column Γ·V ψ: upper = cR A ψ_R, lower = cL B ψ_L
        f0, f1, f2, f3 = f[..., 0], f[..., 1], f[..., 2], f[..., 3]
        return _stack(cr * (a00 * f2 + a01 * f3), cr * (a10 * f2 + a11 * f3),
                      cl * (b00 * f0 + b01 * f1), cl * (b10 * f0 + b11 * f1))
    if open == 1:  # row ψ̄ Γ·V: upper = cL ψ̄_lo B, lower = cR ψ̄_up A
        g0, g1, g2, g3 = fb[..., 0], fb[..., 1], fb[..., 2], fb[..., 3]
        return _stack(cl * (g2 * b00 + g3 * b10), cl * (g2 * b01 + g3 * b11),
                      cr * (g0 * a00 + g1 * a10), cr * (g0 * a01 + g1 * a11))
    raise ValueError("bad open slot for FFV")


def ffs(wfs: list, open: int | None, cl: complex, cr: complex) -> Tensor:
    """ψ̄ (cL P_L + cR P_R) ψ S."""
    fb, f, s = wfs
    if open == 2 or open is None:
        val = cl * (fb[..., 0] * f[..., 0] + fb[..., 1] * f[..., 1]) + cr * (fb[..., 2] * f[..., 2] + fb[..., 3] * f[..., 3])
        if open is None:
            return val * s[..., 0]
        return val[..., None]
    sc = s[..., 0]
    if open == 0:
        return _stack(cl * sc * f[..., 0], cl * sc * f[..., 1], cr * sc * f[..., 2], cr * sc * f[..., 3])
    if open == 1:
        return _stack(cl * sc * fb[..., 0], cl * sc * fb[..., 1], cr * sc * fb[..., 2], cr * sc * fb[..., 3])
    raise ValueError("bad open slot for FFS")


def _vvv_open_first(v2: Tensor, v3: Tensor, p1: Tensor, p2: Tensor, p3: Tensor) -> Tensor:
    """∂/∂V1 of L = (V1·V2)(V3·(P1−P2)) + (V1·V3)(V2·(P3−P1)) + (V2·V3)(V1·(P2−P3))."""
    c2 = mdot(v3, p1 - p2)
    c3 = mdot(v2, p3 - p1)
    c23 = mdot(v2, v3)
    return v2 * c2[..., None] + v3 * c3[..., None] + (p2 - p3) * c23[..., None]


def vvv(wfs: list, moms: list, open: int | None, c: complex) -> Tensor:
    """c × VVV1 (UFO): the Yang–Mills triple-vector Lorentz structure, momenta outgoing."""
    if open is None:
        cur = _vvv_open_first(wfs[1], wfs[2], moms[0], moms[1], moms[2])
        return c * mdot(cur, wfs[0])
    k = open
    i, j = (k + 1) % 3, (k + 2) % 3  # cyclic symmetry of VVV1
    return c * _vvv_open_first(wfs[i], wfs[j], moms[k], moms[i], moms[j])


_VVVV_PAIRS = (((0, 3), (1, 2)), ((0, 2), (1, 3)), ((0, 1), (2, 3)))


def vvvv(wfs: list, open: int | None, c: complex, coefs: tuple[float, float, float]) -> Tensor:
    """c × [a (V1·V4)(V2·V3) + b (V1·V3)(V2·V4) + d (V1·V2)(V3·V4)] with coefs = (a, b, d)."""
    if open is None:
        out = None
        for coef, (p, q) in zip(coefs, _VVVV_PAIRS):
            if coef:
                t = coef * mdot(wfs[p[0]], wfs[p[1]]) * mdot(wfs[q[0]], wfs[q[1]])
                out = t if out is None else out + t
        return c * out
    out = None
    for coef, pair in zip(coefs, _VVVV_PAIRS):
        if not coef:
            continue
        for (a, b), other in ((pair[0], pair[1]), (pair[1], pair[0])):
            if open in (a, b):
                partner = b if open == a else a
                t = wfs[partner] * (coef * mdot(wfs[other[0]], wfs[other[1]]))[..., None]
                out = t if out is None else out + t
    return c * out


def vvs(wfs: list, open: int | None, c: complex) -> Tensor:
    """c (V1·V2) S."""
    v1, v2, s = wfs
    if open is None:
        return c * mdot(v1, v2) * s[..., 0]
    if open == 2:
        return (c * mdot(v1, v2))[..., None]
    other = v2 if open == 0 else v1
    return other * (c * s[..., 0])[..., None]


def vvss(wfs: list, open: int | None, c: complex) -> Tensor:
    """c (V1·V2) S1 S2."""
    v1, v2, s1, s2 = wfs
    if open is None:
        return c * mdot(v1, v2) * s1[..., 0] * s2[..., 0]
    if open in (2, 3):
        other = s2 if open == 2 else s1
        return (c * mdot(v1, v2) * other[..., 0])[..., None]
    other = v2 if open == 0 else v1
    return other * (c * s1[..., 0] * s2[..., 0])[..., None]


def sss(wfs: list, open: int | None, c: complex) -> Tensor:
    """c S1 S2 S3 (and c S1 S2 S3 S4 for four scalars)."""
    out = None
    for k, w in enumerate(wfs):
        if k == open:
            continue
        out = w if out is None else out * w
    out = c * out
    return out[..., 0] if open is None else out
