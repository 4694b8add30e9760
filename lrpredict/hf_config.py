"""A model shape from a Hugging Face ``config.json``: how most teams hold one.

Field names were read in transformers' ``configuration_*.py`` of each family (llama, mistral, qwen2, qwen3, gemma,
mixtral, qwen2_moe/qwen3_moe, olmoe, deepseek_v2/v3).  Dense Llama-style families share ``hidden_size``,
``intermediate_size``, ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``; MoE
families name the expert count ``num_local_experts`` (Mixtral), ``num_experts`` (Qwen-MoE, OLMoE) or
``n_routed_experts`` (DeepSeek), and the expert width ``moe_intermediate_size`` where it differs from the dense FFN.
DeepSeek's Multi-head Latent Attention is ``q_lora_rank``, ``kv_lora_rank``, ``qk_nope_head_dim``,
``qk_rope_head_dim``, ``v_head_dim``; its Multi-Token-Prediction layers (``num_nextn_predict_layers``) are not part
of the main model and are not counted (DeepSeek-V3's 671B excludes them, README_WEIGHTS.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_core import ValidationError

from lrpredict import bounded_read
from lrpredict.architecture import Architecture
from lrpredict.errors import LrpredictError, error_from_validation
from lrpredict.paths import checked_path

# The training sequence length --hf-config assumes without --seq-len: most published pre-training runs train at
# 2048-8192 and extend the context afterwards (Llama 3: 8192 then 128K; Qwen2: 4096 then 32K/128K).
DEFAULT_SEQ_LEN = 4096
# Families whose config class defaults tie_word_embeddings to True when the file leaves it out (Gemma's configs);
# every other family supported here defaults to an untied head.
TIED_BY_DEFAULT = ("gemma",)
# Qwen2 hard-codes biases on q, k, v (modeling_qwen2.py) without a config field.
QKV_BIAS_FAMILIES = ("qwen2", "qwen2_moe")


def read_hf_config(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The config as a dict: a mapping as given, a path to ``config.json`` or to a folder holding one.

    Multimodal wrappers (Gemma 3, Llama 4) keep the language model under ``text_config``; that part is returned.
    """
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = checked_path("hf_config", source)
        if path.is_dir():
            path = path / "config.json"
        if not os.path.lexists(path):
            raise LrpredictError("hf_config", str(source), "a config.json file or a folder holding one")
        # bounded: /dev/zero was read until MemoryError, a FIFO blocked, 100k nested '[' recursed (issue 23)
        data = bounded_read.load_json(path, option="hf_config", what="config.json")
        if not isinstance(data, dict):
            raise LrpredictError("hf_config", str(source), "a JSON object (a Hugging Face config.json)")
    if isinstance(data.get("text_config"), Mapping):
        data = {
            **dict(data["text_config"]),
            "model_type": data["text_config"].get("model_type", data.get("model_type")),
        }
    return data


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _required(data: Mapping[str, Any], *names: str) -> int:
    value = _first(data, *names)
    if value is None:
        raise LrpredictError(f"hf_config.{names[0]}", None, f"a config.json with {' or '.join(names)}")
    return _whole(value, next(n for n in names if data.get(n) is not None))


# Bounds on a config's counts, checked before any arithmetic or per-layer loop (issue 23: a 401-digit hidden_size
# overflowed float(), num_hidden_layers 1e9 looped per layer).  Far above any published model: the largest have
# d_model 2e4, 128 layers, 256 experts, a vocabulary of 2.6e5 and contexts of 1e6 tokens.
MAX_COUNT = {"layers": 10_000, "dim": 1 << 20, "experts": 1 << 16, "vocab": 1 << 24, "positions": 1 << 26}
_KIND = {
    "num_hidden_layers": "layers",
    "n_layer": "layers",
    "num_layers": "layers",
    "first_k_dense_replace": "layers",
    "moe_layer_freq": "layers",
    "decoder_sparse_step": "layers",
    "vocab_size": "vocab",
    "num_local_experts": "experts",
    "num_experts": "experts",
    "n_routed_experts": "experts",
    "moe_num_experts": "experts",
    "num_experts_per_tok": "experts",
    "moe_topk": "experts",
    "top_k": "experts",
    "n_shared_experts": "experts",
    "max_position_embeddings": "positions",
    "original_max_position_embeddings": "positions",
    "n_positions": "positions",
    "seq_length": "positions",
}
# fields where 0 means "none" (DeepSeek's first_k_dense_replace, a config without shared experts or MLA rope dims)
MAY_BE_ZERO = frozenset({"first_k_dense_replace", "n_shared_experts", "qk_rope_head_dim"})


def _whole(value: Any, name: str) -> int:
    """A count from a config.json: a JSON integer (4096.0 too), never a bool, a string or a fraction (int() read
    `"num_experts_per_tok": true` as top-1 and `"hidden_size": "4096"` as 4096: QA 2026-12-01), within
    ``MAX_COUNT`` and ≥ 1 (issue 23: 4096.7 was truncated, head_dim 0 and vocab_size 1 accepted)."""
    kind = _KIND.get(name.rsplit(".", 1)[-1], "dim")
    high = MAX_COUNT[kind]
    low = 0 if name.rsplit(".", 1)[-1] in MAY_BE_ZERO else (2 if kind == "vocab" else 1)
    allowed = f"a whole number (a JSON integer) from {low} to {high:,}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LrpredictError(f"hf_config.{name}", _short(value), allowed)
    if isinstance(value, int):
        if not low <= value <= high:  # compared as ints: a 401-digit number never reaches float()
            raise LrpredictError(f"hf_config.{name}", _short(value), allowed)
        return value
    if not (math.isfinite(value) and value.is_integer() and low <= value <= high):
        raise LrpredictError(f"hf_config.{name}", value, allowed)
    return int(value)


def _short(value: Any) -> Any:
    """A value short enough to quote in one line (a 401-digit integer, a 100k-element list)."""
    text = repr(value)
    return value if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"


def _optional(data: Mapping[str, Any], name: str, default: int) -> int:
    value = data.get(name)
    return default if value is None or value is False or value == 0 else _whole(value, name)


def _dense_layer_count(data: Mapping[str, Any], n_layers: int) -> int:
    """Layers with a dense FFN in an MoE model: DeepSeek's first_k_dense_replace and moe_layer_freq, Qwen-MoE's
    decoder_sparse_step and mlp_only_layers.  Their positions do not matter for the counts.  ``n_layers`` is already
    bounded by MAX_COUNT (the loop is per layer)."""
    first_dense = _optional(data, "first_k_dense_replace", 0)
    freq = _optional(data, "moe_layer_freq", 1)
    step = _optional(data, "decoder_sparse_step", 1)
    listed = data.get("mlp_only_layers") or []
    if not isinstance(listed, list) or len(listed) > n_layers:
        raise LrpredictError("hf_config.mlp_only_layers", _short(listed), f"a list of at most {n_layers} layer indices")
    only_dense = {_whole(i, "mlp_only_layers[]") if i != 0 else 0 for i in listed}
    dense = 0
    for i in range(n_layers):
        moe = i >= first_dense and i % freq == 0 and (i + 1) % step == 0 and i not in only_dense
        dense += not moe
    return dense


def architecture_from_hf(source: str | Path | Mapping[str, Any]) -> Architecture:
    """The ``Architecture`` of a Hugging Face config (path, folder or dict).

    >>> arch = architecture_from_hf({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    ...     "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000})
    >>> arch.d_model, arch.n_kv_heads, arch.tied_embeddings
    (4096, 32, False)
    """
    data = read_hf_config(source)
    model_type = str(data.get("model_type") or "")
    d = _required(data, "hidden_size", "d_model", "n_embd")
    layers = _required(data, "num_hidden_layers", "n_layer", "num_layers")
    heads = _required(data, "num_attention_heads", "n_head")
    vocab = _required(data, "vocab_size")
    d_ffn = _required(data, "intermediate_size", "ffn_dim", "n_inner")
    kv_heads = _first(data, "num_key_value_heads", "num_kv_heads")
    tied = data.get("tie_word_embeddings")
    if tied is None:
        tied = model_type.startswith(TIED_BY_DEFAULT)
    shape: dict[str, Any] = dict(
        d_model=d,
        n_layers=layers,
        n_heads=heads,
        n_kv_heads=_required(data, "num_key_value_heads", "num_kv_heads") if kv_heads is not None else heads,
        vocab_size=vocab,
        d_ffn=d_ffn,
        tied_embeddings=bool(tied),
        qkv_bias=bool(data.get("attention_bias", model_type in QKV_BIAS_FAMILIES)),
    )
    if data.get("kv_lora_rank"):
        shape.update(
            head_dim=_required(data, "qk_nope_head_dim"),
            q_lora_rank=data.get("q_lora_rank") or None,
            kv_lora_rank=_whole(data["kv_lora_rank"], "kv_lora_rank"),
            qk_rope_head_dim=_optional(data, "qk_rope_head_dim", 0),
            v_head_dim=data.get("v_head_dim") or None,
            qkv_bias=False,
        )
    elif data.get("head_dim") is not None and _whole(data["head_dim"], "head_dim") * heads != d:  # 0 is refused
        shape["head_dim"] = _whole(data["head_dim"], "head_dim")
    expert_keys = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
    n_experts = _first(data, *expert_keys)
    if n_experts:
        d_expert = _first(data, "moe_intermediate_size") or d_ffn
        shared_width = data.get("shared_expert_intermediate_size")  # Qwen2-MoE: one shared expert of this width
        n_shared = _optional(data, "n_shared_experts", 1 if shared_width else 0)
        shape.update(
            n_experts=_required(data, *expert_keys),
            top_k=_required(data, "num_experts_per_tok", "moe_topk", "top_k"),
            d_expert=_whole(d_expert, "moe_intermediate_size"),
            n_shared_experts=n_shared,
            d_shared_expert=_whole(shared_width, "shared_expert_intermediate_size") if shared_width else None,
            n_dense_layers=_dense_layer_count(data, layers),
        )
    try:
        return Architecture(**shape)
    except ValidationError as exc:
        raise error_from_validation(exc, Architecture.model_fields) from None


def hf_seq_len(source: str | Path | Mapping[str, Any]) -> tuple[int, str] | None:
    """A guess at the pre-training sequence length and the field it came from: the context before RoPE scaling
    (``rope_scaling.original_max_position_embeddings``: DeepSeek-V3 4096) when the config has one, else
    ``max_position_embeddings`` (Llama-2: 4096).  A guess: callers must say so and let the user give theirs."""
    data = read_hf_config(source)
    for holder, prefix in (
        (data.get("rope_scaling"), "rope_scaling."),
        (data.get("rope_parameters"), "rope_parameters."),
        (data, ""),
    ):
        if isinstance(holder, Mapping) and holder.get("original_max_position_embeddings"):
            field = f"{prefix}original_max_position_embeddings"
            return _whole(holder["original_max_position_embeddings"], field), field
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        if data.get(name):
            return _whole(data[name], name), name
    return None
