"""Plan a calibration: which probe models, which LRs, which horizons, and what it will cost (no torch).

The Fitting paradigm (arXiv 2601.05049) needs, per model size, a few LRs around the optimum (Eq.2) and a few
horizons (Eq.4, paid for by WSD branches of one run).  The grid is centred on the bundled default law's
prediction at each probe size, spaced ×2 (the Step Law sweeps show ±4× spans a loss bowl, docs/log.md), and
extended when a fitted optimum falls at its edge (``extend``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lrpredict.architecture import Architecture, count_parameters
from lrpredict.calibrate.fit import CalibrationFit
from lrpredict.calibrate.spec import DataSpec, ProbeSpec
from lrpredict.errors import LrpredictError
from lrpredict.registry import DEFAULT_LAW, load_law

LR_SPACING = 2.0
# CPU default: sized for a laptop or a 2-core CI box; each probe is seconds (docs/log.md 2026-11-24).
CPU_WIDTHS = (32, 48, 64)
CPU_HORIZONS = (65_536, 131_072, 262_144)
CPU_BATCH, CPU_SEQ = 16, 64
# Step Law extrapolated to 25k–100k-parameter probes on the embedded corpus overshoots the optimum 4–16×
# (docs/log.md 2026-11-24: all nine cells of the first CPU run landed 1–2 grid steps below the grid): centre lower.
CPU_CENTRE_SHIFT = 0.25
# GPU ladders, smallest first: widths (depth = width / 64, the aspect of many open models' small sizes).
GPU_WIDTHS = (256, 384, 512, 768, 1024, 1536, 2048)
GPU_BATCH, GPU_SEQ = 64, 1024
TOKENS_PER_PARAM = (5.0, 10.0, 20.0)  # horizons per size: a spread that brackets Chinchilla's 20
# GPU-hours → FLOPs: an H100 at 35% MFU of 989 TFLOP/s bf16 dense (issue 5's target); stated, not measured.
FLOPS_PER_GPU_SECOND = 0.35 * 989e12


class CalibrationPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arch: Literal["dense", "moe"]
    device: str
    probes: list[ProbeSpec]
    flops: float = Field(description="estimated training FLOPs of every probe (6·N·tokens, branches included)")
    centre_law: str
    notes: list[str] = Field(default_factory=list)

    def sizes(self) -> list[Architecture]:
        return list({p.arch.d_model: p.arch for p in self.probes}.values())


def parse_budget(text: str) -> float:
    """FLOPs ('1e18', '5e17') or GPU-hours ('2h', '0.5gpu-h')."""
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
    widths: list[int] | None = None,
    n_layers: int | None = None,
    lrs: int = 5,
    data: DataSpec | None = None,
    vocab_size: int = 512,
    n_experts: int = 8,
    top_k: int = 2,
    seed: int = 0,
) -> CalibrationPlan:
    """A plan: the CPU default (tiny probes on the embedded corpus, a few minutes), or sized to a budget."""
    if lrs < 3:
        raise LrpredictError("lrs", lrs, "at least 3 LRs per size: Eq.2 needs points on both sides of the optimum")
    data = data or DataSpec(n_tokens=2**21, eval_tokens=2**15)
    law = load_law(DEFAULT_LAW[arch])
    notes = []
    cpu = device == "cpu" and budget_flops is None
    batch, seq = (CPU_BATCH, CPU_SEQ) if cpu else (GPU_BATCH, GPU_SEQ)
    if widths is None:
        widths = (
            list(CPU_WIDTHS)
            if cpu
            else _widths_for_budget(budget_flops, arch, n_layers, vocab_size, n_experts, top_k, lrs, batch, seq)
        )
    probes = []
    for width in widths:
        shape = probe_architecture(
            width, arch=arch, n_layers=n_layers, vocab_size=vocab_size, n_experts=n_experts, top_k=top_k
        )
        horizons = CPU_HORIZONS if cpu else _horizons(law_n(shape), batch * seq)
        n = law_n(shape)
        centre = law.lr.evaluate({"N": n, "D": horizons[len(horizons) // 2]}) * (CPU_CENTRE_SHIFT if cpu else 1.0)
        for lr in lr_grid(centre, lrs):
            probes.append(
                ProbeSpec(
                    arch=shape,
                    lr=lr,
                    horizons=horizons,
                    batch_size=batch,
                    seq_len=seq,
                    data=data,
                    device=None,
                    seed=seed,
                )
            )
    notes.append(
        f"LR grid ×{LR_SPACING:g} apart, centred on {law.id} at each probe size (extrapolated: it is a centre, not a claim)"
    )
    if budget_flops is not None:
        notes.append(
            f"budget {budget_flops:.3g} FLOPs; GPU-hours converted at {FLOPS_PER_GPU_SECOND:.3g} FLOP/s (35% MFU of an H100)"
        )
    total = sum(probe_flops(p) for p in probes)
    if budget_flops is not None and total > budget_flops:
        notes.append(f"the smallest plan costs {total:.3g} FLOPs, over the budget")
    return CalibrationPlan(
        name=name, arch=arch, device=device, probes=probes, flops=total, centre_law=law.id, notes=notes
    )


def _horizons(n: float, tokens_per_step: int) -> tuple[int, ...]:
    steps = [max(50, round(tpp * n / tokens_per_step)) for tpp in TOKENS_PER_PARAM]
    return tuple(s * tokens_per_step for s in sorted(set(steps)))


def _widths_for_budget(
    budget: float | None,
    arch: str,
    n_layers: int | None,
    vocab: int,
    n_experts: int,
    top_k: int,
    lrs: int,
    batch: int,
    seq: int,
) -> list[int]:
    """The largest run of three consecutive ladder widths whose plan fits the budget."""
    best = list(GPU_WIDTHS[:3])
    for start in range(len(GPU_WIDTHS) - 2):
        widths = list(GPU_WIDTHS[start : start + 3])
        cost = 0.0
        for width in widths:
            shape = probe_architecture(
                width, arch=arch, n_layers=n_layers, vocab_size=vocab, n_experts=n_experts, top_k=top_k
            )
            horizons = sorted(_horizons(law_n(shape), batch * seq))
            cost += lrs * 6 * law_n(shape) * (horizons[-1] + 0.2 * sum(horizons[:-1]))
        if budget is None or cost <= budget:
            best = widths
    return best


def extend(plan: CalibrationPlan, fit: CalibrationFit) -> list[ProbeSpec]:
    """New probes one and two grid steps beyond an edge where a size's optimum was not bracketed."""
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
            new.append(template.model_copy(update={"lr": edge * step**k}))
    return new
