"""Warmup–stable–decay (WSD) learning-rate schedule, pure Python.

WSD (MiniCPM, Hu et al. arXiv 2404.06395) holds the peak LR for most of training and decays only at the end, so one
stable-phase run can branch into decays at several horizons (arXiv 2601.05049 uses this to get L(D) at many D from
one run).  A 20% decay matches a cosine run of the same length (Hägele et al. arXiv 2405.18392), who also find the
1-sqrt shape a little better than linear.  ``lrpredict.torch.wsd_factor`` (a ``ScheduleRecipe`` as a LambdaLR
factor) evaluates this same curve, so a probe and a user's training run share one definition.  No imports beyond the
standard library: ``lrpredict.torch`` imports this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

DecayShape = Literal["linear", "cosine", "1-sqrt"]


@dataclass(frozen=True)
class WSDSchedule:
    """LR at a step: linear warmup to ``peak``, hold, then decay from ``decay_start`` to ``final_ratio·peak`` at ``total``."""

    peak: float
    warmup: int
    decay_start: int
    total: int
    final_ratio: float = 0.1
    shape: DecayShape = "linear"

    def __post_init__(self) -> None:
        if not 0 <= self.warmup <= self.decay_start <= self.total:
            raise ValueError(
                f"need 0 ≤ warmup ≤ decay_start ≤ total, got {self.warmup}, {self.decay_start}, {self.total}"
            )

    def __call__(self, step: int) -> float:
        """LR used by optimizer step ``step`` (0-based); after ``total`` it stays at the final LR (at the peak when
        there is no decay phase, ``decay_start == total``)."""
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        if step < self.decay_start or self.decay_start == self.total:
            return self.peak
        # progress reaches 1 at the last step (total - 1), so the final step runs at final_ratio·peak
        span = self.total - self.decay_start
        progress = min(1.0, (step - self.decay_start + 1) / span)
        return self.peak * (self.final_ratio + (1 - self.final_ratio) * _remaining(progress, self.shape))


def _remaining(progress: float, shape: DecayShape) -> float:
    """Share of the decay still to go at ``progress`` ∈ [0, 1]: 1 → 0."""
    if shape == "linear":
        return 1 - progress
    if shape == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - math.sqrt(progress)  # "1-sqrt", Hägele et al. arXiv 2405.18392 Eq. 1
