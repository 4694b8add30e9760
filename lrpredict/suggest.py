"""``suggest``: peak LR, weight decay and batch size for a run, with the law, units and validity behind each."""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Mapping
from typing import Any

from lrpredict import bounds, default_blend
from lrpredict.band import CURVATURE_SOURCE, DEFAULT_TOLERANCE, lr_band
from lrpredict.config import M_APPROXIMATION_WARNING, ModelConfig, coerce_config, describe_config
from lrpredict.errors import LrpredictError, MissingInputError
from lrpredict.law_checks import checked_prediction, require_config
from lrpredict.laws import VARIABLE_MEANING, HorizonRatio, LawFile, PowerLaw, weakest
from lrpredict.registry import (
    DEFAULT_LAW,
    DEFAULT_WEIGHT_DECAY_LAW,
    bundled_laws,
    conditional_batch_law_id,
    laws,
    load_law,
)
from lrpredict.runs import LR_SANE, WEIGHT_DECAY_SANE, NearestRun, nearest_runs
from lrpredict.schedule import recommend_schedule
from lrpredict.suggestion import Factor, LrRange, Suggestion
from lrpredict.units import parse_size


def resolve_variables(
    config: ModelConfig, law: LawFile, needed: set[str] | None = None, *, approximate_m: bool = False
) -> dict[str, float]:
    """The law's variables from the config, in the law's conventions; a missing one names the fields to give.
    ``approximate_m``: without width, depth and sequence length, take M = 6·N_active (attention FLOPs omitted)."""
    needed = law.variables() | set(law.domain) if needed is None else needed
    values: dict[str, float] = {"D": config.tokens}
    if "N" in needed:
        total, active = config.params_for(law.conventions.count)  # the law's own way of counting N (issue 14)
        if law.conventions.n == "active":
            if active is None:
                raise MissingInputError(law.id, "N_active (active non-embedding parameters)", "active_params")
            values["N"] = active
        else:
            values["N"] = total
    if needed & {"M", "C"}:
        m = config.flops_per_token()
        if m is None and approximate_m and config.n_active is not None:
            m = 6.0 * config.n_active
        if m is None:
            fields = "n_layers, d_model, seq_len" + (" and active_params" if config.n_active is None else "")
            if approximate_m:  # only the active count is missing: with it M ≈ 6·N_active
                fields = "active_params"
            raise MissingInputError(law.id, "M (non-embedding FLOPs per token)", fields)
        values["M"] = m
        values["C"] = m * config.tokens
    if "B" in needed:
        if config.batch_tokens is None:
            raise MissingInputError(law.id, "B (your batch size in tokens)", "batch_tokens")
        values["B"] = config.batch_tokens
    return values


def _power_law_factors(pred: PowerLaw, values: dict[str, float], law: LawFile, symbol: str) -> list[Factor]:
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


def _open_warnings(law: LawFile) -> list[str]:
    return [
        f"{law.id}: coefficient '{name}' of {kind} is OPEN (unconfirmed){': ' + c.note if c.note else ''}"
        for kind, pred in law.predictions().items()
        for name, c in pred.coefficients().items()
        if c.status == "open"
    ]


def suggest(
    config: ModelConfig | Mapping[str, Any] | None = None,
    law: str | LawFile | None = None,
    *,
    weight_decay_law: str | LawFile | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    reference_lr: float | None = None,
    reference_tokens: float | str | None = None,
    **fields: Any,
) -> Suggestion:
    """Peak LR, weight decay, batch and schedule for a run given as a ``ModelConfig``, a mapping of its fields, or
    keyword fields.

    ``law`` gives the LR (default: the best-scoring law for the arch, docs/benchmarks.md).  When
    ``config.batch_tokens`` is set and the law was fitted at the optimal batch, the LR is moved to that batch by
    lrpredict's conditional law.  ``weight_decay_law`` gives λ from the chosen LR and batch.  A relative law (e.g.
    ``bjorck-2024``) moves ``reference_lr``, tuned at ``reference_tokens`` with the same model and batch, to
    ``config.tokens``.  ``print(s)`` shows the command line's summary.

    >>> s = suggest(params="1B", tokens="20B")
    >>> s.law, s.domain
    ('steplaw-2025', 'inside')
    >>> suggest({"params": "1B", "tokens": "20B"}).lr == s.lr
    True
    """
    if isinstance(reference_tokens, str):
        reference_tokens = parse_size(reference_tokens, "reference_tokens")
    # numpy scalars and Decimal are numbers too (sizes already take them): float them here, where the type is known,
    # rather than fail with a TypeError inside a law (QA 2026-12-01)
    tolerance, reference_lr, reference_tokens = (_as_float(v) for v in (tolerance, reference_lr, reference_tokens))
    for name, value in (("reference_lr", reference_lr), ("reference_tokens", reference_tokens)):
        if isinstance(value, float):
            bounds.check(name, value)  # 1e308 was blamed on the weight-decay law (issue 23)
    return _suggest(
        coerce_config(config, fields),
        law,
        weight_decay_law=weight_decay_law,
        tolerance=tolerance,
        reference_lr=reference_lr,
        reference_tokens=reference_tokens,
    )


def _as_float(value: Any) -> Any:
    """A real number other than a bool as a float; anything else as it is (the checks downstream name it)."""
    if isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, (bool, float)):
        return float(value)
    return value


def law_used(law: str | LawFile | None, config: ModelConfig) -> str:
    """The id of the law ``suggest`` uses: with no law given, the one :func:`default_law` chooses for ``config``
    (far from Step Law's domain that is a compute law, not ``registry.DEFAULT_LAW``)."""
    if law is not None:
        return str(getattr(law, "id", law))
    try:
        return default_law(config)[0].id
    except (LrpredictError, OverflowError, ZeroDivisionError):
        return DEFAULT_LAW.get(config.arch, "default")


@checked_prediction(law_used)  # config type, overflow and the finite-positive output check (issue 15)
def _suggest(
    config: ModelConfig,
    law: str | LawFile | None = None,
    *,
    weight_decay_law: str | LawFile | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    reference_lr: float | None = None,
    reference_tokens: float | None = None,
    approximate_m: bool = True,
    with_runs: bool = True,
) -> Suggestion:
    """``suggest`` on a ModelConfig (see there).  ``approximate_m``: without a shape, M ≈ 6·N_active, with a warning
    (the LR moves ~2%, far less than the laws disagree; the default and an explicit compute law alike, issue 20).
    ``with_runs``: also the nearest published runs and the law at each (off when evaluating the law at a run: it
    would recurse)."""
    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool)) or not (
        math.isfinite(tolerance) and 0 < tolerance < 1
    ):  # None or "0.01" gave a TypeError (issue 15 fuzzing)
        raise LrpredictError("tolerance", tolerance, "a relative loss between 0 and 1, e.g. 0.0025")
    default_note = None
    if law is None:
        choice = default_blend.choose(config, resolve_variables)
        if choice.blended:
            return _blended(config, choice, weight_decay_law, tolerance, reference_lr, reference_tokens, with_runs)
        chosen, default_note = choice.law, choice.note
    else:
        chosen = load_law(law)
    if chosen.lr is None:
        raise LrpredictError("law", chosen.id, "a law that predicts lr (see lrpredict show-law)")
    if not chosen.relative and (reference_lr is not None or reference_tokens is not None):
        # an absolute law would ignore them silently (issue 15)
        given = "reference_lr" if reference_lr is not None else "reference_tokens"
        raise LrpredictError(
            given,
            reference_lr if reference_lr is not None else reference_tokens,
            f"only with a relative law such as bjorck-2024; {chosen.id} predicts the LR itself",
        )
    warnings: list[str] = []
    if config.arch not in chosen.architectures:
        fitted = "/".join(chosen.architectures)
        warnings.append(f"{chosen.id} was fitted on {fitted} models only; this run is {config.arch}")
    values = resolve_variables(config, chosen, approximate_m=approximate_m)
    if "M" in values and config.flops_per_token() is None:
        warnings.append(M_APPROXIMATION_WARNING)

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
            lr, batch_source = _fixed_batch_lr(config, chosen, lr, optimal_batch, derivation, warnings)
    if chosen.posterior is not None and chosen.posterior.probe_batch_tokens:
        probe_batch = chosen.posterior.probe_batch_tokens
        if abs(math.log(batch / probe_batch)) > 1e-9:
            warnings.append(
                f"{chosen.id} was calibrated at the probes' batch {probe_batch:.4g} tokens; at batch {batch:.4g} "
                f"({batch / probe_batch:.3g}× the probes') the LR comes from lrpredict's conditional batch law "
                "relative to the probes' batch (the probes' optima were moved to B_opt by it)"
            )

    _routing_warning(config, chosen, warnings)
    try:
        wd_law = load_law(weight_decay_law if weight_decay_law is not None else DEFAULT_WEIGHT_DECAY_LAW)
    except LrpredictError as exc:  # named as the option given, not --law (issue 23)
        if exc.field != "law" or weight_decay_law is None:
            raise
        raise LrpredictError("weight_decay_law", exc.value, exc.allowed) from None
    weight_decay, wd_factors = _weight_decay(config, wd_law, lr, batch, warnings)
    derivation += wd_factors

    low, high = lr_band(lr, config.arch, tolerance)
    # the meaning is stated, so the JSON says which kind of range it holds (issue 23: a loss band for bundled laws,
    # a predictive interval for calibrated ones, in the same field)
    meaning = f"loss band: expected within {tolerance:.2%} of the best loss"
    lr_range = LrRange(low=low, high=high, tolerance=tolerance, source=CURVATURE_SOURCE, meaning=meaning)

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
    if chosen.posterior is not None:
        lr_range = _posterior_range(lr_range, chosen, values, lr, warnings)
        wider = wider_than_default(config, chosen, lr_range, tolerance)
        if wider:
            warnings.append(wider)
    if chosen.validation is not None:  # issue 19: what the calibration's held-out cell said
        warnings.append(chosen.validation.describe(chosen.id))
    if chosen.posterior is None:
        lr_range = widen_for_extrapolation(lr_range, chosen, values)
    near, law_lrs = [], {}
    if with_runs:
        at_runs = chosen if default_note is None else None  # the default: the default again at each run
        near, law_lrs = _production_checks(
            config, at_runs, chosen.id, default_note, lr, batch, weight_decay, tolerance, warnings
        )
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
        nearest_runs=near,
        law_lrs=law_lrs,
        default_choice=default_note,
        run=describe_config(config),
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
        copied = law.provenance.get("batch_law_from")  # a calibration that measured no B_opt copies its prior's
        label = f"{law.id} optimal batch" + (f", {copied}'s copied (the probes measured none)" if copied else "")
        return law.batch.evaluate(values), label, _power_law_factors(law.batch, values, law, "B")
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
    """Every absolute law on ``config``; a law that cannot answer gives the error that says why.

    >>> rows = compare(ModelConfig(params="1B", tokens="20B"))
    >>> answered = {law.id: s.lr for law, s in rows if not isinstance(s, LrpredictError)}
    >>> "steplaw-2025" in answered and "deepseek-llm-2024" in answered  # without a shape, M ≈ 6·N (a warning says)
    True
    """
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


# --- production-scale defaults, distance and disagreement (issue 13; docs/choosing.md, docs/log.md 2026-11-30) ---

# Laws disagreeing by more than this factor at a config get a warning in the default output.
DISAGREEMENT_FACTOR = 2.0
# Octaves of LR error per decade of extrapolation, added to the band's half-width: the default law's error on the
# published runs grows with distance from its fitted domain (benchmarks/production_runs.py, docs/log.md 2026-11-30).
BAND_OCTAVES_PER_DECADE = 0.25


def default_law(config: ModelConfig) -> tuple[LawFile, str]:
    """The default's law for ``config`` (where it blends, the one with the largest weight) and why: the sweep-fitted
    law (Step Law) near the data it was fitted on, a compute law (``registry.PRODUCTION_LAW``) farther out, a blend
    in between (``lrpredict.default_blend``), chosen on sweeps and published runs together."""
    choice = default_blend.choose(config, resolve_variables)
    return choice.law, choice.note


def _blended(
    config: ModelConfig,
    choice: default_blend.DefaultChoice,
    weight_decay_law: str | LawFile | None,
    tolerance: float,
    reference_lr: float | None,
    reference_tokens: float | None,
    with_runs: bool,
) -> Suggestion:
    """The default where it blends laws: each law's suggestion at the config, combined by ``default_blend``."""
    members = [
        _suggest(
            config,
            law,
            weight_decay_law=weight_decay_law,
            tolerance=tolerance,
            reference_lr=reference_lr,  # an absolute law refuses them: the default does too
            reference_tokens=reference_tokens,
            with_runs=False,
        )
        for law, _ in choice.parts
    ]
    s = default_blend.combine(config, choice, members)
    if not with_runs:
        return s
    warnings = list(s.warnings)
    near, law_lrs = _production_checks(
        config, None, s.law, choice.note, s.lr, s.batch_tokens, s.weight_decay, tolerance, warnings
    )
    return s.model_copy(update={"warnings": warnings, "nearest_runs": near, "law_lrs": law_lrs})


# A calibrated law's range: the Eq.2 band's half-width and the posterior predictive 90% half-width of ln η* at the
# target add in quadrature in ln η (docs/calibrate.md, anchored fit).
Z90 = 1.6448536269514722


def _posterior_range(
    lr_range: LrRange, law: LawFile, values: dict[str, float], lr: float, warnings: list[str]
) -> LrRange:
    posterior = law.posterior
    assert posterior is not None
    n, tokens = values["N"], values["D"]
    predictive = Z90 * posterior.ln_sd(n, tokens)
    band = math.log(lr_range.high / lr)
    half = math.hypot(band, predictive)
    if 2 * predictive > math.log(2.0):
        # which parameter, if a probe pinned it, would narrow the interval most: α (a larger size) or β (a longer
        # horizon); the offset is what any probe measures
        by_size = posterior.ln_sd_without(n, tokens, 1)
        by_horizon = posterior.ln_sd_without(n, tokens, 2)
        # past the probes' largest size / horizon (the domain), not their centre (the reference): QA 2026-12-01
        top_n = law.domain.get("N", (0.0, posterior.reference["N"]))[1]
        top_d = law.domain.get("D", (0.0, posterior.reference["D"]))[1]
        probe = (
            f"a probe at a larger model size (N above {top_n:.3g}) to pin the N exponent"
            if by_size <= by_horizon
            else f"a probe at a longer horizon (D above {top_d:.3g} tokens) to pin the D exponent"
        )
        warnings.append(
            f"{law.id}: the 90% predictive interval of the optimal LR at this target spans ×{math.exp(2 * predictive):.3g} "
            f"(prior {posterior.prior}; {', '.join(f'{k} exponent set by the {v}' for k, v in posterior.set_by.items())}); "
            f"{probe} would narrow it most"
        )
    if posterior.conflict is not None and posterior.conflict.flagged:
        # issue 20: the probes contradicted the prior's exponents; the fit widened the prior (lrpredict.calibrate.conflict)
        warnings.append(f"{law.id}: {posterior.conflict.message}")
    if posterior.unbracketed_cells and (posterior.cells is None or 2 * posterior.unbracketed_cells >= posterior.cells):
        # most rows one-sided bounds: the 90% interval covered 70–87% (benchmarks/calibrate_censoring.py (B))
        of = f" of {posterior.cells}" if posterior.cells else ""
        warnings.append(
            f"{law.id}: {posterior.unbracketed_cells}{of} calibration cells had their optimum at the LR grid's edge "
            "(entered as one-sided bounds): the interval is optimistic; recalibrate with LRs past that edge"
        )
    return lr_range.model_copy(
        update={
            "low": lr * math.exp(-half),
            "high": lr * math.exp(half),
            "source": f"{lr_range.source}, combined in quadrature (ln η) with {law.id}'s posterior predictive 90% "
            f"interval at this N, D (±{predictive:.3g} in ln η, i.e. ×{math.exp(predictive):.3g})",
            "meaning": f"90% predictive interval of the optimum from {law.id}'s calibration, with the band within "
            f"{lr_range.tolerance:.2%} of the best loss",
        }
    )


def wider_than_default(config: ModelConfig, law: LawFile, lr_range: LrRange, tolerance: float) -> str | None:
    """A calibrated law less informative at ``config`` than the bundled default: its posterior predictive 90%
    interval of η* alone is wider than the default law's band there.  Say so and recommend the default (issue 19: a
    ×655 calibrated interval next to the default's ×9.6 told nobody that the calibration was worse than none).

    Why the posterior part and not the whole range: the calibrated range adds the Eq.2 band in quadrature, so it is
    wider than the default's band (the band alone, inside its domain) for every calibration, however good."""
    if law.posterior is None:
        return None
    try:
        ours = resolve_variables(config, law)
        default, _ = default_law(config)
        values = resolve_variables(config, default, approximate_m=True)
        if default.lr is None or isinstance(default.lr, HorizonRatio):
            return None
        centre = default.lr.evaluate(values)
    except LrpredictError:
        return None
    predictive = math.exp(2 * Z90 * law.posterior.ln_sd(ours["N"], ours["D"]))
    low, high = lr_band(centre, config.arch, tolerance)
    band = LrRange(low=low, high=high, tolerance=tolerance, source=CURVATURE_SOURCE)
    band = widen_for_extrapolation(band, default, values)
    theirs = band.high / band.low
    if predictive <= theirs:
        return None
    return (
        f"{law.id}'s 90% interval of the optimal LR at this target spans ×{predictive:.3g} (×"
        f"{lr_range.high / lr_range.low:.3g} with the band), wider than the bundled default {default.id}'s whole band "
        f"×{theirs:.3g}: this calibration is less informative here than no calibration; use {default.id} (suggest "
        "without --law), or recalibrate with a bigger budget (larger probes, longer horizons: calibrate --target-* "
        "--dry-run shows the interval a plan would give)"
    )


# An MoE target whose active fraction is this many times off the probes' routes differently from them: on the Step
# Law MoE sweep the best batch did not follow active N across activation ratios (docs/benchmarks.md, calibration
# extrapolation (e); docs/log.md 2026-12-01).
ROUTING_MISMATCH = 2.0


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


def _fixed_batch_lr(
    config: ModelConfig, law: LawFile, lr: float, optimal_batch: float, derivation: list[Factor], warnings: list[str]
) -> tuple[float, str]:
    """A fixed-batch law at the user's batch: moved from the batch it was fitted at by the conditional batch law
    when the law records it (calibrated laws: the probes' batch), else unmoved with a warning."""
    batch = config.batch_tokens
    assert batch is not None
    fitted_at = law.provenance.get("probe_batch_tokens")
    if not isinstance(fitted_at, (int, float)) or not fitted_at > 0:
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


def extrapolation_factor(law: LawFile, values: dict[str, float]) -> float:
    """The largest factor by which any variable lies outside the law's fitted domain (1: inside)."""
    return max(law.domain_distance(values).values(), default=1.0)


def widen_for_extrapolation(lr_range: LrRange, law: LawFile, values: dict[str, float]) -> LrRange:
    """Widen the band by BAND_OCTAVES_PER_DECADE octaves per decade outside the law's fitted domain, each side."""
    decades = math.log10(extrapolation_factor(law, values))
    if decades <= 0:
        return lr_range
    widen = 2.0 ** (BAND_OCTAVES_PER_DECADE * decades)
    if widen < 1.01:  # "widened ×1 each side" was printed when nothing visible was widened (issue 23)
        return lr_range
    return lr_range.model_copy(
        update={
            "low": lr_range.low / widen,
            "high": lr_range.high * widen,
            "source": f"{lr_range.source}; widened ×{widen:.3g} each side for {decades:.2g} decades of "
            f"extrapolation ({BAND_OCTAVES_PER_DECADE:g} octave per decade, docs/choosing.md)",
            "meaning": f"loss band: within {lr_range.tolerance:.2%} of the best loss, widened ×{widen:.2g} each side "
            "for extrapolation",
        }
    )


def applicable_law_lrs(config: ModelConfig, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, float]:
    """Every bundled absolute law fitted on this architecture that can answer: its LR at the config's batch."""
    out: dict[str, float] = {}
    for law in bundled_laws():
        if law.lr is None or law.relative or config.arch not in law.architectures:
            continue
        try:
            out[law.id] = _suggest(config, law.id, tolerance=tolerance, approximate_m=True, with_runs=False).lr
        except LrpredictError:
            continue
    return out


def _production_checks(
    config: ModelConfig,
    chosen: LawFile | None,
    label: str,
    default_note: str | None,
    lr: float,
    batch: float,
    weight_decay: float,
    tolerance: float,
    warnings: list[str],
) -> tuple[list[NearestRun], dict[str, float]]:
    """Nearest published runs; for the default, the laws' disagreement; sanity of the numbers (appends warnings).
    ``chosen``: the law evaluated at each nearest run (None: the default, blended or not); ``label`` names it."""
    law_lrs: dict[str, float] = {}
    if default_note is not None and "(fallback)" in default_note:
        warnings.append("default law " + default_note)
    if default_note is not None:
        # every law at the same batch (the default's, when the config gives none): LRs at different batches differ
        same_batch = config if config.batch_tokens is not None else config.model_copy(update={"batch_tokens": batch})
        law_lrs = applicable_law_lrs(same_batch, tolerance)
        if len(law_lrs) >= 2:
            low_id, high_id = min(law_lrs, key=law_lrs.__getitem__), max(law_lrs, key=law_lrs.__getitem__)
            spread = law_lrs[high_id] / law_lrs[low_id]
            if spread > DISAGREEMENT_FACTOR:
                warnings.append(
                    f"the {len(law_lrs)} laws fitted on {config.arch} models disagree {spread:.2g}× here (at batch "
                    f"{batch:.3g}): peak LR {law_lrs[low_id]:.3g} ({low_id}) to {law_lrs[high_id]:.3g} ({high_id}); "
                    f"{label if label.startswith('default') else 'default ' + label} — see --compare"
                    + (" (with --layers, --d-model, --seq-len)" if config.flops_per_token() is None else "")
                )
    if lr > LR_SANE[1]:
        warnings.append(
            f"peak LR {lr:.3g} is above {LR_SANE[1]:g}, higher than any published pre-training run: {label} "
            "evaluated far from its data (see the domain warnings) — treat it as a ceiling, not a choice"
        )
    elif lr < LR_SANE[0]:
        warnings.append(
            f"peak LR {lr:.3g} is below {LR_SANE[0]:g}, lower than any published pre-training run: {label} "
            "evaluated far from its data (see the domain warnings)"
        )
    if weight_decay > WEIGHT_DECAY_SANE:
        steps = config.tokens / batch
        warnings.append(
            f"weight decay {weight_decay:.3g} is above {WEIGHT_DECAY_SANE:g}: λ = B/(η·τ·D) grows as the run has few "
            f"steps ({steps:.3g}) or a low LR ({lr:.3g}); a larger LR or a smaller batch brings it down"
        )
    near = nearest_runs(config, lr=lr, batch_tokens=batch, weight_decay=weight_decay)
    return [r.model_copy(update={"law_lr_at_run": _law_lr_at_run(chosen, r)}) for r in near], law_lrs


def _law_lr_at_run(law: LawFile | None, run: NearestRun) -> float | None:
    """``law``'s LR at the run's own N, D and batch (None for a relative law or one that cannot answer there): the
    team's choice against the law where they trained, not where the user will (issue 13 follow-up).  ``law`` None:
    the default there (its laws and weights are the run's, not the user's config's)."""
    if law is not None and law.relative:
        return None
    at_run = ModelConfig(
        arch=run.arch,
        params=run.params,
        active_params=run.active_params if run.arch == "moe" else None,
        tokens=run.tokens,
        batch_tokens=run.batch_tokens,
    )
    try:
        return _suggest(at_run, law, approximate_m=True, with_runs=False).lr
    except LrpredictError:
        return None
