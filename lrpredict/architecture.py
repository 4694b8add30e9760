"""Parameter and FLOP counts of a Llama-style decoder (dense or MoE), derived in one place.

Every law names the N it means (non-embedding total or active) and how it counts it (``conventions.count`` of a
law file); this module is the only place that computes them, so laws, probes and tests agree.

Two counting conventions:

- ``"exact"`` (default): every weight of the model, as ``model.parameters()`` would count it — K/V projections
  shrink with GQA, Multi-head Latent Attention (DeepSeek-V2/V3) counts its low-rank projections, a head_dim
  decoupled from d_model/n_heads (Qwen3, Gemma) is honoured, norms and routers are included (about 0.1% of N).
- ``"steplaw"``: Step Law's (arXiv 2503.04715) N = n_layers·(4·d² + 3·d·d_ffn) for its SwiGLU blocks — attention
  counted as 4·d² whatever the K/V heads, no norms, no routers.  Its coefficients were fitted on that N, so a GQA
  model must be counted that way for the law (at 70B the exact count is ~9% smaller in attention-heavy blocks, which
  moves the LR by N^-0.713).

FLOPs follow DeepSeek LLM (arXiv 2401.02954: M = 72·n_layers·d² + 12·n_layers·d·seq_len, i.e. 6·N plus attention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lrpredict.errors import LrpredictError
from lrpredict.record import Field, Record, after_validation


class Architecture(Record, extra="forbid"):
    """The shape of a decoder-only transformer with SwiGLU FFNs (optionally mixture-of-experts)."""

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
    head_dim: int | None = Field(
        default=None,
        gt=0,
        description="width of one attention head (Qwen3, Gemma decouple it); default d_model/n_heads",
    )
    qkv_bias: bool = Field(default=False, description="q, k and v projections carry biases (Qwen2)")
    q_lora_rank: int | None = Field(default=None, gt=0, description="MLA: rank of the query compression")
    kv_lora_rank: int | None = Field(
        default=None, gt=0, description="MLA (DeepSeek-V2/V3): rank of the joint key/value compression"
    )
    qk_rope_head_dim: int = Field(default=0, ge=0, description="MLA: decoupled RoPE width per head")
    v_head_dim: int | None = Field(default=None, gt=0, description="MLA: value width per head; default head_dim")

    @after_validation
    def _check(self) -> Architecture:
        if self.head_dim is None and self.d_model % self.n_heads:
            raise LrpredictError("n_heads", self.n_heads, f"must divide d_model={self.d_model} (or give head_dim)")
        if self.kv_lora_rank is None and (self.q_lora_rank or self.qk_rope_head_dim or self.v_head_dim):
            raise LrpredictError("kv_lora_rank", None, "set for Multi-head Latent Attention (q_lora_rank, ...)")
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

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def attention_head_dim(self) -> int:
        """Width of one head (MLA: the non-RoPE query/key part)."""
        return self.head_dim or self.d_model // self.n_heads


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
    def active_fraction(self) -> float:
        """Share of the non-embedding parameters a token uses (1 for a dense model)."""
        return self.non_embedding_active / self.non_embedding

    @property
    def total(self) -> int:
        return self.embedding + self.output_head + self.non_embedding

    @property
    def active(self) -> int:
        """Parameters a token uses, embedding and head included (Mixtral's 12.9B and OLMoE's 1.3B count so;
        DeepSeek-V3's 37B leaves out the input embedding: ``active - embedding``)."""
        return self.embedding + self.output_head + self.non_embedding_active

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


Convention = Literal["exact", "steplaw", "with-head"]
# "with-head": exact non-embedding N plus the output head (vocab·d, counted once even when tied), Porian et al.'s N
# (arXiv 2406.19146: "parameters including the output head, excluding the input embedding").  It is served by
# ModelConfig.params_for; count_parameters' groups are the same as "exact" for it.
CONVENTIONS: tuple[str, ...] = ("exact", "steplaw", "with-head")


def _attention_per_layer(arch: Architecture) -> int:
    d, heads, hd = arch.d_model, arch.n_heads, arch.attention_head_dim
    if arch.kv_lora_rank is not None:
        # MLA, DeepSeek-V2 (arXiv 2405.04434) Sec. 2.1 and HF modeling_deepseek_v3: queries through a rank-q_lora
        # bottleneck (with its RMSNorm), keys/values from one rank-kv_lora latent plus a shared RoPE key.
        qk = hd + arch.qk_rope_head_dim
        v = arch.v_head_dim or hd
        if arch.q_lora_rank:
            q = d * arch.q_lora_rank + arch.q_lora_rank + arch.q_lora_rank * heads * qk
        else:
            q = d * heads * qk
        kv = d * (arch.kv_lora_rank + arch.qk_rope_head_dim) + arch.kv_lora_rank + arch.kv_lora_rank * heads * (hd + v)
        return q + kv + heads * v * d
    kv_heads = arch.n_kv_heads or heads
    bias = (heads + 2 * kv_heads) * hd if arch.qkv_bias else 0
    return 2 * d * heads * hd + 2 * d * kv_heads * hd + bias  # q and o; k and v shrink with GQA


def count_parameters(arch: Architecture, convention: Convention = "exact") -> ParamCounts:
    """Count every parameter of ``arch`` by group (no biases unless ``qkv_bias``: Llama-style blocks have none).

    ``convention="steplaw"`` counts N as Step Law does: attention 4·d² a layer whatever its K/V heads or head
    width, no norms and no routers (see the module docstring); the embedding and head are counted as usual.

    >>> counts = count_parameters(Architecture(d_model=4096, n_layers=32, d_ffn=11008, n_heads=32, vocab_size=32000))
    >>> counts.total  # Llama-2-7B
    6738415616
    """
    if convention not in CONVENTIONS:
        raise LrpredictError("convention", convention, f"one of {list(CONVENTIONS)}")
    d, layers = arch.d_model, arch.n_layers
    steplaw = convention == "steplaw"
    attention_per_layer = 4 * d * d if steplaw else _attention_per_layer(arch)
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
        router=0 if steplaw else moe_layers * arch.n_experts * d,
        norms=0 if steplaw else (2 * layers + 1) * d,  # two RMSNorms a block and the final norm
        active_routed_experts=moe_layers * arch.top_k * swiglu * d_expert,
    )


def flops_per_token(active_params: float, n_layers: int, d_model: int, seq_len: int) -> float:
    """Non-embedding training FLOPs per token, DeepSeek LLM convention (arXiv 2401.02954, Sec. 3.1).

    M = 6·N_active + 12·n_layers·d_model·seq_len: for their blocks 6·N = 72·n_layers·d², and the second term is
    the attention score/value FLOPs that 6·N omits.  Ling (arXiv 2507.17702) counts only active experts in M.
    """
    return 6.0 * active_params + 12.0 * n_layers * d_model * seq_len
