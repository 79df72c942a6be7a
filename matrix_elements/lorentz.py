"""HELAS-style external wavefunctions, vertices and propagators, batched in torch.

Conventions (those of HELAS/ALOHA, so MadGraph's numbers are reproduced):

* Dirac matrices in the chiral (Weyl) basis, γ^μ = [[0, σ^μ], [σ̄^μ, 0]], σ^μ = (1, σ⃗),
  σ̄^μ = (1, −σ⃗), γ5 = diag(−1, −1, 1, 1): components 0,1 of a spinor are left-handed, 2,3
  right-handed.  P_L = diag(1, 1, 0, 0), P_R = diag(0, 0, 1, 1).
* Vector wavefunctions carry contravariant components ε^μ; a·b is the Minkowski product (+,−,−,−).
* A *ψ-type* fermion wavefunction is a column spinor (u for an incoming fermion, v for an
  outgoing antifermion); a *ψ̄-type* one is a row spinor (ū for an outgoing fermion, v̄ for an
  incoming antifermion), stored as its four components.
* Vertex functions return the *amputated* current of the open slot: the vertex factor
  (couplings include the i of the Feynman rule, as MadGraph's ``GC_*``) contracted with the other
  wavefunctions, times an optional ``scale`` (a number or a per-event tensor, applied to the
  smallest operand).  Propagators: fermion i(p̸ + m)/(p² − m² + i mΓ) with p along the
  fermion-number flow (:func:`fermion_propagator`), massive vector −i(g^{μν} − p^μp^ν/M²)/(p² − M²
  + i MΓ) (unitary gauge: :func:`vector_propagator`), massless vector −i g^{μν}/p² (Feynman gauge)
  and scalar i/(p² − M² + i MΓ) (pure scales, folded into ``scale``).
* Momenta passed to vertices are *outgoing from the vertex* along each leg (UFO/ALOHA).

Layout (chosen for speed): a wavefunction is a *list of component tensors* (4 for spinors and
vectors, 1 for scalars), each complex of shape ``[h_0, …, h_{n−1}, B]`` where h_i is 1 or the
number of helicities of external leg i and the event axis B is last (innermost), so that
broadcasting over helicities runs at full memory speed.  Momenta are lists of 4 real ``[B]``
tensors (they broadcast against any wavefunction).  ``torch.addcmul`` fuses multiply-adds.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

SQH = math.sqrt(0.5)

Wf = list  # list[Tensor]


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------
def mdot(a: Wf, b: Wf) -> Tensor:
    """Minkowski product a·b of two 4-component lists, metric (+,−,−,−)."""
    t = a[0] * b[0]
    t.addcmul_(a[1], b[1], value=-1)
    t.addcmul_(a[2], b[2], value=-1)
    t.addcmul_(a[3], b[3], value=-1)
    return t


def mdot_into(out: Tensor, a: Wf, b: Wf) -> None:
    torch.mul(a[0], b[0], out=out)
    out.addcmul_(a[1], b[1], value=-1)
    out.addcmul_(a[2], b[2], value=-1)
    out.addcmul_(a[3], b[3], value=-1)


def sdot_into(out: Tensor, a: Wf, b: Wf) -> None:
    """Σ_i a_i b_i (row spinor times column spinor, or scalar × scalar) written into ``out``."""
    torch.mul(a[0], b[0], out=out)
    for x, y in zip(a[1:], b[1:]):
        out.addcmul_(x, y)


def _numel(x: Tensor) -> int:
    return x.numel()


def _mul_s(s, c):
    """Combine a scale ``s`` (None, number or tensor) with a number ``c``."""
    if s is None:
        return c
    return s * c


# ------------------------------------------------------------------------------------------------
# external wavefunctions (HELAS ixxxxx, oxxxxx, vxxxxx); p0..p3 are real [B] tensors
# ------------------------------------------------------------------------------------------------
def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return num / torch.where(den == 0, torch.ones_like(den), den)


def _massive_chi(p0, p1, p2, p3, mass, nh, conj):
    pp = torch.minimum(p0, torch.sqrt(p1 * p1 + p2 * p2 + p3 * p3))
    om0 = torch.sqrt(p0 + pp)
    om1 = mass / om0
    pp3 = torch.clamp(pp + p3, min=0.0)
    chi0 = torch.sqrt(_safe_div(pp3 * 0.5, pp)) + 0j
    den = torch.sqrt(2.0 * pp * pp3)
    sgn = -1.0 if conj else 1.0
    chi1 = torch.where(pp3 == 0, torch.full_like(p0, float(-nh)) + 0j,
                       _safe_div(torch.complex(nh * p1, sgn * p2), den + 0j))
    return pp, (om0, om1), (chi0, chi1)


def spinor_in(p: Wf, mass: float, nhel: int, nsf: int) -> Wf:
    """ψ-type spinor: u(p, λ) for an incoming fermion (nsf=+1), v(p, λ) for an outgoing antifermion (nsf=−1).

    ``nhel`` = ±1 is twice the helicity.  Massless momenta along ±z (and momenta with E + p_z = 0)
    are handled without division by zero, as in HELAS.
    """
    p0, p1, p2, p3 = p
    nh = nhel * nsf
    if mass != 0.0:
        pp, omega, chi = _massive_chi(p0, p1, p2, p3, mass, nh, conj=False)
        sf = ((1 + nsf + (1 - nsf) * nh) * 0.5, (1 + nsf - (1 - nsf) * nh) * 0.5)
        ip, im = (1 + nh) // 2, (1 - nh) // 2
        s0, s1 = sf[0] * omega[ip], sf[1] * omega[im]
        comps = [s0 * chi[im], s0 * chi[ip], s1 * chi[im], s1 * chi[ip]]
        sqm = math.sqrt(abs(mass))
        rest = [ip * sqm, im * nsf * sqm, ip * nsf * sqm, im * sqm]
        at_rest = pp == 0
        return [torch.where(at_rest, torch.full_like(c, r), c) for c, r in zip(comps, rest)]
    on_minus_z = (p1 == 0) & (p2 == 0) & (p3 < 0)
    sq = torch.where(on_minus_z, torch.zeros_like(p0), torch.sqrt(torch.clamp(p0 + p3, min=0.0)) * nsf)
    chi0 = sq + 0j
    chi1 = torch.where(sq == 0, (-nhel * torch.sqrt(torch.clamp(2.0 * p0, min=0.0))) + 0j,
                       _safe_div(torch.complex(nh * p1, p2), sq + 0j))
    zero = torch.zeros_like(chi0)
    return [zero, zero, chi0, chi1] if nh == 1 else [chi1, chi0, zero, zero]


def spinor_out(p: Wf, mass: float, nhel: int, nsf: int) -> Wf:
    """ψ̄-type spinor: ū(p, λ) for an outgoing fermion (nsf=+1), v̄(p, λ) for an incoming antifermion (nsf=−1)."""
    p0, p1, p2, p3 = p
    nh = nhel * nsf
    if mass != 0.0:
        pp, omega, chi = _massive_chi(p0, p1, p2, p3, mass, nh, conj=True)
        sf = ((1 + nsf + (1 - nsf) * nh) * 0.5, (1 + nsf - (1 - nsf) * nh) * 0.5)
        ip, im = (1 + nh) // 2, (1 - nh) // 2
        s0, s1 = sf[0] * omega[ip], sf[1] * omega[im]
        comps = [s1 * chi[im], s1 * chi[ip], s0 * chi[im], s0 * chi[ip]]
        sqm = math.sqrt(abs(mass))
        jp = -((1 - nh) // 2) * nhel
        jm = ((1 + nh) // 2) * nhel
        rest = [jm * sqm, jp * nsf * sqm, jm * nsf * sqm, jp * sqm]
        at_rest = pp == 0
        return [torch.where(at_rest, torch.full_like(c, r), c) for c, r in zip(comps, rest)]
    on_minus_z = (p1 == 0) & (p2 == 0) & (p3 < 0)
    sq = torch.where(on_minus_z, torch.zeros_like(p0), torch.sqrt(torch.clamp(p0 + p3, min=0.0)) * nsf)
    chi0 = sq + 0j
    chi1 = torch.where(sq == 0, (-nhel * torch.sqrt(torch.clamp(2.0 * p0, min=0.0))) + 0j,
                       _safe_div(torch.complex(nh * p1, -p2), sq + 0j))
    zero = torch.zeros_like(chi0)
    return [chi0, chi1, zero, zero] if nh == 1 else [zero, zero, chi1, chi0]


def polarization(p: Wf, mass: float, nhel: int, nsv: int) -> Wf:
    """Vector polarisation ε^μ(p, λ) for an incoming boson (nsv=−1) or ε^μ* for an outgoing one (nsv=+1).

    ``nhel`` ∈ {−1, 0, +1} (0 only for massive bosons).  HELAS vxxxxx conventions.
    """
    p0, p1, p2, p3 = p
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
        v1 = torch.complex(hel0 * p1 * emp - p1 * pzpt, -nsvahl * _safe_div(p2, pt) * SQH)
        v2 = torch.complex(hel0 * p2 * emp - p2 * pzpt, nsvahl * _safe_div(p1, pt) * SQH)
        v1 = torch.where(pt != 0, v1, torch.complex(-hel * SQH + zero, zero))
        v2 = torch.where(pt != 0, v2, torch.complex(zero, nsvahl * sign_z * SQH))
        at_rest = pp == 0
        rest = [0.0, -hel * SQH, 1j * nsvahl * SQH, hel0]
        return [torch.where(at_rest, torch.full_like(c, r), c) for c, r in zip((v0, v1, v2, v3), rest)]
    pt = torch.sqrt(p1 * p1 + p2 * p2)
    v3 = (hel * _safe_div(pt, p0) * SQH) + 0j
    pzpt = _safe_div(p3, p0 * pt) * SQH * hel
    v1 = torch.complex(-p1 * pzpt, -nsv * _safe_div(p2, pt) * SQH)
    v2 = torch.complex(-p2 * pzpt, nsv * _safe_div(p1, pt) * SQH)
    v1 = torch.where(pt != 0, v1, torch.complex(-hel * SQH + zero, zero))
    v2 = torch.where(pt != 0, v2, torch.complex(zero, nsv * sign_z * SQH))
    return [zero + 0j, v1, v2, v3]


def scalar_wf(p: Wf) -> Wf:
    """External scalar wavefunction (1)."""
    return [torch.ones_like(p[0]) + 0j]


# ------------------------------------------------------------------------------------------------
# propagators
# ------------------------------------------------------------------------------------------------
def denominator(p: Wf, mass: float, width: float) -> Tensor:
    """p² − M² + i MΓ (complex [B])."""
    p2 = mdot(p, p)
    return torch.complex(p2 - mass * mass, torch.full_like(p2, mass * width))


def fermion_propagator(kind: str, cur: Wf, p: Wf, mass: float, width: float) -> Wf:
    """i(p̸ + m)/(p² − m² + i mΓ) applied to a column (``'psi'``: (p̸+m)χ) or row (``'psibar'``: χ̄(p̸+m)) spinor.

    ``p`` is the momentum along the fermion-number flow.
    """
    f = 1j / denominator(p, mass, width)
    p0, p1, p2, p3 = p
    pm = (p0 - p3) * f
    pp = (p0 + p3) * f
    pt = torch.complex(p1, p2) * f
    ptc = torch.complex(p1, -p2) * f
    c0, c1, c2, c3 = cur
    if kind == "psi":
        # (p̸+m) = [[m, A], [B, m]], A = [[pm, −ptc], [−pt, pp]], B = [[pp, ptc], [pt, pm]]
        o0 = c2 * pm
        o0.addcmul_(c3, ptc, value=-1)
        o1 = c3 * pp
        o1.addcmul_(c2, pt, value=-1)
        o2 = c0 * pp
        o2.addcmul_(c1, ptc)
        o3 = c0 * pt
        o3.addcmul_(c1, pm)
    elif kind == "psibar":
        o0 = c2 * pp
        o0.addcmul_(c3, pt)
        o1 = c2 * ptc
        o1.addcmul_(c3, pm)
        o2 = c0 * pm
        o2.addcmul_(c1, pt, value=-1)
        o3 = c1 * pp
        o3.addcmul_(c0, ptc, value=-1)
    else:
        raise ValueError(kind)
    if mass != 0.0:
        mf = mass * f
        o0.addcmul_(c0, mf)
        o1.addcmul_(c1, mf)
        o2.addcmul_(c2, mf)
        o3.addcmul_(c3, mf)
    return [o0, o1, o2, o3]


def vector_scale(p: Wf, mass: float, width: float) -> Tensor:
    """−i/(p² − M² + i MΓ): the scalar part of a vector propagator."""
    return -1j / denominator(p, mass, width)


def scalar_scale(p: Wf, mass: float, width: float) -> Tensor:
    return 1j / denominator(p, mass, width)


def massive_vector_numerator(cur: Wf, p: Wf, mass: float) -> Wf:
    """J^μ − p^μ (p·J)/M² (the unitary-gauge numerator; the scalar factor is applied beforehand)."""
    pj = mdot(p, cur) * (1.0 / (mass * mass))
    return [torch.addcmul(c, pj, pc, value=-1) for c, pc in zip(cur, p)]


# ------------------------------------------------------------------------------------------------
# vertices: amputated currents.  Slot conventions: FFV/FFS (ψ̄, ψ, boson); VVV (V1, V2, V3);
# VVVV (V1..V4); VVS (V1, V2, S); VVSS (V1, V2, S1, S2); SSS, SSSS.  ``wfs[open]`` is ignored.
# ------------------------------------------------------------------------------------------------
def ffv(wfs: list, open: int, cl: complex, cr: complex, s=None) -> Wf:
    """Amputated current of ψ̄ γ^μ (cL P_L + cR P_R) ψ V_μ for the open slot."""
    fb, f, v = wfs
    if open == 2:
        g0, g1, g2, g3 = fb
        f0, f1, f2, f3 = f
        # put coefficients on the smaller spinor
        on_bar = _numel(g0) <= _numel(f0)
        kr, kl = _mul_s(s, cr), _mul_s(s, cl)
        if on_bar:
            if cr != 0:
                g0, g1 = g0 * kr, g1 * kr
            if cl != 0:
                g2, g3 = g2 * kl, g3 * kl
        else:
            if cr != 0:
                f2, f3 = f2 * kr, f3 * kr
            if cl != 0:
                f0, f1 = f0 * kl, f1 * kl
        if cr != 0 and cl != 0:
            P = g0 * f2
            P.addcmul_(g3, f1)
            Q = g1 * f3
            Q.addcmul_(g2, f0)
            R = g0 * f3
            R.addcmul_(g2, f1, value=-1)
            S = g1 * f2
            S.addcmul_(g3, f0, value=-1)
        elif cr != 0:
            P, Q, R, S = g0 * f2, g1 * f3, g0 * f3, g1 * f2
        else:
            P, Q, R, S = g3 * f1, g2 * f0, -(g2 * f1), -(g3 * f0)
        return [P + Q, R + S, (S - R) * 1j, P - Q]
    v0, v1, v2, v3 = v
    vp, vm = v0 + v3, v0 - v3
    vt = torch.add(v1, v2, alpha=1j)    # v1 + i v2
    vtc = torch.add(v1, v2, alpha=-1j)  # v1 − i v2
    kr, kl = _mul_s(s, cr), _mul_s(s, cl)
    if open == 0:  # column Γ·V ψ: upper = cR A ψ_R, lower = cL B ψ_L
        f0, f1, f2, f3 = f
        out = []
        if cr != 0:
            a, b = (f2 * kr, f3 * kr)
            u0 = vm * a
            u0.addcmul_(vtc, b, value=-1)
            u1 = vp * b
            u1.addcmul_(vt, a, value=-1)
        if cl != 0:
            a, b = (f0 * kl, f1 * kl)
            l0 = vp * a
            l0.addcmul_(vtc, b)
            l1 = vt * a
            l1.addcmul_(vm, b)
        if cr == 0:
            u0 = torch.zeros_like(l0)
            u1 = u0
        if cl == 0:
            l0 = torch.zeros_like(u0)
            l1 = l0
        return [u0, u1, l0, l1]
    if open == 1:  # row ψ̄ Γ·V: upper = cL ψ̄_lo B, lower = cR ψ̄_up A
        g0, g1, g2, g3 = fb
        if cl != 0:
            a, b = g2 * kl, g3 * kl
            u0 = vp * a
            u0.addcmul_(vt, b)
            u1 = vtc * a
            u1.addcmul_(vm, b)
        if cr != 0:
            a, b = g0 * kr, g1 * kr
            l0 = vm * a
            l0.addcmul_(vt, b, value=-1)
            l1 = vp * b
            l1.addcmul_(vtc, a, value=-1)
        if cl == 0:
            u0 = torch.zeros_like(l0)
            u1 = u0
        if cr == 0:
            l0 = torch.zeros_like(u0)
            l1 = l0
        return [u0, u1, l0, l1]
    raise ValueError("bad open slot for FFV")


def ffs(wfs: list, open: int, cl: complex, cr: complex, s=None) -> Wf:
    """Amputated current of ψ̄ (cL P_L + cR P_R) ψ S."""
    fb, f, sc = wfs
    kl, kr = _mul_s(s, cl), _mul_s(s, cr)
    if open == 2:
        if _numel(fb[0]) <= _numel(f[0]):
            g = [fb[0] * kl, fb[1] * kl, fb[2] * kr, fb[3] * kr]
            h = f
        else:
            g = fb
            h = [f[0] * kl, f[1] * kl, f[2] * kr, f[3] * kr]
        t = g[0] * h[0]
        for x, y in zip(g[1:], h[1:]):
            t.addcmul_(x, y)
        return [t]
    x = sc[0]
    w = f if open == 0 else fb
    xl, xr = x * kl, x * kr
    return [w[0] * xl, w[1] * xl, w[2] * xr, w[3] * xr]


def vvv(wfs: list, moms: list, open: int, c: complex, s=None) -> Wf:
    """Amputated current of c × VVV1 (UFO): the Yang–Mills triple-vector structure, momenta outgoing.

    ∂/∂V1 of (V1·V2)(V3·(P1−P2)) + (V1·V3)(V2·(P3−P1)) + (V2·V3)(V1·(P2−P3)); the structure is
    cyclic, so slot k uses the same formula with the slots rotated.
    """
    k = open
    i, j = (k + 1) % 3, (k + 2) % 3
    v2, v3 = wfs[i], wfs[j]
    p1, p2, p3 = moms[k], moms[i], moms[j]
    kk = _mul_s(s, c)
    if _numel(v2[0]) <= _numel(v3[0]):
        v2 = [x * kk for x in v2]
    else:
        v3 = [x * kk for x in v3]
    q = [a - b for a, b in zip(p1, p2)]
    r = [a - b for a, b in zip(p3, p1)]
    dp = [a - b for a, b in zip(p2, p3)]
    c2 = mdot(v3, q)
    c3 = mdot(v2, r)
    c23 = mdot(v2, v3)
    out = []
    for mu in range(4):
        o = c23 * dp[mu]
        o.addcmul_(v2[mu], c2)
        o.addcmul_(v3[mu], c3)
        out.append(o)
    return out


_VVVV_PAIRS = (((0, 3), (1, 2)), ((0, 2), (1, 3)), ((0, 1), (2, 3)))


def vvvv(wfs: list, open: int, c: complex, coefs: tuple, s=None) -> Wf:
    """Amputated current of c × [a (V1·V4)(V2·V3) + b (V1·V3)(V2·V4) + d (V1·V2)(V3·V4)]."""
    out = None
    kk = _mul_s(s, c)
    for coef, pair in zip(coefs, _VVVV_PAIRS):
        if not coef:
            continue
        for mine, other in ((pair[0], pair[1]), (pair[1], pair[0])):
            if open not in mine:
                continue
            partner = mine[1] if open == mine[0] else mine[0]
            d = mdot(wfs[other[0]], wfs[other[1]]) * (coef * kk)
            w = wfs[partner]
            if out is None:
                out = [w[m] * d for m in range(4)]
            else:
                shape = torch.broadcast_shapes(out[0].shape, w[0].shape, d.shape)
                for m in range(4):
                    if out[m].shape != shape:
                        out[m] = out[m] + w[m] * d
                    else:
                        out[m].addcmul_(w[m], d)
    return out


def vvs(wfs: list, open: int, c: complex, s=None) -> Wf:
    """Amputated current of c (V1·V2) S."""
    v1, v2, sc = wfs
    kk = _mul_s(s, c)
    if open == 2:
        return [mdot(v1, v2) * kk]
    other = v2 if open == 0 else v1
    x = sc[0] * kk
    return [w * x for w in other]


def vvss(wfs: list, open: int, c: complex, s=None) -> Wf:
    """Amputated current of c (V1·V2) S1 S2."""
    v1, v2, s1, s2 = wfs
    kk = _mul_s(s, c)
    if open in (2, 3):
        other = s2 if open == 2 else s1
        return [mdot(v1, v2) * (other[0] * kk)]
    other = v2 if open == 0 else v1
    x = s1[0] * s2[0] * kk
    return [w * x for w in other]


def sss(wfs: list, open: int, c: complex, s=None) -> Wf:
    """Amputated current of c S1 S2 S3 (and c S1 S2 S3 S4)."""
    out = None
    for k, w in enumerate(wfs):
        if k == open:
            continue
        out = w[0] if out is None else out * w[0]
    return [out * _mul_s(s, c)]
