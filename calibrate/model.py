"""Llama-style decoder for probes: RMSNorm, RoPE, SwiGLU, optional GQA, optional MoE; no biases.

Built from an ``Architecture`` so that its parameters by group equal ``count_parameters(arch)`` exactly (a test
proves it): a probe's N is the N the laws name.  The MoE layer is DeepSeekMoE-shaped (arXiv 2401.06066): a softmax
router picks top-k routed experts, optional shared experts see every token, and leading layers may stay dense.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lrpredict.architecture import Architecture, count_parameters

# ParamCounts group of each parameter, by its name in ``Decoder`` (see ``param_group``).
_GROUP_BY_PART = {"attn": "attention", "router": "router", "experts": "routed_experts", "shared": "shared_experts"}


class ModelOutput(NamedTuple):
    logits: torch.Tensor
    loss: torch.Tensor | None  # mean next-token cross-entropy, when targets are given
    aux_loss: torch.Tensor  # MoE load-balancing loss (mean over MoE layers); 0 for dense models


class RMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich arXiv 1910.07467): scale only, no mean subtraction, no bias."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(head_dim: int, seq_len: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of rotary position angles (Su et al. arXiv 2104.09864), seq_len × head_dim, half-split layout."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).type_as(x)


class Attention(nn.Module):
    """Causal self-attention with RoPE; ``n_kv_heads < n_heads`` shares each K/V head across a group (GQA)."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.n_kv_heads != self.n_heads:
            repeat = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    """FFN(x) = W_down(silu(W_gate x) ⊙ W_up x) (Shazeer arXiv 2002.05202)."""

    def __init__(self, d_model: int, width: int) -> None:
        super().__init__()
        self.w_gate = nn.Linear(d_model, width, bias=False)
        self.w_up = nn.Linear(d_model, width, bias=False)
        self.w_down = nn.Linear(width, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class RoutedExperts(nn.Module):
    """``n_experts`` SwiGLU experts stored as stacked weights, applied to the tokens routed to each."""

    def __init__(self, n_experts: int, d_model: int, width: int) -> None:
        super().__init__()
        self.w_gate = nn.Parameter(torch.empty(n_experts, width, d_model))
        self.w_up = nn.Parameter(torch.empty(n_experts, width, d_model))
        self.w_down = nn.Parameter(torch.empty(n_experts, d_model, width))

    def forward(self, x: torch.Tensor, expert: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x: tokens × d; expert, weight: one (token, expert) assignment per row of ``token × top_k``."""
        top_k = expert.shape[1]
        flat_expert = expert.reshape(-1)
        order = flat_expert.argsort()
        token = order // top_k  # the token of each sorted assignment
        counts = torch.bincount(flat_expert, minlength=self.w_gate.shape[0]).tolist()
        routed = x.index_select(0, token)
        outs = []
        for e, chunk in enumerate(routed.split(counts)):
            if chunk.shape[0]:
                outs.append(
                    F.linear(F.silu(F.linear(chunk, self.w_gate[e])) * F.linear(chunk, self.w_up[e]), self.w_down[e])
                )
        y = torch.cat(outs) * weight.reshape(-1)[order].unsqueeze(1).to(x.dtype)
        return torch.zeros_like(x).index_add_(0, token, y)


class MoE(nn.Module):
    """Top-k softmax router over routed experts, plus always-on shared experts (DeepSeekMoE, arXiv 2401.06066)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        d = arch.d_model
        self.top_k = arch.top_k
        self.n_experts = arch.n_experts
        self.router = nn.Linear(d, arch.n_experts, bias=False)
        self.experts = RoutedExperts(arch.n_experts, d, arch.d_expert or arch.d_ffn)
        # n shared experts of width w equal one SwiGLU of width n·w: same parameters, same function, one matmul
        d_shared = arch.d_shared_expert or arch.d_expert or arch.d_ffn
        self.shared = SwiGLU(d, arch.n_shared_experts * d_shared) if arch.n_shared_experts else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        probs = F.softmax(self.router(x).float(), dim=-1)
        weight, expert = probs.topk(self.top_k, dim=-1)
        y = self.experts(x, expert, weight)
        if self.shared is not None:
            y = y + self.shared(x)
        # Switch Transformer balance loss (Fedus et al. arXiv 2101.03961 Eq. 4): E·Σ_i f_i·P_i, f_i the share of
        # assignments to expert i, P_i its mean router probability; 1 when perfectly balanced.
        share = torch.bincount(expert.reshape(-1), minlength=self.n_experts).float() / expert.numel()
        aux = self.n_experts * (share * probs.mean(0)).sum()
        return y.reshape(shape), aux


class Block(nn.Module):
    """Pre-norm block: x ← x + r·Attn(norm(x)), then x ← x + r·FFN(norm(x)), with r the residual multiplier."""

    def __init__(self, arch: Architecture, moe: bool, residual_multiplier: float = 1.0) -> None:
        super().__init__()
        self.residual_multiplier = residual_multiplier
        self.attn_norm = RMSNorm(arch.d_model)
        self.attn = Attention(arch.d_model, arch.n_heads, arch.n_kv_heads or arch.n_heads)
        self.ffn_norm = RMSNorm(arch.d_model)
        self.ffn = MoE(arch) if moe else SwiGLU(arch.d_model, arch.d_ffn)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x + self._branch(self.attn(self.attn_norm(x), cos, sin))
        if isinstance(self.ffn, MoE):
            y, aux = self.ffn(self.ffn_norm(x))
            return x + self._branch(y), aux
        return x + self._branch(self.ffn(self.ffn_norm(x))), None

    def _branch(self, y: torch.Tensor) -> torch.Tensor:
        # r = 1 skips the multiply, so the default model runs exactly the operations it ran before r existed
        return y if self.residual_multiplier == 1.0 else y * self.residual_multiplier


class Decoder(nn.Module):
    """Pre-norm decoder: embed → blocks → RMSNorm → head (the embedding itself when ``tied_embeddings``).

    ``residual_multiplier`` r scales every residual branch, h ← h + r·F(h): CompleteP's depth transfer sets
    r = m_L^-α (Dey et al. arXiv 2505.01618; ``TransferPlan.residual_multiplier``).  The default 1 is the standard
    model.  r is a forward constant, not a parameter: it is not in the state dict.  The init does not follow r: it
    keeps GPT-2's σ/√(2·n_layers) on residual outputs; a plan's init (no depth term) is ``lrpredict.torch``'s
    ``init_parameters``.
    """

    def __init__(
        self,
        arch: Architecture,
        *,
        max_seq_len: int = 2048,
        init_std: float = 0.02,
        rope_theta: float = 10000.0,
        residual_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.rope_theta = rope_theta
        self.residual_multiplier = residual_multiplier
        self.embed = nn.Embedding(arch.vocab_size, arch.d_model)
        first_moe = arch.n_dense_layers if arch.is_moe else arch.n_layers
        self.layers = nn.ModuleList(
            Block(arch, moe=i >= first_moe, residual_multiplier=residual_multiplier) for i in range(arch.n_layers)
        )
        self.norm = RMSNorm(arch.d_model)
        self.head = None if arch.tied_embeddings else nn.Linear(arch.d_model, arch.vocab_size, bias=False)
        cos, sin = rope_tables(arch.d_model // arch.n_heads, max_seq_len, rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters(init_std)

    @torch.no_grad()
    def reset_parameters(self, std: float = 0.02) -> None:
        """N(0, std) for every matrix; residual outputs (wo, w_down) scaled by 1/√(2·n_layers) (GPT-2, Radford 2019)."""
        out_std = std / math.sqrt(2 * self.arch.n_layers)
        for name, p in self.named_parameters():
            if p.ndim == 1:
                p.fill_(1.0)  # norm scales
            else:
                nn.init.normal_(p, 0.0, out_std if name.endswith(("wo.weight", "w_down.weight", "w_down")) else std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        t = idx.shape[1]
        if t > self.rope_cos.shape[0]:
            cos, sin = rope_tables(self.rope_cos.shape[1], t, self.rope_theta)
            self.rope_cos, self.rope_sin = cos.to(idx.device), sin.to(idx.device)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(idx)
        aux_losses = []
        for layer in self.layers:
            x, aux = layer(x, cos, sin)
            if aux is not None:
                aux_losses.append(aux)
        x = self.norm(x)
        logits = F.linear(x, self.embed.weight) if self.head is None else self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
        aux_loss = torch.stack(aux_losses).mean() if aux_losses else logits.new_zeros((), dtype=torch.float32)
        return ModelOutput(logits, loss, aux_loss)


def build_model(
    arch: Architecture, *, max_seq_len: int = 2048, init_std: float = 0.02, residual_multiplier: float = 1.0
) -> Decoder:
    """The probe model for ``arch`` (float32, on CPU; move it with ``.to(device)``).

    ``residual_multiplier``: r in h ← h + r·F(h) for every attention and FFN branch (default 1: the standard model).
    """
    return Decoder(arch, max_seq_len=max_seq_len, init_std=init_std, residual_multiplier=residual_multiplier)


def param_group(name: str) -> str:
    """The ``ParamCounts`` group of the ``Decoder`` parameter called ``name``."""
    if name.startswith("embed."):
        return "embedding"
    if name.startswith("head."):
        return "output_head"
    if "norm." in name:
        return "norms"
    parts = name.split(".")  # layers.<i>.attn.wq.weight, layers.<i>.ffn.router.weight, layers.<i>.ffn.w_up.weight
    return _GROUP_BY_PART.get(parts[3] if parts[2] == "ffn" else parts[2], "dense_ffn")


def parameter_groups(model: Decoder) -> dict[str, int]:
    """Parameter count by ``ParamCounts`` group (every group present, zeros included)."""
    counts = dict.fromkeys(count_parameters(model.arch).groups(), 0)
    for name, p in model.named_parameters():
        counts[param_group(name)] += p.numel()
    return counts
