"""PyTorch glue: AdamW parameter groups from a ``TransferPlan`` or a ``Suggestion``, and a WSD LR scheduler.

The only module of lrpredict (besides ``lrpredict.calibrate``) that imports torch; ``import lrpredict`` never does.

    plan = lrpredict.transfer.transfer(proxy, {"lr": 3e-3, "weight_decay": 0.1}, target)
    opt = torch.optim.AdamW(param_groups(model, plan), betas=(0.9, 0.95))
    sched = wsd_scheduler(opt, suggestion.recommended_schedule)

Classification is by parameter name (the dotted path ``named_parameters`` gives), like mup's ``set_base_shapes``
and nanoGPT-mup's ``configure_optimizers``: see ``classify_parameter`` for the patterns.  A tensor reachable under
two names (tied input/output embeddings) is listed once by ``named_parameters``, under its first name, and lands in
one group: the embedding group when any of its names is an embedding (lrpredict's choice, the CompleteP code ties
them the same way; their optimizer rules coincide, only the forward output multiplier differs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lrpredict.calibrate.schedule import WSDSchedule  # pure Python, the standard library only
from lrpredict.errors import LrpredictError
from lrpredict.schedule import ScheduleRecipe
from lrpredict.suggestion import Suggestion
from lrpredict.transfer import GROUPS, TransferPlan

Classifier = Callable[[str, torch.Tensor], "str | None"]

EMBEDDING_NAMES = {
    "embed_tokens", "wte", "tok_embeddings", "embed", "embedding", "embeddings", "word_embeddings", "wpe",
    "embed_positions", "position_embeddings", "tok_emb", "pos_emb", "embed_in",
}  # fmt: skip
OUTPUT_NAMES = {"lm_head", "output", "head", "embed_out", "unembed", "readout"}
EXPERT_NAMES = {"experts"}  # routed experts; "shared_expert(s)" are dense FFNs (they see every token)
ROUTER_NAMES = {"router", "gate", "shared_expert_gate", "gating", "wg", "switch_gate"}  # MoE gates, not gate_proj
ATTENTION_NAMES = {
    "attn", "attention", "self_attn", "self_attention", "q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "c_attn",
    "wq", "wk", "wv", "wo", "wqkv", "query", "key", "value", "out_proj", "query_key_value",
}  # fmt: skip
FFN_NAMES = {
    "mlp", "feed_forward", "ffn", "gate_proj", "up_proj", "down_proj", "w1", "w2", "w3", "c_fc", "fc1", "fc2",
    "w_gate", "w_up", "w_down", "shared", "shared_expert", "shared_experts", "dense_h_to_4h", "dense_4h_to_h",
}  # fmt: skip
# Suggestion.weight_decay_groups key of each plan group
SUGGESTION_GROUP = {"embedding": "embeddings", "norms_and_biases": "norms_and_biases"}


def classify_parameter(name: str, param: torch.Tensor) -> str:
    """The default group of a parameter from its dotted name (Llama, GPT-2, HF, Mixtral/DeepSeek/Qwen MoE).

    In order: tensors with fewer than 2 dims → norms_and_biases; an ``embed_tokens``/``wte``/``tok_embeddings``/…
    segment → embedding; a top-level ``lm_head``/``output``/``head`` (not inside a numbered block) → output_head;
    an ``experts`` segment → expert_ffn; a ``router`` or bare ``gate`` segment (the MoE gate; SwiGLU's
    ``gate_proj``/``w_gate`` are different segments) → router; attention names (``q_proj``… ``c_attn``, ``attn``)
    → attention; FFN names (``mlp``, ``feed_forward``, ``gate_proj``, ``w1``…, shared experts) → dense_ffn;
    anything else → "other", which a plan treats as a hidden matrix.
    """
    if param.ndim < 2:
        return "norms_and_biases"
    parts = name.split(".")
    modules = parts[:-1]
    segments = {p.lower() for p in modules}
    if segments & EMBEDDING_NAMES:
        return "embedding"
    if modules and modules[-1].lower() in OUTPUT_NAMES and not any(p.isdigit() for p in modules):
        return "output_head"
    if segments & EXPERT_NAMES or parts[-1].lower() == "experts":
        return "expert_ffn"
    if segments & ROUTER_NAMES:
        return "router"
    if segments & ATTENTION_NAMES:
        return "attention"
    if segments & FFN_NAMES or parts[-1].lower() in FFN_NAMES:
        return "dense_ffn"
    return "other"


def classify_model(model: nn.Module, classify: Classifier | None = None) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Every trainable parameter of ``model`` by group, each exactly once (frozen parameters are left out)."""
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    aliases: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), []).append(name)
    out: dict[str, list[tuple[str, nn.Parameter]]] = {g: [] for g in GROUPS}
    for name, p in model.named_parameters():  # deduplicated: a tied tensor appears once, under its first name
        if not p.requires_grad:
            continue
        group = classify(name, p) if classify is not None else None
        if group is None:
            names = aliases[id(p)]
            kinds = {classify_parameter(n, p) for n in names}
            group = "embedding" if id(p) in embedding_ids or "embedding" in kinds else classify_parameter(name, p)
        if group not in out:
            raise LrpredictError(f"classify({name!r})", group, f"one of {list(GROUPS)} (or None for the default)")
        out[group].append((name, p))
    placed = [id(p) for members in out.values() for _, p in members]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(placed) == len(set(placed)) and set(placed) == trainable, "every parameter in exactly one group"
    return out


def param_groups(
    model: nn.Module, plan_or_suggestion: TransferPlan | Suggestion, classify: Classifier | None = None
) -> list[dict[str, Any]]:
    """AdamW parameter groups for ``model``: ``[{"params", "lr", "weight_decay", "eps"?, "group"}, ...]``.

    From a ``TransferPlan``: each group's LR, λ and ε from the plan.  From a ``Suggestion``: its LR for every
    group, λ from ``weight_decay_groups`` (embeddings and norms/biases take none; the output head is a matrix), no
    ε (AdamW's default).  ``classify(name, param)`` may return a group name to override the default patterns, or
    None to keep the default.  Empty groups are left out.
    """
    grouped = classify_model(model, classify)
    out: list[dict[str, Any]] = []
    for group, members in grouped.items():
        if not members:
            continue
        entry: dict[str, Any] = {"params": [p for _, p in members], "group": group}
        if isinstance(plan_or_suggestion, TransferPlan):
            rule = plan_or_suggestion.groups[group]
            entry.update(lr=rule.lr, weight_decay=rule.weight_decay, eps=rule.adam_eps)
        elif isinstance(plan_or_suggestion, Suggestion):
            wd = plan_or_suggestion.weight_decay_groups.get(SUGGESTION_GROUP.get(group, "matrices"), 0.0)
            entry.update(lr=plan_or_suggestion.lr, weight_decay=wd)
        else:
            raise LrpredictError(
                "plan_or_suggestion", type(plan_or_suggestion).__name__, "a TransferPlan or Suggestion"
            )
        out.append(entry)
    return out


@torch.no_grad()
def init_parameters(
    model: nn.Module, plan: TransferPlan, std: float, classify: Classifier | None = None
) -> dict[str, float]:
    """Re-initialise every matrix N(0, (std·init_std_multiplier of its group)²); 1-D tensors are left alone.

    ``std`` is the proxy's init std.  Returns the std used per group.  The forward multipliers of the plan
    (residual branches, output logits, MoE scales) belong in the model's code and are not applied here.
    """
    used: dict[str, float] = {}
    for group, members in classify_model(model, classify).items():
        s = std * plan.groups[group].init_std_multiplier
        for _, p in members:
            if p.ndim >= 2:
                nn.init.normal_(p, 0.0, s)
                used[group] = s
    return used


def wsd_factor(recipe: ScheduleRecipe, step: int) -> float:
    """The LR multiplier of optimizer step ``step`` (0-based) under ``recipe``: linear warmup to 1, hold, then
    decay to ``final_lr_ratio`` at the last step, held after it (no decay steps: held at 1).  The curve is
    ``lrpredict.calibrate.schedule.WSDSchedule``'s at peak 1, so probes and users' runs share one definition
    (warmup reaches the peak at step warmup-1)."""
    decay_start = recipe.warmup_steps + recipe.stable_steps
    curve = WSDSchedule(
        peak=1.0,
        warmup=recipe.warmup_steps,
        decay_start=decay_start,
        total=decay_start + max(recipe.decay_steps, 0),
        final_ratio=recipe.final_lr_ratio,
        shape=recipe.decay_shape,
    )
    return curve(step)


def wsd_scheduler(optimizer: torch.optim.Optimizer, recipe: ScheduleRecipe) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies every group's own base LR by the same WSD factor: per-group LR ratios
    (e.g. μP's hidden η/m_d against the embedding's η) are kept at every step.  Call ``step()`` after each
    ``optimizer.step()``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: wsd_factor(recipe, step))


def group_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The current LR of each named group (groups made by ``param_groups``)."""
    return {g.get("group", str(i)): g["lr"] for i, g in enumerate(optimizer.param_groups)}


__all__ = [
    "classify_model",
    "classify_parameter",
    "group_lrs",
    "init_parameters",
    "param_groups",
    "wsd_factor",
    "wsd_scheduler",
]
