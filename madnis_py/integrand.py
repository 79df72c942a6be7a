"""The collider integrand: unit hypercube -> event weight in pb.

    σ = Σ_groups ∫ dx1 dx2 Σ_members f_a(x1, μF) f_b(x2, μF) · |M|²(p; α_s(μR)) / (2ŝ) dΦ_n
      = ∫_{[0,1]^d} w(u) du,

with ``w = (PDFs · |M|² / 2ŝ) · Θ_cuts · 0.3893793721e9 pb GeV² / (q_lumi(x1, x2) · q_Φ(p))``.
The first two random numbers pick (τ, y) -> (x1, x2) (hadron beams only), the
rest the partonic final state in the CM frame, which is then boosted to the lab.
Subprocesses that share |M|² (see :func:`matrix_elements.process.group_subprocesses`)
share one evaluation; mirror members reuse it with the incoming momenta swapped.
Non-finite |M|² are set to zero, counted, and reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from channels.luminosity import Collision, Luminosity
from channels.rambo import Rambo
from matrix_elements.base import MatrixElement
from matrix_elements.process import SubprocessGroup

from .cuts import Cuts
from .errors import PhysicsError
from .scales import scale_values

GEV2_TO_PB = 0.3893793721e9


@dataclass
class GroupTerm:
    """One subprocess group with its |M|², cuts and PDF flavour indices of its members."""

    group: SubprocessGroup
    me: MatrixElement
    cuts: Cuts
    direct: list[tuple[int, int]]
    mirror: list[tuple[int, int]]


@dataclass
class WeightedBatch:
    """Weighted events of one batch (the seam for event output): lab-frame momenta and weights in pb."""

    momenta: Tensor  # [n, n_ext, 4]
    weight: Tensor  # [n], Σ over groups
    group_weights: Tensor  # [n, n_groups]
    x1: Tensor
    x2: Tensor
    mu_r: Tensor
    mu_f: Tensor
    alpha_s: Tensor
    n_nonfinite: int = 0
    n_passed: int = 0


@dataclass
class Kinematics:
    """Per-point quantities shared by all groups (from :meth:`CollisionIntegrand.kinematics`).

    ``flux_jac`` = GeV²→pb / (2ŝ) · 1/q (0 where not finite); ``a_s`` is None when |M|² keeps its
    reference α_s; ``f1``/``f2`` are f(x)/… PDF columns ``[n, 13]`` (None for lepton beams).
    """

    p: Tensor
    x1: Tensor
    x2: Tensor
    shat: Tensor
    mu_r: Tensor
    mu_f: Tensor
    a_s: Tensor | None
    alpha_s_out: Tensor
    f1: Tensor | None
    f2: Tensor | None
    flux_jac: Tensor
    valid: Tensor


def pdf_index(pdg: int, beam_pdg: int) -> int:
    """Column of ``xfxQ2_all`` ([-6..6], gluon at 6) for parton ``pdg`` in beam ``beam_pdg`` (p~ = conjugated)."""
    f = 0 if pdg == 21 else pdg
    if beam_pdg < 0:
        f = -f
    return f + 6


class CollisionIntegrand:
    """Batched integrand for one phase-space class (groups with the same external masses)."""

    def __init__(
        self,
        groups: list[SubprocessGroup],
        mes: list[MatrixElement],
        cut_values: dict[str, float],
        beam_pdgs: tuple[int, int],
        sqrt_s: float,
        pdf=None,
        alpha_s=None,
        scale=("mT-sum/2", "mT-sum/2"),
        device: torch.device | str = "cpu",
    ):
        self.sqrt_s = float(sqrt_s)
        self.hadronic = pdf is not None
        self.pdf = pdf
        self.alpha_s = alpha_s
        self.mu_r_choice, self.mu_f_choice = scale
        self.device = torch.device(device)
        self.terms: list[GroupTerm] = []
        for g, me in zip(groups, mes):
            direct, mirror = [], []
            for m in g.members:
                a, b = m.subprocess.incoming
                idx = (pdf_index(a, beam_pdgs[0]), pdf_index(b, beam_pdgs[1]))
                (mirror if m.mirror else direct).append(idx)
            self.terms.append(GroupTerm(g, me, Cuts(cut_values, g.representative.outgoing), direct, mirror))
        #: (id(term), mirror) -> PDF columns (beam 1, beam 2) of the members, built once (not per batch)
        self._flavour_columns: dict[tuple[int, bool], tuple[Tensor, Tensor]] = {
            (id(t), swap): (torch.tensor([m[0] for m in members], device=self.device),
                            torch.tensor([m[1] for m in members], device=self.device))
            for t in self.terms for members, swap in ((t.direct, False), (t.mirror, True)) if members
        }
        masses = mes[0].masses
        for me in mes[1:]:
            if tuple(me.masses) != tuple(masses):
                raise ValueError("all groups of one integrand must share external masses")
        self.masses_out = tuple(masses[2:])
        self.n_out = len(self.masses_out)
        # the phase space is shared by all groups: the lowest of their bounds on √ŝ
        min_mass = min(t.cuts.min_partonic_mass(self.masses_out) for t in self.terms)
        if self.n_out < 2:
            raise PhysicsError("2 -> 1 processes are not supported (the resonance would need a narrow-width delta)")
        luminosity = None
        if self.hadronic:
            if min_mass <= 0:
                raise PhysicsError(
                    "the final state is massless and no cut bounds the partonic energy from below, so the cross "
                    "section diverges: add cuts (e.g. ptj, ptl, mmll)"
                )
            tau_min = (min_mass / self.sqrt_s) ** 2 * (1 + 1e-12)
            if tau_min >= 1:
                raise PhysicsError(
                    f"sqrt_s = {self.sqrt_s:g} GeV is below the minimum partonic energy {min_mass:g} GeV "
                    "(masses and cuts)"
                )
            luminosity = Luminosity(self.sqrt_s, tau_min)
        self.phase_space = Collision(Rambo(self.n_out, list(self.masses_out)), self.sqrt_s, luminosity)
        self.dims = self.phase_space.dims_in

    @property
    def n_groups(self) -> int:
        return len(self.terms)

    def kinematics(self, p: Tensor, log_q: Tensor) -> Kinematics:
        """Everything per point that all groups share: x1, x2, ŝ, scales, α_s, PDFs, flux × 1/q."""
        n = p.shape[0]
        x1 = p[:, 0, 0] * (2.0 / self.sqrt_s)
        x2 = p[:, 1, 0] * (2.0 / self.sqrt_s)
        shat = x1 * x2 * self.sqrt_s**2
        valid = torch.isfinite(log_q) & torch.isfinite(p).all(dim=2).all(dim=1)
        p_out = p[:, 2:]
        mu_r = scale_values(self.mu_r_choice, p_out, shat)
        mu_f = scale_values(self.mu_f_choice, p_out, shat)
        if self.alpha_s is None:
            a_s = None
            a_s_out = torch.full((n,), float("nan"), dtype=torch.float64, device=p.device)
        elif isinstance(self.alpha_s, (int, float)):
            a_s = torch.full((n,), float(self.alpha_s), dtype=torch.float64, device=p.device)
            a_s_out = a_s
        else:
            a_s = self.alpha_s(mu_r**2)
            a_s_out = a_s
        f1 = f2 = None
        if self.hadronic:
            f1 = self.pdf.xfxQ2_all(x1, mu_f**2) / x1[:, None]
            f2 = self.pdf.xfxQ2_all(x2, mu_f**2) / x2[:, None]
        flux_jac = GEV2_TO_PB / (2 * shat) * torch.exp(-log_q)
        flux_jac = torch.where(torch.isfinite(flux_jac), flux_jac, torch.zeros_like(flux_jac))
        return Kinematics(p, x1, x2, shat, mu_r, mu_f, a_s, a_s_out, f1, f2, flux_jac, valid)

    def term_weight(self, term: GroupTerm, kin: Kinematics, keep: Tensor, mirror: bool | None = None,
                    amplitudes: bool = False) -> tuple[Tensor, Tensor | None, int]:
        """Σ_members PDFs × |M|² of one group at the points ``keep`` (bool ``[n]``), without flux and 1/q.

        ``mirror``: only the direct (False) or mirror (True) members, or both (None).  With
        ``amplitudes`` (one orientation only) also the per-diagram |A_d|² ``[n_keep, n_diagrams]`` of
        the |M|² evaluation (momenta in the ME's leg order).  Returns (weight, amp2, n_nonfinite).
        """
        pk = kin.p[keep]
        nk = pk.shape[0]
        dev = pk.device
        w = torch.zeros(nk, dtype=torch.float64, device=dev)
        amp2 = None
        n_nonfinite = 0
        a_k = None if kin.a_s is None else kin.a_s[keep]
        f1k = f2k = None
        if self.hadronic:  # PDF rows of the kept points, gathered once for both orientations
            f1k, f2k = kin.f1[keep], kin.f2[keep]
        for members, swap in ((term.direct, False), (term.mirror, True)):
            if not members or (mirror is not None and swap != mirror):
                continue
            if self.hadronic:
                i1, i2 = self._flavour_columns[(id(term), swap)]
                lumi = (f1k[:, i1.to(dev)] * f2k[:, i2.to(dev)]).sum(dim=1)
            else:
                lumi = torch.ones(nk, dtype=torch.float64, device=dev)
            pin = pk[:, [1, 0] + list(range(2, pk.shape[1]))] if swap else pk
            if amplitudes:
                me, amp2 = term.me.evaluate_with_amplitudes2(pin, a_k)
            else:
                me = term.me(pin, a_k)
            bad = ~torch.isfinite(me)
            n_bad = int(bad.sum())  # one host sync per orientation
            if n_bad:
                n_nonfinite += n_bad
                me = torch.where(bad, torch.zeros_like(me), me)
                if amp2 is not None:
                    amp2 = torch.where(bad[:, None], torch.zeros_like(amp2), amp2)
            w = w + lumi * me
        return w, amp2, n_nonfinite

    def events(self, u: Tensor) -> WeightedBatch:
        """Weights (pb) and lab-frame events for points ``u [n, dims]`` in the unit hypercube."""
        u = u.to(device=self.device, dtype=torch.float64)
        n = u.shape[0]
        p, log_q = self.phase_space.forward(u)
        kin = self.kinematics(p, log_q)
        p_out = p[:, 2:]
        group_w = torch.zeros(n, self.n_groups, dtype=torch.float64, device=u.device)
        n_nonfinite = 0
        any_pass = torch.zeros(n, dtype=torch.bool, device=u.device)
        for gi, term in enumerate(self.terms):
            keep = kin.valid & term.cuts.passes(p_out)
            any_pass |= keep
            if not bool(keep.any()):
                continue
            w, _, bad = self.term_weight(term, kin, keep)
            n_nonfinite += bad
            group_w[keep, gi] = w * kin.flux_jac[keep]
        return WeightedBatch(
            momenta=p,
            weight=group_w.sum(dim=1),
            group_weights=group_w,
            x1=kin.x1,
            x2=kin.x2,
            mu_r=kin.mu_r,
            mu_f=kin.mu_f,
            alpha_s=kin.alpha_s_out,
            n_nonfinite=n_nonfinite,
            n_passed=int(any_pass.sum()),
        )

    def __call__(self, u: Tensor) -> Tensor:
        return self.events(u).weight
