"""Stage 4 of ``suggest``, context.  Reads the :class:`~lrpredict.pipeline.state.Resolved` law (and whether it is the
default) and the :class:`~lrpredict.pipeline.state.Point` numbers; adds what surrounds the suggestion (issue 13;
docs/choosing.md, docs/log.md 2026-11-30): for the default, every applicable law's LR and a warning when they
disagree; warnings when the LR or weight decay lies outside every published run's; the nearest published runs, each
with the law's LR at the run's own N, D and batch.  It evaluates other laws and configs through an
:class:`~lrpredict.pipeline.state.Evaluate` it is given (the pipeline without this stage), so it never imports
``suggest``."""

from __future__ import annotations

from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile
from lrpredict.pipeline.state import Context, Evaluate, Point, Resolved
from lrpredict.registry import bundled_laws
from lrpredict.runs import LR_SANE, WEIGHT_DECAY_SANE, NearestRun, nearest_runs

# Laws disagreeing by more than this factor at a config get a warning in the default output.
DISAGREEMENT_FACTOR = 2.0


def context(resolved: Resolved, point: Point, evaluate: Evaluate | None) -> Context:
    """The context of the suggestion (see the module docstring); ``evaluate`` None: none (when the pipeline is
    itself evaluating a law at another config for a context stage: it would recurse)."""
    warnings: list[str] = []
    if evaluate is None:
        return Context(nearest_runs=[], law_lrs={}, warnings=warnings)
    near, law_lrs = production_checks(
        resolved.config,
        resolved.law if resolved.default_note is None else None,  # the default: the default again at each run
        resolved.law.id,
        resolved.default_note,
        point.lr,
        point.batch,
        point.weight_decay,
        resolved.request.tolerance,
        warnings,
        evaluate,
    )
    return Context(nearest_runs=near, law_lrs=law_lrs, warnings=warnings)


def applicable_law_lrs(config: ModelConfig, tolerance: float, evaluate: Evaluate) -> dict[str, float]:
    """Every bundled absolute law fitted on this architecture that can answer: its LR at the config's batch."""
    out: dict[str, float] = {}
    for law in bundled_laws():
        if law.lr is None or law.relative or config.arch not in law.architectures:
            continue
        try:
            out[law.id] = evaluate(config, law.id, tolerance=tolerance).lr
        except LrpredictError:
            continue
    return out


def production_checks(
    config: ModelConfig,
    chosen: LawFile | None,
    label: str,
    default_note: str | None,
    lr: float,
    batch: float,
    weight_decay: float,
    tolerance: float,
    warnings: list[str],
    evaluate: Evaluate,
) -> tuple[list[NearestRun], dict[str, float]]:
    """Nearest published runs; for the default, the laws' disagreement; sanity of the numbers (appends warnings).
    ``chosen``: the law evaluated at each nearest run (None: the default, blended or not); ``label`` names it."""
    law_lrs: dict[str, float] = {}
    if default_note is not None and "(fallback)" in default_note:
        warnings.append("default law " + default_note)
    if default_note is not None:
        # every law at the same batch (the default's, when the config gives none): LRs at different batches differ
        same_batch = config if config.batch_tokens is not None else config.model_copy(update={"batch_tokens": batch})
        law_lrs = applicable_law_lrs(same_batch, tolerance, evaluate)
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
    return [r.model_copy(update={"law_lr_at_run": _law_lr_at_run(chosen, r, evaluate)}) for r in near], law_lrs


def _law_lr_at_run(law: LawFile | None, run: NearestRun, evaluate: Evaluate) -> float | None:
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
        return evaluate(at_run, law).lr
    except LrpredictError:
        return None
