"""The blended default's Suggestion from its members' (``lrpredict.default_blend`` chooses the laws and weights;
``lrpredict.suggest`` evaluates each law and calls :func:`combine`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpredict.band import lr_band
from lrpredict.config import ModelConfig
from lrpredict.default_blend import BLEND_END, BLEND_START, CHOICE_DOC, DefaultChoice
from lrpredict.laws import weakest
from lrpredict.registry import DEFAULT_LAW
from lrpredict.schedule import recommend_schedule
from lrpredict.suggestion import Factor, LrRange, Suggestion


def _mean(weights: Sequence[float], values: Sequence[float]) -> float:
    """Weighted geometric mean: the blend in log space."""
    return math.exp(math.fsum(w * math.log(v) for w, v in zip(weights, values, strict=True)))


def combine(config: ModelConfig, choice: DefaultChoice, members: Sequence[Suggestion]) -> Suggestion:
    """One suggestion from the contributors' (``members``, in ``choice.parts`` order, each at the config's batch).

    The range: each contributor's (the curvature band widened for its own extrapolation) blended like the LRs, i.e.
    the band around the blended LR widened by the weighted mean of the contributors' widenings (continuous too)."""
    weights = [weight for _, weight in choice.parts]
    lead = members[0]

    def mean(field: str) -> float:
        return _mean(weights, [getattr(m, field) for m in members])

    lr, optimal = mean("lr"), mean("optimal_batch_tokens")
    batch = config.batch_tokens if config.batch_tokens is not None else mean("batch_tokens")  # yours, exactly
    weight_decay = mean("weight_decay")
    low = _mean(weights, [m.lr_range.low for m in members])
    high = _mean(weights, [m.lr_range.high for m in members])
    why = (
        f"{DEFAULT_LAW[config.arch]} lies {choice.distance:.3g}× outside its fitted domain; the compute law's weight "
        f"is log(d/{BLEND_START:g})/log({BLEND_END:g}/{BLEND_START:g}) (lrpredict.default_blend)"
    )
    derivation = [Factor(name=f"weight of {law.id}", value=weight, source=why) for law, weight in choice.parts]
    for m in members:
        derivation += m.derivation
    how = "weighted geometric mean of " + ", ".join(f"{m.law}'s" for m in members)
    derivation += [
        Factor(name="η (blend)", value=lr, unit="peak LR", source=f"{how} LR at this batch"),
        Factor(name="B_opt (blend)", value=optimal, unit="tokens", source=f"{how} optimal batch"),
        Factor(name="λ (blend)", value=weight_decay, source=f"{how} λ; equals B/(η·τ·D) at the blended η and B"),
    ]
    conventions = {}
    for key in dict.fromkeys(k for m in members for k in m.conventions):
        said = list(dict.fromkeys(f"{m.conventions[key]} ({m.law})" for m in members if key in m.conventions))
        conventions[key] = "; ".join(said)
    inputs = {k: v for m in reversed(members) for k, v in m.inputs.items()} | lead.inputs
    return lead.model_copy(
        update={
            "lr": lr,
            "lr_range": _range(config, lead, lr, low, high),
            "lr_at_optimal_batch": mean("lr_at_optimal_batch"),
            "weight_decay": weight_decay,
            "weight_decay_groups": {**lead.weight_decay_groups, "matrices": weight_decay},
            "batch_tokens": batch,
            "batch_source": (
                f"your batch; LR: {how} LRs, each moved from its own optimal batch"
                if config.batch_tokens is not None
                else f"default blend optimal batch: {how}"
            ),
            "optimal_batch_tokens": optimal,
            "law": choice.label(),
            "law_title": f"weighted geometric mean of the laws' LR, batch and weight decay ({CHOICE_DOC})",
            "citation": " | ".join(dict.fromkeys(m.citation for m in members)),
            "status": weakest([m.status for m in members]),
            "domain": "extrapolated" if any(m.domain == "extrapolated" for m in members) else "inside",
            "conventions": conventions,
            "inputs": inputs,
            "recommended_schedule": recommend_schedule(choice.law, lr, batch, config.tokens),
            "warnings": list(dict.fromkeys(w for m in members for w in m.warnings)),
            "derivation": derivation,
            "default_choice": choice.note,
        }
    )


def _range(config: ModelConfig, lead: Suggestion, lr: float, low: float, high: float) -> LrRange:
    """The blended LR range (``low``, ``high``), labelled with the widening it amounts to around ``lr``."""
    tolerance = lead.lr_range.tolerance
    band_low, band_high = lr_band(lr, config.arch, tolerance)
    widen = math.sqrt((high / low) / (band_high / band_low))
    source = (
        f"{lead.lr_range.source.split(';')[0]}; the contributors' ranges (each widened for its own "
        "extrapolation) blended like the LRs"
    )
    meaning = f"within {tolerance:.2%} of the best loss, widened ×{widen:.3g} each side for extrapolation (blended)"
    return lead.lr_range.model_copy(update={"low": low, "high": high, "source": source, "meaning": meaning})
