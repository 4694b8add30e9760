"""What a calibration probe is (``ProbeSpec``) and what it returned (``ProbeResult``): pydantic only, no torch.

The ledger, the executor's parent process and the fit read these without importing torch or numpy.  A probe's
``probe_id`` hashes what decides its losses, and leaves out how it was executed (device, gradient accumulation,
``torch.compile``, where branch checkpoints are held): an OOM retry with more accumulation, or a resume on another
machine, is the same probe.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from lrpredict.architecture import Architecture
from lrpredict.errors import LrpredictError

Status = Literal["ok", "diverged", "failed"]

# Fields of ProbeSpec that change how a probe runs, not what it computes: left out of probe_id.
EXECUTION_FIELDS = frozenset({"device", "grad_accum", "compile", "branch_store"})
# DataSpec fields newer than the first ledgers: part of probe_id only when set.
_OPTIONAL_DATA_FIELDS = ("vocab_map", "source")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Frozen):
    """The embedded corpus: Zipfian unigrams, a sparse Markov chain over them, and copied spans.

    Each part is a regularity of natural text a small model can learn at its own pace (unigram statistics first,
    bigrams next, copying last: induction heads, Olsson et al. arXiv 2209.11895), so loss keeps falling with tokens
    and a too-small or too-large LR visibly costs loss.
    """

    zipf_exponent: float = Field(default=1.1, gt=0, description="unigram frequency ∝ rank^-a")
    successors: int = Field(default=8, ge=1, description="next-token candidates of each token in the Markov table")
    dirichlet_alpha: float = Field(default=0.5, gt=0, description="concentration of each token's successor weights")
    markov_prob: float = Field(default=0.8, ge=0, le=1, description="P(next token from the Markov table), else unigram")
    copy_prob: float = Field(default=0.01, ge=0, le=1, description="P(a copied span starts at a position)")
    copy_len: tuple[int, int] = Field(default=(8, 32), description="copied span length range, inclusive")
    copy_distance: int = Field(default=256, ge=1, description="furthest back a copied span starts")
    doc_len: int = Field(default=1024, ge=2, description="tokens per document; documents are generated in parallel")


class DataSpec(_Frozen):
    """Where a probe's tokens come from.  The default is the embedded synthetic corpus (nothing to download)."""

    kind: Literal["synthetic", "bin", "npy", "text"] = "synthetic"
    path: str | None = Field(default=None, description="token file (bin/npy) or text file; not for synthetic")
    eval_path: str | None = Field(default=None, description="held-out file; default: the tail of `path`")
    dtype: Literal["uint16", "uint32", "int32"] = Field(
        default="uint16", description="element type of a .bin file (nanoGPT: uint16/uint32; Megatron: from its .idx)"
    )
    tokenizer: str | None = Field(default=None, description="text: a tokenizer.json for HF `tokenizers`; else bytes")
    vocab_map: str | None = Field(
        default=None, description=".npy table from data token id to probe token id (the ids the data uses, compacted)"
    )
    source: str | None = Field(
        default=None, description="what the tokens were prepared from (format, file, tokenizer) and its fingerprint"
    )
    eval_tokens: int = Field(default=2**17, gt=0, description="held-out tokens taken from the end of the data")
    n_tokens: int = Field(default=2**24, gt=0, description="synthetic: corpus size, eval tokens included")
    seed: int = Field(default=0, description="synthetic: generator seed")
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _check(self) -> DataSpec:
        if self.kind != "synthetic" and not self.path:
            raise LrpredictError("data.path", self.path, f"a {self.kind} source needs a path")
        if self.kind == "synthetic" and self.eval_tokens >= self.n_tokens:
            raise LrpredictError("data.eval_tokens", self.eval_tokens, f"must be < n_tokens={self.n_tokens}")
        return self


class ProbeSpec(_Frozen):
    """One short training run: a model, a peak LR, and the token horizons its WSD decays end at."""

    arch: Architecture
    lr: float = Field(gt=0, description="peak AdamW learning rate")
    horizons: tuple[int, ...] = Field(min_length=1, description="training tokens at which a decay branch ends")
    batch_size: int = Field(default=32, gt=0, description="sequences per optimizer step")
    seq_len: int = Field(default=256, gt=0, description="tokens per sequence")
    warmup_steps: int | None = Field(default=None, ge=0, description="default: 1% of the longest run (Ling)")
    decay_frac: float = Field(default=0.2, gt=0, le=1, description="share of each horizon spent decaying")
    decay_shape: Literal["linear", "cosine", "1-sqrt"] = "linear"
    final_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="LR at the end of a decay, over peak")
    weight_decay: float = Field(default=0.1, ge=0, description="AdamW λ (PyTorch convention p ← p − η·λ·p)")
    decay_embeddings: bool = Field(default=False, description="apply weight decay to the input embedding too")
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float | None = Field(default=1.0, gt=0, description="max global grad norm; None: no clipping")
    init_std: float = Field(default=0.02, gt=0)
    moe_aux_coef: float = Field(default=0.01, ge=0, description="Switch load-balancing loss weight")
    data: DataSpec = DataSpec()
    eval_batches: int = Field(default=8, gt=0, description="held-out batches of batch_size sequences per eval")
    log_every: int | None = Field(default=None, gt=0, description="train-loss curve stride; default ~100 points")
    diverge_margin: float = Field(default=1.0, gt=0, description="diverged when loss > first loss + margin")
    precision: Literal["bf16", "fp32"] = Field(default="bf16", description="bf16 autocast on CUDA; CPU runs fp32")
    seed: int = 0
    # Execution only (not in probe_id):
    device: str | None = Field(default=None, description="e.g. 'cpu', 'cuda:1'; default: cuda if present")
    grad_accum: int = Field(default=1, gt=0, description="micro-batches per step; must divide batch_size")
    compile: bool = Field(default=False, description="torch.compile the model")
    branch_store: Literal["cpu", "device", "disk"] = Field(default="cpu", description="where branch checkpoints live")

    @model_validator(mode="after")
    def _check(self) -> ProbeSpec:
        steps = self.horizon_steps
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise LrpredictError("horizons", self.horizons, f"must be increasing and ≥ {self.tokens_per_step} apart")
        if self.batch_size % self.grad_accum:
            raise LrpredictError("grad_accum", self.grad_accum, f"must divide batch_size={self.batch_size}")
        if self.resolved_warmup_steps > self.branch_steps[0]:
            raise LrpredictError(
                "warmup_steps", self.warmup_steps, f"must end before the first decay (step {self.branch_steps[0]})"
            )
        return self

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def horizon_steps(self) -> tuple[int, ...]:
        """Optimizer steps of each horizon (rounded; at least one)."""
        return tuple(max(1, round(d / self.tokens_per_step)) for d in self.horizons)

    @property
    def branch_steps(self) -> tuple[int, ...]:
        """Step at which each horizon's decay leaves the shared stable phase: (1 - decay_frac)·T_i."""
        return tuple(math.floor((1 - self.decay_frac) * t) for t in self.horizon_steps)

    @property
    def resolved_warmup_steps(self) -> int:
        if self.warmup_steps is not None:
            return self.warmup_steps
        # why: Ling (arXiv 2507.17702) warms up over 1% of steps; one value for every branch, from the longest run.
        return min(max(1, round(0.01 * self.horizon_steps[-1])), self.branch_steps[0])

    @property
    def probe_id(self) -> str:
        return probe_id(self)


def probe_id(spec: ProbeSpec) -> str:
    """A stable 16-hex-digit id: sha256 of the spec's result-deciding fields, as canonical JSON."""
    payload = spec.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))
    for key in _OPTIONAL_DATA_FIELDS:  # added later: left out while unset, so earlier ledgers keep their ids
        if payload["data"].get(key) is None:
            payload["data"].pop(key, None)
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class CurvePoint(_Frozen):
    """Mean train loss over the ``log_every`` steps ending at ``step``; ``branch`` -1 is the stable run."""

    branch: int
    step: int
    lr: float
    loss: float


class BranchResult(_Frozen):
    """The end of one decay branch: held-out loss after ``tokens`` training tokens."""

    tokens: int
    steps: int
    eval_loss: float | None = Field(description="None when the probe diverged before this horizon")
    train_loss: float | None = None
    # issue 19: the spread of the per-sequence held-out losses, so each loss carries its standard error
    # (eval_sd / √eval_sequences); absent in ledgers written before
    eval_sd: float | None = Field(default=None, description="sd of the per-sequence held-out losses (ddof 1)")
    eval_sequences: int | None = Field(default=None, description="held-out sequences behind eval_loss")

    @property
    def eval_se(self) -> float | None:
        """Standard error of ``eval_loss`` over the held-out sequences (None when not recorded)."""
        if self.eval_sd is None or not self.eval_sequences:
            return None
        return self.eval_sd / self.eval_sequences**0.5


class ProbeResult(BaseModel):
    """What one probe returned; one ledger line is this model as JSON, summary fields (lr, horizons, losses) included.

    Unknown keys are ignored on reading, so a ledger written by a newer version (or with the summary fields) loads.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    probe_id: str
    spec: ProbeSpec
    status: Status
    branches: tuple[BranchResult, ...] = ()
    curve: tuple[CurvePoint, ...] = ()
    first_loss: float | None = None
    error: str | None = None
    n_params: int | None = None
    device: str | None = None
    data_fingerprint: str | None = None
    wall_time_s: float = 0.0
    train_time_s: float = Field(default=0.0, description="seconds in optimizer steps (no setup, no eval)")
    trained_tokens: int = Field(default=0, description="tokens of all optimizer steps, branches included")
    finished_at: float = Field(default=0.0, description="unix time the probe ended")

    @computed_field
    @property
    def lr(self) -> float:
        return self.spec.lr

    @computed_field
    @property
    def horizons(self) -> tuple[int, ...]:
        """Tokens trained at the end of each branch (each horizon of the spec, rounded to whole steps)."""
        return tuple(b.tokens for b in self.branches)

    @computed_field
    @property
    def losses(self) -> tuple[float | None, ...]:
        """Held-out loss at each of ``horizons`` (None where the probe did not get there)."""
        return tuple(b.eval_loss for b in self.branches)
