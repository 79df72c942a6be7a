"""Tree-level Feynman diagrams as shared off-shell subtrees (HELAS-style wavefunction recycling).

External legs are numbered 0..n−1 in process order (incoming first) and described by their
*outgoing* particle (an incoming u is an outgoing u~).  The last leg is the *root*: every diagram
is one vertex joining the root leg with two or three subtrees that partition the other legs.
A subtree (a :class:`Node`) with leaf set S "acts as an outgoing particle X" with momentum
P_S = Σ_{i∈S} p_i(outgoing); it is built from a vertex holding X̄ in its open slot and child
subtrees in the other slots.  Each distinct subtree is one node, computed once per event batch.

A *term* is the amplitude of one Lorentz/colour component choice of a diagram (the four-gluon
vertex has three components, so a diagram with k such vertices has 3^k terms, all sharing the
diagram id).  Diagrams are deduplicated exactly once per topology, so counts match MadGraph's
(``g g > t t~ g g``: 123, ``g g > t t~ g g g``: 1240).

Fermion signs: every fermion chain runs from its ψ̄ end (ū or v̄) to its ψ end (u or v); the
sign of a term is the parity of the permutation taking the external fermion legs in process
order to the sequence (ψ̄-end₁, ψ-end₁, ψ̄-end₂, ψ-end₂, …) (Wick's theorem).

Coupling orders: each vertex carries (QCD, QED) orders; nodes exceeding an upper bound are pruned
while generating.  By default (``orders=None``) only diagrams of the lowest QED order are kept,
as MadGraph does.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .base import MatrixElementError
from .particles import anti, name_of, particle
from .vertices import Interaction, Model


class NoDiagramsError(MatrixElementError):
    """The process has no tree-level diagram (with the requested coupling orders)."""


@dataclass
class Node:
    """One off-shell subtree (or an external leg when ``interaction`` is None)."""

    id: int
    legs: int                      # bitmask of the external legs below this node
    particle: int                  # acts as an outgoing ``particle`` towards the rest of the diagram
    interaction: Interaction | None = None
    component: int = 0
    open_slot: int = -1
    children: tuple[tuple[int, int], ...] = ()   # (slot, child node id) for the other slots
    qcd: int = 0
    qed: int = 0
    fermion_end: int | None = None               # external leg at the open end of its fermion chain
    chains: tuple[tuple[int, int], ...] = ()     # completed (ψ̄-end, ψ-end) chains inside
    topo: int = 0                                # topology id, the same for all components
    leg: int | None = None                       # the external leg, for external nodes


@dataclass
class Term:
    """One amplitude term: the root vertex component joining the root leg and child nodes."""

    diagram: int
    interaction: Interaction
    component: int
    children: tuple[tuple[int, int], ...]        # (slot, node id), including the root leg's node
    qcd: int
    qed: int
    sign: int


@dataclass
class DiagramSet:
    """All diagrams of a process: nodes in dependency order, terms, and per-diagram data."""

    n_ext: int
    out_particles: tuple[int, ...]               # outgoing particle of each leg
    nodes: list[Node]
    terms: list[Term]
    n_diagrams: int
    diagram_orders: list[tuple[int, int]] = field(default_factory=list)  # (QCD, QED) per diagram


def _bits(mask: int) -> list[int]:
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def _submasks(mask: int):
    """Nonempty proper submasks of ``mask``."""
    sub = (mask - 1) & mask
    while sub:
        yield sub
        sub = (sub - 1) & mask


def _splits(mask: int, particles: tuple[int, ...]):
    """Assignments of a partition of ``mask`` into len(particles) nonempty blocks to the slots,
    once per distinct assignment (slots with identical particles are interchangeable)."""
    k = len(particles)
    seen = set()
    if k == 1:
        yield (mask,)
        return
    if k == 2:
        for a in _submasks(mask):
            blocks = (a, mask ^ a)
            key = tuple(sorted(zip(particles, blocks)))
            if key not in seen:
                seen.add(key)
                yield blocks
        return
    if k == 3:
        for a in _submasks(mask):
            rest = mask ^ a
            for b in _submasks(rest):
                blocks = (a, b, rest ^ b)
                key = tuple(sorted(zip(particles, blocks)))
                if key not in seen:
                    seen.add(key)
                    yield blocks
        return
    raise ValueError("vertices with more than four legs are not supported")


def _fermion_kind(pdg: int) -> str | None:
    """'bar' for a ψ̄-type (row) wavefunction, 'psi' for ψ-type (column), None for bosons."""
    if not particle(pdg).is_fermion:
        return None
    return "bar" if pdg > 0 else "psi"


def _permutation_sign(seq: list[int]) -> int:
    sign = 1
    seq = list(seq)
    for i in range(len(seq)):
        for j in range(i + 1, len(seq)):
            if seq[i] > seq[j]:
                sign = -sign
    return sign


class _Generator:
    def __init__(self, model: Model, out_particles: tuple[int, ...], max_qcd: int | None, max_qed: int | None):
        self.model = model
        self.out = out_particles
        self.n = len(out_particles)
        self.max_qcd = max_qcd
        self.max_qed = max_qed
        # interactions by the particle in the open slot (first occurrence only: Feynman rules
        # are symmetric under exchange of identical legs)
        self.by_particle: dict[int, list[tuple[Interaction, int, tuple[int, ...], tuple[int, ...]]]] = {}
        for inter in model.interactions:
            for slot, p in enumerate(inter.particles):
                if p in inter.particles[:slot]:
                    continue
                others = tuple(s for s in range(inter.n_legs) if s != slot)
                self.by_particle.setdefault(p, []).append(
                    (inter, slot, others, tuple(inter.particles[s] for s in others)))
        self.nodes: list[Node] = []
        self.memo: dict[tuple[int, int], list[int]] = {}
        self.topo_ids: dict[tuple, int] = {}
        self.minqed_memo: dict[tuple[int, int], float] = {}

    # -------------------------------------------------------------------------------------------
    def _topo(self, key: tuple) -> int:
        if key not in self.topo_ids:
            self.topo_ids[key] = len(self.topo_ids)
        return self.topo_ids[key]

    def min_qed(self, mask: int, x: int) -> float:
        """Lowest QED order of any subtree (mask, x) (∞ if none)."""
        key = (mask, x)
        if key in self.minqed_memo:
            return self.minqed_memo[key]
        if mask & (mask - 1) == 0:
            leg = _bits(mask)[0]
            val = 0.0 if self.out[leg] == x else float("inf")
        else:
            val = float("inf")
            self.minqed_memo[key] = val  # recursion guard (masks strictly shrink anyway)
            for inter, _slot, _others, parts in self.by_particle.get(anti(x), []):
                if len(parts) > bin(mask).count("1"):
                    continue
                for blocks in _splits(mask, parts):
                    tot = inter.qed
                    for b, p in zip(blocks, parts):
                        tot += self.min_qed(b, p)
                        if tot >= val:
                            break
                    val = min(val, tot)
        self.minqed_memo[key] = val
        return val

    def root_min_qed(self) -> float:
        root = self.n - 1
        rest = (1 << root) - 1
        best = float("inf")
        for inter, _slot, _others, parts in self.by_particle.get(self.out[root], []):
            if len(parts) > root:
                continue
            for blocks in _splits(rest, parts):
                tot = inter.qed + sum(self.min_qed(b, p) for b, p in zip(blocks, parts))
                best = min(best, tot)
        return best

    # -------------------------------------------------------------------------------------------
    def external(self, leg: int) -> int:
        key = (1 << leg, self.out[leg])
        if key in self.memo:
            return self.memo[key][0]
        kind = _fermion_kind(self.out[leg])
        node = Node(id=len(self.nodes), legs=1 << leg, particle=self.out[leg], leg=leg,
                    fermion_end=leg if kind else None, topo=self._topo(("ext", leg)))
        self.nodes.append(node)
        self.memo[key] = [node.id]
        return node.id

    def _ok(self, qcd: int, qed: int) -> bool:
        return (self.max_qcd is None or qcd <= self.max_qcd) and (self.max_qed is None or qed <= self.max_qed)

    def _combine(self, inter: Interaction, open_slot: int, others: tuple[int, ...], kids: tuple[int, ...]):
        """Orders, fermion bookkeeping for a vertex with children ``kids`` in slots ``others``."""
        qcd = inter.qcd + sum(self.nodes[k].qcd for k in kids)
        qed = inter.qed + sum(self.nodes[k].qed for k in kids)
        chains = tuple(c for k in kids for c in self.nodes[k].chains)
        ends = {s: self.nodes[k].fermion_end for s, k in zip(others, kids)}
        return qcd, qed, chains, ends

    def build(self, mask: int, x: int) -> list[int]:
        """All subtrees with leaf set ``mask`` acting as an outgoing ``x``."""
        key = (mask, x)
        if key in self.memo:
            return self.memo[key]
        if mask & (mask - 1) == 0:
            leg = _bits(mask)[0]
            res = [self.external(leg)] if self.out[leg] == x else []
            self.memo[key] = res
            return res
        res: list[int] = []
        self.memo[key] = res
        nleg = bin(mask).count("1")
        for inter, slot, others, parts in self.by_particle.get(anti(x), []):
            if len(parts) > nleg:
                continue
            if self.max_qed is not None and inter.qed > self.max_qed:
                continue
            for blocks in _splits(mask, parts):
                if self.max_qed is not None:
                    lower = inter.qed + sum(self.min_qed(b, p) for b, p in zip(blocks, parts))
                    if lower > self.max_qed:
                        continue
                kid_lists = [self.build(b, p) for b, p in zip(blocks, parts)]
                if any(not k for k in kid_lists):
                    continue
                for kids in itertools.product(*kid_lists):
                    qcd, qed, chains, ends = self._combine(inter, slot, others, kids)
                    if not self._ok(qcd, qed):
                        continue
                    fermion_end = None
                    if inter.lorentz in ("FFV", "FFS"):
                        if slot == 2:  # boson current: the chain closes here
                            chains = chains + ((ends[0], ends[1]),)
                        else:  # open fermion slot: the chain continues from the other fermion
                            fermion_end = ends[1 - slot]
                    topo = self._topo((inter.name, slot, tuple(self.nodes[k].topo for k in kids)))
                    for comp in range(len(inter.components)):
                        node = Node(id=len(self.nodes), legs=mask, particle=x, interaction=inter,
                                    component=comp, open_slot=slot, children=tuple(zip(others, kids)),
                                    qcd=qcd, qed=qed, fermion_end=fermion_end, chains=chains, topo=topo)
                        self.nodes.append(node)
                        res.append(node.id)
        return res

    def diagrams(self) -> tuple[list[Term], int, list[tuple[int, int]]]:
        root = self.n - 1
        rest = (1 << root) - 1
        root_node = self.external(root)
        terms: list[Term] = []
        diagram_ids: dict[tuple, int] = {}
        orders: list[tuple[int, int]] = []
        for inter, slot, others, parts in self.by_particle.get(self.out[root], []):
            if len(parts) > root:
                continue
            for blocks in _splits(rest, parts):
                kid_lists = [self.build(b, p) for b, p in zip(blocks, parts)]
                if any(not k for k in kid_lists):
                    continue
                for kids in itertools.product(*kid_lists):
                    qcd, qed, chains, ends = self._combine(inter, slot, others, kids)
                    if not self._ok(qcd, qed):
                        continue
                    if inter.lorentz in ("FFV", "FFS"):
                        ends[slot] = root
                        chains = chains + ((ends[0], ends[1]),)
                    seq = [leg for c in chains for leg in c]
                    sign = _permutation_sign(seq)
                    key = (inter.name, slot, tuple(self.nodes[k].topo for k in kids))
                    if key not in diagram_ids:
                        diagram_ids[key] = len(diagram_ids)
                        orders.append((qcd, qed))
                    children = tuple(sorted(tuple(zip(others, kids)) + ((slot, root_node),)))
                    for comp in range(len(inter.components)):
                        terms.append(Term(diagram_ids[key], inter, comp, children, qcd, qed, sign))
        return terms, len(diagram_ids), orders


def _check_order_names(orders: dict) -> None:
    for name in orders:
        base = name[:-2] if name.endswith("^2") else name
        if base not in ("QCD", "QED", "WEIGHTED"):
            raise MatrixElementError(f"unknown coupling order '{name}' (known: QCD, QED, WEIGHTED and their ^2 forms)")
        op, value = orders[name]
        if op not in ("<=", "==", ">=", "=", "<", ">"):
            raise MatrixElementError(f"unknown comparison '{op}' for coupling order '{name}'")
        if not isinstance(value, int) or value < 0:
            raise MatrixElementError(f"coupling order '{name}' needs a non-negative integer, got {value!r}")


def order_ok(op: str, have: int, want: int) -> bool:
    """``have op want`` for the order comparison operators ('=' is MadGraph's old '<=')."""
    if op in ("<=", "="):
        return have <= want
    if op == "==":
        return have == want
    if op == ">=":
        return have >= want
    if op == "<":
        return have < want
    if op == ">":
        return have > want
    raise ValueError(op)


def generate(model: Model, pdgs: tuple[int, ...], n_in: int, orders: dict | None = None) -> DiagramSet:
    """All tree diagrams of ``pdgs`` (incoming first) with the given coupling-order constraints.

    ``orders``: ``{"QCD": ("<=", 2), "QED^2": ("<=", 4), ...}``; amplitude-level constraints
    (QCD, QED, WEIGHTED = QCD + 2 QED) select diagrams; squared ones are applied later to the
    interference terms.  ``None`` or no amplitude-level constraint: MadGraph's default, only the
    diagrams of the lowest QED order.
    """
    orders = dict(orders or {})
    _check_order_names(orders)
    out = tuple(anti(p) if i < n_in else p for i, p in enumerate(pdgs))
    amp_orders = {k: v for k, v in orders.items() if not k.endswith("^2")}
    max_qcd = max_qed = None
    for name, (op, val) in amp_orders.items():
        if op in ("<=", "=", "==", "<"):
            bound = val - 1 if op == "<" else val
            if name == "QCD":
                max_qcd = bound if max_qcd is None else min(max_qcd, bound)
            elif name == "QED":
                max_qed = bound if max_qed is None else min(max_qed, bound)
            elif name == "WEIGHTED":  # QCD + 2 QED <= w bounds both
                max_qcd = bound if max_qcd is None else min(max_qcd, bound)
                max_qed = bound // 2 if max_qed is None else min(max_qed, bound // 2)
    gen = _Generator(model, out, max_qcd, max_qed)
    name = " ".join(name_of(p) for p in pdgs[:n_in]) + " > " + " ".join(name_of(p) for p in pdgs[n_in:])
    if not amp_orders:
        qmin = gen.root_min_qed()
        if qmin == float("inf"):
            raise NoDiagramsError(f"'{name}' has no tree-level diagrams in the sm model")
        gen.max_qed = int(qmin)
    terms, n_diag, dorders = gen.diagrams()
    # exact amplitude-level constraints ('==', '>=', WEIGHTED) on whole diagrams
    keep = []
    for d, (qcd, qed) in enumerate(dorders):
        ok = True
        for oname, (op, val) in amp_orders.items():
            have = {"QCD": qcd, "QED": qed, "WEIGHTED": qcd + 2 * qed}[oname]
            ok = ok and order_ok(op, have, val)
        if ok:
            keep.append(d)
    if not keep:
        extra = f" with coupling orders {orders}" if orders else ""
        raise NoDiagramsError(f"'{name}' has no tree-level diagrams in the sm model{extra}")
    remap = {d: i for i, d in enumerate(keep)}
    terms = [t for t in terms if t.diagram in remap]
    for t in terms:
        t.diagram = remap[t.diagram]
    dorders = [dorders[d] for d in keep]
    # keep only the nodes that some term uses, renumbered in dependency (creation) order
    used = set()
    stack = [k for t in terms for _, k in t.children]
    while stack:
        k = stack.pop()
        if k in used:
            continue
        used.add(k)
        stack.extend(c for _, c in gen.nodes[k].children)
    order = sorted(used)
    newid = {old: new for new, old in enumerate(order)}
    nodes = []
    for old in order:
        nd = gen.nodes[old]
        nd.id = newid[old]
        nd.children = tuple((s, newid[c]) for s, c in nd.children)
        nodes.append(nd)
    for t in terms:
        t.children = tuple((s, newid[c]) for s, c in t.children)
    return DiagramSet(len(pdgs), out, nodes, terms, len(keep), dorders)
