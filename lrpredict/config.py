"""The user's run: ``ModelConfig``.  Sizes accept numbers or strings such as ``"7B"``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic_core import ValidationError

from lrpredict.architecture import Architecture, Convention, ParamCounts, count_parameters, flops_per_token
from lrpredict.errors import LrpredictError, error_from_validation
from lrpredict.record import Before, Field, Record, after_validation
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


Size = Annotated[float, Before(_size)]


def validation_to_error(exc: ValidationError) -> LrpredictError:
    """pydantic's report as our one-line error; an unknown field gets the nearest ``ModelConfig`` field name."""
    return error_from_validation(exc, ModelConfig.model_fields, FIELD_ALIASES)


# CLI spellings a Python caller may try: the field they mean
FIELD_ALIASES = {"layers": "n_layers", "experts": "n_experts"}


# the smallest config lrpredict answers for: below it no published run or sweep exists (docs/choosing.md)
MIN_PARAMS = 1e5
# Said when a compute law (DeepSeek, Ling) forms M without the shape: both the default and --law do so (issue 20).
M_APPROXIMATION_WARNING = (
    "M approximated as 6·N_active (attention FLOPs omitted: M is ~10–20% low at a 4K context, the LR ~2% high); "
    "give --layers, --d-model and --seq-len for the exact M"
)


class _FromShape:
    """``ModelConfig``'s constructors from a model's shape: N, N_active and the MoE fields derived, not typed."""

    @classmethod
    def from_architecture(
        cls: type[ModelConfig],
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
        cls: type[ModelConfig],
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


class ModelConfig(_FromShape, Record, extra="forbid"):
    """A pre-training run to predict hyperparameters for.

    ``params`` is the non-embedding parameter count (for MoE, all experts); ``active_params`` the non-embedding
    parameters active per token (MoE).  Width, depth and sequence length are optional; laws written in compute
    (DeepSeek, Ling) need them to form M, and say so.
    """

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

    @after_validation
    def _check(self) -> ModelConfig:
        _check_consistent(self)
        _check_plausible(self)
        return self

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


def _check_consistent(config: ModelConfig) -> None:
    """Sizes finite and > 0; active parameters within the total; no MoE fields on a dense run."""
    for name in ("params", "tokens", "active_params", "batch_tokens"):
        value = getattr(config, name)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise LrpredictError(name, value, "a finite number > 0")
    if config.active_params is not None and config.active_params > config.params:
        raise LrpredictError("active_params", config.active_params, f"must be <= params={config.params:.4g}")
    if config.arch == "dense":
        if config.active_params is not None and config.active_params != config.params:
            raise LrpredictError("active_params", config.active_params, "dense models have active = params")
        if config.n_experts or config.top_k:
            raise LrpredictError("arch", config.arch, "'moe' when n_experts or top_k is given")
    if config.top_k is not None and config.n_experts is not None and config.top_k > config.n_experts:
        raise LrpredictError("top_k", config.top_k, f"must be <= n_experts={config.n_experts}")


def _check_plausible(config: ModelConfig) -> None:
    """Refuse a run no one could train (issue 13): a law evaluated there answers nonsense, e.g. LR 2.7e3 at N=7."""
    for name in ("params", "active_params"):
        value = getattr(config, name)
        if value is not None and value < MIN_PARAMS:
            raise LrpredictError(name, value, f">= {MIN_PARAMS:g} non-embedding parameters (no real run is smaller)")
    from lrpredict import bounds

    for name in ("params", "active_params", "tokens", "batch_tokens"):  # one table (lrpredict.bounds, issue 23)
        bounds.check(name, getattr(config, name))
    if config.batch_tokens is not None:
        if config.batch_tokens > config.tokens:
            raise LrpredictError(
                "batch_tokens", config.batch_tokens, f"at most tokens={config.tokens:.4g} (one batch is one step)"
            )
        if config.seq_len is not None and config.batch_tokens < config.seq_len:
            raise LrpredictError(
                "batch_tokens", config.batch_tokens, f"at least one sequence, seq_len={config.seq_len} tokens"
            )
    if config.seq_len is not None and config.tokens < config.seq_len:
        raise LrpredictError("tokens", config.tokens, f"at least one sequence, seq_len={config.seq_len} tokens")


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


def config_from_hf(
    source: str | Path | Mapping[str, Any], *, tokens: float | str, seq_len: int | None = None, **fields: Any
) -> tuple[ModelConfig, list[str]]:
    """``ModelConfig.from_hf_config`` plus a sequence length guessed from the file when none is given, and the
    notes that say so (the CLI's ``--hf-config``)."""
    from lrpredict.hf_config import DEFAULT_SEQ_LEN, hf_seq_len, read_hf_config

    notes: list[str] = []
    data = read_hf_config(source)  # read the file once: the guess and the shape both come from it
    if seq_len is None:
        guess = hf_seq_len(data)
        if guess is not None and guess[1].endswith("original_max_position_embeddings"):
            seq_len, field = guess  # the context before RoPE scaling: the pre-training length (DeepSeek-V3 4096)
            notes.append(f"seq_len {seq_len} from config.json {field}, the pre-training context; give --seq-len")
        else:
            # the context window is not the training length (Qwen2-57B-A14B: 131072 moved the LR 17% and the batch
            # 45% against 4096, issue 23): a stated default unless the window is shorter
            seq_len = DEFAULT_SEQ_LEN if guess is None else min(DEFAULT_SEQ_LEN, guess[0])
            window = f"; config.json {guess[1]} {guess[0]} is the context window" if guess else ""
            notes.append(f"seq_len {seq_len}: lrpredict's default training sequence length{window}; give --seq-len")
    config = ModelConfig.from_hf_config(data, tokens=tokens, seq_len=seq_len, **fields)
    return config, notes


def _own_fields(config: ModelConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.model_fields_set}


__all__ = ["Architecture", "ModelConfig", "ParamCounts", "coerce_config", "count_parameters", "describe_config"]
