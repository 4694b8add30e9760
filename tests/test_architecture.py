import csv

import pytest

from lrpredict import Architecture, ModelConfig, count_parameters
from lrpredict.architecture import flops_per_token
from lrpredict.errors import LrpredictError

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
