"""Target-aware planning: which probe sizes (and so horizons and LRs) narrow the optimum at *your* target most.

Under the anchored fit (lrpredict.calibrate.fit.fit_anchored) the posterior covariance of (offset, α, β) depends on
the probe design only, not on the losses: Σ = (Σ0⁻¹ + XᵀWX)⁻¹ with one row per (size, horizon) cell.  So the
predictive variance of ln η* at the target, x_tᵀΣx_t + misfit², can be computed before anything runs.  Each cell's
expected variance is the Eq.2 vertex variance of its LR grid (σ²/(4k²Σx²) for curvature k, loss noise σ and grid
offsets x) plus the power law's misfit (prior.MISFIT_SD).

Candidates are runs of 1–3 consecutive widths of the planner's ladder; the chosen plan is the *cheapest* candidate
within the budget whose predictive sd is within ``TOLERANCE`` of the narrowest the budget allows (past that point a
dearer plan buys little: with a strong prior that is one or two sizes).  The dry run also prints the best cheaper
and the best dearer candidate: the cost–accuracy curve.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from lrpredict import bounded_read
from lrpredict.calibrate.prior import MISFIT_SD, Prior
from lrpredict.calibrate.replay import RANGES
from lrpredict.config import MIN_PARAMS
from lrpredict.errors import LrpredictError
from lrpredict.paths import checked_path
from lrpredict.units import parse_size

Z90 = 1.6448536269514722
TOLERANCE = 0.10  # the chosen plan's sd may be 10% above the narrowest affordable one
# Expected Eq.2 fit per cell: curvature of loss vs ln η relative to the loss (lrpredict.band, dense Step Law
# median) and loss noise relative to the loss (issue 11's synthetic σ = 0.002).
CURVATURE = 0.0099
LOSS_NOISE = 0.002
TARGET_FIELDS = ("params", "tokens", "active_params", "batch_tokens", "experts", "top_k")
ROUTING_FIELDS = ("experts", "top_k")  # MoE routing of the target: whole numbers, not sizes


@dataclass(frozen=True)
class Target:
    params: float
    tokens: float
    active_params: float | None = None
    batch_tokens: float | None = None
    experts: int | None = None  # MoE: routed experts and experts per token, for probes that route like it
    top_k: int | None = None
    arch: str | None = None  # "dense"/"moe" when a Hugging Face config said which

    def n(self, arch: str) -> float:
        """The N a calibrated law uses: active non-embedding parameters for MoE (lrpredict.calibrate.planner.law_n)."""
        return self.active_params if arch == "moe" and self.active_params is not None else self.params


# Plausible targets: suggest's floor on N (lrpredict.config.MIN_PARAMS), and the replay sweep's ceilings
# (calibrate/replay.py RANGES); tokens from 1M (below that no pre-training run exists).
TARGET_RANGES = {
    "params": (MIN_PARAMS, RANGES["N"][1]),
    "active_params": (MIN_PARAMS, RANGES["N_active"][1]),
    "tokens": (1e6, RANGES["D"][1]),
    "batch_tokens": RANGES["batch_tokens"][:2],
}


def read_target(
    params: str | None = None,
    tokens: str | None = None,
    active_params: str | None = None,
    batch_tokens: str | None = None,
    config: str | Path | None = None,
    hf_config: str | Path | None = None,
) -> Target | None:
    """The target from ``--target-*`` options, a JSON/TOML file with the same fields and/or the model's Hugging Face
    ``config.json`` (params, active params, experts, top-k; options win over the file, the file over the HF config)."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}  # the field an error names: the option, the file's key or the HF config
    arch = None
    if hf_config is not None:
        from_hf = _from_hf_config(hf_config)
        arch = from_hf.pop("arch")
        values.update(from_hf)
        origin.update(dict.fromkeys(from_hf, "target_hf_config"))
    if config is not None:
        path = checked_path("target_config", config)
        if not path.is_file() or path.suffix not in (".json", ".toml"):
            raise LrpredictError("target_config", str(config), "an existing .json or .toml file")
        # bounded: a device, FIFO, oversize or deeply nested file is one line (issue 23)
        text = bounded_read.read_text(path, option="target_config", limit=bounded_read.CONFIG_BYTES, what="file")
        bounded_read.check_nesting(text, option="target_config", where=str(config), toml=path.suffix == ".toml")
        try:
            loaded = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError, RecursionError) as exc:
            raise LrpredictError("target_config", str(config), f"valid {path.suffix[1:].upper()} ({exc})") from None
        if not isinstance(loaded, dict) or not loaded:  # [1, 2], 7, null, "abc": a traceback or characters as fields
            raise LrpredictError(
                "target_config", str(config), f"a table of the target's fields ({', '.join(TARGET_FIELDS)})"
            )
        unknown = sorted(set(loaded) - set(TARGET_FIELDS))
        if unknown:
            raise LrpredictError("target_config", ", ".join(unknown), f"fields {', '.join(TARGET_FIELDS)}")
        values.update(loaded)
        origin.update({k: f"target_config.{k}" for k in loaded})
    given = {"params": params, "tokens": tokens, "active_params": active_params, "batch_tokens": batch_tokens}
    values.update({k: v for k, v in given.items() if v is not None})
    origin.update({k: f"target_{k}" for k, v in given.items() if v is not None})
    if not set(values) - set(ROUTING_FIELDS):
        if values:
            raise LrpredictError("target_config", str(config), "the target's params and tokens with its experts, top_k")
        return None
    # parsed before the missing-field check: a typo ("7Q") is named before a missing partner field
    parsed = {k: parse_size(values[k], origin[k]) for k in sorted(set(values) - set(ROUTING_FIELDS))}
    for name in ("params", "tokens"):
        if name not in values:
            raise LrpredictError(f"target_{name}", None, f"the target's {name} too (e.g. 7B params, 2T tokens)")
    routing = {k: values[k] for k in ROUTING_FIELDS if k in values}
    for k, v in routing.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise LrpredictError(origin[k], v, "a whole number ≥ 1")
    for k, (low, high) in TARGET_RANGES.items():  # 1e40 params or 1,000 tokens: no run, and the plan would say ×1e9
        if k in parsed and not low <= parsed[k] <= high:
            raise LrpredictError(origin[k], values[k], f"{low:g} to {high:g} (a run someone could train)")
    if "active_params" in parsed and parsed["active_params"] > parsed["params"]:
        where = origin["active_params"]
        raise LrpredictError(where, values["active_params"], f"at most the target's params ({parsed['params']:.3g})")
    if "batch_tokens" in parsed and parsed["batch_tokens"] > parsed["tokens"]:
        raise LrpredictError(origin["batch_tokens"], values["batch_tokens"], "1 token to the target's tokens")
    return Target(**parsed, **routing, arch=arch)


def _from_hf_config(source: str | Path) -> dict[str, Any]:
    """params, active_params (MoE), experts, top_k and arch of a Hugging Face config.json, counted the way
    ``suggest --hf-config`` counts them (lrpredict.architecture.count_parameters)."""
    from lrpredict.architecture import count_parameters
    from lrpredict.hf_config import architecture_from_hf

    try:
        shape = architecture_from_hf(source)
    except LrpredictError as exc:
        field = exc.field if exc.field.startswith("hf_config") else f"hf_config.{exc.field}"
        raise LrpredictError(field.replace("hf_config", "target_hf_config", 1), exc.value, exc.allowed) from None
    counts = count_parameters(shape)
    out: dict[str, Any] = {"params": float(counts.non_embedding), "arch": "moe" if shape.is_moe else "dense"}
    if shape.is_moe:
        out |= {"active_params": float(counts.non_embedding_active), "experts": shape.n_experts, "top_k": shape.top_k}
    return out


def vertex_sd(n_lrs: int, spacing: float = math.log(2.0)) -> float:
    """Expected sd of an Eq.2 vertex from ``n_lrs`` LRs ``spacing`` apart in ln η, centred on the optimum."""
    offsets = [(k - (n_lrs - 1) / 2) * spacing for k in range(n_lrs)]
    return LOSS_NOISE / (2 * CURVATURE * math.sqrt(sum(x * x for x in offsets)))


def predictive_sd(cells: list[tuple[float, float]], n_lrs: int, prior: Prior, n: float, tokens: float) -> float:
    """Expected posterior predictive sd of ln η* at (n, tokens) after probing ``cells`` [(N, D)], under ``prior``."""
    precision = np.linalg.inv(prior.covariance())  # correlated exponents (issue 20) carry over to the plan
    if cells:
        ln_n = np.log([c[0] for c in cells])
        ln_d = np.log([c[1] for c in cells])
        ref_n, ref_d = float(np.mean(ln_n)), float(np.mean(ln_d))
        design = np.stack([np.ones(len(cells)), ln_n - ref_n, ln_d - ref_d], axis=1)
        precision = precision + design.T @ design / (vertex_sd(n_lrs) ** 2 + MISFIT_SD**2)
    else:
        ref_n, ref_d = math.log(n), math.log(tokens)
    x = np.array([1.0, math.log(n) - ref_n, math.log(tokens) - ref_d])
    return float(np.sqrt(x @ np.linalg.inv(precision) @ x + MISFIT_SD**2))


@dataclass
class Candidate:
    widths: list[int]
    plan: Any  # a lrpredict.calibrate.planner.CalibrationPlan
    cost: float
    sd: float

    def factor(self) -> float:
        """The 90% interval of η* spans ×factor (low to high)."""
        return math.exp(2 * Z90 * self.sd)


@dataclass
class TargetPlan:
    chosen: Candidate
    cheaper: Candidate | None
    dearer: Candidate | None
    target: Target
    prior: Prior
    cost_unit: str
    largest_probe_n: float = 0.0  # the N a calibrated law uses, of the chosen plan's largest probe

    def lines(self, format_cost: Callable[[float], str]) -> list[str]:
        t = self.target
        out = [
            f"target N={t.params:.3g}{f' (active {t.active_params:.3g})' if t.active_params else ''}, "
            f"D={t.tokens:.3g} tokens: plan chosen for the narrowest 90% interval of the optimal LR there under the "
            f"prior {self.prior.law_id} (lrpredict.calibrate.target_plan; expected, before any probe runs)"
        ]
        for label, c in (("cheaper", self.cheaper), ("chosen", self.chosen), ("dearer", self.dearer)):
            if c is None:
                continue
            out.append(
                f"  {label:7s} widths {c.widths}: ~{format_cost(c.cost)} → 90% interval ×{c.factor():.3g} "
                f"(±{Z90 * c.sd:.3g} in ln η)"
            )
        out += self._prior_at_target()
        target_n = t.active_params if t.active_params is not None else t.params
        if target_n <= self.largest_probe_n:
            out.append(
                f"  the target (N {target_n:.3g}) is no larger than the probes (up to {self.largest_probe_n:.3g}): a "
                "calibration extrapolates to larger runs; at this size tune the LR on the run itself"
            )
        return out

    def _prior_at_target(self) -> list[str]:
        """What the prior alone says at the target, at its batch (--target-batch-tokens) or the law's optimal one,
        with the chosen plan's expected interval around it: the number the calibration will move."""
        from lrpredict.suggest import suggest

        t = self.target
        moe = t.active_params is not None
        try:
            s = suggest(
                arch="moe" if moe else "dense",
                params=t.params,
                active_params=t.active_params,
                tokens=t.tokens,
                batch_tokens=t.batch_tokens,
                law=self.prior.law(),
            )
        except LrpredictError:
            return []
        half = math.exp(Z90 * self.chosen.sd)
        where = "your --target-batch-tokens" if t.batch_tokens is not None else f"{self.prior.law_id}'s optimal batch"
        return [
            f"  before calibration, {self.prior.law_id} gives peak LR {s.lr:.3g} at batch {s.batch_tokens:.3g} tokens "
            f"({where}); the chosen plan should land within {s.lr / half:.3g}–{s.lr * half:.3g} (90%, at that batch "
            "by lrpredict's conditional batch law, whose own error is not in the interval)"
        ]


def cells_of(plan: Any, law_n: Callable[[Any], float]) -> list[tuple[float, float]]:
    return sorted({(law_n(p.arch), float(h)) for p in plan.probes for h in p.horizons})


def choose(
    build: Callable[[list[int]], Any | None],
    ladder: tuple[int, ...] | list[int],
    target: Target,
    prior: Prior,
    *,
    arch: str,
    cost: Callable[[Any], float],
    budget: float | None,
    n_lrs: int,
    law_n: Callable[[Any], float],
    max_sizes: int = 3,
    fixed: bool = False,
) -> TargetPlan | None:
    """Every run of 1..``max_sizes`` consecutive ladder widths, built by ``build`` (None: it cannot fit the budget)
    and priced by ``cost``; the cheapest within ``budget`` (None: any) whose sd is within TOLERANCE of the best
    affordable one; None when ``build`` built nothing.  ``fixed``: the ladder is the user's own widths, only
    evaluated."""
    n, tokens = target.n(arch), target.tokens
    runs = (
        [list(ladder)]
        if fixed
        else [list(ladder[s : s + k]) for k in range(1, max_sizes + 1) for s in range(len(ladder) - k + 1)]
    )
    candidates = []
    for widths in runs:
        plan = build(widths)
        if plan is None:  # no plan of these widths fits the budget (issue 19: a budget is a promise)
            continue
        cells = cells_of(plan, law_n)
        candidates.append(Candidate(widths, plan, cost(plan), predictive_sd(cells, n_lrs, prior, n, tokens)))
    if not candidates:
        return None
    affordable = [c for c in candidates if budget is None or c.cost <= budget] or [min(candidates, key=_cost)]
    best = min(c.sd for c in affordable)
    chosen = min((c for c in affordable if c.sd <= best * (1 + TOLERANCE)), key=_cost)
    cheaper = [c for c in candidates if c.cost < chosen.cost and c.sd > chosen.sd]
    dearer = [c for c in candidates if c.cost > chosen.cost and c.sd < chosen.sd]
    return TargetPlan(
        chosen,
        min(cheaper, key=lambda c: (c.sd, c.cost)) if cheaper else None,
        min(dearer, key=_cost) if dearer else None,
        target,
        prior,
        "cost",
        largest_probe_n=max(c[0] for c in cells_of(chosen.plan, law_n)),
    )


def _cost(c: Candidate) -> float:
    return c.cost
