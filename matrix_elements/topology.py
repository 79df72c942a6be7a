"""Propagator trees of Feynman diagrams, as plain data for phase-space channels.

Legs are numbered 0..n−1 in process order, incoming first.  With two incoming legs (MadGraph's
convention) the propagators on the tree path between leg 0 and leg 1 are *t-channel*, all others
*s-channel*:

* an s-channel propagator is described by the final-state legs it decays into (``legs``); its
  invariant mass is (Σ_{i∈legs} p_i)²; ``pdg`` is the resonance (the particle that decays into
  those legs, e.g. Z or W+); ``daughters`` are its decay products: ``k ≥ 0`` external leg k,
  ``k < 0`` the s-channel propagator ``propagators[−k−1]``;
* a t-channel propagator is described by the legs on the side of leg 0 (``legs`` contains 0);
  its momentum is p_0 − Σ_{i∈legs, i≠0} p_i, so t = (p_0 − Σ p_i)²; ``pdg`` is the particle
  emitted from the leg-0 side towards leg 1 (as an outgoing particle of that side).

``Topology.propagators`` lists s-channel propagators bottom-up (daughters before mothers), then
the t-channel ones ordered from leg 0 to leg 1.  ``Topology.t_chain`` lists the vertices along
the path from leg 0 to leg 1: for each, the objects emitted into the final state (external leg
indices ≥ 0 or s-channel propagators as −k−1).  A pure s-channel 2→n diagram has one vertex
in ``t_chain`` (e.g. ``((-1,),)`` for e+ e- > Z > mu+ mu-).  With one incoming leg (decays) all
propagators are s-channel and ``t_chain`` holds the single vertex of the decaying particle.
Masses and widths in GeV (the widths actually used in the propagators).
"""
from __future__ import annotations

from dataclasses import dataclass

from .particles import name_of


@dataclass(frozen=True)
class Propagator:
    """One internal line of a diagram."""

    pdg: int
    mass: float
    width: float
    legs: tuple[int, ...]
    channel: str                         # 's' or 't'
    daughters: tuple[int, ...] = ()      # s-channel only

    def describe(self) -> str:
        legs = ",".join(str(i + 1) for i in self.legs)
        return f"{name_of(self.pdg)}({self.channel}:{legs})"


@dataclass(frozen=True)
class Topology:
    """The propagator tree of one diagram."""

    diagram: int
    externals: tuple[tuple[int, float], ...]   # (pdg, mass) per leg
    n_in: int
    propagators: tuple[Propagator, ...]
    t_chain: tuple[tuple[int, ...], ...]

    @property
    def s_channel(self) -> tuple[Propagator, ...]:
        return tuple(p for p in self.propagators if p.channel == "s")

    @property
    def t_channel(self) -> tuple[Propagator, ...]:
        return tuple(p for p in self.propagators if p.channel == "t")

    def describe(self) -> str:
        if not self.propagators:
            return "contact (no propagator)"
        return " ".join(p.describe() for p in self.propagators)


def _partition(final: frozenset[int], objects: list[tuple[frozenset[int], int]]) -> tuple[int, ...]:
    """Split ``final`` into maximal s-channel objects (code −k−1) and single legs (code k)."""
    chosen = []
    covered: set[int] = set()
    for legs, code in sorted(objects, key=lambda o: -len(o[0])):
        if legs <= final and not (legs & covered):
            chosen.append((min(legs), code))
            covered |= legs
    for leg in final - covered:
        chosen.append((leg, leg))
    return tuple(code for _, code in sorted(chosen))


def build_topology(diagram: int, externals: tuple[tuple[int, float], ...], n_in: int,
                   lines: list[tuple[frozenset[int], int, float, float]]) -> Topology:
    """Topology from the internal lines of a diagram.

    ``lines``: (leaf set S not containing the root leg n−1, particle X that the S side emits as an
    outgoing particle, mass, width) for every propagator.
    """
    n = len(externals)
    everything = frozenset(range(n))
    finals = frozenset(range(n_in, n))
    s_lines: list[tuple[frozenset[int], int, float, float]] = []
    t_lines: list[tuple[frozenset[int], int, float, float]] = []
    for legs, x, mass, width in lines:
        other = everything - legs
        anti_x = _anti(x)
        if n_in == 2 and (0 in legs) != (1 in legs):
            if 0 in legs:
                t_lines.append((legs, x, mass, width))
            else:
                t_lines.append((other, anti_x, mass, width))
        elif n_in == 1:
            if 0 in legs:
                s_lines.append((other, anti_x, mass, width))
            else:
                s_lines.append((legs, x, mass, width))
        else:
            if legs <= finals:
                s_lines.append((legs, x, mass, width))
            else:
                s_lines.append((other, anti_x, mass, width))
    s_lines.sort(key=lambda l: (len(l[0]), sorted(l[0])))
    props: list[Propagator] = []
    objects: list[tuple[frozenset[int], int]] = []
    for k, (legs, x, mass, width) in enumerate(s_lines):
        daughters = _partition(legs, [o for o in objects if o[0] < legs])
        props.append(Propagator(x, mass, width, tuple(sorted(legs)), "s", daughters))
        objects.append((legs, -k - 1))
    t_lines.sort(key=lambda l: len(l[0]))
    chain = []
    if n_in == 2:
        prev = frozenset({0})
        for legs, x, mass, width in t_lines:
            props.append(Propagator(x, mass, width, tuple(sorted(legs)), "t"))
            chain.append(_partition(legs - prev, objects))
            prev = legs
        chain.append(_partition(everything - prev - {1}, objects))
    else:
        chain.append(_partition(finals, objects))
    return Topology(diagram, externals, n_in, tuple(props), tuple(chain))


def _anti(pdg: int) -> int:
    from .particles import anti

    return anti(pdg)
