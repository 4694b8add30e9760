"""The records the stages of ``suggest`` pass on (:mod:`lrpredict.pipeline`): one per stage, each holding only what
that stage adds; a stage returns its own record and never changes an earlier one.  Plain dataclasses, not pydantic
models: they are built on every ``suggest`` call and never validated from outside (pydantic's model construction is a
measurable part of the CLI's latency, docs/benchmarks.md); neither frozen nor compared: defining this module took a
median 10 ms with ``frozen=True`` and 2 ms as it is (15 runs on a loaded machine; docs/log.md, 2026-12-04 suggest as a
pipeline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lrpredict.config import ModelConfig
    from lrpredict.default_blend import DefaultChoice
    from lrpredict.laws import LawFile
    from lrpredict.runs import NearestRun
    from lrpredict.schedule import ScheduleRecipe
    from lrpredict.suggestion import Factor, LrRange, Suggestion


@dataclass(eq=False)
class Request:
    """What the caller asked for (``suggest``'s arguments, numbers already floats)."""

    config: ModelConfig
    law: str | LawFile | None
    weight_decay_law: str | LawFile | None
    tolerance: float
    reference_lr: float | None
    reference_tokens: float | None
    approximate_m: bool
    with_runs: bool


@dataclass(eq=False)
class Resolved:
    """resolve: the law, why it was chosen (``default_note``: None when the caller named it) and its variables."""

    request: Request
    law: LawFile
    default_note: str | None
    values: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    blend: DefaultChoice | None = None  # the default blends laws here: suggest evaluates each and combines them

    @property
    def config(self) -> ModelConfig:
        return self.request.config


@dataclass(eq=False)
class Point:
    """predict: the numbers, each with its derivation."""

    lr: float
    lr_at_optimal_batch: float
    optimal_batch: float
    batch: float
    batch_source: str
    weight_decay: float
    weight_decay_law: str
    recommended_schedule: ScheduleRecipe
    derivation: list[Factor]
    warnings: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Spread:
    """uncertainty: the LR range and whether the run lies outside the law's fitted domain."""

    lr_range: LrRange
    extrapolated: bool
    warnings: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Context:
    """context: the nearest published runs (with the law at each) and every applicable law's LR."""

    nearest_runs: list[NearestRun]
    law_lrs: dict[str, float]
    warnings: list[str] = field(default_factory=list)


class Evaluate(Protocol):
    """The pipeline without its context stage, on another config or law (the context stage needs it for the laws'
    disagreement and for the law at each published run; passed in, so this package never imports ``suggest``)."""

    def __call__(self, config: ModelConfig, law: str | LawFile | None, *, tolerance: float = ...) -> Suggestion: ...
