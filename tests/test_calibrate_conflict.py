"""Issue 20: prior–data conflict, correlated exponent priors and censored cells in the anchored fit."""

import dataclasses
import math
import random

import numpy as np
import pytest
import tomli_w
import tomllib

pytest.importorskip("scipy")

from lrpredict.calibrate.censored import Bound, solve_posterior
from lrpredict.calibrate.fit import Observation, Optimum, fit_anchored, fit_calibration
from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated
from lrpredict.calibrate.prior import prior_from_law, resolve_prior
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.registry import load_law, parse_law
from lrpredict.suggest import suggest

STEPLAW = load_law("steplaw-2025")
PRIOR = resolve_prior("default")
# the prior as it was before issue 20: independent ±0.1 on α and β
INDEPENDENT = dataclasses.replace(PRIOR, sd_alpha=0.1, sd_beta=0.1, corr_alpha_beta=0.0)
SIZES = (2e7, 4e7, 8e7)
HORIZONS = (10.0, 20.0, 40.0)
CENTRE = (math.log(4e7), math.log(4e7) + math.log(20.0))  # the probes' centre (ln N̄, ln D̄)


def truth_law(alpha: float, beta: float, shift: float = math.log(3.0)):
    """A stack equal to Step Law ×3 at the probes' centre, with exponents (alpha, beta) pivoted there."""

    def truth(n: float, d: float) -> float:
        x, z = math.log(n) - CENTRE[0], math.log(d) - CENTRE[1]
        return PRIOR.ln_value(n, d) + shift + (alpha - PRIOR.alpha) * x + (beta - PRIOR.beta) * z

    return truth


def probes(truth, sizes=SIZES, horizons=HORIZONS, noise=0.002, seed=0, lrs=7, off=0.0) -> list[Observation]:
    """``lrs`` LRs ×2 apart around each cell's optimum, the grid's centre ``off`` from it in ln η."""
    rng = random.Random(seed)
    out = []
    for n in sizes:
        for tpp in horizons:
            d = tpp * n
            mu = truth(n, d)
            for k in range(lrs):
                x = mu + off + (k - lrs // 2 + 0.3) * math.log(2.0)
                loss = 3.0 * (1 + 0.0099 * (x - mu) ** 2) + rng.gauss(0.0, noise)
                out.append(Observation(n, d, math.exp(x), loss, STEPLAW.batch.evaluate({"D": d})))
    return out


DEEPSEEK = truth_law(-0.125, -0.125)  # DeepSeek's C exponent read per N and D


def test_conflict_detected_and_prior_widened_on_a_deepseek_like_truth() -> None:
    fit = fit_calibration(probes(DEEPSEEK), prior=INDEPENDENT, bootstrap=0)
    conflict = fit.lr_law.posterior.conflict
    assert conflict.flagged and conflict.p_value < 0.01 and conflict.dof == 2
    assert conflict.prior_scale > 4  # the prior's exponent covariance widened so the probes move the exponents
    assert "your stack's exponents differ from steplaw-2025's by Δα = +" in conflict.message
    assert any("prior–data conflict" in w for w in fit.warnings)
    # the widened prior lets the data through: near the free fit at 100× the largest probe (issue 20 measured 0.84
    # in ln η for the old fit on this truth, 0.06 for the free one)
    n, d = 8e9, 1.6e11
    free = fit_calibration(probes(DEEPSEEK), prior=None, bootstrap=0).lr_law
    anchored_error = abs(math.log(fit.lr_law.lr(n, d)) - DEEPSEEK(n, d))
    assert anchored_error < max(1.5 * abs(math.log(free.lr(n, d)) - DEEPSEEK(n, d)), 0.1)
    assert fit.lr_law.alpha > -0.4  # moved most of the way from −0.713 to −0.125


def test_no_conflict_when_the_probes_agree_with_the_prior() -> None:
    fit = fit_calibration(probes(truth_law(PRIOR.alpha, PRIOR.beta)), bootstrap=0)
    conflict = fit.lr_law.posterior.conflict
    assert not conflict.flagged and conflict.message == ""
    assert conflict.prior_scale == 1.0 and conflict.scatter == 1.0
    assert not any("conflict" in w for w in fit.warnings)


def test_scatter_comes_from_a_data_only_fit_not_the_prior_pulled_one() -> None:
    # a clean power law far from the prior: the old Birge ratio (posterior residuals) rose to ×7; the data-only
    # residuals are noise, so no scale-up of the rows
    law = fit_calibration(probes(DEEPSEEK), prior=INDEPENDENT, bootstrap=0).lr_law
    assert law.posterior.conflict.scatter < 1.5
    assert law.posterior.misfit_sd == pytest.approx(0.08 * math.sqrt(law.posterior.conflict.scatter))


def test_conflict_is_recorded_in_the_law_file_and_shown_by_suggest(tmp_path) -> None:
    fit = fit_calibration(probes(DEEPSEEK), prior=INDEPENDENT, bootstrap=0)
    text = calibrated_law(
        fit, name="conflicted", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={"b": "t"}
    )
    assert "[posterior.conflict]" in text and "prior_scale" in text
    law = install_calibrated(text, "conflicted")
    assert law.posterior.conflict.flagged and law.posterior.conflict.chi2 > 9.21  # χ²(2) 99%
    s = suggest(ModelConfig(params=4e8, tokens=8e9), law)
    assert any("conflicted: prior–data conflict: your stack's exponents differ" in w for w in s.warnings)


def test_correlated_prior_moves_alpha_against_a_measured_beta() -> None:
    # one size: only β is measured; it comes out 0.2 above Step Law's.  With α+β tight (α−β loose) the posterior
    # moves α down by about as much; an independent prior leaves α at the prior's value
    truth = truth_law(PRIOR.alpha, PRIOR.beta + 0.2)
    correlated = fit_calibration(probes(truth, sizes=(4e7,)), bootstrap=0).lr_law
    independent = fit_calibration(probes(truth, sizes=(4e7,)), prior=INDEPENDENT, bootstrap=0).lr_law
    assert independent.alpha == pytest.approx(PRIOR.alpha, abs=1e-9)
    assert correlated.beta > PRIOR.beta + 0.1
    assert correlated.alpha < PRIOR.alpha - 0.1
    cov = correlated.posterior.prior_covariance_exponents
    assert cov[0][1] < 0 and cov[0][1] == pytest.approx(PRIOR.cov_alpha_beta)


def test_correlated_prior_reads_sum_and_difference_widths() -> None:
    prior = prior_from_law(STEPLAW)
    var_sum = prior.sd_alpha**2 + prior.sd_beta**2 + 2 * prior.cov_alpha_beta
    var_diff = prior.sd_alpha**2 + prior.sd_beta**2 - 2 * prior.cov_alpha_beta
    assert math.sqrt(var_sum) == pytest.approx(STEPLAW.lr.prior_sd_sum)
    assert math.sqrt(var_diff) == pytest.approx(STEPLAW.lr.prior_sd_difference)
    assert "correlated prior" in prior.note


OLD_STEPLAW = """
schema_version = 1
id = "old-steplaw"
title = "t"
citation = "c"
architectures = ["dense"]
batch_policy = "optimal"
[domain]
N = [2.1e8, 1.1e9]
D = [4e9, 1e11]
[conventions]
n = "total"
[schedule]
kind = "unknown"
description = "d"
[lr]
form = "power_law"
coefficient = { value = 1.79, status = "confirmed" }
exponents.N = { value = -0.713, status = "confirmed", prior_sd = 0.1 }
exponents.D = { value = 0.307, status = "confirmed", prior_sd = 0.1 }
"""


def test_old_law_files_without_a_covariance_still_load(tmp_path) -> None:
    path = tmp_path / "old.toml"
    path.write_text(
        OLD_STEPLAW + '[batch]\nform = "power_law"\ncoefficient = { value = 0.58, status = "confirmed" }\n'
        'exponents.D = { value = 0.571, status = "confirmed", prior_sd = 0.1 }\n'
    )
    prior = resolve_prior(str(path))
    assert (prior.sd_alpha, prior.sd_beta, prior.cov_alpha_beta) == (0.1, 0.1, 0.0)
    fit = fit_calibration(probes(truth_law(PRIOR.alpha, PRIOR.beta)), prior=prior, bootstrap=0)
    assert fit.lr_law is not None and fit.lr_law.posterior.prior_covariance_exponents[0][1] == 0.0


def test_old_calibrated_posterior_without_the_new_fields_still_loads() -> None:
    fit = fit_calibration(probes(truth_law(PRIOR.alpha, PRIOR.beta), sizes=(4e7,)), bootstrap=0)
    text = calibrated_law(
        fit, name="old-post", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={}
    )
    data = tomllib.loads(text)
    for key in ("conflict", "censored_cells", "prior_covariance_exponents"):
        del data["posterior"][key]
    law = parse_law(tomli_w.dumps(data), "old-post.toml")
    assert law.posterior.conflict is None and law.posterior.censored_cells is None
    assert math.isfinite(suggest(ModelConfig(params=4e8, tokens=8e9), law).lr)


def test_half_a_correlated_prior_is_refused() -> None:
    text = OLD_STEPLAW + "prior_sd_sum = 0.1\n"
    with pytest.raises(LrpredictError, match="prior_sd_sum and prior_sd_difference come together"):
        parse_law(text, "half.toml")


def test_censored_cells_enter_as_bounds_and_the_posterior_respects_them() -> None:
    # every cell's grid sits far below the optimum (×12–20): only "the optimum is above here" is known
    truth = truth_law(PRIOR.alpha, PRIOR.beta, shift=math.log(16.0))
    obs = probes(truth, lrs=5, off=-3.0)  # 5 LRs from ×65 to ×4 below each optimum
    fit = fit_calibration(obs, bootstrap=0)
    assert all(o.bound == "high" for o in fit.optima) and len(fit.optima) == 9
    post = fit.lr_law.posterior
    assert post.censored_cells == 9 and post.unbracketed_cells == 9
    assert any(w.startswith("9 of 9 (N, D) cells censored") for w in fit.warnings)
    for o in fit.optima:  # the posterior mean lies past every bound; the prior lies below it
        assert math.log(fit.lr_law.lr(o.n, o.tokens)) > o.ln_y
        assert PRIOR.ln_value(o.n, o.tokens) < o.ln_y


def test_censored_solve_is_the_closed_form_without_bounds_and_moves_only_when_binding() -> None:
    design = np.array([[1.0, 0.0, -0.5], [1.0, 0.0, 0.5]])
    y, var = np.array([0.0, 0.3]), np.array([0.01, 0.01])
    m0, cov0 = np.zeros(3), np.diag([4.0, 0.01, 0.01])
    mean, cov = solve_posterior(design, y, var, m0, cov0, [])
    precision = np.linalg.inv(cov0) + design.T @ design / 0.01
    assert np.allclose(cov, np.linalg.inv(precision))
    assert np.allclose(mean, np.linalg.solve(precision, design.T @ y / 0.01))
    loose = solve_posterior(design, y, var, m0, cov0, [Bound(np.array([1.0, 0, 0]), -3.0, 1.0, 0.1)])[0]
    assert np.allclose(loose, mean, atol=1e-6)  # a bound far below the fit says nothing new
    tight = solve_posterior(design, y, var, m0, cov0, [Bound(np.array([1.0, 0, 0]), 1.0, 1.0, 0.05)])
    assert tight[0][0] > mean[0] + 0.3 and tight[1][0, 0] < cov[0, 0]  # pushed towards it, and more certain


def test_fit_anchored_unchanged_rows_without_bounds_or_conflict() -> None:
    rows = [Optimum(1e8, 2e9, -7.0, 0.01), Optimum(1e8, 2e9, -5.0, 1.0)]
    fit = fit_anchored(rows, PRIOR, misfit_sd=0.0)
    assert math.log(fit.lr(1e8, 2e9)) == pytest.approx(-7.0, abs=0.05)
    assert fit.posterior.censored_cells == 0
