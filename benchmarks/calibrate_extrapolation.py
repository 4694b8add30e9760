"""Does a calibration survive the extrapolation it is for?  Anchored (prior-anchored Bayesian Eq.6) vs free fit.

    python benchmarks/calibrate_extrapolation.py [--sweeps DIR] [--seeds 200]

(a) Synthetic truth: η*(N, D) = c·N^α·D^β with α, β off Step Law's (the prior) and c ×3 off it; loss at each probe
    L = L(D) + k·L(D)·(ln η − ln η*)² + ε, k = 0.0099 (lrpredict.band), ε ~ N(0, 0.002²); probes: 3 sizes
    (2e7, 4e7, 8e7) × 3 horizons (10, 20, 40 tokens/param) × 5 LRs ×2 apart centred on the prior, at the prior's
    B_opt.  Target 100× the largest probe (N = 8e9, D = 20·N).  Coverage of the 90% predictive interval of ln η*
    and median |ln η error|, over ``--seeds`` seeds; exponent offsets drawn from the prior's own widths (the prior
    is honest) or fixed at 1.5 sd (the prior is off).  Free fit: OLS with its classical 90% interval (t quantile).
(b) Replay on the Step Law dense sweep: probes (5 recorded LRs × 2 batches nearest Step Law, as
    calibrate --replay) on the smallest one and two sizes; joint loss regret on every cell of the largest size
    for the anchored fit, the free fit and Step Law itself (in-sample).  Batch: the fit's batch law, else Step
    Law's B_opt (two batches measure no B_opt).
(c) Foreign stack: the Step Law MoE sweep, N = active parameters, probes on the smallest MoE config only; regret
    on every other config.  Priors: calibrate's MoE default ling-2025 (active N, like the probes) and Step Law
    (total N for MoE: applied to active N its exponent is the wrong one), also with cells keyed by total N.
(e) What the replay regret is made of: LR-only regret and the batch floor (best recorded LR at Step Law's B_opt).
(f) The dense 2-size replay over draws of extra probe noise: is the anchored/free gap noise?
(g) The dense 2-size replay with 2–5 recorded batches per probe cell: does the result hinge on the batch count?
(h) The dense replay scored on a smooth loss surface instead of the recorded grid: a quadratic in (ln η, ln B) fitted
    to each held-out cell's runs within 0.5/1/2% of its best loss, regret = surface at the prediction (clipped to
    those runs' range) over the surface's minimum.  Removes the ×√2 LR × ×2 batch grid resolution from (b).
(d) Probe FLOPs (6·N·D per run) of each plan as a fraction of the whole recorded grid's.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from pathlib import Path

import numpy as np
from scipy import stats

from lrpredict.calibrate.fit import Observation, fit_calibration
from lrpredict.calibrate.prior import resolve_prior
from lrpredict.calibrate.replay import ReplayBackend
from lrpredict.registry import load_law
from lrpredict.sweeps import nearest_batch, regrets

DEFAULT_SWEEPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sweeps"
Z90 = 1.6448536269514722
SIZES = (2e7, 4e7, 8e7)
TOKENS_PER_PARAM = (10.0, 20.0, 40.0)
CURVATURE = 0.0099
NOISE = 0.002


def _synthetic_observations(rng: random.Random, truth, prior, sizes) -> list[Observation]:
    steplaw = load_law("steplaw-2025")
    out = []
    for n in sizes:
        for tpp in TOKENS_PER_PARAM:
            d = tpp * n
            batch = steplaw.batch.evaluate({"D": d})
            mu = truth(n, d)
            centre = prior.ln_value(n, d)
            base = 2.0 + 400.0 * d**-0.3  # L(D): any decreasing horizon curve
            xs = [centre + (k - 2) * math.log(2.0) for k in range(5)]
            losses = [base * (1 + CURVATURE * (x - mu) ** 2) + rng.gauss(0.0, NOISE) for x in xs]
            for _ in range(2):  # as the planner's extend(): two more LRs beyond an edge holding the best loss
                best = losses.index(min(losses))
                if 0 < best < len(xs) - 1:
                    break
                step = math.log(2.0) if best else -math.log(2.0)
                new = [xs[best] + step, xs[best] + 2 * step]
                xs += new
                losses += [base * (1 + CURVATURE * (x - mu) ** 2) + rng.gauss(0.0, NOISE) for x in new]
                xs, losses = map(list, zip(*sorted(zip(xs, losses, strict=True)), strict=True))
            out += [Observation(n, d, math.exp(x), loss, batch) for x, loss in zip(xs, losses, strict=True)]
    return out


def _free_interval(fit, n: float, d: float) -> tuple[float, float]:
    """OLS prediction of ln η* at (n, d) and its classical 90% half-width (t quantile, residual variance)."""
    rows = [o for o in fit.optima if o.bound is None]
    if len(rows) < 2:
        return math.nan, math.inf
    x = np.stack([np.ones(len(rows)), np.log([o.n for o in rows]), np.log([o.tokens for o in rows])], axis=1)
    y = np.array([o.ln_y for o in rows])
    keep = [0] + [j for j in (1, 2) if np.ptp(x[:, j]) > 1e-9]
    x = x[:, keep]
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = max(len(rows) - len(keep), 1)
    s2 = float(np.sum((y - x @ beta) ** 2)) / dof
    t = np.array([1.0, math.log(n), math.log(d)])[keep]
    var = s2 * float(t @ np.linalg.pinv(x.T @ x) @ t)
    return float(t @ beta), float(stats.t.ppf(0.95, dof) * math.sqrt(var))


def synthetic(seeds: int, offset_sd: float | None, sizes=SIZES) -> dict[str, float]:
    prior = resolve_prior("default")
    assert prior is not None
    n_t = 100 * max(sizes)
    d_t = 20 * n_t
    hits = {"anchored": 0, "free": 0}
    errors: dict[str, list[float]] = {"anchored": [], "free": []}
    widths: dict[str, list[float]] = {"anchored": [], "free": []}
    for seed in range(seeds):
        rng = random.Random(seed)
        if offset_sd is None:  # offsets drawn from the prior's own widths
            d_alpha, d_beta = rng.gauss(0, prior.sd_alpha), rng.gauss(0, prior.sd_beta)
        else:
            sign = rng.choice((-1, 1))
            d_alpha, d_beta = sign * offset_sd * prior.sd_alpha, -sign * offset_sd * prior.sd_beta
        ln_c = prior.ln_c + math.log(3.0) * rng.choice((-1, 1))

        def truth(n: float, d: float, ln_c=ln_c, d_alpha=d_alpha, d_beta=d_beta) -> float:
            return ln_c + (prior.alpha + d_alpha) * math.log(n) + (prior.beta + d_beta) * math.log(d)

        observations = _synthetic_observations(rng, truth, prior, sizes)
        true_value = truth(n_t, d_t)
        anchored = fit_calibration(observations, prior=prior, bootstrap=0).lr_law
        assert anchored is not None and anchored.posterior is not None
        pred = math.log(anchored.lr(n_t, d_t))
        half = Z90 * anchored.posterior.ln_sd(n_t, d_t)
        hits["anchored"] += abs(pred - true_value) <= half
        errors["anchored"].append(abs(pred - true_value))
        widths["anchored"].append(math.exp(2 * half))
        free = fit_calibration(observations, prior=None, bootstrap=0)
        pred, half = _free_interval(free, n_t, d_t)
        hits["free"] += abs(pred - true_value) <= half
        errors["free"].append(abs(pred - true_value))
        widths["free"].append(math.exp(2 * half))
    return {
        **{f"coverage_{k}": v / seeds for k, v in hits.items()},
        # a free fit with no usable optimum (NaN) counts as a miss and an infinite error
        **{
            f"median_error_{k}": statistics.median(math.inf if math.isnan(e) else e for e in v)
            for k, v in errors.items()
        },
        **{f"median_span_{k}": statistics.median(v) for k, v in widths.items()},
    }


def replay(
    sweeps: Path,
    arch: str,
    n_probe_sizes: int,
    *,
    lrs: int = 5,
    batches: int = 2,
    total_n: bool = False,
    noise: float = 0.0,
    seed: int = 0,
    prior: str = "default",
) -> dict[str, float]:
    """``total_n``: MoE cells keyed by total N (the prior's convention) instead of active N (calibrate's).
    ``noise``: extra relative loss noise on the probes (calibrate --replay --noise), to see how much of a regret
    difference one draw of noise makes.  ``lr_max_*``: LR-only regret (along the cell's best batch); ``floor``: the
    joint regret of the best recorded LR at Step Law's B_opt, which no LR law can go below with that batch."""
    backend = ReplayBackend(sweeps / f"steplaw_{arch}.csv", noise=noise, seed=seed)
    sizes = backend.sizes()
    steplaw = load_law("steplaw-2025")
    probes = backend.plan(sizes[:n_probe_sizes], steplaw, lrs=lrs, batches=batches)
    observations = [backend.run(p) for p in probes]
    to_n = {c.n_active: (c.n if total_n else c.n_active) for c in backend.cells}
    observations = [Observation(to_n[o.n], o.tokens, o.lr, o.loss, o.batch_tokens) for o in observations]
    targets = sizes[-1:] if arch == "dense" else sizes[n_probe_sizes:]
    out: dict[str, float] = {"flops_fraction": backend.probe_flops(probes) / backend.grid_flops()}
    fit_floors: list[float] = []
    for name, spec in (("anchored", prior), ("free", None)):
        fit = fit_calibration(observations, prior=spec, bootstrap=0, arch=arch)
        if fit.lr_law is None:
            out[f"max_{name}"] = out[f"median_{name}"] = math.nan
            continue
        scores = []
        for n in targets:
            for cell in backend.cells_of(n):
                values = {"N": cell.n, "D": cell.tokens}
                m = to_n[n]
                batch = fit.batch_law.lr(m, cell.tokens) if fit.batch_law else steplaw.batch.evaluate(values)
                scores.append(regrets(cell, fit.lr_law.lr(m, cell.tokens), batch)[:2])
                if name == "anchored":  # the best recorded LR at the fit's own batch: what its batch law costs
                    curve = cell.curve(nearest_batch(cell, batch))
                    fit_floors.append(min(loss for _, loss in curve) / cell.best().loss - 1)
        joint = [s[1] for s in scores]
        out[f"max_{name}"], out[f"median_{name}"] = max(joint), statistics.median(joint)
        out[f"lr_max_{name}"] = max(s[0] for s in scores)
        if name == "anchored":
            out["alpha_anchored"], out["beta_anchored"] = fit.lr_law.alpha, fit.lr_law.beta
        else:
            out["alpha_free"], out["beta_free"] = fit.lr_law.alpha, fit.lr_law.beta
    bundled = [
        regrets(cell, steplaw.lr.evaluate(v), steplaw.batch.evaluate(v))[:2]
        for n in targets
        for cell in backend.cells_of(n)
        for v in [{"N": cell.n, "D": cell.tokens}]
    ]
    out["max_steplaw"], out["median_steplaw"] = max(b[1] for b in bundled), statistics.median(b[1] for b in bundled)
    out["lr_max_steplaw"] = max(b[0] for b in bundled)
    floors = []
    for n in targets:
        for cell in backend.cells_of(n):
            curve = cell.curve(nearest_batch(cell, steplaw.batch.evaluate({"N": cell.n, "D": cell.tokens})))
            floors.append(min(loss for _, loss in curve) / cell.best().loss - 1)
    out["floor_max"], out["floor_median"] = max(floors), statistics.median(floors)
    out["fit_floor_max"] = max(fit_floors) if fit_floors else math.nan
    return out


def basin_regret(cell, within: float):
    """Regret on a quadratic surface in (ln η, ln B) fitted to the cell's runs within ``within`` of its best loss:
    a function (lr, batch) -> relative loss above the surface's minimum over those runs' range."""
    best = cell.best().loss
    kept = [r for r in cell.runs if not r.diverged and r.loss <= best * (1 + within)]
    x, y = np.log([r.lr for r in kept]), np.log([r.batch_tokens for r in kept])
    design = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    coef, *_ = np.linalg.lstsq(design, np.array([r.loss for r in kept]), rcond=None)
    box = (x.min(), x.max(), y.min(), y.max())

    def surface(a, b):
        return coef[0] + coef[1] * a + coef[2] * b + coef[3] * a * a + coef[4] * a * b + coef[5] * b * b

    grid_x, grid_y = np.meshgrid(np.linspace(box[0], box[1], 201), np.linspace(box[2], box[3], 201))
    lowest = float(surface(grid_x, grid_y).min())

    def regret(lr: float, batch: float) -> float:
        a = min(max(math.log(lr), box[0]), box[1])
        b = min(max(math.log(batch), box[2]), box[3])
        return float(surface(a, b)) / lowest - 1

    return regret


def replay_smooth(sweeps: Path, n_probe_sizes: int, within: float) -> dict[str, float]:
    """(b) dense, scored by ``basin_regret`` instead of the recorded grid: max over the largest size's cells."""
    backend = ReplayBackend(sweeps / "steplaw_dense.csv")
    sizes = backend.sizes()
    steplaw = load_law("steplaw-2025")
    observations = [backend.run(p) for p in backend.plan(sizes[:n_probe_sizes], steplaw, lrs=5, batches=2)]
    cells = backend.cells_of(sizes[-1])
    scorers = [basin_regret(cell, within) for cell in cells]
    out = {}
    for name, spec in (("anchored", "default"), ("free", None)):
        fit = fit_calibration(observations, prior=spec, bootstrap=0, arch="dense")
        batch_law = fit.batch_law
        out[name] = max(
            score(
                fit.lr_law.lr(cell.n, cell.tokens),
                batch_law.lr(cell.n, cell.tokens)
                if batch_law
                else steplaw.batch.evaluate({"N": cell.n, "D": cell.tokens}),
            )
            for cell, score in zip(cells, scorers, strict=True)
        )
    values = [{"N": cell.n, "D": cell.tokens} for cell in cells]
    out["steplaw"] = max(
        s(steplaw.lr.evaluate(v), steplaw.batch.evaluate(v)) for s, v in zip(scorers, values, strict=True)
    )
    return out


def replay_noise(sweeps: Path, seeds: int, noise: float) -> dict[str, float]:
    """The dense 2-size replay over ``seeds`` draws of extra probe noise: is the anchored/free gap noise?"""
    runs = [replay(sweeps, "dense", 2, noise=noise, seed=s) for s in range(seeds)]
    ratio = [r["max_anchored"] / r["max_free"] for r in runs]
    return {
        "median_max_anchored": statistics.median(r["max_anchored"] for r in runs),
        "median_max_free": statistics.median(r["max_free"] for r in runs),
        "p90_max_free": float(np.quantile([r["max_free"] for r in runs], 0.9)),
        "p90_max_anchored": float(np.quantile([r["max_anchored"] for r in runs], 0.9)),
        "median_ratio": statistics.median(ratio),
        "share_half": sum(x <= 0.5 for x in ratio) / len(ratio),
        "alpha_free_range": (min(r["alpha_free"] for r in runs), max(r["alpha_free"] for r in runs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--noise-seeds", type=int, default=20, help="draws of extra probe noise for the replay")
    parser.add_argument("--noise", type=float, default=0.001, help="relative probe loss noise for those draws")
    args = parser.parse_args()
    print(f"(a) synthetic, {args.seeds} seeds, target 100× the largest probe (N 8e9, D 1.6e11); prior steplaw-2025")
    print(
        "| probes | exponent offset | coverage anchored | coverage free | median abs ln err anchored | free "
        "| median 90% span anchored | free |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for sizes, label in ((SIZES, "3 sizes"), (SIZES[:1], "1 size")):
        for offset, text in ((None, "drawn from the prior's sd"), (1.5, "fixed 1.5 sd")):
            r = synthetic(args.seeds, offset, sizes)
            print(
                f"| {label} | {text} | {r['coverage_anchored']:.1%} | {r['coverage_free']:.1%} | "
                f"{r['median_error_anchored']:.3f} | {r['median_error_free']:.3f} | ×{r['median_span_anchored']:.3g} "
                f"| ×{r['median_span_free']:.3g} |"
            )
    print("\n(b, c, d) replay: joint regret on held-out cells; probe FLOPs / recorded grid")
    print(
        "| sweep | probe sizes | probe FLOPs / grid | max regret anchored | free | Step Law | median anchored | "
        "free | Step Law | α, β anchored | α, β free |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    cases = [("dense", 1, False, "default"), ("dense", 2, False, "default"), ("moe", 1, False, "default")]
    cases += [("moe", 1, False, "steplaw-2025"), ("moe", 1, True, "steplaw-2025")]
    for arch, k, total, prior in cases:
        r = replay(args.sweeps, arch, k, total_n=total, prior=prior)
        named = resolve_prior(prior, arch).law_id
        label = arch + (" (N total" if total else " (N active" if arch == "moe" else "")
        label += f", prior {named})" if arch == "moe" else ""
        print(
            f"| {label} | {k} smallest | {r['flops_fraction']:.2%} | {r['max_anchored']:.3%} | {r['max_free']:.3%} | "
            f"{r['max_steplaw']:.3%} | {r['median_anchored']:.3%} | {r['median_free']:.3%} | "
            f"{r['median_steplaw']:.3%} | {r['alpha_anchored']:.3f}, {r['beta_anchored']:.3f} | "
            f"{r.get('alpha_free', math.nan):.3f}, {r.get('beta_free', math.nan):.3f} |"
        )
        rows.append((label, k, r))
    print("\n(e) what the replay regret is made of (max over held-out cells)")
    print(
        "| sweep | probe sizes | LR-only regret anchored | free | Step Law | floor: best recorded LR at Step Law's B_opt "
        "| floor at the anchored fit's batch |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, k, r in rows:
        print(
            f"| {label} | {k} smallest | {r['lr_max_anchored']:.3%} | {r['lr_max_free']:.3%} | "
            f"{r['lr_max_steplaw']:.3%} | {r['floor_max']:.3%} (median {r['floor_median']:.3%}) | "
            f"{r['fit_floor_max']:.3%} |"
        )
    q = replay_noise(args.sweeps, args.noise_seeds, args.noise)
    print(f"\n(f) dense, 2 smallest sizes, {args.noise_seeds} draws of extra probe noise {args.noise:g} (relative)")
    print(
        "| median max regret anchored | free | 90th pct anchored | free | median anchored/free | draws ≤ 0.5× | α free range |"
    )
    print("|---|---|---|---|---|---|---|")
    lo, hi = q["alpha_free_range"]
    print(
        f"| {q['median_max_anchored']:.3%} | {q['median_max_free']:.3%} | {q['p90_max_anchored']:.3%} | "
        f"{q['p90_max_free']:.3%} | {q['median_ratio']:.2f} | {q['share_half']:.0%} | {lo:.2f} … {hi:.2f} |"
    )

    print("\n(g) dense, 2 smallest sizes, by recorded batches per probe cell (5 LRs each): all shown, none picked")
    print("| batches | probe FLOPs / grid | max regret anchored | free | Step Law | anchored / free |")
    print("|---|---|---|---|---|---|")
    for batches in (2, 3, 4, 5):
        r = replay(args.sweeps, "dense", 2, batches=batches)
        print(
            f"| {batches} | {r['flops_fraction']:.2%} | {r['max_anchored']:.3%} | {r['max_free']:.3%} | "
            f"{r['max_steplaw']:.3%} | {r['max_anchored'] / r['max_free']:.2f} |"
        )

    print("\n(h) dense, scored on a quadratic loss surface per held-out cell (no grid resolution): all widths shown")
    print("| basin (runs within) | probe sizes | max regret anchored | free | Step Law | anchored / free |")
    print("|---|---|---|---|---|---|")
    for within in (0.005, 0.01, 0.02):
        for k in (1, 2):
            r = replay_smooth(args.sweeps, k, within)
            print(
                f"| {within:.1%} | {k} smallest | {r['anchored']:.3%} | {r['free']:.3%} | {r['steplaw']:.3%} | "
                f"{r['anchored'] / r['free']:.2f} |"
            )


if __name__ == "__main__":
    main()
