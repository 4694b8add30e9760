"""Score every bundled law on the Step Law sweeps by loss regret at its predicted LR (and batch).

    python benchmarks/law_regret.py [--sweeps ../shared/data/sweeps] [--markdown]

For each (N, D) cell: *LR regret* interpolates the loss at the predicted LR along the curve of the cell's best
batch (log-LR linear) and compares it with that curve's best; *joint regret* takes the curve of the recorded batch
nearest the law's batch and compares with the cell's best over all batches.  A predicted LR outside the recorded
LRs is clamped to the nearest end (counted in 'outside', a lower bound on its regret).  The row ``default`` is
``suggest`` without a law (lrpredict.default_blend: Step Law, a compute law, or a blend of the two per cell).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from lrpredict import ModelConfig, suggest
from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile
from lrpredict.registry import laws
from lrpredict.sweeps import Cell, group_cells, read_runs, regrets

DEFAULT_SWEEPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sweeps"


def cell_config(cell: Cell, batch_tokens: float | None = None) -> ModelConfig:
    run = cell.runs[0]
    return ModelConfig(
        arch=cell.arch,
        params=cell.n,
        active_params=cell.n_active if cell.arch == "moe" else None,
        tokens=cell.tokens,
        n_layers=run.n_layers,
        d_model=run.d_model,
        seq_len=run.seq_len,
        batch_tokens=batch_tokens,
    )


def law_table(sweeps: Path) -> list[dict]:
    rows = []
    for arch in ("dense", "moe"):
        cells = group_cells(read_runs(sweeps / f"steplaw_{arch}.csv"))
        candidates: list[LawFile | None] = [law for law in laws() if not law.relative and law.lr is not None]
        for law in [*candidates, None]:
            name = "default" if law is None else law.id
            lr_regrets, joint_regrets, outside = [], [], 0
            try:
                for cell in cells:
                    s = suggest(cell_config(cell), law)
                    lr_r, joint_r, inside = regrets(cell, s.lr, s.batch_tokens)
                    lr_regrets.append(lr_r)
                    joint_regrets.append(joint_r)
                    outside += not inside
            except LrpredictError as exc:
                rows.append({"arch": arch, "law": name, "error": str(exc)})
                continue
            rows.append(
                {
                    "arch": arch,
                    "law": name,
                    "cells": len(cells),
                    "lr_median": statistics.median(lr_regrets),
                    "lr_max": max(lr_regrets),
                    "joint_median": statistics.median(joint_regrets),
                    "joint_max": max(joint_regrets),
                    "outside": outside,
                    "fitted_on": "(per cell)" if law is None else ",".join(law.architectures),
                }
            )
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| arch | law | fitted on | cells | LR regret median | LR regret max | joint regret median | joint regret max | LR outside grid |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['law']} | | | {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['arch']} | {r['law']} | {r['fitted_on']} | {r['cells']} | {r['lr_median']:.3%} | {r['lr_max']:.3%} | "
            f"{r['joint_median']:.3%} | {r['joint_max']:.3%} | {r['outside']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    args = parser.parse_args()
    print(to_markdown(law_table(args.sweeps)))


if __name__ == "__main__":
    main()
