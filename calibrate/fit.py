"""The Fitting paradigm of arXiv 2601.05049 as code: Eq.2 per (N, D), Eq.4 per (N, LR), Eq.6 across (N, D).

* Eq.2: at fixed (N, D) loss is a parabola in ln η, L = L_min + C·(ln η − μ)²; the vertex μ is the optimum and C
  gives the band of LRs within a loss tolerance.  Fitted on a window around the recorded minimum (``_window``),
  diverged runs dropped; the loss noise that weighs it is measured (lrpredict.calibrate.noise); an optimum at the grid's edge is *unbracketed* and says so.
* Eq.4: under WSD, at fixed (N, η), L(D) = L0 + A·D^(−γ); with ≥ 3 horizons it extrapolates each LR's loss to a
  horizon not trained.
* Eq.6: ln η*(N, D) = ln c + α·ln N + β·ln D.  Anchored (default): a Gaussian linear model with a bundled law as
  the prior (``fit_anchored``, lrpredict.calibrate.prior); each cell weighs by its vertex's standard error (Eq.2
  curvature and residuals); an unbracketed cell enters as an inequality (censored likelihood,
  lrpredict.calibrate.censored); a prior the probes contradict is widened and said so
  (lrpredict.calibrate.conflict).  Free (``--prior none``): least squares with a bootstrap over cells for intervals.
* B_opt(D) = c_B·D^b where several batches were probed (Step Law's form, arXiv 2503.04715).
"""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from lrpredict.calibrate.censored import Bound, solve_posterior
from lrpredict.calibrate.conflict import ConflictCheck, check_conflict
from lrpredict.calibrate.lack_of_fit import REPORT_SD, cubic_shift, shared_vertex_sd
from lrpredict.calibrate.noise import LossNoise, SeedTrend
from lrpredict.calibrate.prior import (
    MIN_MOE_BATCHES,
    MISFIT_SD,
    Prior,
    batch_prior,
    ln_batch_factor,
    resolve_prior,
)
from lrpredict.laws import Posterior, PriorConflict

# An exponent whose bootstrap 90% interval is wider than this is reported as unstable and marked open.
UNSTABLE_EXPONENT_WIDTH = 0.3
# Eq.2's window (issue 19): the LRs within WINDOW_STEPS grid steps of the best (in ln η, so an extended or irregular
# grid does not stretch it) whose loss is within WINDOW_RISE of the minimum; the best LR and its two neighbours always.
# Why: Eq.2 is the second-order expansion of the loss at the optimum; far up the walls (the onset of divergence on
# the high side, the slow-learning plateau on the low side) the loss follows other shapes, and a 5-point least-squares
# fit over them moved the vertex and read the misfit as noise.  On the Step Law sweeps the loss rises < 3% within ±4×
# of the optimum (the planner's ×2 grid spans ±2 steps there, docs/log.md 2026-11-24); a wall 5% or more above the
# minimum is no longer the bowl.
WINDOW_STEPS = 2
WINDOW_RISE = 0.05
# Floor on the pooled loss noise of the Eq.2 fits, relative to the loss: with 3–5 points per cell the residuals
# alone can claim a vertex far sharper than any repeat of the run would give.
LOSS_NOISE_FLOOR = 1e-3
Z90 = 1.6448536269514722  # two-sided 90%: ±1.645 sd
# A cell whose losses span no more than this many noise sds measured no optimum: a perfectly flat replay cell was
# read as "best at the lowest LR" and entered as a bound (docs/log.md 2026-12-01).
FLAT_SPREAD = 2.0


@dataclass(frozen=True)
class Observation:
    """One probe's loss at one horizon (None when it diverged before it)."""

    n: float
    tokens: float
    lr: float
    loss: float | None
    batch_tokens: float
    se: float | None = None  # the loss's measured standard error over the held-out sequences (issue 19)


@dataclass(frozen=True)
class ParabolaFit:
    log_lr_opt: float
    curvature: float
    loss_min: float
    n_points: int
    bracketed: bool
    # sd of the vertex per unit loss noise (delta method on the quadratic's coefficients): × σ_loss gives its se
    vertex_se_per_noise: float = math.inf
    rss: float = 0.0  # residual sum of squares of the quadratic, and its degrees of freedom (pooled across cells)
    dof: int = 0
    edge: str | None = None  # "low"/"high": the best recorded LR is the grid's lowest/highest
    spacing: float = math.log(2.0)  # median ln-LR step of the grid
    # the cubic's optimum minus the vertex on the same window: Eq.2's lack of fit (lrpredict.calibrate.lack_of_fit)
    cubic_shift: float | None = None

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
    spacing = float(np.median(np.diff(x))) if len(x) > 1 else math.log(2.0)
    window = _window(x, y, i, spacing)
    design = np.vander(x[window], 3)
    (a, b, c), *_ = np.linalg.lstsq(design, y[window], rcond=None)
    rss = float(np.sum((y[window] - design @ np.array([a, b, c])) ** 2))
    dof = len(window) - 3
    edge = "low" if i == 0 else "high" if i == len(y) - 1 else None
    if a <= 0 or not bracketed:
        # no interior vertex: report the best recorded LR and flag it; the grid must be extended
        return ParabolaFit(
            float(x[i]), max(float(a), 0.0), float(y[i]), len(points), False, math.inf, rss, dof, edge, spacing
        )
    vertex = float(np.clip(-b / (2 * a), x[window[0]], x[window[-1]]))
    gradient = np.array([b / (2 * a * a), -1 / (2 * a), 0.0])  # ∂(−b/2a)/∂(a, b, c)
    unit = float(np.sqrt(max(gradient @ np.linalg.pinv(design.T @ design) @ gradient, 0.0)))
    shift = cubic_shift(x[window], y[window], vertex)
    loss_min = float(c - b * b / (4 * a))
    return ParabolaFit(vertex, float(a), loss_min, len(points), True, unit, rss, dof, None, spacing, shift)


def _window(x: np.ndarray, y: np.ndarray, best: int, spacing: float) -> np.ndarray:
    """Indices of Eq.2's window around the best point ``best`` (WINDOW_STEPS, WINDOW_RISE); at least three."""
    near = np.abs(x - x[best]) <= WINDOW_STEPS * spacing * (1 + 1e-6)
    low = y - y[best] <= WINDOW_RISE * abs(y[best])
    keep = near & low
    keep[max(0, best - 1) : best + 2] = True
    if keep.sum() < 3:  # the best is the grid's edge: its two nearest neighbours on the one side
        order = np.argsort(np.abs(np.arange(len(x)) - best), kind="stable")
        keep[order[:3]] = True
    return np.flatnonzero(keep)


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
    posterior: Posterior | None = None  # anchored fits: the Gaussian posterior over (offset, α, β)

    def lr(self, n: float, tokens: float) -> float:
        return self.c * n**self.alpha * tokens**self.beta

    def ln_sd(self, n: float, tokens: float) -> float | None:
        """Posterior predictive sd of ln η* at (N, D); None for the free fit."""
        return self.posterior.ln_sd(n, tokens) if self.posterior is not None else None

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


# An unbracketed optimum's row: "high" (the best LR is the grid's top) says ln η* ≥ ln_y, "low" says ≤; a censored
# (probit) term in the anchored fit (lrpredict.calibrate.censored, issue 20)
CENSORED = ("low", "high")


@dataclass(frozen=True)
class Optimum:
    """One row of the Eq.6 regression: ln y at (N, D) with its standard error.  ``bound`` "low"/"high" marks an
    unbracketed optimum: ``ln_y`` is then a bound (the midpoint of the edge LR and its inner neighbour, past which a
    convex loss puts the optimum) and ``se`` its blur; "flat": an interior best point with no convex vertex."""

    n: float
    tokens: float
    ln_y: float
    se: float
    bound: str | None = None
    batch: float | None = None  # the batch η* was measured at; None: at a measured B_opt (the batch vertex)


def fit_anchored(
    rows: list[Optimum],
    prior: Prior,
    *,
    misfit_sd: float = MISFIT_SD,
    probe_batch_tokens: float | None = None,
    probe_batch_policy: str = "fixed",
    vertex_sd: float = 0.0,
) -> JointFit:
    """Bayesian regression ln y = offset + α·(ln N − ln N_ref) + β·(ln D − ln D_ref), Gaussian prior from ``prior``.

    Each point row's variance is se² + misfit², scaled by the Birge ratio of a *data-only* fit's residuals; the
    prior's exponent covariance is widened when the probes alone disagree with it (lrpredict.calibrate.conflict);
    bound rows enter as censored (probit) terms (lrpredict.calibrate.censored).  Without bounds the posterior is the
    closed form Σ = (Σ0⁻¹ + XᵀWX)⁻¹, μ = Σ(Σ0⁻¹μ0 + XᵀWy).  An exponent the rows cannot identify keeps its prior.
    ``vertex_sd``: an error every row shares (Eq.2's lack of fit, lrpredict.calibrate.lack_of_fit), added to the
    offset's posterior variance: it widens the interval everywhere and moves no estimate."""
    ln_n = np.log([r.n for r in rows])
    ln_d = np.log([r.tokens for r in rows])
    y = np.array([r.ln_y for r in rows])
    base = np.array([r.se for r in rows]) ** 2 + misfit_sd**2
    ref_n, ref_d = float(np.mean(ln_n)), float(np.mean(ln_d))
    design = np.stack([np.ones(len(rows)), ln_n - ref_n, ln_d - ref_d], axis=1)
    m0 = np.array(prior.mean_at(ref_n, ref_d))
    point = np.array([r.bound not in CENSORED for r in rows])
    check = check_conflict(design[point], y[point], base[point], m0, prior.covariance())
    used = prior.widened(check.prior_scale)
    var = check.scatter * base
    bounds = [
        Bound(design[i], float(y[i]), 1.0 if r.bound == "high" else -1.0, math.sqrt(var[i]))
        for i, r in enumerate(rows)
        if r.bound in CENSORED
    ]
    mean, cov = solve_posterior(design[point], y[point], var[point], m0, used.covariance(), bounds)
    cov[0, 0] += vertex_sd**2  # a shared error of every row is an error of the offset (confounded with it)
    resid = y - design @ mean
    sd, sd0 = np.sqrt(np.diag(cov)), np.array(used.sd())
    # probes "set" an exponent when they carry at least as much information on it as the prior (precision ratio ≥ 2),
    # judged with the prior's correlation removed: an α moved only through cov(α, β) was not measured
    alone = np.linalg.inv(np.diag(1 / sd0**2) + design[point].T @ (design[point] / var[point][:, None]))
    set_by = {v: "probes" if alone[i, i] <= sd0[i] ** 2 / 2 else "prior" for i, v in ((1, "N"), (2, "D"))}
    to_raw = np.array([1.0, -ref_n, -ref_d])  # ln c = offset − α·ln N_ref − β·ln D_ref
    ln_c = float(to_raw @ mean)
    sd_ln_c = float(np.sqrt(max(to_raw @ cov @ to_raw, 0.0)))
    intervals = {
        "c": (_exp(ln_c - Z90 * sd_ln_c), _exp(ln_c + Z90 * sd_ln_c)),
        "alpha": (float(mean[1] - Z90 * sd[1]), float(mean[1] + Z90 * sd[1])),
        "beta": (float(mean[2] - Z90 * sd[2]), float(mean[2] + Z90 * sd[2])),
    }
    posterior = Posterior(
        reference={"N": math.exp(ref_n), "D": math.exp(ref_d)},
        mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        covariance=tuple(tuple(float(v) for v in row) for row in cov),  # type: ignore[arg-type]
        misfit_sd=misfit_sd * math.sqrt(check.scatter),
        prior=prior.law_id,
        prior_mean=tuple(float(v) for v in m0),  # type: ignore[arg-type]
        prior_sd=tuple(float(v) for v in prior.sd()),  # type: ignore[arg-type]
        set_by=set_by,  # type: ignore[arg-type]
        probe_batch_tokens=probe_batch_tokens,
        probe_batch_policy=probe_batch_policy,  # type: ignore[arg-type]
        unbracketed_cells=sum(r.bound is not None for r in rows),
        cells=len(rows),
        censored_cells=len(bounds),
        prior_covariance_exponents=tuple(tuple(float(v) for v in r) for r in used.covariance()[1:, 1:]),  # type: ignore[arg-type]
        conflict=_conflict_record(check, prior.law_id),
        shared_vertex_sd=vertex_sd or None,
    )
    points = [i for i, r in enumerate(rows) if r.bound is None] or list(range(len(rows)))
    fitted = ("c", *(name for name, var in (("alpha", "N"), ("beta", "D")) if set_by[var] == "probes"))
    return JointFit(
        _exp(ln_c),
        float(mean[1]),
        float(mean[2]),
        intervals,
        float(np.sqrt(np.mean(resid[points] ** 2))),
        len(rows),
        fitted,
        posterior,
    )


def _conflict_record(check: ConflictCheck, law_id: str) -> PriorConflict:
    return PriorConflict(
        chi2=check.chi2,
        dof=check.dof,
        p_value=min(max(check.p_value, 0.0), 1.0),
        prior_scale=check.prior_scale,
        scatter=check.scatter,
        flagged=check.flagged,
        message=check.message(law_id),
    )


def prior_only(prior: Prior) -> JointFit:
    """The prior law itself as a fit with no cells (n_cells 0): what the calibration uses when nothing measured it."""
    intervals = {
        "c": (math.exp(prior.ln_c), math.exp(prior.ln_c)),
        "alpha": (prior.alpha - Z90 * prior.sd_alpha, prior.alpha + Z90 * prior.sd_alpha),
        "beta": (prior.beta - Z90 * prior.sd_beta, prior.beta + Z90 * prior.sd_beta),
    }
    return JointFit(math.exp(prior.ln_c), prior.alpha, prior.beta, intervals, 0.0, 0, ())


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
    flat: bool = False  # the loss moved by less than FLAT_SPREAD × noise across the LRs: it measured no optimum
    ses: list[float | None] = field(default_factory=list)  # each loss's measured eval s.e. (issue 19)
    noise_sd: float | None = None  # the noise sd of this cell's losses used by the fit (lrpredict.calibrate.noise)

    def eval_se(self) -> float | None:
        """The cell's eval s.e. (root mean square over its losses), None when none was measured."""
        measured = [se for se, loss in zip(self.ses, self.losses, strict=False) if se is not None and _finite(loss)]
        return math.sqrt(sum(se * se for se in measured) / len(measured)) if measured else None

    def loss_spread(self) -> float:
        finite = [x for x in self.losses if _finite(x)]
        return max(finite) - min(finite) if finite else 0.0


@dataclass
class CalibrationFit:
    cells: list[Cell]
    lr_law: JointFit | None
    batch_law: JointFit | None
    warnings: list[str]
    horizon_fits: dict[tuple[float, float, float], HorizonFit]
    prior: Prior | None = None
    optima: list[Optimum] = field(default_factory=list)  # the Eq.6 rows (ln η*, normalised to B_opt if anchored)
    batch_prior: Prior | None = None  # where the batch law comes from when no B_opt was measured (MoE: D only)
    noise: LossNoise | None = None  # the loss noise used, with the pooled Eq.2 misfit as a diagnostic (issue 19)


def fit_calibration(
    observations: list[Observation],
    *,
    extrapolate_to: list[float] = (),
    bootstrap: int = 1000,
    seed: int = 0,
    prior: Prior | str | None = "default",
    arch: str = "dense",
    noise: LossNoise | None = None,
    batch_reference: str = "probes",
) -> CalibrationFit:
    """Eq.2 per (N, D, B) cell, Eq.4 to add cells at ``extrapolate_to`` horizons, Eq.6 on the optima, and a batch
    law when several batches were probed.  ``prior``: a Prior, a law id, "default" (the default law for ``arch``)
    or None/"none" for the free least-squares fit.  ``noise``: the measured loss noise (lrpredict.calibrate.noise);
    without it the pooled residual of the Eq.2 parabolas is the noise, as before issue 19.  ``batch_reference``:
    where an anchored fit of one-batch probes holds its optima when no B_opt was measured: "optimal" moves each to
    the batch law's B_opt (the conditional batch law), "probes" keeps them at the probes' batch (a fixed-batch law
    that suggest moves only for a batch other than the probes')."""
    if not isinstance(prior, Prior):
        prior = resolve_prior(prior if prior is not None else "none", arch)
    warnings: list[str] = []
    horizon_fits = _horizon_fits(observations)
    cells = _fitted_cells(observations, extrapolate_to, horizon_fits, warnings)
    noise, fit_noise = _cell_noise(cells, noise)
    _mark_cells(cells, noise, fit_noise, prior is not None, warnings)

    optima, batch_rows = _optima_per_nd(cells, noise, include_unbracketed=prior is not None)
    policy = "optimal" if optima and all(o.batch is None for o in optima) else "fixed"
    probe_batches = sorted({c.batch_tokens for c in cells})
    probe_batch = probe_batches[0] if len(probe_batches) == 1 else None
    lr_law = None
    b_prior = batch_prior(prior, arch)
    measured_batch, batch_law = _anchored_batch_law(cells, batch_rows, b_prior, arch, warnings)
    used_batch_law = batch_law or (prior_only(b_prior) if b_prior is not None else None)
    _batch_bound_warnings(batch_rows, used_batch_law, warnings)
    keep_probe_batch = batch_reference == "probes" and probe_batch is not None and not measured_batch
    if prior is not None and policy == "fixed" and prior.batch_policy == "optimal" and not keep_probe_batch:
        optima = _at_optimal_batch(optima, prior, used_batch_law, arch)
        policy = "optimal"
    n_points = sum(o.bound is None for o in optima)
    _prior_warnings(prior, arch, optima, warnings)
    if prior is not None and optima:
        lr_law = _anchored_lr_law(optima, prior, probe_batch, policy, warnings, cells)
        if b_prior is not None and not measured_batch:  # one-sided batch bounds are listed, never fitted
            batch_law = prior_only(b_prior)
            moved = (
                "each optimum was moved to its B_opt by the conditional batch law"
                if policy == "optimal"
                else f"the optima stay at the probes' batch {probe_batch:.4g} tokens, where the law holds"
            )
            warnings.append(
                f"no optimal batch measured (a bracketed batch vertex needs ≥ 3 batches per cell): the batch law is "
                f"{b_prior.law_id}'s, and {moved}"
            )
    elif prior is None and n_points >= 2:
        lr_law, free_batch = _free_laws(optima, measured_batch, bootstrap, seed, warnings)
        if free_batch is not None:
            batch_law = free_batch
    else:
        need = "no (N, D) cell" if prior is not None else "fewer than 2 (N, D) cells"
        warnings.append(f"{need} with an optimum: no joint law")
    if lr_law is not None and prior is None:
        if len({round(math.log(o.tokens), 6) for o in optima}) < 2:
            warnings.append("one horizon only: the D exponent is not identified (probe ≥ 2 horizons)")
        if len({round(math.log(o.n), 6) for o in optima}) < 2:
            warnings.append("one model size only: the N exponent is not identified (probe ≥ 2 sizes)")
    return CalibrationFit(cells, lr_law, batch_law, warnings, horizon_fits, prior, optima, b_prior, fit_noise)


def _fitted_cells(
    observations: list[Observation],
    extrapolate_to: list[float],
    horizon_fits: dict[tuple[float, float, float], HorizonFit],
    warnings: list[str],
) -> list[Cell]:
    """The observations grouped into (N, D, B) cells, plus the Eq.4-extrapolated cells, each with its Eq.2 fit."""
    grouped: dict[tuple[float, float, float], Cell] = {}
    for o in observations:
        cell = grouped.setdefault((o.n, o.tokens, o.batch_tokens), Cell(o.n, o.tokens, o.batch_tokens))
        cell.lrs.append(o.lr)
        cell.losses.append(o.loss)
        cell.ses.append(o.se)
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
    return cells


def _mark_cells(cells: list[Cell], noise: float, fit_noise: LossNoise, anchored: bool, warnings: list[str]) -> None:
    """Mark the flat cells (no optimum within the noise) and warn about each cell that measured no clean optimum."""
    _warn_cells(cells, noise, fit_noise, anchored, warnings)
    flat = [c for c in cells if c.flat]
    what, trend = fit_noise.comparison_trend()
    if flat and trend is not None:
        advice = _longer_horizons(cells, flat, trend, what)
        if advice:
            warnings.append(advice)


def _longer_horizons(cells: list[Cell], flat: list[Cell], trend: SeedTrend, what: str) -> str | None:
    """Issue 19: for the flat cells at their size's longest horizon (shorter horizons are always noisier: longer
    probes are the remedy only where the longest is flat), the horizon at which the measured noise trend (``what``) would
    fall to a quarter of the cell's loss spread across the LRs (twice the flat rule's margin, ``FLAT_SPREAD``); the
    largest of them, when it is past the horizons trained.  The spread of a flat cell is partly noise: an estimate."""
    longest = {n: max(c.tokens for c in cells if c.n == n) for n in {c.n for c in cells}}
    at_end = [c for c in flat if c.tokens == longest[c.n]]
    if not at_end:
        return None
    needed = [trend.tokens_for(c.loss_spread() / (2 * FLAT_SPREAD)) for c in at_end]
    if any(t is None for t in needed):  # run B of 2026-12-04: 0.37 → 0.53 from 65K to 262K tokens, still early
        return (
            f"{len(flat)} of {len(cells)} cells flat, and the {what} does not fall across the horizons trained "
            f"(measured {trend.describe()}): the probes are still early in training, where the seed decides when the "
            "loss drops; longer probes (--horizons; on real text the seed sd fell ×5 from 262K to 1M tokens, "
            "docs/log.md 2026-12-04) or a larger --budget"
        )
    tokens = max(t for t in needed if t is not None)
    if tokens <= max(longest.values()):
        return None
    horizons = ",".join(f"{round(tokens / 2**k):d}" for k in (2, 1, 0))
    return (
        f"{len(flat)} of {len(cells)} cells flat, {len(at_end)} at their size's longest horizon: the {what} "
        f"(measured {trend.describe()}) would fall to a quarter of their loss spread across the LRs at ~{tokens:,.0f} "
        f"tokens if its trend holds; longer probes (e.g. --horizons {horizons}) or a larger --budget would measure "
        "optima there"
    )


def _warn_cells(cells: list[Cell], noise: float, fit_noise: LossNoise, anchored: bool, warnings: list[str]) -> None:
    """Mark the flat cells and warn about each cell that measured no clean optimum (``_mark_cells``)."""
    for cell in cells:
        where = f"N={cell.n:.3g}, D={cell.tokens:.3g}, B={cell.batch_tokens:.3g}"
        if cell.fit is not None and cell.loss_spread() <= FLAT_SPREAD * (cell.noise_sd or noise):
            cell.flat = True
            source = "measured" if fit_noise.measured else "pooled Eq.2 residual"
            warnings.append(
                f"no optimum at {where}: the loss moves by {cell.loss_spread():.2g} across the LRs, within "
                f"{FLAT_SPREAD:g}× the noise sd ({cell.noise_sd or noise:.2g}, {source}); left out (spread the LRs "
                "further or train the probes longer)"
            )
        elif cell.fit is None:
            warnings.append(f"too few points at {where}: fewer than 3 LRs that did not diverge")
        elif not cell.fit.bracketed:
            fate = (
                "enters the anchored fit as a one-sided bound (a censored likelihood: the optimum lies past the midpoint of "
                "the edge LR and its neighbour)"
                if anchored
                else "is left out of the free fit"
            )
            place = "at the grid's edge" if cell.fit.edge else "inside the grid, but no convex parabola fits around it"
            warnings.append(f"unbracketed optimum at {where}: best LR {cell.fit.lr_opt:.3g} is {place}; it {fate}")


def _anchored_batch_law(
    cells: list[Cell], batch_rows: list[Optimum], b_prior: Prior | None, arch: str, warnings: list[str]
) -> tuple[list[Optimum], JointFit | None]:
    """The measured (bracketed) B_opt rows, and the batch law anchored on ``b_prior`` when it has rows to fit."""
    measured_batch = [o for o in batch_rows if o.bound is None]
    per_cell = Counter((c.n, c.tokens) for c in cells)
    most = max(per_cell.values(), default=0)  # the most batches probed at one (N, D)
    if arch == "moe" and b_prior is not None and most < MIN_MOE_BATCHES:
        # issue 20: an MoE batch law needs a batch vertex, ≥ 3 batches at one (N, D); else the prior's is kept
        measured_batch = []
        warnings.append(
            f"{most} probe batch{'es' if most != 1 else ''} per (N, D) cell: an MoE batch law needs "
            f"≥ {MIN_MOE_BATCHES}; the batch law is {b_prior.law_id}'s (B_opt from D only), not fitted"
        )
    batch_law = None
    if b_prior is not None and measured_batch:
        batch_law = fit_anchored(measured_batch, b_prior, probe_batch_policy="optimal")
        if batch_law.posterior.conflict.flagged:  # type: ignore[union-attr]
            warnings.append("batch law: " + batch_law.posterior.conflict.message)  # type: ignore[union-attr]
    return measured_batch, batch_law


def _batch_bound_warnings(batch_rows: list[Optimum], used_batch_law: JointFit | None, warnings: list[str]) -> None:
    """One warning per unbracketed optimal batch, saying whether the batch law used agrees with its side."""
    for o in batch_rows:
        if o.bound is not None:
            # listed, not fitted: entered as inequalities these bounds doubled the dense replay's regret at 4 batches
            # and left the MoE one unchanged (docs/log.md 2026-12-01 — one-sided batch bounds)
            side = "below" if o.bound == "low" else "above"
            said = ""
            if used_batch_law is not None:
                law_b = used_batch_law.lr(o.n, o.tokens)
                if (law_b > math.exp(o.ln_y)) == (o.bound == "low"):
                    said = f"; the batch law used gives {law_b:.3g}: the probes disagree"
            warnings.append(
                f"optimal batch unbracketed at N={o.n:.3g}, D={o.tokens:.3g}: the best batch probed is the grid's "
                f"edge, B_opt lies {side} {math.exp(o.ln_y):.3g} tokens (probe a batch {side}){said}"
            )


def _at_optimal_batch(optima: list[Optimum], prior: Prior, used_batch_law: JointFit | None, arch: str) -> list[Optimum]:
    """Each optimum measured at a batch (not at a measured B_opt) moved to the optimal batch (the calibrated batch
    law's, else the prior law's) with lrpredict's conditional batch law, so it meets a batch-optimal prior
    (docs/calibrate.md, anchored fit)."""

    def at_optimum(o: Optimum) -> Optimum:
        if o.batch is None:
            return o
        # the calibrated batch law, else the batch prior's (for MoE a D-only law, not the LR prior's)
        optimal = used_batch_law.lr(o.n, o.tokens) if used_batch_law is not None else None
        shift = ln_batch_factor(prior, o.n, o.tokens, o.batch, arch, optimal=optimal)
        return Optimum(o.n, o.tokens, o.ln_y - shift, o.se, o.bound)

    return [at_optimum(o) for o in optima]


def _prior_warnings(prior: Prior | None, arch: str, optima: list[Optimum], warnings: list[str]) -> None:
    """Warnings about how far the prior carries: an MoE total-N prior, and a law that rests on bounds only."""
    if prior is not None and arch == "moe" and prior.law().conventions.n == "total":
        # benchmarks/calibrate_extrapolation.py (c): on the Step Law MoE sweep the optimum follows total N, and
        # a total-N exponent applied to active N cost 1.8% of loss against 0.37% for the free fit
        warnings.append(
            f"the prior {prior.law_id} counts total N, MoE probes count active N: its N exponent may not carry "
            "over (--prior none, or probe ≥ 2 sizes)"
        )
    if prior is not None and optima and all(o.bound is not None for o in optima):
        # benchmarks/calibrate_censoring.py (B): with every row a bound the 90% interval covered only 70–87%
        warnings.append(
            f"no bracketed optimum in any of the {len(optima)} (N, D) cells: the law rests on one-sided bounds and the "
            "prior, and its interval is optimistic; probe LRs past the edge each warning names"
        )


def _anchored_lr_law(
    optima: list[Optimum], prior: Prior, probe_batch: float | None, policy: str, warnings: list[str], cells: list[Cell]
) -> JointFit:
    """The Eq.6 LR law anchored on ``prior``, with warnings for a prior conflict, censored cells, a shared vertex
    error (Eq.2's lack of fit over ``cells``) and exponents the probes did not identify."""
    shared = shared_vertex_sd(
        [c.fit.cubic_shift for c in cells if c.fit is not None and c.fit.bracketed and not c.flat]
    )
    lr_law = fit_anchored(optima, prior, probe_batch_tokens=probe_batch, probe_batch_policy=policy, vertex_sd=shared)
    if shared >= REPORT_SD:
        warnings.append(
            "the loss curves are not parabolas about their optima: a cubic through the same points moves the cells' "
            f"optima the same way (a shared error, sd {shared:.2g} in ln η, that more cells do not average out); added "
            "to the interval (an asymmetric basin biases every Eq.2 vertex toward its flatter side)"
        )
    conflict = lr_law.posterior.conflict  # type: ignore[union-attr]
    if conflict is not None and conflict.flagged:
        warnings.append(conflict.message)
    censored = lr_law.posterior.censored_cells  # type: ignore[union-attr]
    if censored:
        warnings.append(
            f"{censored} of {len(optima)} (N, D) cells censored: entered as inequalities, not as points (extend "
            "their LR grids past the edge to measure them)"
        )
    for var, by in lr_law.posterior.set_by.items():  # type: ignore[union-attr]
        if by == "prior":
            warnings.append(
                f"exponent of {var} not identified by the probes: it keeps the prior {prior.law_id}'s value "
                f"(±{(prior.sd_alpha if var == 'N' else prior.sd_beta):.2g})"
            )
    return lr_law


def _free_laws(
    optima: list[Optimum], measured_batch: list[Optimum], bootstrap: int, seed: int, warnings: list[str]
) -> tuple[JointFit, JointFit | None]:
    """The free (least-squares, bootstrapped) LR law on the bracketed optima, and a batch law when ≥ 2 B_opt rows."""
    points = [o for o in optima if o.bound is None]
    lr_law = fit_power([(o.n, o.tokens, math.exp(o.ln_y)) for o in points], bootstrap, seed)
    for name in lr_law.unstable():
        low, high = lr_law.intervals[name]
        warnings.append(f"unstable exponent {name}: bootstrap 90% interval [{low:.3g}, {high:.3g}]")
    batch_law = None
    if len(measured_batch) >= 2:
        batch_law = fit_power([(o.n, o.tokens, math.exp(o.ln_y)) for o in measured_batch], bootstrap, seed)
    return lr_law, batch_law


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


def _pooled_noise(fits: list[ParabolaFit]) -> float:
    """Loss noise pooled over every Eq.2 fit's residuals, floored at LOSS_NOISE_FLOOR of the loss."""
    rss = sum(f.rss for f in fits if f.dof > 0)
    dof = sum(f.dof for f in fits if f.dof > 0)
    floor = LOSS_NOISE_FLOOR * (float(np.median([f.loss_min for f in fits])) if fits else 1.0)
    return max(math.sqrt(rss / dof) if dof else 0.0, floor)


def _cell_noise(cells: list[Cell], measured: LossNoise | None) -> tuple[float, LossNoise]:
    """Each cell's noise sd (``cell.noise_sd``) and the typical one; the pooled Eq.2 residual is kept in the returned
    LossNoise as a misfit diagnostic.  Measured: the cell's eval s.e. ⊕ the seed sd (lrpredict.calibrate.noise); not
    measured: the pooled residual, floored, as before."""
    fits = [c.fit for c in cells if c.fit is not None]
    misfit = _pooled_noise(fits)
    measured = LossNoise(**{**(measured.__dict__ if measured is not None else {}), "misfit_sd": misfit})
    for cell in cells:
        if cell.fit is None:
            continue
        floor = LOSS_NOISE_FLOOR * cell.fit.loss_min
        cell.noise_sd = measured.cell_sd(cell.eval_se(), misfit, floor, cell.tokens) if measured.measured else misfit
    typical = [c.noise_sd for c in cells if c.noise_sd is not None]
    return (float(np.median(typical)) if typical else misfit), measured


def _cell_optimum(cell: Cell, noise: float) -> Optimum:
    fit = cell.fit
    assert fit is not None
    b = cell.batch_tokens
    if fit.bracketed:
        return Optimum(
            cell.n, cell.tokens, fit.log_lr_opt, min(noise * fit.vertex_se_per_noise, 2 * fit.spacing), None, b
        )
    if fit.edge is None:  # interior best point but no convex parabola: the best point, uncertain by a grid step
        return Optimum(cell.n, cell.tokens, fit.log_lr_opt, fit.spacing, "flat", b)
    # a convex loss whose best point is the edge puts the optimum past the midpoint of the edge and its neighbour;
    # half a step of blur (noise, a non-parabolic curve), as for the batch bound (_batch_bound)
    inward = -fit.spacing / 2 if fit.edge == "high" else fit.spacing / 2
    return Optimum(cell.n, cell.tokens, fit.log_lr_opt + inward, fit.spacing / 2, fit.edge, b)


def _optima_per_nd(
    cells: list[Cell], noise: float, *, include_unbracketed: bool
) -> tuple[list[Optimum], list[Optimum]]:
    """Per (N, D): the ln η* row, and (several batches) the ln B_opt row.  With several batches B_opt is the vertex
    of min loss vs ln B (Eq.2's form applied to the batch), η* is interpolated there in ln B and takes the larger
    se of its neighbours.  An unbracketed batch vertex (two batches are always unbracketed) measures no B_opt: no
    batch row, and η* is the best batch's, marked with that batch (issue 11: the better grid point is no B_opt)."""
    by_nd: dict[tuple[float, float], list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.fit is not None and not cell.flat and (cell.fit.bracketed or include_unbracketed):
            by_nd[(cell.n, cell.tokens)].append(cell)
    optima: list[Optimum] = []
    batch_rows: list[Optimum] = []
    for (n, tokens), group in sorted(by_nd.items()):
        group.sort(key=lambda c: c.batch_tokens)
        rows = [_cell_optimum(c, c.noise_sd or noise) for c in group]
        if len(group) == 1:
            optima.append(rows[0])
            continue
        bracketed = [(c, r) for c, r in zip(group, rows, strict=True) if r.bound is None] or list(
            zip(group, rows, strict=True)
        )
        batch_fit = fit_parabola([c.batch_tokens for c, _ in bracketed], [c.fit.loss_min for c, _ in bracketed])  # type: ignore[union-attr]
        if batch_fit is None or not batch_fit.bracketed:
            optima.append(min(bracketed, key=lambda cr: cr[0].fit.loss_min)[1])  # type: ignore[union-attr]
            bound = _batch_bound(n, tokens, [c for c, _ in bracketed], noise)
            if bound is not None:
                batch_rows.append(bound)
            continue
        log_b = [math.log(c.batch_tokens) for c, _ in bracketed]
        log_lr = [r.ln_y for _, r in bracketed]
        at = batch_fit.log_lr_opt
        nearest = sorted(bracketed, key=lambda cr: abs(math.log(cr[0].batch_tokens) - at))[:2]
        optima.append(Optimum(n, tokens, float(np.interp(at, log_b, log_lr)), max(r.se for _, r in nearest), None))
        batch_se = min(noise * batch_fit.vertex_se_per_noise, 2 * batch_fit.spacing)
        batch_rows.append(Optimum(n, tokens, at, batch_se))
    return optima, batch_rows


def _batch_bound(n: float, tokens: float, group: list[Cell], noise: float) -> Optimum | None:
    """An unbracketed batch vertex as a one-sided bound (issue 11: listed, not dropped in silence).  Loss is convex in ln B
    near B_opt (Eq.2's form, as for the vertex above), so when the best batch is the grid's edge and beats its
    neighbour by more than the loss noise, B_opt lies beyond the midpoint of the two in ln B: ``bound`` "low" says
    ln B_opt ≤ ln_y, "high" says ≥.  se: half the step, the bound's own blur."""
    if len(group) < 2:
        return None
    losses = [c.fit.loss_min for c in group]  # type: ignore[union-attr]
    best = int(np.argmin(losses))
    if best not in (0, len(group) - 1):
        return None  # an interior best with no convex vertex (flat): no direction to bound
    neighbour = 1 if best == 0 else len(group) - 2
    if losses[neighbour] - losses[best] <= noise:
        return None  # the two batches tie within the noise: no direction either
    ln_b, ln_nb = math.log(group[best].batch_tokens), math.log(group[neighbour].batch_tokens)
    edge = "low" if best == 0 else "high"
    return Optimum(n, tokens, (ln_b + ln_nb) / 2, abs(ln_b - ln_nb) / 2, edge)


def _exp(value: float) -> float:
    """exp that saturates instead of raising: an ill-posed fit reports inf, and its warnings say why."""
    return math.exp(value) if value < 700 else math.inf


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
