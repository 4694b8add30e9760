"""``suggest``: peak LR, weight decay and batch size for a run, with the law, units and validity behind each."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lrpredict.band import CURVATURE_SOURCE, DEFAULT_TOLERANCE, lr_band
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError, MissingInputError
from lrpredict.law_checks import checked_prediction, require_config
from lrpredict.laws import VARIABLE_MEANING, HorizonRatio, LawFile, PowerLaw, Schedule, Status, weakest
from lrpredict.registry import DEFAULT_LAW, DEFAULT_WEIGHT_DECAY_LAW, conditional_batch_law_id, laws, load_law
from lrpredict.schedule import ScheduleRecipe, recommend_schedule


class Factor(BaseModel):
    """One step of a derivation: a quantity, its value, unit and where it comes from."""

    model_config = ConfigDict(frozen=True)
    name: str
    value: float
    unit: str = ""
    source: str


class LrRange(BaseModel):
    model_config = ConfigDict(frozen=True)
    low: float
    high: float
    tolerance: float = Field(description="relative loss above the optimum that the band allows")
    source: str


class Suggestion(BaseModel):
    """Hyperparameters for one run.  Every number states its law; ``warnings`` lists what to distrust."""

    model_config = ConfigDict(frozen=True)

    lr: float = Field(description="peak learning rate (AdamW) at batch_tokens")
    lr_range: LrRange
    lr_at_optimal_batch: float = Field(description="the law's LR, at optimal_batch_tokens")
    weight_decay: float = Field(description="AdamW decoupled weight decay λ (PyTorch convention)")
    weight_decay_law: str
    weight_decay_groups: dict[str, float] = Field(description="λ per parameter group")
    batch_tokens: float = Field(description="batch size in tokens per optimizer step that lr is for")
    batch_source: str
    optimal_batch_tokens: float = Field(description="the optimal batch of the law (or of its fallback)")
    law: str
    law_title: str
    citation: str
    status: Status = Field(description="the weakest status of the coefficients used")
    domain: Literal["inside", "extrapolated"]
    conventions: dict[str, str]
    inputs: dict[str, float] = Field(description="the law's variables as evaluated (N, D, M, C)")
    schedule: Schedule = Field(description="the schedule the law was fitted with")
    recommended_schedule: ScheduleRecipe
    batch_policy: str
    seq_len: int | None = Field(default=None, description="the config's sequence length (exports need it)")
    warnings: list[str]
    derivation: list[Factor]

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_hf(self, **kw: Any) -> dict[str, Any]:
        """``transformers.TrainingArguments`` keyword arguments (see ``lrpredict.export.to_hf``)."""
        from lrpredict import export

        return export.to_hf(self, **kw)

    def to_torchtitan(self, **kw: Any) -> str:
        """A torchtitan TOML job-file fragment (see ``lrpredict.export.to_torchtitan``)."""
        from lrpredict import export

        return export.to_torchtitan(self, **kw)

    def to_megatron(self, **kw: Any) -> list[str]:
        """Megatron-LM command-line arguments (see ``lrpredict.export.to_megatron``)."""
        from lrpredict import export

        return export.to_megatron(self, **kw)


def resolve_variables(config: ModelConfig, law: LawFile, needed: set[str] | None = None) -> dict[str, float]:
    """The law's variables from the config, in the law's conventions; a missing one names the fields to give."""
    needed = law.variables() | set(law.domain) if needed is None else needed
    values: dict[str, float] = {"D": config.tokens}
    if "N" in needed:
        if law.conventions.n == "active":
            if config.n_active is None:
                raise MissingInputError(law.id, "N_active (active non-embedding parameters)", "active_params")
            values["N"] = config.n_active
        else:
            values["N"] = config.params
    if needed & {"M", "C"}:
        m = config.flops_per_token()
        if m is None:
            fields = "n_layers, d_model, seq_len" + (" and active_params" if config.n_active is None else "")
            raise MissingInputError(law.id, "M (non-embedding FLOPs per token)", fields)
        values["M"] = m
        values["C"] = m * config.tokens
    if "B" in needed:
        if config.batch_tokens is None:
            raise MissingInputError(law.id, "B (your batch size in tokens)", "batch_tokens")
        values["B"] = config.batch_tokens
    return values


def _power_law_factors(pred: PowerLaw, values: dict[str, float], law: LawFile, symbol: str) -> list[Factor]:
    factors = [Factor(name="c", value=pred.coefficient.value, source=f"{law.id} ({pred.coefficient.status})")]
    for var, exponent in pred.exponents.items():
        scale = pred.scales[var].value if var in pred.scales else 1.0
        shown = f"({var}/{scale:g})" if scale != 1.0 else var
        factors.append(
            Factor(
                name=f"{shown}^{exponent.value:g}",
                value=(values[var] / scale) ** exponent.value,
                source=f"{var} = {values[var]:.4g} ({VARIABLE_MEANING[var]}); exponent {law.id} ({exponent.status})",
            )
        )
    factors.append(Factor(name=symbol, value=pred.evaluate(values), source=f"{law.id}: product of the above"))
    return factors


def _open_warnings(law: LawFile) -> list[str]:
    return [
        f"{law.id}: coefficient '{name}' of {kind} is OPEN (unconfirmed){': ' + c.note if c.note else ''}"
        for kind, pred in law.predictions().items()
        for name, c in pred.coefficients().items()
        if c.status == "open"
    ]


@checked_prediction  # config type, overflow and the finite-positive output check (issue 15)
def suggest(
    config: ModelConfig,
    law: str | LawFile | None = None,
    *,
    weight_decay_law: str | LawFile | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    reference_lr: float | None = None,
    reference_tokens: float | None = None,
) -> Suggestion:
    """Peak LR, weight decay, batch and schedule for ``config``.

    ``law`` gives the LR (default: the best-scoring law for the arch, docs/benchmarks.md).  When
    ``config.batch_tokens`` is set and the law was fitted at the optimal batch, the LR is moved to that batch by
    lrpredict's conditional law.  ``weight_decay_law`` gives λ from the chosen LR and batch.  A relative law (e.g.
    ``bjorck-2024``) moves ``reference_lr``, tuned at ``reference_tokens`` with the same model and batch, to
    ``config.tokens``.
    """
    if not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise LrpredictError("tolerance", tolerance, "a relative loss between 0 and 1, e.g. 0.0025")
    chosen = load_law(law if law is not None else DEFAULT_LAW[config.arch])
    if chosen.lr is None:
        raise LrpredictError("law", chosen.id, "a law that predicts lr (see lrpredict show-law)")
    if not chosen.relative and (reference_lr is not None or reference_tokens is not None):
        # an absolute law would ignore them silently (issue 15)
        given = "reference_lr" if reference_lr is not None else "reference_tokens"
        raise LrpredictError(
            given, reference_lr if reference_lr is not None else reference_tokens,
            f"only with a relative law such as bjorck-2024; {chosen.id} predicts the LR itself",
        )
    warnings: list[str] = []
    if config.arch not in chosen.architectures:
        fitted = "/".join(chosen.architectures)
        warnings.append(f"{chosen.id} was fitted on {fitted} models only; this run is {config.arch}")
    values = resolve_variables(config, chosen)

    if isinstance(chosen.lr, HorizonRatio):
        lr, derivation = _relative_lr(config, chosen, chosen.lr, reference_lr, reference_tokens)
    else:
        lr = chosen.lr.evaluate(values)
        derivation = _power_law_factors(chosen.lr, values, chosen, "η")
    optimal_batch, batch_source, batch_factors = _optimal_batch(config, chosen, values, warnings)
    derivation += batch_factors

    lr_at_optimal_batch = lr
    batch = optimal_batch
    if config.batch_tokens is not None:
        batch = config.batch_tokens
        if chosen.batch_policy == "optimal":
            lr, factor = _lr_at_batch(config, lr, optimal_batch, warnings)
            derivation.append(factor)
            batch_source = f"your batch; LR moved from {chosen.id}'s optimal batch by {factor.source.split(' ')[0]}"
        else:
            batch_source = f"your batch ({chosen.id} assumes a fixed batch)"

    wd_law = load_law(weight_decay_law if weight_decay_law is not None else DEFAULT_WEIGHT_DECAY_LAW)
    weight_decay, wd_factors = _weight_decay(config, wd_law, lr, batch, warnings)
    derivation += wd_factors

    low, high = lr_band(lr, config.arch, tolerance)
    lr_range = LrRange(low=low, high=high, tolerance=tolerance, source=CURVATURE_SOURCE)

    out_of_domain = chosen.domain_status(values)
    warnings += out_of_domain
    warnings += _open_warnings(chosen)
    if config.schedule is not None and chosen.schedule.kind not in ("unknown", config.schedule):
        warnings.append(
            f"schedule mismatch: {chosen.id} was fitted with a {chosen.schedule.kind} schedule, you train with "
            f"{config.schedule}; the optimal peak LR depends on the schedule"
        )
    conventions = {
        "N": chosen.conventions.n_note or f"{chosen.conventions.n} non-embedding parameters",
        "D": chosen.conventions.d,
        "B": chosen.conventions.b,
    }
    if chosen.conventions.m:
        conventions["M"] = chosen.conventions.m
    return Suggestion(
        lr=lr,
        lr_range=lr_range,
        lr_at_optimal_batch=lr_at_optimal_batch,
        weight_decay=weight_decay,
        weight_decay_law=wd_law.id,
        # no decay on embeddings, norms and biases: nanoGPT's practice; the weight-decay laws speak of the matrices
        weight_decay_groups={"matrices": weight_decay, "embeddings": 0.0, "norms_and_biases": 0.0},
        batch_tokens=batch,
        batch_source=batch_source,
        optimal_batch_tokens=optimal_batch,
        law=chosen.id,
        law_title=chosen.title,
        citation=chosen.citation,
        status=chosen.status,
        domain="extrapolated" if out_of_domain else "inside",
        conventions=conventions,
        inputs=values,
        schedule=chosen.schedule,
        recommended_schedule=recommend_schedule(chosen, lr, batch, config.tokens),
        batch_policy=chosen.batch_policy,
        seq_len=config.seq_len,
        warnings=warnings,
        derivation=derivation,
    )


def _relative_lr(
    config: ModelConfig,
    law: LawFile,
    rule: HorizonRatio,
    reference_lr: float | None,
    reference_tokens: float | None,
) -> tuple[float, list[Factor]]:
    if reference_lr is None or reference_tokens is None:
        raise MissingInputError(
            law.id, "a reference LR tuned at a reference horizon", "reference_lr and reference_tokens"
        )
    for name, value in (("reference_lr", reference_lr), ("reference_tokens", reference_tokens)):
        if not (math.isfinite(value) and value > 0):
            raise LrpredictError(name, value, "a finite number > 0")
    lr = rule.evaluate_relative(reference_lr, reference_tokens, config.tokens)
    return lr, [
        Factor(name="η_ref", value=reference_lr, unit="peak LR", source="your reference run"),
        Factor(name="D/D_ref", value=config.tokens / reference_tokens, source="config.tokens / reference_tokens"),
        Factor(
            name=f"(D/D_ref)^{rule.exponent.value:g}",
            value=lr / reference_lr,
            source=f"{law.id} ({rule.exponent.status})",
        ),
        Factor(name="η", value=lr, unit="peak LR", source=law.id),
    ]


def _optimal_batch(
    config: ModelConfig, law: LawFile, values: dict[str, float], warnings: list[str]
) -> tuple[float, str, list[Factor]]:
    """The law's optimal batch, or a labelled fallback law's when it gives none."""
    if law.batch is not None:
        return law.batch.evaluate(values), f"{law.id} optimal batch", _power_law_factors(law.batch, values, law, "B")
    fallback = load_law(DEFAULT_LAW["dense"])
    assert fallback.batch is not None
    fallback_values = resolve_variables(config, fallback, set(fallback.batch.variables()))
    if config.batch_tokens is None:
        warnings.append(f"{law.id} predicts no batch size; the batch comes from {fallback.id}")
    return (
        fallback.batch.evaluate(fallback_values),
        f"{fallback.id} optimal batch ({law.id} gives none)",
        _power_law_factors(fallback.batch, fallback_values, fallback, "B_opt"),
    )


def _lr_at_batch(config: ModelConfig, lr: float, optimal_batch: float, warnings: list[str]) -> tuple[float, Factor]:
    """Move an LR that is optimal at the optimal batch to the user's batch (lrpredict's conditional law)."""
    conditional = load_law(conditional_batch_law_id(config.arch))
    assert conditional.lr_batch is not None
    batch = config.batch_tokens
    assert batch is not None
    ratio = batch / optimal_batch
    factor = conditional.lr_batch.factor(batch, optimal_batch)
    low, high = conditional.domain.get("B_ratio", (0.0, math.inf))
    if not low <= ratio <= high:
        warnings.append(
            f"your batch is {ratio:.3g}× the optimal batch {optimal_batch:.3g}; {conditional.id} was fitted on "
            f"ratios {low:.3g}–{high:.3g}: extrapolation"
        )
    if not 0.25 <= ratio <= 4:
        warnings.append(
            f"your batch {batch:.3g} is {ratio:.2g}× the optimal batch {optimal_batch:.3g} tokens: expect a higher "
            "loss at any LR (on the Step Law sweeps, 4× off costs 0.3–2% of loss)"
        )
    exponent = conditional.lr_batch.s_below if ratio < 1 else conditional.lr_batch.s_above
    return lr * factor, Factor(
        name=f"(B/B_opt)^{exponent.value:g}",
        value=factor,
        source=f"{conditional.id} ({exponent.status}); B/B_opt = {ratio:.4g}",
    )


def _weight_decay(
    config: ModelConfig, law: LawFile, lr: float, batch: float, warnings: list[str]
) -> tuple[float, list[Factor]]:
    if law.weight_decay is None:
        raise LrpredictError("weight_decay_law", law.id, "a law that predicts weight_decay (e.g. powerlines-2025)")
    rule = law.weight_decay
    n = config.params
    tau = rule.optimal_tau(n, config.tokens)
    weight_decay = rule.weight_decay(lr, batch, config.tokens, n)
    if config.arch not in law.architectures:
        warnings.append(f"{law.id} (weight decay) was fitted on {'/'.join(law.architectures)} models only")
    warnings += law.domain_status({"N": n, "D": config.tokens})
    warnings += _open_warnings(law)
    steps = config.tokens / batch
    return weight_decay, [
        Factor(
            name=f"τ = {rule.tau.value:g}·(D/N)^{rule.tpp_exponent.value:g}",
            value=tau,
            unit="of training",
            source=f"{law.id} ({weakest([rule.tau.status, rule.tpp_exponent.status])}); D/N = {config.tokens / n:.3g}",
        ),
        Factor(name="λ = B/(η·τ·D)", value=weight_decay, source=f"{law.id}; {steps:.4g} steps at η = {lr:.3g}"),
    ]


def compare(config: ModelConfig, **kwargs: float) -> list[tuple[LawFile, Suggestion | LrpredictError]]:
    """Every absolute law on ``config``; a law that cannot answer gives the error that says why."""
    require_config("config", config)  # else every row would carry the same config error
    out: list[tuple[LawFile, Suggestion | LrpredictError]] = []
    for law in laws():
        if law.lr is None or (law.relative and "reference_lr" not in kwargs):
            continue
        # references move a relative law's LR; an absolute law takes none (suggest refuses them)
        own = kwargs if law.relative else {k: v for k, v in kwargs.items() if not k.startswith("reference_")}
        try:
            out.append((law, suggest(config, law, **own)))
        except LrpredictError as exc:
            out.append((law, exc))
    return out
