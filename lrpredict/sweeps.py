"""Recorded LR × batch sweeps (the CSV format of ../shared/data/sweeps) and loss regret along them.

Used to score laws (benchmarks/law_regret.py), to fit lrpredict's own laws, and as recorded probes for the
calibration replay backend.  Pure Python: the predictor path must not need numpy.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Run:
    arch: str
    n: float
    n_active: float
    tokens: float
    batch_tokens: float
    seq_len: int
    lr: float
    loss: float
    diverged: bool
    d_model: int
    n_layers: int
    d_ffn: int
    n_heads: int
    n_experts: int = 0
    top_k: int = 0


@dataclass
class Cell:
    """All runs of one model (N, N_active) at one horizon D, over LR × batch."""

    n: float
    n_active: float
    tokens: float
    arch: str
    runs: list[Run] = field(default_factory=list)

    @property
    def key(self) -> tuple[float, float, float]:
        return (self.n, self.n_active, self.tokens)

    def batches(self) -> list[float]:
        return sorted({r.batch_tokens for r in self.runs})

    def curve(self, batch_tokens: float) -> list[tuple[float, float]]:
        """(lr, loss) at one batch, sorted by LR, diverged runs left out."""
        points = {r.lr: r.loss for r in self.runs if r.batch_tokens == batch_tokens and not r.diverged}
        return sorted(points.items())

    def best(self) -> Run:
        return min((r for r in self.runs if not r.diverged), key=lambda r: r.loss)

    def best_at(self, batch_tokens: float) -> tuple[float, float]:
        """(lr, loss) of the best recorded run at one batch."""
        return min(self.curve(batch_tokens), key=lambda p: p[1])


def _int(text: str) -> int:
    return int(float(text)) if text not in ("", "nan") else 0


def read_runs(path: str | Path) -> list[Run]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            Run(
                arch=row["arch"],
                n=float(row["N"]),
                n_active=float(row["N_active"]),
                tokens=float(row["D"]),
                batch_tokens=float(row["batch_tokens"]),
                seq_len=_int(row["seq_len"]),
                lr=float(row["lr"]),
                loss=float(row["final_loss"]),
                diverged=row["diverged"].strip().lower() == "true" or not math.isfinite(float(row["final_loss"])),
                d_model=_int(row["hidden"]),
                n_layers=_int(row["n_layers"]),
                d_ffn=_int(row["ffn_hidden"]),
                n_heads=_int(row["n_heads"]),
                n_experts=_int(row.get("moe_experts", "")),
                top_k=_int(row.get("moe_topk", "")),
            )
            for row in csv.DictReader(handle)
        ]


def group_cells(runs: list[Run]) -> list[Cell]:
    cells: dict[tuple[float, float, float], Cell] = {}
    for run in runs:
        key = (run.n, run.n_active, run.tokens)
        cells.setdefault(key, Cell(run.n, run.n_active, run.tokens, run.arch)).runs.append(run)
    return sorted(cells.values(), key=lambda c: c.key)


def interpolate_loss(curve: list[tuple[float, float]], lr: float) -> tuple[float, bool]:
    """Loss at ``lr`` by linear interpolation in log LR; (loss, inside).  Outside the recorded LRs the nearest
    end's loss is returned with inside=False: a lower bound on the true regret there."""
    if not curve:
        raise ValueError("empty curve")
    x = math.log(lr)
    xs = [math.log(p[0]) for p in curve]
    if x <= xs[0]:
        return curve[0][1], x >= xs[0] - 1e-12
    if x >= xs[-1]:
        return curve[-1][1], x <= xs[-1] + 1e-12
    for i in range(len(xs) - 1):
        if xs[i] <= x <= xs[i + 1]:
            t = (x - xs[i]) / (xs[i + 1] - xs[i])
            return curve[i][1] + t * (curve[i + 1][1] - curve[i][1]), True
    raise AssertionError("unreachable: x lies between the ends")


def nearest_batch(cell: Cell, batch_tokens: float) -> float:
    return min(cell.batches(), key=lambda b: abs(math.log(b / batch_tokens)))


def regrets(cell: Cell, lr: float, batch_tokens: float) -> tuple[float, float, bool]:
    """(LR regret, joint regret, inside the recorded LRs) of predicting (lr, batch) for ``cell``, as relative losses.

    LR regret: loss at ``lr`` along the curve of the cell's best batch, against that curve's best.  Joint regret:
    loss at ``lr`` along the recorded batch nearest ``batch_tokens``, against the cell's best over all batches.
    """
    best = cell.best()
    best_curve = cell.curve(best.batch_tokens)
    loss, inside = interpolate_loss(best_curve, lr)
    lr_regret = loss / min(p[1] for p in best_curve) - 1
    joint_loss, joint_inside = interpolate_loss(cell.curve(nearest_batch(cell, batch_tokens)), lr)
    return lr_regret, joint_loss / best.loss - 1, inside and joint_inside
