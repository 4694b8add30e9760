"""``suggest``: peak LR, weight decay and batch size for a run, with the law, units and validity behind each."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lrpredict.band import CURVATURE_SOURCE, DEFAULT_TOLERANCE, lr_band
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError, MissingInputError
from lrpredict.laws import VARIABLE_MEANING, HorizonRatio, LawFile, PowerLaw, Schedule, Status, weakest
from lrpredict.registry import DEFAULT_LAW, laws, load_law

# Weight decay until a weight-decay law is chosen: the value the big open recipes use.
DEFAULT_WEIGHT_DECAY = 0.1
DEFAULT_WEIGHT_DECAY_RULE = (
    "default-0.1: λ = 0.1, the practice of DeepSeek LLM, DeepSeek-V3 and Ling (a convention, not a fitted law)"
)
# Beyond this factor between the user's batch and a law's optimal batch the law's LR is not for that batch.
BATCH_MISMATCH_FACTOR = 2.0


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

    lr: float = Field(description="peak learning rate (AdamW)")
    lr_range: LrRange
    weight_decay: float = Field(description="AdamW decoupled weight decay λ (PyTorch convention)")
    weight_decay_law: str
    batch_tokens: float = Field(description="batch size in tokens per optimizer step")
    batch_source: str
    law: str
    law_title: str
    citation: str
    status: Status = Field(description="the weakest status of the coefficients used")
    domain: Literal["inside", "extrapolated"]
    conventions: dict[str, str]
    inputs: dict[str, float] = Field(description="the law's variables as evaluated (N, D, M, C)")
    schedule: Schedule
    batch_policy: str
    warnings: list[str]
    derivation: list[Factor]

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


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


def suggest(
    config: ModelConfig,
    law: str | LawFile | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    reference_lr: float | None = None,
    reference_tokens: float | None = None,
) -> Suggestion:
    """Peak LR, weight decay and batch for ``config`` from ``law`` (default: the best-scoring law for the arch).

    A relative law (e.g. ``bjorck-2024``) moves ``reference_lr``, tuned at ``reference_tokens`` with the same
    model and batch, to ``config.tokens``.
    """
    if not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise LrpredictError("tolerance", tolerance, "a relative loss between 0 and 1, e.g. 0.0025")
    chosen = load_law(law if law is not None else DEFAULT_LAW[config.arch])
    if chosen.lr is None:
        raise LrpredictError("law", chosen.id, "a law that predicts lr")
    warnings: list[str] = []
    if config.arch not in chosen.architectures:
        warnings.append(
            f"{chosen.id} was fitted on {'/'.join(chosen.architectures)} models only; this run is {config.arch}"
        )
    values = resolve_variables(config, chosen)

    derivation: list[Factor]
    if isinstance(chosen.lr, HorizonRatio):
        if reference_lr is None or reference_tokens is None:
            raise MissingInputError(
                chosen.id, "a reference LR tuned at a reference horizon", "reference_lr and reference_tokens"
            )
        for name, value in (("reference_lr", reference_lr), ("reference_tokens", reference_tokens)):
            if not (math.isfinite(value) and value > 0):
                raise LrpredictError(name, value, "a finite number > 0")
        lr = chosen.lr.evaluate_relative(reference_lr, reference_tokens, config.tokens)
        derivation = [
            Factor(name="η_ref", value=reference_lr, unit="peak LR", source="your reference run"),
            Factor(name="D/D_ref", value=config.tokens / reference_tokens, source="config.tokens / reference_tokens"),
            Factor(
                name=f"(D/D_ref)^{chosen.lr.exponent.value:g}",
                value=lr / reference_lr,
                source=f"{chosen.id} ({chosen.lr.exponent.status})",
            ),
            Factor(name="η", value=lr, unit="peak LR", source=f"{chosen.id}"),
        ]
    else:
        lr = chosen.lr.evaluate(values)
        derivation = _power_law_factors(chosen.lr, values, chosen, "η")

    batch, batch_source, batch_factors = _batch(config, chosen, values, warnings)
    derivation += batch_factors

    weight_decay, weight_decay_law = _weight_decay(chosen)
    derivation.append(Factor(name="λ", value=weight_decay, source=weight_decay_law))

    low, high = lr_band(lr, config.arch, tolerance)
    lr_range = LrRange(low=low, high=high, tolerance=tolerance, source=CURVATURE_SOURCE)

    out_of_domain = chosen.domain_status(values)
    warnings += out_of_domain
    warnings += _open_warnings(chosen)
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
        weight_decay=weight_decay,
        weight_decay_law=weight_decay_law,
        batch_tokens=batch,
        batch_source=batch_source,
        law=chosen.id,
        law_title=chosen.title,
        citation=chosen.citation,
        status=chosen.status,
        domain="extrapolated" if out_of_domain else "inside",
        conventions=conventions,
        inputs=values,
        schedule=chosen.schedule,
        batch_policy=chosen.batch_policy,
        warnings=warnings,
        derivation=derivation,
    )


def _batch(
    config: ModelConfig, law: LawFile, values: dict[str, float], warnings: list[str]
) -> tuple[float, str, list[Factor]]:
    """The recommended batch: the law's optimum, or (fixed-batch law) the user's, or a labelled fallback law."""
    if law.batch is not None and isinstance(law.batch, PowerLaw):
        batch = law.batch.evaluate(values)
        if config.batch_tokens is not None and law.batch_policy == "optimal":
            ratio = config.batch_tokens / batch
            if not 1 / BATCH_MISMATCH_FACTOR <= ratio <= BATCH_MISMATCH_FACTOR:
                warnings.append(
                    f"batch policy mismatch: {law.id} gives the LR at its optimal batch {batch:.3g} tokens; your "
                    f"batch {config.batch_tokens:.3g} is {ratio:.2g}× that, where the optimal LR differs"
                )
        return batch, f"{law.id} optimal batch", _power_law_factors(law.batch, values, law, "B")
    if law.batch_policy == "fixed" and config.batch_tokens is not None:
        return config.batch_tokens, f"your batch ({law.id} assumes a fixed batch)", []
    fallback = load_law(DEFAULT_LAW["dense"])
    assert fallback.batch is not None and isinstance(fallback.batch, PowerLaw)
    fallback_values = resolve_variables(config, fallback, set(fallback.batch.variables()))
    batch = fallback.batch.evaluate(fallback_values)
    warnings.append(f"{law.id} predicts no batch size; the batch comes from {fallback.id}")
    return (
        batch,
        f"{fallback.id} optimal batch ({law.id} gives none)",
        _power_law_factors(fallback.batch, fallback_values, fallback, "B"),
    )


def _weight_decay(law: LawFile) -> tuple[float, str]:
    if law.optimizer.weight_decay is not None:
        return law.optimizer.weight_decay, f"{law.id}: the weight decay its law was fitted with"
    return DEFAULT_WEIGHT_DECAY, DEFAULT_WEIGHT_DECAY_RULE


def compare(config: ModelConfig, **kwargs: float) -> list[tuple[LawFile, Suggestion | LrpredictError]]:
    """Every absolute law on ``config``; a law that cannot answer gives the error that says why."""
    out: list[tuple[LawFile, Suggestion | LrpredictError]] = []
    for law in laws():
        if law.lr is None or (law.relative and "reference_lr" not in kwargs):
            continue
        try:
            out.append((law, suggest(config, law, **kwargs)))
        except LrpredictError as exc:
            out.append((law, exc))
    return out


def status_rank(statuses: list[str]) -> str:
    return weakest(statuses)
