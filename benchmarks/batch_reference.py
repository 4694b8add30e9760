"""Probes and target at one shared batch: move the probes' optima to B_opt and back, or keep them at their batch?

    python benchmarks/batch_reference.py [--sweeps DIR] [--lrs 7]

Issue 19's end-to-end run C (docs/benchmarks.md) ran its probes and its target at one batch, 1,024 tokens.  The
anchored fit moved each probe optimum to the prior's B_opt with lrpredict's conditional batch law, and ``suggest``
moved the target's prediction back to 1,024 tokens with the same law: a ×0.38 move at the target (its B_opt is ~4×
the probes'), where the measured optimum sat within 5% of the law before that move.  This benchmark asks the same
question of the recorded Step Law sweeps, at every batch they share across cells:

* probes: the smaller model sizes at their shorter horizons, the recorded LRs at one batch B (``--lrs`` nearest the
  prior's prediction at B, as the planner centres them); fitted with lrpredict.calibrate.fit.fit_calibration;
* targets: every other cell, at the same batch B; the measured η* is Eq.2 through the five recorded points around
  the best (benchmarks/fit_conditional_batch.py), the regret the loss at the predicted LR interpolated along the
  recorded curve at B, relative to that curve's best;
* methods: the anchored fit with its optima moved to B_opt and moved back at the target (``batch_reference``
  "optimal", the code of run C), the anchored fit with its optima kept at B ("probes"), the free fit (no prior, no
  move), and the prior alone moved to B by the conditional batch law (what ``--law steplaw-2025`` gives at B).

Step Law's B_opt law and lrpredict's conditional batch law were both fitted on these sweeps, so every method that
uses them is in-sample here: a fair test of the round trip is a stack unlike Step Law's (run C).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from lrpredict.calibrate.fit import Observation, fit_calibration
from lrpredict.calibrate.prior import Prior, ln_batch_factor, resolve_prior
from lrpredict.calibrate.validation import predict
from lrpredict.sweeps import Cell, group_cells, interpolate_loss, read_runs

from fit_conditional_batch import DEFAULT_SWEEPS, optimal_lr

METHODS = ("anchored, round trip via B_opt", "anchored, kept at the probes' batch", "free fit", "prior alone")


def size(cell: Cell) -> float:
    """The N a calibrated law counts: dense total, MoE active (lrpredict.calibrate conventions)."""
    return cell.n_active if cell.arch == "moe" else cell.n


def split(cells: list[Cell]) -> tuple[list[Cell], list[Cell]]:
    """Probe cells: the two smallest sizes at all but their longest horizon(s); targets: the rest."""
    sizes = sorted({size(c) for c in cells})
    horizons = sorted({c.tokens for c in cells})
    cut = horizons[len(horizons) // 2] if len(horizons) > 3 else horizons[1]
    probes = [c for c in cells if size(c) in sizes[:2] and c.tokens <= cut]
    return probes, [c for c in cells if c not in probes]


def observations(
    cells: list[Cell], batch: float, centre: dict[tuple[float, float], float], lrs: int
) -> list[Observation]:
    out = []
    for cell in cells:
        curve = cell.curve(batch)
        ln_centre = math.log(centre[(size(cell), cell.tokens)])
        chosen = sorted(curve, key=lambda p: abs(math.log(p[0]) - ln_centre))[:lrs]
        out += [Observation(size(cell), cell.tokens, lr, loss, batch) for lr, loss in chosen]
    return out


def prior_at_batch(prior: Prior, n: float, tokens: float, batch: float, arch: str) -> float:
    """The prior's η* at (N, D), moved to ``batch`` by lrpredict's conditional batch law."""
    return math.exp(prior.ln_value(n, tokens) + ln_batch_factor(prior, n, tokens, batch, arch))


def predictions(probes: list[Cell], batch: float, arch: str, lrs: int, targets: list[Cell]) -> dict[str, list]:
    prior = resolve_prior("default", arch)
    centre = {(size(c), c.tokens): prior_at_batch(prior, size(c), c.tokens, batch, arch) for c in probes}
    obs = observations(probes, batch, centre, lrs)
    fits = {
        METHODS[0]: fit_calibration(obs, prior=prior, arch=arch, bootstrap=0, batch_reference="optimal"),
        METHODS[1]: fit_calibration(obs, prior=prior, arch=arch, bootstrap=0, batch_reference="probes"),
        METHODS[2]: fit_calibration(obs, prior=None, arch=arch, bootstrap=0),
    }
    out: dict[str, list] = {m: [] for m in METHODS}
    for cell in targets:
        n, d = size(cell), cell.tokens
        for method, fit in fits.items():
            lr = predict(fit, n, d, batch, arch).lr if fit.lr_law is not None else math.nan
            out[method].append((cell, lr))
        out[METHODS[3]].append((cell, prior_at_batch(prior, n, d, batch, arch)))
    return out


def score(cell: Cell, batch: float, lr: float) -> tuple[float, float] | None:
    """(|ln η error| against Eq.2's η* at ``batch``, loss regret along the recorded curve) or None (unbracketed)."""
    curve = cell.curve(batch)
    measured = optimal_lr(curve)
    if measured is None or not math.isfinite(lr):
        return None
    loss, _ = interpolate_loss(curve, lr)
    return abs(math.log(lr / measured)), loss / min(p[1] for p in curve) - 1


def run(sweeps: Path, arch: str, lrs: int) -> list[str]:
    cells = group_cells(read_runs(sweeps / f"steplaw_{arch}.csv"))
    probes, targets = split(cells)
    batches = sorted(set.intersection(*(set(c.batches()) for c in cells)))
    rows = []
    totals: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    for batch in batches:
        scored = {
            m: [s for c, lr in p if (s := score(c, batch, lr)) is not None]
            for m, p in predictions(probes, batch, arch, lrs, targets).items()
        }
        for m, s in scored.items():
            totals[m] += s
            if s:
                rows.append(
                    f"| {arch} | {batch:,.0f} | {m} | {len(s)} | {statistics.median(e for e, _ in s):.2f} | "
                    f"{statistics.median(r for _, r in s):.3%} | {max(r for _, r in s):.3%} |"
                )
    for m, s in totals.items():
        rows.append(
            f"| {arch} | **all** | {m} | {len(s)} | {statistics.median(e for e, _ in s):.2f} | "
            f"{statistics.median(r for _, r in s):.3%} | {max(r for _, r in s):.3%} |"
        )
    head = [
        f"{arch}: {len(probes)} probe cells (sizes {sorted({f'{size(c):.3g}' for c in probes})}, D ≤ "
        f"{max(c.tokens for c in probes):.3g}), {len(targets)} target cells, batches shared by every cell: "
        f"{', '.join(f'{b:,.0f}' for b in batches)}",
        "",
        "| arch | batch (tokens) | method | target cells bracketed | median \\|ln η err\\| | median regret | max regret |",
        "|---|---|---|---|---|---|---|",
    ]
    return head + rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    parser.add_argument("--lrs", type=int, default=7)
    args = parser.parse_args()
    for arch in ("dense", "moe"):
        print("\n".join(run(args.sweeps, arch, args.lrs)), end="\n\n")


if __name__ == "__main__":
    main()
