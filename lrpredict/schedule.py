"""The LR schedule to train with: warmup–stable–decay steps derived from the horizon, batch and the law's schedule.

WSD (warmup, constant LR, then a short decay) is what the Fitting paradigm assumes (arXiv 2601.05049, Eq.4) and
lets one run serve several horizons; Hägele et al. (arXiv 2405.18392) show it matches cosine and that a (1-sqrt)
decay beats a linear one.  Where a law states its warmup or final LR we use the law's, and say so.
"""

from __future__ import annotations

import math
from typing import Literal

from lrpredict.laws import LawFile
from lrpredict.record import Field, Record

DECAY_FRACTION = 0.2  # lrpredict default: the decay phase is a fifth of training (a common WSD choice)
DECAY_SHAPE = "1-sqrt"  # Hägele et al., arXiv 2405.18392: (1-sqrt) cooldown beats linear (secondary summaries)
WARMUP_FRACTION = 0.01  # Ling (arXiv 2507.17702) warms up over 1% of steps
FINAL_LR_RATIO = 0.1  # DeepSeek LLM and Ling end at 10% of the peak


class ScheduleRecipe(Record):
    """A concrete WSD schedule in optimizer steps, with the source of each choice."""

    kind: Literal["wsd"] = "wsd"
    total_steps: int = Field(description="optimizer steps: tokens / batch tokens, rounded up")
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    decay_shape: Literal["1-sqrt", "linear", "cosine"]
    final_lr_ratio: float = Field(description="final LR as a fraction of the peak")
    sources: dict[str, str]


def recommend_schedule(law: LawFile, lr: float, batch_tokens: float, tokens: float) -> ScheduleRecipe:
    total = max(1, math.ceil(tokens / batch_tokens))
    sources: dict[str, str] = {}
    fitted = law.schedule
    if fitted.warmup_steps is not None:
        warmup = fitted.warmup_steps
        sources["warmup"] = f"{law.id}: {fitted.warmup_steps} steps, as the law was fitted"
    elif fitted.warmup_fraction is not None:
        warmup = round(fitted.warmup_fraction * total)
        sources["warmup"] = f"{law.id}: {fitted.warmup_fraction:.0%} of steps, as the law was fitted"
    else:
        warmup = round(WARMUP_FRACTION * total)
        sources["warmup"] = f"lrpredict default {WARMUP_FRACTION:.0%} of steps (Ling's warmup; {law.id} states none)"
    warmup = min(max(warmup, 1), max(total // 10, 1))  # never let warmup eat more than a tenth of training
    decay = max(1, round(DECAY_FRACTION * total))
    sources["decay"] = (
        f"lrpredict default: last {DECAY_FRACTION:.0%} of steps, {DECAY_SHAPE} shape "
        "(Hägele et al., arXiv 2405.18392: WSD matches cosine; 1-sqrt beats linear)"
    )
    if fitted.final_lr is not None:
        final = min(fitted.final_lr / lr, 1.0)
        sources["final_lr"] = f"{law.id}: decays to {fitted.final_lr:g} absolute, as the law was fitted"
    elif fitted.final_lr_ratio is not None:
        final = fitted.final_lr_ratio
        sources["final_lr"] = f"{law.id}: {fitted.final_lr_ratio:.0%} of peak, as the law was fitted"
    else:
        final = FINAL_LR_RATIO
        sources["final_lr"] = (
            f"lrpredict default {FINAL_LR_RATIO:.0%} of peak (DeepSeek LLM, Ling); {law.id} states none"
        )
    stable = max(total - warmup - decay, 0)
    return ScheduleRecipe(
        total_steps=total,
        warmup_steps=warmup,
        stable_steps=stable,
        decay_steps=total - warmup - stable,
        decay_shape=DECAY_SHAPE,
        final_lr_ratio=final,
        sources=sources,
    )
