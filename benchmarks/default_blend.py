"""How smooth the default is, and what other blend ramps would cost (issue 20, item 5; lrpredict.default_blend).

    python benchmarks/default_blend.py [--step 0.025] [--ramps] [--sweeps ../shared/data/sweeps]

Smoothness: over 1e7 ≤ N ≤ 1e12, 1e9 ≤ D ≤ 1e14 (every ``--step`` decades), each point against the points 1% larger
in N and in D: the largest change of the default's peak LR, batch or weight decay (no batch given; MoE with the
active fractions listed).  Then the old switch's cliffs, as 1% steps along the lines where they were.
``--ramps``: for other ends of the blend, the default's median sweep LR regret, its ledger scores and the largest
1% step inside the ramp (production_runs.py's scorers).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from production_runs import default_policy, octaves, summary, sweep_regret

from lrpredict import ModelConfig
from lrpredict import default_blend as blend
from lrpredict.registry import load_law
from lrpredict.runs import published_runs
from lrpredict.suggest import _suggest

from law_regret import DEFAULT_SWEEPS

ACTIVE = (0.05, 0.125, 0.3)  # MoE active fractions: DeepSeek-V3 37/671, OLMoE 1.3/6.9, Mixtral 13/47 (about)
STEPLAW = load_law("steplaw-2025")


def logs(arch: str, n: float, d: float, active: float = 0.125) -> np.ndarray:
    config = ModelConfig(arch=arch, params=n, active_params=n * active if arch == "moe" else None, tokens=d)
    s = _suggest(config, None, with_runs=False)
    return np.log([s.lr, s.batch_tokens, s.weight_decay])


def _in_ramp(n: float, d: float) -> bool:
    """Whether (N, D) lies where the blend's weights move (slightly widened)."""
    distance = max(STEPLAW.domain_distance({"N": n, "D": d}).values())
    return 0.95 * blend.BLEND_START <= distance <= 1.05 * blend.BLEND_END


def worst_step(arch: str, step: float, active: float = 0.125, ring_only: bool = False) -> tuple[float, tuple]:
    """The largest |Δ ln| of LR, batch or λ between a point and the points 1% larger in N and in D."""
    worst: tuple[float, tuple] = (0.0, ())
    for a in np.arange(7, 12.001, step):
        for b in np.arange(9, 14.001, step):
            n, d = 10**a, 10**b
            if ring_only and not _in_ramp(n, d):
                continue
            here = logs(arch, n, d, active)
            for other in ((n * 1.01, d), (n, d * 1.01)):
                if other[0] <= 1e12 and other[1] <= 1e14:
                    change = float(np.abs(logs(arch, *other, active) - here).max())
                    worst = max(worst, (change, (f"N={n:.3g}", f"D={d:.3g}")))
    return worst


def along(arch: str, start: tuple[float, float], stop: tuple[float, float]) -> float:
    """The largest ratio of LR, batch or λ between neighbouring points ~1% apart from ``start`` to ``stop``."""
    steps = max(1, math.ceil(max(abs(math.log(b / a)) for a, b in zip(start, stop, strict=True)) / math.log(1.01)))
    points = [tuple(a * (b / a) ** (k / steps) for a, b in zip(start, stop, strict=True)) for k in range(steps + 1)]
    values = np.array([logs(arch, *p) for p in points])
    return math.exp(float(np.abs(np.diff(values, axis=0)).max()))


CLIFFS = [  # the cliffs of the old switch at 2.5×
    ("dense N = 1B, D 2e11–3e11", "dense", (1e9, 2e11), (1e9, 3e11)),
    ("dense D = 20·N, N 2.2e9–3.3e9", "dense", (2.2e9, 4.4e10), (3.3e9, 6.6e10)),
    ("MoE (1/8 active) D = 40B, N 2.2e9–3.4e9", "moe", (2.2e9, 4e10), (3.4e9, 4e10)),
]


def ramps(sweeps: Path) -> None:
    ledger = list(published_runs())
    shipped = blend.BLEND_START, blend.BLEND_END
    print(
        "| ramp | dense sweep median | MoE sweep median | dense ledger within 2× (all / ≥1B) | worst step dense / MoE |"
    )
    print("|---|---|---|---|---|")
    for ends in (shipped, (2.0, 2.5), (1.5, 2.9), (1.0, 2.9), (2.0, 4.0), (2.0, 6.0)):
        blend.BLEND_START, blend.BLEND_END = ends
        pairs = octaves(default_policy, [r for r in ledger if r.arch == "dense"])
        every, big = summary(pairs), summary([(r, o) for r, o in pairs if r.params >= 1e9])
        regret = [sweep_regret(default_policy, arch, sweeps) for arch in ("dense", "moe")]
        steps = [math.exp(worst_step(arch, 0.05, ring_only=True)[0]) for arch in ("dense", "moe")]
        print(
            f"| {ends[0]:g} → {ends[1]:g} | {regret[0]:.3%} | {regret[1]:.3%} | {every['within2']:.0%} / "
            f"{big['within2']:.0%} | ×{steps[0]:.3f} / ×{steps[1]:.3f} |"
        )
    blend.BLEND_START, blend.BLEND_END = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", type=float, default=0.05, help="grid spacing in decades of N and D")
    parser.add_argument("--ramps", action="store_true", help="also score other ends of the blend")
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    args = parser.parse_args()
    change, where = worst_step("dense", args.step)
    print(f"dense: largest change per 1% step ×{math.exp(change):.3f} at {', '.join(where)}")
    for active in ACTIVE:
        change, where = worst_step("moe", args.step, active)
        print(f"MoE, {active:g} active: largest change per 1% step ×{math.exp(change):.3f} at {', '.join(where)}")
    for name, arch, start, stop in CLIFFS:
        print(f"{name}: largest change per 1% step ×{along(arch, start, stop):.3f}")
    if args.ramps:
        ramps(args.sweeps)


if __name__ == "__main__":
    main()
