"""Replicate probes in a plan (issue 19): each size's centre LR and the LR below it again at another seed, costed
like their twins, so the seed-to-seed loss noise and its LR-contrast part are measured (lrpredict.calibrate.noise).
Apart from noise so that the fit, which reads the noise, does not import the planner."""

from __future__ import annotations

from lrpredict.calibrate.clock import format_seconds
from lrpredict.calibrate.noise import REPLICATE_SEED_OFFSET, replicate_specs
from lrpredict.calibrate.planner import CalibrationPlan, probe_flops


def add_replicates(plan: CalibrationPlan) -> list[str]:
    """Append ``replicate_specs(plan)`` to ``plan.probes`` (their time and FLOPs into its estimate: a replicate costs
    what its twin costs); returns the note saying what they cost, or nothing when none were added."""
    if plan.finished:
        return []
    known = {p.probe_id for p in plan.probes}
    new = [s for s in replicate_specs(plan) if s.probe_id not in known]
    if not new:
        return []
    seconds = 0.0
    for spec in new:
        twin = spec.model_copy(update={"seed": spec.seed - REPLICATE_SEED_OFFSET}).probe_id
        if twin in plan.estimates:
            plan.estimates[spec.probe_id] = plan.estimates[twin]
            seconds += plan.estimates[twin]
    flops = sum(probe_flops(s) for s in new)
    plan.probes.extend(new)
    plan.flops += flops
    cost = f"~{flops:.3g} FLOPs" + (f", ~{format_seconds(seconds)} device time" if seconds else "")
    many = len(new) > 1
    note = (
        f"{len(new)} replicate probe{'s' * many} (each size's centre LR and the LR below it again at seed "
        f"+{REPLICATE_SEED_OFFSET}) measure{'' if many else 's'} the seed-to-seed loss noise and the part of it that "
        f"differs between a cell's LRs: {cost}, included above; each evaluation keeps "
        f"the sd of its ≤ {new[0].eval_batches * new[0].batch_size} per-sequence held-out losses (its s.e.)"
    )
    return [note]
