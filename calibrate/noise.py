"""Loss noise measured, not inferred from misfit (issue 19): the evaluation's standard error and the seed-to-seed sd.

Two measured parts, added in quadrature (they are independent: one is which held-out sequences were drawn, the other
what a different initialisation and batch order did to the model):

* **eval s.e.**: every evaluation records the sd of its per-sequence held-out losses and their count
  (``BranchResult.eval_sd``, ``eval_sequences``), so each measured loss carries sd/√n.  Every probe is evaluated on
  the same held-out windows, so this part is largely common to the LRs of a cell: adding it in full is conservative
  for comparisons between LRs (the flat-cell rule, the vertex's se).
* **seed sd**: one replicate probe per size (``replicate_specs``: the same spec at seed + 1) at the centre LR of the
  size's initial grid.  Why the centre and not the best LR: the best LR is known only after the grid, and a
  replicate that waits for it cannot run alongside the grid or be costed in the plan; the centre is where the planner
  expects the optimum, and seed noise varies little across the LRs of a bowl.  sd = √(Σ d²/(2·m)) over the m
  differences d of the pairs (one per horizon of each replicate).
* **LR-contrast sd** (paired replicates): the LRs of a cell share their seed (the same initialisation and batch
  order), so much of what the seed does moves every loss of the cell together and moves no vertex.  What a
  comparison between LRs sees is the part that differs between them.  So each size's replicate is a *pair*: the
  centre LR and the LR below it, both again at seed + 1.  With d_c, d_n the two seed differences at one horizon,
  (d_c − d_n)² / 4 estimates the variance of that LR-specific part (the shared part cancels).  When measured it is
  the noise of the flat-cell rule and of the vertex's se (``cell_sd``); the seed sd stays in the report.  The
  end-to-end run C (docs/benchmarks.md) shows what is at stake: seed sd 0.50 → 0.14 nats, while the Eq.2 residual
  at a shared seed was 0.12; judged by the seed sd, 5 of 10 cells were called flat.
* **seed sd by horizon**: the seed noise falls fast with training (measured on real text, d=64: 0.30 / 0.096 /
  0.055 nats at 262K / 524K / 1M tokens, docs/log.md 2026-12-04, benchmarks/seed_noise.py), so one number pooled
  over horizons lets the short horizons' noise declare the long horizons' cells flat (the CPU end-to-end run:
  9 of 10 cells).  With differences at ≥ 2 horizons the mean square d²/2 per horizon is fitted by a power law in the
  tokens (least squares in log-log, weighted by the differences at each horizon: ``SeedTrend``); a cell's seed part
  is the trend at its horizon, held at the measured ends beyond them.

Without a replicate (a plan too small for one, old ledgers) the seed part is not measured: the pooled residual of
the Eq.2 parabolas (the old "noise", misfit included) stands in for it and the report says so.  The replay backend
measures neither: it keeps the pooled residual.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lrpredict.calibrate.spec import EXECUTION_FIELDS, ProbeResult, ProbeSpec

if TYPE_CHECKING:
    from lrpredict.calibrate.planner import CalibrationPlan

REPLICATE_SEED_OFFSET = 1  # a replicate's seed: the grid's seed + 1 (its init and batch order both change)


def replicate_specs(plan: CalibrationPlan) -> list[ProbeSpec]:
    """A replicate pair per probe size of ``plan``: its initial grid's centre LR and the LR below it, at seed +
    ``REPLICATE_SEED_OFFSET`` (the LR below, not above: a replicate that diverges measures nothing).

    A size that already has a probe at another seed (a replicate added before, or one the planner chose) gets none,
    so calling this again, on a resume or after grid extensions, adds nothing."""
    out: list[ProbeSpec] = []
    for shape in plan.sizes():
        mine = [p for p in plan.probes if p.arch == shape]
        base = min(p.seed for p in mine)
        if any(p.seed != base for p in mine):
            continue
        grid = sorted(mine, key=lambda p: p.lr)
        centre = (len(grid) - 1) // 2
        pair = grid[max(centre - 1, 0) : centre + 1] if len(grid) > 1 else grid
        out += [spec.model_copy(update={"seed": base + REPLICATE_SEED_OFFSET}) for spec in reversed(pair)]
    return out


def _twin_key(spec: ProbeSpec) -> str:
    """What a probe computes, seed left out: two probes with one key are replicates of each other."""
    return spec.model_dump_json(exclude={"seed", *EXECUTION_FIELDS})


def split_replicates(results: Iterable[ProbeResult]) -> tuple[list[ProbeResult], list[tuple[ProbeResult, ProbeResult]]]:
    """The grid's results (the lowest seed of each spec) and the (grid, replicate) pairs; replicates stay out of the
    Eq.2 fit (the centre LR would count twice) and measure the seed noise only."""
    groups: dict[str, list[ProbeResult]] = {}
    for r in results:
        groups.setdefault(_twin_key(r.spec), []).append(r)
    main, pairs = [], []
    for group in groups.values():
        group.sort(key=lambda r: r.spec.seed)
        main.append(group[0])
        pairs += [(group[0], other) for other in group[1:]]
    order = {id(r): i for i, r in enumerate(results)} if isinstance(results, list) else {}
    main.sort(key=lambda r: order.get(id(r), 0))
    return main, pairs


@dataclass(frozen=True)
class LossNoise:
    """What the loss noise of this calibration is, and where each number came from.

    ``eval_se``: median standard error of a held-out loss over the probes (``eval_sequences`` sequences each);
    ``seed_sd``: sd of a loss between seeds from ``replicates`` pairs (``differences`` horizon differences);
    ``misfit_sd``: pooled residual sd of the Eq.2 parabolas — a misfit diagnostic, set by the fit."""

    eval_se: float | None = None
    eval_sequences: int | None = None
    seed_sd: float | None = None
    replicates: int = 0
    differences: int = 0
    misfit_sd: float | None = None
    trend: SeedTrend | None = None  # the seed sd as a power law in the horizon's tokens (≥ 2 horizons measured)
    contrast_sd: float | None = None  # sd of a loss's LR-specific part at a shared seed, from replicate pairs
    contrast_pairs: int = 0  # the replicate pairs (two LRs of one size) that measured it
    contrast_trend: SeedTrend | None = None  # the contrast sd by horizon, as for the seed sd

    def contrast_at(self, tokens: float | None) -> float | None:
        """The LR-contrast sd at a horizon of ``tokens`` (its trend there when fitted, else the pooled sd)."""
        if self.contrast_trend is not None and tokens is not None:
            return self.contrast_trend.at(tokens)
        return self.contrast_sd

    def seed_at(self, tokens: float | None) -> float | None:
        """The seed sd at a horizon of ``tokens`` (the trend there when one was fitted, else the pooled sd)."""
        if self.trend is not None and tokens is not None:
            return self.trend.at(tokens)
        return self.seed_sd

    def cell_sd(self, eval_se: float | None, misfit: float, floor: float, tokens: float | None = None) -> float:
        """The noise sd of a comparison between one cell's losses: its own eval s.e. (else the median) ⊕ the
        LR-contrast sd at its horizon (``tokens``) where replicate pairs measured it, else the seed sd there, in
        quadrature; with no replicate the pooled Eq.2 residual stands in (it holds misfit too)."""
        se = eval_se if eval_se is not None else (self.eval_se or 0.0)
        part = self.contrast_at(tokens)
        part = part if part is not None else self.seed_at(tokens)
        return max(math.hypot(se, part if part is not None else misfit), floor)

    def comparison_trend(self) -> tuple[str, SeedTrend | None]:
        """The noise the cells are judged by, named, with its trend: the LR contrast's where measured, else the
        seed's."""
        if self.contrast_sd is not None:
            return "LR-contrast noise", self.contrast_trend
        return "seed noise", self.trend

    @property
    def measured(self) -> bool:
        return self.eval_se is not None or self.seed_sd is not None

    def combined(self, misfit: float | None = None) -> float:
        """The typical noise sd of a comparison between LRs (median eval s.e. ⊕ the LR-contrast sd, else the seed
        sd, else the misfit where no replicate measured either)."""
        seed = self.contrast_sd if self.contrast_sd is not None else self.seed_sd
        if seed is None:
            seed = (misfit if misfit is not None else self.misfit_sd) or 0.0
        return math.hypot(self.eval_se or 0.0, seed)

    def describe(self) -> str:
        """One line: 'loss noise sd 0.012 = eval s.e. 0.004 from 512 held-out sequences ⊕ seed sd 0.011 from 3
        replicates (9 horizon pairs); Eq.2 misfit 0.05 (…a diagnostic…)'."""
        if not self.measured:
            return (
                f"loss noise sd {self.misfit_sd or 0.0:.2g}: the pooled residual of the Eq.2 parabolas (nothing "
                "measured it: no per-sequence eval stats, no replicate probe)"
            )
        parts = _measured_parts(self)
        line = f"loss noise sd {self.combined():.2g} = " + " ⊕ ".join(parts)
        if self.seed_sd is not None and self.misfit_sd is not None:
            line += f"; Eq.2 misfit {self.misfit_sd:.2g} (pooled parabola residual: a misfit diagnostic, not the noise)"
        return line


def _measured_parts(noise: LossNoise) -> list[str]:
    """The measured parts of ``noise``, as ``describe`` lists them: the eval s.e., then the seed part (the
    LR-contrast sd, with the seed sd it is part of, where replicate pairs measured it)."""
    parts = []
    if noise.eval_se is not None:
        parts.append(f"eval s.e. {noise.eval_se:.2g} from {noise.eval_sequences} held-out sequences")
    if noise.seed_sd is not None:
        parts.append(
            f"seed sd {noise.seed_sd:.2g} from {noise.replicates} replicate{'s' * (noise.replicates != 1)} "
            f"({noise.differences} horizon pairs)" + (f", {noise.trend.describe()}" if noise.trend else "")
        )
    else:
        parts.append(f"Eq.2 misfit {noise.misfit_sd or 0.0:.2g} standing in for the seed noise (no replicate probe)")
    if noise.contrast_sd is not None:
        # the seed sd moves a cell's LRs together (they share the seed); what an LR comparison sees is the rest
        parts[-1] = (
            f"LR-contrast sd {noise.contrast_sd:.2g} from {noise.contrast_pairs} replicate "
            f"pair{'s' * (noise.contrast_pairs != 1)}"
            + (f", {noise.contrast_trend.describe()}" if noise.contrast_trend else "")
            + f" (the part of the {parts[-1]} that differs between a cell's LRs, which share their seed)"
        )
    return parts


def measure_noise(results: Iterable[ProbeResult], pairs: Iterable[tuple[ProbeResult, ProbeResult]] = ()) -> LossNoise:
    """The measured noise of ``results`` (their eval stats) and of the replicate ``pairs``."""
    ses, counts = [], []
    for r in results:
        for b in r.branches:
            if b.eval_loss is not None and b.eval_se is not None:
                ses.append(b.eval_se)
                counts.append(b.eval_sequences)
    diffs: list[tuple[float, float]] = []  # (horizon tokens, loss difference between the two seeds)
    used = 0
    by_pair = [(first.spec, _seed_differences(first, second)) for first, second in pairs]
    for _, here in by_pair:  # a diverged replicate says nothing: no differences
        used += bool(here)
        diffs += here.items()
    seed = math.sqrt(sum(d * d for _, d in diffs) / (2 * len(diffs))) if diffs else None
    contrasts, pairs_used = _contrast_differences(by_pair)
    contrast = math.sqrt(sum(d * d for _, d in contrasts) / (2 * len(contrasts))) if contrasts else None
    return LossNoise(
        eval_se=statistics.median(ses) if ses else None,
        eval_sequences=int(statistics.median(counts)) if counts else None,
        seed_sd=seed,
        replicates=used,
        differences=len(diffs),
        trend=SeedTrend.fit(diffs),
        contrast_sd=contrast,
        contrast_pairs=pairs_used,
        contrast_trend=SeedTrend.fit(contrasts),
    )


def _seed_differences(first: ProbeResult, second: ProbeResult) -> dict[float, float]:
    """Horizon tokens → the loss at ``first``'s seed minus ``second``'s (both finished, same spec but the seed)."""
    if first.status != "ok" or second.status != "ok":
        return {}
    return {
        float(a.tokens): a.eval_loss - b.eval_loss
        for a, b in zip(first.branches, second.branches, strict=False)
        if a.eval_loss is not None and b.eval_loss is not None
    }


def _contrast_differences(
    by_pair: list[tuple[ProbeSpec, dict[float, float]]],
) -> tuple[list[tuple[float, float]], int]:
    """(horizon tokens, (d_a − d_b)/√2) for each two replicate pairs of one cell at neighbouring LRs, and how many
    such two-LR pairs there were; ``by_pair``: each pair's grid spec with its seed differences
    (``_seed_differences``).  d_a, d_b: the seed differences at the two LRs; the seed's shared part cancels in
    d_a − d_b, whose variance is 4·σ² of the LR-specific part, so the /√2 lets the seed sd's formula (mean d²/2)
    and ``SeedTrend`` read σ² from it."""
    by_cell: dict[str, list[tuple[float, dict[float, float]]]] = {}
    for spec, diffs in by_pair:
        if diffs:
            key = spec.model_dump_json(exclude={"seed", "lr", *EXECUTION_FIELDS})
            by_cell.setdefault(key, []).append((spec.lr, diffs))
    out: list[tuple[float, float]] = []
    used = 0
    for members in by_cell.values():
        members.sort(key=lambda m: m[0])
        for (_, low), (_, high) in itertools.pairwise(members):
            shared = sorted(set(low) & set(high))
            out += [(t, (low[t] - high[t]) / math.sqrt(2)) for t in shared]
            used += bool(shared)
    return out, used


@dataclass(frozen=True)
class SeedTrend:
    """Seed sd = ``sd_ref`` · (tokens / ``ref_tokens``)^``exponent``, fitted on the replicate differences between
    ``low`` and ``high`` tokens and held constant outside them (no extrapolation of a trend from 2–3 horizons)."""

    sd_ref: float
    ref_tokens: float
    exponent: float
    low: float
    high: float

    def at(self, tokens: float) -> float:
        clamped = min(max(tokens, self.low), self.high)
        return self.sd_ref * (clamped / self.ref_tokens) ** self.exponent

    def tokens_for(self, sd: float) -> float | None:
        """The horizon at which the trend, extrapolated, falls to ``sd``; None when it does not fall with tokens."""
        if self.exponent > -0.05 or sd <= 0:
            return None
        return self.ref_tokens * (sd / self.sd_ref) ** (1 / self.exponent)

    def describe(self) -> str:
        return (
            f"by horizon {self.at(self.low):.2g} at {self.low:,.0f} → {self.at(self.high):.2g} at {self.high:,.0f} "
            f"tokens (∝ D^{self.exponent:.2g})"
        )

    @classmethod
    def fit(cls, diffs: list[tuple[float, float]]) -> SeedTrend | None:
        """Least squares of ln(mean d²/2) on ln tokens over the horizons, weighted by each horizon's count of
        differences; None with fewer than 2 horizons or a horizon whose differences are all zero."""
        by_tokens: dict[float, list[float]] = {}
        for tokens, d in diffs:
            by_tokens.setdefault(tokens, []).append(d * d / 2)
        if len(by_tokens) < 2 or any(sum(v) <= 0 for v in by_tokens.values()):
            return None
        x = np.log(list(by_tokens))
        y = np.log([sum(v) / len(v) for v in by_tokens.values()])
        counts = np.array([len(v) for v in by_tokens.values()], dtype=float)
        ref = float(np.average(x, weights=counts))  # the weighted centre: sd_ref is the fit's value there
        slope, at_ref = np.polyfit(x - ref, y, 1, w=np.sqrt(counts))  # polyfit weights the residuals: √count
        return cls(math.exp(at_ref / 2), math.exp(ref), slope / 2, min(by_tokens), max(by_tokens))
