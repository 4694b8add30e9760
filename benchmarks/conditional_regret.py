"""Leave-one-model-size-out validation of lrpredict's conditional law (optimal LR at a non-optimal batch).

    python benchmarks/conditional_regret.py [--sweeps DIR]

For each model size of the Step Law sweeps (dense: N; MoE: N_active), the hinge of
benchmarks/fit_conditional_batch.py is refitted without that size and applied to its cells.  At every recorded
batch within 4× of the reference batch we interpolate the loss at the predicted LR along that batch's curve and
report the regret against the curve's best recorded loss.  Two anchors:

* oracle: reference (B_opt, η_opt) from the held-out cell's own best batch, isolating the conditional law;
* law: reference from Step Law (η and B_opt predicted, as ``suggest`` does; Step Law is in-sample here).

Each is compared with ignoring the batch (the reference LR used at every batch).
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from lrpredict.registry import load_law
from lrpredict.sweeps import group_cells, interpolate_loss, read_runs

from fit_conditional_batch import DEFAULT_SWEEPS, arch_points, fit_hinge, hinge, optimal_lr

WITHIN = 4.0


def regrets(sweeps: Path, arch: str) -> dict[str, list[float]]:
    cells = group_cells(read_runs(sweeps / f"steplaw_{arch}.csv"))
    points = arch_points(sweeps, arch)
    steplaw = load_law("steplaw-2025")
    out: dict[str, list[float]] = {
        "oracle+hinge": [],
        "oracle, batch ignored": [],
        "law+hinge": [],
        "law, batch ignored": [],
    }
    for size in sorted({c.n_active for c in cells}):
        s_below, s_above = fit_hinge([p for p in points if p.n_active != size])
        for cell in (c for c in cells if c.n_active == size):
            best = cell.best()
            eta_cell = optimal_lr(cell.curve(best.batch_tokens)) or best.lr
            values = {"N": cell.n, "D": cell.tokens}
            eta_law, batch_law = steplaw.lr.evaluate(values), steplaw.batch.evaluate(values)
            for batch in cell.batches():
                curve = cell.curve(batch)
                if len(curve) < 3:
                    continue
                floor = min(loss for _, loss in curve)

                def regret(lr: float, curve=curve, floor=floor) -> float:
                    return interpolate_loss(curve, lr)[0] / floor - 1

                if 1 / WITHIN <= batch / best.batch_tokens <= WITHIN:
                    r = math.log(batch / best.batch_tokens)
                    out["oracle+hinge"].append(regret(eta_cell * math.exp(hinge(r, s_below, s_above))))
                    out["oracle, batch ignored"].append(regret(eta_cell))
                if 1 / WITHIN <= batch / batch_law <= WITHIN:
                    r = math.log(batch / batch_law)
                    out["law+hinge"].append(regret(eta_law * math.exp(hinge(r, s_below, s_above))))
                    out["law, batch ignored"].append(regret(eta_law))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    args = parser.parse_args()
    print("| arch | anchor | curves | median regret | p90 regret | max regret |")
    print("|---|---|---|---|---|---|")
    for arch in ("dense", "moe"):
        for name, values in regrets(args.sweeps, arch).items():
            values = sorted(values)
            p90 = values[int(0.9 * (len(values) - 1))]
            print(
                f"| {arch} | {name} | {len(values)} | {statistics.median(values):.3%} | {p90:.3%} | {max(values):.3%} |"
            )


if __name__ == "__main__":
    main()
