"""Particle content of MadGraph's ``sm`` model: names, PDG ids, quantum numbers.

Conventions follow MadGraph5_aMC@NLO's ``sm`` model (``import model sm``):

* quarks ``d u s c b t`` (PDG 1..6) and antiquarks with a trailing ``~``;
* leptons ``e- mu- ta-`` (11, 13, 15), neutrinos ``ve vm vt`` (12, 14, 16);
* bosons ``g a z w+ w- h`` (21, 22, 23, 24, -24, 25).

Masses and widths are *names* of parameters (``MT``, ``WT``, ...) resolved by
:class:`matrix_elements.model.SMParameters`; a particle whose mass parameter is
``ZERO`` is massless.  In the default ``sm`` model the b quark and the tau are
massive and the multiparticle ``p`` excludes the b (four-flavour scheme);
``sm-no_b_mass`` would put b into ``p`` and ``j``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Particle:
    """One particle species.

    ``spin`` is 2s+1 (1 scalar, 2 fermion, 3 vector); ``colour`` is the SU(3)
    representation (1, 3, -3, 8); ``charge`` in units of the positron charge.
    """

    name: str
    antiname: str
    pdg: int
    spin: int
    colour: int
    charge: float
    mass: str
    width: str

    @property
    def is_fermion(self) -> bool:
        return self.spin == 2

    @property
    def self_conjugate(self) -> bool:
        return self.name == self.antiname


def _quark(name: str, pdg: int, charge: float, mass: str = "ZERO", width: str = "ZERO") -> Particle:
    return Particle(name, name + "~", pdg, 2, 3, charge, mass, width)


def _lepton(name: str, anti: str, pdg: int, charge: float, mass: str = "ZERO") -> Particle:
    return Particle(name, anti, pdg, 2, 1, charge, mass, "ZERO")


#: Particles (not antiparticles) of the model, keyed by PDG id (> 0 for particles).
PARTICLES: dict[int, Particle] = {
    p.pdg: p
    for p in [
        _quark("d", 1, -1 / 3),
        _quark("u", 2, 2 / 3),
        _quark("s", 3, -1 / 3),
        _quark("c", 4, 2 / 3),
        _quark("b", 5, -1 / 3, "MB"),
        _quark("t", 6, 2 / 3, "MT", "WT"),
        _lepton("e-", "e+", 11, -1.0),
        _lepton("ve", "ve~", 12, 0.0),
        _lepton("mu-", "mu+", 13, -1.0),
        _lepton("vm", "vm~", 14, 0.0),
        _lepton("ta-", "ta+", 15, -1.0, "MTA"),
        _lepton("vt", "vt~", 16, 0.0),
        Particle("g", "g", 21, 3, 8, 0.0, "ZERO", "ZERO"),
        Particle("a", "a", 22, 3, 1, 0.0, "ZERO", "ZERO"),
        Particle("z", "z", 23, 3, 1, 0.0, "MZ", "WZ"),
        Particle("w+", "w-", 24, 3, 1, 1.0, "MW", "WW"),
        Particle("h", "h", 25, 1, 1, 0.0, "MH", "WH"),
    ]
}

#: name -> signed PDG id (antiparticles negative; self-conjugate bosons positive).
NAME_TO_PDG: dict[str, int] = {}
for _p in PARTICLES.values():
    NAME_TO_PDG[_p.name] = _p.pdg
    if not _p.self_conjugate:
        NAME_TO_PDG[_p.antiname] = -_p.pdg

#: signed PDG id -> MadGraph name.
PDG_TO_NAME: dict[int, str] = {v: k for k, v in NAME_TO_PDG.items()}

# MadGraph accepts a few aliases (case-insensitive names, 'gamma', 'z0', 'h0').
ALIASES: dict[str, str] = {"gamma": "a", "photon": "a", "z0": "z", "h0": "h", "gluon": "g"}

#: MadGraph ``sm`` model default multiparticle labels (4-flavour: no b in p/j).
MULTIPARTICLES: dict[str, tuple[str, ...]] = {
    "p": ("g", "u", "c", "d", "s", "u~", "c~", "d~", "s~"),
    "j": ("g", "u", "c", "d", "s", "u~", "c~", "d~", "s~"),
    "l+": ("e+", "mu+"),
    "l-": ("e-", "mu-"),
    "vl": ("ve", "vm", "vt"),
    "vl~": ("ve~", "vm~", "vt~"),
}


class UnknownParticleError(ValueError):
    """A particle name that the model does not know."""


def pdg_id(name: str) -> int:
    """Signed PDG id of a MadGraph particle name (``'t~'`` -> -6)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in NAME_TO_PDG:
        raise UnknownParticleError(f"unknown particle '{name}' (known: {', '.join(sorted(NAME_TO_PDG))})")
    return NAME_TO_PDG[key]


def particle(pdg: int) -> Particle:
    """The :class:`Particle` of a signed PDG id (antiparticles map to their particle)."""
    try:
        return PARTICLES[abs(pdg)]
    except KeyError:
        raise UnknownParticleError(f"unknown PDG id {pdg}") from None


def name_of(pdg: int) -> str:
    """MadGraph name of a signed PDG id."""
    if pdg not in PDG_TO_NAME:
        raise UnknownParticleError(f"unknown PDG id {pdg}")
    return PDG_TO_NAME[pdg]


def anti(pdg: int) -> int:
    """PDG id of the antiparticle (self-conjugate bosons map to themselves)."""
    return pdg if particle(pdg).self_conjugate else -pdg


def charge(pdg: int) -> float:
    """Electric charge in units of e (sign follows the PDG id)."""
    q = particle(pdg).charge
    return q if pdg > 0 else -q


def colour(pdg: int) -> int:
    """SU(3) representation: 1, 3 (quark), -3 (antiquark), 8 (gluon)."""
    c = particle(pdg).colour
    return -c if (pdg < 0 and c == 3) else c


def is_quark(pdg: int) -> bool:
    return 1 <= abs(pdg) <= 6


def is_lepton(pdg: int) -> bool:
    return 11 <= abs(pdg) <= 16


def lepton_family(pdg: int) -> int:
    """Lepton family number (1 e, 2 mu, 3 tau) with sign = lepton number; 0 otherwise."""
    if not is_lepton(pdg):
        return 0
    fam = (abs(pdg) - 11) // 2 + 1
    return fam if pdg > 0 else -fam
