"""The collider integrand: scales, non-finite |M|² handling, mirror bookkeeping."""
from __future__ import annotations

import math

import pytest
import torch

from madnis_py.integrand import CollisionIntegrand, pdf_index
from madnis_py.integrate import integrate_flat
from madnis_py.scales import scale_values
from matrix_elements.base import MatrixElement
from matrix_elements.process import check_process, group_subprocesses, parse_process

GEV2_TO_PB = 0.3893793721e9


def test_dynamic_scales_on_a_hand_made_event():
    # a top pair at rest in y with pT = 30 and a massless jet with pT = 40
    mt = 173.0
    et = math.sqrt(mt**2 + 30**2)
    p = torch.tensor([[[et, 30.0, 0, 0], [et, -30.0, 0, 0], [40.0, 0, 40.0, 0]]], dtype=torch.float64)
    shat = torch.tensor([1.0e6], dtype=torch.float64)
    assert scale_values("HT", p, shat).item() == pytest.approx(100.0)
    assert scale_values("HT/2", p, shat).item() == pytest.approx(50.0)
    assert scale_values("mT-sum", p, shat).item() == pytest.approx(2 * et + 40.0)
    assert scale_values("mT-sum/2", p, shat).item() == pytest.approx(et + 20.0)
    assert scale_values("sqrt_shat", p, shat).item() == pytest.approx(1000.0)
    assert scale_values(91.188, p, shat).item() == 91.188


def test_pdf_columns_for_proton_and_antiproton():
    assert pdf_index(21, 2212) == 6 and pdf_index(2, 2212) == 8 and pdf_index(-1, 2212) == 5
    assert pdf_index(2, -2212) == 4  # u in p~ = u~ in p


class _FlakyOne(MatrixElement):
    """|M|² = 1 except NaN where the first outgoing particle has pz > 0 (half the phase space)."""

    process = "e+ e- > u u~ g"
    pdgs = (-11, 11, 2, -2, 21)
    masses = (0.0,) * 5
    alpha_s_power = 0
    alpha_s_ref = 0.118

    def evaluate(self, p):
        one = torch.ones(p.shape[0], dtype=p.dtype, device=p.device)
        return torch.where(p[:, 2, 3] > 0, torch.full_like(one, float("nan")), one)


def test_nonfinite_me_is_counted_and_dropped():
    groups = group_subprocesses(check_process(parse_process("e+ e- > u u~ g")))
    integrand = CollisionIntegrand(groups, [_FlakyOne()], {}, (-11, 11), 100.0)
    u = torch.rand(20_000, integrand.dims, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    batch = integrand.events(u)
    assert torch.isfinite(batch.weight).all()
    frac = batch.n_nonfinite / u.shape[0]
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / u.shape[0])
    # what survives is half the flat 3-body volume: (2π)^-5 (π/2)^2 s / 2 ... times flux and conversion
    s = 100.0**2
    volume = (2 * math.pi) ** (4 - 9) * (math.pi / 2) ** 2 * s / 2
    res = integrate_flat(lambda x: integrand(x)[:, None], integrand.dims, 50_000, seed=2, quiet=True)
    expected = 0.5 * volume * GEV2_TO_PB / (2 * s)
    assert abs(res.value - expected) < 4 * res.error


def test_mirror_members_use_swapped_momenta():
    """u~ u > e+ e- must equal u u~ > e+ e- with the beams swapped: an asymmetric |M|² exposes a wrong swap."""

    class Forward(MatrixElement):
        process = "u u~ > e+ e-"
        pdgs = (2, -2, -11, 11)
        masses = (0.0,) * 4
        alpha_s_power = 0
        alpha_s_ref = 0.118

        def evaluate(self, p):  # depends on which incoming leg moves along +z
            return 1.0 + torch.sign(p[:, 0, 3])

    groups = group_subprocesses(check_process(parse_process("u u~ > e+ e-")) + check_process(parse_process("u~ u > e+ e-")))
    assert len(groups) == 1 and groups[0].has_mirror

    class FlatPDF:
        alpha_s = None

        def xfxQ2_all(self, x, q2):
            return x[:, None].expand(-1, 13) * 0 + x[:, None]  # x f(x) = x: f = 1 for every flavour

    class Constant(Forward):
        def evaluate(self, p):
            return torch.ones(p.shape[0], dtype=p.dtype, device=p.device)

    def weights(me):
        integrand = CollisionIntegrand(groups, [me], {"mmll": 50}, (2212, 2212), 1000.0, pdf=FlatPDF(),
                                       alpha_s=0.118, scale=(91.0, 91.0))
        u = torch.rand(1000, integrand.dims, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        return integrand.events(u).weight

    # direct member: 1 + sign(p1z) = 2; mirror member with swapped momenta: 1 + sign(p2z) = 0, so the sum is 2,
    # the same as a constant |M|² = 1 counted for both orderings. Without the swap it would be 4 per point.
    w_forward, w_const = weights(Forward()), weights(Constant())
    assert (w_const > 0).any()
    assert torch.allclose(w_forward, w_const, rtol=1e-14, atol=0)
