"""Fit lrpredict's conditional law: the optimal LR at a batch that is not the optimal batch.

    python benchmarks/fit_conditional_batch.py [--sweeps DIR] [--write]

No published law gives η*(B) away from B_opt.  On every (N, D) cell of the Step Law sweeps we locate the optimal
LR at each batch with Eq.2 of arXiv 2601.05049 (a quadratic in ln η through the five points around the recorded
minimum; curves whose minimum sits at a grid edge are left out), take the cell's best batch as the reference
(B_opt, η_opt), and fit a hinge in log space:

    ln(η*(B)/η_opt) = s_below·min(r, 0) + s_above·max(r, 0),   r = ln(B/B_opt)

by least squares, per architecture, with a 1000-fold bootstrap over cells for intervals.  ``--write`` writes
coefficients/lrpredict-batch-{dense,moe}-2026.toml.  Validation (leave one model size out): see
benchmarks/conditional_regret.py.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrpredict.sweeps import Cell, group_cells, read_runs

DEFAULT_SWEEPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sweeps"
OUT_DIR = Path(__file__).resolve().parents[1] / "coefficients"
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Point:
    cell: tuple[float, float, float]
    n_active: float
    log_ratio_batch: float
    log_ratio_lr: float


def optimal_lr(curve: list[tuple[float, float]]) -> float | None:
    """Eq.2 vertex through the five points around the minimum; None when the minimum is at an edge."""
    if len(curve) < 3:
        return None
    x = np.log([p[0] for p in curve])
    y = np.array([p[1] for p in curve])
    i = int(np.argmin(y))
    if i in (0, len(y) - 1):
        return None
    lo, hi = max(0, i - 2), min(len(y), i + 3)
    a, b, _ = np.polyfit(x[lo:hi], y[lo:hi], 2)
    if a <= 0:
        return math.exp(x[i])
    return float(math.exp(min(max(-b / (2 * a), x[lo]), x[hi - 1])))


def cell_points(cell: Cell) -> list[Point]:
    best = cell.best()
    reference = optimal_lr(cell.curve(best.batch_tokens))
    if reference is None:
        return []
    points = []
    for batch in cell.batches():
        lr = optimal_lr(cell.curve(batch))
        if lr is not None:
            points.append(Point(cell.key, cell.n_active, math.log(batch / best.batch_tokens), math.log(lr / reference)))
    return points


def fit_hinge(points: list[Point]) -> tuple[float, float]:
    """Least squares for (s_below, s_above) with no intercept: the hinge passes through the reference."""
    design = np.array([[min(p.log_ratio_batch, 0.0), max(p.log_ratio_batch, 0.0)] for p in points])
    target = np.array([p.log_ratio_lr for p in points])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return float(solution[0]), float(solution[1])


def hinge(log_ratio: float, s_below: float, s_above: float) -> float:
    return s_below * min(log_ratio, 0.0) + s_above * max(log_ratio, 0.0)


def bootstrap(points: list[Point], seed: int = 0) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    cells = sorted({p.cell for p in points})
    by_cell = {c: [p for p in points if p.cell == c] for c in cells}
    fits = []
    for _ in range(BOOTSTRAP):
        sample = [p for c in rng.choices(cells, k=len(cells)) for p in by_cell[c]]
        fits.append(fit_hinge(sample))
    return fits


def arch_points(sweeps: Path, arch: str) -> list[Point]:
    cells = group_cells(read_runs(sweeps / f"steplaw_{arch}.csv"))
    return [p for cell in cells for p in cell_points(cell)]


def law_toml(arch: str, points: list[Point], fit: tuple[float, float], boot: list[tuple[float, float]]) -> str:
    lo = [b[0] for b in boot]
    hi = [b[1] for b in boot]
    residuals = [p.log_ratio_lr - hinge(p.log_ratio_batch, *fit) for p in points]
    rms = math.sqrt(statistics.fmean(r * r for r in residuals))
    ratios = [math.exp(p.log_ratio_batch) for p in points]

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q))

    return f'''schema_version = 1
id = "lrpredict-batch-{arch}-2026"
title = "lrpredict conditional law ({arch}): optimal LR at a batch other than the optimal batch"
citation = "lrpredict (2026), fitted on the Step Law sweeps (arXiv 2503.04715; step-law/steplaw data, commit 32a8f4cc); docs/log.md 2026-11-24"
architectures = ["{arch}"]
batch_policy = "fixed"
notes = """Moves an LR that is optimal at the optimal batch B_opt to the user's batch B: \
η*(B) = η*(B_opt)·(B/B_opt)^s, with s = s_below when B < B_opt and s_above when B > B_opt. Fitted by \
benchmarks/fit_conditional_batch.py; validated leave-one-model-size-out by benchmarks/conditional_regret.py \
(docs/benchmarks.md). Below B_opt the LR falls with the batch (as the square-root rule predicts for Adam); above \
it the optimum barely moves."""
domain_note = "batch ratios B/B_opt of the fit; N and D of the Step Law sweeps ({arch})"

[conventions]
n = "{"active" if arch == "moe" else "total"}"
n_note = "N does not enter; the reference LR and B_opt come from the main law"
b = "tokens per optimizer step; B_opt is the main law's optimal batch"

[domain]
B_ratio = [{min(ratios):.4g}, {max(ratios):.4g}]

[schedule]
kind = "unknown"
description = "as in the Step Law sweeps: warmup, then decay to min_lr = 1e-5"

[lr_batch]
form = "batch_hinge"
s_below = {{ value = {fit[0]:.4f}, status = "confirmed", note = "lrpredict fit; bootstrap 90% interval [{pct(lo, 5):.3f}, {pct(lo, 95):.3f}]" }}
s_above = {{ value = {fit[1]:.4f}, status = "confirmed", note = "lrpredict fit; bootstrap 90% interval [{pct(hi, 5):.3f}, {pct(hi, 95):.3f}]" }}

[provenance]
data = "../shared/data/sweeps/steplaw_{arch}.csv"
fit = "least squares on ln(η*(B)/η_opt) vs ln(B/B_opt), hinge at 0, no intercept; η* from Eq.2 vertex per curve"
points = {len(points)}
cells = {len({p.cell for p in points})}
residual_rms_ln_lr = {rms:.4f}
bootstrap = "{BOOTSTRAP} resamples of cells, seed 0"
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    for arch in ("dense", "moe"):
        points = arch_points(args.sweeps, arch)
        fit = fit_hinge(points)
        boot = bootstrap(points)
        print(f"{arch}: {len(points)} points, s_below={fit[0]:.3f}, s_above={fit[1]:.3f}")
        if args.write:
            (OUT_DIR / f"lrpredict-batch-{arch}-2026.toml").write_text(law_toml(arch, points, fit, boot))


if __name__ == "__main__":
    main()
