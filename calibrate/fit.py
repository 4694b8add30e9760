"""The Fitting paradigm of arXiv 2601.05049 as code: Eq.2 per (N, D), Eq.4 per (N, LR), Eq.6 across (N, D).

* Eq.2: at fixed (N, D) loss is a parabola in ln η, L = L_min + C·(ln η − μ)²; the vertex μ is the optimum and C
  gives the band of LRs within a loss tolerance.  Fitted on the points around the recorded minimum, diverged runs
  dropped; an optimum at the grid's edge is *unbracketed* and says so.
* Eq.4: under WSD, at fixed (N, η), L(D) = L0 + A·D^(−γ); with ≥ 3 horizons it extrapolates each LR's loss to a
  horizon not trained.
* Eq.6: ln η*(N, D) = ln c + α·ln N + β·ln D.  Anchored (default): a conjugate-Gaussian linear model with a
  bundled law as the prior (``fit_anchored``, lrpredict.calibrate.prior); each cell weighs by its vertex's standard
  error (Eq.2 curvature and residuals); an unbracketed cell enters as an inflated pseudo-observation one grid step
  beyond its edge.  Free (``--prior none``): least squares with a bootstrap over cells for intervals.
* B_opt(D) = c_B·D^b where several batches were probed (Step Law's form, arXiv 2503.04715).
"""

from __future__ import annotations

import math
import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from lrpredict.calibrate.prior import MISFIT_SD, Prior, batch_prior, ln_batch_factor, resolve_prior
from lrpredict.laws import Posterior

# An exponent whose bootstrap 90% interval is wider than this is reported as unstable and marked open.
UNSTABLE_EXPONENT_WIDTH = 0.3
POINTS_AROUND_MINIMUM = 5  # Eq.2 holds near the optimum; far-off LRs bend the parabola (docs/log.md 2026-11-24)
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
    design = np.vander(x[lo:hi], 3)
    (a, b, c), *_ = np.linalg.lstsq(design, y[lo:hi], rcond=None)
    rss = float(np.sum((y[lo:hi] - design @ np.array([a, b, c])) ** 2))
    dof = hi - lo - 3
    spacing = float(np.median(np.diff(x))) if len(x) > 1 else math.log(2.0)
    edge = "low" if i == 0 else "high" if i == len(y) - 1 else None
    if a <= 0 or not bracketed:
        # no interior vertex: report the best recorded LR and flag it; the grid must be extended
        return ParabolaFit(
            float(x[i]), max(float(a), 0.0), float(y[i]), len(points), False, math.inf, rss, dof, edge, spacing
        )
    vertex = float(np.clip(-b / (2 * a), x[lo], x[hi - 1]))
    gradient = np.array([b / (2 * a * a), -1 / (2 * a), 0.0])  # ∂(−b/2a)/∂(a, b, c)
    unit = float(np.sqrt(max(gradient @ np.linalg.pinv(design.T @ design) @ gradient, 0.0)))
    return ParabolaFit(vertex, float(a), float(c - b * b / (4 * a)), len(points), True, unit, rss, dof, None, spacing)


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


@dataclass(frozen=True)
class Optimum:
    """One row of the Eq.6 regression: ln y at (N, D) with its standard error; ``bound`` marks an unbracketed
    optimum entered one grid step beyond the edge it lies past, with a one-step se (a soft one-sided bound)."""

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
) -> JointFit:
    """Conjugate-Gaussian Bayesian regression ln y = offset + α·(ln N − ln N_ref) + β·(ln D − ln D_ref).

    Each row's variance is se² + misfit²; when the residuals say the rows scatter more than that (χ²/dof > 1, dof
    counted as n − tr(hat), so prior-held directions do not count) every variance is scaled up by the ratio
    (Birge ratio).  Closed form: Σ = (Σ0⁻¹ + XᵀWX)⁻¹, μ = Σ(Σ0⁻¹μ0 + XᵀWy).  An exponent the rows cannot
    identify keeps its prior (never 0)."""
    ln_n = np.log([r.n for r in rows])
    ln_d = np.log([r.tokens for r in rows])
    y = np.array([r.ln_y for r in rows])
    se = np.array([r.se for r in rows])
    ref_n, ref_d = float(np.mean(ln_n)), float(np.mean(ln_d))
    design = np.stack([np.ones(len(rows)), ln_n - ref_n, ln_d - ref_d], axis=1)
    m0 = np.array(prior.mean_at(ref_n, ref_d))
    sd0 = np.array(prior.sd())
    p0 = np.diag(1.0 / sd0**2)
    base = se**2 + misfit_sd**2
    scale = 1.0
    for _ in range(20):
        weights = 1.0 / (scale * base)
        cov = np.linalg.inv(p0 + design.T @ (weights[:, None] * design))
        mean = cov @ (p0 @ m0 + design.T @ (weights * y))
        resid = y - design @ mean
        chi2 = float(np.sum(resid**2 * weights))
        dof = len(rows) - float(np.trace(design @ cov @ design.T * weights[None, :]))
        if dof < 0.5:
            break
        new = max(1.0, scale * chi2 / dof)
        if abs(new - scale) < 1e-6 * scale:
            break
        scale = new
    sd = np.sqrt(np.diag(cov))
    # probes "set" an exponent when they carry at least as much information as the prior (precision ratio ≥ 2)
    set_by = {var: "probes" if sd[i] <= sd0[i] / math.sqrt(2) else "prior" for i, var in ((1, "N"), (2, "D"))}
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
        misfit_sd=misfit_sd * math.sqrt(scale),
        prior=prior.law_id,
        prior_mean=tuple(float(v) for v in m0),  # type: ignore[arg-type]
        prior_sd=tuple(float(v) for v in sd0),  # type: ignore[arg-type]
        set_by=set_by,  # type: ignore[arg-type]
        probe_batch_tokens=probe_batch_tokens,
        probe_batch_policy=probe_batch_policy,  # type: ignore[arg-type]
        unbracketed_cells=sum(r.bound is not None for r in rows),
        cells=len(rows),
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


def fit_calibration(
    observations: list[Observation],
    *,
    extrapolate_to: list[float] = (),
    bootstrap: int = 1000,
    seed: int = 0,
    prior: Prior | str | None = "default",
    arch: str = "dense",
) -> CalibrationFit:
    """Eq.2 per (N, D, B) cell, Eq.4 to add cells at ``extrapolate_to`` horizons, Eq.6 on the optima, and a batch
    law when several batches were probed.  ``prior``: a Prior, a law id, "default" (the default law for ``arch``)
    or None/"none" for the free least-squares fit."""
    if not isinstance(prior, Prior):
        prior = resolve_prior(prior if prior is not None else "none", arch)
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
    noise = _pooled_noise([c.fit for c in cells if c.fit is not None])
    for cell in cells:
        where = f"N={cell.n:.3g}, D={cell.tokens:.3g}, B={cell.batch_tokens:.3g}"
        if cell.fit is not None and cell.loss_spread() <= FLAT_SPREAD * noise:
            cell.flat = True
            warnings.append(
                f"no optimum at {where}: the loss moves by {cell.loss_spread():.2g} across the LRs, within "
                f"{FLAT_SPREAD:g}× the noise sd ({noise:.2g}); left out (spread the LRs further or train the probes "
                "longer)"
            )
        elif cell.fit is None:
            warnings.append(f"too few points at {where}: fewer than 3 LRs that did not diverge")
        elif not cell.fit.bracketed:
            fate = (
                "enters the anchored fit as a one-sided bound (one grid step beyond the edge, se one step)"
                if prior is not None
                else "is left out of the free fit"
            )
            place = "the grid's edge" if cell.fit.edge else "inside the grid, but no convex parabola fits around it"
            warnings.append(f"unbracketed optimum at {where}: best LR {cell.fit.lr_opt:.3g} is at {place}; it {fate}")

    optima, batch_rows = _optima_per_nd(cells, noise, include_unbracketed=prior is not None)
    policy = "optimal" if optima and all(o.batch is None for o in optima) else "fixed"
    probe_batches = sorted({c.batch_tokens for c in cells})
    probe_batch = probe_batches[0] if len(probe_batches) == 1 else None
    lr_law = batch_law = None
    b_prior = batch_prior(prior)
    measured_batch = [o for o in batch_rows if o.bound is None]
    if b_prior is not None and measured_batch:
        batch_law = fit_anchored(measured_batch, b_prior, probe_batch_policy="optimal")
    used_batch_law = batch_law or (prior_only(b_prior) if b_prior is not None else None)
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
    if prior is not None and policy == "fixed" and prior.batch_policy == "optimal":
        # an optimum measured at a batch (not at a measured B_opt): move it to the optimal batch (the calibrated
        # batch law's, else the prior law's) with lrpredict's conditional batch law, so it meets a batch-optimal
        # prior (docs/calibrate.md, anchored fit)
        def at_optimum(o: Optimum) -> Optimum:
            if o.batch is None:
                return o
            optimal = batch_law.lr(o.n, o.tokens) if batch_law is not None else None
            shift = ln_batch_factor(prior, o.n, o.tokens, o.batch, arch, optimal=optimal)
            return Optimum(o.n, o.tokens, o.ln_y - shift, o.se, o.bound)

        optima = [at_optimum(o) for o in optima]
        policy = "optimal"
    n_points = sum(o.bound is None for o in optima)
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
    if prior is not None and optima:
        lr_law = fit_anchored(optima, prior, probe_batch_tokens=probe_batch, probe_batch_policy=policy)
        for var, by in lr_law.posterior.set_by.items():  # type: ignore[union-attr]
            if by == "prior":
                warnings.append(
                    f"exponent of {var} not identified by the probes: it keeps the prior {prior.law_id}'s value "
                    f"(±{(prior.sd_alpha if var == 'N' else prior.sd_beta):.2g})"
                )
        if b_prior is not None and not measured_batch:  # one-sided batch bounds are listed, never fitted
            batch_law = prior_only(b_prior)
            warnings.append(
                f"no optimal batch measured (a bracketed batch vertex needs ≥ 3 batches per cell): the batch law is "
                f"{prior.law_id}'s, and each optimum was moved to its B_opt by the conditional batch law"
            )
    elif prior is None and n_points >= 2:
        points = [o for o in optima if o.bound is None]
        lr_law = fit_power([(o.n, o.tokens, math.exp(o.ln_y)) for o in points], bootstrap, seed)
        for name in lr_law.unstable():
            low, high = lr_law.intervals[name]
            warnings.append(f"unstable exponent {name}: bootstrap 90% interval [{low:.3g}, {high:.3g}]")
        if len(measured_batch) >= 2:
            batch_law = fit_power([(o.n, o.tokens, math.exp(o.ln_y)) for o in measured_batch], bootstrap, seed)
    else:
        need = "no (N, D) cell" if prior is not None else "fewer than 2 (N, D) cells"
        warnings.append(f"{need} with an optimum: no joint law")
    if lr_law is not None and prior is None:
        if len({round(math.log(o.tokens), 6) for o in optima}) < 2:
            warnings.append("one horizon only: the D exponent is not identified (probe ≥ 2 horizons)")
        if len({round(math.log(o.n), 6) for o in optima}) < 2:
            warnings.append("one model size only: the N exponent is not identified (probe ≥ 2 sizes)")
    return CalibrationFit(cells, lr_law, batch_law, warnings, horizon_fits, prior, optima)


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
    step = fit.spacing if fit.edge == "high" else -fit.spacing
    return Optimum(cell.n, cell.tokens, fit.log_lr_opt + step, fit.spacing, fit.edge, b)


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
        rows = [_cell_optimum(c, noise) for c in group]
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
