"""Parameter and FLOP counts of a Llama-style decoder (dense or MoE), derived in one place.

Every law names the N it means (non-embedding total or active); this module is the only place that computes
them, so laws, probes and tests agree.  Conventions follow Step Law (arXiv 2503.04715: N = n_layers·(4·d² +
3·d·d_ffn) for its SwiGLU blocks) and DeepSeek LLM (arXiv 2401.02954: M = 72·n_layers·d² + 12·n_layers·d·seq_len,
i.e. 6·N plus attention FLOPs).  Unlike Step Law we count norms and routers in N: they are non-embedding
parameters, and they change N by about 0.1%.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lrpredict.errors import LrpredictError


class Architecture(BaseModel):
    """The shape of a decoder-only transformer with SwiGLU FFNs (optionally mixture-of-experts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(gt=0, description="hidden width")
    n_layers: int = Field(gt=0, description="number of transformer blocks")
    d_ffn: int = Field(gt=0, description="SwiGLU hidden width of a dense FFN")
    n_heads: int = Field(gt=0, description="attention heads")
    vocab_size: int = Field(gt=0, description="vocabulary size")
    n_kv_heads: int | None = Field(default=None, gt=0, description="key/value heads (GQA); default n_heads")
    n_experts: int = Field(default=0, ge=0, description="routed experts per MoE layer; 0 for dense")
    top_k: int = Field(default=0, ge=0, description="routed experts active per token")
    d_expert: int | None = Field(default=None, gt=0, description="SwiGLU width of one expert; default d_ffn")
    n_shared_experts: int = Field(default=0, ge=0, description="always-active shared experts per MoE layer")
    d_shared_expert: int | None = Field(default=None, gt=0, description="width of a shared expert; default d_expert")
    n_dense_layers: int = Field(default=0, ge=0, description="leading layers with a dense FFN in an MoE model")
    tied_embeddings: bool = Field(default=False, description="output head shares the input embedding")

    @model_validator(mode="after")
    def _check(self) -> Architecture:
        if self.d_model % self.n_heads:
            raise LrpredictError("n_heads", self.n_heads, f"must divide d_model={self.d_model}")
        kv = self.n_kv_heads or self.n_heads
        if self.n_heads % kv:
            raise LrpredictError("n_kv_heads", kv, f"must divide n_heads={self.n_heads}")
        if self.n_experts:
            if not 1 <= self.top_k <= self.n_experts:
                raise LrpredictError("top_k", self.top_k, f"must be between 1 and n_experts={self.n_experts}")
            if self.n_dense_layers >= self.n_layers:
                raise LrpredictError("n_dense_layers", self.n_dense_layers, f"must be < n_layers={self.n_layers}")
        elif self.top_k or self.n_shared_experts or self.n_dense_layers:
            raise LrpredictError("n_experts", 0, "must be >= 1 when top_k, shared experts or dense layers are set")
        return self

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by group.  ``total`` is their sum; ``non_embedding`` leaves out the input embedding and head."""

    embedding: int
    output_head: int
    attention: int
    dense_ffn: int
    routed_experts: int
    shared_experts: int
    router: int
    norms: int
    active_routed_experts: int

    @property
    def non_embedding(self) -> int:
        return self.attention + self.dense_ffn + self.routed_experts + self.shared_experts + self.router + self.norms

    @property
    def non_embedding_active(self) -> int:
        return self.non_embedding - self.routed_experts + self.active_routed_experts

    @property
    def total(self) -> int:
        return self.embedding + self.output_head + self.non_embedding

    def groups(self) -> dict[str, int]:
        return {
            "embedding": self.embedding,
            "output_head": self.output_head,
            "attention": self.attention,
            "dense_ffn": self.dense_ffn,
            "routed_experts": self.routed_experts,
            "shared_experts": self.shared_experts,
            "router": self.router,
            "norms": self.norms,
        }


def count_parameters(arch: Architecture) -> ParamCounts:
    """Count every parameter of ``arch`` by group (no biases: Llama-style blocks have none)."""
    d, layers = arch.d_model, arch.n_layers
    head_dim = d // arch.n_heads
    kv = arch.n_kv_heads or arch.n_heads
    attention_per_layer = d * d * 2 + 2 * d * kv * head_dim  # q and o are d×d; k and v shrink with GQA
    swiglu = 3 * d  # gate, up and down projections: 3·d·width
    moe_layers = layers - arch.n_dense_layers if arch.is_moe else 0
    dense_layers = layers - moe_layers
    d_expert = arch.d_expert or arch.d_ffn
    d_shared = arch.d_shared_expert or d_expert
    return ParamCounts(
        embedding=arch.vocab_size * d,
        output_head=0 if arch.tied_embeddings else arch.vocab_size * d,
        attention=layers * attention_per_layer,
        dense_ffn=dense_layers * swiglu * arch.d_ffn,
        routed_experts=moe_layers * arch.n_experts * swiglu * d_expert,
        shared_experts=moe_layers * arch.n_shared_experts * swiglu * d_shared,
        router=moe_layers * arch.n_experts * d,
        norms=(2 * layers + 1) * d,  # two RMSNorms a block and the final norm
        active_routed_experts=moe_layers * arch.top_k * swiglu * d_expert,
    )


def flops_per_token(active_params: float, n_layers: int, d_model: int, seq_len: int) -> float:
    """Non-embedding training FLOPs per token, DeepSeek LLM convention (arXiv 2401.02954, Sec. 3.1).

    M = 6·N_active + 12·n_layers·d_model·seq_len: for their blocks 6·N = 72·n_layers·d², and the second term is
    the attention score/value FLOPs that 6·N omits.  Ling (arXiv 2507.17702) counts only active experts in M.
    """
    return 6.0 * active_params + 12.0 * n_layers * d_model * seq_len
