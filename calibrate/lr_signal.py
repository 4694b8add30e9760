"""Do the losses depend on the LR at all?  A permutation test over every loss-vs-LR curve of a sweep.

Issue 23: a replay CSV of pure random losses was fitted and installed as a law — every cell has *some* best LR.
Eq.2 (arXiv 2601.05049) says a real curve is a parabola in ln η; on random losses a parabola explains no more of a
curve's variance than it does after the losses are shuffled among that curve's LRs.  The statistic is the mean over
curves of R² (the share of a curve's loss variance a parabola in ln η explains); its null distribution comes from
``PERMUTATIONS`` within-curve shuffles (seeded: the same file gets the same verdict).  A curve needs 4 finite points:
a parabola through 3 explains everything whatever the losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERMUTATIONS = 200
# Refuse only when shuffled losses do as well at least this often: a real sweep, even a noisy one, sits far below
# (the Step Law sweeps: p = 1/201, the smallest this test can give).
MAX_P_VALUE = 0.1
MIN_POINTS = 4


@dataclass(frozen=True)
class SignalTest:
    """Mean R² of a parabola in ln η over ``curves`` curves, and how often shuffled losses reach it."""

    mean_r2: float
    p_value: float
    curves: int

    @property
    def no_signal(self) -> bool:
        return self.p_value > MAX_P_VALUE

    def describe(self) -> str:
        return (
            f"over {self.curves} loss-vs-LR curves a parabola in ln η explains {self.mean_r2:.0%} of the loss "
            f"variance on average, which the same losses shuffled among their LRs reach with p = {self.p_value:.2f}"
        )


def lr_signal(curves: list[list[tuple[float, float | None]]], seed: int = 0) -> SignalTest | None:
    """The test over ``curves`` (each a list of (LR, loss), None or non-finite where a run diverged); None when no
    curve has ``MIN_POINTS`` finite points (nothing to test)."""
    rng = np.random.default_rng(seed)
    observed, shuffled = [], []
    for curve in curves:
        points = [(lr, loss) for lr, loss in curve if loss is not None and math.isfinite(loss) and lr > 0]
        if len(points) < MIN_POINTS:
            continue
        x = np.log([lr for lr, _ in points])
        y = np.array([loss for _, loss in points])
        y = y - y.mean()
        total = float(y @ y)
        if total <= 0:  # a flat curve: no variance for the LR to explain
            observed.append(0.0)
            shuffled.append(np.zeros(PERMUTATIONS))
            continue
        x = x - x.mean()
        design = np.column_stack([x, x * x - (x * x).mean()])
        hat = design @ np.linalg.pinv(design)  # projection onto the centred parabola's span
        observed.append(float(y @ hat @ y) / total)
        perms = rng.permuted(np.tile(y, (PERMUTATIONS, 1)), axis=1)
        shuffled.append(np.einsum("ij,jk,ik->i", perms, hat, perms) / total)
    if not observed:
        return None
    mean_r2 = float(np.mean(observed))
    null = np.mean(np.vstack(shuffled), axis=0)
    p_value = (1 + int(np.sum(null >= mean_r2 - 1e-12))) / (1 + PERMUTATIONS)
    return SignalTest(mean_r2, p_value, len(observed))
