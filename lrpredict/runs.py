"""The ledger of published pre-training runs (``coefficients/published_runs.toml``): schema, loader, nearest runs.

Each row is one public run's recipe with its exact source.  A published peak LR is a team's choice, often tuned
on a few small proxies, not a measured optimum: lrpredict uses the ledger as a sanity anchor at scales no law was
fitted on (``suggest`` shows the nearest rows; ``benchmarks/production_runs.py`` scores the laws on it), never as
ground truth.  Light on imports on purpose: ``suggest`` loads it.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic_core import ValidationError

from lrpredict import bounded_read
from lrpredict.errors import LawFileError, LrpredictError
from lrpredict.record import Field, Record, after_validation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

LEDGER_FILE = "published_runs.toml"
RunStatus = Literal["paper", "config", "secondary"]
RUN_STATUS_MEANING = {
    "paper": "from the paper's own text or tables",
    "config": "from a released config file",
    "secondary": "quoted by a third party",
}

# Output sanity (issue 13): no published run in the ledger goes outside these (suggest, transfer and the text
# output warn beyond them).
LR_SANE = (1e-5, 1e-2)
WEIGHT_DECAY_SANE = 1.0

# Plausible ranges: a value outside is a unit slip (millions typed as billions, tokens as sequences), not a run.
SANE: dict[str, tuple[float, float]] = {
    "params_total": (1e5, 1e13),
    "params": (1e5, 1e13),
    "active_params": (1e5, 1e13),
    "tokens": (1e8, 1e15),
    "batch_tokens": (1e3, 1e9),
    "peak_lr": (1e-6, 1e-1),
    "final_lr": (0.0, 1e-1),
    "weight_decay": (0.0, 10.0),
    "warmup_tokens": (0.0, 1e13),
    "adam_beta1": (0.0, 1.0),
    "adam_beta2": (0.0, 1.0),
}


class PublishedRun(Record, extra="forbid"):
    """One public pre-training run, as its source states it (a key the source does not give is left out)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=80)
    model: str = Field(min_length=1)
    organisation: str = ""
    arch: Literal["dense", "moe"]
    params_total: float | None = Field(default=None, description="total parameters incl. embeddings, as published")
    params: float = Field(description="non-embedding parameters N (MoE: total over experts)")
    active_params: float | None = Field(default=None, description="non-embedding active parameters (MoE)")
    tokens: float = Field(description="training tokens D")
    batch_tokens: float = Field(description="tokens per optimizer step")
    seq_len: int | None = Field(default=None, gt=0, le=10_000_000)
    peak_lr: float
    final_lr: float | None = None
    weight_decay: float | None = None
    schedule: Literal["cosine", "wsd", "linear", "multistep", "constant", "other"] | None = None
    warmup_steps: int | None = Field(default=None, ge=0)
    warmup_tokens: float | None = None
    adam_beta1: float | None = None
    adam_beta2: float | None = None
    source: str = Field(min_length=8, description="paper + table/section, or the config file's URL")
    status: RunStatus
    notes: str = ""

    @after_validation
    def _check(self) -> PublishedRun:
        for name, (low, high) in SANE.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not math.isfinite(value) or not low <= value <= high or (low == 0 < high and value < 0):
                raise ValueError(f"{name}={value!r} outside the plausible range [{low:g}, {high:g}]")
        for name in ("params", "tokens", "batch_tokens", "peak_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.active_params is not None and self.active_params > self.params:
            raise ValueError(f"active_params={self.active_params:g} exceeds params={self.params:g}")
        if self.arch == "moe" and self.active_params is None:
            raise ValueError("an MoE run needs active_params")
        if self.params_total is not None and self.params_total < self.params:
            raise ValueError(f"params_total={self.params_total:g} is below the non-embedding params={self.params:g}")
        if self.final_lr is not None and self.final_lr > self.peak_lr:
            raise ValueError(f"final_lr={self.final_lr:g} exceeds peak_lr={self.peak_lr:g}")
        if self.batch_tokens > self.tokens:
            raise ValueError(f"batch_tokens={self.batch_tokens:g} exceeds tokens={self.tokens:g}")
        if self.seq_len is not None and self.seq_len > self.batch_tokens:
            raise ValueError(f"seq_len={self.seq_len} exceeds batch_tokens={self.batch_tokens:g}")
        return self

    @property
    def n_active(self) -> float:
        """Active non-embedding parameters (dense: all of them)."""
        return self.active_params if self.active_params is not None else self.params


class Ledger(Record, extra="forbid"):
    schema_version: Literal[1]
    run: list[PublishedRun] = Field(default_factory=list)

    @after_validation
    def _unique(self) -> Ledger:
        seen: set[str] = set()
        for row in self.run:
            if row.id in seen:
                raise ValueError(f"duplicate run id {row.id!r}")
            seen.add(row.id)
        return self


# A ledger row is ~400 bytes; 16 MB holds 40,000 rows (issue 23: a 40k-row ledger is parsed in about a second).
MAX_LEDGER_BYTES = 16 * 1024 * 1024
MAX_LEDGER_DEPTH = 8  # run = [{...}] nests two levels; deeper is no ledger (100k '[' recursed in tomllib)


def parse_ledger(text: str, source: str) -> tuple[PublishedRun, ...]:
    """Validate a ledger's TOML text; an error names the file, the row and the field."""
    if bounded_read.nesting(text, toml=True) > MAX_LEDGER_DEPTH:
        raise LawFileError(
            "nesting", f"more than {MAX_LEDGER_DEPTH} levels", "a ledger of [[run]] tables", where=source
        )
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise LawFileError("toml", str(exc).splitlines()[0], "a valid TOML document", where=source) from None
    rows = data.get("run", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):  # run = 5, run = [1, 2]
        raise LawFileError("run", "{...}" if isinstance(rows, dict) else rows, "[[run]] tables", where=source)
    seen: set[object] = set()
    for row in rows:  # one pass: ids.count() per row took 33 s on 40k rows (issue 23)
        row_id = row.get("id")
        if isinstance(row_id, str) and row_id in seen:
            raise LawFileError(f"run.{row_id}.id", row_id, "a unique id (another row has it)", where=source)
        if isinstance(row_id, str):
            seen.add(row_id)
    try:
        return tuple(Ledger.model_validate(data).run)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "run" and isinstance(loc[1], int):
            row_id = rows[loc[1]].get("id", loc[1]) if loc[1] < len(rows) else loc[1]
            loc[1] = row_id
        field = ".".join(str(part) for part in loc) or "ledger"
        reason = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        raise LawFileError(field, "{...}" if isinstance(value, dict) else value, reason, where=source) from None


def read_ledger(path: str | Path, option: str = "--ledger") -> tuple[PublishedRun, ...]:
    """A ledger file through the bounded reader: a device, FIFO or oversize file is one line naming ``option``."""
    text = bounded_read.read_text(path, option=option, limit=MAX_LEDGER_BYTES, what="ledger file")
    return parse_ledger(text, Path(path).name)


@lru_cache(maxsize=1)
def published_runs() -> tuple[PublishedRun, ...]:
    """The bundled ledger (empty while no ledger is shipped)."""
    resource = resources.files("lrpredict.coefficients").joinpath(LEDGER_FILE)
    if not resource.is_file():
        return ()
    return parse_ledger(resource.read_text(encoding="utf-8"), LEDGER_FILE)


def filter_runs(
    runs: tuple[PublishedRun, ...] | list[PublishedRun],
    *,
    arch: str | None = None,
    min_params: float | None = None,
    max_params: float | None = None,
) -> list[PublishedRun]:
    """Rows of one architecture and a range of N (non-embedding; MoE: total)."""
    if min_params is not None and max_params is not None and min_params > max_params:
        raise LrpredictError("min_params", min_params, f"must be <= max_params={max_params:g}")
    return [
        r
        for r in runs
        if (arch is None or r.arch == arch)
        and (min_params is None or r.params >= min_params)
        and (max_params is None or r.params <= max_params)
    ]


class NearestRun(Record):
    """A published run near the config, with the suggestion's ratio to its recipe (suggestion / published)."""

    id: str
    model: str
    arch: Literal["dense", "moe"]
    params: float
    active_params: float | None
    tokens: float
    batch_tokens: float
    peak_lr: float
    weight_decay: float | None
    status: RunStatus
    source: str
    distance: float = Field(description="distance in decades over log10 N (and N_active for MoE) and log10 D")
    lr_ratio: float | None = Field(default=None, description="suggested LR / published peak LR")
    batch_ratio: float | None = Field(default=None, description="suggested batch / published batch")
    weight_decay_ratio: float | None = Field(default=None, description="suggested λ / published λ")
    law_lr_at_run: float | None = Field(
        default=None,
        description="the suggestion's law at the run's own N, D and batch: compares the law with the team's choice "
        "without the differences in N, D and batch between the run and this config that lr_ratio carries",
    )


def run_distance(run: PublishedRun, params: float, tokens: float, active_params: float | None = None) -> float:
    """Euclidean distance in decades over log10 N and log10 D (plus log10 N_active when both are MoE)."""
    terms = [math.log10(run.params / params), math.log10(run.tokens / tokens)]
    if active_params is not None and run.active_params is not None and run.arch == "moe":
        terms.append(math.log10(run.active_params / active_params))
    return math.sqrt(sum(t * t for t in terms))


def nearest_runs(
    config: object,
    k: int = 3,
    *,
    lr: float | None = None,
    batch_tokens: float | None = None,
    weight_decay: float | None = None,
    runs: tuple[PublishedRun, ...] | list[PublishedRun] | None = None,
) -> list[NearestRun]:
    """The ``k`` published runs of the config's architecture nearest in log N and log D (a ``ModelConfig`` or any
    object with ``arch``, ``params``, ``tokens`` and ``active_params``), with the suggestion's ratio to each."""
    if k < 1:
        raise LrpredictError("k", k, "an integer >= 1")
    arch = getattr(config, "arch", "dense")
    params = float(config.params)  # type: ignore[attr-defined]
    tokens = float(config.tokens)  # type: ignore[attr-defined]
    active = getattr(config, "active_params", None) if arch == "moe" else None
    rows = [r for r in (published_runs() if runs is None else runs) if r.arch == arch]
    ranked = sorted(rows, key=lambda r: (run_distance(r, params, tokens, active), r.id))[:k]
    return [
        NearestRun(
            id=r.id,
            model=r.model,
            arch=r.arch,
            params=r.params,
            active_params=r.active_params,
            tokens=r.tokens,
            batch_tokens=r.batch_tokens,
            peak_lr=r.peak_lr,
            weight_decay=r.weight_decay,
            status=r.status,
            source=r.source,
            distance=run_distance(r, params, tokens, active),
            lr_ratio=None if lr is None else lr / r.peak_lr,
            batch_ratio=None if batch_tokens is None else batch_tokens / r.batch_tokens,
            weight_decay_ratio=None if weight_decay is None or not r.weight_decay else weight_decay / r.weight_decay,
        )
        for r in ranked
    ]
