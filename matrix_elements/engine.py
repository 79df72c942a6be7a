"""The general tree-level matrix-element engine: Feynman diagrams → batched |M|² in torch.

Entry point: :func:`build_matrix_element` (signed PDG ids, incoming first) → :class:`EngineMatrixElement`,
a :class:`~matrix_elements.base.MatrixElement` that also exposes :meth:`~EngineMatrixElement.amplitudes2`
(per-diagram weights), :attr:`~EngineMatrixElement.topologies` (propagator trees for phase-space
channels), :meth:`~EngineMatrixElement.colour_flows` (leading-colour flows with LHE tags and weights),
:attr:`~EngineMatrixElement.diagrams` and :attr:`~EngineMatrixElement.n_diagrams`.

Design, and why it scales to 2→5 (and to a GPU):

* **Diagrams** (:mod:`.diagrams`) are generated once as shared off-shell subtrees (HELAS
  wavefunction recycling): each distinct subtree is one batched tensor operation, and a diagram
  costs one vertex contraction at the root.  ``g g > t t~ g g g`` (1240 diagrams) builds in < 1 s,
  ``g g > g g g g g`` (2485 diagrams) in ~10 s.
* **Helicities are fused into the batch by broadcasting**: every wavefunction is a list of complex
  component tensors ``[h_axis_0, …, h_axis_k, B]`` (events last, so broadcasting over the small
  helicity axes runs at full memory speed), where leg i's wavefunction only spans its own axis.
  A subtree over legs S is therefore computed once per helicity configuration *of S*
  (helicity recycling); only root contractions run over the full product.  The sum is exact.
  Configurations that vanish identically (chirality conservation on massless fermion lines: the
  amplitudes are exactly 0.0) are detected at build time and dropped: helicities a leg never uses
  are removed and correlated leg pairs (a massless fermion line) share one axis of allowed pairs
  (``u g > e+ ve d g g``: 8 of 128 configurations remain).
* **Colour** (:mod:`.colour`) is exact: each amplitude term is expanded once, symbolically, in the
  colour-flow basis (external gluons projected onto SU(3)), J_σ = Σ_t c_σt A_t, and
  |M|² = Σ_h J† K J with the exact colour matrix K = L Lᵀ.  The per-term phase i^k is absorbed
  into the amplitude, so R = C L is real and the colour sum is one real GEMM per block of terms,
  Z += R_block @ A_block, |M|² = Σ Z²: no Python loop over events, helicities or colour flows.
* **Streaming**: nodes and amplitude terms are evaluated in a fixed schedule (each term right
  after its last child; node tensors freed after their last use) and amplitudes are contracted
  into Z in blocks of 128 terms, so memory per event stays small; events are processed in chunks
  of about 2^16/H events (cache-sized tensors).  Everything runs on the device of the input.

Conventions: MadGraph's ``sm`` model (unitary gauge, fixed-width Breit–Wigner in every massive
propagator, also t-channel ones, as MadGraph standalone output does; ``tchannel_width=False``
drops the width of t-channel propagators, like MadGraph ≥ 3.5 madevent's ``zerowidth_tchannel``),
couplings at the card's aS.  |M|² is averaged over initial helicities (2 per fermion, 2 per
massless and 3 per massive vector) and colours (3, 8), summed over final ones, divided by the
identical-final-state factor.  Diagrams of different QCD orders that interfere are kept as
separate α_s-power pieces, so a running α_s rescales |M|² exactly.

Accuracy: float64 throughout; colour coefficients exact, K rounded once to float64.  Agreement with
MadGraph standalone is 1e-13 relative or better (e+ e- > mu+ mu-: 2e-15; g g > t t~ g g g: 1e-13).
Momenta need not be exactly on shell: wavefunctions use the given components (massless spinors
use E ± p_z as HELAS does) and |M|² changes smoothly, by about the relative off-shellness (inputs
on shell to 1e-9 give |M|² to ~1e-9); massless momenta exactly along ±z give no NaN.
Neither the mass shells nor momentum conservation are checked on this hot path (non-conserving
input is evaluated as given: finite, but meaningless); :func:`~matrix_elements.base.check_physical_momenta`,
which ``madnis matrix-element`` applies, rejects both with one line beyond 1e-6·E.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from . import lorentz as L
from .base import MatrixElement, MatrixElementError
from .colour import ColourBuilder, coeff_value, colour_matrix
from .diagrams import DiagramSet, NoDiagramsError, generate, order_ok
from .model import SMParameters
from .particles import PARTICLES, UnknownParticleError, colour, name_of, particle
from .topology import Topology, build_topology
from .vertices import Model, sm_model

__all__ = ["EngineMatrixElement", "NoDiagramsError", "build_matrix_element"]

_AMP_BYTES = 256 * 2**20


def _sum_hel(x: Tensor, k: int, h: int, B: int) -> Tensor:
    """Sum ``x`` laid out as [k, h, B, 2] over the helicity and real/imaginary axes → [k, B].

    (Reductions over leading, contiguous axes are fast; ``h = -1`` infers it.)"""
    y = x.reshape(k, -1, B * 2).sum(dim=1)
    return y.reshape(k, B, 2).sum(dim=2)


@lru_cache(maxsize=16)
def _model(params: SMParameters) -> Model:
    return sm_model(params)


def _helicities(pdg: int, mass: float) -> tuple[int, ...]:
    spin = particle(pdg).spin
    if spin == 2:
        return (-1, 1)
    if spin == 3:
        return (-1, 0, 1) if mass != 0 else (-1, 1)
    return (0,)


@dataclass
class _NodePlan:
    inter: object
    comp: int
    open_slot: int
    children: tuple[tuple[int, int], ...]
    kind: str
    mass: float
    width: float
    legs: int


class EngineMatrixElement(MatrixElement):
    """|M|² of one partonic process from its Feynman diagrams (see the module docstring)."""

    def __init__(self, pdgs: tuple[int, ...], params: SMParameters, diagrams: DiagramSet, n_in: int,
                 orders: dict | None, tchannel_width: bool = True):
        self.pdgs = tuple(pdgs)
        self.n_in = n_in
        self.params = params
        self.process = " ".join(name_of(p) for p in pdgs[:n_in]) + " > " + " ".join(name_of(p) for p in pdgs[n_in:])
        self.masses = tuple(params.mass(p) for p in pdgs)
        self.alpha_s_ref = params.aS
        self.orders = dict(orders or {})
        self.tchannel_width = tchannel_width
        # terms grouped by coupling order (contiguous slices of the amplitude buffer)
        diagrams.terms.sort(key=lambda t: (t.qcd, t.qed))
        self._ds = diagrams
        n = len(pdgs)
        self.n_diagrams = diagrams.n_diagrams
        #: MadGraph's WEIGHTED order (QCD + 2·QED, amplitude level) of the lowest-order diagrams
        #: kept; a multiprocess without explicit orders keeps only the subprocesses at its minimum
        self.weighted_order = min(qcd + 2 * qed for qcd, qed in diagrams.diagram_orders)
        self._hels = [_helicities(p, m) for p, m in zip(self.pdgs, self.masses)]
        # --- averaging and symmetry factors ---------------------------------------------------
        avg = 1.0
        for p, h in zip(self.pdgs[:n_in], self._hels[:n_in]):
            avg *= len(h) * abs(colour(p)) if abs(colour(p)) != 1 else len(h)
        ident = 1
        for p in set(self.pdgs[n_in:]):
            ident *= math.factorial(self.pdgs[n_in:].count(p))
        self._norm = 1.0 / (avg * ident)
        # --- node plans ---------------------------------------------------------------------------
        self._plans: list[_NodePlan | None] = []
        for nd in diagrams.nodes:
            if nd.interaction is None:
                self._plans.append(None)
                continue
            x = nd.particle
            spin = particle(x).spin
            kind = {1: "S", 3: "V"}.get(spin) or ("psi" if x < 0 else "psibar")
            mass, width = params.mass(x), params.width(x)
            if not tchannel_width and n_in == 2 and (nd.legs & 1) != ((nd.legs >> 1) & 1):
                width = 0.0
            self._plans.append(_NodePlan(nd.interaction, nd.component, nd.open_slot, nd.children, kind,
                                         mass, width, nd.legs))
        self._node_legs = torch.tensor([[(nd.legs >> i) & 1 for i in range(n)] for nd in diagrams.nodes],
                                       dtype=torch.float64)
        self._ext_node = {nd.leg: nd.id for nd in diagrams.nodes if nd.leg is not None}
        # evaluation schedule: nodes in dependency order, each amplitude term right after its last
        # child, so that node wavefunctions are freed as soon as possible
        terms_after: dict[int, list[int]] = defaultdict(list)
        for t, term in enumerate(diagrams.terms):
            terms_after[max(c for _, c in term.children)].append(t)
        schedule: list[tuple[str, int]] = []
        for k in range(len(diagrams.nodes)):
            if self._plans[k] is not None:
                schedule.append(("node", k))
            schedule.extend(("term", t) for t in terms_after.get(k, ()))
        last_use: dict[int, int] = {}
        for pos, (kind, idx) in enumerate(schedule):
            kids = self._plans[idx].children if kind == "node" else diagrams.terms[idx].children
            for _, c in kids:
                last_use[c] = pos
        free_at: dict[int, list[int]] = defaultdict(list)
        for c, pos in last_use.items():
            free_at[pos].append(c)
        self._schedule = [(kind, idx, tuple(free_at.get(pos, ()))) for pos, (kind, idx) in enumerate(schedule)]
        self._max_chunk = 8192
        self._set_layout([((i,), [(h,) for h in hels]) for i, hels in enumerate(self._hels)])
        # --- colour (small dense linear algebra: single-threaded, immune to BLAS oversubscription)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._build_colour()
        finally:
            torch.set_num_threads(threads)
        self._build_topologies()
        self._detect_helicity_layout()

    # ============================================================================================
    # colour set-up
    # ============================================================================================
    # ============================================================================================
    # helicity layout
    # ============================================================================================
    def _set_layout(self, axes: list[tuple[tuple[int, ...], list[tuple[int, ...]]]]) -> None:
        """Helicity axes: each axis carries a block of legs and the list of their allowed helicity
        combinations (usually one leg with all its helicities).  Wavefunctions broadcast over axes."""
        n = len(self.pdgs)
        self._axes = axes
        self._leg_axis = [None] * n
        for a, (legs, _) in enumerate(axes):
            for pos, leg in enumerate(legs):
                self._leg_axis[leg] = (a, pos)
        self._hshape = tuple(len(combos) for _, combos in axes)
        self._nhel = int(np.prod(self._hshape))

        def size(mask: int) -> int:
            touched = {self._leg_axis[i][0] for i in range(n) if (mask >> i) & 1}
            return int(np.prod([self._hshape[a] for a in touched])) if touched else 1

        node_size = [4 * size(nd.legs) for nd in self._ds.nodes]
        live, peak = 0, 0
        born = set()
        for kind, idx, frees in self._schedule:
            if kind == "node":
                live += node_size[idx]
                born.add(idx)
            peak = max(peak, live)
            for c in frees:
                if c in born:
                    live -= node_size[c]
        self._node_elems = peak + sum(node_size[k] for k in self._ext_node.values())
        # open slot of each amplitude term: the slot whose wavefunction spans the most helicities
        self._amp_open = []
        for t in self._ds.terms:
            best = max(t.children, key=lambda sc: size(self._ds.nodes[sc[1]].legs))[0]
            self._amp_open.append(best)
        self._amp_dot = ["V" if particle(t.interaction.particles[s]).spin == 3 else "S"
                         for t, s in zip(self._ds.terms, self._amp_open)]

    def _detect_helicity_layout(self, n_points: int = 3) -> None:
        """Drop helicity configurations whose amplitudes vanish identically.

        Chirality conservation on massless fermion lines makes many configurations exactly zero
        (the external spinors have exact zero components, so these amplitudes are 0.0, not small).
        They are found from all terms at random momenta; then helicities never used by a leg are
        removed and pairs of legs whose helicities are correlated (a massless fermion line) share
        one axis of allowed pairs.  Only exact zeros are dropped, so the helicity sum is unchanged."""
        n = len(self.pdgs)
        g = torch.Generator().manual_seed(12345)
        rows = []
        for m in self.masses:
            d = torch.randn(n_points, 3, generator=g, dtype=torch.float64)
            pabs = 20.0 + 100.0 * torch.rand(n_points, 1, generator=g, dtype=torch.float64)
            p3 = d / d.norm(dim=1, keepdim=True) * pabs
            rows.append(torch.cat([torch.sqrt((p3 * p3).sum(1, keepdim=True) + m * m), p3], dim=1))
        p = torch.stack(rows, dim=1)
        A = self._fill_amplitudes(p)  # [T, h..., B], default layout
        nonzero = (A.reshape(A.shape[0], self._nhel, n_points) != 0).any(dim=2).any(dim=0)
        configs = [c for c, ok in zip(itertools.product(*self._hels), nonzero.tolist()) if ok]
        if not configs or len(configs) == self._nhel:
            return
        allowed = [sorted({c[i] for c in configs}) for i in range(n)]
        merged: list[tuple[int, int]] = []
        used: set[int] = set()
        candidates = []
        for i in range(n):
            for j in range(i + 1, n):
                if len(allowed[i]) > 1 and len(allowed[j]) > 1:
                    proj = {(c[i], c[j]) for c in configs}
                    if len(proj) < len(allowed[i]) * len(allowed[j]):
                        candidates.append((len(proj) / (len(allowed[i]) * len(allowed[j])), i, j))
        for _, i, j in sorted(candidates):
            if i not in used and j not in used:
                merged.append((i, j))
                used |= {i, j}
        axes = []
        for i in range(n):
            pair = next((m for m in merged if i in m), None)
            if pair is None:
                axes.append(((i,), [(h,) for h in allowed[i]]))
            elif pair[0] == i:
                a, b = pair
                axes.append(((a, b), sorted({(c[a], c[b]) for c in configs})))
        if int(np.prod([len(c) for _, c in axes])) < self._nhel:
            self._set_layout(axes)

    def _build_colour(self) -> None:
        ds = self._ds
        builder = ColourBuilder(ds)
        term_flows = []
        flow_index: dict[tuple, int] = {}
        for t in ds.terms:
            flows = builder.term_flows(t)
            term_flows.append(flows)
            for key in flows:
                if key not in flow_index:
                    flow_index[key] = len(flow_index)
        nt, nf = len(ds.terms), len(flow_index)
        # C[t, σ]: coefficient of flow σ in term t.  Each term's coefficients share one phase i^k
        # (T and δ real, f imaginary): it is absorbed into the amplitude, so C is real.
        C_real = np.zeros((nt, max(nf, 1)), dtype=np.float64)
        C_lc = np.zeros_like(C_real)
        phases: list = []
        value_cache: dict = {}
        for i, (t, flows) in enumerate(zip(ds.terms, term_flows)):
            scale = t.sign * (1.0 / math.sqrt(2.0)) ** t.qcd
            vals = []
            for key, coeff in flows.items():
                ck = tuple(sorted(coeff.items()))
                if ck not in value_cache:
                    value_cache[ck] = (coeff_value(coeff), coeff_value(coeff, leading=True))
                v, vlc = value_cache[ck]
                vals.append((flow_index[key], scale * v, scale * vlc))
            big = max(vals, key=lambda x: abs(x[1]))[1] if vals else 1.0
            ph = complex(round((big / abs(big)).real), round((big / abs(big)).imag)) if abs(big) else 1.0
            if abs(abs(ph) - 1) > 1e-12:
                raise RuntimeError(f"colour coefficients of term {i} are not of the form i^k × real")
            for j, v, vlc in vals:
                w, wlc = v / ph, vlc / ph
                if abs(w.imag) > 1e-12 * abs(w) or abs(wlc.imag) > 1e-12 * max(abs(wlc), 1e-300):
                    raise RuntimeError(f"colour coefficients of term {i} have mixed phases")
                C_real[i, j] = w.real
                C_lc[i, j] = wlc.real
            phases.append(None if ph == 1 else ph)
        flows_list = [dict(k) for k in flow_index] or [{}]
        gluons = [i for i, p in enumerate(ds.out_particles) if colour(p) == 8]
        K = colour_matrix(flows_list, gluons) if nf else np.ones((1, 1))
        if not nf:  # cannot happen (colour singlets have the empty flow) but keep |M|² defined
            C_real[:, 0] = [t.sign for t in ds.terms]
        self._phases = phases
        self._flows = flows_list
        self._K = K
        Ct = torch.from_numpy(C_real)
        Kt = torch.from_numpy(K)
        self._C_real = Ct
        # groups of terms with equal (QCD, QED) orders (contiguous: terms are sorted)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, t in enumerate(ds.terms):
            groups[(t.qcd, t.qed)].append(i)
        self._groups = sorted(groups.items())
        self._group_slices = [(idx[0], idx[-1] + 1) for _, idx in self._groups]
        # factor K = L Lᵀ (positive semidefinite; torch's LAPACK is much faster than numpy's here)
        w, U = torch.linalg.eigh(Kt)
        keep = w > 1e-12 * max(float(w.max()), 1e-300)
        Lk = U[:, keep] * w[keep].sqrt()[None, :]
        self._R = [(Ct[lo:hi] @ Lk).T.contiguous() for lo, hi in self._group_slices]
        # squared-order pairs allowed, with their α_s powers
        sq = {k[:-2]: v for k, v in self.orders.items() if k.endswith("^2")}
        pairs = []
        for a, (oa, _) in enumerate(self._groups):
            for b, (ob, _) in enumerate(self._groups):
                if b < a:
                    continue
                qcd, qed = oa[0] + ob[0], oa[1] + ob[1]
                have = {"QCD": qcd, "QED": qed, "WEIGHTED": qcd + 2 * qed}
                if all(order_ok(op, have[name], val) for name, (op, val) in sq.items()):
                    pairs.append((a, b, qcd / 2.0))
        if not pairs:
            raise NoDiagramsError(f"'{self.process}': no interference term satisfies the squared orders {sq}")
        self._pairs = pairs
        powers = sorted({p for _, _, p in pairs})
        self._powers = powers
        self.alpha_s_power = int(powers[-1]) if all(float(p).is_integer() for p in powers) else powers[-1]
        # per-diagram colour Gram blocks G_d = C_d K C_dᵀ for amplitudes2
        by_diag: dict[int, list[int]] = defaultdict(list)
        for i, t in enumerate(ds.terms):
            by_diag[t.diagram].append(i)
        CK = Ct @ Kt
        single_w = (CK * Ct).sum(dim=1)
        multi = []
        for d, idx in by_diag.items():
            if len(idx) > 1:
                ii = torch.tensor(idx)
                multi.append((d, idx, CK[ii] @ Ct[ii].T))
        self._single_w_list = [float(x) for x in single_w]
        self._term_diag = [t.diagram for t in ds.terms]
        self._term_group = [0] * nt
        for g, (_, idx) in enumerate(self._groups):
            for i in idx:
                self._term_group[i] = g
        self._rank_total = sum(R.shape[0] for R in self._R)
        self._block = int(max(1, min(nt, 128)))
        self._multi = multi
        self._multi_diags = {d for d, _, _ in multi}
        # leading-colour flows for LHE: flows with a nonzero leading-colour coefficient
        lc_cols = np.nonzero(np.abs(C_lc).sum(axis=0) > 0)[0].tolist() if nf else []
        self._lc_cols = lc_cols
        self._C_lc = torch.from_numpy(np.ascontiguousarray(C_lc[:, lc_cols].T)) if lc_cols else None
        self._flow_tags = [self._lhe_tags(flows_list[j]) for j in lc_cols]
        self._plan_blocks()

    def _lhe_tags(self, flow: dict) -> tuple[tuple[int, int], ...]:
        """LHE (colour, anticolour) tags per leg for one flow (incoming legs in LHE convention)."""
        n = len(self.pdgs)
        col = [0] * n
        acol = [0] * n
        for tag, (c, a) in enumerate(sorted(flow.items()), start=501):
            col[c // 2] = tag
            acol[a // 2] = tag
        out = []
        for i in range(n):
            if i < self.n_in:  # an incoming quark is an outgoing antiquark: swap back
                out.append((acol[i], col[i]))
            else:
                out.append((col[i], acol[i]))
        return tuple(out)

    # ============================================================================================
    # topologies and descriptions
    # ============================================================================================
    def _build_topologies(self) -> None:
        ds = self._ds
        externals = tuple((p, m) for p, m in zip(self.pdgs, self.masses))
        first_term: dict[int, object] = {}
        for t in ds.terms:
            first_term.setdefault(t.diagram, t)
        topos, descr = [], []
        for d in range(ds.n_diagrams):
            t = first_term[d]
            lines, verts = [], []
            stack = [k for _, k in t.children]
            root_parts = [name_of(p) for p in t.interaction.particles]
            verts.append("(" + ",".join(root_parts) + ")")
            while stack:
                k = stack.pop()
                nd = ds.nodes[k]
                if nd.interaction is None:
                    continue
                plan = self._plans[k]
                legs = frozenset(i for i in range(len(self.pdgs)) if (nd.legs >> i) & 1)
                lines.append((legs, nd.particle, plan.mass, plan.width))
                verts.append("(" + ",".join(name_of(p) for p in nd.interaction.particles) + ")")
                stack.extend(c for _, c in nd.children)
            topo = build_topology(d, externals, self.n_in, lines)
            topos.append(topo)
            qcd, qed = ds.diagram_orders[d]
            descr.append(f"diagram {d + 1}: QCD={qcd} QED={qed}; vertices {' '.join(reversed(verts))}; "
                         f"propagators {topo.describe()}")
        self.topologies: list[Topology] = topos
        self.diagrams: list[str] = descr

    # ============================================================================================
    # evaluation
    # ============================================================================================
    def _external_wavefunctions(self, pt: Tensor, replace: dict | None = None) -> list[list[Tensor]]:
        """Per leg: components broadcast over the helicity axes (``[.., combos of its axis, .., B]``)."""
        B = pt.shape[-1]
        n_axes = len(self._axes)
        wfs = []
        for i, (pdg, mass, hels) in enumerate(zip(self.pdgs, self.masses, self._hels)):
            a, pos = self._leg_axis[i]
            values = [combo[pos] for combo in self._axes[a][1]]
            pi = [pt[i, mu] for mu in range(4)]
            incoming = i < self.n_in
            spin = particle(pdg).spin
            per: dict[int, list] = {}
            for h in sorted(set(values)):
                if replace and i in replace:
                    rep = replace[i]
                    if isinstance(rep, str) and rep == "momentum":
                        w = [c + 0j for c in pi]
                    else:  # tensor [B, n_hel, C] over the leg's helicities
                        k = hels.index(h)
                        w = [rep[:, k, c].to(torch.complex128) for c in range(rep.shape[-1])]
                elif spin == 2:
                    if incoming:
                        w = L.spinor_in(pi, mass, h, 1) if pdg > 0 else L.spinor_out(pi, mass, h, -1)
                    else:
                        w = L.spinor_out(pi, mass, h, 1) if pdg > 0 else L.spinor_in(pi, mass, h, -1)
                elif spin == 3:
                    w = L.polarization(pi, mass, h, -1 if incoming else 1)
                else:
                    w = L.scalar_wf(pi)
                per[h] = w
            shape = [1] * n_axes + [B]
            shape[a] = len(values)
            ncomp = len(per[values[0]])
            comps = [torch.stack([per[v][c] for v in values], dim=0).reshape(shape) for c in range(ncomp)]
            wfs.append(comps)
        return wfs

    @staticmethod
    def _current(inter, comp: int, wfs: list, moms: list, open_slot: int, s=None) -> list:
        c = inter.components[comp]
        kind = inter.lorentz
        if kind == "FFV":
            return L.ffv(wfs, open_slot, c.coupling[0], c.coupling[1], s)
        if kind == "FFS":
            return L.ffs(wfs, open_slot, c.coupling[0], c.coupling[1], s)
        if kind == "VVV":
            return L.vvv(wfs, moms, open_slot, c.coupling, s)
        if kind == "VVVV":
            return L.vvvv(wfs, open_slot, c.coupling, c.lorentz_args, s)
        if kind == "VVS":
            return L.vvs(wfs, open_slot, c.coupling, s)
        if kind == "VVSS":
            return L.vvss(wfs, open_slot, c.coupling, s)
        if kind in ("SSS", "SSSS"):
            return L.sss(wfs, open_slot, c.coupling, s)
        raise ValueError(kind)

    def _term_amplitudes(self, p: Tensor, out_for, replace: dict | None = None, after_term=None) -> None:
        """Evaluate the schedule; each term's amplitude is written into ``out_for(t)`` ([h_0..h_{n−1}, B])."""
        n = len(self.pdgs)
        B = p.shape[0]
        pt = p.permute(1, 2, 0).contiguous()  # [n, 4, B]
        q = pt.clone()
        q[: self.n_in] = -q[: self.n_in]  # outgoing momenta
        node_p = (self._consts(p.device)["node_legs"] @ q.reshape(n, 4 * B)).reshape(-1, 4, B)
        ext = self._external_wavefunctions(pt, replace)
        wf: dict[int, list] = {}
        for leg, nid in self._ext_node.items():
            wf[nid] = ext[leg]
        moms = [[node_p[k, mu] for mu in range(4)] for k in range(node_p.shape[0])]
        terms = self._ds.terms
        for kind, idx, frees in self._schedule:
            if kind == "node":
                plan = self._plans[idx]
                inter = plan.inter
                wfs: list = [None] * inter.n_legs
                mm: list = [None] * inter.n_legs
                for slot, c in plan.children:
                    wfs[slot] = wf[c]
                    mm[slot] = moms[c]
                P = moms[idx]
                if inter.lorentz == "VVV":
                    mm[plan.open_slot] = [-x for x in P]
                if plan.kind == "V":
                    cur = self._current(inter, plan.comp, wfs, mm, plan.open_slot,
                                        L.vector_scale(P, plan.mass, plan.width))
                    if plan.mass != 0.0:
                        cur = L.massive_vector_numerator(cur, P, plan.mass)
                elif plan.kind == "S":
                    cur = self._current(inter, plan.comp, wfs, mm, plan.open_slot,
                                        L.scalar_scale(P, plan.mass, plan.width))
                else:
                    cur = self._current(inter, plan.comp, wfs, mm, plan.open_slot)
                    pf = [-x for x in P] if plan.kind == "psi" else P
                    cur = L.fermion_propagator(plan.kind, cur, pf, plan.mass, plan.width)
                wf[idx] = cur
            else:
                term = terms[idx]
                inter = term.interaction
                open_slot = self._amp_open[idx]
                wfs = [None] * inter.n_legs
                mm = [None] * inter.n_legs
                for slot, c in term.children:
                    wfs[slot] = wf[c]
                    mm[slot] = moms[c]
                cur = self._current(inter, term.component, wfs, mm, open_slot, self._phases[idx])
                out = out_for(idx)
                if self._amp_dot[idx] == "V":
                    L.mdot_into(out, cur, wfs[open_slot])
                else:
                    L.sdot_into(out, cur, wfs[open_slot])
                if after_term is not None:
                    after_term(idx)
            for c in frees:
                wf.pop(c, None)

    def _fill_amplitudes(self, p: Tensor, replace: dict | None = None) -> Tensor:
        """Amplitude of every term, ``A [n_terms, h_0, …, h_{n−1}, B]`` (complex; phases absorbed)."""
        A = torch.empty((len(self._ds.terms),) + self._hshape + (p.shape[0],), dtype=torch.complex128,
                        device=p.device)
        self._term_amplitudes(p, lambda t: A[t], replace)
        return A

    def _chunk(self) -> int:
        per_event = 16 * (self._block * self._nhel + self._node_elems + 2 * self._nhel * self._rank_total)
        target = max(64, 65536 // self._nhel)  # ~1 MB per full-size tensor: cache friendly
        return int(max(1, min(self._max_chunk, target, _AMP_BYTES // per_event)))

    def _plan_blocks(self) -> None:
        """Terms arrive in schedule order, the same for every chunk: fix once which block of which
        coupling-order group each term fills, and when each block is complete."""
        order = [idx for kind, idx, _ in self._schedule if kind == "term"]
        per_group: list[list[int]] = [[] for _ in self._R]
        for t in order:
            per_group[self._term_group[t]].append(t)
        self._blocks: list[tuple[int, list[int]]] = []  # (group, terms)
        self._slot_of: dict[int, tuple[int, int]] = {}  # term -> (buffer group, row)
        self._flush_after: dict[int, int] = {}  # term -> block index completed by it
        for g, terms in enumerate(per_group):
            for lo in range(0, len(terms), self._block):
                blk = terms[lo:lo + self._block]
                for j, t in enumerate(blk):
                    self._slot_of[t] = (g, j)
                self._flush_after[blk[-1]] = len(self._blocks)
                self._blocks.append((g, blk))
        self._device_cache: dict = {}

    def _consts(self, dev) -> dict:
        """Per-device constant tensors (R and C_LC blocks, amplitudes² weights, ...)."""
        key = str(dev)
        if key in self._device_cache:
            return self._device_cache[key]
        blocks = []
        for g, blk in self._blocks:
            lo = self._group_slices[g][0]
            local = torch.tensor([t - lo for t in blk])
            R = self._R[g].index_select(1, local).contiguous().to(dev)
            C_lc = (self._C_lc.index_select(1, torch.tensor(blk)).contiguous().to(dev)
                    if self._C_lc is not None else None)
            single = [j for j, t in enumerate(blk) if self._term_diag[t] not in self._multi_diags]
            multi = [(j, t) for j, t in enumerate(blk) if self._term_diag[t] in self._multi_diags]
            w = torch.tensor([self._single_w_list[t] if j in single else 0.0 for j, t in enumerate(blk)],
                             dtype=torch.float64).to(dev)
            d = torch.tensor([self._term_diag[t] for t in blk]).to(dev)
            blocks.append({"R": R, "C_lc": C_lc, "w": w, "diag": d, "multi": multi})
        consts = {"blocks": blocks, "node_legs": self._node_legs.to(dev),
                  "multi_G": [G.to(dev) for _, _, G in self._multi]}
        self._device_cache[key] = consts
        return consts

    def _evaluate_chunk(self, p: Tensor, want_amp2: bool, want_flows: bool):
        """Stream the amplitude terms of one chunk into the colour sums.

        Terms are buffered per coupling-order group in blocks; each full block is contracted with
        its slice of R (Z_g += R_g[:, block] @ A_block), so memory stays bounded."""
        B = p.shape[0]
        dev = p.device
        consts = self._consts(dev)
        HB2 = self._nhel * B * 2
        Z = [torch.zeros(R.shape[0], HB2, dtype=torch.float64, device=dev) for R in self._R]
        amp2 = torch.zeros(self.n_diagrams, B, dtype=torch.float64, device=dev) if want_amp2 else None
        JLC = (torch.zeros(self._C_lc.shape[0], HB2, dtype=torch.float64, device=dev)
               if want_flows and self._C_lc is not None else None)
        bufs = [torch.empty((self._block,) + self._hshape + (B,), dtype=torch.complex128, device=dev)
                for _ in self._R]
        multi_store: dict[int, Tensor] = {}

        def flush(bi: int) -> None:
            g, blk = self._blocks[bi]
            c = consts["blocks"][bi]
            k = len(blk)
            Ar = torch.view_as_real(bufs[g][:k]).reshape(k, HB2)
            Z[g].addmm_(c["R"], Ar)
            if JLC is not None:
                JLC.addmm_(c["C_lc"], Ar)
            if amp2 is not None:
                sq = _sum_hel(Ar.square(), k, self._nhel, B)  # [k, B]
                amp2.index_add_(0, c["diag"], sq * c["w"][:, None])
                for j, t in c["multi"]:
                    multi_store[t] = Ar[j].clone()

        def out_for(t: int) -> Tensor:
            g, j = self._slot_of[t]
            return bufs[g][j]

        self._term_amplitudes(p, out_for, after_term=lambda t: flush(self._flush_after[t])
                              if t in self._flush_after else None)
        out: dict[float, Tensor] = {}
        for a, b, pw in self._pairs:
            if a == b:
                val = _sum_hel(Z[a].square(), 1, -1, B)[0]
            else:
                val = 2.0 * _sum_hel(Z[a] * Z[b], 1, -1, B)[0]
            out[pw] = out[pw] + val if pw in out else val
        pieces = torch.stack([out[pw] * self._norm for pw in self._powers], dim=0)
        res = {"pieces": pieces}
        if amp2 is not None:
            for (d, idx, _), G in zip(self._multi, consts["multi_G"]):
                X = torch.stack([multi_store[t] for t in idx], dim=0).reshape(len(idx), self._nhel, B, 2)
                amp2[d] += torch.einsum("khbc,kl,lhbc->b", X, G, X)
            res["amp2"] = amp2.T * self._norm
        if JLC is not None:
            res["flows"] = _sum_hel(JLC.square(), JLC.shape[0], self._nhel, B).T
        return res

    def _run(self, momenta: Tensor, want_amp2: bool = False, want_flows: bool = False):
        parts: dict[str, list[Tensor]] = defaultdict(list)
        chunk = self._chunk()
        for start in range(0, momenta.shape[0], chunk):
            res = self._evaluate_chunk(momenta[start:start + chunk], want_amp2, want_flows)
            for k, v in res.items():
                parts[k].append(v)
        dev = momenta.device
        out = {"pieces": torch.cat(parts["pieces"], dim=1) if parts["pieces"] else
               torch.zeros(len(self._powers), 0, dtype=torch.float64, device=dev)}
        if want_amp2:
            out["amp2"] = (torch.cat(parts["amp2"], dim=0) if parts["amp2"] else
                           torch.zeros(0, self.n_diagrams, dtype=torch.float64, device=dev))
        if want_flows:
            out["flows"] = (torch.cat(parts["flows"], dim=0) if parts["flows"] else
                            torch.zeros(momenta.shape[0], len(self._flow_tags), dtype=torch.float64, device=dev))
        return out

    def helicity_flow_amplitudes(self, momenta: Tensor, replace: dict | None = None) -> Tensor:
        """Colour-flow amplitudes J ``[n, H, n_flows]`` (complex) per helicity configuration.

        Σ_h J_h† K J_h (K = :attr:`colour_matrix`) is the colour- and helicity-summed |M|² before
        averaging.  ``replace={leg: "momentum"}`` substitutes the leg's polarisation vector by its
        momentum (Ward-identity checks); helicity order: row-major over legs (``helicities``).
        """
        self.check_momenta(momenta)
        A = self._fill_amplitudes(momenta, replace)
        Ar = A.reshape(A.shape[0], self._nhel, -1)  # [T, H, B] (phases absorbed)
        J = torch.einsum("tf,thb->bhf", self._C_real.to(A.device).to(A.dtype), Ar)
        return J

    @property
    def flow_links(self) -> list[dict[int, int]]:
        """The colour flows (columns of :meth:`helicity_flow_amplitudes` and of :attr:`colour_matrix`)
        as {leg carrying the colour slot: leg carrying the linked anticolour slot}, all legs outgoing."""
        return [{c // 2: a // 2 for c, a in f.items()} for f in self._flows]

    @property
    def colour_matrix(self) -> Tensor:
        """The exact colour matrix K over :attr:`flows` (float64)."""
        return torch.from_numpy(self._K)

    @property
    def helicities(self) -> list[tuple[int, ...]]:
        """Helicity configurations (2×helicity per leg), in the order of the H axis."""
        out = []
        for combo in itertools.product(*(c for _, c in self._axes)):
            h = [0] * len(self.pdgs)
            for (legs, _), values in zip(self._axes, combo):
                for leg, v in zip(legs, values):
                    h[leg] = v
            out.append(tuple(h))
        return out

    def _combine(self, pieces: Tensor, alpha_s) -> Tensor:
        if alpha_s is None:
            return pieces.sum(dim=0)
        ratio = torch.as_tensor(alpha_s, dtype=pieces.dtype, device=pieces.device) / self.alpha_s_ref
        tot = None
        for k, pw in enumerate(self._powers):
            term = pieces[k] * ratio ** pw if pw else pieces[k]
            tot = term if tot is None else tot + term
        return tot

    # ---- public API -------------------------------------------------------------------------------
    def evaluate(self, momenta: Tensor) -> Tensor:
        return self._run(momenta)["pieces"].sum(dim=0)

    def __call__(self, momenta: Tensor, alpha_s: Tensor | float | None = None) -> Tensor:
        """|M|² ``[n]``; ``alpha_s`` (scalar or ``[n]``) rescales every α_s-power piece exactly."""
        self.check_momenta(momenta)
        return self._combine(self._run(momenta)["pieces"], alpha_s)

    def amplitudes2(self, momenta: Tensor, alpha_s: Tensor | float | None = None) -> Tensor:
        """Per-diagram |A_d|² ``[n, n_diagrams]``: colour-summed square of each diagram alone,
        summed over helicities, with the same averaging as |M|² (single-diagram-enhancement weights)."""
        self.check_momenta(momenta)
        a2 = self._run(momenta, want_amp2=True)["amp2"]
        if alpha_s is not None:
            ratio = torch.as_tensor(alpha_s, dtype=a2.dtype, device=a2.device) / self.alpha_s_ref
            pw = torch.tensor([self._ds.diagram_orders[d][0] for d in range(self.n_diagrams)],
                              dtype=a2.dtype, device=a2.device)
            a2 = a2 * ratio.reshape(-1, 1) ** pw if ratio.dim() else a2 * ratio ** pw
        return a2

    def evaluate_with_amplitudes2(self, momenta: Tensor, alpha_s: Tensor | float | None = None
                                  ) -> tuple[Tensor, Tensor]:
        """(|M|², amplitudes2) in one pass."""
        self.check_momenta(momenta)
        out = self._run(momenta, want_amp2=True)
        me = self._combine(out["pieces"], alpha_s)
        a2 = out["amp2"]
        if alpha_s is not None:
            ratio = torch.as_tensor(alpha_s, dtype=a2.dtype, device=a2.device) / self.alpha_s_ref
            pw = torch.tensor([self._ds.diagram_orders[d][0] for d in range(self.n_diagrams)],
                              dtype=a2.dtype, device=a2.device)
            a2 = a2 * ratio.reshape(-1, 1) ** pw if ratio.dim() else a2 * ratio ** pw
        return me, a2

    def colour_flows(self, momenta: Tensor) -> tuple[list[tuple[tuple[int, int], ...]], Tensor]:
        """Leading-colour flows and their per-event weights.

        Returns ``(flows, weights)``: ``flows[j]`` gives LHE ``(colour, anticolour)`` tags (501, 502,
        …; 0 for none) per leg in process order, incoming legs in LHE convention; ``weights``
        ``[n, n_flows]`` = Σ_hel |J_j^LC|², the squared leading-colour partial amplitude of each flow.
        Choose flow j with probability ∝ weights[:, j] (as MadGraph does for LHE output).
        Colourless processes return one flow with all tags 0 and weight 1.
        """
        self.check_momenta(momenta)
        if not self._flow_tags:
            n = len(self.pdgs)
            return [tuple((0, 0) for _ in range(n))], torch.ones(momenta.shape[0], 1, dtype=torch.float64,
                                                                 device=momenta.device)
        w = self._run(momenta, want_flows=True)["flows"]
        return list(self._flow_tags), w

    @property
    def n_flows(self) -> int:
        return len(self._flows)


def build_matrix_element(pdgs: tuple[int, ...], params: SMParameters, orders: dict | None = None,
                         n_in: int = 2, *, tchannel_width: bool = True) -> EngineMatrixElement:
    """Build the engine |M|² for signed PDG ids ``pdgs`` (incoming first, process order).

    ``orders``: coupling-order constraints, e.g. ``{"QED": ("<=", 2), "QCD^2": ("==", 4)}``;
    ``None`` = MadGraph's default (lowest QED order).  Raises :class:`NoDiagramsError` when the
    process has no tree-level diagram, :class:`MatrixElementError` for bad input.
    """
    pdgs = tuple(int(p) for p in pdgs)
    if n_in not in (1, 2):
        raise MatrixElementError(f"n_in must be 1 or 2, got {n_in}")
    if len(pdgs) < n_in + 1 or len(pdgs) < 3:
        raise MatrixElementError(f"a process needs at least three particles, got {len(pdgs)}")
    for p in pdgs:
        if abs(p) not in PARTICLES:
            raise UnknownParticleError(f"unknown PDG id {p}")
        if p < 0 and PARTICLES[abs(p)].self_conjugate:
            raise UnknownParticleError(f"PDG id {p}: {name_of(abs(p))} is its own antiparticle")
    if not isinstance(params, SMParameters):
        raise MatrixElementError("params must be an SMParameters")
    ds = generate(_model(params), pdgs, n_in, orders)
    return EngineMatrixElement(pdgs, params, ds, n_in, orders, tchannel_width)
