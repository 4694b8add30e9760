"""Plan a calibration: which probe models, which LRs, which horizons, and what it will cost (no torch).

The Fitting paradigm (arXiv 2601.05049) needs, per model size, a few LRs around the optimum (Eq.2) and a few
horizons (Eq.4, paid for by WSD branches of one run).  The grid is centred on the bundled default law's
prediction at each probe size, spaced ×2 (the Step Law sweeps show ±4× spans a loss bowl, docs/log.md), and
extended when a fitted optimum falls at its edge (``extend``, at most ``MAX_EXTENSIONS`` times in a plan's life).

Sizing (issue 12): with a ``Clock`` (a timed micro-benchmark on the device, ``clock.py``) every probe gets a wall-time
estimate.  Without a budget: the CPU default plan (minutes), or on GPUs the largest ladder that fits
``DEFAULT_GPU_WALL_S`` of wall time.  Issue 19: a budget is a promise — a plan is priced whole (fit probes, a
reserve for one grid extension per size, a held-out validation cell; the output layer's FLOPs counted), shrunk
until it fits (``_fit_budget``) or refused before any probe (``BudgetTooSmall``), and a run launches extensions
and validation only within ``BUDGET_SLACK``× the budget (``affordable_extension``, ``affordable_validation``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lrpredict.architecture import Architecture, count_parameters
from lrpredict.calibrate.clock import Clock, format_seconds, head_flops, step_flops, total_wall_seconds
from lrpredict.calibrate.fit import CalibrationFit
from lrpredict.calibrate.spec import DataSpec, ProbeResult, ProbeSpec
from lrpredict.errors import LrpredictError
from lrpredict.registry import DEFAULT_LAW, load_law

LR_SPACING = 2.0
# CPU default: sized for a laptop or a 2-core CI box; each probe is seconds (docs/log.md 2026-11-24).
CPU_WIDTHS = (32, 48, 64)
CPU_HORIZONS = (65_536, 131_072, 262_144)
CPU_BATCH, CPU_SEQ = 16, 64
# CPU plans with a budget: consecutive widths of this ladder (same horizons, batch and sequence as the default).
CPU_LADDER = (32, 48, 64, 96, 128, 192, 256)
# Step Law extrapolated to 25k–100k-parameter probes on the embedded corpus overshoots the optimum 4–16×
# (docs/log.md 2026-11-24: all nine cells of the first CPU run landed 1–2 grid steps below the grid): centre lower.
CPU_CENTRE_SHIFT = 0.25
# GPU ladders, smallest first: widths (depth = width / 64, the aspect of many open models' small sizes).
GPU_WIDTHS = (256, 384, 512, 768, 1024, 1536, 2048)
GPU_BATCH, GPU_SEQ = 64, 1024
TOKENS_PER_PARAM = (5.0, 10.0, 20.0)  # horizons per size: a spread that brackets Chinchilla's 20
# Only for the FLOPs view of the legacy ``parse_budget``: an H100 at 35% MFU of 989 TFLOP/s bf16 dense (issue 5's
# target), stated, not measured.  Plans made by the CLI are sized by a measured ``Clock`` instead.
FLOPS_PER_GPU_SECOND = 0.35 * 989e12
# No budget on GPUs: the plan should finish in about an hour (issue 12), not 1,700 H100-hours.
DEFAULT_GPU_WALL_S = 3600.0
# Issue 19: a budget is a promise.  The plan's estimate (fit probes + extension reserve + validation) is within it,
# and at run time no probe is launched that would take spent + planned past BUDGET_SLACK× it (timing noise room).
BUDGET_SLACK = 1.2
PHASES = ("fit probes", "extension reserve", "validation")
RESERVE_PROBES = 2  # per size: one grid extension (``extend`` adds two LRs beyond an edge)
# The held-out validation cell: about a quarter of the budget (docs/calibrate.md, "Budget"), a law N at least twice
# the largest fit probe's, 5 LRs ×√2 apart where the share affords them, else 3 ×2 apart (both span ×4).
VALIDATION_SHARE = 0.25
VALIDATION_RATIO = 2.0
# ...and at most this many times it: a cheap FLOPs budget let the held-out cell grow to d=1024 L=16 (~140 GB) for
# probes of N ~4e5 on the H200 (2026-12-04); a larger ratio tests the law further out but costs more than the fit
VALIDATION_MAX_RATIO = 16.0
VALIDATION_GRIDS = ((3, 2.0), (5, math.sqrt(2.0)))
VALIDATION_BEYOND = {True: (384, 512), False: (3072, 4096)}  # widths past the ladder, CPU / GPU
# Widths whose body (everything but the embedding/unembedding) does at least this share of the FLOPs are preferred
# (docs/log.md 2026-12-04 — output layer): below it a probe's optimum is mostly the output layer's.
MIN_BODY_SHARE = 1 / 3
# Horizons are halved to fit a budget only down to this many optimizer steps for the shortest (half the CPU
# default's 64): below it warmup and decay are most of the run and its optimum says little about longer runs.
MIN_HORIZON_STEPS = 32
# shortest horizon (``min_horizon_tokens``): 110K tokens at 32,768 ids, × (V / 32,768)^0.27
UNIGRAM_PHASE_TOKENS, UNIGRAM_PHASE_VOCAB, UNIGRAM_PHASE_EXPONENT = 110_000, 32_768, 0.27
MAX_EXTENSIONS = 2  # grid extensions over a plan's whole life, resumes included
# An extension never goes past this peak LR: 45× the largest LR of the Step Law sweeps (0.0221, steplaw_dense.csv);
# issue 15 saw a re-extended grid reach 12.4, where every probe diverged.
MAX_PROBE_LR = 1.0
MIN_PROBE_LR = 1e-7


@dataclass(frozen=True)
class Budget:
    """What a calibration may spend: ``flops`` (6·N·D), ``device_s`` (summed over devices) or ``wall_s``."""

    kind: Literal["flops", "device_s", "wall_s"]
    value: float

    def describe(self) -> str:
        if self.kind == "flops":
            return f"{self.value:.3g} FLOPs"
        if self.kind == "device_s":
            return f"{self.value / 3600:.3g} device-hours"
        return f"{format_seconds(self.value)} wall time"


class CalibrationPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arch: Literal["dense", "moe"]
    device: str
    probes: list[ProbeSpec]
    flops: float = Field(description="estimated training FLOPs of every probe (6·N·tokens, branches included)")
    centre_law: str
    notes: list[str] = Field(default_factory=list)
    estimates: dict[str, float] = Field(default_factory=dict, description="probe_id -> estimated seconds (Clock)")
    workers: int = Field(default=1, ge=1, description="parallel probes the estimate assumes")
    clock: str | None = Field(default=None, description="the device the estimates were measured on")
    budget: Budget | None = Field(default=None, description="what the plan was sized to; a run keeps within 1.2× it")
    reserve: list[ProbeSpec] = Field(
        default_factory=list, description="grid-extension probes the estimates keep room for (LRs: placeholders)"
    )
    extensions: int = Field(default=0, ge=0, description="LR-grid extensions made so far")
    finished: bool = Field(default=False, description="every probe ran and the law was fitted: no more extensions")
    # issue 11: --resume refits with the prior the run started with (None: a plan from before it was recorded)
    prior: str | None = Field(default=None, description="law id anchoring the fit, or 'none'")
    validation: list[ProbeSpec] = Field(default_factory=list)  # held-out cell (issue 19), run after the fit
    # LRs added past the held-out cell's edge when its optimum was not bracketed (kept apart from ``validation``:
    # a resume re-centres that list, and these must keep their ids)
    validation_extension: list[ProbeSpec] = Field(default_factory=list)

    def sizes(self) -> list[Architecture]:
        return list({p.arch.d_model: p.arch for p in self.probes}.values())

    def phase_specs(self) -> dict[str, list[ProbeSpec]]:
        """The probes of each phase: fit probes (extensions made so far included), the room kept for extensions
        not yet made, the validation cell."""
        left = max(0, MAX_EXTENSIONS - self.extensions) if not self.finished else 0
        reserve = self.reserve if left else []
        validation = self.validation + self.validation_extension
        return dict(zip(PHASES, (self.probes, reserve, validation), strict=True))

    def estimated_parts(self) -> dict[str, float] | None:
        """Estimated wall time of each phase on ``workers`` parallel workers, one phase after another (None without
        estimates)."""
        if not self.estimates:
            return None
        return {
            phase: total_wall_seconds((self.estimates.get(p.probe_id, 0.0) for p in specs), self.workers)
            for phase, specs in self.phase_specs().items()
        }

    def cost(self, kind: str) -> float:
        """The whole plan's cost (every phase) in a budget's unit: "flops", "device_s" or "wall_s"."""
        specs = [p for group in self.phase_specs().values() for p in group]
        if kind == "flops" or not self.estimates:
            return sum(probe_flops(p) for p in specs)
        if kind == "device_s":
            return sum(self.estimates.get(p.probe_id, 0.0) for p in specs)
        return self.estimated_wall_s() or 0.0

    def estimated_wall_s(self) -> float | None:
        """Estimated wall time of the whole run: fit probes, extension reserve and validation (None without
        estimates)."""
        parts = self.estimated_parts()
        return sum(parts.values()) if parts is not None else None


_UNIT_S = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60}
_UNIT_S |= {"minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600}
_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z -]*?)\s*$")
BUDGET_RULE = "FLOPs (1e18), device time (8h, '8 GPU-hours', 30min) or wall time ('2h wall', '30min wall')"


def parse_budget_spec(text: str) -> Budget:
    """A budget: FLOPs ('1e18', '1e18 FLOPs'); device time summed over GPUs/workers ('8h', '8 GPU-hours', '8gpu-h',
    '90min'); or wall time, the time followed by 'wall' ('2h wall', '30min-wall')."""
    match = _BUDGET.match(text.lower()) if isinstance(text, str) else None
    if match is None:
        raise LrpredictError("budget", text, BUDGET_RULE)
    number, rest = float(match[1]), match[2].replace(" ", "").replace("-", "")
    if not (math.isfinite(number) and number > 0):
        raise LrpredictError("budget", text, BUDGET_RULE)
    if rest in ("", "flop", "flops"):
        return Budget("flops", number)
    if rest.endswith("wall") and rest[:-4] in _UNIT_S:
        return Budget("wall_s", number * _UNIT_S[rest[:-4]])
    if rest in ("gpuh", "gpuhour", "gpuhours"):
        return Budget("device_s", number * 3600)
    if rest in _UNIT_S:
        return Budget("device_s", number * _UNIT_S[rest])
    raise LrpredictError("budget", text, BUDGET_RULE)


def parse_budget(text: str) -> float:
    """FLOPs ('1e18', '5e17') or GPU-hours ('2h', '0.5gpu-h') converted at an assumed H100 MFU: the API's older
    form; the CLI uses ``parse_budget_spec`` and a measured ``Clock``."""
    value = text.strip().lower()
    for suffix in ("gpu-h", "gpuh", "h"):
        if value.endswith(suffix):
            try:
                hours = float(value[: -len(suffix)])
            except ValueError:
                break
            if hours > 0 and math.isfinite(hours):
                return hours * 3600 * FLOPS_PER_GPU_SECOND
    try:
        flops = float(value)
    except ValueError:
        flops = -1.0
    if not (flops > 0 and math.isfinite(flops)):
        raise LrpredictError("budget", text, "FLOPs such as 1e18, or GPU-hours such as 2h")
    return flops


def probe_architecture(
    width: int, *, arch: str, n_layers: int | None, vocab_size: int, n_experts: int, top_k: int
) -> Architecture:
    heads = max(1, width // 16) if width < 256 else width // 64
    layers = n_layers or max(2, width // 64)
    d_ffn = round(8 * width / 3 / 8) * 8  # SwiGLU at ~8/3·d, a multiple of 8
    if arch == "moe":
        return Architecture(
            d_model=width,
            n_layers=layers,
            d_ffn=d_ffn,
            n_heads=heads,
            vocab_size=vocab_size,
            n_experts=n_experts,
            top_k=top_k,
            d_expert=max(8, d_ffn // top_k // 2 * 2),
            tied_embeddings=True,
        )
    return Architecture(
        d_model=width, n_layers=layers, d_ffn=d_ffn, n_heads=heads, vocab_size=vocab_size, tied_embeddings=True
    )


def law_n(arch: Architecture) -> float:
    """The N a calibrated law uses: non-embedding parameters, active for MoE (the family's varying count)."""
    counts = count_parameters(arch)
    return float(counts.non_embedding_active if arch.is_moe else counts.non_embedding)


def lr_grid(centre: float, count: int, spacing: float = LR_SPACING) -> list[float]:
    half = (count - 1) / 2
    return [centre * spacing ** (k - half) for k in range(count)]


def probe_flops(spec: ProbeSpec) -> float:
    """Training FLOPs per token (``clock.step_flops``: 6·N_active + attention + the output layer's 6·d·V, issue 19)
    times the tokens of the longest horizon and the decay phases of the other branches: what the WSD branches cost."""
    horizons = sorted(spec.horizons)
    tokens = horizons[-1] + sum(spec.decay_frac * d for d in horizons[:-1])
    return step_flops(spec) / spec.tokens_per_step * tokens


def make_plan(
    *,
    name: str,
    arch: Literal["dense", "moe"] = "dense",
    device: str = "cpu",
    budget_flops: float | None = None,
    budget: Budget | None = None,
    widths: list[int] | None = None,
    n_layers: int | None = None,
    lrs: int = 5,
    data: DataSpec | None = None,
    vocab_size: int = 512,
    n_experts: int = 8,
    top_k: int = 2,
    seed: int = 0,
    clock: Clock | None = None,
    workers: int = 1,
    validate: bool = True,
    horizons: list[int] | None = None,
) -> CalibrationPlan:
    """A plan: the CPU default (tiny probes on the embedded corpus, a few minutes), or sized to a budget.

    Every plan carries a reserve for one grid extension per size and, unless ``validate`` is False, a held-out
    validation cell (``plan.validation``); both are in its estimates.  ``budget`` (or ``budget_flops``) shrinks the
    plan until fit probes, reserve and validation fit (``_fit_budget``: fewer sizes, smaller widths, shorter
    horizons unless ``horizons`` fixes them, fewer LRs) and refuses (``BudgetTooSmall``) when even the smallest plan
    does not.  A time budget needs
    ``clock``.  On a GPU without a budget the plan is sized to ``DEFAULT_GPU_WALL_S`` of wall time when a clock is
    given (never refused: the user asked for no budget).
    """
    if lrs < 3:
        raise LrpredictError("lrs", lrs, "at least 3 LRs per size: Eq.2 needs points on both sides of the optimum")
    if budget is None and budget_flops is not None:
        budget = Budget("flops", budget_flops)
    cpu = device == "cpu"
    strict = budget is not None  # a budget the user gave is a promise; the GPU default is a target
    if budget is None and not cpu and clock is not None:
        budget = Budget("wall_s", DEFAULT_GPU_WALL_S)
    if budget is not None and budget.kind != "flops" and clock is None:
        raise LrpredictError("budget", budget.describe(), "a FLOPs budget, or a clock to size a time budget")
    law = load_law(DEFAULT_LAW[arch])
    shapes = _Shapes(
        arch=arch, cpu=cpu, law=law, data=data or DataSpec(n_tokens=2**21, eval_tokens=2**15), vocab_size=vocab_size,
        n_layers=n_layers, n_experts=n_experts, top_k=top_k, seed=seed, clock=clock, workers=workers,
        budget=budget, validate=validate, horizons=horizons,
    )  # fmt: skip
    if budget is None:
        chosen, notes = shapes.design(widths or list(CPU_WIDTHS if cpu else GPU_WIDTHS[:3]), lrs, 0), []
    else:
        chosen, notes = _fit_budget(shapes, widths, lrs, strict=strict)
    return _calibration_plan(shapes, name, device, chosen, notes)


@dataclass(frozen=True)
class Design:
    """A candidate plan: fit probes, the extension reserve, the validation cell, and their costs in budget units."""

    probes: list[ProbeSpec]
    reserve: list[ProbeSpec]
    validation: list[ProbeSpec]
    costs: dict[str, float]  # phase -> cost in the budget's unit (FLOPs, device-seconds or wall seconds)

    @property
    def total(self) -> float:
        return sum(self.costs.values())

    def summary(self) -> str:
        widths = sorted({p.arch.d_model for p in self.probes})
        n_lrs = len({p.lr for p in self.probes}) // max(1, len(widths))
        return f"widths {widths}, {n_lrs} LRs, horizons up to {max(self.probes[0].horizons):,} tokens"


class _Shapes:
    """Builds the probes, reserve and validation cell of a candidate plan, and prices them (``Design``)."""

    def __init__(self, *, budget: Budget | None, clock: Clock | None, workers: int, validate: bool, **how: Any):
        self.how = how
        self.cpu: bool = how["cpu"]
        self.budget, self.clock, self.workers, self.validate = budget, clock, workers, validate
        self.kind = budget.kind if budget is not None else ("wall_s" if clock is not None else "flops")
        self.batch, self.seq = (CPU_BATCH, CPU_SEQ) if self.cpu else (GPU_BATCH, GPU_SEQ)
        self.ladder = CPU_LADDER if self.cpu else GPU_WIDTHS
        self.min_horizon = min_horizon_tokens(how["vocab_size"])
        self.rate: float | None = None  # FLOP/s: price seconds by FLOPs at this rate instead of the clock

    def at_rate(self, rate: float) -> _Shapes:
        """A copy that prices seconds as FLOPs / ``rate`` (``Clock.peak_flops``: a lower bound, nothing timed)."""
        bound = copy.copy(self)
        bound.rate = rate
        return bound

    def shape(self, width: int) -> Architecture:
        h = self.how
        return probe_architecture(
            width, arch=h["arch"], n_layers=h["n_layers"], vocab_size=h["vocab_size"], n_experts=h["n_experts"],
            top_k=h["top_k"],
        )  # fmt: skip

    def horizons(self, width: int, shrink: int) -> tuple[int, ...]:
        """The size's horizons, raised (×2 steps) until the shortest leaves the unigram phase (``min_horizon_tokens``)
        and then halved ``shrink`` times while it still does; at least one step per horizon.  Horizons the user gave
        (``--horizons``) are kept as given, rounded to whole steps: a budget shrinks the rest of the plan instead."""
        step = self.batch * self.seq
        if self.how["horizons"]:
            return tuple(sorted({max(4, round(h / step)) * step for h in self.how["horizons"]}))
        base = CPU_HORIZONS if self.cpu else _horizons(law_n(self.shape(width)), self.batch * self.seq)
        scale = 1.0
        while base[0] * scale < self.min_horizon:
            scale *= 2
        for _ in range(shrink):
            if base[0] * scale / 2 < max(self.min_horizon, MIN_HORIZON_STEPS * self.batch * self.seq):
                break
            scale /= 2
        return tuple(max(4, round(h * scale / step)) * step for h in base)

    def centre(self, shape: Architecture, tokens: float) -> float:
        lr = self.how["law"].lr.evaluate({"N": law_n(shape), "D": tokens})
        return lr * (CPU_CENTRE_SHIFT if self.cpu else 1.0)

    def spec(self, shape: Architecture, lr: float, horizons: tuple[int, ...]) -> ProbeSpec:
        h = self.how
        return ProbeSpec(
            arch=shape, lr=lr, horizons=horizons, batch_size=self.batch, seq_len=self.seq, data=h["data"],
            device=None, seed=h["seed"],
        )  # fmt: skip

    def probes(self, width: int, n_lrs: int, shrink: int) -> list[ProbeSpec]:
        shape, horizons = self.shape(width), self.horizons(width, shrink)
        centre = self.centre(shape, horizons[len(horizons) // 2])
        return [self.spec(shape, lr, horizons) for lr in lr_grid(centre, n_lrs)]

    def cost(self, specs: list[ProbeSpec]) -> float:
        """What ``specs`` cost in the budget's unit; a wall time schedules them on the workers as the executor does."""
        if not specs:
            return 0.0
        if self.kind == "flops" or (self.clock is None and self.rate is None):
            return sum(probe_flops(p) for p in specs)
        if self.rate is not None:
            seconds = [probe_flops(p) / self.rate for p in specs]
        else:
            assert self.clock is not None
            seconds = [self.clock.probe_seconds(p) for p in specs]
        return sum(seconds) if self.kind == "device_s" else total_wall_seconds(seconds, self.workers)

    def design(self, widths: list[int], n_lrs: int, shrink: int) -> Design:
        probes = [p for w in widths for p in self.probes(w, n_lrs, shrink)]
        reserve, validation = _reserve(probes), _validation(self, probes)
        costs = {PHASES[0]: self.cost(probes), PHASES[1]: self.cost(reserve), PHASES[2]: self.cost(validation)}
        return Design(probes, reserve, validation, costs)


def _shrinks(shapes: _Shapes, width: int) -> int:
    """How many distinct shorter horizon sets ``horizons`` can give for ``width``."""
    count = 0
    while shapes.horizons(width, count + 1) != shapes.horizons(width, count):
        count += 1
    return count


def _reserve(probes: list[ProbeSpec]) -> list[ProbeSpec]:
    """One grid extension per size (``extend`` adds ``RESERVE_PROBES`` LRs beyond an edge): room in the
    estimate, not probes to run; the LRs are placeholders above the grid (a step's cost does not depend on it)."""
    out = []
    for width in sorted({p.arch.d_model for p in probes}):
        mine = [p for p in probes if p.arch.d_model == width]
        top = max(p.lr for p in mine)
        out += [mine[0].model_copy(update={"lr": top * LR_SPACING**k}) for k in range(1, RESERVE_PROBES + 1)]
    return out


def _validation(shapes: _Shapes, probes: list[ProbeSpec]) -> list[ProbeSpec]:
    """The held-out cell (issue 19): the widest width whose law N is ≥ ``VALIDATION_RATIO``× the largest fit
    probe's and whose cell costs at most ``VALIDATION_SHARE`` of the budget (else the narrowest such width),
    at the longest horizon, 5 LRs ×√2 apart where that fits the share, else 3 LRs ×2 apart (both span ×4),
    centred as the fit probes are.  The run re-centres them on the fit's prediction."""
    if not shapes.validate:
        return []
    largest = max(law_n(p.arch) for p in probes)
    longest = max(max(p.horizons) for p in probes)
    share = VALIDATION_SHARE * shapes.budget.value if shapes.budget is not None else -math.inf
    chosen: list[ProbeSpec] = []
    for width in (*shapes.ladder, *VALIDATION_BEYOND[shapes.cpu]):
        if law_n(shapes.shape(width)) < VALIDATION_RATIO * largest:
            continue
        if chosen and law_n(shapes.shape(width)) > VALIDATION_MAX_RATIO * largest:
            break
        for count, spacing in VALIDATION_GRIDS:
            cell = _cell(shapes, width, longest, count, spacing)
            if chosen and shapes.cost(cell) > share:
                return chosen
            chosen = cell
    return chosen


def _cell(shapes: _Shapes, width: int, tokens: int, count: int, spacing: float) -> list[ProbeSpec]:
    """The validation cell at ``width``: ``count`` LRs ``spacing`` apart, centred as the fit probes are."""
    shape = shapes.shape(width)
    return [shapes.spec(shape, lr, (tokens,)) for lr in lr_grid(shapes.centre(shape, tokens), count, spacing)]


def _body_share(shapes: _Shapes, width: int) -> float:
    """The share of a probe's training FLOPs outside the embedding/unembedding (``step_flops``)."""
    spec = shapes.spec(shapes.shape(width), 1e-3, (shapes.batch * shapes.seq,))
    return 1 - head_flops(spec) / step_flops(spec)


def _calibration_plan(shapes: _Shapes, name: str, device: str, design: Design, notes: list[str]) -> CalibrationPlan:
    """The plan of ``design``, with notes on the LR grid's centre and what the design costs against the budget."""
    h = shapes.how
    # on CPU the centre is shifted (CPU_CENTRE_SHIFT): say so, else a user checking the grid against the law is misled
    centre = f"{CPU_CENTRE_SHIFT:g}× {h['law'].id}'s LR (it overshoots tiny CPU probes: docs/log.md 2026-11-24)"
    notes = [
        f"LR grid ×{LR_SPACING:g} apart, centred on {centre if shapes.cpu else h['law'].id} at each probe size "
        "(extrapolated: it is a centre, not a claim)",
        *notes,
    ]
    if h["horizons"]:
        shortest = min(min(p.horizons) for p in design.probes)
        notes.append(f"horizons as given (--horizons), rounded to whole steps of {shapes.batch * shapes.seq:,} tokens")
        if shortest < shapes.min_horizon:  # issue 19: a probe still in the unigram phase has no LR optimum yet
            notes.append(
                f"the shortest horizon ({shortest:,} tokens) is inside the unigram phase of this vocabulary (below "
                f"~{shapes.min_horizon:,}): its cells may show no optimum"
            )
    if shapes.budget is not None:
        unit = shapes.budget.kind
        parts = ", ".join(f"{k} ~{Budget(unit, v).describe()}" for k, v in design.costs.items() if v)
        notes.append(
            f"budget {shapes.budget.describe()}: this plan needs ~{Budget(unit, design.total).describe()} ({parts}); "
            f"a run never launches a probe that would take it past {BUDGET_SLACK:g}× the budget"
        )
    everything = design.probes + design.reserve + design.validation
    clock = shapes.clock
    return CalibrationPlan(
        name=name,
        arch=h["arch"],
        device=device,
        probes=design.probes,
        flops=sum(probe_flops(p) for p in design.probes),
        centre_law=h["law"].id,
        notes=notes,
        estimates={p.probe_id: clock.probe_seconds(p) for p in everything} if clock is not None else {},
        workers=shapes.workers,
        clock=clock.name if clock is not None else None,
        budget=shapes.budget,
        reserve=design.reserve,
        validation=design.validation,
    )


def _fit_budget(shapes: _Shapes, widths: list[int] | None, lrs: int, *, strict: bool) -> tuple[Design, list[str]]:
    """The preferred design within the budget.  Preference: the requested LRs before fewer (an optimum needs its
    bracket), then full horizons before shorter ones (a short probe's optimum is an early-training optimum), then
    more sizes, then wider probes (the body's share of FLOPs grows with width: ``MIN_BODY_SHARE``).  When even the smallest design does not fit: ``BudgetTooSmall`` (``strict``), else
    the smallest with a note."""
    budget = shapes.budget
    assert budget is not None
    first = widths or [shapes.ladder[0]]
    if strict and shapes.kind != "flops" and shapes.clock is not None:  # refuse before timing what cannot fit
        rate = shapes.clock.peak_flops()
        bound = shapes.at_rate(rate).design(first, 3, _shrinks(shapes, first[0]))
        if bound.total > budget.value:
            raise BudgetTooSmall(budget, bound, rate=rate)
    # the smallest plan: the cheaper of the two narrowest single widths (a head-heavy or loaded d=32 can time slower
    # than d=48: issue 19's "[48] at ~6 min fits")
    singles = [first] if widths is not None else [[w] for w in shapes.ladder[:2]]
    smallest = min((shapes.design(w, 3, _shrinks(shapes, w[0])) for w in singles), key=lambda d: d.total)
    if smallest.total > budget.value:
        if strict:
            raise BudgetTooSmall(budget, smallest)
        return smallest, [f"no plan fits the default budget {budget.describe()}: the smallest plan runs"]
    windows = [list(widths)] if widths is not None else _windows(shapes)
    for n_lrs in range(lrs, 2, -1):
        for shrink in range(max(_shrinks(shapes, w[0]) for w in windows) + 1):
            for window in windows:
                design = shapes.design(window, n_lrs, shrink)
                if design.total <= budget.value:
                    return design, _shrunk_notes(design, lrs, widths)
    return smallest, _shrunk_notes(smallest, lrs, widths)


def _windows(shapes: _Shapes) -> list[list[int]]:
    """Runs of 3, 2, then 1 consecutive affordable ladder widths, widest first; widths whose body is at least
    ``MIN_BODY_SHARE`` of the FLOPs first when any is affordable (with a 50K vocabulary a d=32 probe spends ~98% of
    its FLOPs in the output layer: its optimum says little about the body's)."""
    budget = shapes.budget
    assert budget is not None
    affordable: list[int] = []
    misses = 0
    for width in shapes.ladder:  # costs grow with width, mostly: stop timing after two that cannot fit alone
        if shapes.design([width], 3, _shrinks(shapes, width)).total > budget.value:
            misses += 1
            if misses == 2:
                break
            continue
        affordable.append(width)
    body = [w for w in affordable if _body_share(shapes, w) >= MIN_BODY_SHARE]
    out: list[list[int]] = []
    for pool in ([body] if body else []) + [affordable]:
        for k in (3, 2, 1):
            out += [pool[s : s + k] for s in reversed(range(len(pool) - k + 1)) if pool[s : s + k] not in out]
    return out


def _shrunk_notes(design: Design, lrs: int, widths: list[int] | None) -> list[str]:
    n_lrs = len(design.probes) // len({p.arch.d_model for p in design.probes})
    fewer = f" (fewer LRs than --lrs {lrs})" if n_lrs < lrs else ""
    return [f"sized to the budget: {design.summary()}{fewer}"]


class BudgetTooSmall(LrpredictError):
    """``--budget`` below the smallest plan that can identify an optimum; names the budget that would fit."""

    def __init__(self, budget: Budget, smallest: Design, *, rate: float | None = None) -> None:
        self.needed = _round_up(smallest.total, budget.kind)
        # a bound from FLOPs at the matmul speed, not a timed plan: the real need is larger
        bound = (
            f" (a lower bound: its FLOPs at this machine's matmul speed now, {rate / 1e9:.3g} GFLOP/s; probes run slower "
            "than a large matmul, so the timed need is larger: `--dry-run --budget` at this value prints it)"
            if rate
            else ""
        )
        without = smallest.total - smallest.costs[PHASES[2]]
        bare = (
            f"; ~{Budget(budget.kind, _round_up(without, budget.kind)).describe()} with --no-validate"
            if smallest.validation
            else ""
        )
        super().__init__(
            "budget",
            budget.describe(),
            f"at least ~{Budget(budget.kind, self.needed).describe()}: the smallest plan that can identify an optimum "
            f"({smallest.summary()}, with its extension reserve and validation) needs that{bound}{bare}",
        )


def _round_up(value: float, kind: str) -> float:
    """Up to a round figure as ``Budget.describe`` prints it: whole minutes past 90 s, 2 significant digits else."""
    if kind != "flops" and value >= 5400:
        return math.ceil(value / 360) * 360
    if kind != "flops" and value >= 90:
        return math.ceil(value / 60) * 60
    if kind != "flops":
        return float(math.ceil(value))
    digits = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / digits) * digits


def _horizons(n: float, tokens_per_step: int) -> tuple[int, ...]:
    steps = [max(50, round(tpp * n / tokens_per_step)) for tpp in TOKENS_PER_PARAM]
    return tuple(s * tokens_per_step for s in sorted(set(steps)))


def extend(plan: CalibrationPlan, fit: CalibrationFit) -> list[ProbeSpec]:
    """New probes one and two grid steps beyond the edge toward which a size's loss still falls (``falling_side``),
    within [``MIN_PROBE_LR``, ``MAX_PROBE_LR``]; none on a side where a probe diverged (the bowl is closed there), none
    for a flat cell (no optimum to chase), none once the plan is finished or has been extended ``MAX_EXTENSIONS``
    times (a resumed run does not grow its grid again).  The run launches them only within its budget."""
    if plan.finished or plan.extensions >= MAX_EXTENSIONS:
        return []
    new: list[ProbeSpec] = []
    for shape in plan.sizes():
        n = law_n(shape)
        mine = [p for p in plan.probes if p.arch == shape]
        lrs = sorted({p.lr for p in mine})
        cells = [c for c in fit.cells if c.n == n and c.fit is not None and not c.fit.bracketed and not c.flat]
        side = falling_side(cells)
        if side is None or _diverged_past(cells, side):
            continue
        edge, step = (lrs[0], 1 / LR_SPACING) if side == "low" else (lrs[-1], LR_SPACING)
        for k in (1, 2):
            lr = edge * step**k
            if MIN_PROBE_LR <= lr <= MAX_PROBE_LR:
                new.append(mine[0].model_copy(update={"lr": lr}))
    return new


def falling_side(cells: list[Any]) -> Literal["low", "high"] | None:
    """The side of the LR grid toward which the loss still falls, by majority over unbracketed cells: the edge the
    best LR sits on, or, when the best LR is inside the grid but the parabola through it is not convex, the edge it
    is nearer (issue 19: a best LR 2nd of 9 was reported "at the grid's edge" and the grid grew *upward*, into
    divergence).  Ties go to the cell of the longest horizon."""
    sides = [side for c in sorted(cells, key=lambda c: c.tokens) if (side := c.fit.edge or _nearer_edge(c))]
    if not sides:
        return None
    low, high = sides.count("low"), sides.count("high")
    return "low" if low > high else "high" if high > low else sides[-1]


def _nearer_edge(cell: Any) -> Literal["low", "high"] | None:
    finite = sorted((lr, loss) for lr, loss in zip(cell.lrs, cell.losses, strict=True) if _finite(loss))
    if not finite:
        return None
    best = min(range(len(finite)), key=lambda i: finite[i][1])
    below, above = best, len(finite) - 1 - best
    return "low" if below < above else "high" if above < below else None


def _diverged_past(cells: list[Any], side: str) -> bool:
    """Whether a probe beyond the best LR on ``side`` diverged (a loss that is None or not finite)."""
    for cell in cells:
        finite = [(lr, loss) for lr, loss in zip(cell.lrs, cell.losses, strict=True) if _finite(loss)]
        if not finite:
            continue
        best = min(finite, key=lambda p: p[1])[0]
        for lr, loss in zip(cell.lrs, cell.losses, strict=True):
            beyond = lr > best if side == "high" else lr < best
            if beyond and not _finite(loss):
                return True
    return False


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def spent(plan: CalibrationPlan, results: Iterable[ProbeResult]) -> float:
    """What the plan's finished probes spent, in its budget's unit (resumed sessions included: they are in the
    ledger): FLOPs, summed probe seconds, or those seconds scheduled on the plan's workers."""
    done = [r for r in results if r.status != "failed" or r.wall_time_s > 0]
    kind = plan.budget.kind if plan.budget is not None else "flops"
    if kind == "flops":
        return sum(probe_flops(r.spec) for r in done)
    seconds = [r.wall_time_s for r in done]
    return sum(seconds) if kind == "device_s" else total_wall_seconds(seconds, plan.workers)


def pace(plan: CalibrationPlan, results: Iterable[ProbeResult]) -> float:
    """Actual over estimated seconds of the finished probes so far (1 without estimates): how this machine runs now."""
    pairs = [
        (r.wall_time_s, plan.estimates[r.probe_id])
        for r in results
        if r.status == "ok" and r.probe_id in plan.estimates
    ]
    actual, estimated = sum(a for a, _ in pairs), sum(e for _, e in pairs)
    return actual / estimated if actual > 0 and estimated > 0 else 1.0


def planned(plan: CalibrationPlan, specs: list[ProbeSpec], speed: float = 1.0) -> float:
    """What ``specs`` will cost in the budget's unit: estimates scaled by ``speed`` (``pace``)."""
    kind = plan.budget.kind if plan.budget is not None else "flops"
    if kind == "flops" or not plan.estimates:
        return sum(probe_flops(p) for p in specs)
    seconds = [speed * _estimate(plan, p) for p in specs]
    return sum(seconds) if kind == "device_s" else total_wall_seconds(seconds, plan.workers)


def _estimate(plan: CalibrationPlan, spec: ProbeSpec) -> float:
    """The plan's estimate of ``spec``, or of a planned probe of the same shape and horizons (an extension's LR
    does not change its cost)."""
    if spec.probe_id in plan.estimates:
        return plan.estimates[spec.probe_id]
    for other in (*plan.probes, *plan.reserve, *plan.validation):
        if other.arch == spec.arch and other.horizons == spec.horizons and other.probe_id in plan.estimates:
            return plan.estimates[other.probe_id]
    return 0.0


def affordable_extension(
    plan: CalibrationPlan, results: list[ProbeResult], more: list[ProbeSpec]
) -> tuple[list[ProbeSpec], list[str]]:
    """The extension probes that keep spent + planned (these, then the validation cell) within ``BUDGET_SLACK``×
    the budget, a whole size at a time, smallest first; and one line per size left out.  Without a budget: all."""
    if plan.budget is None or not more:
        return more, []
    speed = pace(plan, results)
    limit = BUDGET_SLACK * plan.budget.value - spent(plan, results) - planned(plan, plan.validation, speed)
    kept: list[ProbeSpec] = []
    lines = []
    for width in sorted({p.arch.d_model for p in more}):
        group = [p for p in more if p.arch.d_model == width]
        if planned(plan, kept + group, speed) <= limit:
            kept += group
            continue
        lines.append(
            f"grid extension at d_model={width} skipped: it would take the run past {BUDGET_SLACK:g}× the budget "
            f"{plan.budget.describe()} (spent ~{Budget(plan.budget.kind, spent(plan, results)).describe()}, probes "
            f"running at {speed:.2g}× their estimate); its optimum stays a one-sided bound"
        )
    for p in kept:
        plan.estimates.setdefault(p.probe_id, _estimate(plan, p))
    return kept, lines


def affordable_validation(
    plan: CalibrationPlan, results: list[ProbeResult], specs: list[ProbeSpec] | None = None, *, what: str = "validation"
) -> str | None:
    """None when ``specs`` (default: the validation cell) fit: spent + their cost at the measured pace within
    ``BUDGET_SLACK``× the budget (or no budget); else the line saying why ``what`` is skipped (for the console and
    the report's warnings)."""
    specs = plan.validation if specs is None else specs
    if plan.budget is None or not specs:
        return None
    speed = pace(plan, results)
    used, cost = spent(plan, results), planned(plan, specs, speed)
    if used + cost <= BUDGET_SLACK * plan.budget.value:
        return None
    unit = plan.budget.kind
    return (
        f"{what} skipped: ~{Budget(unit, cost).describe()} more would take the run past {BUDGET_SLACK:g}× the "
        f"budget {plan.budget.describe()} (spent ~{Budget(unit, used).describe()}, probes at {speed:.2g}× their "
        "estimate)"
    )


def check_width(width: int, *, field: str = "width") -> int:
    """A probe width the probe model can be built at: 16 ≤ width ≤ 8192 and a whole number of heads."""
    if not 16 <= width <= 8192:
        raise LrpredictError(field, width, "probe widths (d_model) from 16 to 8192")
    heads = max(1, width // 16) if width < 256 else width // 64
    if width % heads:
        raise LrpredictError(field, width, f"a width divisible by its {heads} heads (multiples of 16 or 64 work)")
    return width


def min_horizon_tokens(vocab_size: int) -> int:
    """The shortest horizon whose LR optimum means something: past the unigram phase (issue 19, item 5).

    Measured on real text (Python stdlib + licence texts, BPE by ``tokenizers``; docs/log.md 2026-12-04 — unigram
    phase) with a d=64 probe: its train loss was 0.5 nats below the corpus's unigram entropy after ~76K tokens at
    8,192 ids and ~110K at 32,768 (it crosses the entropy itself at ~45–50K tokens at both sizes): the phase grows
    slowly with V, as V^0.27 through those two points.  Before that the loss mostly measures how fast the output
    layer learns token frequencies, whose best LR is not the body's."""
    return round(UNIGRAM_PHASE_TOKENS * (vocab_size / UNIGRAM_PHASE_VOCAB) ** UNIGRAM_PHASE_EXPONENT)
