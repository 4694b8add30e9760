from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lrpredict.cli import cli
from lrpredict.config import Architecture, ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.suggest import suggest
from lrpredict.transfer import GROUPS, RULES, TransferPlan, transfer

HP = {"lr": 3e-3, "weight_decay": 0.1, "adam_eps": 1e-8, "init_std": 0.02}
PROXY_ARCH = Architecture(d_model=640, n_layers=10, d_ffn=1728, n_heads=10, vocab_size=32000)
# OLMoE-1B-7B-shaped target: 64 experts of width 1024, top-8, about 1.1B active / 6.7B total non-embedding
TARGET_ARCH = Architecture(
    d_model=2048, n_layers=16, d_ffn=8192, n_heads=16, vocab_size=50304, n_experts=64, top_k=8, d_expert=1024
)


def config(d_model: int = 256, n_layers: int = 4, tokens: float = 1e9, **kw: object) -> ModelConfig:
    return ModelConfig(params=kw.pop("params", 1e7), tokens=tokens, d_model=d_model, n_layers=n_layers, **kw)


def proxy_50m() -> ModelConfig:
    return ModelConfig.from_architecture(PROXY_ARCH, tokens="1B")


def target_1b_moe() -> ModelConfig:
    return ModelConfig.from_architecture(TARGET_ARCH, tokens="100B")


@pytest.mark.parametrize("rule", list(RULES))
def test_identical_target_is_the_exact_identity(rule: str) -> None:
    proxy = proxy_50m()
    plan = transfer(proxy, HP, proxy, rule)
    assert set(plan.multipliers().values()) == {1.0}
    assert plan.residual_multiplier == 1.0 and plan.output_logit_multiplier == 1.0
    for g in plan.groups.values():
        assert g.lr == HP["lr"]
        assert g.adam_eps == HP["adam_eps"]
        assert g.init_std == HP["init_std"]
        assert g.weight_decay == (HP["weight_decay"] if g.decays else 0.0)
    assert plan.groups["norms_and_biases"].weight_decay == 0.0
    assert plan.status == "confirmed"  # a dense identical target uses only confirmed rules, no horizon move


def test_identity_from_a_suggestion_keeps_its_lr_and_weight_decay() -> None:
    proxy = proxy_50m()
    s = suggest(proxy)
    plan = transfer(proxy, s, proxy)
    assert plan.groups["attention"].lr == s.lr
    assert plan.groups["attention"].weight_decay == s.weight_decay_groups["matrices"]
    assert plan.groups["embedding"].weight_decay == 0.0  # the Suggestion does not decay embeddings


def test_width_rules_follow_completep() -> None:
    plan = transfer(config(256), HP, config(1024), "completep")
    hidden, emb, head, norms = (plan.groups[g] for g in ("attention", "embedding", "output_head", "norms_and_biases"))
    assert hidden.lr_multiplier == pytest.approx(1 / 4)
    assert hidden.weight_decay_multiplier == pytest.approx(4)
    assert hidden.lr * hidden.weight_decay == pytest.approx(HP["lr"] * HP["weight_decay"])  # η·λ width-invariant
    assert hidden.init_std_multiplier == pytest.approx(0.5)
    assert hidden.adam_eps_multiplier == pytest.approx(1 / 4)
    for g in (emb, head):
        assert (g.lr_multiplier, g.weight_decay_multiplier, g.init_std_multiplier) == (1.0, 1.0, 1.0)
        assert g.adam_eps_multiplier == pytest.approx(1 / 4)  # emb/unemb ε: m_d^-1 only
    assert norms.lr_multiplier == 1.0 and norms.weight_decay == 0.0
    assert plan.output_logit_multiplier == pytest.approx(1 / 4) and plan.residual_multiplier == 1.0
    assert plan.groups["router"].init_std_multiplier == pytest.approx(1 / 4)  # output-like: σ ∝ 1/width
    for name in ("dense_ffn", "expert_ffn", "other"):
        assert plan.groups[name].lr_multiplier == hidden.lr_multiplier


@pytest.mark.parametrize(("rule", "alpha"), [("completep", 1.0), ("depth-mup", 0.5)])
def test_depth_rules(rule: str, alpha: float) -> None:
    plan = transfer(config(256, 4), HP, config(256, 16), rule)
    m_l = 4.0
    assert plan.depth_multiplier == m_l and plan.alpha == alpha
    assert plan.residual_multiplier == pytest.approx(m_l**-alpha)
    assert plan.groups["attention"].lr_multiplier == pytest.approx(m_l ** (alpha - 1))
    assert plan.groups["norms_and_biases"].lr_multiplier == pytest.approx(m_l ** (alpha - 1))
    assert plan.groups["attention"].adam_eps_multiplier == pytest.approx(m_l**-alpha)
    assert plan.groups["embedding"].lr_multiplier == 1.0 and plan.groups["embedding"].adam_eps_multiplier == 1.0


def test_mup_is_width_only_and_warns_on_depth() -> None:
    plan = transfer(config(256, 4), HP, config(512, 8), "mup")
    assert plan.residual_multiplier == 1.0 and plan.depth_multiplier == 1.0
    assert plan.groups["attention"].lr_multiplier == pytest.approx(0.5)
    assert any("width only" in w for w in plan.warnings)
    # mup does not need the depth at all
    no_depth = ModelConfig(params=1e7, tokens=1e9, d_model=256)
    assert transfer(no_depth, HP, ModelConfig(params=4e7, tokens=1e9, d_model=512), "mup").depth_multiplier == 1.0


def test_token_horizon_moves_lr_by_bjorck_and_keeps_the_adamw_timescale() -> None:
    short, long = config(tokens=1e9), config(tokens=1e10)
    plan = transfer(short, HP, long, weight_decay_rule="constant-tau")
    assert plan.horizon_lr_factor == pytest.approx(10**-0.32)
    for g in plan.groups.values():
        assert g.lr == pytest.approx(HP["lr"] * 10**-0.32)
        if g.decays:  # τ = B/(η·λ·D) constant at a fixed batch: η·λ·D unchanged
            assert g.lr * g.weight_decay * 1e10 == pytest.approx(HP["lr"] * HP["weight_decay"] * 1e9)
    assert plan.status == "secondary"  # Bjorck's exponent is secondary
    kept = transfer(short, HP, long, horizon_rule=None)
    assert kept.groups["attention"].lr == HP["lr"] and any("horizon_rule=None" in w for w in kept.warnings)
    with pytest.raises(LrpredictError, match="horizon_rule"):
        transfer(short, HP, long, horizon_rule="steplaw-2025")


def test_batch_change_scales_weight_decay_not_lr() -> None:
    plan = transfer(config(batch_tokens=1e5), HP, config(batch_tokens=4e5))
    assert plan.groups["attention"].lr == HP["lr"]
    assert plan.groups["attention"].weight_decay == pytest.approx(4 * HP["weight_decay"])
    assert any("batch changes" in w for w in plan.warnings)


def test_base_width_makes_multipliers_absolute() -> None:
    plan = transfer(config(512), HP, config(512), base_width=128)
    assert plan.width_multiplier == 4.0 and plan.width_ratio == 1.0
    assert plan.groups["attention"].lr_multiplier == pytest.approx(1 / 4)
    assert plan.output_logit_multiplier == pytest.approx(1 / 4)


@pytest.mark.parametrize(
    ("proxy", "target", "rule", "field"),
    [
        (ModelConfig(params=1e7, tokens=1e9, n_layers=4), config(), "completep", "proxy.d_model"),
        (config(), ModelConfig(params=1e7, tokens=1e9, n_layers=4), "mup", "target.d_model"),
        (ModelConfig(params=1e7, tokens=1e9, d_model=256), config(), "completep", "proxy.n_layers"),
        (config(), ModelConfig(params=1e7, tokens=1e9, d_model=256), "depth-mup", "target.n_layers"),
        (config(), config(), "sp", "rule"),
    ],
)
def test_missing_shape_or_bad_rule_is_a_one_line_error(
    proxy: ModelConfig, target: ModelConfig, rule: str, field: str
) -> None:
    with pytest.raises(LrpredictError) as info:
        transfer(proxy, HP, target, rule)
    assert info.value.field == field and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("hparams", "field"),
    [
        ({"weight_decay": 0.1}, "proxy_hparams.lr"),
        ({"lr": -1.0}, "proxy_hparams.lr"),
        ({"lr": 1e-3, "momentum": 0.9}, "proxy_hparams.momentum"),
        ({"lr": 1e-3, "weight_decay": float("nan")}, "proxy_hparams.weight_decay"),
    ],
)
def test_bad_hyperparameters(hparams: dict[str, float], field: str) -> None:
    with pytest.raises(LrpredictError) as info:
        transfer(config(), hparams, config())
    assert info.value.field == field


def test_50m_proxy_to_1b_moe_plan() -> None:
    proxy, target = proxy_50m(), target_1b_moe()
    assert 45e6 < proxy.params < 55e6 and 0.9e9 < target.active_params < 1.3e9
    plan = transfer(proxy, HP, target)
    assert plan.width_multiplier == pytest.approx(3.2) and plan.depth_multiplier == pytest.approx(1.6)
    expert = plan.groups["expert_ffn"]
    assert expert.lr_multiplier == plan.groups["dense_ffn"].lr_multiplier  # no extra MoE multiplier
    assert expert.status == "confirmed" and plan.groups["router"].status == "secondary"
    assert plan.status == "secondary"
    names = {f.name for f in plan.forward}
    assert {"moe_expert_down_projection", "moe_route_scale", "residual_branch", "output_logits"} <= names
    warnings = " ".join(plan.warnings)
    assert "2601.05049" in warnings and "Bridge I" in warnings
    assert TransferPlan.model_validate_json(plan.to_json()) == plan
    assert set(plan.groups) == set(GROUPS)


def test_large_width_extrapolation_warns() -> None:
    plan = transfer(config(64), HP, config(4096))
    assert any("exceeds 32×" in w for w in plan.warnings)
    assert not any("exceeds" in w for w in transfer(config(256), HP, config(1024)).warnings)


def test_transfer_module_does_not_import_torch() -> None:
    code = "import sys, lrpredict.transfer, lrpredict.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


PROXY_ARGS = ["--proxy-params", "49.6M", "--proxy-tokens", "1B", "--proxy-layers", "10", "--proxy-d-model", "640"]
SIZE_ARGS = ["--params", "6.7B", "--active-params", "1.08B", "--tokens", "100B", "--layers", "16", "--d-model", "2048"]
TARGET_ARGS = ["--arch", "moe", *SIZE_ARGS]


def run(args: list[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["transfer", *args])


def test_cli_transfer_table_and_json() -> None:
    args = [*PROXY_ARGS, "--proxy-lr", "3e-3", "--proxy-wd", "0.1", *TARGET_ARGS]
    result = run([*args, "--n-experts", "64", "--top-k", "8"])
    assert result.exit_code == 0, result.output
    assert "expert_ffn" in result.output and "residual_branch" in result.output and "warnings:" in result.output
    data = json.loads(run([*args, "--json"]).output)
    assert data["rule"] == "completep"
    assert math.isclose(data["groups"]["attention"]["lr"], 3e-3 / 3.2 * 100**-0.32)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--proxy-params", "50M", "--proxy-tokens", "1B", "--proxy-d-model", "640", *TARGET_ARGS], "--proxy-lr"),
        ([*PROXY_ARGS, "--proxy-lr", "3e-3", *TARGET_ARGS], "--proxy-wd is required"),
        ([*PROXY_ARGS[:6], "--proxy-lr", "3e-3", "--proxy-wd", "0", *TARGET_ARGS], "--proxy-d-model is missing"),
        ([*PROXY_ARGS, "--proxy-lr", "3e-3", "--proxy-wd", "0", *TARGET_ARGS[:-2]], "--d-model is missing"),
        ([*PROXY_ARGS, "--proxy-lr", "-1", "--proxy-wd", "0", *TARGET_ARGS], "--proxy-lr="),
        (
            ["--proxy-params", "x", *PROXY_ARGS[2:], "--proxy-lr", "3e-3", "--proxy-wd", "0", *TARGET_ARGS],
            "--proxy-params=",
        ),
        (
            [*PROXY_ARGS, "--proxy-lr", "3e-3", "--proxy-wd", "0", *TARGET_ARGS, "--horizon-rule", "steplaw-2025"],
            "--horizon-rule=",
        ),
    ],
)
def test_cli_transfer_errors_name_the_option(args: list[str], expected: str) -> None:
    result = run(args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


def test_transfer_is_callable_at_the_top_level_and_still_a_module() -> None:
    import importlib

    import lrpredict

    proxy = ModelConfig(params="50M", tokens="1B", d_model=512, n_layers=8)
    target = ModelConfig(params="1B", tokens="20B", d_model=2048, n_layers=16)
    plan = lrpredict.transfer(proxy, {"lr": 3e-3, "weight_decay": 0.1}, target)
    assert isinstance(plan, lrpredict.TransferPlan)
    module = importlib.import_module("lrpredict.transfer")
    assert module is lrpredict.transfer and module.transfer(proxy, {"lr": 3e-3, "weight_decay": 0.1}, target) == plan


def test_transfer_weight_decay_follows_power_lines_by_default_like_suggest() -> None:
    """Across horizons the default λ moves the AdamW timescale with tokens per parameter, τ ∝ (D/N)^-0.527, as
    suggest's default weight-decay law does; constant-τ is the option (issue 14)."""
    import lrpredict

    short, long = config(tokens=1e9), config(tokens=1e10)
    default = transfer(short, HP, long)
    constant = transfer(short, HP, long, weight_decay_rule="constant-tau")
    ratio = default.groups["attention"].weight_decay / constant.groups["attention"].weight_decay
    assert ratio == pytest.approx(10**0.527)
    assert default.weight_decay_rule == "powerlines" and any("powerlines-2025" in f.source for f in default.derivation)
    # the same move suggest makes: at a fixed η and B, Power Lines' λ scales by (TPP ratio)^0.527 / (D ratio)
    wd = [lrpredict.suggest(params=1e8, tokens=d, batch_tokens=5e5, law="steplaw-2025") for d in (1e9, 1e10)]
    fixed_lr = (wd[1].weight_decay * wd[1].lr) / (wd[0].weight_decay * wd[0].lr)
    assert fixed_lr == pytest.approx(10**0.527 / 10)
    with pytest.raises(LrpredictError, match="weight_decay_rule"):
        transfer(short, HP, long, weight_decay_rule="cosmic")


def test_transfer_without_proxy_weight_decay_says_so() -> None:
    plan = transfer(config(), {"lr": 3e-3}, config(tokens=2e9))
    assert all(g.weight_decay == 0 for g in plan.groups.values())
    assert any("proxy weight decay not given: 0 assumed" in w for w in plan.warnings)


def test_transfer_warns_on_numbers_no_published_run_used() -> None:
    # proxy LR 100 gave a target LR of 38.3 and λ 5e5 passed, all without a word (QA 2026-12-01)
    from click.testing import CliRunner

    from lrpredict.cli import cli

    base = ["transfer", "--proxy-params", "50M", "--proxy-tokens", "1B", "--proxy-d-model", "512", "--proxy-layers",
            "8", "--params", "1B", "--d-model", "2048", "--layers", "16", "--tokens", "20B"]  # fmt: skip
    runner = CliRunner()
    sane = runner.invoke(cli, [*base, "--proxy-lr", "3e-3", "--proxy-wd", "0.1"])
    assert sane.exit_code == 0 and "where every published run lies" not in sane.output
    assert "transferred LR above" not in sane.output
    # issue 23: beyond lrpredict.bounds (LR 1, λ 10) the proxy values are refused; inside them, warned
    assert runner.invoke(cli, [*base, "--proxy-lr", "100", "--proxy-wd", "0.1"]).exit_code == 2
    wild = runner.invoke(cli, [*base, "--proxy-lr", "0.5", "--proxy-wd", "5"])
    assert wild.exit_code == 0
    assert "proxy LR 0.5 is outside 1e-05–0.01" in wild.output and "proxy weight decay 5 is above 1" in wild.output
    assert "transferred LR above 0.01 or weight decay above 1 in attention" in wild.output
