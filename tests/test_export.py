"""Exports parsed the way their consumers parse them: TOML by tomllib, Megatron flags by a replica of Megatron's
argparse definitions, HF kwargs by a real ``transformers.TrainingArguments`` and scheduler (skipped without it)."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import lrpredict
from lrpredict import export
from lrpredict.errors import LrpredictError
from lrpredict.suggest import Suggestion

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Field names of torchtitan's TOML job file, read in pytorch/torchtitan torchtitan/config/job_config.py @6404b932.
TORCHTITAN_FIELDS = {
    "optimizer": {"name", "lr", "beta1", "beta2", "eps", "weight_decay", "implementation", "early_step_in_backward"},
    "lr_scheduler": {"warmup_steps", "decay_ratio", "decay_type", "min_lr_factor"},
    "training": {"steps", "seq_len", "local_batch_size", "global_batch_size"},  # the ones an export may set
}
TORCHTITAN_DECAY_TYPES = {"linear", "sqrt", "cosine"}
HF_DECAY_TYPES = {"linear", "cosine", "1-sqrt"}  # transformers optimization.py get_wsd_schedule


@pytest.fixture(scope="module")
def s() -> Suggestion:
    return lrpredict.suggest(lrpredict.ModelConfig(params="1B", tokens="20B", seq_len=4096, batch_tokens="512K"))


def with_shape(s: Suggestion, shape: str) -> Suggestion:
    return s.model_copy(
        update={"recommended_schedule": s.recommended_schedule.model_copy(update={"decay_shape": shape})}
    )


def megatron_parser() -> argparse.ArgumentParser:
    """The flags lrpredict emits, defined as in NVIDIA/Megatron-LM megatron/training/arguments.py @000c4ac2."""
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--optimizer", type=str, default="adam", choices=["adam", "sgd", "muon", "dist_muon"])
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--min-lr", type=float, default=0.0)
    p.add_argument(
        "--lr-decay-style",
        type=str,
        default="linear",
        choices=["constant", "linear", "cosine", "inverse-square-root", "WSD"],
    )
    p.add_argument(
        "--lr-wsd-decay-style",
        type=str,
        default="exponential",
        choices=["exponential", "linear", "cosine", "minus_sqrt"],
    )
    p.add_argument("--lr-decay-iters", type=int, default=None)
    p.add_argument("--lr-wsd-decay-iters", type=int, default=None)
    p.add_argument("--lr-warmup-iters", type=int, default=0)
    p.add_argument("--train-iters", type=int, default=None)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--adam-beta1", type=float, default=0.9)
    p.add_argument("--adam-beta2", type=float, default=0.999)
    p.add_argument("--adam-eps", type=float, default=1e-08)
    p.add_argument("--micro-batch-size", type=int, default=None)
    p.add_argument("--global-batch-size", type=int, default=None)
    p.add_argument("--seq-length", type=int, default=None)
    return p


def megatron_lr(args: argparse.Namespace, step: int) -> float:
    """OptimizerParamScheduler.get_lr (megatron/core/optimizer_param_scheduler.py) for WSD, init_lr = 0."""
    decay_iters = args.lr_decay_iters if args.lr_decay_iters is not None else args.train_iters
    if args.lr_warmup_iters > 0 and step <= args.lr_warmup_iters:
        return args.lr * step / args.lr_warmup_iters
    if step > decay_iters:
        return args.min_lr
    anneal_start = decay_iters - args.lr_wsd_decay_iters
    if step <= anneal_start:
        coeff = 1.0
    else:
        ratio = (step - anneal_start) / args.lr_wsd_decay_iters
        coeff = {
            "linear": 1.0 - ratio,
            "cosine": 0.5 * (math.cos(math.pi * ratio) + 1.0),
            "minus_sqrt": 1.0 - math.sqrt(ratio),
        }[args.lr_wsd_decay_style]
    return args.min_lr + coeff * (args.lr - args.min_lr)


# --- batch layout -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("world_size", "micro"), [(1, None), (1, 5), (5, None), (5, 25), (1, 125)])
def test_hf_batch_multiplies_out_to_the_suggested_batch(s: Suggestion, world_size: int, micro: int | None) -> None:
    # 512K = 512,000 tokens = 125 sequences of 4096: every layout here splits it exactly
    with warnings.catch_warnings():
        warnings.simplefilter("error", export.ExportWarning)
        kw = export.to_hf(s, world_size=world_size, micro_batch_size=micro)
    per_device, accum = kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]
    assert per_device * accum * world_size * s.seq_len == s.batch_tokens
    if micro is not None:
        assert per_device == micro


def test_hf_default_micro_batch_stays_under_the_token_cap(s: Suggestion) -> None:
    kw = export.to_hf(s, world_size=5)  # 25 sequences per device; at most 16K tokens = 4 sequences per micro batch
    assert kw["per_device_train_batch_size"] * s.seq_len <= export.MICRO_BATCH_TOKENS
    assert kw["per_device_train_batch_size"] * kw["gradient_accumulation_steps"] == 25


def test_hf_warns_when_rounding_changes_the_batch(s: Suggestion) -> None:
    with pytest.warns(export.ExportWarning, match=r"128 sequences × 4096 = 524288 tokens \(\+2\.40%"):
        kw = export.to_hf(s, world_size=8)
    assert kw["per_device_train_batch_size"] * kw["gradient_accumulation_steps"] * 8 == 128


def test_hf_rounds_a_batch_to_whole_sequences(s: Suggestion) -> None:
    odd = s.model_copy(update={"batch_tokens": 125.4 * 4096})
    with pytest.warns(export.ExportWarning, match="whole sequences"):
        kw = export.to_hf(odd, micro_batch_size=1)
    assert kw["gradient_accumulation_steps"] == 125


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_hf_rejects_a_bad_world_size(s: Suggestion, bad: object) -> None:
    with pytest.raises(LrpredictError, match="world_size"):
        export.to_hf(s, world_size=bad)  # type: ignore[arg-type]


# --- Hugging Face -------------------------------------------------------------------------------------------------


def test_hf_schedule_steps_add_up(s: Suggestion) -> None:
    kw = export.to_hf(s)
    r = s.recommended_schedule
    # get_wsd_schedule without num_stable_steps: stable = num_training_steps - warmup - decay
    stable = kw["max_steps"] - kw["warmup_steps"] - kw["lr_scheduler_kwargs"]["num_decay_steps"]
    assert stable == r.stable_steps
    assert kw["warmup_steps"] + stable + kw["lr_scheduler_kwargs"]["num_decay_steps"] == kw["max_steps"]
    assert kw["lr_scheduler_kwargs"]["decay_type"] in HF_DECAY_TYPES
    assert kw["learning_rate"] == s.lr and kw["weight_decay"] == s.weight_decay


@pytest.mark.parametrize("shape", ["1-sqrt", "linear", "cosine"])
def test_hf_training_arguments_and_scheduler_reproduce_the_schedule(s: Suggestion, tmp_path: Path, shape: str) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # TrainingArguments needs it with torch
    torch = pytest.importorskip("torch")
    kw = export.to_hf(with_shape(s, shape))
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", **kw)
    assert args.learning_rate == s.lr and args.max_steps == s.recommended_schedule.total_steps
    # as Trainer.create_scheduler builds it
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Both num_training_steps and num_stable_steps are specified"
        scheduler = transformers.get_scheduler(
            args.lr_scheduler_type,
            optimizer,
            num_warmup_steps=args.get_warmup_steps(args.max_steps),
            num_training_steps=args.max_steps,
            scheduler_specific_kwargs=args.lr_scheduler_kwargs,
        )
    r = s.recommended_schedule
    stepped = []
    for _ in range(r.warmup_steps + 2):  # stepping agrees with the schedule's own function ...
        stepped.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    lr_at = [s.lr * scheduler.lr_lambdas[0](step) for step in range(r.total_steps + 1)]
    assert stepped == pytest.approx(lr_at[: r.warmup_steps + 2])
    # ... which is lrpredict's: peak at the end of warmup, through the stable phase, final ratio at the end
    assert lr_at[r.warmup_steps] == pytest.approx(s.lr)
    assert lr_at[r.warmup_steps + r.stable_steps // 2] == pytest.approx(s.lr)
    assert lr_at[r.warmup_steps + r.stable_steps] == pytest.approx(s.lr)
    assert lr_at[r.warmup_steps + r.stable_steps + 1] < s.lr
    assert lr_at[r.total_steps] == pytest.approx(s.lr * r.final_lr_ratio)
    assert min(lr_at) >= s.lr * r.final_lr_ratio * (1 - 1e-12)


# --- torchtitan ---------------------------------------------------------------------------------------------------


def test_torchtitan_toml_uses_the_verified_field_names(s: Suggestion) -> None:
    doc = tomllib.loads(export.to_torchtitan(s))
    assert set(doc) == set(TORCHTITAN_FIELDS)
    for section, keys in doc.items():
        assert set(keys) <= TORCHTITAN_FIELDS[section], section
    r = s.recommended_schedule
    assert doc["optimizer"] == {
        "name": "AdamW",
        "lr": s.lr,
        "beta1": export.ADAM_BETA1,
        "beta2": export.ADAM_BETA2,
        "eps": export.ADAM_EPS,
        "weight_decay": s.weight_decay,
    }
    assert doc["lr_scheduler"]["warmup_steps"] == r.warmup_steps
    assert doc["lr_scheduler"]["decay_type"] == "sqrt"
    assert doc["lr_scheduler"]["min_lr_factor"] == r.final_lr_ratio
    assert doc["training"] == {"steps": r.total_steps, "seq_len": 4096, "local_batch_size": 1, "global_batch_size": 125}


def test_torchtitan_schedule_steps_add_up(s: Suggestion) -> None:
    doc = tomllib.loads(export.to_torchtitan(s))
    steps, ratio = doc["training"]["steps"], doc["lr_scheduler"]["decay_ratio"]
    decay = round(steps * ratio)  # torchtitan components/lr_scheduler.py
    stable = steps - doc["lr_scheduler"]["warmup_steps"] - decay
    r = s.recommended_schedule
    assert (decay, stable) == (r.decay_steps, r.stable_steps)


@pytest.mark.parametrize("total", [1, 7, 10, 99, 1001, 39063, 123457, 10**7 + 3])
def test_torchtitan_decay_ratio_gives_back_the_decay_steps(total: int) -> None:
    for decay in {1, total // 5, total // 3, max(total - 1, 1), total}:
        ratio = export._decay_ratio(decay, total)
        assert round(total * ratio) == decay and int(total * ratio) == decay
        assert tomllib.loads(f"x = {export._toml_float(ratio)}")["x"] == ratio


@pytest.mark.parametrize(("world_size", "local"), [(1, None), (5, 5), (8, None), (8, 2)])
def test_torchtitan_batch_divides_over_ranks(s: Suggestion, world_size: int, local: int | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", export.ExportWarning)
        doc = tomllib.loads(export.to_torchtitan(s, world_size=world_size, local_batch_size=local))
    t = doc["training"]
    assert t["global_batch_size"] % (t["local_batch_size"] * world_size) == 0  # asserted by torchtitan's train.py
    assert abs(t["global_batch_size"] * t["seq_len"] - s.batch_tokens) <= world_size * (local or 1) * 4096 / 2


def test_torchtitan_comments_name_law_and_weight_decay_groups(s: Suggestion) -> None:
    text = export.to_torchtitan(s)
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert s.law in comments and s.weight_decay_law in comments
    assert "weight matrices only" in comments and "embeddings, norms, biases" in comments
    assert "job_config.py" in comments


def test_torchtitan_comments_carry_the_suggestion_warnings(s: Suggestion) -> None:
    warned = s.model_copy(update={"warnings": ["law X\nextrapolated"]})
    text = export.to_torchtitan(warned)
    assert "# warning: law X extrapolated" in text
    tomllib.loads(text)


@pytest.mark.parametrize(("shape", "expected"), [("1-sqrt", "sqrt"), ("linear", "linear"), ("cosine", "cosine")])
def test_torchtitan_maps_each_decay_shape(s: Suggestion, shape: str, expected: str) -> None:
    doc = tomllib.loads(export.to_torchtitan(with_shape(s, shape)))
    assert doc["lr_scheduler"]["decay_type"] == expected and expected in TORCHTITAN_DECAY_TYPES


# --- Megatron-LM --------------------------------------------------------------------------------------------------


def test_megatron_flags_parse_with_megatron_definitions(s: Suggestion) -> None:
    args = megatron_parser().parse_args(export.to_megatron(s))
    r = s.recommended_schedule
    assert args.optimizer == "adam" and args.lr == s.lr and args.weight_decay == s.weight_decay
    assert args.min_lr == pytest.approx(s.lr * r.final_lr_ratio)
    assert (args.lr_decay_style, args.lr_wsd_decay_style) == ("WSD", "minus_sqrt")
    assert (args.lr_warmup_iters, args.lr_wsd_decay_iters) == (r.warmup_steps, r.decay_steps)
    assert args.train_iters == args.lr_decay_iters == r.total_steps
    assert (args.adam_beta1, args.adam_beta2, args.adam_eps) == (export.ADAM_BETA1, export.ADAM_BETA2, export.ADAM_EPS)
    assert args.global_batch_size * args.seq_length == s.batch_tokens
    assert (args.micro_batch_size, args.seq_length) == (1, 4096)


def test_megatron_schedule_steps_add_up(s: Suggestion) -> None:
    args = megatron_parser().parse_args(export.to_megatron(s))
    anneal_start = args.lr_decay_iters - args.lr_wsd_decay_iters
    assert anneal_start - args.lr_warmup_iters == s.recommended_schedule.stable_steps
    assert args.lr_warmup_iters < args.lr_decay_iters  # OptimizerParamScheduler asserts it


@pytest.mark.parametrize("shape", ["1-sqrt", "linear", "cosine"])
def test_megatron_schedule_replays_to_the_suggested_lrs(s: Suggestion, shape: str) -> None:
    args = megatron_parser().parse_args(export.to_megatron(with_shape(s, shape)))
    r = s.recommended_schedule
    assert megatron_lr(args, r.warmup_steps) == pytest.approx(s.lr)
    assert megatron_lr(args, r.warmup_steps + r.stable_steps) == pytest.approx(s.lr)
    assert megatron_lr(args, r.warmup_steps + r.stable_steps + r.decay_steps // 2) < s.lr
    assert megatron_lr(args, r.total_steps) == pytest.approx(s.lr * r.final_lr_ratio)


def test_megatron_global_batch_is_a_multiple_of_micro_times_data_parallel(s: Suggestion) -> None:
    with pytest.warns(export.ExportWarning):
        args = megatron_parser().parse_args(export.to_megatron(s, micro_batch_size=2, data_parallel_size=4))
    assert args.global_batch_size % (2 * 4) == 0 and args.global_batch_size == 128


# --- shared -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["hf", "torchtitan", "megatron"])
def test_export_requires_seq_len(fmt: str) -> None:
    s = lrpredict.suggest(lrpredict.ModelConfig(params="1B", tokens="20B", batch_tokens="512K"))
    with pytest.raises(LrpredictError, match=r"seq_len is missing: give seq_len to export") as err:
        export.render(s, fmt)
    assert err.value.field == "seq_len"


def test_export_uses_the_laws_adam_settings() -> None:
    config = lrpredict.ModelConfig(params="1B", tokens="20B", n_layers=24, d_model=2048, seq_len=4096)
    s = lrpredict.suggest(config, "deepseek-llm-2024")
    values, _ = export.adam_settings(s)
    assert (values["beta1"], values["beta2"], values["eps"]) == (0.9, 0.95, export.ADAM_EPS)
    with pytest.warns(export.ExportWarning, match="whole sequences"):  # its optimal batch is 294.4 sequences
        text = export.to_torchtitan(s)
    assert "beta1 = 0.9  # beta1, beta2 as deepseek-llm-2024 was fitted; the rest lrpredict defaults" in text


def test_render_gives_each_format(s: Suggestion) -> None:
    assert Suggestion.model_validate_json(export.render(s, "json")) == s
    hf = json.loads(export.render(s, "hf"))
    assert hf.pop("_lrpredict_warnings") == s.warnings and hf == export.to_hf(s)
    assert export.render(s, "torchtitan") == export.to_torchtitan(s)
    line = export.render(s, "megatron")
    assert "\n" not in line and shlex.split(line) == export.to_megatron(s)
    assert json.loads(export.render(s, "hf", world_size=5))["gradient_accumulation_steps"] == 25


def test_render_rejects_unknown_format_and_options(s: Suggestion) -> None:
    with pytest.raises(LrpredictError, match="format='yaml'"):
        export.render(s, "yaml")
    with pytest.raises(LrpredictError, match="micro_batch_size"):
        export.render(s, "torchtitan", micro_batch_size=2)
    with pytest.raises(LrpredictError, match="options"):
        export.render(s, "json", world_size=2)


def test_suggestion_methods_delegate_to_export(s: Suggestion) -> None:
    assert s.to_hf(world_size=5) == export.to_hf(s, world_size=5)
    assert s.to_torchtitan() == export.to_torchtitan(s)
    assert s.to_megatron(micro_batch_size=5) == export.to_megatron(s, micro_batch_size=5)


def test_export_imports_no_training_stack() -> None:
    code = (
        "import sys, lrpredict.export, lrpredict; "
        "s = lrpredict.suggest(lrpredict.ModelConfig(params='1B', tokens='20B', seq_len=4096)); "
        "[lrpredict.export.render(s, f) for f in lrpredict.export.FORMATS]; "
        "bad = [m for m in ('torch', 'transformers', 'numpy') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)


# --- schedules other than WSD, warnings -------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_export_writes_the_schedule_asked_for(s: Suggestion, schedule: str) -> None:
    r = s.recommended_schedule
    kw = export.to_hf(s, schedule=schedule)
    assert kw["lr_scheduler_kwargs"]["num_decay_steps"] == r.total_steps - r.warmup_steps  # no stable phase
    assert kw["lr_scheduler_kwargs"]["decay_type"] == schedule
    doc = tomllib.loads(export.to_torchtitan(s, schedule=schedule))
    assert doc["lr_scheduler"]["decay_type"] == schedule
    assert round(doc["lr_scheduler"]["decay_ratio"] * r.total_steps) == r.total_steps - r.warmup_steps
    args = megatron_parser().parse_args(export.to_megatron(s, schedule=schedule))
    assert args.lr_decay_style == schedule and args.lr_decay_iters == r.total_steps


def test_export_constant_schedule_holds_the_peak(s: Suggestion) -> None:
    assert export.to_hf(s, schedule="constant")["lr_scheduler_type"] == "constant_with_warmup"
    assert tomllib.loads(export.to_torchtitan(s, schedule="constant"))["lr_scheduler"]["min_lr_factor"] == 1.0
    args = megatron_parser().parse_args(export.to_megatron(s, schedule="constant"))
    assert args.lr_decay_style == "constant" and args.min_lr == args.lr


def test_export_refuses_multistep_with_a_reason(s: Suggestion) -> None:
    for exporter in (export.to_hf, export.to_torchtitan, export.to_megatron):
        with pytest.raises(LrpredictError, match=r"^schedule='multistep' .*in stages"):
            exporter(s, schedule="multistep")


# --- the command line: --hf-config, --world-size, --micro-batch-size ---------------------------------------------

HF_CONFIGS = Path(__file__).resolve().parent / "data" / "hf_configs"


def test_cli_cluster_export_gives_a_divisible_batch_and_carries_warnings() -> None:
    from click.testing import CliRunner

    from lrpredict.cli import cli

    args = ["suggest", "--hf-config", str(HF_CONFIGS / "llama2-7b.json"), "--tokens", "2T", "--batch-tokens", "4M",
            "--world-size", "256", "--micro-batch-size", "4", "--format", "torchtitan"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = tomllib.loads(result.stdout)
    training = doc["training"]
    assert training["global_batch_size"] % (256 * 4) == 0 and training["local_batch_size"] == 4
    assert training["seq_len"] == 4096  # guessed from max_position_embeddings, and said so
    comments = [line for line in result.stdout.splitlines() if line.startswith("# warning:")]
    assert any("global batch 4M → 4.19M tokens" in c and "peak LR" in c for c in comments)
    assert any("max_position_embeddings" in c for c in comments)
    assert any("extrapolation" in c for c in comments)
    assert "warning: global batch 4M" in result.stderr
    # the exported LR is the law's at the rounded batch, not at 4M
    config = lrpredict.ModelConfig.from_hf_config(HF_CONFIGS / "llama2-7b.json", tokens="2T", seq_len=4096)
    at_rounded = lrpredict.suggest(config.model_copy(update={"batch_tokens": 1024 * 4096.0}))
    assert doc["optimizer"]["lr"] == at_rounded.lr


@pytest.mark.parametrize(
    ("extra", "named"), [([], "--world-size="), (["--micro-batch-size", "64"], "--micro-batch-size=")]
)
def test_cli_cluster_export_refuses_a_batch_rounded_past_the_whole_run(extra, named) -> None:
    # 1e8 ranks rounded a 442K batch to 205B tokens, over the 20B run: λ 28453 was exported with exit 0
    from click.testing import CliRunner

    from lrpredict.cli import cli

    world = "100000000" if not extra else "2000000"
    args = ["suggest", "--params", "1B", "--tokens", "20B", "--seq-len", "2048", "--format", "torchtitan"]
    result = CliRunner().invoke(cli, [*args, "--world-size", world, *extra])
    assert result.exit_code == 2 and result.output.startswith(f"Error: {named}"), result.output
    assert "fits in the run's 2e+10 tokens" in result.output


def test_cli_cluster_export_without_micro_batch_names_only_world_size() -> None:
    from click.testing import CliRunner

    from lrpredict.cli import cli

    # the batch is rounded to a multiple of world_size and the micro batch chosen afterwards (4 here): the note
    # must not claim "world_size × micro batch = 64 × 1" next to --micro-batch-size 4
    args = ["suggest", "--hf-config", str(HF_CONFIGS / "llama2-7b.json"), "--tokens", "2T", "--seq-len", "4096",
            "--world-size", "64", "--format", "megatron"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    flags = shlex.split(result.stdout)
    micro = int(flags[flags.index("--micro-batch-size") + 1])
    assert micro > 1 and int(flags[flags.index("--global-batch-size") + 1]) % (64 * micro) == 0
    assert "a multiple of world_size = 64 sequences" in result.stderr
    assert "× 1 =" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value"), [("--world-size", "0"), ("--world-size", "-2"), ("--micro-batch-size", "0")]
)
def test_cli_cluster_export_refuses_a_non_positive_size_naming_the_option(option: str, value: str) -> None:
    from click.testing import CliRunner

    from lrpredict.cli import cli

    # --world-size 0 was read as 1 (``world_size or 1``) and exported without a word
    args = ["suggest", "--params", "1B", "--tokens", "20B", "--seq-len", "4096", option, value, "--format", "hf"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{option}={value} is not valid" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["hf", "megatron"])
def test_cli_exports_put_law_warnings_on_stderr(fmt: str) -> None:
    from click.testing import CliRunner

    from lrpredict.cli import cli

    args = ["suggest", "--params", "70B", "--tokens", "2T", "--seq-len", "4096", "--format", fmt]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "extrapolation" in result.stderr
    if fmt == "hf":
        assert any("extrapolation" in w for w in json.loads(result.stdout)["_lrpredict_warnings"])
    else:  # flags stay pasteable: warnings only on stderr
        assert "extrapolation" not in result.stdout and shlex.split(result.stdout)[0] == "--optimizer"


def test_cli_export_refuses_multistep_and_cluster_options_without_export() -> None:
    from click.testing import CliRunner

    from lrpredict.cli import cli

    base = ["suggest", "--params", "1B", "--tokens", "20B", "--seq-len", "4096"]
    refused = CliRunner().invoke(cli, [*base, "--schedule", "multistep", "--format", "megatron"])
    assert refused.exit_code == 2 and "in stages" in refused.output and "Traceback" not in refused.output
    cosine = CliRunner().invoke(cli, [*base, "--schedule", "cosine", "--format", "megatron"])
    assert "--lr-decay-style cosine" in cosine.stdout
    lonely = CliRunner().invoke(cli, [*base, "--world-size", "8"])
    assert lonely.exit_code == 2 and "--format" in lonely.output


def test_cli_hf_config_refuses_shape_options_it_would_contradict() -> None:
    from click.testing import CliRunner

    from lrpredict.cli import cli

    base = ["suggest", "--hf-config", str(HF_CONFIGS / "mixtral-8x7b.json"), "--tokens", "1T"]
    clash = CliRunner().invoke(cli, [*base, "--params", "7B"])
    assert clash.exit_code == 2 and "--params" in clash.output and "--hf-config" in clash.output
    typed = CliRunner().invoke(cli, [*base, "--arch", "dense"])  # --arch's default is dense: only a typed one clashes
    assert typed.exit_code == 2 and "--arch" in typed.output and "--hf-config" in typed.output
    ok = CliRunner().invoke(cli, [*base, "--seq-len", "2048", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["seq_len"] == 2048 and data["run"].startswith("moe, N=46.4B total / 12.6B active")
