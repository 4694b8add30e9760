"""benchmarks/calibrate_extrapolation.py (a3): the widening that puts a row's coverage inside 80–95% (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from benchmarks.calibrate_extrapolation import admissible


def _coverage(needed: np.ndarray, widening: float) -> float:
    return float(np.mean(needed <= widening))


@pytest.mark.parametrize("seed", range(5))
def test_admissible_range_is_where_coverage_lies_in_the_band(seed: int) -> None:
    needed = np.random.default_rng(seed).lognormal(0.0, 0.6, size=200)
    low, high = admissible(needed)
    assert low < high
    assert 0.80 <= _coverage(needed, low) <= 0.95
    assert 0.80 <= _coverage(needed, np.nextafter(high, 0.0)) <= 0.95
    assert _coverage(needed, np.nextafter(low, 0.0)) < 0.80  # any less widening falls under 80%
    assert _coverage(needed, high) > 0.95  # this much over-covers


def test_admissible_is_empty_for_a_row_that_over_covers_unwidened() -> None:
    needed = np.zeros(200)  # every seed covered with no widening at all
    needed[:5] = 1.0
    low, high = admissible(needed)
    assert not low < high
    assert high == 0.0


def test_admissible_band_edges_count_seeds_exactly() -> None:
    needed = np.arange(1, 201) / 100.0  # seed i is covered from w = i/100 on
    assert admissible(needed) == (1.60, 1.91)  # 160 seeds covered at 1.60; 191 (95.5%) at 1.91
