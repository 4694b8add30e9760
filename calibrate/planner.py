"""Plan a calibration: which probe models, which LRs, which horizons, and what it will cost (no torch).

The Fitting paradigm (arXiv 2601.05049) needs, per model size, a few LRs around the optimum (Eq.2) and a few
horizons (Eq.4, paid for by WSD branches of one run).  The grid is centred on the bundled default law's
prediction at each probe size, spaced ×2 (the Step Law sweeps show ±4× spans a loss bowl, docs/log.md), and
extended when a fitted optimum falls at its edge (``extend``, at most ``MAX_EXTENSIONS`` times in a plan's life).

Sizing (issue 12): with a ``Clock`` (a timed micro-benchmark on the device, ``clock.py``) every probe gets a wall-time
estimate, and a budget in device-hours or wall time picks the largest ladder whose estimate fits.  Without a budget:
the CPU default plan (minutes), or on GPUs the largest ladder that fits ``DEFAULT_GPU_WALL_S`` of wall time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lrpredict.architecture import Architecture, count_parameters
from lrpredict.calibrate.clock import Clock, format_seconds, total_wall_seconds
from lrpredict.calibrate.fit import CalibrationFit
from lrpredict.calibrate.spec import DataSpec, ProbeSpec
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
MAX_EXTENSIONS = 2  # grid extensions over a plan's whole life, resumes included
# An extension never goes past this peak LR: 45× the largest LR of the Step Law sweeps (0.0221, steplaw_dense.csv);
# issue 15 saw a re-extended grid reach 12.4, where every probe diverged.
MAX_PROBE_LR = 1.0
MIN_PROBE_LR = 1e-7


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
    extensions: int = Field(default=0, ge=0, description="LR-grid extensions made so far")
    finished: bool = Field(default=False, description="every probe ran and the law was fitted: no more extensions")
    # issue 11: --resume refits with the prior the run started with (None: a plan from before it was recorded)
    prior: str | None = Field(default=None, description="law id anchoring the fit, or 'none'")
    validation: list[ProbeSpec] = Field(default_factory=list)  # held-out cell (issue 19), run after the fit

    def sizes(self) -> list[Architecture]:
        return list({p.arch.d_model: p.arch for p in self.probes}.values())

    def estimated_wall_s(self) -> float | None:
        """Estimated wall time of every probe on ``workers`` parallel workers (None without estimates)."""
        if not self.estimates:
            return None
        return total_wall_seconds((self.estimates.get(p.probe_id, 0.0) for p in self.probes), self.workers)


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
    """6·N_active·(longest horizon + the decay phases of the other branches): what the WSD branches cost."""
    n = law_n(spec.arch)
    horizons = sorted(spec.horizons)
    return 6.0 * n * (horizons[-1] + sum(spec.decay_frac * d for d in horizons[:-1]))


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
) -> CalibrationPlan:
    """A plan: the CPU default (tiny probes on the embedded corpus, a few minutes), or sized to a budget.

    ``budget`` (or ``budget_flops``) picks the largest ladder of three consecutive widths that fits; a time budget
    needs ``clock``.  On a GPU without a budget the budget is ``DEFAULT_GPU_WALL_S`` of wall time when a clock is
    given.  With a clock every probe carries an estimated duration (``plan.estimates``) for ``workers`` in parallel.
    """
    if lrs < 3:
        raise LrpredictError("lrs", lrs, "at least 3 LRs per size: Eq.2 needs points on both sides of the optimum")
    if budget is None and budget_flops is not None:
        budget = Budget("flops", budget_flops)
    cpu = device == "cpu"
    if budget is None and not cpu and clock is not None:
        budget = Budget("wall_s", DEFAULT_GPU_WALL_S)
    if budget is not None and budget.kind != "flops" and clock is None:
        raise LrpredictError("budget", budget.describe(), "a FLOPs budget, or a clock to size a time budget")
    data = data or DataSpec(n_tokens=2**21, eval_tokens=2**15)
    law = load_law(DEFAULT_LAW[arch])
    batch, seq = (CPU_BATCH, CPU_SEQ) if cpu else (GPU_BATCH, GPU_SEQ)

    def probes_for(width: int) -> list[ProbeSpec]:
        shape = probe_architecture(
            width, arch=arch, n_layers=n_layers, vocab_size=vocab_size, n_experts=n_experts, top_k=top_k
        )
        horizons = CPU_HORIZONS if cpu else _horizons(law_n(shape), batch * seq)
        centre = law.lr.evaluate({"N": law_n(shape), "D": horizons[len(horizons) // 2]})
        centre *= CPU_CENTRE_SHIFT if cpu else 1.0
        return [
            ProbeSpec(
                arch=shape, lr=lr, horizons=horizons, batch_size=batch, seq_len=seq, data=data, device=None, seed=seed
            )
            for lr in lr_grid(centre, lrs)
        ]

    def cost(specs: list[ProbeSpec]) -> float:
        assert budget is not None
        if budget.kind == "flops":
            return sum(probe_flops(p) for p in specs)
        assert clock is not None
        seconds = [clock.probe_seconds(p) for p in specs]
        return sum(seconds) if budget.kind == "device_s" else total_wall_seconds(seconds, workers)

    notes = []
    if widths is None and budget is None:
        widths = list(CPU_WIDTHS) if cpu else list(GPU_WIDTHS[:3])
    if widths is None:
        assert budget is not None
        ladder = CPU_LADDER if cpu else GPU_WIDTHS
        widths = list(ladder[:3])
        for start in range(1, len(ladder) - 2):  # costs grow with width: stop at the first ladder over budget
            candidate = list(ladder[start : start + 3])
            if cost([p for w in candidate for p in probes_for(w)]) > budget.value:
                break
            widths = candidate
    probes = [p for w in widths for p in probes_for(w)]
    # on CPU the centre is shifted (CPU_CENTRE_SHIFT): say so, else a user checking the grid against the law is misled
    centre = f"{CPU_CENTRE_SHIFT:g}× {law.id}'s LR (it overshoots tiny CPU probes: docs/log.md 2026-11-24)"
    notes.append(
        f"LR grid ×{LR_SPACING:g} apart, centred on {centre if cpu else law.id} at each probe size "
        "(extrapolated: it is a centre, not a claim)"
    )
    if budget is not None:
        spent = cost(probes)
        notes.append(f"budget {budget.describe()}: this plan needs ~{Budget(budget.kind, spent).describe()}")
        if spent > budget.value:
            notes.append(
                "the smallest plan is over the budget: it runs as shown unless you raise --budget or pass fewer --lrs"
            )
    total = sum(probe_flops(p) for p in probes)
    estimates = {p.probe_id: clock.probe_seconds(p) for p in probes} if clock is not None else {}
    return CalibrationPlan(
        name=name,
        arch=arch,
        device=device,
        probes=probes,
        flops=total,
        centre_law=law.id,
        notes=notes,
        estimates=estimates,
        workers=workers,
        clock=clock.name if clock is not None else None,
    )


def _horizons(n: float, tokens_per_step: int) -> tuple[int, ...]:
    steps = [max(50, round(tpp * n / tokens_per_step)) for tpp in TOKENS_PER_PARAM]
    return tuple(s * tokens_per_step for s in sorted(set(steps)))


def extend(plan: CalibrationPlan, fit: CalibrationFit) -> list[ProbeSpec]:
    """New probes one and two grid steps beyond an edge where a size's optimum was not bracketed, within
    [``MIN_PROBE_LR``, ``MAX_PROBE_LR``]; none once the plan is finished or has been extended ``MAX_EXTENSIONS``
    times (a resumed run does not grow its grid again)."""
    if plan.finished or plan.extensions >= MAX_EXTENSIONS:
        return []
    new: list[ProbeSpec] = []
    for shape in plan.sizes():
        n = law_n(shape)
        mine = [p for p in plan.probes if p.arch == shape]
        lrs = sorted({p.lr for p in mine})
        cells = [c for c in fit.cells if c.n == n and c.fit is not None and not c.fit.bracketed]
        if not cells:
            continue
        template = mine[0]
        at_low = any(c.fit.lr_opt <= lrs[0] * 1.0001 for c in cells)  # type: ignore[union-attr]
        edge, step = (lrs[0], 1 / LR_SPACING) if at_low else (lrs[-1], LR_SPACING)
        for k in (1, 2):
            lr = edge * step**k
            if MIN_PROBE_LR <= lr <= MAX_PROBE_LR:
                new.append(template.model_copy(update={"lr": lr}))
    return new


def check_width(width: int, *, field: str = "width") -> int:
    """A probe width the probe model can be built at: 16 ≤ width ≤ 8192 and a whole number of heads."""
    if not 16 <= width <= 8192:
        raise LrpredictError(field, width, "probe widths (d_model) from 16 to 8192")
    heads = max(1, width // 16) if width < 256 else width // 64
    if width % heads:
        raise LrpredictError(field, width, f"a width divisible by its {heads} heads (multiples of 16 or 64 work)")
    return width
