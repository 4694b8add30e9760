"""The explorer's suggestion grid: ``suggest`` evaluated on a rectilinear grid in log N, log D, log batch (MoE: and
log N_active/N), read back in the page by multilinear interpolation in log space.

One source of truth: every number the page shows is ``suggest``'s at the grid's nodes, never a JavaScript copy of a
law.  The laws are power laws, linear in log space, so log-space interpolation is exact inside one law's smooth
piece; the default blends Step Law into a compute law between ``BLEND_START``× and ``BLEND_END``× outside Step Law's
domain (lrpredict.default_blend, issue 20): continuous, with kinks at the ramp's ends, so each ramp end gets two nodes
a relative ``JUMP_EPS`` apart and no cell straddles a kink; so do the laws' own
domain edges (where the band starts widening and the domain warnings start).  A fixed batch is gridded as B/B_opt, not B: the conditional
batch law (lrpredict-batch-*-2026) has its kink at B = B_opt, a diagonal in (N, D, B) but a node in B/B_opt.  What is
left (compute domains on the diagonal N·D) is measured: ``measure_error`` (docs/log.md, explorer entry).
"""

from __future__ import annotations

import bisect
import math
import os
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from lrpredict.config import ModelConfig
from lrpredict.default_blend import BLEND_END, BLEND_START
from lrpredict.registry import DEFAULT_LAW, PRODUCTION_LAW, conditional_batch_law_id, load_law
from lrpredict.suggest import Suggestion, suggest

# Ranges: from the smallest Step Law sweep model to past the largest published run (lrpredict runs).
N_RANGE = (1e7, 2e12)
D_RANGE = (1e9, 1e14)
BATCH_RATIO_RANGE = (
    1 / 4,
    4,
)  # a fixed batch as a multiple of the optimal one: the conditional law's range (at 10× λ left its bounds)
MOE_RATIOS = (1 / 32, 1 / 8, 1 / 2)  # N_active / N: Kimi K2 (3%) to Mixtral (28%) lie inside
JUMP_EPS = 1e-6  # the two nodes either side of a law switch, as a relative distance
# Quantities interpolated, all as log10; the page's names.
QUANTITIES = ("lr", "lr_low", "lr_high", "batch", "optimal_batch", "lr_at_optimal_batch", "weight_decay",
              "warmup_steps", "decay_steps", "final_lr_ratio")  # fmt: skip


@dataclass
class Axes:
    """log10 nodes per axis; ``batch`` holds fixed batches as log10(B/B_opt) (index 0 of the stored axis is the
    optimal batch)."""

    ratio: list[float]
    n: list[float]
    d: list[float]
    batch: list[float]

    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.ratio), len(self.n), len(self.d), len(self.batch) + 1)


def _axis(low: float, high: float, per_decade: int, edges: Sequence[float]) -> list[float]:
    """log10 nodes: ``per_decade`` a decade from low to high, and each edge twice, JUMP_EPS either side: no cell
    straddles it, and the node nearest any point lies on the point's side (the page shows that node's domain and
    warnings; a node on the edge itself would be inside or out by rounding)."""
    lo, hi = math.log10(low), math.log10(high)
    count = max(1, round((hi - lo) * per_decade))
    nodes = {round(lo + (hi - lo) * i / count, 9) for i in range(count + 1)}
    for edge in edges:
        if low < edge < high:
            nodes |= {math.log10(edge * (1 - JUMP_EPS)), math.log10(edge * (1 + JUMP_EPS))}
    return sorted(nodes)


def _edges(arch: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The default laws' domain edges in N and D and the ends of the default's blend ramp (kinks)."""
    near = load_law(DEFAULT_LAW[arch])
    edges: dict[str, list[float]] = {"N": [], "D": []}
    jumps: dict[str, list[float]] = {"N": [], "D": []}
    for law_id in {DEFAULT_LAW[arch], PRODUCTION_LAW.get(arch, DEFAULT_LAW[arch])}:
        for var, (low, high) in load_law(law_id).domain.items():
            if var in edges:
                edges[var] += [v for v in (low, high) if v > 0]
    if arch in PRODUCTION_LAW:
        for var, (low, high) in near.domain.items():
            if var in jumps:
                ends = (low / BLEND_START, low / BLEND_END, high * BLEND_START, high * BLEND_END)
                jumps[var] += [v for v in ends if v > 0]
    return edges, jumps


def make_axes(arch: str, per_decade: int = 4) -> Axes:
    """The grid for ``arch``: ``per_decade`` nodes a decade in N and D, one a decade in B/B_opt, plus the edges."""
    edges, jumps = _edges(arch)
    conditional = load_law(conditional_batch_law_id(arch))
    # the hinge at 1, the law's fitted ratios and the 4× beyond which suggest warns of a higher loss
    ratio_edges = [1.0, 0.25, 4.0, *conditional.domain.get("B_ratio", ())]
    ratios = [math.log10(r) for r in MOE_RATIOS] if arch == "moe" else [0.0]
    return Axes(
        ratio=ratios,
        n=_axis(*N_RANGE, per_decade, edges["N"] + jumps["N"]),
        d=_axis(*D_RANGE, per_decade, edges["D"] + jumps["D"]),
        batch=_axis(*BATCH_RATIO_RANGE, 1, ratio_edges),
    )


def config_at(arch: str, ratio: float, n: float, tokens: float, batch: float | None) -> ModelConfig:
    """The run at one point (linear units; ``batch`` None: the law's optimal batch)."""
    active = n * ratio if arch == "moe" else None
    return ModelConfig(arch=arch, params=n, active_params=active, tokens=tokens, batch_tokens=batch)


def values_of(s: Suggestion) -> list[float]:
    """The interpolated quantities of one suggestion, as log10 (order: QUANTITIES)."""
    r = s.recommended_schedule
    linear = (s.lr, s.lr_range.low, s.lr_range.high, s.batch_tokens, s.optimal_batch_tokens, s.lr_at_optimal_batch,
              s.weight_decay, r.warmup_steps, r.decay_steps, r.final_lr_ratio)  # fmt: skip
    return [math.log10(v) for v in linear]


@dataclass
class SuggestionGrid:
    """``suggest`` at every node: values[q] is flat in (ratio, N, D, batch) order; ``labels``/``warnings`` index
    the string tables per node (the categorical part: law, domain, warnings — the page shows the nearest node's)."""

    arch: str
    axes: Axes
    values: dict[str, list[float]] = field(default_factory=dict)
    labels: list[int] = field(default_factory=list)
    label_table: list[dict[str, str]] = field(default_factory=list)
    warnings: list[list[int]] = field(default_factory=list)
    warning_table: list[str] = field(default_factory=list)


def _label(s: Suggestion) -> dict[str, str]:
    """The categorical fields the page prints (as ``lrpredict suggest`` does)."""
    r = s.recommended_schedule
    return {
        "law": s.law, "law_title": s.law_title, "status": s.status, "domain": s.domain,
        "range_label": s.lr_range.label(), "batch_source": s.batch_source, "weight_decay_law": s.weight_decay_law,
        "schedule": f"{s.schedule.kind}: {s.schedule.description}", "decay_shape": r.decay_shape,
        "batch_policy": s.batch_policy, "default_choice": s.default_choice or "",
    }  # fmt: skip


Row = list[tuple[list[float], dict[str, str], list[str]]]


def _row(arch: str, axes: Axes, ratio: float, n: float) -> Row:
    """``suggest`` at every (D, batch) node of one (ratio, N): (log10 values, labels, warnings) in grid order."""
    out: Row = []
    for d in axes.d:
        optimal = suggest(config_at(arch, 10**ratio, 10**n, 10**d, None))
        for batch in [None, *axes.batch]:
            at = None if batch is None else optimal.optimal_batch_tokens * 10**batch
            s = optimal if at is None else suggest(config_at(arch, 10**ratio, 10**n, 10**d, at))
            out.append((values_of(s), _label(s), s.warnings))
    return out


def evaluate(arch: str, axes: Axes, workers: int | None = None) -> SuggestionGrid:
    """``suggest`` (the default law, as ``lrpredict suggest`` without --law) at every node of ``axes``, one
    (ratio, N) row per task over ``workers`` processes (default: the CPUs, at most 8)."""
    rows = [(ratio, n) for ratio in axes.ratio for n in axes.n]
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_row, *zip(*((arch, axes, r, n) for r, n in rows), strict=True)))
    else:
        results = [_row(arch, axes, r, n) for r, n in rows]
    grid = SuggestionGrid(arch=arch, axes=axes, values={q: [] for q in QUANTITIES})
    labels: dict[str, int] = {}
    texts: dict[str, int] = {}
    for values, label, warnings in (point for row in results for point in row):
        for q, v in zip(QUANTITIES, values, strict=True):
            grid.values[q].append(v)
        key = repr(sorted(label.items()))
        if key not in labels:
            labels[key] = len(grid.label_table)
            grid.label_table.append(label)
        grid.labels.append(labels[key])
        grid.warnings.append([texts.setdefault(w, len(texts)) for w in warnings])
    grid.warning_table = list(texts)
    return grid


def _bracket(nodes: list[float], x: float) -> tuple[int, float]:
    """(i, t): x lies between nodes[i] and nodes[i+1] at fraction t; a jump cell snaps to its nearer node."""
    if len(nodes) == 1:
        return 0, 0.0
    i = min(max(bisect.bisect_right(nodes, x) - 1, 0), len(nodes) - 2)
    width = nodes[i + 1] - nodes[i]
    t = min(max((x - nodes[i]) / width, 0.0), 1.0)
    if width < 1e-4:  # the two nodes around a law switch: no interpolation across the jump
        t = float(round(t))
    return i, t


def batch_ratio(grid: SuggestionGrid, ratio: float, n: float, d: float, batch: float) -> float:
    """log10(B/B_opt) of a fixed batch (log10 tokens), B_opt interpolated at the point."""
    return batch - interpolate(grid, "optimal_batch", ratio, n, d, None)


def interpolate(grid: SuggestionGrid, q: str, ratio: float, n: float, d: float, batch: float | None) -> float:
    """log10 of quantity ``q`` at a point (log10 coordinates; ``batch``: log10 tokens, None for the optimal batch).
    The page's JavaScript does the same arithmetic (page.js ``interpolate``)."""
    axes = grid.axes
    shape = axes.shape()
    brackets = [_bracket(axes.ratio, ratio), _bracket(axes.n, n), _bracket(axes.d, d), (0, 0.0)]
    if batch is not None:
        i, t = _bracket(axes.batch, batch_ratio(grid, ratio, n, d, batch))
        brackets[3] = (i + 1, t)
    total = 0.0
    for corner in range(16):
        weight, index = 1.0, 0
        for axis, (i, t) in enumerate(brackets):
            up = (corner >> axis) & 1
            if up and (t == 0.0 or i + 1 >= shape[axis]):
                weight = 0.0
                break
            weight *= t if up else 1 - t
            index = index * shape[axis] + i + up
        if weight:
            total += weight * grid.values[q][index]
    return total


def random_points(grid: SuggestionGrid, count: int, seed: int) -> list[tuple[float, float, float, float | None]]:
    """``count`` points uniform in the log box of the grid (half at the optimal batch, half at a fixed batch within
    the grid's B/B_opt), log10 coordinates (batch: log10 tokens)."""
    rng = random.Random(seed)
    axes = grid.axes
    out = []
    for k in range(count):
        ratio, n, d = (rng.uniform(a[0], a[-1]) for a in (axes.ratio, axes.n, axes.d))
        batch = None
        if k % 2:
            batch = rng.uniform(axes.batch[0], axes.batch[-1]) + interpolate(grid, "optimal_batch", ratio, n, d, None)
        out.append((ratio, n, d, batch))
    return out


CHECKED = ("lr", "lr_low", "lr_high", "batch", "weight_decay")


def measure_error(grid: SuggestionGrid, count: int = 300, seed: int = 0) -> dict[str, float]:
    """The worst relative error of the interpolation against ``suggest`` itself at ``count`` random points (off the
    nodes), per quantity in CHECKED."""
    worst = dict.fromkeys(CHECKED, 0.0)
    for ratio, n, d, batch in random_points(grid, count, seed):
        s = suggest(config_at(grid.arch, 10**ratio, 10**n, 10**d, None if batch is None else 10**batch))
        exact = dict(zip(QUANTITIES, values_of(s), strict=True))
        for q in CHECKED:
            error = abs(10 ** (interpolate(grid, q, ratio, n, d, batch) - exact[q]) - 1)
            worst[q] = max(worst[q], error)
    return worst
