"""Analytic MadGraph-style phase-space channels, one per Feynman-diagram topology.

A :class:`PhaseSpaceChannel` maps the unit hypercube to lab-frame momenta of a 2 → n process
following the propagator tree of one diagram (:class:`matrix_elements.topology.Topology`), so that
its density has the diagram's peaks:

* **Tree.** The diagram is turned into a *binary* tree over the final-state legs. Its root is the
  whole final state (invariant mass² ŝ). Without t-channel propagators the root is the top
  s-channel propagator (or, for a contact vertex, a pseudo-node holding the vertex's objects).
  With t-channel propagators the root starts the *t-spine*: the objects k₁ … k_N emitted along the
  ``t_chain`` (external legs or s-channel clusters; several objects of one 4-point vertex are
  grouped into a pseudo-cluster) are split off one at a time, root → (k₁, X₁), X₁ → (k₂, X₂), …,
  X_{N−2} → (k_{N−1}, k_N), where X_i holds k_{i+1} … k_N. Nodes with three or more daughters
  (4-point vertices) are split the same way into pseudo-nodes. Every internal node has two
  daughters; with n final-state legs there are n − 2 internal non-root nodes.
* **Invariants** (n − 2 numbers). The mass² of every internal non-root node is drawn bottom-up
  (daughters before mothers) by an :class:`~channels.invariants.InvariantSampler`: s-channel
  propagators with :func:`propagator_sampler` (Breit–Wigner if the line has mass and width and
  can resonate, 1/(s − M² + MΓ)^ν for a massive line below threshold, else 1/s^ν, ν = 0.8 by
  default; a massless line whose lower limit from cuts/masses is positive uses 1/s^ν_cut,
  ν_cut = 1 by default, i.e. flat in log s like MadEvent), pseudo-nodes and spine nodes X_i
  uniformly (``nu_free`` > 0: 1/s^nu_free). ``order="bottom-up"`` (default) or ``"top-down"``. Limits:
  lower √s = max(Σ masses of the (already drawn) daughters, ``invariant_min(legs)``), upper
  √s = √ŝ − Σ current masses of the siblings of every node on the path to the root, where the
  current mass of a node not yet drawn is max(Σ current masses of its daughters,
  ``invariant_min``). These limits contain every physical configuration and are never empty
  (each step keeps Σ masses of the root's daughters ≤ √ŝ), so the map is a bijection onto the
  phase space above the ``invariant_min`` bounds.
* **Angles** (2 numbers per internal node, top-down). A spine node is a 2 → 2 t-channel step
  p_a + p_b → k_i + X_i with p_b = leg 1 and p_a = leg 0 minus the objects already emitted, drawing
  t_i = (p_a − k_i)², the i-th t-channel propagator's virtuality, ∝ 1/(M² − t)^ν (as
  :class:`~channels.tchannel.TChannel`, with the propagator mass M; when the first emitted object k₁
  is a massless leg with cuts (``leg_cuts``: pT_min, η_max) — or, on a one-step spine p₁ + p₂ → k₁ + k₂, the
  other object k₂, whose pT and |cos θ| are k₁'s — t₁ is drawn only on the angles they leave,
  |cos θ| ≤ 1 − δ in the partonic frame (:meth:`PhaseSpaceChannel._root_t_cut`), ∝ 1/(−t)^ν_cut for a
  massless propagator — the peak of a t-channel photon or gluon then sits at an end of the drawn range
  instead of inside a cut-away region the grid must learn; points outside have q = 0; a spine of several steps
  whose *last* object is such a leg is drawn from leg 1's side instead, ``swap_beams``: the diagram with the
  beams exchanged, its momenta turned back by a rotation by π about x); every other node decays
  isotropically in its rest frame (reached by a pure boost), with the polar axis along its
  *sibling*'s momentum in that frame (``decay_axis="sibling"``, default; the root of an
  s-channel tree uses ẑ; ``"fixed"``: ẑ everywhere). Then the soft/collinear region of a
  daughter with the sibling (e.g. a gluon of q* → q g close to the recoiling q̄) is the edge
  cos θ → −1 of one variable, which the VEGAS grid of the channel can learn.  With legs cut in pT
  (``leg_cuts``, ``energy_band=True``, default) a decay below the root draws the direction only inside the
  band where both daughters keep their minimum partonic-frame energies (E ≥ Σ √(m² + pT_min²) over their
  legs; :mod:`channels.energy_band`), so points failing that bound are never generated.  An s-channel tree of
  three or more legs with cuts then turns the whole event so that the beam direction avoids every cut leg's
  pT / |η| caps and lies near the axis of every pair that its ΔR cut (``pair_cuts``) needs there
  (:mod:`channels.orientation_band`: the shape is kept, the orientation drawn only where the cuts can
  pass; ``orientation_band=None``, default: at fixed energy only — on the hadronic benchmark processes it gave
  the flows nothing; ``True``: hadronic too); with two legs, or without the band, the root's own decay (axis
  ẑ) draws |cos θ| ≤ 1 − δ when a daughter is a massless leg with cuts (its energy is fixed there: the bound of
  the cut t-channel step, :meth:`PhaseSpaceChannel._root_decay_delta`).
* **Luminosity** (hadronic only, 2 numbers): (τ, y) as :class:`~channels.luminosity.Luminosity`,
  with ŝ drawn by the top s-channel propagator's sampler when the diagram has one (e.g. a
  Breit–Wigner for the Z in Drell–Yan), else ∝ 1/ŝ (1/ŝ^ν when the lower limit is 0), on
  [max(τ_min S, (minimal root mass)²), S].

By dΦ_n(P) = dΦ₂(P; K, P−K) dM_K²/(2π) dΦ(K) dΦ(P−K) the density w.r.t. dx1 dx2 dΦ_n (hadronic) or
dΦ_n (fixed energy), dΦ_n with its (2π) factors, is the product of the sampler densities times
2π per invariant, of 8πs/λ^{1/2}(s, s1, s2) per decay and of q_t 8πλ^{1/2}(s, p_a², p_b²) per
t-channel step, and of the luminosity density. ``u`` columns: [x-lumi (2)] [invariants in
sampling order] [angle pairs, top-down]. ``inverse`` recomputes everything from the momenta, with
cancellation-free forms for nearly collinear light pairs (pair invariants, decay angles of boosted
light systems, 1 ∓ cosθ of t-channel steps), so forward ∘ inverse is accurate also at strongly
peaked points; points outside the channel's support (below ``invariant_min`` or τ_min) get q = 0.

Points at a numerical edge (e.g. an invariant exactly at a threshold) get log_q = −inf and, so
that downstream code never sees NaN, a fixed valid final state (RAMBO at u = ½).

:func:`build_channels` groups diagrams with the same propagator structure into one channel and,
optionally, folds channels that are images of each other under permutations of identical
final-state particles into one with ``multiplicity`` = orbit size (MadGraph's symmetry factor).
:func:`propagator_prior` is the cheap prior α_c ∝ Σ_{d∈c} Π_props 1/((p² − M²)² + M²Γ²).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
from torch import Tensor

from .invariants import BreitWigner, InvariantSampler, PowerLaw, Uniform
from .kinematics import (PhaseSpaceError, angles, boost_from_rest, boost_to_rest, from_angles, kallen, mirror_beams,
                         msq, rotate, rotation_to)
from .energy_band import band_angles, band_angles_inverse, band_limits
from .orientation_band import OrientationBand
from .luminosity import Luminosity, parton_momenta
from .mapping import Mapping
from .rambo import Rambo
from .tchannel import t_range
from .two_body import log_volume

LOG_2PI = math.log(2.0 * math.pi)
LOG_8PI = math.log(8.0 * math.pi)


# ------------------------------------------------------------------------------------------------
# the binary tree of one topology
# ------------------------------------------------------------------------------------------------
@dataclass
class _Node:
    """One node of the binary phase-space tree (leaf = external final-state leg)."""

    legs: frozenset[int]
    kind: str                                   # 'leaf', 'prop' (s-channel propagator), 'pseudo', 'spine', 'root'
    children: tuple[int, int] | None = None     # node indices (first child = emitted object on the spine)
    mass: float = 0.0                           # leaf mass (GeV)
    sampler: InvariantSampler | None = None     # internal non-root nodes
    imin: float = 0.0                           # lower bound on the invariant mass from cuts / masses (GeV)
    t_mass: float = 0.0                         # spine nodes: mass of the t-channel propagator drawn here
    prop: object = None                         # 'prop' nodes: the s-channel Propagator
    parent: int = -1


def propagator_sampler(mass: float, width: float, threshold: float, nu: float = 0.8) -> InvariantSampler:
    """Sampler for the mass² s of an s-channel line whose s is never below ``threshold``² (GeV).

    Breit–Wigner if the line has a width and can resonate (M > threshold), else 1/(s − M² + MΓ')^ν for a
    massive line below its threshold (e.g. t* → t g, peaked at s → M²; Γ' = max(Γ, 10⁻³M) keeps s − M²
    resolvable in float64), else 1/s^ν.
    """
    if mass > threshold and width > 0:
        return BreitWigner(mass, width)
    if mass > 0 and mass <= threshold:
        return PowerLaw(nu, shift=-mass * mass + mass * max(width, 1e-3 * mass))
    return PowerLaw(nu)


class _Tree:
    """Binary phase-space tree of a topology; see the module docstring."""

    def __init__(self, topology, nu: float, invariant_min: Callable[[frozenset[int]], float] | None,
                 nu_cut: float | None = None, nu_free: float = 0.0, order: str = "bottom-up"):
        self.topology = topology
        self.nodes: list[_Node] = []
        n_in = topology.n_in
        masses = [m for _, m in topology.externals]
        self.final = frozenset(range(n_in, len(masses)))
        self._imin = invariant_min
        leaf_of = {}
        for k in sorted(self.final):
            leaf_of[k] = self._add(_Node(frozenset([k]), "leaf", mass=float(masses[k]), imin=float(masses[k])))
        s_props = topology.s_channel
        prop_node: dict[int, int] = {}

        def obj(code: int) -> int:
            return leaf_of[code] if code >= 0 else prop_node[-code - 1]

        for k, prop in enumerate(s_props):  # bottom-up in the topology
            kids = [obj(c) for c in prop.daughters]
            prop_node[k] = self._group(kids, "prop", None)
            self.nodes[prop_node[k]].prop = prop
        chain = [[obj(c) for c in vertex] for vertex in topology.t_chain]
        objects = [v[0] if len(v) == 1 else self._group(v, "pseudo", Uniform()) for v in chain]
        self.top_prop = None
        self.spine = len(objects) > 1
        if not self.spine:  # pure s-channel (or contact) tree
            self.root = objects[0]
            node = self.nodes[self.root]
            if node.legs != self.final or node.kind == "leaf":
                raise PhaseSpaceError(f"topology of diagram {topology.diagram} does not cover the final state")
            if node.kind == "prop":
                self.top_prop = next(p for p in s_props if frozenset(p.legs) == self.final)
        else:  # t-spine
            t_props = topology.t_channel
            if len(t_props) != len(objects) - 1:
                raise PhaseSpaceError(f"diagram {topology.diagram}: t_chain does not match its t-channel propagators")
            nxt = objects[-1]
            for i in range(len(objects) - 2, -1, -1):
                nxt = self._join(objects[i], nxt, "spine", Uniform())
                self.nodes[nxt].t_mass = float(t_props[i].mass)
            self.root = nxt
            # sanity: the spine node emitting k_i draws t of the propagator with legs {0} ∪ legs(k_1..k_i)
            acc = {0}
            node = self.root
            for i, prop in enumerate(t_props):
                acc |= self.nodes[self.nodes[node].children[0]].legs
                if frozenset(prop.legs) != frozenset(acc):
                    raise PhaseSpaceError(f"diagram {topology.diagram}: t-channel legs {prop.legs} do not match t_chain")
                node = self.nodes[node].children[1]
        root = self.nodes[self.root]
        root.kind, root.sampler = "root", None
        # lower bounds from masses and cuts (recursive), orders
        for node in self.nodes:  # children are created before parents
            if node.children is not None:
                a, b = (self.nodes[c] for c in node.children)
                node.imin = max(a.imin + b.imin, self._cut(node.legs))
                if node.kind == "prop":
                    massless = node.prop.mass == 0.0
                    nu_i = nu_cut if (massless and nu_cut is not None and node.imin > 0) else nu
                    node.sampler = propagator_sampler(node.prop.mass, node.prop.width, node.imin, nu_i)
                elif node.kind in ("pseudo", "spine") and nu_free > 0:
                    if nu_free < 1.0 or node.imin > 0:
                        node.sampler = PowerLaw(nu_free)
        self.sample_order = [i for i, nd in enumerate(self.nodes) if nd.kind not in ("leaf", "root")]
        if order == "top-down":
            self.sample_order = self.sample_order[::-1]
        elif order != "bottom-up":
            raise PhaseSpaceError(f"unknown invariant order '{order}' (bottom-up or top-down)")
        self.split_order = []
        stack = [self.root]
        while stack:  # top-down (parents before children)
            i = stack.pop(0)
            if self.nodes[i].children is not None:
                self.split_order.append(i)
                stack.extend(self.nodes[i].children)
        self._imin = None  # the bounds are stored in the nodes; keep no reference to the callable (pickling)

    def _cut(self, legs: frozenset[int]) -> float:
        if self._imin is None or len(legs) < 2:
            return 0.0
        return max(0.0, float(self._imin(frozenset(legs))))

    def _add(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _join(self, a: int, b: int, kind: str, sampler: InvariantSampler) -> int:
        i = self._add(_Node(self.nodes[a].legs | self.nodes[b].legs, kind, (a, b), sampler=sampler))
        self.nodes[a].parent = self.nodes[b].parent = i
        return i

    def _group(self, kids: list[int], kind: str, sampler: InvariantSampler) -> int:
        """A node over ``kids``; three or more are split as kid₀ + (kid₁ + (…)) with pseudo-nodes."""
        if len(kids) < 2:
            raise PhaseSpaceError("a propagator with fewer than two decay products")
        rest = kids[-1]
        for k in range(len(kids) - 2, 0, -1):
            rest = self._join(kids[k], rest, "pseudo", Uniform())
        return self._join(kids[0], rest, kind, sampler)


# ------------------------------------------------------------------------------------------------
# non-raising 2-body building blocks (a bad event is flagged instead of failing the batch)
# ------------------------------------------------------------------------------------------------
def _axis_rotation(ref: Tensor | None, p: Tensor, root_s: Tensor) -> Tensor | None:
    """Rotation taking ẑ to the direction of ``ref`` in the rest frame of ``p`` (pure boost); None: fixed axes."""
    if ref is None:
        return None
    return rotation_to(boost_to_rest(ref, p, root_s)[:, 1:])


def _decay(u: Tensor, p: Tensor, s: Tensor, s1: Tensor, s2: Tensor,
           ref: Tensor | None = None, band: tuple | None = None,
           delta: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Isotropic P → p1 p2 (angles of p1 in the P rest frame, polar axis along ``ref`` there, or ẑ);
    ``band = (Q, √ŝ, E1_min, E2_min, aligned)`` (aligned: the polar axis is Q's direction, as for a
    daughter of the root with the sibling axis): directions only where both daughters keep their minimum energies in
    the Q frame (:mod:`channels.energy_band`); ``delta``: cos θ only on |cos θ| ≤ 1 − δ (cuts on a leaf
    daughter of the root, see :meth:`PhaseSpaceChannel._root_decay_delta`).  ``(p1, p2, log q, ok)``."""
    lam = kallen(s, s1, s2)
    ok = (lam > 0) & (s > 0)
    root_s = s.clamp_min(1e-300).sqrt()
    pabs = lam.clamp_min(0.0).sqrt() / (2.0 * root_s)
    e1 = (s + s1 - s2) / (2.0 * root_s)
    r = _axis_rotation(ref, p, root_s)
    log_q = -log_volume(s, s1, s2)
    if band is None and delta is None:
        local = from_angles(e1, pabs, 2.0 * u[:, 0] - 1.0, 2.0 * math.pi * u[:, 1])
    elif band is None:  # |cos θ| ≤ 1 − δ, uniform
        keep = 1.0 - delta
        local = from_angles(e1, pabs, keep * (2.0 * u[:, 0] - 1.0), 2.0 * math.pi * u[:, 1])
        log_q = log_q - torch.log(keep.clamp_min(1e-300))
        ok = ok & (keep > 0)
    else:
        lo, hi, n_local = _band_frame(p, root_s, e1, pabs, r, band)
        cos_theta, phi, log_rel, in_band = band_angles(u, lo, hi, n_local)
        local = from_angles(e1, pabs, cos_theta, phi)
        log_q = log_q + log_rel
        ok = ok & in_band
    if r is not None:
        local = rotate(local, r)
    p1 = boost_from_rest(local, p, root_s)
    return p1, p - p1, log_q, ok


def _band_frame(p: Tensor, root_s: Tensor, e1: Tensor, pabs: Tensor, r: Tensor | None, band: tuple
                ) -> tuple[Tensor, Tensor, Tensor]:
    """(lo, hi, n̂ in the decay's local frame) of the energy band of a decay (see :func:`_decay`)."""
    q_tot, root_shat, e1_min, e2_min, aligned = band
    q_rest = boost_to_rest(q_tot, p, root_s)
    lo, hi, n = band_limits(e1, root_s - e1, pabs, q_rest, root_shat, e1_min, e2_min)
    if aligned:  # P + sibling = Q: n̂ is the polar axis itself (exactly, not up to rounding)
        n = torch.zeros_like(n)
        n[:, 2] = 1.0
    elif r is not None:
        n = (r.transpose(-1, -2) @ n.unsqueeze(-1)).squeeze(-1)
    return lo, hi, n


def _rest_frame_vector(p1: Tensor, p: Tensor, m: Tensor, s1: Tensor) -> Tensor:
    """Spatial part of ``p1`` (on shell, mass² s1) in the rest frame of ``p`` (mass m) reached by a pure boost.

    Light-cone form along n̂ = p⃗/|p⃗| without cancellations for strongly boosted light systems:
    p'_∥ = [P₋(E₁ + p_∥) − P₊(E₁ − p_∥)]/(2m), P± = p⁰ ± |p⃗| (P₋ = m²/P₊), E₁ ∓ p_∥ = (s1 + p⊥²)/(E₁ ± p_∥).
    """
    pabs = p[:, 1:].norm(dim=-1)
    n = p[:, 1:] / pabs.clamp_min(1e-300).unsqueeze(-1)
    v = p1[:, 1:]
    par = (v * n).sum(-1)
    perp = v - par.unsqueeze(-1) * n
    perp2 = (perp * perp).sum(-1)
    e1 = ((v * v).sum(-1) + s1).sqrt()
    big = e1 + par.abs()
    small = (s1 + perp2) / big.clamp_min(1e-300)
    e_plus = torch.where(par >= 0, big, small)    # E₁ + p_∥
    e_minus = torch.where(par >= 0, small, big)   # E₁ − p_∥
    p_plus = p[:, 0] + pabs
    p_minus = m * m / p_plus
    par_rest = (p_minus * e_plus - p_plus * e_minus) / (2.0 * m)
    return perp + par_rest.unsqueeze(-1) * n


def _decay_inverse(p1: Tensor, p: Tensor, s: Tensor, s1: Tensor, s2: Tensor,
                   ref: Tensor | None = None, band: tuple | None = None,
                   delta: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse of :func:`_decay`: ``(u, log q, inside)`` (inside: in the energy band / polar range, or True)."""
    root_s = s.clamp_min(1e-300).sqrt()
    v = _rest_frame_vector(p1, p, root_s, s1)
    r = _axis_rotation(ref, p, root_s)
    if r is not None:
        v = (r.transpose(-1, -2) @ v.unsqueeze(-1)).squeeze(-1)
    cos_theta, phi = angles(torch.cat([v.norm(dim=-1, keepdim=True), v], dim=-1))
    log_q = -log_volume(s, s1, s2)
    if band is None and delta is None:
        u = torch.stack([(cos_theta + 1.0) / 2.0, phi / (2.0 * math.pi)], dim=-1)
        return u, log_q, torch.ones_like(cos_theta, dtype=torch.bool)
    if band is None:
        keep = 1.0 - delta
        inside = (keep > 0) & (cos_theta.abs() <= keep * (1.0 + 1e-9))
        c = (cos_theta / keep.clamp_min(1e-300)).clamp(-1.0, 1.0)
        u = torch.stack([(c + 1.0) / 2.0, phi / (2.0 * math.pi)], dim=-1)
        return u, log_q - torch.log(keep.clamp_min(1e-300)), inside
    pabs = kallen(s, s1, s2).clamp_min(0.0).sqrt() / (2.0 * root_s)
    e1 = (s + s1 - s2) / (2.0 * root_s)
    lo, hi, n_local = _band_frame(p, root_s, e1, pabs, r, band)
    u, log_rel, inside = band_angles_inverse(cos_theta, phi, lo, hi, n_local)
    return u, log_q + log_rel, inside


def _t_frame(pa: Tensor, pb: Tensor, s: Tensor, s1: Tensor, s2: Tensor, m2: float):
    q = pa + pb
    root_s = s.clamp_min(1e-300).sqrt()
    ma2, mb2 = msq(pa), msq(pb)
    lam_12 = kallen(s, s1, s2)
    ok = (s > 0) & (lam_12 > 0)
    r = rotation_to(boost_to_rest(pa, q, root_s)[..., 1:])
    t_lo, t_hi, _, b = t_range(s, ma2, mb2, s1, s2)
    log_jac = LOG_8PI + 0.5 * torch.log(kallen(s, ma2, mb2))
    c = t_hi.clamp_min(m2)
    return q, root_s, r, c - t_hi, c - t_lo, b, log_jac, lam_12, ok


def _cut_range(y_lo: Tensor, y_hi: Tensor, b: Tensor, delta: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """The y = c − t range left by |cos θ| ≤ 1 − δ (``delta``: from cuts on the emitted leg, None: no cut):
    [y_lo + bδ, y_hi − bδ], and whether it is non-empty and positive (points where it is not get a dummy
    range [y_lo + 1, y_lo + 2] GeV², valid for every sampler; the caller gives them q = 0)."""
    if delta is None:
        return y_lo, y_hi, torch.ones_like(y_lo, dtype=torch.bool)
    lo, hi = y_lo + b * delta, y_hi - b * delta
    good = (delta < 1.0) & (hi > lo) & (lo > 0)
    return torch.where(good, lo, y_lo + 1.0), torch.where(good, hi, y_lo + 2.0), good


def _t_split(u: Tensor, pa: Tensor, pb: Tensor, s: Tensor, s1: Tensor, s2: Tensor, m2: float,
             sampler: InvariantSampler, delta: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """p_a + p_b → k1 + k2 drawing y = c − t, t = (p_a − k1)²; as :class:`channels.tchannel.TChannel`.
    ``delta``: y is drawn only where |cos θ| ≤ 1 − δ (see :meth:`PhaseSpaceChannel._root_t_cut`)."""
    q, root_s, r, y_lo, y_hi, b, log_jac, lam_12, ok = _t_frame(pa, pb, s, s1, s2, m2)
    c_lo, c_hi, in_cut = _cut_range(y_lo, y_hi, b, delta)
    y, log_qt = sampler.forward(u[:, 0], c_lo, c_hi)
    # 1 ∓ cosθ = (y − y_lo)/b, (y_hi − y)/b: no cancellation near the forward/backward limits
    bb = b.clamp_min(1e-300)
    w_minus, w_plus = ((y - y_lo) / bb).clamp(0.0, 2.0), ((y_hi - y) / bb).clamp(0.0, 2.0)
    cos_theta = torch.where(w_minus <= w_plus, 1.0 - w_minus, w_plus - 1.0)
    sin_theta = (w_minus * w_plus).sqrt()
    k_abs = lam_12.clamp_min(0.0).sqrt() / (2.0 * root_s)
    e1 = (s + s1 - s2) / (2.0 * root_s)
    phi = 2.0 * math.pi * u[:, 1]
    local = torch.stack([e1, k_abs * sin_theta * phi.cos(), k_abs * sin_theta * phi.sin(), k_abs * cos_theta], -1)
    k1 = boost_from_rest(rotate(local, r), q, root_s)
    return k1, q - k1, log_qt + log_jac, ok & (b > 0) & in_cut


def _t_split_inverse(k1: Tensor, pa: Tensor, pb: Tensor, s: Tensor, s1: Tensor, s2: Tensor, m2: float,
                     sampler: InvariantSampler, delta: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse of :func:`_t_split`: (u [n, 2], log density, whether k1 lies in the drawn y range; always
    True without ``delta``)."""
    q, root_s, r, y_lo, y_hi, b, log_jac, _, _ = _t_frame(pa, pb, s, s1, s2, m2)
    local = rotate(boost_to_rest(k1, q, root_s), r.transpose(-1, -2))
    _, phi = angles(local)
    rho = local[:, 1:].norm(dim=-1).clamp_min(1e-300)
    z = local[:, 3]
    perp2 = local[:, 1] ** 2 + local[:, 2] ** 2
    w_minus = torch.where(z > 0, perp2 / (rho * (rho + z)), (rho - z) / rho)   # 1 − cosθ
    w_plus = torch.where(z < 0, perp2 / (rho * (rho - z)), (rho + z) / rho)    # 1 + cosθ
    y = torch.where(w_minus <= w_plus, y_lo + b * w_minus, y_hi - b * w_plus)
    c_lo, c_hi, in_cut = _cut_range(y_lo, y_hi, b, delta)
    if delta is None:
        inside = in_cut
    else:
        tol = 1e-9 * (c_hi.abs() + b)
        inside = in_cut & (y >= c_lo - tol) & (y <= c_hi + tol)
    u0, log_qt = sampler.inverse(torch.minimum(torch.maximum(y, c_lo), c_hi), c_lo, c_hi)
    return torch.stack([u0, phi / (2.0 * math.pi)], dim=-1), log_qt + log_jac, inside


def _pair_products(p: Tensor, masses: Sequence[float]) -> Tensor:
    """p_i·p_j ``[n, k, k]`` (zero diagonal) of on-shell momenta ``p [n, k, 4]`` with masses ``masses``,
    accurate also for nearly collinear light pairs: for a⃗·b⃗ > 0,
    E_iE_j − a⃗·b⃗ = (|a⃗×b⃗|² + m_i²|b⃗|² + m_j²|a⃗|² + m_i²m_j²)/(E_iE_j + a⃗·b⃗), E = (|p⃗|² + m²)^{1/2}."""
    v = p[..., 1:]
    m2 = torch.tensor([m * m for m in masses], dtype=p.dtype, device=p.device)
    v2 = (v * v).sum(-1)
    e = (v2 + m2).sqrt()
    ab = torch.einsum("nid,njd->nij", v, v)
    ee = e.unsqueeze(2) * e.unsqueeze(1)
    cross = torch.linalg.cross(v.unsqueeze(2).expand(-1, -1, v.shape[1], -1),
                               v.unsqueeze(1).expand(-1, v.shape[1], -1, -1), dim=-1)
    num = ((cross * cross).sum(-1) + m2[None, :, None] * v2.unsqueeze(1) + m2[None, None, :] * v2.unsqueeze(2)
           + m2[None, :, None] * m2[None, None, :])
    dot = torch.where(ab > 0, num / (ee + ab).clamp_min(1e-300), ee - ab)
    return dot * (1.0 - torch.eye(p.shape[1], dtype=p.dtype, device=p.device))


# ------------------------------------------------------------------------------------------------
# the channel
# ------------------------------------------------------------------------------------------------
def _beams_swapped(topology):
    """The same diagram with the incoming legs 0 and 1 exchanged (for a t-spine drawn from leg 1's side): the
    t-chain reversed, each t-channel propagator described by the legs on the other side (legs ⊇ {0} in the new
    numbering), s-channel propagators unchanged.  Internal to a channel's tree (``pdg`` of the t-lines kept)."""
    ext = topology.externals
    final = set(range(topology.n_in, len(ext)))
    s_props = [pr for pr in topology.propagators if pr.channel == "s"]
    t_props = [pr for pr in topology.propagators if pr.channel == "t"]
    flipped = [replace(pr, legs=tuple(sorted({0} | (final - set(pr.legs))))) for pr in reversed(t_props)]
    return replace(topology, externals=(ext[1], ext[0]) + tuple(ext[2:]), propagators=tuple(s_props + flipped),
                   t_chain=tuple(reversed(topology.t_chain)))


def _leg_cut(leg_cuts: Callable[[int], tuple[float, float]], leg: int) -> tuple[float, float] | None:
    """(pT_min, η_max) of a final-state ``leg`` that has a pT or |η| cut; None otherwise."""
    pt_min, eta_max = (float(v) for v in leg_cuts(leg))
    return (pt_min, eta_max) if pt_min > 0.0 or math.isfinite(eta_max) else None


def _massless_cut(leg_cuts: Callable[[int], tuple[float, float]], leg: int, mass: float) -> tuple[float, float] | None:
    """(pT_min, η_max) of a massless final-state ``leg`` that has a pT or |η| cut; None otherwise."""
    return _leg_cut(leg_cuts, leg) if mass == 0.0 else None


def _delta_r_pairs(pair_cuts: Callable[[int, int], float], legs: Sequence[int], masses: Sequence[float],
                   hadronic: bool) -> list[tuple[int, int, float]]:
    """(leg i, leg j, R_min) of the final-state pairs with a ΔR cut that bounds the orientation: any pair at fixed
    energy (ΔR from pseudorapidities, a function of the directions), only massless pairs in hadronic collisions
    (where Δη is then invariant under the partonic frame's boost)."""
    pairs = [(i, j, float(pair_cuts(i, j))) for i, j in itertools.combinations(legs, 2)]
    return [(i, j, r) for i, j, r in pairs if r > 0.0 and (not hadronic or masses[i] == 0.0 and masses[j] == 0.0)]


def _first_leg_cut(topology, leg_cuts: Callable[[int], tuple[float, float]], last: bool = False) -> bool:
    """Whether the first (``last``: the last) object emitted along the t-chain is a massless leg with cuts."""
    vertex = topology.t_chain[-1 if last else 0]
    return (len(vertex) == 1 and vertex[0] >= 0
            and _massless_cut(leg_cuts, vertex[0], topology.externals[vertex[0]][1]) is not None)


class PhaseSpaceChannel(Mapping):
    """One analytic channel built from one diagram topology (see the module docstring).

    ``forward(u [n, dims_in] in (0,1)) -> (p [n, n_in + n_out, 4], log_q [n])``: lab-frame momenta,
    incoming first, legs in the topology's process order; hadronic: p[:,0] = x1 √S/2 (1,0,0,1),
    p[:,1] = x2 √S/2 (1,0,0,−1); fixed energy: x1 = x2 = 1. ``log_q``: log density w.r.t.
    dx1 dx2 dΦ_n (hadronic) or dΦ_n (fixed energy), dΦ_n with its (2π) factors (GeV units);
    −inf for points that cannot be mapped. ``inverse(p) -> (u, log_q)`` with the same log_q; for
    points outside the channel's support (ŝ < τ_min S, a tree invariant below its
    ``invariant_min`` bound, or a first t-channel angle removed by ``leg_cuts``) log_q = −inf (q = 0)
    and u is clamped into the cube.

    Attributes: ``dims_in`` (3 n_out − 4, + 2 hadronic), ``topology`` (representative diagram),
    ``diagrams`` (engine diagram indices this channel enhances), ``multiplicity`` (orbit size of
    folded symmetric channels), ``topologies`` (those diagrams' topologies), ``process_topologies``
    (all topologies of the process, for :func:`propagator_prior`), ``sqrt_s``, ``hadronic``.
    """

    def __init__(self, topology, sqrt_s: float, hadronic: bool, tau_min: float = 0.0,
                 invariant_min: Callable[[frozenset[int]], float] | None = None, nu: float = 0.8,
                 diagrams: Sequence[int] | None = None, multiplicity: int = 1,
                 topologies: Sequence | None = None, process_topologies: Sequence | None = None,
                 nu_cut: float | None = 1.0, nu_free: float = 0.0, order: str = "bottom-up",
                 decay_axis: str = "sibling", leg_cuts: Callable[[int], tuple[float, float]] | None = None,
                 energy_band: bool = True, orientation_band: bool | None = None,
                 pair_cuts: Callable[[int, int], float] | None = None):
        if topology.n_in != 2:
            raise PhaseSpaceError("phase-space channels need 2 incoming particles (decays are not supported)")
        if decay_axis not in ("fixed", "sibling"):
            raise PhaseSpaceError(f"decay_axis must be 'fixed' or 'sibling', got {decay_axis!r}")
        self.decay_axis = decay_axis
        if any(m != 0.0 for _, m in topology.externals[:2]):
            raise PhaseSpaceError("phase-space channels need massless incoming particles")
        n_out = len(topology.externals) - 2
        if n_out < 2:
            raise PhaseSpaceError(f"phase-space channels need at least 2 final-state particles, got {n_out}")
        if not 0.0 <= nu < 1.0:
            raise PhaseSpaceError(f"channel power nu must be in [0, 1) (massless lines start at s = 0), got {nu}")
        self.topology = topology
        self.sqrt_s, self.s = float(sqrt_s), float(sqrt_s) ** 2
        self.hadronic = bool(hadronic)
        self.n_out = n_out
        self.masses = tuple(float(m) for _, m in topology.externals)
        self.diagrams = tuple(diagrams) if diagrams is not None else (topology.diagram,)
        self.multiplicity = int(multiplicity)
        self.topologies = tuple(topologies) if topologies is not None else (topology,)
        self.process_topologies = tuple(process_topologies) if process_topologies is not None else self.topologies
        if nu_cut is not None and nu_cut < 0:
            raise PhaseSpaceError(f"channel power nu_cut must be >= 0, got {nu_cut}")
        if not 0.0 <= nu_free <= 1.0:
            raise PhaseSpaceError(f"channel power nu_free must be in [0, 1], got {nu_free}")
        # a t-spine of several steps whose cut leg is emitted last is drawn from leg 1's side, so that the cut leg
        # is the first object and bounds the first t-channel angle (below); the momenta are swapped back
        self.swap_beams = bool(leg_cuts is not None and len(topology.t_chain) > 2
                               and not _first_leg_cut(topology, leg_cuts)
                               and _first_leg_cut(topology, leg_cuts, last=True))
        tree_topology = _beams_swapped(topology) if self.swap_beams else topology
        self.tree = _Tree(tree_topology, nu, invariant_min, nu_cut, nu_free, order)
        self._t_sampler = PowerLaw(nu)
        root = self.tree.nodes[self.tree.root]
        # the root's massless leaf children with cuts: (position among the children, node, pT_min, η_max)
        leaf_cuts = []
        if leg_cuts is not None:
            for pos, c in enumerate(root.children):
                nd = self.tree.nodes[c]
                cut = _massless_cut(leg_cuts, next(iter(nd.legs)), nd.mass) if nd.kind == "leaf" else None
                if cut is not None:
                    leaf_cuts.append((pos, c, *cut))
        # t-spine: the cuts of the first emitted object k1 or, on a one-step spine, of the other one k2 bound the
        # first t-channel angle (pT and |cos θ| of k1 and k2 are the same there)
        self._root_cuts: list[tuple[int, float, float]] = []  # (position among the root's children, pT_min, η_max)
        self._t_sampler_cut = self._t_sampler
        if self.tree.spine:
            self._root_cuts = [(pos, pt_min, eta_max) for pos, _, pt_min, eta_max in leaf_cuts]
            if self._root_cuts and root.t_mass == 0.0 and nu_cut is not None:
                self._t_sampler_cut = PowerLaw(nu_cut)  # y = −t ≥ bδ > 0: as a cut-bounded s-channel line
        self._band = self._energy_bands(leg_cuts) if energy_band else {}
        # s-channel tree of 3+ legs: the orientation to the beam avoids every cut leg's pT / |η| caps
        self._orient: OrientationBand | None = None
        if orientation_band is None:
            orientation_band = not self.hadronic
        if (orientation_band and (leg_cuts is not None or pair_cuts is not None) and not self.tree.spine
                and n_out >= 3):
            final = range(2, n_out + 2)
            cut_legs = ([(leg, *cut) for leg in final if (cut := _leg_cut(leg_cuts, leg)) is not None]
                        if leg_cuts is not None else [])
            pairs = (_delta_r_pairs(pair_cuts, final, self.masses, self.hadronic)
                     if pair_cuts is not None else [])
            if cut_legs or pairs:
                self._orient = OrientationBand([c[0] for c in cut_legs], [c[1] for c in cut_legs],
                                               [c[2] for c in cut_legs],
                                               [self.masses[c[0]] == 0.0 for c in cut_legs], self.hadronic, pairs)
        # the root's own decay (s-channel tree, polar axis ẑ): massless leaf daughters with cuts bound its angle
        # (without an orientation band, which covers them)
        self._root_decay_cuts: list[tuple[int, float, float]] = []  # (leaf node, pT_min, η_max)
        if energy_band and not self.tree.spine and self._orient is None:
            self._root_decay_cuts = [(c, pt_min, eta_max) for _, c, pt_min, eta_max in leaf_cuts]
        self.root_min = root.imin
        self.dims_in = 3 * n_out - 4 + (2 if self.hadronic else 0)
        self._n_lumi = 2 if self.hadronic else 0
        s_min = self.root_min**2
        if self.hadronic:
            tau_floor = max(float(tau_min), s_min / self.s)
            top = self.tree.top_prop
            if top is not None:
                sampler = propagator_sampler(top.mass, top.width, max(self.root_min, math.sqrt(tau_floor * self.s)), nu)
            else:
                sampler = PowerLaw(1.0) if tau_floor > 0 else PowerLaw(nu)
            if tau_floor >= 1.0:
                raise PhaseSpaceError(f"collider energy {self.sqrt_s} GeV below the threshold {self.root_min:.6g} GeV")
            self.luminosity = Luminosity(self.sqrt_s, tau_floor, sampler=sampler)
        else:
            self.luminosity = None
            if self.sqrt_s <= self.root_min:
                raise PhaseSpaceError(f"collision energy {self.sqrt_s} GeV not above the threshold "
                                      f"{self.root_min:.6g} GeV (masses and cuts)")
        self._fallback = Rambo(n_out, list(self.masses[2:]))

    def __repr__(self) -> str:
        return (f"PhaseSpaceChannel(diagrams={self.diagrams}, multiplicity={self.multiplicity}, "
                f"{self.topology.describe()})")

    # -- shared pieces --------------------------------------------------------------------------
    def _incoming(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p1, p2 = parton_momenta(x[:, 0], x[:, 1], self.sqrt_s)
        return p1, p2, x[:, 0] * x[:, 1] * self.s

    def _invariant_limits(self, i: int, m: dict[int, Tensor]) -> tuple[Tensor, Tensor]:
        """(lo, hi) of the mass² of node ``i`` given the masses already drawn (``m``, node → GeV)."""
        nodes = self.tree.nodes
        lo = self._current_mass(i, m)
        up, j = 0.0, i
        while True:  # up to the nearest drawn ancestor, minus the current masses of the siblings on the way
            par = nodes[j].parent
            a, b = nodes[par].children
            up = up - self._current_mass(b if a == j else a, m)
            if par in m:
                up = up + m[par]
                break
            j = par
        return lo * lo, up.clamp_min(0.0) ** 2

    def _decay_ref(self, i: int, mom: dict[int, Tensor]) -> Tensor | None:
        """Reference momentum for the polar axis of node ``i``'s decay: its sibling (None at the root or
        with ``decay_axis='fixed'``)."""
        par = self.tree.nodes[i].parent
        if par < 0 or self.decay_axis != "sibling":
            return None
        a, b = self.tree.nodes[par].children
        return mom[b if a == i else a]

    def _current_mass(self, j: int, m: dict[int, Tensor]) -> Tensor:
        if j in m:
            return m[j]
        node = self.tree.nodes[j]
        a, b = node.children
        return torch.clamp_min(torch.as_tensor(self._current_mass(a, m)) + self._current_mass(b, m), node.imin)

    def _energy_bands(self, leg_cuts: Callable[[int], tuple[float, float]] | None
                      ) -> dict[int, tuple[float, float, bool]]:
        """Decays whose daughters have minimum partonic-frame energies from the legs' pT cuts:
        node → (E_a,min, E_b,min, aligned) in GeV, E_min = Σ over the daughter's legs of √(m² + pT_min²);
        aligned: a daughter of the root with the sibling axis (P + sibling = Q, the band is a cos θ range).  The
        root's own decay (daughter energies fixed by the masses) and t-channel steps are not decays here."""
        if leg_cuts is None:
            return {}
        nodes = self.tree.nodes
        floor: dict[int, float] = {}  # node -> E_min (GeV)
        extra: dict[int, bool] = {}   # node -> some leg below it has a pT cut
        for i, nd in enumerate(nodes):  # children before parents
            if nd.kind == "leaf":
                pt_min = float(leg_cuts(next(iter(nd.legs)))[0])
                floor[i] = math.sqrt(nd.mass ** 2 + max(pt_min, 0.0) ** 2)
                extra[i] = pt_min > 0.0
            else:
                a, b = nd.children
                floor[i] = floor[a] + floor[b]
                extra[i] = extra[a] or extra[b]
        bands = {}
        for i in self.tree.split_order:
            nd = nodes[i]
            if i == self.tree.root or nd.kind == "spine":
                continue
            a, b = nd.children
            if extra[a] or extra[b]:
                bands[i] = (floor[a], floor[b], nd.parent == self.tree.root and self.decay_axis == "sibling")
        return bands

    def _band_args(self, i: int, mom: dict[int, Tensor], m: dict[int, Tensor]) -> tuple | None:
        if i not in self._band:
            return None
        root = self.tree.root
        return (mom[root], m[root], *self._band[i])

    def _root_t_cut(self, x: Tensor, s: Tensor, s1: Tensor, s2: Tensor) -> Tensor | None:
        """δ with |cos θ| ≤ 1 − δ for the first t-channel step p_a + p_b → k₁ + k₂ (masses² ``s1``, ``s2``) from
        the cuts on k₁ or, on a one-step spine, k₂ when massless (the larger bound; see :meth:`_polar_delta`: a
        massless leg's sibling mass² sets its energy); None without such cuts."""
        delta = None
        for pos, pt_min, eta_max in self._root_cuts:
            d = self._polar_delta((pt_min, eta_max), x, s, s2 if pos == 0 else s1)
            delta = d if delta is None else torch.maximum(delta, d)
        return delta

    def _root_decay_delta(self, x: Tensor, s: dict[int, Tensor]) -> Tensor | None:
        """δ with |cos θ| ≤ 1 − δ for the root's decay of an s-channel tree (axis ẑ of the partonic frame): the
        largest bound of its massless leaf daughters with cuts (a daughter's direction is ±d̂, |cos θ| the same);
        None without such daughters."""
        delta = None
        root = self.tree.root
        a, b = self.tree.nodes[root].children
        for c, pt_min, eta_max in self._root_decay_cuts:
            d = self._polar_delta((pt_min, eta_max), x, s[root], s[b if a == c else a])
            delta = d if delta is None else torch.maximum(delta, d)
        return delta

    def _polar_delta(self, cut: tuple[float, float], x: Tensor, s: Tensor, s2: Tensor) -> Tensor:
        """δ with |cos θ| ≤ 1 − δ for a massless leg of a 2-body split of the partonic system (mass² ``s``,
        sibling mass² ``s2``) in its rest frame (θ from the beam), implied by its cuts ``(pT_min, η_max)``:
        pT = E₁ sin θ ≥ pT_min with E₁ = (ŝ − s₂)/(2√ŝ), and |η_lab| ≤ η_max ⇒ |η| = |artanh cos θ| ≤ η_max +
        |y_boost| (the frame moves with rapidity y_boost = ½ ln(x₁/x₂) along z; both cuts are symmetric under
        the mirror map).  δ ≥ 1: nothing passes."""
        pt_min, eta_max = cut
        delta = torch.zeros_like(s)
        if pt_min > 0.0:
            e1 = (s - s2) / (2.0 * s.clamp_min(1e-300).sqrt())
            a = pt_min / e1.clamp_min(1e-300)
            a2 = (a * a).clamp_max(1.0)
            d_pt = torch.where(a < 1.0, a2 / (1.0 + (1.0 - a2).sqrt()), torch.ones_like(a))  # 1 − √(1 − a²)
            delta = torch.maximum(delta, d_pt)
        if math.isfinite(eta_max):
            y_boost = 0.5 * torch.log(x[:, 0] / x[:, 1]).abs() if self.hadronic else torch.zeros_like(s)
            delta = torch.maximum(delta, 2.0 / (torch.exp(2.0 * (eta_max + y_boost)) + 1.0))  # 1 − tanh
        return delta

    def _t_step(self, i: int, x: Tensor, s: Tensor, s1: Tensor, s2: Tensor) -> tuple[InvariantSampler, Tensor | None]:
        """Sampler and cut bound δ (None: none) of the t-channel step at node ``i`` (its objects' masses² ``s1``,
        ``s2``): the cut-bounded ones at the root (first step), the plain power law elsewhere."""
        if i == self.tree.root and self._root_cuts:
            return self._t_sampler_cut, self._root_t_cut(x, s, s1, s2)
        return self._t_sampler, None

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        if u.dim() != 2 or u.shape[1] != self.dims_in:
            raise PhaseSpaceError(f"channel needs u of shape (n, {self.dims_in}), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        n = u.shape[0]
        tree, nodes = self.tree, self.tree.nodes
        zero = torch.zeros(n, dtype=u.dtype, device=u.device)
        ok = torch.ones(n, dtype=torch.bool, device=u.device)
        if self.hadronic:
            x, log_q = self.luminosity.forward(u[:, :2])
        else:
            x, log_q = torch.ones(n, 2, dtype=u.dtype, device=u.device), zero.clone()
        p1, p2, s_hat = self._incoming(x)
        s = {tree.root: s_hat}
        m = {tree.root: s_hat.sqrt()}
        for i, node in enumerate(nodes):
            if node.kind == "leaf":
                s[i], m[i] = zero + node.mass**2, zero + node.mass
        col = self._n_lumi
        for i in tree.sample_order:
            lo, hi = self._invariant_limits(i, m)
            good = hi > lo
            ok = ok & good
            hi = torch.where(good, hi, lo + 1.0)
            s[i], lq = nodes[i].sampler.forward(u[:, col], lo, hi)
            m[i] = s[i].sqrt()
            log_q = log_q + lq + LOG_2PI
            col += 1
        mom = {tree.root: p1 + p2}
        pa = {tree.root: p1}
        for i in tree.split_order:
            node = nodes[i]
            a, b = node.children
            uu = u[:, col:col + 2]
            col += 2
            if node.kind == "spine" or (i == tree.root and tree.spine):
                sampler, delta = self._t_step(i, x, s[i], s[a], s[b])
                k1, k2, lq, good = _t_split(uu, pa[i], p2, s[i], s[a], s[b], node.t_mass**2, sampler, delta)
                pa[b] = pa[i] - k1
            else:
                k1, k2, lq, good = _decay(uu, mom[i], s[i], s[a], s[b], self._decay_ref(i, mom),
                                          self._band_args(i, mom, m),
                                          self._root_decay_delta(x, s) if i == tree.root else None)
            mom[a], mom[b] = k1, k2
            log_q = log_q + lq
            ok = ok & good
        p_out = torch.stack([mom[i] for i in range(self.n_out)], dim=1)  # leaves are nodes 0..n_out−1
        p = torch.cat([p1.unsqueeze(1), p2.unsqueeze(1), p_out], dim=1)
        if self._orient is not None:
            p, lq, good = self._orient.forward(p)
            log_q = log_q + lq
            ok = ok & good
        ok = ok & torch.isfinite(log_q) & torch.isfinite(p).flatten(1).all(1)
        if not bool(ok.all()):
            bad = ~ok
            p = p.clone()
            p_in = p[bad, :2]
            # incoming momenta the fallback cannot use — not finite (τ = 0 exactly), or ŝ at or below the final
            # state's threshold within rounding (τ ~ 1e-9 and below: E² − p_z² cancels) — become x1 = x2 = 1
            tot = p_in.sum(1)
            s_in = msq(tot)
            unusable = ~(torch.isfinite(p_in).flatten(1).all(1) & (s_in > self.root_min ** 2 + 1e-9 * tot[:, 0] ** 2))
            if bool(unusable.any()):
                one = torch.ones(p_in.shape[0], dtype=u.dtype, device=u.device)
                q1, q2 = parton_momenta(one, one, self.sqrt_s)
                p_in = torch.where(unusable[:, None, None], torch.stack([q1, q2], 1), p_in)
                p[bad, :2] = p_in
            half = torch.full((int(bad.sum()), self._fallback.dims_in), 0.5, dtype=u.dtype, device=u.device)
            p_fb, _ = self._fallback.forward(half, p_in.sum(1))
            p[bad, 2:] = p_fb
            log_q = torch.where(ok, log_q, torch.full_like(log_q, -math.inf))
        if self.swap_beams:
            p = mirror_beams(p)
        return p, log_q

    # -- inverse ---------------------------------------------------------------------------------
    def inverse(self, p: Tensor) -> tuple[Tensor, Tensor]:
        if p.dim() != 3 or p.shape[1:] != (self.n_out + 2, 4):
            raise PhaseSpaceError(f"channel inverse needs p of shape (n, {self.n_out + 2}, 4), got {tuple(p.shape)}")
        p = p.to(torch.float64)
        if self.swap_beams:
            p = mirror_beams(p)
        n = p.shape[0]
        tree, nodes = self.tree, self.tree.nodes
        zero = torch.zeros(n, dtype=p.dtype, device=p.device)
        cols = []
        inside = torch.ones(n, dtype=torch.bool, device=p.device)  # p within this channel's support
        log_orient = zero
        if self._orient is not None:
            p, log_orient, inside = self._orient.inverse(p)
        if self.hadronic:
            x = p[:, :2, 0] * (2.0 / self.sqrt_s)
            u_l, log_q = self.luminosity.inverse(x)
            cols.extend([u_l[:, 0].clamp(0.0, 1.0), u_l[:, 1]])
            inside = inside & (x[:, 0] * x[:, 1] >= self.luminosity.tau_min * (1.0 - 1e-9))
        else:
            x, log_q = torch.ones(n, 2, dtype=p.dtype, device=p.device), zero.clone()
        p1, p2, s_hat = self._incoming(x)
        mom, s, m = {}, {tree.root: s_hat}, {tree.root: s_hat.sqrt()}
        for i, node in enumerate(nodes):
            if node.kind == "leaf":
                mom[i] = p[:, 2 + i]
                s[i], m[i] = zero + node.mass**2, zero + node.mass
        for i, node in enumerate(nodes):  # children come before parents
            if node.kind != "leaf":
                mom[i] = mom[node.children[0]] + mom[node.children[1]]
        mom[tree.root] = p1 + p2
        dots = _pair_products(p[:, 2:], [nd.mass for nd in nodes[:self.n_out]])
        for i in tree.sample_order:  # same order and limits as forward: m holds the masses drawn so far
            legs = [k - 2 for k in sorted(nodes[i].legs)]
            s[i] = sum(nodes[k].mass ** 2 for k in legs) + dots[:, legs][:, :, legs].sum((1, 2))
            lo, hi = self._invariant_limits(i, m)
            tol = 1e-9 * hi
            inside = inside & (s[i] >= lo - tol) & (s[i] <= hi + tol)
            hi = torch.where(hi > lo, hi, lo + 1.0)
            uc, lq = nodes[i].sampler.inverse(torch.minimum(torch.maximum(s[i], lo), hi), lo, hi)
            m[i] = s[i].clamp_min(0.0).sqrt()
            cols.append(uc)
            log_q = log_q + lq + LOG_2PI
        pa = {tree.root: p1}
        for i in tree.split_order:
            node = nodes[i]
            a, b = node.children
            if node.kind == "spine" or (i == tree.root and tree.spine):
                sampler, delta = self._t_step(i, x, s[i], s[a], s[b])
                uu, lq, in_cut = _t_split_inverse(mom[a], pa[i], p2, s[i], s[a], s[b], node.t_mass**2, sampler, delta)
                inside = inside & in_cut
                pa[b] = pa[i] - mom[a]
            else:
                uu, lq, in_band = _decay_inverse(mom[a], mom[i], s[i], s[a], s[b], self._decay_ref(i, mom),
                                                 self._band_args(i, mom, m),
                                                 self._root_decay_delta(x, s) if i == tree.root else None)
                inside = inside & in_band
            cols.extend([uu[:, 0], uu[:, 1]])
            log_q = log_q + lq
        log_q = log_q + log_orient
        log_q = torch.where(torch.isfinite(log_q) & inside, log_q, torch.full_like(log_q, -math.inf))
        return torch.stack(cols, dim=1), log_q


# ------------------------------------------------------------------------------------------------
# building and grouping channels
# ------------------------------------------------------------------------------------------------
def _sampler_key(mass: float, width: float) -> tuple:
    return ("bw", float(mass), float(width)) if mass > 0 and width > 0 else ("pl",)


def structure_key(topology, hadronic: bool) -> frozenset:
    """What determines a channel's mapping: the propagators' leg sets and samplers.

    At fixed energy the mass of a propagator carrying the whole final state is irrelevant (its
    invariant is s), so e.g. γ* and Z diagrams of e+e- → X share one channel.
    """
    final = frozenset(range(topology.n_in, len(topology.externals)))
    items = []
    for prop in topology.propagators:
        legs = frozenset(prop.legs)
        if prop.channel == "t":
            items.append(("t", legs, float(prop.mass)))
        elif legs == final and not hadronic:
            items.append(("s", legs, ("top",)))
        else:
            items.append(("s", legs, _sampler_key(prop.mass, prop.width)))
    return frozenset(items)


def _permute_key(key: frozenset, perm: dict[int, int]) -> frozenset:
    return frozenset((kind, frozenset(perm.get(i, i) for i in legs), rest) for kind, legs, rest in key)


def final_state_permutations(topology) -> list[dict[int, int]]:
    """All permutations of identical final-state particles (as leg → leg maps), identity first."""
    groups: dict[int, list[int]] = {}
    for k in range(topology.n_in, len(topology.externals)):
        groups.setdefault(topology.externals[k][0], []).append(k)
    blocks = [legs for legs in groups.values() if len(legs) > 1]
    perms = []
    for choice in itertools.product(*(itertools.permutations(b) for b in blocks)):
        perm = {}
        for block, image in zip(blocks, choice):
            perm.update(zip(block, image))
        perms.append(perm)
    return perms


def build_channels(topologies: Sequence, sqrt_s: float, hadronic: bool, tau_min: float = 0.0,
                   invariant_min: Callable[[frozenset[int]], float] | None = None,
                   fold_symmetric: bool = True, max_channels: int = 1000, nu: float = 0.8,
                   nu_cut: float | None = 1.0, nu_free: float = 0.0,
                   order: str = "bottom-up", decay_axis: str = "sibling",
                   leg_cuts: Callable[[int], tuple[float, float]] | None = None,
                   energy_band: bool = True, orientation_band: bool | None = None,
                   pair_cuts: Callable[[int, int], float] | None = None) -> list[PhaseSpaceChannel]:
    """One :class:`PhaseSpaceChannel` per distinct propagator structure of ``topologies``.

    ``topologies``: all diagrams of one process (``me.topologies``). Diagrams with the same
    :func:`structure_key` share a channel (``diagrams`` = all of them; the first one is the
    representative ``topology``). With ``fold_symmetric`` a channel whose structure is the image of
    another's under a permutation of identical final-state particles is dropped and the
    representative gets ``multiplicity`` = orbit size (its ``diagrams`` stay its own; by the
    symmetry of |M|², multiplicity × ∫ α_c F = Σ_orbit ∫ α F). ``sqrt_s``: collider energy (GeV);
    ``hadronic``: sample (x1, x2); ``tau_min``: lower bound on ŝ/S; ``invariant_min(legs)``:
    lower bound (GeV) on the invariant mass of a set of final-state legs (process leg indices,
    incoming legs are 0 and 1) from cuts; ``nu``: power of massless propagators; ``nu_cut``: their
    power when a positive lower bound exists (None: ``nu``); ``nu_free``: power for invariants
    without a propagator (0 = uniform); ``order``: invariant order; ``decay_axis``: polar axis of the
    decays (see the module docstring); ``leg_cuts(leg)``: (pT_min GeV, η_max) of a final-state leg from
    cuts, which bound the first t-channel step's angle and, with ``energy_band``, the decay angles (daughters
    keep the partonic-frame energies their legs' pT cuts imply; see :mod:`channels.energy_band`) and, with
    ``orientation_band`` (None: at fixed energy only), the orientation of s-channel trees of 3+ legs
    (:mod:`channels.orientation_band`); ``pair_cuts(i, j)``: the minimum ΔR (0: none) of two final-state legs,
    whose necessary condition on the beam direction the orientation band also draws.
    Raises :class:`PhaseSpaceError` if more than ``max_channels`` channels remain.
    """
    topologies = tuple(topologies)
    if not topologies:
        raise PhaseSpaceError("no diagram topologies to build phase-space channels from")
    groups: dict[frozenset, list] = {}
    for topo in topologies:
        groups.setdefault(structure_key(topo, hadronic), []).append(topo)
    keys = list(groups)
    mult = {k: 1 for k in keys}
    if fold_symmetric:
        perms = final_state_permutations(topologies[0])
        present = set(keys)
        kept, dropped = [], set()
        for k in keys:
            if k in dropped:
                continue
            orbit = {_permute_key(k, perm) for perm in perms} & present
            dropped |= orbit - {k}
            mult[k] = len(orbit)
            kept.append(k)
        keys = kept
    if len(keys) > max_channels:
        raise PhaseSpaceError(f"{len(keys)} phase-space channels exceed max_channels={max_channels}; "
                              f"raise integrator.max_channels in the card")
    channels = []
    for k in keys:
        members = groups[k]
        ch = PhaseSpaceChannel(members[0], sqrt_s, hadronic, tau_min, invariant_min, nu,
                               diagrams=[t.diagram for t in members], multiplicity=mult[k],
                               topologies=members, process_topologies=topologies, nu_cut=nu_cut,
                               nu_free=nu_free, order=order, decay_axis=decay_axis, leg_cuts=leg_cuts,
                               energy_band=energy_band, orientation_band=orientation_band, pair_cuts=pair_cuts)
        channels.append(ch)
    return channels


def _log_propagators(topology, p: Tensor) -> Tensor:
    """log Π_props 1/((p² − M²)² + M²Γ²) of one diagram at momenta ``p [n, n_ext, 4]`` (t-channel: Γ = 0)."""
    out = torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
    for prop in topology.propagators:
        if prop.channel == "t":
            q = p[:, 0] - sum(p[:, i] for i in prop.legs if i != 0)
            den = (msq(q) - prop.mass**2) ** 2
        else:
            q = sum(p[:, i] for i in prop.legs)
            den = (msq(q) - prop.mass**2) ** 2 + (prop.mass * prop.width) ** 2
        out = out - torch.log(den.clamp_min(1e-300))
    return out


def propagator_prior(channels: Sequence[PhaseSpaceChannel], p: Tensor) -> Tensor:
    """Prior channel weights ``[n, len(channels)]`` from the propagator denominators.

    α_c(p) = Σ_{d∈c.diagrams} P_d(p) / Σ_{all diagrams d of the process} P_d(p),
    P_d = Π_{propagators of d} 1/((p² − M²)² + M²Γ²) (t-channel lines without width). ``p``: momenta
    of the channels' process, its leg order. Rows sum to 1 when every diagram of the process belongs
    to one of ``channels`` (``fold_symmetric=False``); with folded channels the normalisation still
    runs over all diagrams, so that Σ_c multiplicity_c ∫ α_c F = ∫ F for symmetric F.
    """
    if not channels:
        raise PhaseSpaceError("propagator_prior needs at least one channel")
    all_topos = channels[0].process_topologies
    if any(ch.process_topologies is not all_topos and ch.process_topologies != all_topos for ch in channels):
        raise PhaseSpaceError("propagator_prior: channels of different processes")
    p = p.to(torch.float64)
    log_pd = {t.diagram: _log_propagators(t, p) for t in all_topos}
    den = torch.logsumexp(torch.stack(list(log_pd.values()), dim=1), dim=1)
    cols = [torch.logsumexp(torch.stack([log_pd[d] for d in ch.diagrams], dim=1), dim=1) for ch in channels]
    return torch.exp(torch.stack(cols, dim=1) - den.unsqueeze(1))
