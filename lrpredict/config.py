"""The user's run: ``ModelConfig``.  Sizes accept numbers or strings such as ``"7B"``."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from lrpredict.architecture import Architecture, Convention, ParamCounts, count_parameters, flops_per_token
from lrpredict.errors import LrpredictError
from lrpredict.units import parse_size


def _size(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read True as 1.0; a flag is not a size (issue 15)
        raise ValueError("a size such as 7B or 1.3e9, not True/False")
    if value is None:
        return value
    if isinstance(value, str):
        try:
            return parse_size(value)
        except LrpredictError as exc:  # re-raised by pydantic with the field's name
            raise ValueError(exc.allowed) from None
    return value


Size = Annotated[float, BeforeValidator(_size)]


def validation_to_error(exc: ValidationError) -> LrpredictError:
    """Turn pydantic's report into our one-line error (one problem: fix one thing at a time).  An unknown field
    comes first, with the nearest known name: {"token": "20B"} reported "tokens={...whole dict...}: Field required"
    (QA 2026-12-01)."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, LrpredictError):
        return original
    field = ".".join(str(part) for part in err["loc"]) or "config"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = list(ModelConfig.model_fields) + list(FIELD_ALIASES)
        near = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f" (did you mean {FIELD_ALIASES.get(near[0], near[0])}?)" if near else ""
        return LrpredictError(field, err.get("input"), f"unknown field{hint}")
    if err["type"] == "missing":
        return LrpredictError(field, None, "a required field")
    return LrpredictError(field, err.get("input"), message)


# CLI spellings a Python caller may try: the field they mean
FIELD_ALIASES = {"layers": "n_layers", "experts": "n_experts"}


# the smallest config lrpredict answers for: below it no published run or sweep exists (docs/choosing.md)
MIN_PARAMS = 1e5


class ModelConfig(BaseModel):
    """A pre-training run to predict hyperparameters for.

    ``params`` is the non-embedding parameter count (for MoE, all experts); ``active_params`` the non-embedding
    parameters active per token (MoE).  Width, depth and sequence length are optional; laws written in compute
    (DeepSeek, Ling) need them to form M, and say so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["dense", "moe"] = Field(default="dense", description="dense or mixture-of-experts")
    params: Size = Field(description="non-embedding parameters (MoE: total over all experts)")
    tokens: Size = Field(description="training tokens D")
    active_params: Size | None = Field(default=None, description="MoE: non-embedding parameters active per token")
    n_layers: int | None = Field(default=None, gt=0, description="transformer blocks")
    d_model: int | None = Field(default=None, gt=0, description="hidden width")
    seq_len: int | None = Field(default=None, gt=0, description="training sequence length in tokens")
    batch_tokens: Size | None = Field(default=None, description="the batch you will use, in tokens per step")
    n_experts: int | None = Field(default=None, gt=0, description="MoE: routed experts per layer")
    top_k: int | None = Field(default=None, gt=0, description="MoE: routed experts active per token")
    vocab_size: int | None = Field(default=None, gt=0, description="vocabulary size")
    schedule: Literal["wsd", "cosine", "linear", "multistep", "constant"] | None = Field(
        default=None, description="the LR schedule you will train with (warns when the law assumed another)"
    )
    shape: Architecture | None = Field(
        default=None,
        description="the model shape when known (from_architecture, from_hf_config): each law then counts N from "
        "it in its own convention (Step Law: attention as 4·d²)",
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise validation_to_error(exc) from None

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        for name in ("params", "tokens", "active_params", "batch_tokens"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise LrpredictError(name, value, "a finite number > 0")
        if self.active_params is not None and self.active_params > self.params:
            raise LrpredictError("active_params", self.active_params, f"must be <= params={self.params:.4g}")
        if self.arch == "dense":
            if self.active_params is not None and self.active_params != self.params:
                raise LrpredictError("active_params", self.active_params, "dense models have active = params")
            if self.n_experts or self.top_k:
                raise LrpredictError("arch", self.arch, "'moe' when n_experts or top_k is given")
        if self.top_k is not None and self.n_experts is not None and self.top_k > self.n_experts:
            raise LrpredictError("top_k", self.top_k, f"must be <= n_experts={self.n_experts}")
        self._check_plausible()
        return self

    def _check_plausible(self) -> None:
        """Refuse a run no one could train (issue 13): a law evaluated there answers nonsense, e.g. LR 2.7e3 at N=7."""
        for name in ("params", "active_params"):
            value = getattr(self, name)
            if value is not None and value < MIN_PARAMS:
                raise LrpredictError(
                    name, value, f">= {MIN_PARAMS:g} non-embedding parameters (no real run is smaller)"
                )
        from lrpredict import bounds

        for name in ("params", "active_params", "tokens", "batch_tokens"):  # one table (lrpredict.bounds, issue 23)
            bounds.check(name, getattr(self, name))
        if self.batch_tokens is not None:
            if self.batch_tokens > self.tokens:
                raise LrpredictError(
                    "batch_tokens", self.batch_tokens, f"at most tokens={self.tokens:.4g} (one batch is one step)"
                )
            if self.seq_len is not None and self.batch_tokens < self.seq_len:
                raise LrpredictError(
                    "batch_tokens", self.batch_tokens, f"at least one sequence, seq_len={self.seq_len} tokens"
                )
        if self.seq_len is not None and self.tokens < self.seq_len:
            raise LrpredictError("tokens", self.tokens, f"at least one sequence, seq_len={self.seq_len} tokens")

    @property
    def n_active(self) -> float | None:
        """Active non-embedding parameters (dense: all of them)."""
        return self.params if self.arch == "dense" else self.active_params

    def params_for(self, convention: Convention = "exact") -> tuple[float, float | None]:
        """(N, N_active) counted the way a law counts them (``LawFile.conventions.count``).  Without a shape the
        numbers you gave serve every convention.

        >>> config = ModelConfig.from_architecture(d_model=8192, n_layers=80, d_ffn=28672, n_heads=64,
        ...     n_kv_heads=8, vocab_size=128256, tokens="15T")  # Llama-3-70B's shape
        >>> exact, _ = config.params_for("exact")
        >>> steplaw, _ = config.params_for("steplaw")
        >>> round(steplaw / exact, 3)  # Step Law counts attention as 4·d² even with GQA
        1.137
        """
        if self.shape is None or convention == "exact":
            return self.params, self.n_active
        counts = count_parameters(self.shape, convention)
        head = self.shape.vocab_size * self.shape.d_model if convention == "with-head" else 0
        return float(counts.non_embedding + head), float(counts.non_embedding_active + head)

    def flops_per_token(self) -> float | None:
        """M, DeepSeek convention, or None when width, depth, sequence length or active params are missing."""
        if None in (self.n_active, self.n_layers, self.d_model, self.seq_len):
            return None
        return flops_per_token(self.n_active, self.n_layers, self.d_model, self.seq_len)  # type: ignore[arg-type]

    @classmethod
    def from_architecture(
        cls,
        architecture: Architecture | None = None,
        *,
        tokens: float | str,
        seq_len: int | None = None,
        batch_tokens: float | str | None = None,
        extra: Mapping[str, Any] | None = None,
        **shape: Any,
    ) -> ModelConfig:
        """Build a config from a model shape; N, N_active and the MoE fields are derived, not typed by hand.

        >>> config = ModelConfig.from_architecture(d_model=4096, n_layers=32, d_ffn=11008, n_heads=32,
        ...     vocab_size=32000, tokens="2T")
        >>> f"{config.params:.4g}"
        '6.476e+09'
        """
        if architecture is None:
            try:
                architecture = Architecture(**shape)
            except ValidationError as exc:
                raise validation_to_error(exc) from None
        elif shape:
            raise LrpredictError("shape", sorted(shape), "give either an Architecture or shape keywords, not both")
        extra = dict(extra or {})
        counts = count_parameters(architecture)
        moe = architecture.is_moe
        return cls(
            arch="moe" if moe else "dense",
            params=counts.non_embedding,
            active_params=counts.non_embedding_active if moe else None,
            tokens=tokens,
            n_layers=architecture.n_layers,
            d_model=architecture.d_model,
            seq_len=seq_len,
            batch_tokens=batch_tokens,
            n_experts=architecture.n_experts or None,
            top_k=architecture.top_k or None,
            vocab_size=architecture.vocab_size,
            shape=architecture,
            **extra,
        )

    @classmethod
    def from_hf_config(
        cls,
        source: str | Path | Mapping[str, Any],
        *,
        tokens: float | str,
        seq_len: int | None = None,
        batch_tokens: float | str | None = None,
        **extra: Any,
    ) -> ModelConfig:
        """Build a config from a Hugging Face ``config.json`` (a path, a folder holding one, or its dict): dense
        Llama/Mistral/Qwen2/Qwen3/Gemma, MoE Mixtral/Qwen-MoE/OLMoE/DeepSeek-V2/V3 (shared experts, leading dense
        layers, Multi-head Latent Attention, decoupled head_dim, tied embeddings).  ``seq_len`` is not read from the
        file (its context length is often not the training one); ``lrpredict.hf_config.hf_seq_len`` guesses it.

        >>> config = ModelConfig.from_hf_config({"model_type": "mixtral", "hidden_size": 4096,
        ...     "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        ...     "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000},
        ...     tokens="1T")
        >>> config.arch, f"{config.params:.3g}", f"{config.active_params:.3g}"
        ('moe', '4.64e+10', '1.26e+10')
        """
        from lrpredict.hf_config import architecture_from_hf

        return cls.from_architecture(
            architecture_from_hf(source), tokens=tokens, seq_len=seq_len, batch_tokens=batch_tokens, extra=extra
        )


def describe_config(config: ModelConfig) -> str:
    """One line naming the run: arch, N (total / active), D and your batch."""
    from lrpredict.units import format_size

    n = f"N={format_size(config.params)}"
    if config.arch == "moe" and config.active_params:
        n += f" total / {format_size(config.active_params)} active"
    batch = f", your batch {format_size(config.batch_tokens)} tokens" if config.batch_tokens else ""
    return f"{config.arch}, {n} non-embedding params, D={format_size(config.tokens)} tokens{batch}"


def coerce_config(config: Any = None, fields: Mapping[str, Any] | None = None) -> ModelConfig:
    """A ``ModelConfig`` from what a caller of ``suggest`` may give: a ModelConfig, a mapping of its fields, or
    keyword fields (not both).

    >>> coerce_config(None, {"params": "1B", "tokens": "20B"}).tokens
    20000000000.0
    """
    fields = dict(fields or {})
    if isinstance(config, ModelConfig):
        if fields:
            return ModelConfig(**{**_own_fields(config), **fields})
        return config
    if isinstance(config, Mapping):
        if fields:
            raise LrpredictError("config", "mapping and keywords", "one of them: a mapping or keyword fields")
        return ModelConfig(**dict(config))
    if config is None and fields:
        return ModelConfig(**fields)
    shown = config if isinstance(config, (type(None), bool, int, float, str)) else type(config).__name__
    raise LrpredictError(
        "config",
        shown,
        "a ModelConfig, a mapping of its fields, or keyword fields, e.g. suggest(params='1B', tokens='20B')",
    )


def _own_fields(config: ModelConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.model_fields_set}


__all__ = ["Architecture", "ModelConfig", "ParamCounts", "coerce_config", "count_parameters", "describe_config"]
