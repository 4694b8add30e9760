"""Seed-to-seed loss noise of one calibration probe at several horizons: how long must a probe train before its LR
matters more than its seed?

    python benchmarks/seed_noise.py --plan WORK/cal-anchored/plan.json --width 64 --lr 0.00462 \
        --horizons 262144,524288,1048576 --seeds 0,1,2

Takes the fit probe of ``--width`` from a calibration's ``plan.json`` (same data, trainer, batch and schedule), sets
its LR and horizons (WSD decay branches off one stable phase, so one run gives every horizon), and trains it once per
seed with calibrate's own trainer (``train_probe``).  Prints the held-out loss per seed and horizon, and the sd over
seeds.  The end-to-end CPU run of 2026-12-04 measured 0.46 nats at 262K tokens (docs/log.md): 9 of its 10 cells
were flat within that noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=Path, required=True, help="a calibration folder's plan.json")
    parser.add_argument("--width", type=int, required=True, help="d_model of the plan's probe to replicate")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--horizons", required=True, help="comma-separated token counts")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from lrpredict.calibrate.spec import ProbeSpec
    from lrpredict.calibrate.train import train_probe

    torch.set_num_threads(args.threads)
    plan = json.loads(args.plan.read_text())
    base = next(ProbeSpec.model_validate(p) for p in plan["probes"] if p["arch"]["d_model"] == args.width)
    horizons = tuple(int(h) for h in args.horizons.split(","))
    losses: dict[int, list[float]] = {h: [] for h in horizons}
    for seed in (int(s) for s in args.seeds.split(",")):
        spec = base.model_copy(update={"lr": args.lr, "horizons": horizons, "seed": seed})
        t0 = time.time()
        result = train_probe(spec)
        row = {b.tokens: b.eval_loss for b in result.branches}
        print(f"seed {seed}: " + ", ".join(f"{h}: {row.get(h)}" for h in horizons) + f" ({time.time() - t0:.0f}s)")
        for h in horizons:
            if row.get(h) is not None:
                losses[h].append(row[h])
    print("| horizon (tokens) | losses by seed | sd over seeds (nats) |")
    print("|---|---|---|")
    for h in horizons:
        sd = statistics.stdev(losses[h]) if len(losses[h]) > 1 else float("nan")
        print(f"| {h:,} | {', '.join(f'{v:.3f}' for v in losses[h])} | {sd:.3f} |")


if __name__ == "__main__":
    main()
