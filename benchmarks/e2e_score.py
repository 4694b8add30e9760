"""Scoring for the end-to-end benchmark: the target's measured optimum and how far each prediction lands from it.

The target's optimum is Eq.2 of arXiv 2601.05049 (loss = L_min + C·(ln η − ln η*)²) fitted by calibrate's own
``fit_parabola`` (the 5 measured LRs around the best one: far-off LRs bend the parabola, docs/log.md 2026-11-24).
A prediction η̂ is scored by

* |ln η̂ − ln η*| (ln-LR error; 0.69 is a factor 2);
* the loss regret from the parabola, C·(ln η̂ − ln η*)², in nats and relative to L_min (a model: it extrapolates
  the quadratic when η̂ lies outside the measured grid, and says so);
* the measured regret: the held-out loss interpolated linearly in ln η between the two measured LRs around η̂,
  minus the best measured loss (None outside the grid), and the regret at the nearest measured LR;
* whether η* lies inside the interval the prediction printed (None: it printed none).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

from lrpredict.calibrate.fit import ParabolaFit, fit_parabola


@dataclass(frozen=True)
class Score:
    method: str
    lr: float
    interval: tuple[float, float] | None
    ln_error: float
    regret_parabola: float  # nats
    regret_parabola_rel: float
    regret_measured: float | None  # nats, interpolated between the measured LRs around lr; None outside the grid
    regret_nearest: float  # nats, at the measured LR nearest lr in ln η
    nearest_lr: float
    inside: bool | None
    outside_grid: bool

    def as_dict(self) -> dict:
        return asdict(self)


def target_optimum(lrs: list[float], losses: list[float | None]) -> ParabolaFit | None:
    """Eq.2 on the target's sweep (None with fewer than three finite losses)."""
    return fit_parabola(lrs, losses)


def measured_points(lrs: list[float], losses: list[float | None]) -> list[tuple[float, float]]:
    """(ln η, loss) of the finite runs, by LR."""
    return sorted(
        (math.log(lr), loss) for lr, loss in zip(lrs, losses, strict=True) if loss is not None and math.isfinite(loss)
    )


def score(
    method: str,
    lr: float,
    interval: tuple[float, float] | None,
    fit: ParabolaFit,
    lrs: list[float],
    losses: list[float | None],
) -> Score:
    points = measured_points(lrs, losses)
    best = min(loss for _, loss in points)
    x = math.log(lr)
    delta = x - fit.log_lr_opt
    regret = fit.curvature * delta * delta
    interpolated = None
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            interpolated = y0 + (y1 - y0) * (x - x0) / (x1 - x0) - best
            break
    if interpolated is None and points and math.isclose(x, points[0][0]):
        interpolated = points[0][1] - best
    nearest_x, nearest_loss = min(points, key=lambda p: abs(p[0] - x))
    inside = None if interval is None else interval[0] <= fit.lr_opt <= interval[1]
    return Score(
        method=method,
        lr=lr,
        interval=interval,
        ln_error=abs(delta),
        regret_parabola=regret,
        regret_parabola_rel=regret / fit.loss_min,
        regret_measured=interpolated,
        regret_nearest=nearest_loss - best,
        nearest_lr=math.exp(nearest_x),
        inside=inside,
        outside_grid=not points[0][0] <= x <= points[-1][0],
    )


def next_lrs(lrs: list[float], losses: list[float | None], spacing: float, count: int = 2) -> list[float]:
    """LRs to add when the best measured LR is at an edge of the grid: ``count`` more steps beyond that edge
    (toward where the loss still falls); none when it is interior.  A diverged higher LR closes the high side."""
    runs = sorted(zip(lrs, losses, strict=True))
    finite = [i for i, (_, loss) in enumerate(runs) if loss is not None and math.isfinite(loss)]
    if len(finite) < 2:
        return []
    best = min(finite, key=lambda i: runs[i][1])
    if best == finite[0] and best == 0:
        return [runs[0][0] / spacing**k for k in range(1, count + 1)]
    if best == finite[-1] and best == len(runs) - 1:
        return [runs[-1][0] * spacing**k for k in range(1, count + 1)]
    return []  # interior, or next to a diverged LR: the optimum lies between
