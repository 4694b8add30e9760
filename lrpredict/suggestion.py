"""``Suggestion``: what ``suggest`` returns, and the steps of its derivation (``Factor``) and its LR band
(``LrRange``).  A leaf: it imports only the types its fields hold, so the exports (``lrpredict.export``) and the text
summary (``lrpredict.render``) can take a Suggestion without importing ``suggest``."""

from __future__ import annotations

from typing import Any, Literal

from lrpredict.laws import Schedule, Status
from lrpredict.record import Field, Record, computed
from lrpredict.runs import NearestRun
from lrpredict.schedule import ScheduleRecipe

__all__ = ["Factor", "LrRange", "Suggestion"]


class Factor(Record):
    """One step of a derivation: a quantity, its value, unit and where it comes from."""

    name: str
    value: float
    unit: str = ""
    source: str


class LrRange(Record):
    low: float
    high: float
    tolerance: float = Field(description="relative loss above the optimum that the band allows")
    source: str
    meaning: str = Field(
        default="",
        description="what the range is, in a few words: the Eq.2 band alone, widened for extrapolation, or combined "
        "with a calibrated law's predictive interval (the text output's label; '' = the band alone)",
    )

    def label(self) -> str:
        return self.meaning or f"expected within {self.tolerance:.2%} of the best loss"


class Suggestion(Record):
    """Hyperparameters for one run.  Every number states its law; ``warnings`` lists what to distrust."""

    lr: float = Field(description="peak learning rate (AdamW) at batch_tokens")
    lr_range: LrRange
    lr_at_optimal_batch: float = Field(description="the law's LR, at optimal_batch_tokens")
    weight_decay: float = Field(description="AdamW decoupled weight decay λ (PyTorch convention)")
    weight_decay_law: str
    weight_decay_groups: dict[str, float] = Field(description="λ per parameter group")
    batch_tokens: float = Field(description="batch size in tokens per optimizer step that lr is for")
    batch_source: str
    optimal_batch_tokens: float = Field(description="the optimal batch of the law (or of its fallback)")
    law: str
    law_title: str
    citation: str
    status: Status = Field(description="the weakest status of the coefficients used")
    domain: Literal["inside", "extrapolated"]
    conventions: dict[str, str]
    inputs: dict[str, float] = Field(description="the law's variables as evaluated (N, D, M, C)")
    schedule: Schedule = Field(description="the schedule the law was fitted with")
    recommended_schedule: ScheduleRecipe
    batch_policy: str
    seq_len: int | None = Field(default=None, description="the config's sequence length (exports need it)")
    warnings: list[str]
    derivation: list[Factor]
    nearest_runs: list[NearestRun] = Field(
        default_factory=list,
        description="published runs nearest in N and D (lrpredict.runs) with suggestion/published ratios; their "
        "LRs are the teams' choices, not measured optima",
    )
    law_lrs: dict[str, float] = Field(
        default_factory=dict, description="default only: every applicable law's LR at this config and batch"
    )
    default_choice: str | None = Field(default=None, description="why the default law was chosen for this config")
    run: str = Field(default="", description="the run it is for, as the summary's header describes it")

    @computed
    def batch_sequences(self) -> int | None:
        """batch_tokens in whole sequences of seq_len, rounded (at least 1; None without seq_len): the batch to train
        with (issue 23: a float token count was all the output gave).  In ``model_dump`` and the JSON."""
        if self.seq_len is None:
            return None
        return max(1, round(self.batch_tokens / self.seq_len))

    def __str__(self) -> str:
        """The command line's summary (``lrpredict suggest``): every number with its law, units and validity."""
        from lrpredict import render

        return render.render_suggestion(None, self)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_hf(self, **kw: Any) -> dict[str, Any]:
        """``transformers.TrainingArguments`` keyword arguments (see ``lrpredict.export.to_hf``)."""
        from lrpredict import export

        return export.to_hf(self, **kw)

    def to_torchtitan(self, **kw: Any) -> str:
        """A torchtitan TOML job-file fragment (see ``lrpredict.export.to_torchtitan``)."""
        from lrpredict import export

        return export.to_torchtitan(self, **kw)

    def to_megatron(self, **kw: Any) -> list[str]:
        """Megatron-LM command-line arguments (see ``lrpredict.export.to_megatron``)."""
        from lrpredict import export

        return export.to_megatron(self, **kw)
