"""Analytic tree-level 2→2 |M|² in MadGraph's conventions: the test oracles and fallback backend.

Every class returns |M|² averaged over initial helicities and colours, summed over final ones and
divided by the identical-final-state factor, at the param_card's ``aS`` (``alpha_s_power`` tells
the base class how to rescale to a running α_s).  Couplings are those of MadGraph's ``sm`` model
(:class:`~matrix_elements.model.SMParameters`: real couplings, sw² = 1 − MW²/MZ², CKM = 1,
fixed-width Breit–Wigner 1/(s − M² + i M Γ) for s-channel Z and W).  Only Lorentz invariants of
the momenta enter, so any frame works.  As MadGraph does by default, only the diagrams of the
lowest QED order are included (``u u~ > d d~`` is pure QCD).

Covered (:func:`analytic_matrix_element` returns ``None`` for anything else):

* **electroweak s-channel** ``f f̄ → F F̄'`` with massless incoming fermions and no t-channel
  diagram: γ/Z neutral current when at least one pair is leptonic (``e+ e- > mu+ mu-``,
  ``e+ e- > u u~``, ``u u~ > e+ e-``, ``d d~ > vm vm~``, ``e+ e- > t t~``, ``u u~ > ta+ ta-``,
  but not Bhabha ``e+ e- > e+ e-`` or ``e+ e- > ve ve~``), and W charged current between
  different doublets (``u d~ > e+ ve``, ``d u~ > e- ve~``, ``c s~ > mu+ vm``, ``u d~ > t b~``,
  ``u d~ > c s~``).  Outgoing fermions may be massive.
* **massless QCD** (ESW Table 7.1) in all crossings and orderings: ``q q' > q q'``, ``q q > q q``,
  ``q q~ > q' q'~``, ``q q~ > q q~``, ``q q~ > g g``, ``g g > q q~``, ``q g > q g``, ``g g > g g``.
* **heavy quarks** (Combridge 1979, ESW eqs. 10.11–10.12): ``q q~ > Q Q~`` (s-channel gluon) and
  ``g g > Q Q~``, with their crossings (``q Q > q Q``; ``Q g > Q g`` only for a width-less Q,
  since MadGraph puts the width into the s-channel Q propagator).  The t-channel Q propagator
  carries no width here (MadGraph ≥ 3.5 default ``zerowidth_tchannel``).

Units: momenta (E, px, py, pz) in GeV, metric (+,−,−,−); |M|² dimensionless for 2→2; the
closed-form partonic cross sections ``sigma_hat_*`` are in pb.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .base import MatrixElement
from .model import SMParameters
from .particles import charge, is_lepton, is_quark, name_of, particle

#: 1 GeV⁻² in pb (ħ²c²).
GEV2_TO_PB = 0.3893793721e9

__all__ = [
    "GEV2_TO_PB",
    "SChannelVectorME",
    "CrossedQCDME",
    "analytic_matrix_element",
    "on_light_cone",
    "sigma_hat_ee_mumu",
    "sigma_hat_qqbar_QQbar",
    "sigma_hat_gg_QQbar",
]


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product of ``[..., 4]`` tensors (+,−,−,−)."""
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def on_light_cone(momenta: Tensor, massless: Tensor) -> Tensor:
    """Momenta with the ``massless`` legs ``[n_external]`` (bool) put exactly on the light cone.

    Keeps p⁺ = E + p_z and p_T and sets p⁻ = p_T²/p⁺, as MadGraph's HELAS spinors for massless
    fermions do; legs with p_T = 0 or p⁺ ≤ 0 are left as they are.  This makes |M|² insensitive
    to the O(1e-13 E²) rounding in p² of input momenta, which otherwise shows up as ~1e-12
    relative differences to MadGraph where an invariant p_i·p_j is small.
    """
    e, px, py, pz = momenta.unbind(-1)
    plus, pt2 = e + pz, px * px + py * py
    ok = massless & (pt2 > 0) & (plus > 0)
    minus = torch.where(ok, pt2 / torch.where(ok, plus, torch.ones_like(plus)), e - pz)
    return torch.stack((torch.where(ok, 0.5 * (plus + minus), e), px, py, torch.where(ok, 0.5 * (plus - minus), pz)), -1)


def _process_name(pdgs: tuple[int, ...]) -> str:
    return " ".join(name_of(p) for p in pdgs[:2]) + " > " + " ".join(name_of(p) for p in pdgs[2:])


# =====================================================================================================
# Electroweak s-channel vector exchange: f f̄ → V* → F F̄'
# =====================================================================================================
@dataclass(frozen=True)
class VectorExchange:
    """One s-channel vector boson: chiral couplings (L, R) to the incoming and outgoing lines."""

    mass: float
    width: float
    c_in: tuple[float, float]
    c_out: tuple[float, float]


def _t3(pdg: int) -> float:
    """Weak isospin of the left-handed particle: +½ up-type quarks and neutrinos, −½ otherwise."""
    return 0.5 if abs(pdg) % 2 == 0 else -0.5


def _doublet(pdg: int) -> tuple[str, int]:
    """(``'q'`` or ``'l'``, generation) of a fermion; CKM = 1 so quark doublets are generations."""
    return ("q" if is_quark(pdg) else "l", (abs(pdg) - (1 if is_quark(pdg) else 11)) // 2)


def _neutral_current(f: int, ff: int, params: SMParameters) -> list[VectorExchange]:
    """γ and Z couplings between the lines of fermions ``f`` (in) and ``ff`` (out), in units of 1."""
    e, sw2 = params.ee, params.sw2
    gz = e / math.sqrt(sw2 * (1.0 - sw2))  # e / (sw cw)

    def z(p: int) -> tuple[float, float]:
        q = charge(p)
        return gz * (_t3(p) - q * sw2), gz * (-q * sw2)

    bosons = [VectorExchange(params.MZ, params.WZ, z(f), z(ff))]
    if charge(f) != 0 and charge(ff) != 0:
        bosons.insert(0, VectorExchange(0.0, 0.0, (e * charge(f),) * 2, (e * charge(ff),) * 2))
    return bosons


def _charged_current(params: SMParameters) -> list[VectorExchange]:
    gw = params.ee / (params.sw * math.sqrt(2.0))  # gw/√2, purely left-handed
    return [VectorExchange(params.MW, params.WW, (gw, 0.0), (gw, 0.0))]


class SChannelVectorME(MatrixElement):
    """``f f̄ → γ/Z/W → F F̄'``: massless incoming pair, outgoing masses arbitrary.

    Helicity-amplitude result with C_hh' = Σ_V c^in_h c^out_h' / (s − M_V² + i M_V Γ_V), h, h' ∈ {L, R}
    the chiralities of the incoming and outgoing lines and h̄ the opposite of h:

        |M|² = K Σ_h [ 4|C_hh|² (p_f·p_F̄)(p_f̄·p_F) + 4|C_hh̄|² (p_f·p_F)(p_f̄·p_F̄)
                       + 2 Re(C_hL C_hR*) m_F m_F̄ s ],

    K = N_c(out pair) / N_c(in pair) (1/3 for q q̄ → leptons, 3 for leptons → q q̄).  The
    p^μp^ν/M² part of the massive propagators vanishes on the massless incoming current.
    """

    alpha_s_power = 0

    def __init__(self, pdgs: tuple[int, ...], params: SMParameters, slots: tuple[int, int, int, int],
                 bosons: list[VectorExchange]):
        self.pdgs = tuple(pdgs)
        self.process = _process_name(self.pdgs)
        self.masses = tuple(params.mass(p) for p in self.pdgs)
        self.alpha_s_ref = params.aS
        #: positions of (f in, f̄ in, F out, F̄ out)
        self.slots = slots
        self.bosons = tuple(bosons)
        k = 1.0
        if is_quark(pdgs[slots[0]]):
            k /= 3.0
        if is_quark(pdgs[slots[2]]):
            k *= 3.0
        self.colour_factor = k
        self.mass_product = self.masses[slots[2]] * self.masses[slots[3]]
        self._massless = torch.tensor([m == 0 for m in self.masses])

    def evaluate(self, momenta: Tensor) -> Tensor:
        momenta = on_light_cone(momenta, self._massless.to(momenta.device))
        f, fb, ff, ffb = (momenta[:, i] for i in self.slots)
        s = 2.0 * _dot(f, fb)  # massless incoming
        # C_hh' as (real, imaginary) parts, h ∈ {L, R} for the incoming line, h' for the outgoing one
        c_re = [[torch.zeros_like(s) for _ in range(2)] for _ in range(2)]
        c_im = [[torch.zeros_like(s) for _ in range(2)] for _ in range(2)]
        for v in self.bosons:
            d = s - v.mass**2
            den = d * d + (v.mass * v.width) ** 2
            p_re, p_im = d / den, -(v.mass * v.width) / den
            for h in range(2):
                for hh in range(2):
                    c = v.c_in[h] * v.c_out[hh]
                    if c:
                        c_re[h][hh] = c_re[h][hh] + c * p_re
                        c_im[h][hh] = c_im[h][hh] + c * p_im
        same = 4.0 * _dot(f, ffb) * _dot(fb, ff)  # helicity-conserving angular factor, u² if massless
        flip = 4.0 * _dot(f, ff) * _dot(fb, ffb)  # t² if massless
        me = torch.zeros_like(s)
        for h in range(2):
            hf = 1 - h  # the opposite chirality on the outgoing line
            me = me + (c_re[h][h] ** 2 + c_im[h][h] ** 2) * same + (c_re[h][hf] ** 2 + c_im[h][hf] ** 2) * flip
            if self.mass_product:
                interference = c_re[h][0] * c_re[h][1] + c_im[h][0] * c_im[h][1]
                me = me + 2.0 * interference * self.mass_product * s
        return self.colour_factor * me


def _electroweak_s_channel(pdgs: tuple[int, ...], params: SMParameters) -> SChannelVectorME | None:
    """The s-channel γ/Z/W formula if it is MadGraph's whole lowest-order answer, else ``None``."""
    if not all(particle(p).is_fermion for p in pdgs):
        return None
    a, b, c, d = pdgs
    if a * b > 0 or c * d > 0:
        return None
    i_f, i_fb = (0, 1) if a > 0 else (1, 0)
    i_ff, i_ffb = (2, 3) if c > 0 else (3, 2)
    f, fb, ff, ffb = pdgs[i_f], -pdgs[i_fb], pdgs[i_ff], -pdgs[i_ffb]  # all as particle ids
    if params.mass(f) != 0 or params.mass(fb) != 0:
        return None
    quarks_in, quarks_out = is_quark(f), is_quark(ff)
    if f == fb and ff == ffb:  # neutral current
        if quarks_in and quarks_out:
            return None  # pure QCD at lowest QED order
        if not quarks_in and not quarks_out and _doublet(f) == _doublet(ff):
            return None  # t-channel γ/Z/W diagrams (Bhabha, e+ e- > ve ve~, ...)
        bosons = _neutral_current(f, ff, params)
    else:  # charged current: each pair a doublet (CKM = 1), same W charge, no t-channel
        if _doublet(f) != _doublet(fb) or _doublet(ff) != _doublet(ffb) or f == fb or ff == ffb:
            return None
        if _t3(f) != _t3(ff) or _doublet(f) == _doublet(ff):
            return None
        bosons = _charged_current(params)
    return SChannelVectorME(pdgs, params, (i_f, i_fb, i_ff, i_ffb), bosons)


# =====================================================================================================
# QCD 2→2 by crossing from one reference process per family
# =====================================================================================================
# Each family gives Σ_all spins, colours |M|² / g_s⁴ of a reference process r1 r2 → r3 r4 as a
# function of s = (p1+p2)², t = (p1−p3)², u = (p1−p4)² and the heavy-quark mass² m2.  Any crossing
# follows from all-outgoing momenta q_i (−p_i for incoming): s = (q1+q2)², t = (q1+q3)², u = (q1+q4)²
# with a sign (−1)^(number of fermions crossed).  The family's roles are written as the
# outgoing-equivalent species: (anti r1, anti r2, r3, r4).
FamilyFn = Callable[[Tensor, Tensor, Tensor, float], Tensor]


def _qqbar_qpqpbar(s: Tensor, t: Tensor, u: Tensor, m2: float) -> Tensor:
    """q q̄ → q' q̄' (s-channel gluon): 36 · (4/9)(t² + u²)/s²."""
    return 16.0 * (t * t + u * u) / (s * s)


def _qqbar_qqbar(s: Tensor, t: Tensor, u: Tensor, m2: float) -> Tensor:
    """q q̄ → q q̄: 36 · [(4/9)((s²+u²)/t² + (t²+u²)/s²) − (8/27) u²/(s t)]."""
    return 16.0 * ((s * s + u * u) / (t * t) + (t * t + u * u) / (s * s)) - (32.0 / 3.0) * u * u / (s * t)


def _qqbar_gg(s: Tensor, t: Tensor, u: Tensor, m2: float) -> Tensor:
    """q q̄ → g g: 36 · [(32/27)(t²+u²)/(t u) − (8/3)(t²+u²)/s²]."""
    tu2 = t * t + u * u
    return (128.0 / 3.0) * tu2 / (t * u) - 96.0 * tu2 / (s * s)


def _gg_gg(s: Tensor, t: Tensor, u: Tensor, m2: float) -> Tensor:
    """g g → g g: 256 · (9/2)(3 − t u/s² − s u/t² − s t/u²)."""
    return 1152.0 * (3.0 - t * u / (s * s) - s * u / (t * t) - s * t / (u * u))


def _qqbar_QQbar(s: Tensor, t: Tensor, u: Tensor, m2: float) -> Tensor:
    """q q̄ → Q Q̄ (massive Q): 36 · (4/9)(τ1² + τ2² + ρ/2), τ1,2 = (m² − t, u)/s, ρ = 4m²/s."""
    t1, u1 = m2 - t, m2 - u
    return 16.0 * (t1 * t1 + u1 * u1 + 2.0 * m2 * s) / (s * s)


def _gg_QQbar(s: Tensor, t: Tensor, u: Tensor, m2: float) -> Tensor:
    """g g → Q Q̄ (massive Q): 256 · (1/(6τ1τ2) − 3/8)(τ1² + τ2² + ρ − ρ²/(4τ1τ2))."""
    tau1, tau2, rho = (m2 - t) / s, (m2 - u) / s, 4.0 * m2 / s
    t12 = tau1 * tau2
    return 256.0 * (1.0 / (6.0 * t12) - 0.375) * (tau1 * tau1 + tau2 * tau2 + rho - rho * rho / (4.0 * t12))


@dataclass(frozen=True)
class QCDFamily:
    """A reference process: outgoing-equivalent roles ``('g', 0)`` or (flavour symbol, ±1 for q/q̄)."""

    name: str
    roles: tuple[tuple[str, int], ...]
    fn: FamilyFn
    n_fermions_in: int  # incoming fermions of the reference process (for the crossing sign)
    massive: str | None = None  # symbol of the heavy quark; the other quarks must be massless


G = ("g", 0)
QCD_FAMILIES: tuple[QCDFamily, ...] = (
    QCDFamily("q q~ > q' q'~", (("A", -1), ("A", 1), ("B", 1), ("B", -1)), _qqbar_qpqpbar, 2),
    QCDFamily("q q~ > q q~", (("A", -1), ("A", 1), ("A", 1), ("A", -1)), _qqbar_qqbar, 2),
    QCDFamily("q q~ > g g", (("A", -1), ("A", 1), G, G), _qqbar_gg, 2),
    QCDFamily("g g > g g", (G, G, G, G), _gg_gg, 0),
    QCDFamily("q q~ > Q Q~", (("A", -1), ("A", 1), ("Q", 1), ("Q", -1)), _qqbar_QQbar, 2, massive="Q"),
    QCDFamily("g g > Q Q~", (G, G, ("Q", 1), ("Q", -1)), _gg_QQbar, 0, massive="Q"),
)


def _match_roles(family: QCDFamily, species: tuple[int, ...]) -> tuple[tuple[int, ...], dict[str, int]] | None:
    """A permutation (role k ↦ position) and flavour binding that maps ``species`` onto the roles."""
    for perm in itertools.permutations(range(4)):
        binding: dict[str, int] = {}
        ok = True
        for (symbol, sign), pos in zip(family.roles, perm):
            pdg = species[pos]
            if symbol == "g":
                ok = pdg == 21
            else:
                ok = is_quark(pdg) and (pdg > 0) == (sign > 0) and binding.setdefault(symbol, abs(pdg)) == abs(pdg)
            if not ok:
                break
        if ok and len(set(binding.values())) == len(binding):
            return perm, binding
    return None


class CrossedQCDME(MatrixElement):
    """A QCD 2→2 process obtained by crossing a :class:`QCDFamily` reference process.

    |M|² = (−1)^(n_f,in(ref) + n_f,in) g_s⁴ F(s, t, u) / (Π_initial dof · identical-final factor),
    dof = 6 per quark, 16 per gluon, g_s² = 4π aS.
    """

    alpha_s_power = 2

    def __init__(self, pdgs: tuple[int, ...], params: SMParameters, family: QCDFamily,
                 perm: tuple[int, ...], heavy_mass: float):
        self.pdgs = tuple(pdgs)
        self.process = _process_name(self.pdgs)
        self.masses = tuple(params.mass(p) for p in self.pdgs)
        self.alpha_s_ref = params.aS
        self.family = family
        self.perm = tuple(perm)
        self.m2 = heavy_mass**2
        n_f_in = sum(1 for p in pdgs[:2] if p != 21)
        dof = 1.0
        for p in pdgs[:2]:
            dof *= 16.0 if p == 21 else 6.0
        identical = 2.0 if pdgs[2] == pdgs[3] else 1.0
        sign = -1.0 if (n_f_in + family.n_fermions_in) % 2 else 1.0
        self.norm = sign * params.gs**4 / (dof * identical)
        self._massless = torch.tensor([m == 0 for m in self.masses])

    def evaluate(self, momenta: Tensor) -> Tensor:
        flip = torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=momenta.dtype, device=momenta.device)
        q = on_light_cone(momenta, self._massless.to(momenta.device)) * flip[None, :, None]  # all outgoing
        q1, q2, q3, q4 = (q[:, i] for i in self.perm)
        s = _dot(q1 + q2, q1 + q2)
        t = _dot(q1 + q3, q1 + q3)
        u = _dot(q1 + q4, q1 + q4)
        return self.norm * self.family.fn(s, t, u, self.m2)


def _qcd(pdgs: tuple[int, ...], params: SMParameters) -> CrossedQCDME | None:
    if not all(p == 21 or is_quark(p) for p in pdgs):
        return None
    species = tuple(-p if (i < 2 and p != 21) else p for i, p in enumerate(pdgs))  # outgoing-equivalent
    for family in QCD_FAMILIES:
        match = _match_roles(family, species)
        if match is None:
            continue
        perm, binding = match
        light = [flav for sym, flav in binding.items() if sym != family.massive]
        if any(params.mass(flav) != 0 for flav in light):
            continue
        heavy = params.mass(binding[family.massive]) if family.massive else 0.0
        if family.massive and heavy == 0:
            continue  # the massless families cover it
        if family.name == "g g > Q Q~" and params.width(binding["Q"]) != 0:
            if sum(1 for p in pdgs[:2] if abs(p) == binding["Q"]) == 1:
                return None  # Q g > Q g: MadGraph's s-channel Q propagator carries the width
        return CrossedQCDME(pdgs, params, family, perm, heavy)
    return None


# =====================================================================================================
# factory
# =====================================================================================================
def analytic_matrix_element(pdgs: tuple[int, ...], params: SMParameters) -> MatrixElement | None:
    """The analytic |M|² of a 2→2 process given by signed PDG ids (incoming first), or ``None``.

    Raises :class:`~matrix_elements.particles.UnknownParticleError` for an unknown PDG id.
    """
    pdgs = tuple(int(p) for p in pdgs)
    for p in pdgs:
        particle(p)  # validate
    if len(pdgs) != 4:
        return None
    if all(is_quark(p) or p == 21 for p in pdgs):
        return _qcd(pdgs, params) or _electroweak_s_channel(pdgs, params)
    if all(is_quark(p) or is_lepton(p) for p in pdgs):
        return _electroweak_s_channel(pdgs, params)
    return None


# =====================================================================================================
# closed-form partonic cross sections (pb)
# =====================================================================================================
def _as_tensor(s: Tensor | float) -> Tensor:
    return torch.as_tensor(s, dtype=torch.float64, device=s.device if isinstance(s, Tensor) else None)


def sigma_hat_ee_mumu(s: Tensor | float, params: SMParameters) -> Tensor:
    """σ̂(e+ e− → γ*/Z → μ+ μ−) in pb at ŝ = ``s`` GeV², massless leptons, Z with fixed width.

    σ = 4πα²/(3s) [Q_e²Q_μ² + 2 Q_e Q_μ v_e v_μ Re χ + (v_e² + a_e²)(v_μ² + a_μ²)|χ|²]
    with Q_e = Q_μ = −1, v = T3 − 2 Q sw², a = T3, χ = s / (4 sw² cw² (s − MZ² + i MZ ΓZ)).
    """
    s = _as_tensor(s)
    sw2, mz, wz, alpha = params.sw2, params.MZ, params.WZ, params.aEW
    q_e = q_mu = -1.0
    v = -0.5 - 2.0 * q_e * sw2
    a = -0.5
    kappa = 1.0 / (4.0 * sw2 * (1.0 - sw2))
    den = (s - mz**2) ** 2 + (mz * wz) ** 2
    re_chi = kappa * s * (s - mz**2) / den
    abs_chi2 = kappa**2 * s**2 / den
    bracket = (q_e * q_mu) ** 2 + 2.0 * q_e * q_mu * v * v * re_chi + (v * v + a * a) ** 2 * abs_chi2
    return 4.0 * math.pi * alpha**2 / (3.0 * s) * bracket * GEV2_TO_PB


def sigma_hat_qqbar_QQbar(s: Tensor | float, m: float, alpha_s: float) -> Tensor:
    """σ̂(q q̄ → Q Q̄) in pb: (8π α_s²/27s) β (1 + ρ/2), ρ = 4m²/s, β = √(1 − ρ); 0 below threshold."""
    s = _as_tensor(s)
    rho = 4.0 * m * m / s
    beta = torch.sqrt(torch.clamp(1.0 - rho, min=0.0))
    return 8.0 * math.pi * alpha_s**2 / (27.0 * s) * beta * (1.0 + rho / 2.0) * GEV2_TO_PB


def sigma_hat_gg_QQbar(s: Tensor | float, m: float, alpha_s: float) -> Tensor:
    """σ̂(g g → Q Q̄) in pb (Combridge; Nason–Dawson–Ellis LO); 0 below threshold.

    σ = (π α_s²/3s) [(1 + ρ + ρ²/16) ln((1+β)/(1−β)) − β (7/4 + 31ρ/16)].
    """
    s = _as_tensor(s)
    rho = 4.0 * m * m / s
    beta = torch.sqrt(torch.clamp(1.0 - rho, min=0.0))
    log = torch.log1p(beta) - torch.log1p(-beta)
    return math.pi * alpha_s**2 / (3.0 * s) * ((1.0 + rho + rho * rho / 16.0) * log - beta * (1.75 + 31.0 * rho / 16.0)) * GEV2_TO_PB
