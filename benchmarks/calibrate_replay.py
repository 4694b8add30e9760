"""Calibrate on the smaller model sizes of a recorded sweep (replay) and predict the optimum of the largest.

    python benchmarks/calibrate_replay.py [--sweeps DIR] [--lrs 5] [--batches 3]

Probe plan per cell (N, D) of every size but the largest: ``--batches`` recorded batches nearest Step Law's B_opt,
and at each ``--lrs`` recorded LRs nearest its LR prediction (the bundled law centres the grid, as the planner
does).  Fit: Eq.2 per (N, D, B), B_opt and η* per (N, D), Eq.6 over cells, B_opt = c·N^a·D^b.  Score on every cell
of the largest size: joint regret (loss at the predicted LR on the recorded batch nearest the predicted batch,
against the cell's best over the whole grid) and the probe FLOPs (6·N·D per run) as a fraction of the whole
recorded grid's.  Step Law's own prediction is shown for reference (in-sample on these data).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from lrpredict.calibrate.fit import fit_calibration
from lrpredict.calibrate.replay import ReplayBackend
from lrpredict.registry import load_law
from lrpredict.sweeps import regrets

DEFAULT_SWEEPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sweeps"


def run(sweeps: Path, arch: str, n_lrs: int, n_batches: int, max_tokens: float = float("inf")) -> dict:
    backend = ReplayBackend(sweeps / f"steplaw_{arch}.csv")
    sizes = backend.sizes()
    steplaw = load_law("steplaw-2025")
    probes = backend.plan(sizes[:-1], steplaw, lrs=n_lrs, batches=n_batches, max_tokens=max_tokens)
    fit = fit_calibration([backend.run(p) for p in probes], arch=arch)  # the arch's default prior (MoE: ling-2025)
    ours = backend.held_out_regret(fit, sizes[-1:])
    if not ours:
        raise ValueError("no joint LR and batch law")
    reference = [
        regrets(cell, steplaw.lr.evaluate(v), steplaw.batch.evaluate(v))[1]
        for cell in backend.cells_of(sizes[-1])
        for v in [{"N": cell.n, "D": cell.tokens}]
    ]
    return {
        "arch": arch,
        "probes": len(probes),
        "flops_fraction": backend.probe_flops(probes) / backend.grid_flops(),
        "regret_median": statistics.median(ours),
        "regret_max": max(ours),
        "steplaw_median": statistics.median(reference),
        "target_cells": len(ours),
        "law": fit.lr_law,
    }


def row(r: dict, lrs: int, batches: int, max_tokens: float) -> str:
    law = r["law"]
    return (
        f"| {r['arch']} | {lrs} | {batches} | {max_tokens:.3g} | {r['probes']} | {r['flops_fraction']:.2%} | "
        f"{r['target_cells']} | {r['regret_median']:.3%} | {r['regret_max']:.3%} | {r['steplaw_median']:.3%} | "
        f"η = {law.c:.3g}·N^{law.alpha:.3f}·D^{law.beta:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    parser.add_argument("--lrs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--max-tokens", type=float, default=float("inf"), help="probe only cells with D ≤ this")
    parser.add_argument("--sensitivity", action="store_true", help="every plan of 3-5 LRs, 1-3 batches, 4 caps")
    args = parser.parse_args()
    print(
        "| arch | LRs | batches | D cap | probes | probe FLOPs / grid | target cells | regret median | regret max "
        "| Step Law median (in-sample) | fitted law |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    settings = (
        [(lrs, b, cap) for lrs in (3, 4, 5) for b in (1, 2, 3) for cap in (float("inf"), 5e10, 2e10, 4e9)]
        if args.sensitivity
        else [(args.lrs, args.batches, args.max_tokens)]
    )
    for arch in ("dense", "moe"):
        for lrs, batches, cap in settings:
            try:
                print(row(run(args.sweeps, arch, lrs, batches, cap), lrs, batches, cap))
            except ValueError as exc:  # one batch per cell: no batch law to predict with
                print(f"| {arch} | {lrs} | {batches} | {cap:.3g} | no law: {type(exc).__name__} | | | | | | |")


if __name__ == "__main__":
    main()
