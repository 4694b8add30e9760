"""The user's run: ``ModelConfig``.  Sizes accept numbers or strings such as ``"7B"``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from lrpredict.architecture import Architecture, ParamCounts, count_parameters, flops_per_token
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
    """Turn pydantic's report into our one-line error (first problem only: fix one thing at a time)."""
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, LrpredictError):
        return original
    field = ".".join(str(part) for part in err["loc"]) or "config"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return LrpredictError(field, err.get("input"), "unknown field")
    return LrpredictError(field, err.get("input"), message)


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
        return self

    @property
    def n_active(self) -> float | None:
        """Active non-embedding parameters (dense: all of them)."""
        return self.params if self.arch == "dense" else self.active_params

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
        **shape: Any,
    ) -> ModelConfig:
        """Build a config from a model shape; N, N_active and the MoE fields are derived, not typed by hand."""
        if architecture is None:
            try:
                architecture = Architecture(**shape)
            except ValidationError as exc:
                raise validation_to_error(exc) from None
        elif shape:
            raise LrpredictError("shape", sorted(shape), "give either an Architecture or shape keywords, not both")
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
        )


__all__ = ["Architecture", "ModelConfig", "ParamCounts", "count_parameters"]
