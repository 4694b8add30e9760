import csv
from pathlib import Path

import pytest

import lrpredict
from lrpredict import Architecture, ModelConfig, count_parameters
from lrpredict.architecture import flops_per_token
from lrpredict.errors import LrpredictError
from lrpredict.hf_config import architecture_from_hf, hf_seq_len

LLAMA_7B = dict(d_model=4096, n_layers=32, d_ffn=11008, n_heads=32, vocab_size=32000)


def test_count_parameters_groups_add_up_to_total() -> None:
    arch = Architecture(**LLAMA_7B)
    counts = count_parameters(arch)
    assert sum(counts.groups().values()) == counts.total
    assert counts.non_embedding == counts.total - counts.embedding - counts.output_head


def test_count_parameters_matches_llama_7b() -> None:
    # Llama-2-7B has 6,738,415,616 parameters (untied, no biases).
    assert count_parameters(Architecture(**LLAMA_7B)).total == 6_738_415_616


def test_count_parameters_tied_embeddings_drop_the_head() -> None:
    tied = count_parameters(Architecture(**LLAMA_7B, tied_embeddings=True))
    untied = count_parameters(Architecture(**LLAMA_7B))
    assert tied.output_head == 0
    assert untied.total - tied.total == 32000 * 4096


def test_count_parameters_gqa_shrinks_attention() -> None:
    full = count_parameters(Architecture(**LLAMA_7B)).attention
    gqa = count_parameters(Architecture(**LLAMA_7B, n_kv_heads=8)).attention
    assert gqa == 32 * (2 * 4096 * 4096 + 2 * 4096 * 8 * 128) < full


def test_count_parameters_moe_active_counts_top_k_experts() -> None:
    arch = Architecture(
        d_model=1024,
        n_layers=8,
        d_ffn=4096,
        n_heads=16,
        vocab_size=50000,
        n_experts=64,
        top_k=4,
        d_expert=512,
        n_shared_experts=1,
        n_dense_layers=1,
    )
    counts = count_parameters(arch)
    per_expert = 3 * 1024 * 512
    assert counts.routed_experts == 7 * 64 * per_expert
    assert counts.non_embedding - counts.non_embedding_active == 7 * 60 * per_expert
    assert sum(counts.groups().values()) == counts.total


def test_count_parameters_reproduces_step_law_released_n(sweeps_dir) -> None:
    """Step Law's released N is ours without routers and norms, to the parameter."""
    with open(sweeps_dir / "steplaw_moe.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if r["moe_name"] == "1in89")
    arch = Architecture(
        d_model=int(float(row["hidden"])),
        n_layers=int(float(row["n_layers"])),
        d_ffn=int(float(row["ffn_hidden"])),
        n_heads=int(float(row["n_heads"])),
        vocab_size=65536,
        n_experts=89,
        top_k=1,
        d_expert=352,
        n_shared_experts=1,
        n_dense_layers=1,
    )
    counts = count_parameters(arch)
    uncounted = counts.router + counts.norms
    assert counts.non_embedding - uncounted == int(row["N"])
    assert counts.non_embedding_active - uncounted == int(row["N_active"])


def test_from_architecture_derives_config_fields() -> None:
    config = ModelConfig.from_architecture(tokens="1T", seq_len=4096, n_experts=8, top_k=2, **LLAMA_7B)
    counts = count_parameters(Architecture(**LLAMA_7B, n_experts=8, top_k=2))
    assert config.arch == "moe" and config.params == counts.non_embedding
    assert config.active_params == counts.non_embedding_active
    assert config.flops_per_token() == flops_per_token(counts.non_embedding_active, 32, 4096, 4096)


def test_flops_per_token_matches_deepseek_convention() -> None:
    # DeepSeek LLM: M = 72·L·d² + 12·L·d·l_seq for blocks with 12·d² parameters.
    layers, d, seq = 30, 4096, 4096
    assert flops_per_token(12 * layers * d * d, layers, d, seq) == 72 * layers * d**2 + 12 * layers * d * seq


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        (dict(n_heads=30), "n_heads"),
        (dict(n_experts=8, top_k=9), "top_k"),
        (dict(top_k=2), "n_experts"),
        (dict(d_model=0), "d_model"),
    ],
)
def test_architecture_rejects_inconsistent_shapes(shape: dict, field: str) -> None:
    with pytest.raises(LrpredictError) as info:
        ModelConfig.from_architecture(tokens="1T", **{**LLAMA_7B, **shape})
    assert str(info.value).startswith(f"{field}=")


HF_CONFIGS = Path(__file__).resolve().parent / "data" / "hf_configs"


def _matches_published(count: float, published: float, unit: float) -> bool:
    """Within 1%, or within the rounding of the published figure (half its last digit) when that is coarser:
    OLMoE's "1.3B" active is printed to two digits, and 1.282B rounds to it."""
    return abs(count - published) <= max(0.01 * published, unit / 2)


@pytest.mark.parametrize(
    ("name", "total", "active", "unit"),
    [
        # Published counts: LLaMA-2 paper (7B: 6.74B), Mixtral of Experts arXiv 2401.04088 (46.7B / 12.9B active),
        # OLMoE arXiv 2409.02060 (6.9B / 1.3B active), DeepSeek-V3 README_WEIGHTS.md (671B main model; 36.6B
        # active, which includes the 0.9B output head but not the input embedding: compared below).
        ("llama2-7b", 6.74e9, 6.74e9, 0.01e9),
        ("mixtral-8x7b", 46.7e9, 12.9e9, 0.1e9),
        ("olmoe-1b-7b", 6.9e9, 1.3e9, 0.1e9),
        ("deepseek-v3", 671e9, None, 1e9),
    ],
)
def test_from_hf_config_matches_published_parameter_counts(
    name: str, total: float, active: float | None, unit: float
) -> None:
    counts = count_parameters(architecture_from_hf(HF_CONFIGS / f"{name}.json"))
    assert counts.total == pytest.approx(total, rel=0.01)
    if active is not None:
        assert _matches_published(counts.active, active, unit), counts.active


def test_from_hf_config_deepseek_v3_counts_mla_shared_experts_and_dense_layers() -> None:
    arch = architecture_from_hf(HF_CONFIGS / "deepseek-v3.json")
    assert arch.is_mla and arch.n_dense_layers == 3 and arch.n_shared_experts == 1
    counts = count_parameters(arch)
    # README_WEIGHTS.md: 36.6B activated, including the 0.9B output head (the input embedding is a lookup).
    assert counts.active - counts.embedding == pytest.approx(36.6e9, rel=0.01)
    assert counts.active == pytest.approx(37e9, rel=0.02)  # the headline "37B" (rounded)
    config = ModelConfig.from_hf_config(HF_CONFIGS / "deepseek-v3.json", tokens="14.8T")
    assert config.arch == "moe" and config.n_experts == 256 and config.top_k == 8
    assert hf_seq_len(HF_CONFIGS / "deepseek-v3.json") == (4096, "rope_scaling.original_max_position_embeddings")


def test_from_hf_config_reads_decoupled_head_dim_and_tied_embeddings() -> None:
    # Qwen3-style: head_dim 128 with d_model 2048 and 32 heads (32·128 ≠ 2048), tied embeddings.
    qwen3 = dict(model_type="qwen3", hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                 num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                 tie_word_embeddings=True)  # fmt: skip
    arch = architecture_from_hf(qwen3)
    counts = count_parameters(arch)
    assert arch.head_dim == 128 and counts.output_head == 0
    assert counts.attention == 28 * (2 * 2048 * 32 * 128 + 2 * 2048 * 8 * 128)
    gemma = dict(model_type="gemma", hidden_size=3072, intermediate_size=24576, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=16, head_dim=256, vocab_size=256000)  # fmt: skip
    assert architecture_from_hf(gemma).tied_embeddings  # Gemma ties by default when the file says nothing


def test_from_hf_config_qwen_moe_shared_expert_and_qkv_bias() -> None:
    qwen_moe = dict(model_type="qwen2_moe", hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                    shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
                    num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16, vocab_size=151936,
                    decoder_sparse_step=1, mlp_only_layers=[])  # fmt: skip
    arch = architecture_from_hf(qwen_moe)
    assert (arch.n_shared_experts, arch.d_shared_expert, arch.d_expert, arch.qkv_bias) == (1, 5632, 1408, True)
    counts = count_parameters(arch)
    assert counts.shared_experts == 24 * 3 * 2048 * 5632


def test_from_hf_config_rejects_a_file_that_is_not_a_model_config(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 64}')
    with pytest.raises(LrpredictError, match="num_hidden_layers"):
        architecture_from_hf(tmp_path)  # a folder holding config.json
    with pytest.raises(LrpredictError, match="hf_config="):
        architecture_from_hf(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("key", "value"), [("hidden_size", "4096"), ("num_experts_per_tok", True), ("num_local_experts", 7.5)]
)
def test_from_hf_config_refuses_a_count_that_is_not_a_json_integer(key, value) -> None:
    # int() read "4096" as 4096 and true as top-1 (QA 2026-12-01)
    config = {
        "model_type": "mixtral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
    }
    assert architecture_from_hf(config).top_k == 2
    with pytest.raises(LrpredictError, match=f"hf_config.{key}=.* a whole number"):
        architecture_from_hf({**config, key: value})


def test_count_parameters_steplaw_convention_counts_attention_as_4d2() -> None:
    gqa = Architecture(**LLAMA_7B, n_kv_heads=8)
    steplaw = count_parameters(gqa, "steplaw")
    assert steplaw.non_embedding == 32 * (4 * 4096**2 + 3 * 4096 * 11008)
    assert steplaw.non_embedding > count_parameters(gqa).non_embedding


def test_steplaw_lr_uses_its_own_n_convention_for_a_gqa_model() -> None:
    # Llama-3-70B's shape: exact N is ~12% below Step Law's N, which would raise the LR by ~9% if used.
    shape = dict(d_model=8192, n_layers=80, d_ffn=28672, n_heads=64, n_kv_heads=8, vocab_size=128256)
    config = ModelConfig.from_architecture(tokens="15T", **shape)
    s = lrpredict.suggest(config, "steplaw-2025")
    assert s.inputs["N"] == count_parameters(Architecture(**shape), "steplaw").non_embedding
    typed = lrpredict.suggest(params=config.params, tokens="15T", law="steplaw-2025")
    assert typed.lr / s.lr == pytest.approx((config.params / s.inputs["N"]) ** -0.713, rel=1e-6)
    assert 1.05 < typed.lr / s.lr < 1.15


def test_porian_counts_the_output_head_from_a_shape() -> None:
    # Porian et al. count the head in N (arXiv 2406.19146); at 50M a 50K-vocab head is a third of N
    shape = dict(d_model=512, n_layers=8, d_ffn=1408, n_heads=8, vocab_size=50304)
    config = ModelConfig.from_architecture(tokens="1B", **shape)
    s = lrpredict.suggest(config, "porian-2024")
    assert s.inputs["N"] == config.params + 50304 * 512
    assert lrpredict.load_law("porian-2024").conventions.count == "with-head"
