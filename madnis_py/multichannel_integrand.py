"""The multi-channel collider integrand: diagram-based phase-space channels × single-diagram enhancement.

Built on a :class:`~madnis_py.integrand.CollisionIntegrand` (one class of subprocess groups
with equal external masses) and evaluated with the *same* code path for PDFs × |M|² × cuts ×
flux (``CollisionIntegrand.kinematics`` / ``term_weight``).

Channels
--------
Each subprocess group g contributes the channels :func:`channels.channel.build_channels` makes
from its representative ME's topologies (``me.topologies``).  A group with *mirror* members
(incoming partons swapped, e.g. ``u~ u`` next to ``u u~``) gets a second copy of its channels
for the mirrored orientation: such a channel maps u to momenta p' in the ME's leg order and the
lab event is p = R·swap(p') (incoming legs swapped, then rotated by π about the x axis so that
leg 0 again moves along +z; |M|², cuts and scales are invariant under that rotation, and so is
the density dx1 dx2 dΦ_n).  A *block* is one (group, orientation); its weight function is

    F_b(p) = Σ_{members of b} f_a(x1) f_b(x2) · |M_g|²(p_ME) · Θ_cuts(p) · GeV²→pb / (2ŝ).

So σ = Σ_b ∫ F_b, and the mirror term's peaks (e.g. t-channel poles along the other beam) are
covered by channels oriented for them (MadEvent likewise treats the mirror configuration as its
own set of channels).

Weights (for :class:`channels.multichannel.MultiChannelVegas`)
---------------------------------------------------------------
For points u of channel c in block b:

    w_c(u) = multiplicity_c · α_c(p) · F_b(p) / q_c(p),     (p', log q_c) = channel_c.forward(u)

α_c is the single-diagram-enhancement weight (MadGraph's convention), from one ME pass
(``me.evaluate_with_amplitudes2``):

    α_c(p) = Σ_{d ∈ c.diagrams} |A_d(p')|² / Σ_{all diagrams d of g} |A_d(p')|²

(``prior="propagator"``: :func:`channels.channel.propagator_prior` instead — cheaper, no
amplitudes).  Σ_c α_c = 1 over the unfolded channels of a block, so Σ_c ∫ w_c du = σ; a channel
folded from m symmetry-equivalent ones (identical final-state particles, ``fold_symmetric``)
carries multiplicity m: α is equivariant under the permutation and F_b symmetric, so its m copies
integrate to the same value.

NIS form (for :class:`madnis_py.nis.Integrator`, ``method: madnis``)
--------------------------------------------------------------------
``nis(x, channel)`` with a channel tensor ``[n]`` returns ``(F_b/q_c, prior [n, k], None)``: the
weight without α and multiplicity, and the SDE prior α over all k channels — block-diagonal:
α_{c'}(p) for the channels c' of the point's own block, 0 for the others.  Rows sum to 1 (uniform
within the block where all |A_d|² vanish, e.g. outside the cuts).  Then Σ_c ∫ α_c F_b/q_c q_c
= Σ_b ∫ F_b = σ for any learned α that keeps the zeros (softmax of log prior + NN does).  This
needs channels built with ``fold_symmetric=False`` (multiplicity 1); ``nis`` refuses otherwise.  The
symmetry is used instead by tying: :meth:`MultiChannelIntegrand.samplers` gives channels that are images of
each other one flow and grid in the integrator (``samplers=``).

Cuts are applied to the mapped momenta; the integrand counts calls, points passing the cuts
(``cut_efficiency``) and non-finite |M|² (set to 0).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from channels.kinematics import PhaseSpaceError, mirror_beams

from .cuts import Cuts, object_class
from .errors import InputError, PhysicsError
from .integrand import CollisionIntegrand, GroupTerm

PRIORS = ("sde", "propagator")


def invariant_bounds(cuts: Cuts, masses_out: Sequence[float], n_in: int = 2) -> Callable[[frozenset[int]], float]:
    """Lower bound (GeV) on the invariant mass of a set of final-state legs implied by ``cuts``.

    Legs are numbered as in the topology (incoming first: final-state leg i is ``cuts.final_pdgs[i - n_in]``).

    * pair of massless particles with pT ≥ a, b and ΔR ≥ R (R ≤ π):
      m² = 2 pT₁ pT₂ (cosh Δη − cos Δφ) ≥ 2 a b (1 − cos R), i.e. m ≥ 2 √(ab) sin(R/2)
      (cosh Δη − 1 ≥ Δη²/2 ≥ 1 − cos Δη, so on the circle Δη² + Δφ² = R² the minimum is at Δη = 0);
    * pair with an invariant-mass cut (``mmjj``, ``mmbb``, ``mmaa``; ``mmll`` for same-flavour
      opposite-charge leptons): m ≥ the cut;
    * larger sets: m(S)² = Σ_i m_i² + Σ_{i<j} 2 p_i·p_j ≥ Σ m_i² + Σ_{i<j} max(lb_ij² − m_i² − m_j², 2 m_i m_j);
    * the full final state: also :meth:`Cuts.min_partonic_mass` (Σ_i √(m_i² + pT_min,i²) and pair cuts).
    Never below Σ m_i.
    """
    pdgs = cuts.final_pdgs
    m = list(masses_out)
    n_out = len(pdgs)

    def pair(i: int, k: int) -> float:
        ci, ck = object_class(pdgs[i]), object_class(pdgs[k])
        lb = m[i] + m[k]
        if ci is None or ck is None:
            return lb
        if m[i] == 0.0 and m[k] == 0.0:
            r = cuts.dr_min(i, k)  # 0 unless both are cut classes
            if r > 0:
                lb = max(lb, 2.0 * math.sqrt(cuts.pt_min(i) * cuts.pt_min(k)) * math.sin(min(r, math.pi) / 2.0))
        return max(lb, cuts.pair_mass_min(i, k))

    full_bound = cuts.min_partonic_mass(tuple(m))
    cache: dict[frozenset[int], float] = {}

    def bound(legs: frozenset[int]) -> float:
        if legs in cache:
            return cache[legs]
        idx = sorted(i - n_in for i in legs if i >= n_in)
        s2 = sum(m[i] ** 2 for i in idx)
        for i, k in itertools.combinations(idx, 2):
            s2 += max(pair(i, k) ** 2 - m[i] ** 2 - m[k] ** 2, 2.0 * m[i] * m[k])
        b = math.sqrt(max(s2, 0.0))
        if len(idx) == n_out:
            b = max(b, full_bound)
        b = max(b, sum(m[i] for i in idx))
        cache[legs] = b
        return b

    return bound


def leg_cuts(cuts: Cuts, n_in: int = 2) -> Callable[[int], tuple[float, float]]:
    """(pT_min GeV, max |η|) of final-state leg ``leg`` (topology numbering, incoming first) from ``cuts``;
    (0, inf) where none applies.  The channels use them to bound the first t-channel angle."""
    def one(leg: int) -> tuple[float, float]:
        i = leg - n_in
        return cuts.pt_min(i), cuts.eta_max(i)

    return one


def pair_cuts(cuts: Cuts, n_in: int = 2) -> Callable[[int, int], float]:
    """Minimum ΔR of final-state legs ``i``, ``j`` (topology numbering, incoming first) from ``cuts``; 0 where none
    applies.  The channels use it to draw the event's orientation near the axis of close pairs."""
    def one(i: int, j: int) -> float:
        return cuts.dr_min(i - n_in, j - n_in)

    return one


@dataclass
class ChannelSlot:
    """One channel of the integrand: its block (group ``term``, orientation ``mirror``) and mapping."""

    term: int
    mirror: bool
    block: int
    position: int          # index within its block
    channel: Any           # channels.channel.PhaseSpaceChannel (or anything with the same attributes)

    @property
    def multiplicity(self) -> int:
        return int(getattr(self.channel, "multiplicity", 1))


@dataclass
class ChannelEvaluation:
    """Channel points: lab momenta ``[n, n_ext, 4]``, F/q (pb, no α), SDE prior within the block ``[n, k_b]``,
    weight = multiplicity · α_c · F/q, and the cut mask."""

    momenta: Tensor
    f_over_q: Tensor
    block_prior: Tensor
    weight: Tensor
    passed: Tensor


def _default_builder() -> Callable:
    from channels.channel import build_channels  # helper A's module

    return build_channels


class MultiChannelIntegrand:
    """Diagram channels and their weights for one :class:`CollisionIntegrand` (see the module docstring)."""

    def __init__(self, base: CollisionIntegrand, fold_symmetric: bool = True, max_channels: int = 1000,
                 prior: str = "sde", builder: Callable | None = None):
        if prior not in PRIORS:
            raise InputError(f"unknown channel prior '{prior}'; available: {', '.join(PRIORS)}")
        self.base = base
        self.prior = prior
        self.fold_symmetric = fold_symmetric
        build = builder or _default_builder()
        self.slots: list[ChannelSlot] = []
        self.blocks: list[list[int]] = []        # block -> slot indices
        self.block_term: list[tuple[int, bool]] = []
        dims = None
        for ti, term in enumerate(base.terms):
            masses_out = tuple(term.me.masses[2:])
            cuts = term.cuts
            min_mass = cuts.min_partonic_mass(masses_out)
            tau_min = (min_mass / base.sqrt_s) ** 2 * (1 + 1e-12) if base.hadronic else 0.0
            left = max_channels - len(self.slots)
            topologies = getattr(term.me, "topologies", None)
            if not topologies:
                raise InputError(f"the matrix element of '{term.group.name}' provides no diagram topologies, "
                                 f"so no phase-space channels can be built")
            if prior == "sde" and not hasattr(term.me, "evaluate_with_amplitudes2"):
                self.prior = "propagator"
            try:
                chans = build(list(topologies), base.sqrt_s, base.hadronic, tau_min=tau_min,
                              invariant_min=invariant_bounds(cuts, masses_out), leg_cuts=leg_cuts(cuts),
                              pair_cuts=pair_cuts(cuts),
                              fold_symmetric=fold_symmetric,
                              max_channels=max(left, 1))
            except PhaseSpaceError as exc:
                raise InputError(f"{term.group.name}: {exc}") from None
            orientations = ([False] if term.direct else []) + ([True] if term.mirror else [])
            for mirror in orientations:
                if len(self.slots) + len(chans) > max_channels:
                    raise InputError(
                        f"'{base.terms[0].group.name}' and its subprocess groups need more than {max_channels} "
                        f"phase-space channels (mirror orientations count separately); raise integrator.max_channels "
                        f"or use method 'vegas'")
                block = len(self.blocks)
                ids = []
                for pos, ch in enumerate(chans):
                    if dims is None:
                        dims = ch.dims_in
                    elif ch.dims_in != dims:
                        raise PhaseSpaceError(f"channels of one integrand must share dims, got {ch.dims_in} and {dims}")
                    ids.append(len(self.slots))
                    self.slots.append(ChannelSlot(ti, mirror, block, pos, ch))
                self.blocks.append(ids)
                self.block_term.append((ti, mirror))
        if not self.slots:
            raise PhysicsError("no phase-space channel could be built")
        self.dims = int(dims)
        #: block -> 0/1 (diagram, channel) incidence matrix [n_diagrams, k_b] on the device, built on first use
        self._block_select: dict[int, Tensor] = {}
        self.calls = 0
        self.n_passed = 0
        self.n_nonfinite = 0

    @property
    def n_channels(self) -> int:
        return len(self.slots)

    @property
    def multiplicities(self) -> list[int]:
        return [s.multiplicity for s in self.slots]

    def group_parts(self, values: Sequence[float], errors: Sequence[float]) -> list[tuple[float, float]]:
        """Per-channel (value, error) summed into (σ, error) per subprocess group of ``base`` (errors in quadrature)."""
        parts = []
        for ti in range(len(self.base.terms)):
            ids = [c for c, s in enumerate(self.slots) if s.term == ti]
            parts.append((sum(values[c] for c in ids), math.sqrt(sum(errors[c] ** 2 for c in ids))))
        return parts

    @property
    def cut_efficiency(self) -> float | None:
        return self.n_passed / self.calls if self.calls else None

    # ------------------------------------------------------------------ evaluation
    def _block_alpha(self, block: int, pin: Tensor, amp2: Tensor | None) -> Tensor:
        """α over the channels of ``block`` at ME-ordered momenta ``pin`` ``[n, k_b]`` (rows sum to 1)."""
        ids = self.blocks[block]
        n = pin.shape[0]
        if self.prior == "propagator" or amp2 is None:
            from channels.channel import propagator_prior

            a = propagator_prior([self.slots[i].channel for i in ids], pin)
        else:
            sel = self._block_select.get(block)
            if sel is None or sel.shape[0] != amp2.shape[1] or sel.device != amp2.device:
                d = torch.tensor([dg for i in ids for dg in self.slots[i].channel.diagrams], dtype=torch.long)
                j = torch.tensor([pos for pos, i in enumerate(ids) for _ in self.slots[i].channel.diagrams],
                                 dtype=torch.long)
                sel = torch.zeros(amp2.shape[1], len(ids), dtype=amp2.dtype)
                sel.index_put_((d, j), torch.ones(d.numel(), dtype=amp2.dtype), accumulate=True)
                sel = self._block_select[block] = sel.to(amp2.device)
            a = amp2 @ sel  # Σ_{d ∈ channel} |A_d|² for all channels of the block in one product
            den = amp2.sum(dim=1, keepdim=True)
            a = torch.where(den > 0, a / den.clamp_min(1e-300), torch.zeros_like(a))
        bad = ~(a.sum(dim=1, keepdim=True) > 0) | ~torch.isfinite(a).all(dim=1, keepdim=True)
        return torch.where(bad, torch.full((n, len(ids)), 1.0 / len(ids), dtype=a.dtype, device=a.device), a)

    def _momenta(self, u: Tensor, c: int) -> tuple[Tensor, Tensor]:
        """Channel ``c``'s map of ``u [n, dims]``: lab momenta ``[n, n_ext, 4]`` and log of its density."""
        slot = self.slots[c]
        p_me, log_q = slot.channel.forward(u)
        return (mirror_beams(p_me) if slot.mirror else p_me), log_q

    def _block_weight(self, block: int, p: Tensor, log_q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """F/q (pb), the block prior ``[n, k_b]`` and the cut mask for lab momenta ``p`` drawn with density
        ``exp(log_q)`` by a channel of ``block`` (all its channels share one subprocess group and orientation,
        so one |M|² call serves points of all of them)."""
        base = self.base
        ti, mirror = self.block_term[block]
        term: GroupTerm = base.terms[ti]
        n = p.shape[0]
        kin = base.kinematics(p, log_q)
        keep = kin.valid & term.cuts.passes(p[:, 2:])
        f = torch.zeros(n, dtype=torch.float64, device=p.device)
        k_b = len(self.blocks[block])
        prior = torch.full((n, k_b), 1.0 / k_b, dtype=torch.float64, device=p.device)
        n_keep = int(keep.sum())  # one host sync per call
        if n_keep:
            need_amp = self.prior == "sde"
            fk, amp2, bad = base.term_weight(term, kin, keep, mirror=mirror, amplitudes=need_amp)
            self.n_nonfinite += bad
            f[keep] = fk * kin.flux_jac[keep]
            pin = p[keep][:, [1, 0] + list(range(2, p.shape[1]))] if mirror else p[keep]
            prior[keep] = self._block_alpha(block, pin, amp2)
        self.calls += n
        self.n_passed += n_keep
        return f, prior, keep

    def evaluate(self, u: Tensor, c: int) -> ChannelEvaluation:
        """Points ``u [n, dims]`` of channel ``c``: momenta, F/q, block prior and the channel weight."""
        slot = self.slots[c]
        u = u.to(device=self.base.device, dtype=torch.float64)
        p, log_q = self._momenta(u, c)
        f, prior, keep = self._block_weight(slot.block, p, log_q)
        weight = slot.multiplicity * prior[:, slot.position] * f
        return ChannelEvaluation(p, f, prior, weight, keep)

    def __call__(self, u: Tensor, c: int) -> Tensor:
        """Channel integrand for :class:`channels.multichannel.MultiChannelVegas`: w_c(u) in pb."""
        return self.evaluate(u, int(c)).weight

    def coordinates(self, x: Tensor, channel: Tensor) -> tuple[Tensor, Tensor]:
        """Every channel's view of the points ``x`` of channels ``channel``: ``(x_all [n, k, d], log_g [n, k])``,
        the point's unit-cube coordinates and analytic log-density (GeV-based phase-space density, as
        ``channel.forward`` returns it) in each channel c' of its own block, from c''s exact inverse map (its
        own channel: the input and the forward density);
        log_g = −inf for channels of other blocks and outside c''s support (x_all is then 0.5).  For the
        balance-heuristic channel weights of :class:`madnis_py.nis.Integrator` (``coordinates=``)."""
        x = x.to(device=self.base.device, dtype=torch.float64)
        channel = channel.to(device=x.device, dtype=torch.long)
        n, k = x.shape[0], self.n_channels
        x_all = torch.full((n, k, x.shape[1]), 0.5, dtype=torch.float64, device=x.device)
        log_g = torch.full((n, k), -math.inf, dtype=torch.float64, device=x.device)
        counts = torch.bincount(channel, minlength=k).tolist()
        sels = torch.split(torch.argsort(channel, stable=True), counts)
        for c in range(k):
            if not counts[c]:
                continue
            idx = sels[c]
            p, lg_own = self._momenta(x[idx], c)  # lab momenta
            for c2 in self.blocks[self.slots[c].block]:
                if c2 == c:  # the point's own channel: its coordinates and forward density, exactly
                    x_all[idx, c], log_g[idx, c] = x[idx], lg_own
                    continue
                x2, lg2 = self.slots[c2].channel.inverse(mirror_beams(p) if self.slots[c2].mirror else p)
                ok = torch.isfinite(lg2) & torch.isfinite(x2).all(dim=1)
                x_all[idx, c2] = torch.where(ok[:, None], x2, torch.full_like(x2, 0.5))
                log_g[idx, c2] = torch.where(ok, lg2, torch.full_like(lg2, -math.inf))
        return x_all, log_g

    def samplers(self, n_check: int = 64) -> list[int]:
        """For :class:`madnis_py.nis.Integrator` (``samplers=``): one sampler index per channel, equal for
        channels that are exact images of each other under a permutation σ of identical final-state particles,
        G_c′(x) = σ(G_c(x)) with the same density for every x (checked numerically on ``n_check`` points;
        e.g. the q → q g g channels of e+ e- > u u~ g g that differ by g ↔ g).  Tied channels share one flow
        and VEGAS grid, which then trains on the points of all of them — the NIS counterpart of the
        symmetric-channel folding of multi-channel VEGAS (``fold_symmetric``), with every channel kept.
        Channels of different blocks are never tied."""
        from channels.channel import final_state_permutations

        gen = torch.Generator().manual_seed(20261203)
        x = torch.rand(n_check, self.dims, generator=gen, dtype=torch.float64).to(self.base.device)
        out = [-1] * self.n_channels
        n_s = 0
        for block, ids in enumerate(self.blocks):
            # every term has topologies (checked in __init__); the identity permutation is skipped
            perms = final_state_permutations(self.base.terms[self.block_term[block][0]].me.topologies[0])[1:]
            maps = {c: self.slots[c].channel.forward(x) for c in ids}
            for c in ids:
                if out[c] >= 0:
                    continue
                out[c] = n_s
                p, lq = maps[c]
                for perm in perms:
                    order = [perm.get(i, i) for i in range(p.shape[1])]
                    pp = p[:, order]  # the point with the identical particles relabelled (all σ are tried)
                    for c2 in ids:
                        if out[c2] >= 0:
                            continue
                        p2, lq2 = maps[c2]
                        ok = torch.isfinite(lq) & torch.isfinite(lq2)
                        if (bool(ok.sum() >= n_check // 2) and torch.equal(torch.isfinite(lq), torch.isfinite(lq2))
                                and torch.allclose(p2[ok], pp[ok], rtol=1e-9, atol=1e-9)
                                and torch.allclose(lq2[ok], lq[ok], rtol=1e-9, atol=1e-9)):
                            out[c2] = n_s
                n_s += 1
        return out

    def nis(self, x: Tensor, channel: Tensor) -> tuple[Tensor, Tensor, None]:
        """NIS form: ``(F_b/q_c [n], prior α [n, k] block-diagonal, None)`` for points ``x`` of channels ``channel``.

        Each channel maps its own points; the |M|² (and PDFs, cuts, prior) then run once per block on the points
        of all its channels, not once per channel (a training batch spreads a few hundred points over up to
        ~50 channels)."""
        if any(m != 1 for m in self.multiplicities):
            raise InputError("the NIS form needs channels built with fold_symmetric=False (multiplicity 1)")
        x = x.to(device=self.base.device, dtype=torch.float64)
        channel = channel.to(device=x.device, dtype=torch.long)
        n = x.shape[0]
        w = torch.zeros(n, dtype=torch.float64, device=x.device)
        prior = torch.zeros(n, self.n_channels, dtype=torch.float64, device=x.device)
        # points grouped by channel (original order within a channel): one sort, one host sync
        counts = torch.bincount(channel, minlength=self.n_channels).tolist()
        sels = torch.split(torch.argsort(channel, stable=True), counts)
        for block, ids in enumerate(self.blocks):
            here = [c for c in ids if counts[c]]
            if not here:
                continue
            maps = [self._momenta(x[sels[c]], c) for c in here]
            idx = torch.cat([sels[c] for c in here])
            f, block_prior, _ = self._block_weight(block, torch.cat([m[0] for m in maps]),
                                                   torch.cat([m[1] for m in maps]))
            w[idx] = f
            prior[idx, ids[0]:ids[-1] + 1] = block_prior  # the block's channels are consecutive slots
        return w, prior, None

    def describe(self) -> list[dict[str, Any]]:
        """One line of data per channel (group, orientation, diagrams, multiplicity, topology)."""
        out = []
        for s in self.slots:
            topo = getattr(s.channel, "topology", None)
            out.append({"group": self.base.terms[s.term].group.name, "mirror": s.mirror,
                        "diagrams": list(s.channel.diagrams), "multiplicity": s.multiplicity,
                        "topology": topo.describe() if topo is not None else None})
        return out
