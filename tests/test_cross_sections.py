"""End-to-end cross sections against independent numbers.

The references are closed-form partonic cross sections (written out here, not
taken from the code under test), convolved with the PDFs by deterministic
Gauss–Legendre quadrature in (M or τ, y).  The Monte Carlo result — which goes
through subprocess expansion and grouping, the luminosity and RAMBO mappings,
|M|², cuts and VEGAS — must agree within 4 of its reported standard deviations
(plus the quadrature's own 1e-4 relative accuracy).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from madnis_py.card import parse_card
from madnis_py.run import integrate_card
from matrix_elements.model import SMParameters

GEV2_TO_PB = 0.3893793721e9
SM = SMParameters()


def run(process, beams, sqrt_s, calls=60_000, method="vegas", **extra):
    card = {
        "process": process,
        "collider": {"beams": beams, "sqrt_s": sqrt_s},
        "integrator": {"method": method, "calls": calls},
        "seed": 3,
    }
    card.update(extra)
    return integrate_card(parse_card(card), quiet=True)


def assert_within(result, reference, n_sigma=4.0, rel_ref=1e-4):
    diff = abs(result["cross_section_pb"] - reference)
    tol = n_sigma * result["error_pb"] + rel_ref * abs(reference)
    assert diff < tol, f"σ = {result['cross_section_pb']} ± {result['error_pb']} vs reference {reference} (diff {diff})"
    # the run must also be precise enough for the comparison to mean something
    assert result["error_pb"] < 0.01 * abs(reference)


# ---- closed forms (ESW eq. 1.x for e+e-: Q_f² − 2 Q_f V_e V_f χ1 + ..., i.e. + 2 Q_i Q_f V_i V_f χ1 in general;
#      V_f = T3 − 2 Q sw², A_f = T3, κ = √2 G_F MZ²/(4πα) = 1/(4 sw² cw²) at tree level) ---------------
def sigma_ffbar_gamma_z(s, q_in, t3_in, q_out, t3_out, colour_factor):
    """σ̂(f f̄ → γ*/Z → f' f̄') in pb for massless fermions (spin-averaged, colour factor of the pair)."""
    alpha, sw2, mz, wz = SM.aEW, SM.sw2, SM.MZ, SM.WZ
    kappa = 1.0 / (4 * sw2 * (1 - sw2))
    v_i, a_i = t3_in - 2 * q_in * sw2, t3_in
    v_o, a_o = t3_out - 2 * q_out * sw2, t3_out
    den = (s - mz**2) ** 2 + (wz * mz) ** 2
    chi1 = kappa * s * (s - mz**2) / den
    chi2 = kappa**2 * s**2 / den
    bracket = q_in**2 * q_out**2 + 2 * q_in * q_out * v_i * v_o * chi1 + (a_i**2 + v_i**2) * (a_o**2 + v_o**2) * chi2
    return 4 * math.pi * alpha**2 / (3 * s) * bracket * colour_factor * GEV2_TO_PB


def sigma_qqbar_ttbar(s, m, alpha_s):
    rho = 4 * m * m / s
    beta = np.sqrt(np.clip(1 - rho, 0, None))
    return 8 * np.pi * alpha_s**2 / (27 * s) * beta * (1 + rho / 2) * GEV2_TO_PB


def sigma_gg_ttbar(s, m, alpha_s):
    rho = 4 * m * m / s
    beta = np.sqrt(np.clip(1 - rho, 0, None))
    log = np.log((1 + beta) / np.clip(1 - beta, 1e-300, None))
    return np.pi * alpha_s**2 / (3 * s) * ((1 + rho + rho**2 / 16) * log - beta * (7 / 4 + 31 * rho / 16)) * GEV2_TO_PB


# ---- lepton collider --------------------------------------------------------------------------------
@pytest.mark.parametrize("sqrt_s", [40.0, 91.188, 200.0, 1500.0])
def test_ee_to_mumu_matches_gamma_z_formula(sqrt_s):
    res = run("e+ e- > mu+ mu-", ["e+", "e-"], sqrt_s, calls=20_000)
    ref = sigma_ffbar_gamma_z(sqrt_s**2, -1, -0.5, -1, -0.5, 1.0)
    assert_within(res, ref)
    assert res["n_nonfinite_me"] == 0 and res["cut_efficiency"] == 1.0


def test_ee_to_uubar_has_colour_factor_three():
    res = run("e+ e- > u u~", ["e+", "e-"], 500.0, calls=20_000)
    assert_within(res, sigma_ffbar_gamma_z(500.0**2, -1, -0.5, 2 / 3, 0.5, 3.0))


# ---- partonic σ̂(ŝ) for top pairs through the fixed-energy integrand ------------------------------
@pytest.mark.parametrize("initial, formula", [("g g", sigma_gg_ttbar), ("u u~", sigma_qqbar_ttbar)])
@pytest.mark.parametrize("sqrt_shat", [400.0, 1000.0])
def test_partonic_top_pair(initial, formula, sqrt_shat):
    from madnis_py.integrand import CollisionIntegrand
    from madnis_py.integrate import integrate_vegas
    from matrix_elements.process import check_process, group_subprocesses, parse_process
    from matrix_elements.registry import matrix_element_for

    groups = group_subprocesses(check_process(parse_process(f"{initial} > t t~")))
    mes = [matrix_element_for(g.representative, SM) for g in groups]
    integrand = CollisionIntegrand(groups, mes, {}, (0, 0), sqrt_shat, pdf=None, alpha_s=0.118)
    res = integrate_vegas(lambda u: integrand(u)[:, None], integrand.dims, 20_000, seed=5, quiet=True)
    ref = float(formula(sqrt_shat**2, SM.MT, 0.118))
    assert abs(res.value - ref) < 4 * res.error + 1e-6 * ref
    assert res.error < 0.01 * ref


# ---- hadron collider: PDF convolution by quadrature ----------------------------------------------
def _gauss_legendre(a, b, n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (b - a) * x + 0.5 * (b + a), 0.5 * (b - a) * w


def _luminosity_quadrature(pdf, sqrt_s, m_lo, m_hi, mu_f, pairs, sigma_hat, n_m=600, n_y=96, m_split=None):
    """Σ_pairs ∫ dM (2M/S) ∫ dy f_a(x1) f_b(x2) σ̂(M²) with x1,2 = (M/√S) e^{±y} (both beam orderings in pairs)."""
    S = sqrt_s**2
    edges = [m_lo] + (m_split or []) + [m_hi]
    m_nodes, m_w = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        x, w = _gauss_legendre(a, b, n_m)
        m_nodes.append(x)
        m_w.append(w)
    m, wm = np.concatenate(m_nodes), np.concatenate(m_w)
    tau = m**2 / S
    t, wt = np.polynomial.legendre.leggauss(n_y)
    ymax = -0.5 * np.log(tau)
    y = t[None, :] * ymax[:, None]
    wy = wt[None, :] * ymax[:, None]
    x1 = np.sqrt(tau)[:, None] * np.exp(y)
    x2 = np.sqrt(tau)[:, None] * np.exp(-y)
    q2 = torch.full((x1.size,), mu_f**2, dtype=torch.float64)
    f1 = pdf.xfxQ2_all(torch.from_numpy(x1.ravel()), q2).numpy() / x1.ravel()[:, None]
    f2 = pdf.xfxQ2_all(torch.from_numpy(x2.ravel()), q2).numpy() / x2.ravel()[:, None]
    total = 0.0
    for (a, b), sig in zip(pairs, sigma_hat):
        lum = (f1[:, a + 6] * f2[:, b + 6]).reshape(x1.shape)
        total += np.sum(wm[:, None] * (2 * m / S)[:, None] * wy * lum * sig(m**2)[:, None])
    return total


@pytest.fixture(scope="module")
def nnpdf():
    from madnis_py.pdf import load_pdf

    return load_pdf("NNPDF23_lo_as_0130_qed")


def test_drell_yan_z_window(nnpdf):
    sqrt_s, mu = 13000.0, 91.188
    res = run("p p > e+ e-", ["p", "p"], sqrt_s, calls=100_000, scale=mu, cuts={"mmll": 60, "mmllmax": 120})
    up = lambda s: sigma_ffbar_gamma_z(s, 2 / 3, 0.5, -1, -0.5, 1 / 3)
    down = lambda s: sigma_ffbar_gamma_z(s, -1 / 3, -0.5, -1, -0.5, 1 / 3)
    pairs, sig = [], []
    for q, f in ((2, up), (4, up), (1, down), (3, down)):
        pairs += [(q, -q), (-q, q)]
        sig += [f, f]
    ref = _luminosity_quadrature(nnpdf, sqrt_s, 60.0, 120.0, mu, pairs, sig, m_split=[85.0, 91.188, 97.0])
    assert_within(res, ref)
    names = {s["name"] for s in res["subprocesses"]}
    assert names == {"u u~ > e+ e-", "d d~ > e+ e-"}  # g g has no tree diagram and is dropped


def test_pp_ttbar_fixed_scale(nnpdf):
    sqrt_s, mt = 13000.0, 173.0
    res = run("p p > t t~", ["p", "p"], sqrt_s, calls=100_000, scale=mt, alpha_s=0.118)
    gg = lambda s: sigma_gg_ttbar(s, mt, 0.118)
    qq = lambda s: sigma_qqbar_ttbar(s, mt, 0.118)
    pairs, sig = [(0, 0)], [gg]
    for q in (1, 2, 3, 4):
        pairs += [(q, -q), (-q, q)]
        sig += [qq, qq]
    ref = _luminosity_quadrature(nnpdf, sqrt_s, 2 * mt, sqrt_s, mt, pairs, sig, n_m=400, m_split=[400.0, 800.0, 2000.0])
    assert_within(res, ref)
    by_name = {s["name"]: s for s in res["subprocesses"]}
    assert set(by_name) == {"g g > t t~", "u u~ > t t~", "d d~ > t t~"}
    assert sum(s["cross_section_pb"] for s in res["subprocesses"]) == pytest.approx(res["cross_section_pb"], rel=1e-9)


def test_flat_and_vegas_agree_on_ppbar_ttbar():
    """p p~ beams use the antiproton's charge-conjugated PDFs (Tevatron: q q~ dominates)."""
    vegas_res = run("p p > t t~", ["p", "p~"], 1960.0, calls=60_000, scale=173.0)
    flat_res = run("p p > t t~", ["p", "p~"], 1960.0, calls=60_000, scale=173.0, method="flat")
    diff = abs(vegas_res["cross_section_pb"] - flat_res["cross_section_pb"])
    assert diff < 4 * math.hypot(vegas_res["error_pb"], flat_res["error_pb"])
    by_name = {s["name"]: s["cross_section_pb"] for s in vegas_res["subprocesses"]}
    assert by_name["u u~ > t t~"] > 3 * by_name["g g > t t~"]
