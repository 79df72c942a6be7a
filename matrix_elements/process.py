"""MadGraph process syntax: parsing, multiparticle expansion, subprocess grouping.

``parse_process("p p > t t~ j QED<=0")`` gives a :class:`ProcessDefinition`;
:func:`expand` turns it into the partonic :class:`Subprocess` es that conserve
charge, baryon number, lepton-family numbers and colour triality (whether one has
tree diagrams is the diagram generator's business); :func:`group_subprocesses`
merges subprocesses whose |M|² are identical by a symmetry of the model, as
MadGraph does for its P-directories:

* beam mirror: ``u~ u > e+ e-`` is ``u u~ > e+ e-`` with the incoming momenta swapped;
* generation relabelling with CKM = 1 (quark-generation numbers are conserved): (u,d) <-> (c,s) as doublets, (e,ve) <->
  (mu,vm) as doublets (massive b, t, ta and vt stay as they are, since vt pairs
  with the massive ta).

Final-state positions that come from the same multiparticle label are
unordered: each combination appears once (MadGraph does the same), ordered as in
the label's definition.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from .particles import (
    MULTIPARTICLES,
    UnknownParticleError,
    charge,
    colour,
    is_lepton,
    is_quark,
    lepton_family,
    name_of,
    pdg_id,
)


class ProcessError(ValueError):
    """A process string that cannot be parsed or describes an impossible process."""


@dataclass(frozen=True)
class ProcessDefinition:
    """A parsed process string: per position the allowed PDG ids, plus coupling orders."""

    text: str
    initial: tuple[tuple[int, ...], ...]
    final: tuple[tuple[int, ...], ...]
    #: labels as typed, one per position (used to treat repeated final-state labels as unordered)
    labels: tuple[str, ...]
    #: coupling-order constraints, e.g. {"QED": ("<=", 2), "QCD^2": ("==", 4)}
    orders: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Subprocess:
    """One partonic process: signed PDG ids, incoming first."""

    pdgs: tuple[int, ...]
    n_in: int = 2

    @property
    def incoming(self) -> tuple[int, ...]:
        return self.pdgs[: self.n_in]

    @property
    def outgoing(self) -> tuple[int, ...]:
        return self.pdgs[self.n_in :]

    @property
    def name(self) -> str:
        return " ".join(name_of(p) for p in self.incoming) + " > " + " ".join(name_of(p) for p in self.outgoing)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class GroupMember:
    """A subprocess whose |M|² equals the group's representative (incoming momenta swapped if ``mirror``)."""

    subprocess: Subprocess
    mirror: bool


@dataclass(frozen=True)
class SubprocessGroup:
    """Subprocesses sharing one |M|²: evaluate the representative once, weight each member with its PDFs."""

    representative: Subprocess
    members: tuple[GroupMember, ...]

    @property
    def name(self) -> str:
        return self.representative.name

    @property
    def has_mirror(self) -> bool:
        return any(m.mirror for m in self.members)


_ORDER_RE = re.compile(r"^([A-Za-z]+(?:\^2)?)(<=|>=|==|=|<|>)(\d+)$")


def parse_process(text: str) -> ProcessDefinition:
    """Parse MadGraph process syntax (``"p p > e+ e- j QED<=2"``)."""
    if not isinstance(text, str) or not text.strip():
        raise ProcessError("empty process string")
    raw = text.strip()
    if "," in raw:
        raise ProcessError(f"decay-chain syntax ',' is not supported yet: '{raw}'")
    for sym in ("$", "/", "@"):
        if sym in raw:
            raise ProcessError(f"'{sym}' in process strings is not supported yet: '{raw}'")
    # Normalise spacing around order operators: "QED <= 2" -> "QED<=2".
    norm = re.sub(r"\s*(<=|>=|==)\s*", r"\1", raw)
    norm = re.sub(r"(?<=[A-Za-z2])\s*=\s*(?=\d)", "=", norm)
    if norm.count(">") - len(re.findall(r">=|<=|==", norm)) - norm.count(">=") != 1 and norm.split().count(">") != 1:
        raise ProcessError(f"a process needs exactly one '>' between initial and final state: '{raw}'")
    tokens = norm.split()
    if tokens.count(">") != 1:
        raise ProcessError(f"a process needs exactly one ' > ' between initial and final state: '{raw}'")
    arrow = tokens.index(">")
    initial_tokens = tokens[:arrow]
    final_tokens: list[str] = []
    orders: dict[str, tuple[str, int]] = {}
    for tok in tokens[arrow + 1 :]:
        m = _ORDER_RE.match(tok)
        if m:
            name, op, value = m.group(1).upper(), m.group(2), int(m.group(3))
            op = {"=": "==", "<": "<=", ">": ">="}.get(op, op)
            if name.rstrip("^2") not in ("QCD", "QED"):
                raise ProcessError(f"unknown coupling order '{m.group(1)}' (the sm model has QCD and QED)")
            orders[name] = (op, value)
        else:
            if orders:
                raise ProcessError(f"particle '{tok}' after the coupling orders in '{raw}'")
            final_tokens.append(tok)
    if len(initial_tokens) != 2:
        raise ProcessError(f"need exactly two incoming particles, got {len(initial_tokens)} in '{raw}'")
    if not final_tokens:
        raise ProcessError(f"no final-state particles in '{raw}'")

    def resolve(tok: str) -> tuple[int, ...]:
        key = tok.lower()
        if key in MULTIPARTICLES:
            return tuple(pdg_id(n) for n in MULTIPARTICLES[key])
        try:
            return (pdg_id(tok),)
        except UnknownParticleError:
            raise ProcessError(
                f"unknown particle '{tok}' in '{raw}' (particles: d u s c b t (+~), e- mu- ta- ve vm vt (+ antiparticles), "
                f"g a z w+ w- h; multiparticles: {', '.join(MULTIPARTICLES)})"
            ) from None

    return ProcessDefinition(
        text=raw,
        initial=tuple(resolve(t) for t in initial_tokens),
        final=tuple(resolve(t) for t in final_tokens),
        labels=tuple(t.lower() for t in initial_tokens + final_tokens),
        orders=orders,
    )


def conservation_violation(pdgs_in: tuple[int, ...], pdgs_out: tuple[int, ...]) -> str | None:
    """Why a partonic process is forbidden (charge, baryon, lepton-family number, colour), or None."""
    sign = [-1] * len(pdgs_in) + [1] * len(pdgs_out)
    all_pdgs = list(pdgs_in) + list(pdgs_out)

    def net(fn) -> float:
        return sum(s * fn(p) for s, p in zip(sign, all_pdgs))

    if abs(net(charge)) > 1e-9:
        return "electric charge is not conserved"
    if net(lambda p: (1 if p > 0 else -1) if is_quark(p) else 0) != 0:
        return "baryon number is not conserved"
    for gen in (1, 2, 3):  # CKM = 1: quark-generation numbers are conserved
        if net(lambda p: (1 if p > 0 else -1) if is_quark(p) and (abs(p) + 1) // 2 == gen else 0) != 0:
            return "quark-generation number is not conserved (CKM = 1)"
    for fam in (1, 2, 3):
        if net(lambda p: (1 if lepton_family(p) == fam else -1 if lepton_family(p) == -fam else 0)) != 0:
            return "lepton-family number is not conserved"
    triality = sum(s * (1 if colour(p) == 3 else -1 if colour(p) == -3 else 0) for s, p in zip(sign, all_pdgs))
    if triality % 3 != 0:
        return "colour cannot be conserved"
    n_coloured = sum(1 for p in all_pdgs if colour(p) != 1)
    if n_coloured == 1:
        return "a single coloured particle cannot form a colour singlet"
    return None


def expand(definition: ProcessDefinition) -> list[Subprocess]:
    """All partonic subprocesses allowed by the conservation laws, in a stable order."""
    n_in = len(definition.initial)
    final_labels = definition.labels[n_in:]
    seen: set[tuple[int, ...]] = set()
    result: list[Subprocess] = []
    for incoming in itertools.product(*definition.initial):
        for outgoing in itertools.product(*definition.final):
            # positions sharing a label are unordered: keep the combination sorted by the label's order
            canon = list(outgoing)
            for label in set(final_labels):
                pos = [i for i, l in enumerate(final_labels) if l == label]
                if len(pos) > 1:
                    order = definition.final[pos[0]]
                    vals = sorted((outgoing[i] for i in pos), key=order.index)
                    for i, v in zip(pos, vals):
                        canon[i] = v
            key = tuple(incoming) + tuple(canon)
            if key in seen:
                continue
            seen.add(key)
            if conservation_violation(tuple(incoming), tuple(canon)) is None:
                result.append(Subprocess(key, n_in))
    return result


def check_process(definition: ProcessDefinition) -> list[Subprocess]:
    """:func:`expand`, raising a :class:`ProcessError` that says why if nothing survives."""
    subs = expand(definition)
    if not subs:
        # explain with the first combination
        first_in = tuple(c[0] for c in definition.initial)
        first_out = tuple(c[0] for c in definition.final)
        reason = conservation_violation(first_in, first_out) or "no allowed combination"
        raise ProcessError(f"process '{definition.text}' is impossible: {reason}")
    return subs


# ---- grouping by symmetry -------------------------------------------------------------------------
_GEN_SWAP = {1: 3, 2: 4, 3: 1, 4: 2, 11: 13, 12: 14, 13: 11, 14: 12}


def _relabellings(pdgs: tuple[int, ...]):
    """Images of a process under quark-doublet and lepton-doublet generation swaps (identity included)."""
    def swap(p: int, which: set[int]) -> int:
        a = abs(p)
        if a in which:
            return (1 if p > 0 else -1) * _GEN_SWAP[a]
        return p

    quark, lepton = {1, 2, 3, 4}, {11, 12, 13, 14}
    for sq, sl in itertools.product((False, True), repeat=2):
        which = (quark if sq else set()) | (lepton if sl else set())
        yield tuple(swap(p, which) for p in pdgs)


def group_subprocesses(subprocesses: list[Subprocess]) -> list[SubprocessGroup]:
    """Merge subprocesses with identical |M|² (mirror and generation symmetry, see module docstring).

    A member joins a group only if some symmetry image of it equals the representative position by
    position, so the representative's |M|² applies to the member's momenta leg by leg (with the two
    incoming momenta swapped for a mirror member).
    """
    groups: list[tuple[Subprocess, list[GroupMember]]] = []
    index: dict[tuple[int, ...], int] = {}
    for sub in subprocesses:
        found = None
        for image in _relabellings(sub.pdgs):
            for mirror in (False, True):
                cand = (image[1], image[0]) + image[2:] if mirror else image
                if cand in index:
                    found = (index[cand], mirror)
                    break
            if found:
                break
        if found:
            groups[found[0]][1].append(GroupMember(sub, found[1]))
        else:
            index[sub.pdgs] = len(groups)
            groups.append((sub, [GroupMember(sub, False)]))
    return [SubprocessGroup(rep, tuple(members)) for rep, members in groups]
