import math
import random

import pytest

pytest.importorskip("scipy")

from lrpredict.calibrate.fit import Observation, fit_calibration, fit_horizon, fit_parabola, fit_power


def synthetic_loss(n: float, tokens: float, lr: float) -> float:
    """A known world: optimum η* = 3·N^-0.5·D^-0.1, curvature 0.02, L(D) = 2 + 50·D^-0.3 at the optimum."""
    optimum = 3.0 * n**-0.5 * tokens**-0.1
    return 2.0 + 50.0 * tokens**-0.3 + 0.02 * math.log(lr / optimum) ** 2


def grid(sizes, horizons, lrs_per_size=7, noise=0.0, seed=0) -> list[Observation]:
    rng = random.Random(seed)
    out = []
    for n in sizes:
        centre = 3.0 * n**-0.5 * 1e9**-0.1
        for k in range(lrs_per_size):
            lr = centre * 2 ** (k - lrs_per_size // 2)
            for d in horizons:
                loss = synthetic_loss(n, d, lr) * (1 + rng.gauss(0, noise))
                out.append(Observation(n, d, lr, loss, 2**20))
    return out


def test_fit_parabola_finds_the_vertex() -> None:
    lrs = [1e-4 * 2**k for k in range(7)]
    fit = fit_parabola(lrs, [1 + 0.05 * math.log(lr / 7e-4) ** 2 for lr in lrs])
    assert fit.bracketed and fit.lr_opt == pytest.approx(7e-4, rel=1e-6)
    assert fit.curvature == pytest.approx(0.05, rel=1e-6)
    low, high = fit.band(0.01)
    assert math.log(high / fit.lr_opt) == pytest.approx(math.sqrt(0.01 / 0.05), rel=1e-6)
    assert low < fit.lr_opt < high


def test_fit_parabola_flags_edge_and_drops_diverged() -> None:
    lrs = [1e-4 * 2**k for k in range(5)]
    falling = fit_parabola(lrs, [5.0, 4.0, 3.0, 2.5, 2.2])
    assert not falling.bracketed and falling.lr_opt == pytest.approx(lrs[-1])
    with_nan = fit_parabola(lrs, [1.2, 1.05, 1.0, None, float("nan")])
    assert with_nan.n_points == 3
    assert fit_parabola(lrs[:2], [1.0, 1.1]) is None


def test_fit_horizon_recovers_power_law() -> None:
    tokens = [1e8, 2e8, 4e8, 8e8, 1.6e9]
    fit = fit_horizon(tokens, [2.0 + 50.0 * d**-0.3 for d in tokens])
    assert fit.gamma == pytest.approx(0.3, rel=1e-3) and fit.l0 == pytest.approx(2.0, rel=1e-3)
    assert fit.loss(1e10) == pytest.approx(2.0 + 50.0 * 1e10**-0.3, rel=1e-4)
    assert fit_horizon(tokens[:2], [2.1, 2.0]) is None


def test_fit_power_recovers_exponents_with_intervals() -> None:
    rows = [(n, d, 3.0 * n**-0.5 * d**-0.1) for n in (1e6, 4e6, 1.6e7) for d in (1e8, 4e8)]
    fit = fit_power(rows, bootstrap=200)
    assert (fit.alpha, fit.beta) == (pytest.approx(-0.5), pytest.approx(-0.1))
    assert fit.c == pytest.approx(3.0, rel=1e-6) and fit.unstable() == []


def test_fit_calibration_recovers_known_law() -> None:
    fit = fit_calibration(grid([1e6, 4e6, 1.6e7], [2e8, 4e8, 8e8]), bootstrap=200, prior=None)
    assert fit.lr_law.alpha == pytest.approx(-0.5, abs=0.02)
    assert fit.lr_law.beta == pytest.approx(-0.1, abs=0.02)
    assert not [w for w in fit.warnings if "unbracketed" in w]


def test_fit_calibration_extrapolates_horizons_with_eq4() -> None:
    fit = fit_calibration(grid([1e6, 4e6], [1e8, 2e8, 4e8]), extrapolate_to=[3.2e9], bootstrap=50)
    extrapolated = [c for c in fit.cells if c.extrapolated]
    assert {c.tokens for c in extrapolated} == {3.2e9}
    best = min(extrapolated, key=lambda c: c.n).fit
    assert best.bracketed


def test_fit_calibration_warns_when_under_determined() -> None:
    one_size = fit_calibration(grid([1e6], [2e8, 4e8]), bootstrap=50, prior=None)
    assert any("one model size only" in w for w in one_size.warnings)
    edge = fit_calibration(grid([1e6, 4e6], [2e8], lrs_per_size=3) + grid([1e7], [2e8], lrs_per_size=2), bootstrap=50)
    assert any("too few points" in w for w in edge.warnings)


def test_fit_calibration_noisy_exponents_stay_close() -> None:
    fit = fit_calibration(grid([1e6, 2e6, 4e6, 8e6], [2e8, 4e8, 8e8], noise=0.0005, seed=1), bootstrap=200, prior=None)
    assert fit.lr_law.alpha == pytest.approx(-0.5, abs=0.1)
    low, high = fit.lr_law.intervals["alpha"]
    assert low < fit.lr_law.alpha < high
