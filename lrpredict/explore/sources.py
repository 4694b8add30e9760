"""What the explorer shows besides the suggestion: every law's curves, the published runs, the calibrated laws and
the recorded Step Law sweeps, each computed by the Python API (plain data; charts.py draws it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.explore.grid import MOE_RATIOS, N_RANGE, config_at
from lrpredict.laws import LawFile
from lrpredict.registry import bundled_laws, load_law, user_laws
from lrpredict.runs import published_runs
from lrpredict.suggest import Suggestion, _suggest

HORIZONS = (1e9, 1e10, 1e11, 1e12, 1e13, 1e14)  # D of the law curves, one a decade over the grid
CURVE_POINTS_PER_DECADE = 8
CHART_RATIO = 1 / 8  # MoE charts: N_active = N/8 (the published MoE runs lie at 5–16%)
LAW_QUANTITIES = ("lr", "lr_low", "lr_high", "batch", "weight_decay")


def law_suggestion(config: ModelConfig, law: LawFile) -> Suggestion | None:
    """``law``'s suggestion as ``applicable_law_lrs`` computes it (M ≈ 6·N_active without a shape); None where
    the law cannot answer."""
    try:
        return _suggest(config, law, approximate_m=True, with_runs=False)
    except LrpredictError:
        return None


def chart_laws(arch: str, requested: tuple[str, ...] = ()) -> list[LawFile]:
    """``requested`` (ids or files), else every absolute LR law fitted on ``arch``: bundled, then the user's."""
    if requested:
        return [load_law(law_id) for law_id in requested]
    found = [*bundled_laws(), *user_laws()]
    seen: set[str] = set()
    out = []
    for law in found:
        if law.lr is None or law.relative or arch not in law.architectures or law.id in seen:
            continue
        seen.add(law.id)
        out.append(law)
    return out


@dataclass
class LawGrid:
    """One law on N (CURVE_POINTS_PER_DECADE a decade) × HORIZONS × the MoE ratios, at its optimal batch:
    log10 values (None: the law cannot answer there) and whether each point is inside its fitted domain."""

    law: LawFile
    n: list[float]
    ratios: list[float]
    values: dict[str, list[float | None]] = field(default_factory=dict)
    inside: list[bool] = field(default_factory=list)

    def curve(self, ratio_index: int, horizon_index: int, q: str) -> list[tuple[float, float | None, bool]]:
        """(N, value, inside) along N at one ratio and horizon, linear units."""
        start = (ratio_index * len(HORIZONS) + horizon_index) * len(self.n)
        out = []
        for k, n in enumerate(self.n):
            v = self.values[q][start + k]
            out.append((n, None if v is None else 10**v, self.inside[start + k]))
        return out


def law_grid(arch: str, law: LawFile) -> LawGrid:
    low, high = (math.log10(v) for v in N_RANGE)
    count = round((high - low) * CURVE_POINTS_PER_DECADE)
    ns = [10 ** (low + (high - low) * i / count) for i in range(count + 1)]
    ratios = list(MOE_RATIOS) if arch == "moe" else [1.0]
    grid = LawGrid(law=law, n=ns, ratios=ratios, values={q: [] for q in LAW_QUANTITIES})
    for ratio in ratios:
        for d in HORIZONS:
            for n in ns:
                s = law_suggestion(config_at(arch, ratio, n, d, None), law)
                linear = None if s is None else (s.lr, s.lr_range.low, s.lr_range.high, s.batch_tokens, s.weight_decay)
                for i, q in enumerate(LAW_QUANTITIES):
                    grid.values[q].append(None if linear is None else round(math.log10(linear[i]), 6))
                grid.inside.append(s is not None and s.domain == "inside")
    return grid


def runs_data(arch: str) -> list[dict[str, Any]]:
    """The ledger's runs of ``arch`` (lrpredict runs): the teams' choices, not measured optima."""
    return [
        {
            "id": r.id,
            "model": r.model,
            "params": r.params,
            "active_params": r.active_params,
            "tokens": r.tokens,
            "batch": r.batch_tokens,
            "lr": r.peak_lr,
            "weight_decay": r.weight_decay,
            "source": r.source,
            "status": r.status,
        }
        for r in published_runs()
        if r.arch == arch
    ]


def calibrated_data(arch: str) -> list[dict[str, Any]]:
    """Every installed calibrated law of ``arch`` (a user law with a posterior) and its validation table, if any
    (``validation`` is read when the law file format has it)."""
    out = []
    for law in user_laws():
        if law.posterior is None or arch not in law.architectures:
            continue
        validation = getattr(law, "validation", None)
        if hasattr(validation, "model_dump"):
            validation = validation.model_dump(mode="json")
        p = law.posterior
        out.append(
            {
                "id": law.id,
                "title": law.title,
                "status": law.status,
                "prior": p.prior,
                "cells": p.cells,
                "unbracketed": p.unbracketed_cells,
                "probe_batch": p.probe_batch_tokens,
                "domain": {k: list(v) for k, v in law.domain.items()},
                "validation": validation or None,
            }
        )
    return out


def find_sweeps(explicit: str | Path | None) -> Path | None:
    """The Step Law sweeps folder: ``explicit``, else the source checkout's tests/data/sweeps (an installed wheel
    ships none: lrpredict.sweeps reads CSVs the user has, ../shared/data/sweeps in this project)."""
    if explicit is not None:
        return Path(explicit)
    checkout = Path(__file__).resolve().parents[2] / "tests" / "data" / "sweeps"
    return checkout if checkout.is_dir() else None


def sweep_cells(folder: Path | None, arch: str, laws: list[LawFile]) -> list[dict[str, Any]]:
    """Every recorded (N, D) cell of the Step Law sweep of ``arch``: loss over LR × batch, the recorded optimum, and
    each law's LR and optimal batch at the cell (the default law first, as suggest picks it)."""
    from lrpredict.suggest import suggest
    from lrpredict.sweeps import group_cells, read_runs

    path = None if folder is None else folder / f"steplaw_{arch}.csv"
    if path is None or not path.is_file():
        return []
    out = []
    for cell in group_cells(read_runs(path)):
        lrs = sorted({r.lr for r in cell.runs})
        batches = cell.batches()
        loss = {(r.batch_tokens, r.lr): r.loss for r in cell.runs if not r.diverged}
        best = cell.best()
        config = config_at(arch, cell.n_active / cell.n, cell.n, cell.tokens, None)
        predictions = [("default: " + (s := suggest(config)).law, s.lr, s.batch_tokens)]
        for law in laws:
            at = law_suggestion(config, law)
            if at is not None:
                predictions.append((law.id, at.lr, at.batch_tokens))
        out.append(
            {
                "n": cell.n,
                "n_active": cell.n_active,
                "tokens": cell.tokens,
                "lrs": lrs,
                "batches": batches,
                "loss": [[loss.get((b, lr)) for lr in lrs] for b in batches],
                "best": {"lr": best.lr, "batch": best.batch_tokens, "loss": best.loss},
                "predictions": predictions,
            }
        )
    return out
