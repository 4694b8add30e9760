"""The default law without cliffs: Step Law near its sweeps, a compute law at production scale, a blend in between.

Reads: ``registry.DEFAULT_LAW`` (the sweep-fitted law) and ``registry.PRODUCTION_LAW`` (the compute law per
architecture), the sweep-fitted law's fitted domain (``LawFile.domain_distance``), and, for a blend, each
contributing law's own ``Suggestion`` (``lrpredict.suggest`` evaluates them; this module never evaluates a law).
Adds: the weights; ``lrpredict.pipeline.blend.combine`` makes the ``Suggestion`` whose peak LR, optimal batch, batch
and weight decay are the weighted geometric means of the contributors' (a blend in log space, issue 20 item 5).

The weight of the compute law rises linearly in log10 of the distance d by which the config lies outside Step Law's
fitted domain: 0 for d ≤ ``BLEND_START``, 1 for d ≥ ``BLEND_END``.  Why these ends: every Step Law sweep cell lies
within 2.0× of that domain (the MoE cells at N 1.95×, D 2.0×), so the sweeps still score Step Law alone; every run
of the published-runs ledger lies at ≥ 3.0× (the 300B-token runs), so the ledger still scores the compute law alone
(docs/choosing.md, *Defaults at production scale*; docs/log.md, 2026-12-04 default blend).  No evidence lies in
between; a linear ramp has the smallest largest slope for its width, and that slope is what the test of "≤ 10% per
1% step in N or D" bounds (tests/test_default_blend.py).  Blending LR and batch with one set of weights blends the
weight decay too: λ = B/(η·τ·D) with τ and D shared, so ln λ is the same weighted mean.

A blend cannot be monotone in N everywhere (docs/log.md, 2026-12-04 default blend): Step Law and the compute laws
cross inside Step Law's domain, so on the far side of the crossing the handover raises the LR with N.  It is
monotone wherever the weight moves toward the lower of the laws' LRs (the long-horizon side, where production runs
are); in D no direction is shared (Step Law's LR rises with D, the compute laws' falls), so the blend has a peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lrpredict.config import ModelConfig
from lrpredict.errors import MissingInputError
from lrpredict.laws import LawFile
from lrpredict.registry import DEFAULT_LAW, PRODUCTION_LAW, load_law

# Factor outside Step Law's fitted domain where the compute law starts to contribute, and where it alone answers.
BLEND_START = 2.0
BLEND_END = 2.9
CHOICE_DOC = "docs/choosing.md, Defaults at production scale"

Resolve = Callable[..., dict[str, float]]  # suggest.resolve_variables(config, law, needed=None, *, approximate_m)


@dataclass(frozen=True)
class DefaultChoice:
    """The laws of the default at one config with their weights (largest first, summing to 1) and why."""

    parts: tuple[tuple[LawFile, float], ...]
    note: str
    distance: float = 1.0  # the factor by which the config lies outside Step Law's fitted domain

    @property
    def law(self) -> LawFile:
        """The law with the largest weight (schedule and conventions of a blend are its)."""
        return self.parts[0][0]

    @property
    def blended(self) -> bool:
        return len(self.parts) > 1

    def label(self) -> str:
        """``steplaw-2025``, or ``default blend: steplaw-2025 0.7, deepseek-llm-2024 0.3``."""
        if not self.blended:
            return self.law.id
        return "default blend: " + ", ".join(f"{law.id} {weight:.2g}" for law, weight in self.parts)


def far_weight(distance: float) -> float:
    """The compute law's weight when the config lies ``distance``× outside Step Law's fitted domain."""
    ramp = math.log(distance / BLEND_START) / math.log(BLEND_END / BLEND_START)
    return min(1.0, max(0.0, ramp))


def choose(config: ModelConfig, resolve: Resolve) -> DefaultChoice:
    """The default's laws and weights at ``config``; ``resolve`` is ``suggest.resolve_variables``."""
    near = load_law(DEFAULT_LAW[config.arch])
    distance = max(near.domain_distance(resolve(config, near)).values(), default=1.0)
    far_id = PRODUCTION_LAW.get(config.arch)
    weight = far_weight(distance) if far_id is not None else 0.0
    if weight == 0.0:
        return DefaultChoice(((near, 1.0),), f"{near.id}: within {BLEND_START:g}× of its fitted domain", distance)
    far = load_law(far_id)  # type: ignore[arg-type]
    try:
        resolve(config, far, approximate_m=True)
    except MissingInputError as exc:  # e.g. an MoE run without active_params: Step Law (total N) still answers
        needs = "the active parameters (active_params, --active-params)" if config.n_active is None else exc.allowed
        return DefaultChoice(
            ((near, 1.0),),
            f"{near.id} (fallback): {far.id}, the default this far out ({distance:.3g}× beyond {near.id}'s "
            f"domain), needs {needs.removeprefix(f'law {far.id} needs ')}",
            distance,
        )
    if weight == 1.0:
        return DefaultChoice(
            ((far, 1.0),),
            f"{far.id}: {near.id} would extrapolate {distance:.3g}× beyond its fitted domain (the default is the "
            f"compute law alone past {BLEND_END:g}×; {CHOICE_DOC})",
            distance,
        )
    parts = sorted(((near, 1.0 - weight), (far, weight)), key=lambda part: -part[1])
    return DefaultChoice(
        tuple(parts),
        f"weighted geometric mean: {near.id} lies {distance:.3g}× outside its fitted domain, and the default moves "
        f"from it (≤ {BLEND_START:g}×) to {far.id} (≥ {BLEND_END:g}×) linearly in log distance ({CHOICE_DOC})",
        distance,
    )
