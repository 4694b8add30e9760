"""Stage 2 of ``suggest``, the point prediction.  Reads the :class:`~lrpredict.pipeline.state.Resolved` law and
variables; adds the peak LR (the law's, or a relative law's move of your reference LR), the optimal batch (the law's
or a labelled fallback's), the LR at your batch (lrpredict's conditional batch law), the weight decay from that LR
and batch, and the schedule recipe, each step a :class:`~lrpredict.suggestion.Factor` of the derivation, with the
warnings about them (batch far from optimal, routing unlike a calibrated MoE law's probes, the weight-decay law's
own domain)."""

from __future__ import annotations

import math

from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError, MissingInputError
from lrpredict.laws import VARIABLE_MEANING, HorizonRatio, LawFile, PowerLaw, weakest
from lrpredict.pipeline.resolve import open_warnings, resolve_variables
from lrpredict.pipeline.state import Point, Resolved
from lrpredict.registry import DEFAULT_LAW, DEFAULT_WEIGHT_DECAY_LAW, conditional_batch_law_id, load_law
from lrpredict.schedule import recommend_schedule
from lrpredict.suggestion import Factor

# An MoE target whose active fraction is this many times off the probes' routes differently from them: on the Step
# Law MoE sweep the best batch did not follow active N across activation ratios (docs/benchmarks.md, calibration
# extrapolation (e); docs/log.md 2026-12-01).
ROUTING_MISMATCH = 2.0


def predict(resolved: Resolved) -> Point:
    """LR, batch, LR at your batch, weight decay and schedule for the resolved law (see the module docstring)."""
    config, law, values, request = resolved.config, resolved.law, resolved.values, resolved.request
    warnings: list[str] = []
    if isinstance(law.lr, HorizonRatio):
        lr, derivation = _relative_lr(config, law, law.lr, request.reference_lr, request.reference_tokens)
    else:
        assert law.lr is not None  # resolve refuses a law without an LR
        lr = law.lr.evaluate(values)
        derivation = power_law_factors(law.lr, values, law, "η")
    optimal_batch, batch_source, batch_factors = _optimal_batch(config, law, values, warnings)
    derivation += batch_factors

    lr_at_optimal_batch = lr
    batch = optimal_batch
    if config.batch_tokens is not None:
        batch = config.batch_tokens
        if law.batch_policy == "optimal":
            lr, factor = _lr_at_batch(config, lr, optimal_batch, warnings)
            derivation.append(factor)
            batch_source = f"your batch; LR moved from {law.id}'s optimal batch by {factor.source.split(' ')[0]}"
        else:
            lr, batch_source = _fixed_batch_lr(config, law, lr, optimal_batch, derivation, warnings)
    elif law.batch_policy == "fixed" and (fitted_at := _fitted_batch(law)) is not None:
        # a law fitted at one batch, asked for the optimal one: moved there from its batch, as for any other batch
        at_optimum = config.model_copy(update={"batch_tokens": optimal_batch})
        lr, _ = _fixed_batch_lr(at_optimum, law, lr, optimal_batch, derivation, [])
        lr_at_optimal_batch = lr
        batch_source += f"; LR moved to it from {law.id}'s batch {fitted_at:.4g} by the conditional batch law"
    _probe_batch_warning(law, batch, warnings)
    _routing_warning(config, law, warnings)

    wd_law = _weight_decay_law(request.weight_decay_law)
    weight_decay, wd_factors = _weight_decay(config, wd_law, lr, batch, warnings)
    return Point(
        lr=lr,
        lr_at_optimal_batch=lr_at_optimal_batch,
        optimal_batch=optimal_batch,
        batch=batch,
        batch_source=batch_source,
        weight_decay=weight_decay,
        weight_decay_law=wd_law.id,
        recommended_schedule=recommend_schedule(law, lr, batch, config.tokens),
        derivation=derivation + wd_factors,
        warnings=warnings,
    )


def power_law_factors(pred: PowerLaw, values: dict[str, float], law: LawFile, symbol: str) -> list[Factor]:
    """A power law's value as its factors: the coefficient, each variable's power, and the product."""
    factors = [Factor(name="c", value=pred.coefficient.value, source=f"{law.id} ({pred.coefficient.describe()})")]
    for var, exponent in pred.exponents.items():
        scale = pred.scales[var].value if var in pred.scales else 1.0
        shown = f"({var}/{scale:g})" if scale != 1.0 else var
        factors.append(
            Factor(
                name=f"{shown}^{exponent.value:g}",
                value=(values[var] / scale) ** exponent.value,
                source=f"{var} = {values[var]:.4g} ({VARIABLE_MEANING[var]}); exponent {law.id} ({exponent.describe()})",
            )
        )
    factors.append(Factor(name=symbol, value=pred.evaluate(values), source=f"{law.id}: product of the above"))
    return factors


def _relative_lr(
    config: ModelConfig,
    law: LawFile,
    rule: HorizonRatio,
    reference_lr: float | None,
    reference_tokens: float | None,
) -> tuple[float, list[Factor]]:
    """A relative law: your reference LR, tuned at ``reference_tokens``, moved to ``config.tokens``."""
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
        copied = law.provenance.get("batch_law_from")  # a calibration that measured no B_opt copies its prior's
        label = f"{law.id} optimal batch" + (f", {copied}'s copied (the probes measured none)" if copied else "")
        return law.batch.evaluate(values), label, power_law_factors(law.batch, values, law, "B")
    fallback = load_law(DEFAULT_LAW["dense"])
    assert fallback.batch is not None
    fallback_values = resolve_variables(config, fallback, set(fallback.batch.variables()))
    if config.batch_tokens is None:
        warnings.append(f"{law.id} predicts no batch size; the batch comes from {fallback.id}")
    return (
        fallback.batch.evaluate(fallback_values),
        f"{fallback.id} optimal batch ({law.id} gives none)",
        power_law_factors(fallback.batch, fallback_values, fallback, "B_opt"),
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


def _weight_decay_law(given: str | LawFile | None) -> LawFile:
    """The weight-decay law given (or the default); a bad one is named as the option given, not --law (issue 23)."""
    try:
        return load_law(given if given is not None else DEFAULT_WEIGHT_DECAY_LAW)
    except LrpredictError as exc:
        if exc.field != "law" or given is None:
            raise
        raise LrpredictError("weight_decay_law", exc.value, exc.allowed) from None


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
    warnings += open_warnings(law)
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


def _fixed_batch_lr(
    config: ModelConfig, law: LawFile, lr: float, optimal_batch: float, derivation: list[Factor], warnings: list[str]
) -> tuple[float, str]:
    """A fixed-batch law at the user's batch: moved from the batch it was fitted at by the conditional batch law
    when the law records it (calibrated laws: the probes' batch), else unmoved with a warning."""
    batch = config.batch_tokens
    assert batch is not None
    fitted_at = _fitted_batch(law)
    if fitted_at is None:
        warnings.append(
            f"{law.id} assumes a fixed batch that it does not record: its LR is not moved for your batch "
            f"{batch:.4g} tokens (the optimum moves with the batch: lrpredict-batch-{config.arch}-2026)"
        )
        return lr, f"your batch ({law.id} assumes a fixed batch; LR not moved for it)"
    at_fit, _ = _lr_at_batch(config.model_copy(update={"batch_tokens": float(fitted_at)}), 1.0, optimal_batch, [])
    moved, factor = _lr_at_batch(config, lr, optimal_batch, warnings)
    derivation.append(
        Factor(
            name="conditional batch law, relative to the fit's batch",
            value=moved / lr / at_fit,
            source=f"{factor.source}; divided by its value at the batch {law.id} was fitted at ({fitted_at:.4g} tokens)",
        )
    )
    return moved / at_fit, f"your batch; LR moved from {law.id}'s batch {fitted_at:.4g} by the conditional batch law"


def _fitted_batch(law: LawFile) -> float | None:
    """The one batch a fixed-batch law was fitted at, in tokens (calibrated laws record their probes'), or None."""
    fitted_at = law.provenance.get("probe_batch_tokens")
    return float(fitted_at) if isinstance(fitted_at, (int, float)) and fitted_at > 0 else None


def _probe_batch_warning(law: LawFile, batch: float, warnings: list[str]) -> None:
    """A calibrated law used at a batch other than its probes': the LR there is the conditional batch law's move."""
    if law.posterior is None or not law.posterior.probe_batch_tokens:
        return
    probe_batch = law.posterior.probe_batch_tokens
    if abs(math.log(batch / probe_batch)) > 1e-9:
        warnings.append(
            f"{law.id} was calibrated at the probes' batch {probe_batch:.4g} tokens; at batch {batch:.4g} "
            f"({batch / probe_batch:.3g}× the probes') the LR comes from lrpredict's conditional batch law "
            "relative to the probes' batch"
            + (
                " (the probes' optima were moved to B_opt by it)"
                if law.posterior.probe_batch_policy == "optimal"
                else ""
            )
        )


def routes_differently(probes_fraction: float, target_fraction: float) -> bool:
    """Whether a target activating ``target_fraction`` of its parameters is more than ``ROUTING_MISMATCH`` off
    probes that activated ``probes_fraction``."""
    return max(target_fraction / probes_fraction, probes_fraction / target_fraction) > ROUTING_MISMATCH


def _routing_warning(config: ModelConfig, law: LawFile, warnings: list[str]) -> None:
    """A calibrated MoE law carried to a target that activates a very different share of its parameters."""
    routing = law.provenance.get("moe_routing")
    if config.arch != "moe" or not isinstance(routing, dict) or config.active_params is None:
        return
    probes = routing.get("active_fraction")
    if not isinstance(probes, (int, float)) or not 0 < probes <= 1:
        return
    target = config.active_params / config.params
    if routes_differently(probes, target):
        warnings.append(
            f"{law.id}'s probes activated {probes:.1%} of their parameters ({routing.get('experts')} experts, "
            f"top-{routing.get('top_k')}), this run {target:.1%}: across activation ratios its batch law and N exponent "
            "are extrapolations (calibrate with --experts/--top-k like the target)"
        )
