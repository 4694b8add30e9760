"""Issue 20, third session: Eq.2's lack of fit (an asymmetric loss basin) as a vertex error the cells share."""

import math
import random

import numpy as np
import pytest

pytest.importorskip("scipy")

from lrpredict.calibrate.fit import Observation, Optimum, fit_anchored, fit_calibration, fit_parabola
from lrpredict.calibrate.lack_of_fit import REPORT_SD, shared_vertex_sd
from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated
from lrpredict.calibrate.prior import resolve_prior

PRIOR = resolve_prior("default")
MU = math.log(3e-3)  # the true optimum of the single-curve tests
GRID = [MU + 0.3 + (k - 3) * math.log(2.0) for k in range(7)]  # ×2 apart, the optimum off the grid centre


def basin(x: float, mu: float, skew: float) -> float:
    """A loss basin whose curvature is (1 + skew)× above the optimum and (1 − skew)× below."""
    k = 0.0099 * (1 + skew if x > mu else 1 - skew)
    return 2.5 * (1 + k * (x - mu) ** 2)


def test_cubic_shift_is_zero_on_a_parabola() -> None:
    fit = fit_parabola([math.exp(x) for x in GRID], [basin(x, MU, 0.0) for x in GRID])
    assert fit is not None and fit.bracketed
    assert fit.log_lr_opt == pytest.approx(MU, abs=1e-6)
    assert fit.cubic_shift == pytest.approx(0.0, abs=1e-6)


def test_cubic_shift_points_from_the_vertex_toward_the_steeper_side_of_an_asymmetric_basin() -> None:
    fit = fit_parabola([math.exp(x) for x in GRID], [basin(x, MU, 0.5) for x in GRID])
    assert fit is not None and fit.bracketed
    assert fit.log_lr_opt < MU - 0.1  # the quadratic's vertex leans to the flatter (low-LR) side
    assert fit.cubic_shift is not None and fit.cubic_shift > 0.05  # the cubic moves it back toward the truth
    assert abs(fit.log_lr_opt + fit.cubic_shift - MU) < abs(fit.log_lr_opt - MU)


def test_shared_vertex_sd_is_zero_for_shifts_that_are_noise_and_the_mean_for_shifts_of_one_sign() -> None:
    assert shared_vertex_sd([0.1, -0.1, 0.05, -0.05, None]) == 0.0
    same = [0.15, 0.14, 0.16]
    expected = math.sqrt(0.15**2 - float(np.var(same, ddof=1)) / 3)
    assert shared_vertex_sd(same) == pytest.approx(expected) and 0.149 < expected < 0.15
    assert shared_vertex_sd([None, 0.2]) == 0.0  # one measured shift is not a shared error


def test_fit_anchored_vertex_sd_widens_every_prediction_by_its_variance_and_moves_no_estimate() -> None:
    rows = [Optimum(n, d, PRIOR.ln_value(n, d) + 1.0, 0.05) for n in (2e7, 4e7, 8e7) for d in (20 * n, 40 * n)]
    plain, shared = fit_anchored(rows, PRIOR), fit_anchored(rows, PRIOR, vertex_sd=0.2)
    assert shared.lr(8e9, 1.6e11) == pytest.approx(plain.lr(8e9, 1.6e11), rel=1e-12)
    assert (shared.alpha, shared.beta) == pytest.approx((plain.alpha, plain.beta), rel=1e-12)
    for n, d in ((4e7, 8e8), (8e9, 1.6e11)):  # at the probes and 100× past them: the same added variance
        assert shared.ln_sd(n, d) ** 2 - plain.ln_sd(n, d) ** 2 == pytest.approx(0.04, rel=1e-9)
    assert shared.posterior.shared_vertex_sd == 0.2 and plain.posterior.shared_vertex_sd is None


def probes(skew: float, seed: int = 0) -> list[Observation]:
    """3 sizes × 3 horizons × 7 LRs ×2 apart around Step Law ×3, the loss basin skewed by ``skew``, noise 0.002."""
    rng = random.Random(seed)
    out = []
    for n in (2e7, 4e7, 8e7):
        for d in (10 * n, 20 * n, 40 * n):
            mu = PRIOR.ln_value(n, d) + math.log(3.0)
            for k in range(7):
                x = PRIOR.ln_value(n, d) + (k - 2) * math.log(2.0)
                out.append(Observation(n, d, math.exp(x), basin(x, mu, skew) + rng.gauss(0, 0.002), 1e6))
    return out


def test_fit_calibration_asymmetric_basins_widen_the_interval_and_say_so() -> None:
    symmetric = fit_calibration(probes(0.0), bootstrap=0)
    skewed = fit_calibration(probes(0.5), bootstrap=0)
    shared = skewed.lr_law.posterior.shared_vertex_sd
    assert shared is not None and shared >= REPORT_SD
    assert any("not parabolas about their optima" in w for w in skewed.warnings)
    assert (symmetric.lr_law.posterior.shared_vertex_sd or 0.0) < REPORT_SD / 2  # noise alone: small, unreported
    assert not any("not parabolas" in w for w in symmetric.warnings)
    # the skewed fit's offset variance carries shared² on top of what its rows give
    assert skewed.lr_law.ln_sd(8e9, 1.6e11) ** 2 > symmetric.lr_law.ln_sd(8e9, 1.6e11) ** 2 + 0.9 * shared**2


def test_law_file_keeps_the_shared_vertex_sd() -> None:
    fit = fit_calibration(probes(0.5), bootstrap=0)
    text = calibrated_law(
        fit, name="skewed-basin", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={}
    )
    law = install_calibrated(text, "skewed-basin")
    assert law.posterior.shared_vertex_sd == pytest.approx(fit.lr_law.posterior.shared_vertex_sd)
    assert law.posterior.ln_sd(8e9, 1.6e11) == pytest.approx(fit.lr_law.ln_sd(8e9, 1.6e11), rel=1e-9)
