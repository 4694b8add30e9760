"""``suggest``: peak LR, weight decay and batch size for a run, with the law, units and validity behind each.

A pipeline of four stages, each in its own module of :mod:`lrpredict.pipeline` with a docstring that says what it
reads and what it adds: resolve (the law and its variables) → predict (LR, batch, LR at your batch, weight decay,
schedule) → uncertainty (band, posterior interval, extrapolation widening) → context (disagreement, sanity, nearest
published runs).  :func:`_suggest` calls them in that order and assembles the :class:`Suggestion`."""

from __future__ import annotations

import decimal
import numbers
from collections.abc import Mapping
from typing import Any

from lrpredict import bounds
from lrpredict.band import DEFAULT_TOLERANCE
from lrpredict.config import ModelConfig, coerce_config, describe_config
from lrpredict.errors import LrpredictError
from lrpredict.law_checks import checked_prediction, require_config
from lrpredict.laws import LawFile
from lrpredict.pipeline import context as _context
from lrpredict.pipeline.blend import combine
from lrpredict.pipeline.context import DISAGREEMENT_FACTOR, context
from lrpredict.pipeline.predict import ROUTING_MISMATCH, predict, routes_differently
from lrpredict.pipeline.resolve import (
    M_APPROXIMATION_WARNING,
    default_law,
    extrapolation_factor,
    resolve,
    resolve_variables,
)
from lrpredict.pipeline.state import Context, Point, Request, Resolved, Spread
from lrpredict.pipeline.uncertainty import (
    BAND_OCTAVES_PER_DECADE,
    Z90,
    uncertainty,
    widen_for_extrapolation,
    wider_than_default,
)
from lrpredict.registry import DEFAULT_LAW, laws
from lrpredict.runs import LR_SANE, WEIGHT_DECAY_SANE
from lrpredict.suggestion import Factor, LrRange, Suggestion
from lrpredict.units import parse_size

# names other modules, the benchmarks and the tests import from here; they live in the stage that uses them
__all__ = [
    "BAND_OCTAVES_PER_DECADE",
    "DISAGREEMENT_FACTOR",
    "LR_SANE",
    "M_APPROXIMATION_WARNING",
    "ROUTING_MISMATCH",
    "WEIGHT_DECAY_SANE",
    "Z90",
    "Factor",
    "LrRange",
    "Suggestion",
    "applicable_law_lrs",
    "compare",
    "default_law",
    "extrapolation_factor",
    "law_used",
    "resolve_variables",
    "routes_differently",
    "suggest",
    "widen_for_extrapolation",
    "wider_than_default",
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
    """``suggest`` on a ModelConfig (see there): the pipeline's stages in order.  ``approximate_m``: without a
    shape, M ≈ 6·N_active, with a warning (the LR moves ~2%, far less than the laws disagree; the default and an
    explicit compute law alike, issue 20).  ``with_runs``: also the context stage (off when evaluating a law for it:
    it would recurse)."""
    request = Request(
        config=config,
        law=law,
        weight_decay_law=weight_decay_law,
        tolerance=tolerance,
        reference_lr=reference_lr,
        reference_tokens=reference_tokens,
        approximate_m=approximate_m,
        with_runs=with_runs,
    )
    resolved = resolve(request)
    if resolved.blend is not None:  # the default between two laws: each through the pipeline, then combined
        return _blended(resolved)
    point = predict(resolved)
    spread = uncertainty(resolved, point)
    around = context(resolved, point, _evaluate if with_runs else None)
    return _assemble(resolved, point, spread, around)


def _evaluate(config: ModelConfig, law: str | LawFile | None, *, tolerance: float = DEFAULT_TOLERANCE) -> Suggestion:
    """The pipeline without its context stage, M approximated where needed: the context stage's view of a law at
    another config (:class:`lrpredict.pipeline.state.Evaluate`)."""
    return _suggest(config, law, tolerance=tolerance, approximate_m=True, with_runs=False)


def _assemble(resolved: Resolved, point: Point, spread: Spread, around: Context) -> Suggestion:
    """The Suggestion from the stages' records; its warnings are theirs, stage by stage."""
    law, config = resolved.law, resolved.config
    conventions = {
        "N": law.conventions.n_note or f"{law.conventions.n} non-embedding parameters",
        "D": law.conventions.d,
        "B": law.conventions.b,
    }
    if law.conventions.m:
        conventions["M"] = law.conventions.m
    return Suggestion(
        lr=point.lr,
        lr_range=spread.lr_range,
        lr_at_optimal_batch=point.lr_at_optimal_batch,
        weight_decay=point.weight_decay,
        weight_decay_law=point.weight_decay_law,
        # no decay on embeddings, norms and biases: nanoGPT's practice; the weight-decay laws speak of the matrices
        weight_decay_groups={"matrices": point.weight_decay, "embeddings": 0.0, "norms_and_biases": 0.0},
        batch_tokens=point.batch,
        batch_source=point.batch_source,
        optimal_batch_tokens=point.optimal_batch,
        law=law.id,
        law_title=law.title,
        citation=law.citation,
        status=law.status,
        domain="extrapolated" if spread.extrapolated else "inside",
        conventions=conventions,
        inputs=resolved.values,
        schedule=law.schedule,
        recommended_schedule=point.recommended_schedule,
        batch_policy=law.batch_policy,
        seq_len=config.seq_len,
        warnings=resolved.warnings + point.warnings + spread.warnings + around.warnings,
        derivation=point.derivation,
        nearest_runs=around.nearest_runs,
        law_lrs=around.law_lrs,
        default_choice=resolved.default_note,
        run=describe_config(config),
    )


def _blended(resolved: Resolved) -> Suggestion:
    """The default where it blends laws: each law's suggestion at the config (no context), combined by
    ``lrpredict.pipeline.blend.combine``, then the context stage's checks on the combination."""
    request, choice = resolved.request, resolved.blend
    assert choice is not None
    members = [
        _suggest(
            request.config,
            law,
            weight_decay_law=request.weight_decay_law,
            tolerance=request.tolerance,
            reference_lr=request.reference_lr,  # an absolute law refuses them: the default does too
            reference_tokens=request.reference_tokens,
            with_runs=False,
        )
        for law, _ in choice.parts
    ]
    s = combine(request.config, choice, members)
    if not request.with_runs:
        return s
    warnings = list(s.warnings)
    near, law_lrs = _context.production_checks(
        request.config,
        None,
        s.law,
        choice.note,
        s.lr,
        s.batch_tokens,
        s.weight_decay,
        request.tolerance,
        warnings,
        _evaluate,
    )
    return s.model_copy(update={"warnings": warnings, "nearest_runs": near, "law_lrs": law_lrs})


def applicable_law_lrs(config: ModelConfig, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, float]:
    """Every bundled absolute law fitted on this architecture that can answer: its LR at the config's batch."""
    return _context.applicable_law_lrs(config, tolerance, _evaluate)


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
