"""Score every bundled law, the default and a consensus on the published-runs ledger, next to their sweep regret.

    python benchmarks/production_runs.py [--ledger coefficients/published_runs.toml] [--sweeps ../shared/data/sweeps]

Ledger score: for each published run, the policy's peak LR at the run's own batch (``suggest`` with the run's N,
N_active, D, batch and sequence length; M ≈ 6·N_active since the ledger has no shapes) against the published peak
LR, as |log2 ratio| in octaves: median, max, and the fraction within 2× (≤ 1 octave), over every run and over the
runs of ≥ 1B non-embedding parameters (MoE: total).  A published LR is a team's choice, often inherited or tuned on
small proxies, not a measured optimum: the ledger is a sanity anchor at scales no sweep reaches, not ground truth.

Sweep regret: the median LR regret on the Step Law sweeps (benchmarks/law_regret.py's scorer), in-sample for
steplaw-2025.  ``consensus`` is the geometric mean of the laws fitted on the architecture that can answer.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from lrpredict import ModelConfig
from lrpredict.band import lr_band
from lrpredict.default_blend import choose
from lrpredict.errors import LrpredictError
from lrpredict.registry import bundled_laws
from lrpredict.runs import PublishedRun, published_runs, read_ledger
from lrpredict.suggest import _suggest, applicable_law_lrs, extrapolation_factor, resolve_variables, suggest
from lrpredict.sweeps import group_cells, read_runs, regrets

from law_regret import DEFAULT_SWEEPS, cell_config

Policy = Callable[[ModelConfig], tuple[float, float]]  # config -> (LR, batch)


def run_config(run: PublishedRun) -> ModelConfig:
    return ModelConfig(
        arch=run.arch,
        params=run.params,
        active_params=run.active_params if run.arch == "moe" else None,
        tokens=run.tokens,
        batch_tokens=run.batch_tokens,
        seq_len=run.seq_len,
    )


def law_policy(law_id: str) -> Policy:
    def policy(config: ModelConfig) -> tuple[float, float]:
        s = _suggest(config, law_id, approximate_m=True)
        return s.lr, s.batch_tokens

    return policy


def default_policy(config: ModelConfig) -> tuple[float, float]:
    s = suggest(config)
    return s.lr, s.batch_tokens


def consensus_policy(config: ModelConfig) -> tuple[float, float]:
    lrs = applicable_law_lrs(config)
    if not lrs:
        raise LrpredictError("config", config.arch, "no law answers")
    return math.exp(statistics.fmean(math.log(v) for v in lrs.values())), suggest(config).batch_tokens


def policies() -> dict[str, tuple[Policy, tuple[str, ...]]]:
    out: dict[str, tuple[Policy, tuple[str, ...]]] = {}
    for law in bundled_laws():
        if law.lr is not None and not law.relative:
            out[law.id] = (law_policy(law.id), tuple(law.architectures))
    out["default"] = (default_policy, ("dense", "moe"))
    out["consensus"] = (consensus_policy, ("dense", "moe"))
    return out


def octaves(policy: Policy, runs: list[PublishedRun]) -> list[tuple[PublishedRun, float]]:
    out = []
    for run in runs:
        try:
            lr, _ = policy(run_config(run))
        except LrpredictError:
            continue
        out.append((run, math.log2(lr / run.peak_lr)))
    return out


def summary(pairs: list[tuple[PublishedRun, float]]) -> dict[str, float]:
    if not pairs:
        return {}
    errs = [abs(o) for _, o in pairs]
    worst = max(pairs, key=lambda p: abs(p[1]))
    return {
        "runs": len(errs),
        "median": statistics.median(errs),
        "max": max(errs),
        "within2": sum(e <= 1.0 for e in errs) / len(errs),
        "bias": statistics.median(o for _, o in pairs),
        "worst": worst[0].id,
    }


def sweep_regret(policy: Policy, arch: str, sweeps: Path) -> float | None:
    path = sweeps / f"steplaw_{arch}.csv"
    if not path.is_file():
        return None
    values = []
    try:
        for cell in group_cells(read_runs(path)):
            lr, batch = policy(cell_config(cell))
            values.append(regrets(cell, lr, batch)[0])
    except LrpredictError:
        return None
    return statistics.median(values)


def table(ledger: list[PublishedRun], sweeps: Path) -> list[dict]:
    rows = []
    for name, (policy, archs) in policies().items():
        for arch in archs:
            runs = [r for r in ledger if r.arch == arch]
            pairs = octaves(policy, runs)
            big = [(r, o) for r, o in pairs if r.params >= 1e9]
            rows.append(
                {
                    "arch": arch,
                    "policy": name,
                    "all": summary(pairs),
                    "big": summary(big),
                    "regret": sweep_regret(policy, arch, sweeps),
                }
            )
    return rows


def band_evidence(ledger: list[PublishedRun]) -> list[tuple[str, float, float, bool, bool]]:
    """Per run: decades the default law extrapolates, |octaves| off the published LR, and whether the published
    LR lies inside the curvature band alone and inside the band widened for extrapolation (what suggest prints)."""
    out = []
    for run in ledger:
        config = run_config(run)
        s = suggest(config)
        # a blend's decades: its laws' weighted like its LR (the band it prints is widened the same way)
        decades = sum(
            weight * math.log10(extrapolation_factor(law, resolve_variables(config, law, approximate_m=True)))
            for law, weight in choose(config, resolve_variables).parts
        )
        low, high = lr_band(s.lr, run.arch, s.lr_range.tolerance)
        narrow = low <= run.peak_lr <= high
        wide = s.lr_range.low <= run.peak_lr <= s.lr_range.high
        out.append((run.id, decades, abs(math.log2(s.lr / run.peak_lr)), narrow, wide))
    return out


def best_possible(ledger: list[PublishedRun], arch: str) -> list[tuple[str, float, list[float]]]:
    """The smallest max |octaves| any law log2 η = c + a·log2 N_active (+ b·log2 D) (+ s·log2 B) can reach on the
    runs ≥ 1B, by a minimax (Chebyshev) fit to the published LRs themselves: in-sample, a lower bound for that family.
    Needs scipy (the calibrate extra); returns [] without it."""
    try:
        import numpy as np
        from scipy.optimize import linprog
    except ImportError:
        return []
    rows = [r for r in ledger if r.arch == arch and r.params >= 1e9]
    if len(rows) < 5:
        return []
    full = np.array([[1.0, math.log2(r.n_active), math.log2(r.tokens), math.log2(r.batch_tokens)] for r in rows])
    y = np.array([math.log2(r.peak_lr) for r in rows])
    out = []
    for cols, name in (([0, 1, 2, 3], "N, D, B"), ([0, 1, 2], "N, D"), ([0, 1], "N")):
        a = full[:, cols]
        n, k = a.shape
        ones = np.ones((n, 1))
        res = linprog(
            np.r_[np.zeros(k), 1.0],
            A_ub=np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])]),
            b_ub=np.r_[y, -y],
            bounds=[(None, None)] * k + [(0, None)],
        )
        out.append((name, float(res.x[-1]), [float(v) for v in res.x[1:k]]))
    return out


def _fmt(s: dict[str, float]) -> str:
    if not s:
        return "| – | – | – | – | – |"
    return (
        f"| {s['runs']} | {s['median']:.2f} | {s['max']:.2f} ({s['worst']}) | {s['within2']:.0%} | {s['bias']:+.2f} |"
    )


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "| arch | policy | runs | median \\|oct\\| | max \\|oct\\| (run) | within 2× | median signed oct "
        "| runs ≥1B | median | max (run) | within 2× | signed | sweep LR regret median |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        regret = "–" if r["regret"] is None else f"{r['regret']:.3%}"
        lines.append(f"| {r['arch']} | {r['policy']} {_fmt(r['all'])}{_fmt(r['big'])[1:]} {regret} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ledger", type=Path, help="a ledger file (default: the bundled one)")
    parser.add_argument("--sweeps", type=Path, default=DEFAULT_SWEEPS)
    parser.add_argument("--per-run", action="store_true", help="also print every run's octaves for each policy")
    args = parser.parse_args()
    ledger = list(read_ledger(args.ledger) if args.ledger else published_runs())
    rows = table(ledger, args.sweeps)
    print(to_markdown(rows))
    evidence = band_evidence(ledger)
    out = [(d, o) for _, d, o, _, _ in evidence if d > 0]
    print(
        f"\nband coverage (default): the published LR lies in the curvature band for "
        f"{sum(e[3] for e in evidence)}/{len(evidence)} runs, in the band widened for extrapolation for "
        f"{sum(e[4] for e in evidence)}/{len(evidence)}"
    )
    if out:
        slope = sum(d * o for d, o in out) / sum(d * d for d, o in out)
        ratio = sorted(o / d for d, o in out)
        print(
            f"\nband evidence (default law): {len(out)} runs outside its domain, |oct| per decade of extrapolation: "
            f"least-squares slope {slope:.3f}, median {statistics.median(ratio):.3f}, "
            f"90th pct {ratio[int(0.9 * (len(ratio) - 1))]:.3f}"
        )
    for arch in ("dense", "moe"):
        print()
        for name, worst, exps in best_possible(ledger, arch):
            print(
                f"best possible, {arch} ≥ 1B, law in {name} fitted minimax to the published LRs (in-sample): "
                f"max {worst:.2f} octaves, exponents {', '.join(f'{e:+.3f}' for e in exps)}"
            )
    for arch in ("dense", "moe"):
        off = [(r, o) for r, o in octaves(default_policy, [r for r in ledger if r.arch == arch]) if abs(o) > 1]
        big = [f"{r.id} {o:+.2f}" for r, o in off if r.params >= 1e9]
        print(f"\ndefault, {arch}: {len(off)} runs off by more than 2×; of them ≥ 1B: {', '.join(big) or 'none'}")
    if args.per_run:
        for name, (policy, _) in policies().items():
            print(f"\n{name}: " + ", ".join(f"{r.id} {o:+.2f}" for r, o in octaves(policy, ledger)))


if __name__ == "__main__":
    main()
