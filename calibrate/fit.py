"""The Fitting paradigm of arXiv 2601.05049 as code: Eq.2 per (N, D), Eq.4 per (N, LR), Eq.6 across (N, D).

* Eq.2: at fixed (N, D) loss is a parabola in ln η, L = L_min + C·(ln η − μ)²; the vertex μ is the optimum and C
  gives the band of LRs within a loss tolerance.  Fitted on the points around the recorded minimum, diverged runs
  dropped; an optimum at the grid's edge is *unbracketed* and says so.
* Eq.4: under WSD, at fixed (N, η), L(D) = L0 + A·D^(−γ); with ≥ 3 horizons it extrapolates each LR's loss to a
  horizon not trained.
* Eq.6: ln η*(N, D) = ln c + α·ln N + β·ln D by least squares, with a bootstrap over cells for intervals.
* B_opt(D) = c_B·D^b where several batches were probed (Step Law's form, arXiv 2503.04715).
"""

from __future__ import annotations

import math
import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

# An exponent whose bootstrap 90% interval is wider than this is reported as unstable and marked open.
UNSTABLE_EXPONENT_WIDTH = 0.3
POINTS_AROUND_MINIMUM = 5  # Eq.2 holds near the optimum; far-off LRs bend the parabola (docs/log.md 2026-11-24)


@dataclass(frozen=True)
class Observation:
    """One probe's loss at one horizon (None when it diverged before it)."""

    n: float
    tokens: float
    lr: float
    loss: float | None
    batch_tokens: float


@dataclass(frozen=True)
class ParabolaFit:
    log_lr_opt: float
    curvature: float
    loss_min: float
    n_points: int
    bracketed: bool

    @property
    def lr_opt(self) -> float:
        return math.exp(self.log_lr_opt)

    def band(self, tolerance: float) -> tuple[float, float]:
        """LRs within ``tolerance`` (relative loss) of the minimum."""
        half = math.sqrt(tolerance * self.loss_min / self.curvature) if self.curvature > 0 else math.inf
        return math.exp(self.log_lr_opt - half), math.exp(self.log_lr_opt + half)


def fit_parabola(lrs: list[float], losses: list[float | None]) -> ParabolaFit | None:
    """Eq.2 on one (N, D) curve; None with fewer than three finite points."""
    points = sorted((math.log(lr), loss) for lr, loss in zip(lrs, losses, strict=True) if _finite(loss))
    if len(points) < 3:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    i = int(np.argmin(y))
    bracketed = 0 < i < len(y) - 1
    half = POINTS_AROUND_MINIMUM // 2
    lo, hi = max(0, i - half), min(len(y), i + half + 1)
    if hi - lo < 3:
        lo, hi = max(0, min(lo, len(y) - 3)), max(hi, min(len(y), 3))
    a, b, c = np.polyfit(x[lo:hi], y[lo:hi], 2)
    if a <= 0 or not bracketed:
        # no interior vertex: report the best recorded LR and flag it; the grid must be extended
        return ParabolaFit(float(x[i]), max(float(a), 0.0), float(y[i]), len(points), False)
    vertex = float(np.clip(-b / (2 * a), x[lo], x[hi - 1]))
    return ParabolaFit(vertex, float(a), float(c - b * b / (4 * a)), len(points), True)


@dataclass(frozen=True)
class HorizonFit:
    l0: float
    a: float
    gamma: float

    def loss(self, tokens: float) -> float:
        return self.l0 + self.a * tokens ** (-self.gamma)


def fit_horizon(tokens: list[float], losses: list[float | None]) -> HorizonFit | None:
    """Eq.4, L(D) = L0 + A·D^(−γ); None with fewer than three finite horizons or no decreasing fit."""
    points = sorted((d, loss) for d, loss in zip(tokens, losses, strict=True) if _finite(loss))
    if len(points) < 3:
        return None
    from scipy.optimize import curve_fit

    d = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    scale = d[0]

    def model(x: np.ndarray, l0: float, a: float, gamma: float) -> np.ndarray:
        return l0 + a * (x / scale) ** (-gamma)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns when it cannot estimate a covariance we do not use
            (l0, a, gamma), _ = curve_fit(
                model,
                d,
                y,
                p0=(float(y.min()) * 0.9, float(y.max() - y.min()) + 1e-3, 0.5),
                bounds=([0.0, 0.0, 1e-3], [float(y.min()), np.inf, 3.0]),
                maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    return HorizonFit(float(l0), float(a) * scale**gamma, float(gamma))


@dataclass(frozen=True)
class JointFit:
    """η*(N, D) = c·N^α·D^β, with bootstrap 90% intervals; ``fitted`` names the exponents the data identify."""

    c: float
    alpha: float
    beta: float
    intervals: dict[str, tuple[float, float]]
    residual_rms: float
    n_cells: int
    fitted: tuple[str, ...]

    def lr(self, n: float, tokens: float) -> float:
        return self.c * n**self.alpha * tokens**self.beta

    def unstable(self) -> list[str]:
        return [
            k for k in self.fitted if k != "c" and self.intervals[k][1] - self.intervals[k][0] > UNSTABLE_EXPONENT_WIDTH
        ]


def fit_power(rows: list[tuple[float, float, float]], bootstrap: int = 1000, seed: int = 0) -> JointFit:
    """Least squares of ln y on ln N and ln D (either dropped when it does not vary), bootstrapped over rows."""
    x_n = np.log([r[0] for r in rows])
    x_d = np.log([r[1] for r in rows])
    y = np.log([r[2] for r in rows])
    names = ["c"] + [name for name, xs in (("alpha", x_n), ("beta", x_d)) if np.ptp(xs) > 1e-9]

    def solve(index: list[int]) -> dict[str, float]:
        columns = [np.ones(len(index))]
        if "alpha" in names:
            columns.append(x_n[index])
        if "beta" in names:
            columns.append(x_d[index])
        sol, *_ = np.linalg.lstsq(np.stack(columns, axis=1), y[index], rcond=None)
        out = dict(zip(names, sol.tolist(), strict=True))
        return {"c": out["c"], "alpha": out.get("alpha", 0.0), "beta": out.get("beta", 0.0)}

    everything = list(range(len(rows)))
    best = solve(everything)
    rng = random.Random(seed)
    samples = []
    for _ in range(bootstrap if len(rows) > 2 else 0):
        index = [rng.randrange(len(rows)) for _ in everything]
        # a resample where a fitted variable does not vary identifies nothing: draw again rather than keep noise
        if ("alpha" in names and np.ptp(x_n[index]) < 1e-9) or ("beta" in names and np.ptp(x_d[index]) < 1e-9):
            continue
        samples.append(solve(index))
    intervals = {
        k: (float(np.percentile([s[k] for s in samples], 5)), float(np.percentile([s[k] for s in samples], 95)))
        if samples
        else (best[k], best[k])
        for k in ("c", "alpha", "beta")
    }
    intervals["c"] = (_exp(intervals["c"][0]), _exp(intervals["c"][1]))
    predicted = best["c"] + best["alpha"] * x_n + best["beta"] * x_d
    rms = float(np.sqrt(np.mean((y - predicted) ** 2)))
    return JointFit(_exp(best["c"]), best["alpha"], best["beta"], intervals, rms, len(rows), tuple(names))


@dataclass
class Cell:
    """Every observation at one (N, D, B), and its Eq.2 fit."""

    n: float
    tokens: float
    batch_tokens: float
    lrs: list[float] = field(default_factory=list)
    losses: list[float | None] = field(default_factory=list)
    extrapolated: bool = False
    fit: ParabolaFit | None = None


@dataclass
class CalibrationFit:
    cells: list[Cell]
    lr_law: JointFit | None
    batch_law: JointFit | None
    warnings: list[str]
    horizon_fits: dict[tuple[float, float, float], HorizonFit]


def fit_calibration(
    observations: list[Observation],
    *,
    extrapolate_to: list[float] = (),
    bootstrap: int = 1000,
    seed: int = 0,
) -> CalibrationFit:
    """Eq.2 per (N, D, B) cell, Eq.4 to add cells at ``extrapolate_to`` horizons, Eq.6 on the optima, and a batch
    law when several batches were probed."""
    warnings: list[str] = []
    grouped: dict[tuple[float, float, float], Cell] = {}
    for o in observations:
        cell = grouped.setdefault((o.n, o.tokens, o.batch_tokens), Cell(o.n, o.tokens, o.batch_tokens))
        cell.lrs.append(o.lr)
        cell.losses.append(o.loss)

    horizon_fits = _horizon_fits(observations)
    if extrapolate_to:
        if not horizon_fits:
            warnings.append("Eq.4 extrapolation needs ≥ 3 horizons per (N, LR): no horizon was extrapolated")
        for (n, batch, lr), hfit in horizon_fits.items():
            for tokens in extrapolate_to:
                cell = grouped.setdefault((n, tokens, batch), Cell(n, tokens, batch, extrapolated=True))
                if cell.extrapolated:
                    cell.lrs.append(lr)
                    cell.losses.append(hfit.loss(tokens))

    cells = sorted(grouped.values(), key=lambda c: (c.n, c.tokens, c.batch_tokens))
    for cell in cells:
        cell.fit = fit_parabola(cell.lrs, cell.losses)
        where = f"N={cell.n:.3g}, D={cell.tokens:.3g}, B={cell.batch_tokens:.3g}"
        if cell.fit is None:
            warnings.append(f"too few points at {where}: fewer than 3 LRs that did not diverge")
        elif not cell.fit.bracketed:
            warnings.append(f"unbracketed optimum at {where}: best LR {cell.fit.lr_opt:.3g} is at the grid's edge")

    optima = _optima_per_nd(cells)
    lr_law = batch_law = None
    if len(optima) >= 2:
        lr_law = fit_power([(n, d, lr) for (n, d), (lr, _) in optima.items()], bootstrap, seed)
        for name in lr_law.unstable():
            low, high = lr_law.intervals[name]
            warnings.append(f"unstable exponent {name}: bootstrap 90% interval [{low:.3g}, {high:.3g}]")
        if len({round(math.log(d), 6) for _, d in optima}) < 2:
            warnings.append("one horizon only: the D exponent is not identified (probe ≥ 2 horizons)")
        if len({round(math.log(n), 6) for n, _ in optima}) < 2:
            warnings.append("one model size only: the N exponent is not identified (probe ≥ 2 sizes)")
    else:
        warnings.append("fewer than 2 (N, D) cells with an optimum: no joint law")
    batches = {(n, d): b for (n, d), (_, b) in optima.items() if b is not None}
    if len(batches) >= 2:
        batch_law = fit_power([(n, d, b) for (n, d), b in batches.items()], bootstrap, seed)
    return CalibrationFit(cells, lr_law, batch_law, warnings, horizon_fits)


def _horizon_fits(observations: list[Observation]) -> dict[tuple[float, float, float], HorizonFit]:
    runs: dict[tuple[float, float, float], list[Observation]] = defaultdict(list)
    for o in observations:
        runs[(o.n, o.batch_tokens, o.lr)].append(o)
    fits = {}
    for key, obs in runs.items():
        fit = fit_horizon([o.tokens for o in obs], [o.loss for o in obs])
        if fit is not None:
            fits[key] = fit
    return fits


def _optima_per_nd(cells: list[Cell]) -> dict[tuple[float, float], tuple[float, float | None]]:
    """(N, D) → (η*, B_opt or None).  With several batches: B_opt is the vertex of min loss vs ln B (Eq.2's form
    applied to the batch), and η* the optimum interpolated there in ln B."""
    by_nd: dict[tuple[float, float], list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.fit is not None and cell.fit.bracketed:
            by_nd[(cell.n, cell.tokens)].append(cell)
    optima: dict[tuple[float, float], tuple[float, float | None]] = {}
    for key, group in by_nd.items():
        group.sort(key=lambda c: c.batch_tokens)
        if len(group) == 1:
            optima[key] = (group[0].fit.lr_opt, None)  # type: ignore[union-attr]
            continue
        batch_fit = fit_parabola([c.batch_tokens for c in group], [c.fit.loss_min for c in group])  # type: ignore[union-attr]
        if batch_fit is None or not batch_fit.bracketed:
            best = min(group, key=lambda c: c.fit.loss_min)  # type: ignore[union-attr]
            optima[key] = (best.fit.lr_opt, best.batch_tokens)  # type: ignore[union-attr]
            continue
        log_b = [math.log(c.batch_tokens) for c in group]
        log_lr = [c.fit.log_lr_opt for c in group]  # type: ignore[union-attr]
        optima[key] = (math.exp(float(np.interp(batch_fit.log_lr_opt, log_b, log_lr))), batch_fit.lr_opt)
    return optima


def _exp(value: float) -> float:
    """exp that saturates instead of raising: an ill-posed fit reports inf, and its warnings say why."""
    return math.exp(value) if value < 700 else math.inf


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
