"""The interactions of MadGraph's ``sm`` model (unitary gauge, CKM = 1, no ghosts or Goldstones).

Each :class:`Interaction` lists its particles *all outgoing* (as a UFO vertex does), a Lorentz
structure and the vertex factor.  Couplings are MadGraph's ``GC_*`` values (they include the i
of the Feynman rule) for the parameter point; for example the photon couples as i e Q γ^μ
(GC_3 = −i e for the electron), the gluon as i g_s γ^μ T^a, the triple-gluon vertex is
−g_s f^{abc} × VVV1 and the Z as i e/(s_w c_w) γ^μ [(T3 − Q s_w²) P_L − Q s_w² P_R].

Lorentz kinds and slot orders (see :mod:`matrix_elements.lorentz`):

* ``FFV`` (ψ̄_a, ψ_b, V): outgoing particles (a, b̄, V), factor γ^μ (cL P_L + cR P_R);
* ``FFS`` (ψ̄_a, ψ_b, S): factor cL P_L + cR P_R;
* ``VVV`` (V1, V2, V3): c × VVV1; ``VVVV`` (V1..V4): c × [a g14 g23 + b g13 g24 + d g12 g34];
* ``VVS``, ``VVSS``: c g^{μν}; ``SSS``, ``SSSS``: c.

Colour structures (``colour``): ``'1'`` (none, or δ between a quark and an antiquark slot),
``'T'`` (T^a_{q q̄} for the (ψ̄, ψ, g) slots), ``'f'`` (f^{a1 a2 a3}), and for the four-gluon
vertex one component per colour structure ``f(e,1,2) f(3,4,e)``, ``f(e,1,3) f(2,4,e)``,
``f(e,1,4) f(2,3,e)`` (with VVVV1, VVVV3, VVVV4), exactly as in the UFO model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .model import SMParameters
from .particles import PARTICLES, anti, charge

# (a, b, d) coefficients of g14 g23, g13 g24, g12 g34 for the UFO four-vector structures
VVVV1 = (1.0, -1.0, 0.0)
VVVV2 = (1.0, 1.0, -2.0)
VVVV3 = (1.0, 0.0, -1.0)
VVVV4 = (0.0, 1.0, -1.0)
VVVV5 = (1.0, -0.5, -0.5)


@dataclass(frozen=True)
class Component:
    """One Lorentz × colour term of an interaction.

    ``coupling``: complex vertex factor (``c`` of VVV/VVVV/VVS/...), or ``(cL, cR)`` for fermion
    vertices; ``lorentz_args``: extra structure data (the VVVV coefficients); ``colour``: the
    colour structure tag (``'1'``, ``'T'``, ``'f'``, ``'ff12'``, ``'ff13'``, ``'ff14'``).
    """

    coupling: object
    colour: str
    lorentz_args: tuple = ()


@dataclass(frozen=True)
class Interaction:
    """A vertex of the model: particles all outgoing, in the slot order of its Lorentz kind."""

    name: str
    particles: tuple[int, ...]
    lorentz: str
    components: tuple[Component, ...]
    qcd: int
    qed: int

    @property
    def n_legs(self) -> int:
        return len(self.particles)


@dataclass
class Model:
    """The interaction table and per-particle data used by the diagram generator."""

    params: SMParameters
    interactions: list[Interaction] = field(default_factory=list)

    def mass(self, pdg: int) -> float:
        return self.params.mass(pdg)

    def width(self, pdg: int) -> float:
        return self.params.width(pdg)


def _t3(pdg: int) -> float:
    return 0.5 if abs(pdg) % 2 == 0 else -0.5


def sm_model(params: SMParameters) -> Model:
    """The ``sm`` interactions at the parameter point ``params`` (couplings at the card's aS)."""
    e, gs, sw, cw = params.ee, params.gs, params.sw, params.cw
    gw = e / sw
    vev = params.vev
    lam = params.lam
    model = Model(params)
    add = model.interactions.append

    def ffv(name, a, b, v, cl, cr, colour="1", qcd=0, qed=1):
        add(Interaction(name, (a, anti(b), v), "FFV", (Component((cl, cr), colour),), qcd, qed))

    quarks = [1, 2, 3, 4, 5, 6]
    leptons = [11, 13, 15]
    neutrinos = [12, 14, 16]
    gz = e / (sw * cw)
    # --- QCD -------------------------------------------------------------------------------
    for q in quarks:
        ffv(f"gqq_{q}", q, q, 21, 1j * gs, 1j * gs, "T", qcd=1, qed=0)
    add(Interaction("ggg", (21, 21, 21), "VVV", (Component(-gs, "f"),), 1, 0))
    add(Interaction("gggg", (21, 21, 21, 21), "VVVV", (
        Component(1j * gs * gs, "ff12", VVVV1),
        Component(1j * gs * gs, "ff13", VVVV3),
        Component(1j * gs * gs, "ff14", VVVV4),
    ), 2, 0))
    # --- photon and Z ------------------------------------------------------------------------
    for f in quarks + leptons + neutrinos:
        q = charge(f)
        if q != 0:
            ffv(f"aff_{f}", f, f, 22, 1j * e * q, 1j * e * q)
        cl = 1j * gz * (_t3(f) - q * sw * sw)
        cr = 1j * gz * (-q * sw * sw)
        ffv(f"zff_{f}", f, f, 23, cl, cr)
    # --- W (CKM = 1): ψ̄_up γ P_L ψ_down W+ and its conjugate ----------------------------------
    gwf = 1j * e / (sw * math.sqrt(2.0))
    for up, down in ((2, 1), (4, 3), (6, 5), (12, 11), (14, 13), (16, 15)):
        ffv(f"wff_{up}{down}", up, down, -24, gwf, 0.0)  # outgoing (up, down~, W-)
        ffv(f"wff_{down}{up}", down, up, 24, gwf, 0.0)   # outgoing (down, up~, W+)
    # --- Yukawa: -i m_f / v -------------------------------------------------------------------
    for f, y in ((6, params.yt), (5, params.yb), (15, params.ytau)):
        c = -1j * y / math.sqrt(2.0)
        if c != 0:
            add(Interaction(f"hff_{f}", (f, anti(f), 25), "FFS", (Component((c, c), "1"),), 0, 1))
    # --- gauge self-couplings ------------------------------------------------------------------
    add(Interaction("wwa", (-24, 24, 22), "VVV", (Component(1j * e, "1"),), 0, 1))  # [W-, W+, A]
    add(Interaction("wwz", (-24, 24, 23), "VVV", (Component(1j * gw * cw, "1"),), 0, 1))
    add(Interaction("wwww", (-24, -24, 24, 24), "VVVV", (Component(-1j * gw * gw, "1", VVVV2),), 0, 2))
    add(Interaction("wwzz", (-24, 24, 23, 23), "VVVV", (Component(1j * gw * gw * cw * cw, "1", VVVV2),), 0, 2))
    add(Interaction("aaww", (22, 22, -24, 24), "VVVV", (Component(1j * gw * gw * sw * sw, "1", VVVV2),), 0, 2))
    add(Interaction("awwz", (22, -24, 24, 23), "VVVV", (Component(-2j * gw * gw * sw * cw, "1", VVVV5),), 0, 2))
    # --- Higgs --------------------------------------------------------------------------------
    add(Interaction("wwh", (-24, 24, 25), "VVS", (Component(1j * e * e * vev / (2 * sw * sw), "1"),), 0, 1))
    add(Interaction("zzh", (23, 23, 25), "VVS", (Component(1j * e * e * vev / (2 * sw * sw * cw * cw), "1"),), 0, 1))
    add(Interaction("wwhh", (-24, 24, 25, 25), "VVSS", (Component(1j * e * e / (2 * sw * sw), "1"),), 0, 2))
    add(Interaction("zzhh", (23, 23, 25, 25), "VVSS", (Component(1j * e * e / (2 * sw * sw * cw * cw), "1"),), 0, 2))
    add(Interaction("hhh", (25, 25, 25), "SSS", (Component(-6j * lam * vev, "1"),), 0, 1))
    add(Interaction("hhhh", (25, 25, 25, 25), "SSSS", (Component(-6j * lam, "1"),), 0, 2))
    return model


#: spin (2s+1) of a signed PDG id
def spin(pdg: int) -> int:
    return PARTICLES[abs(pdg)].spin
