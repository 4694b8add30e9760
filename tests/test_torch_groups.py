from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lrpredict.config import Architecture, ModelConfig  # noqa: E402
from lrpredict.errors import LrpredictError  # noqa: E402
from lrpredict.schedule import ScheduleRecipe  # noqa: E402
from lrpredict.suggest import suggest  # noqa: E402
from lrpredict.torch import (  # noqa: E402
    classify_model,
    classify_parameter,
    group_lrs,
    init_parameters,
    param_groups,
    wsd_factor,
    wsd_scheduler,
)
from lrpredict.transfer import transfer  # noqa: E402

HP = {"lr": 3e-3, "weight_decay": 0.1, "adam_eps": 1e-8}


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest on one thread; with two, a busy neighbour makes OpenMP barriers spin (100× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tree(shapes: dict[str, tuple[int, ...]]) -> nn.Module:
    """A module whose named_parameters are exactly ``shapes`` (dotted names build the submodules)."""
    root = nn.Module()
    for name, shape in shapes.items():
        *path, leaf = name.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, nn.Parameter(torch.zeros(shape)))
    return root


@pytest.mark.parametrize(
    ("name", "shape", "group"),
    [
        # HF Llama
        ("model.embed_tokens.weight", (32, 8), "embedding"),
        ("model.layers.0.self_attn.q_proj.weight", (8, 8), "attention"),
        ("model.layers.0.self_attn.o_proj.weight", (8, 8), "attention"),
        ("model.layers.0.mlp.gate_proj.weight", (16, 8), "dense_ffn"),
        ("model.layers.0.mlp.down_proj.weight", (8, 16), "dense_ffn"),
        ("model.layers.0.input_layernorm.weight", (8,), "norms_and_biases"),
        ("model.norm.weight", (8,), "norms_and_biases"),
        ("lm_head.weight", (32, 8), "output_head"),
        # Meta Llama
        ("tok_embeddings.weight", (32, 8), "embedding"),
        ("layers.0.attention.wq.weight", (8, 8), "attention"),
        ("layers.0.feed_forward.w1.weight", (16, 8), "dense_ffn"),
        ("output.weight", (32, 8), "output_head"),
        # GPT-2
        ("transformer.wte.weight", (32, 8), "embedding"),
        ("transformer.h.0.attn.c_attn.weight", (8, 24), "attention"),
        ("transformer.h.0.attn.c_proj.weight", (8, 8), "attention"),
        ("transformer.h.0.mlp.c_fc.weight", (8, 32), "dense_ffn"),
        ("transformer.h.0.mlp.c_proj.weight", (32, 8), "dense_ffn"),
        ("transformer.h.0.attn.c_attn.bias", (24,), "norms_and_biases"),
        # Mixtral: the MoE gate is a router, the experts' w1/w2/w3 are experts
        ("model.layers.0.block_sparse_moe.gate.weight", (4, 8), "router"),
        ("model.layers.0.block_sparse_moe.experts.0.w1.weight", (16, 8), "expert_ffn"),
        # Qwen2-MoE / DeepSeek: shared experts are dense FFNs, their gate a router
        ("model.layers.0.mlp.gate.weight", (4, 8), "router"),
        ("model.layers.0.mlp.experts.3.gate_proj.weight", (16, 8), "expert_ffn"),
        ("model.layers.0.mlp.shared_expert.gate_proj.weight", (16, 8), "dense_ffn"),
        ("model.layers.0.mlp.shared_experts.down_proj.weight", (8, 16), "dense_ffn"),
        ("model.layers.0.mlp.shared_expert_gate.weight", (1, 8), "router"),
        # lrpredict.calibrate's probe model (stacked expert weights, 3-D)
        ("layers.1.ffn.experts.w_gate", (4, 16, 8), "expert_ffn"),
        ("layers.1.ffn.router.weight", (4, 8), "router"),
        ("layers.1.ffn.shared.w_up.weight", (16, 8), "dense_ffn"),
        ("layers.0.attn.wq.weight", (8, 8), "attention"),
        ("head.weight", (32, 8), "output_head"),
        # not recognised
        ("layers.0.mixer.in_proj.weight", (8, 8), "other"),
        ("layers.0.blocks.3.output.weight", (8, 8), "other"),  # an "output" inside a block is not the head
    ],
)
def test_default_classification(name: str, shape: tuple[int, ...], group: str) -> None:
    assert classify_parameter(name, torch.zeros(shape)) == group


def test_every_parameter_lands_in_exactly_one_group_and_tied_embedding_is_one_tensor() -> None:
    model = tree(
        {
            "transformer.wte.weight": (32, 8),
            "transformer.h.0.ln_1.weight": (8,),
            "transformer.h.0.attn.c_attn.weight": (24, 8),
            "transformer.h.0.mlp.c_fc.weight": (32, 8),
            "lm_head.weight": (32, 8),
        }
    )
    model.lm_head.weight = model.transformer.wte.weight  # GPT-2 weight tying
    grouped = classify_model(model)
    names = {g: [n for n, _ in members] for g, members in grouped.items() if members}
    assert names["embedding"] == ["transformer.wte.weight"]  # named_parameters lists the tied tensor once
    assert "output_head" not in names
    groups = param_groups(model, transfer(cfg(8), HP, cfg(32)))
    total = sum(p.numel() for g in groups for p in g["params"])
    assert total == sum(p.numel() for p in model.parameters())
    torch.optim.AdamW(groups)  # AdamW accepts the groups (and rejects a tensor listed twice)


def test_tied_head_named_first_still_goes_to_embedding() -> None:
    model = nn.Module()
    model.lm_head = nn.Linear(8, 32, bias=False)
    model.embed_tokens = nn.Embedding(32, 8)
    model.embed_tokens.weight = model.lm_head.weight
    grouped = classify_model(model)
    assert [n for n, _ in grouped["embedding"]] == ["lm_head.weight"] and not grouped["output_head"]


def cfg(d_model: int, n_layers: int = 2) -> ModelConfig:
    return ModelConfig(params=1e7, tokens=1e9, d_model=d_model, n_layers=n_layers)


def test_groups_from_a_plan_carry_lr_weight_decay_and_eps() -> None:
    model = tree(
        {
            "embed.weight": (32, 8),
            "layers.0.attn.wq.weight": (8, 8),
            "layers.0.ffn.w_up.weight": (16, 8),
            "layers.0.norm.weight": (8,),
            "head.weight": (32, 8),
            "extra.thing": (8, 8),
        }
    )
    plan = transfer(cfg(8), HP, cfg(32))
    groups = {g["group"]: g for g in param_groups(model, plan)}
    assert set(groups) == {"embedding", "attention", "dense_ffn", "norms_and_biases", "output_head", "other"}
    for name, g in groups.items():
        rule = plan.groups[name]
        assert (g["lr"], g["weight_decay"], g["eps"]) == (rule.lr, rule.weight_decay, rule.adam_eps)
    assert groups["attention"]["lr"] == pytest.approx(groups["embedding"]["lr"] / 4)
    assert groups["norms_and_biases"]["weight_decay"] == 0.0


def test_groups_from_a_suggestion_decay_only_matrices() -> None:
    model = tree(
        {"embed.weight": (32, 8), "layers.0.attn.wq.weight": (8, 8), "norm.weight": (8,), "head.weight": (32, 8)}
    )
    s = suggest(ModelConfig(params=1e9, tokens=2e10))
    groups = {g["group"]: g for g in param_groups(model, s)}
    assert {g["lr"] for g in groups.values()} == {s.lr}
    assert groups["attention"]["weight_decay"] == groups["output_head"]["weight_decay"] == s.weight_decay
    assert groups["embedding"]["weight_decay"] == groups["norms_and_biases"]["weight_decay"] == 0.0
    assert all("eps" not in g for g in groups.values())


def test_user_classifier_overrides_and_unknown_group_is_an_error() -> None:
    model = tree({"layers.0.mixer.in_proj.weight": (8, 8), "layers.0.attn.wq.weight": (8, 8)})

    def mine(name: str, p: torch.Tensor) -> str | None:
        return "attention" if "mixer" in name else None

    grouped = classify_model(model, mine)
    assert len(grouped["attention"]) == 2 and not grouped["other"]
    with pytest.raises(LrpredictError, match="classify"):
        classify_model(model, lambda n, p: "hidden")


def test_frozen_parameters_are_left_out() -> None:
    model = tree({"embed.weight": (32, 8), "layers.0.attn.wq.weight": (8, 8)})
    model.embed.weight.requires_grad_(False)
    groups = param_groups(model, transfer(cfg(8), HP, cfg(8)))
    assert [g["group"] for g in groups] == ["attention"]


def test_init_parameters_scales_std_by_group() -> None:
    torch.manual_seed(0)
    model = tree({"embed.weight": (512, 256), "layers.0.attn.wq.weight": (256, 256), "norm.weight": (256,)})
    used = init_parameters(model, transfer(cfg(64), HP, cfg(256)), std=0.02)
    assert used["embedding"] == pytest.approx(0.02) and used["attention"] == pytest.approx(0.01)
    assert getattr(model.layers, "0").attn.wq.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(model.norm.weight == 0)  # 1-D tensors untouched


RECIPE = ScheduleRecipe(
    total_steps=100,
    warmup_steps=10,
    stable_steps=70,
    decay_steps=20,
    decay_shape="1-sqrt",
    final_lr_ratio=0.1,
    sources={},
)


def test_wsd_factor_shape() -> None:
    assert wsd_factor(RECIPE, 0) == pytest.approx(0.1)
    assert wsd_factor(RECIPE, 9) == 1.0 and wsd_factor(RECIPE, 50) == 1.0 and wsd_factor(RECIPE, 79) == 1.0
    assert wsd_factor(RECIPE, 99) == pytest.approx(0.1) and wsd_factor(RECIPE, 500) == pytest.approx(0.1)
    decay = [wsd_factor(RECIPE, s) for s in range(80, 100)]
    assert all(a > b for a, b in itertools.pairwise(decay))


def test_wsd_scheduler_preserves_per_group_lr_ratios() -> None:
    model = tree({"embed.weight": (32, 8), "layers.0.attn.wq.weight": (8, 8), "norm.weight": (8,)})
    optimizer = torch.optim.AdamW(param_groups(model, transfer(cfg(8, 2), HP, cfg(64, 8))))
    base = group_lrs(optimizer)
    scheduler = wsd_scheduler(optimizer, RECIPE)
    for step in range(1, 96):
        optimizer.step()
        scheduler.step()
        lrs = group_lrs(optimizer)
        factor = wsd_factor(RECIPE, step)
        for name, lr in lrs.items():
            assert lr == pytest.approx(base[name] * factor, rel=1e-12)
    assert lrs["attention"] / lrs["embedding"] == pytest.approx(base["attention"] / base["embedding"], rel=1e-12)


def test_done_when_50m_proxy_to_1b_moe_trains_a_stand_in() -> None:
    """Issue 4's acceptance check: transfer a 50M proxy's tuned LR to a 1B-active MoE, feed the plan's groups to
    AdamW on a real (tiny) MoE stand-in with the probe model's parameter names, and train: the loss falls."""
    model_mod = pytest.importorskip("lrpredict.calibrate.model")
    proxy = ModelConfig.from_architecture(
        Architecture(d_model=640, n_layers=10, d_ffn=1728, n_heads=10, vocab_size=32000), tokens="1B"
    )
    target = ModelConfig.from_architecture(
        Architecture(
            d_model=2048, n_layers=16, d_ffn=8192, n_heads=16, vocab_size=50304, n_experts=64, top_k=8, d_expert=1024
        ),
        tokens="100B",
    )
    plan = transfer(proxy, {"lr": 1e-2, "weight_decay": 0.1}, target)
    torch.manual_seed(0)
    stand_in = Architecture(
        d_model=32,
        n_layers=2,
        d_ffn=64,
        n_heads=2,
        vocab_size=64,
        n_experts=4,
        top_k=2,
        d_expert=16,
        n_shared_experts=1,
    )
    model = model_mod.build_model(stand_in, max_seq_len=16)
    groups = param_groups(model, plan)
    assert {g["group"] for g in groups} == {
        "embedding", "attention", "expert_ffn", "router", "dense_ffn", "output_head", "norms_and_biases"
    }  # fmt: skip
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.95))
    recipe = ScheduleRecipe(
        total_steps=30,
        warmup_steps=3,
        stable_steps=21,
        decay_steps=6,
        decay_shape="1-sqrt",
        final_lr_ratio=0.1,
        sources={},
    )
    scheduler = wsd_scheduler(optimizer, recipe)
    x = torch.randint(0, 64, (8, 17), generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        out = model(x[:, :-1], x[:, 1:])
        (out.loss + 0.01 * out.aux_loss).backward()
        optimizer.step()
        scheduler.step()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0] - 0.1
    assert sum(losses[-5:]) < sum(losses[:5])
