"""Exact SU(3) colour algebra in the colour-flow (double-line) basis.

Every external leg, taken as outgoing, has a *colour* slot (quarks, gluons) and/or an
*anticolour* slot (antiquarks, gluons).  A *colour flow* σ is a bijection from colour slots to
anticolour slots, i.e. the tensor Π_c δ_{i_c}^{j_σ(c)}; its LHE reading is one colour line per
link.  Each adjoint index is traded for a pair of fundamental ones by contracting it with
√2 T^a (Tr(√2T^a √2T^b) = δ^{ab}, so colour sums are unchanged), which gives the vertex rules

* q q̄ g:  T^a_{q q̄}  → (1/√2) [ (q→g, g→q̄) − (1/N)(q→q̄, g→g) ],
* g g g:  f^{a1a2a3} → (1/√2) [ −i (1→2, 2→3, 3→1) + i (1→3, 3→2, 2→1) ],
* gluon and quark propagators join slots (δ), a closed index loop gives N,

and the four-gluon vertex components are products of two f's joined by an internal gluon.
A factor (1/√2) per QCD order is common to a whole term and applied at the end.  Coefficients
are kept exact: a dict {(u, l): Gaussian integer} meaning Σ v (−1/N)^u N^l with the sign of the
U(1) pieces in v, so "leading colour" (no U(1) piece, u = 0) is available for LHE colour choice.

External gluons must be SU(3) (traceless): instead of carrying their −1/N pieces, flows in
which a gluon's colour slot links to its own anticolour slot are dropped, and the colour
matrix K_στ = ⟨σ|P|τ⟩ includes the projector P = Π_g (1 − Q_g/N), Q_g = |δ_g⟩⟨δ_g|, so that
|M|² = Σ_{σ,τ} J_σ* K_στ J_τ is exact (J_σ = Σ_terms c_{σ,term} A_term).  K is an exact rational
matrix (computed in integers times N^{−n_g}).
"""
from __future__ import annotations

import itertools

import numpy as np

from .particles import colour as colour_rep

NC = 3

Coeff = dict  # {(u, l): complex}
Links = tuple  # sorted tuple of (colour slot, anticolour slot)
Terms = dict  # {Links: Coeff}

TOP_C = -1
TOP_A = -2


def _cmul(a: Coeff, b: Coeff) -> Coeff:
    out: Coeff = {}
    for (u1, l1), v1 in a.items():
        for (u2, l2), v2 in b.items():
            k = (u1 + u2, l1 + l2)
            out[k] = out.get(k, 0) + v1 * v2
    return {k: v for k, v in out.items() if v != 0}


def _cadd(into: Coeff, b: Coeff) -> None:
    for k, v in b.items():
        into[k] = into.get(k, 0) + v


def coeff_value(c: Coeff, leading: bool = False) -> complex:
    """Numerical value Σ v (1/N)^u N^l (only u = 0 if ``leading``)."""
    tot = 0j
    for (u, l), v in c.items():
        if leading and u:
            continue
        tot += complex(v) * float(NC) ** (l - u)
    return tot


def slots_of(pdg: int, c_id: int, a_id: int) -> tuple[int | None, int | None]:
    """(colour slot, anticolour slot) ids of a leg with outgoing particle ``pdg``."""
    rep = colour_rep(pdg)
    return (c_id if rep in (3, 8) else None, a_id if rep in (-3, 8) else None)


def _f_terms(s: list[tuple[int | None, int | None]], x: int, y: int, z: int) -> list[tuple[dict, Coeff]]:
    """f^{a_x a_y a_z} on gluon legs x, y, z (slot pairs s[k] = (c, a)), without the 1/√2."""
    cx, ax = s[x]
    cy, ay = s[y]
    cz, az = s[z]
    return [({cx: ay, cy: az, cz: ax}, {(0, 0): -1j}), ({cx: az, cz: ay, cy: ax}, {(0, 0): 1j})]


def _contract(links: dict, c: int, a: int) -> tuple[dict, int] | None:
    """Identify colour slot ``c`` with anticolour slot ``a`` (a summed index). Returns (links, loops)."""
    links = dict(links)
    y = links.pop(c)
    if y == a:
        return links, 1
    x = next(k for k, v in links.items() if v == a)
    links[x] = y
    return links, 0


def vertex_terms(tag: str, slots: list[tuple[int | None, int | None]], fresh) -> list[tuple[dict, Coeff]]:
    """Colour tensor of one vertex component on the given leg slots (each (c, a) or None parts)."""
    if tag == "1":
        cs = [c for c, a in slots if c is not None]
        as_ = [a for c, a in slots if a is not None]
        if not cs and not as_:
            return [({}, {(0, 0): 1})]
        if len(cs) == 1 and len(as_) == 1:
            return [({cs[0]: as_[0]}, {(0, 0): 1})]
        raise ValueError(f"unsupported colour-singlet vertex slots {slots}")
    if tag == "T":
        cq, _ = slots[0]
        _, aq = slots[1]
        cg, ag = slots[2]
        return [({cq: ag, cg: aq}, {(0, 0): 1}), ({cq: aq, cg: ag}, {(1, 0): -1})]
    if tag == "f":
        return _f_terms(slots, 0, 1, 2)
    if tag.startswith("ff"):
        other = {"ff12": ((0, 1), (2, 3)), "ff13": ((0, 2), (1, 3)), "ff14": ((0, 3), (1, 2))}[tag]
        (i, j), (k, m) = other
        ce, ae, ce2, ae2 = fresh(), fresh(), fresh(), fresh()
        ext = list(slots) + [(ce, ae), (ce2, ae2)]
        e1, e2 = len(slots), len(slots) + 1
        out = []
        for l1, c1 in _f_terms(ext, e1, i, j):          # f(e, i, j)
            for l2, c2 in _f_terms(ext, k, m, e2):      # f(k, m, e)
                links = {**l1, **l2}
                coeff = _cmul(c1, c2)
                loops = 0
                for cc, aa in ((ce, ae2), (ce2, ae)):
                    res = _contract(links, cc, aa)
                    links, lp = res
                    loops += lp
                if loops:
                    coeff = {(u, l + loops): v for (u, l), v in coeff.items()}
                out.append((links, coeff))
        return out
    raise ValueError(f"unknown colour structure {tag!r}")


class ColourBuilder:
    """Colour tensors of nodes (memoised) and of amplitude terms, as dicts over colour flows."""

    def __init__(self, diagrams):
        self.d = diagrams
        self.n = diagrams.n_ext
        self.gluon_legs = [i for i, p in enumerate(diagrams.out_particles) if colour_rep(p) == 8]
        self.memo: dict[int, Terms] = {}
        self._next = 2 * self.n

    def fresh(self) -> int:
        self._next += 1
        return self._next

    def _ext_slots(self, leg: int) -> tuple[int | None, int | None]:
        return slots_of(self.d.out_particles[leg], 2 * leg, 2 * leg + 1)

    def _prune(self, links: dict) -> bool:
        """True if an external gluon is colour-connected to itself (killed by the SU(3) projector)."""
        for g in self.gluon_legs:
            if links.get(2 * g) == 2 * g + 1:
                return True
        return False

    def _combine(self, inter, comp: int, open_slot: int | None, children, open_particle: int | None) -> Terms:
        """Vertex ⊗ children, contracted; open slot (if any) labelled TOP_C/TOP_A."""
        nodes = self.d.nodes
        leg_slots: list = [None] * inter.n_legs
        pending = []  # (child terms, contractions)
        for slot, kid in children:
            node = nodes[kid]
            p = inter.particles[slot]
            if node.leg is not None:
                leg_slots[slot] = self._ext_slots(node.leg)
                continue
            cP, aP = slots_of(p, self.fresh(), self.fresh())
            leg_slots[slot] = (cP, aP)
            fc, fa = self.fresh(), self.fresh()
            kid_terms = {}
            for links, coeff in self.node_terms(kid).items():
                rl = tuple(((fc if c == TOP_C else c), (fa if a == TOP_A else a)) for c, a in links)
                kid_terms[rl] = coeff
            contr = []
            if cP is not None:
                contr.append((cP, fa))
            if aP is not None:
                contr.append((fc, aP))
            pending.append((kid_terms, contr))
        if open_slot is not None:
            leg_slots[open_slot] = slots_of(open_particle, TOP_C, TOP_A)
        tag = inter.components[comp].colour
        current: list[tuple[dict, Coeff]] = vertex_terms(tag, leg_slots, self.fresh)
        for kid_terms, contr in pending:
            nxt: Terms = {}
            for links, coeff in current:
                for klinks, kcoeff in kid_terms.items():
                    merged = dict(links)
                    merged.update(klinks)
                    loops = 0
                    for c, a in contr:
                        merged, lp = _contract(merged, c, a)
                        loops += lp
                    if self._prune(merged):
                        continue
                    co = _cmul(coeff, kcoeff)
                    if loops:
                        co = {(u, l + loops): v for (u, l), v in co.items()}
                    key = tuple(sorted(merged.items()))
                    if key in nxt:
                        _cadd(nxt[key], co)
                    else:
                        nxt[key] = dict(co)
            current = [(dict(k), v) for k, v in nxt.items() if any(x != 0 for x in v.values())]
        out: Terms = {}
        for links, coeff in current:
            if self._prune(links):
                continue
            key = tuple(sorted(links.items()))
            if key in out:
                _cadd(out[key], coeff)
            else:
                out[key] = dict(coeff)
        return {k: {kk: vv for kk, vv in v.items() if vv != 0} for k, v in out.items() if any(x != 0 for x in v.values())}

    def node_terms(self, nid: int) -> Terms:
        if nid in self.memo:
            return self.memo[nid]
        node = self.d.nodes[nid]
        if node.leg is not None:
            raise ValueError("external nodes have no colour terms of their own")
        inter = node.interaction
        res = self._combine(inter, node.component, node.open_slot, node.children, inter.particles[node.open_slot])
        self.memo[nid] = res
        return res

    def term_flows(self, term) -> Terms:
        """Colour tensor of an amplitude term: {flow links: coeff} (without the (1/√2)^QCD factor)."""
        return self._combine(term.interaction, term.component, None, term.children, None)


# ------------------------------------------------------------------------------------------------
# colour matrix with SU(N) projection of external gluons
# ------------------------------------------------------------------------------------------------
def _reduce(flow: dict, removed: set[int]) -> tuple[dict, int]:
    """Remove gluon legs (slots 2g, 2g+1 for g in ``removed``) from a flow: reconnect through them.

    Returns (reduced flow over the remaining slots, number of closed loops formed).
    """
    flow = dict(flow)
    loops = 0
    for g in sorted(removed):
        c, a = 2 * g, 2 * g + 1
        y = flow.pop(c)
        if y == a:
            loops += 1
            continue
        x = next(k for k, v in flow.items() if v == a)
        flow[x] = y
    return flow, loops


def colour_matrix(flows: list[dict], gluon_legs: list[int]) -> np.ndarray:
    """K_στ = ⟨σ| Π_g (1 − Q_g/N) |τ⟩ for the given flows (float64, exact rationals rounded once)."""
    nf = len(flows)
    ng = len(gluon_legs)
    if nf == 0:
        return np.zeros((0, 0))
    total = np.zeros((nf, nf), dtype=np.int64)  # K · N^ng, exact integers
    for r in range(ng + 1):
        for subset in itertools.combinations(gluon_legs, r):
            removed = set(subset)
            reduced = [_reduce(f, removed) for f in flows]
            cslots = sorted(reduced[0][0].keys())
            if cslots:
                aslots = sorted(reduced[0][0].values())
                aidx = {a: i for i, a in enumerate(aslots)}
                cidx = {c: i for i, c in enumerate(cslots)}
                # perm[f][i] = index of the anticolour slot linked to colour slot i
                perm = np.array([[aidx[fl[c]] for c in cslots] for fl, _ in reduced], dtype=np.int16)
                inv = np.argsort(perm, axis=1).astype(np.int16)  # inverse: anticolour index -> colour index
                m = len(cslots)
                # pi[s, t, i] = inv_s[perm_t[i]]: cycles of σ⁻¹τ = closed index loops of ⟨σ|τ⟩
                pi = inv[np.arange(nf)[:, None, None], perm[None, :, :]]
                cycles = _count_cycles(pi.reshape(-1, m)).reshape(nf, nf)
            else:
                cycles = np.zeros((nf, nf), dtype=np.int64)
            loops = np.array([lp for _, lp in reduced], dtype=np.int64)
            expo = cycles + loops[:, None] + loops[None, :]
            # (−1/N)^r N^expo, kept exact as an integer over N^ng: (−1)^r N^(expo + ng − r)
            sign = -1 if r % 2 else 1
            total += sign * np.power(np.int64(NC), (expo + ng - r).astype(np.int64))
    return total.astype(np.float64) / float(NC**ng)


def _count_cycles(pi: np.ndarray) -> np.ndarray:
    """Number of cycles of each permutation (rows of ``pi``)."""
    n, m = pi.shape
    is_min = np.ones((n, m), dtype=bool)
    cur = pi.copy()
    idx = np.arange(m, dtype=pi.dtype)[None, :]
    offsets = np.arange(n, dtype=np.int64)[:, None] * m  # row offsets for a flat gather
    flat_pi = pi.reshape(-1)
    for _ in range(m - 1):
        is_min &= cur >= idx
        cur = flat_pi[cur + offsets]
    return is_min.sum(axis=1)
