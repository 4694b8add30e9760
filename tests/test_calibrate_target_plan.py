import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("scipy")

from lrpredict.calibrate.planner import CPU_LADDER, law_n, make_plan
from lrpredict.calibrate.prior import resolve_prior
from lrpredict.calibrate.target_plan import Target, choose, predictive_sd, read_target
from lrpredict.cli import cli
from lrpredict.errors import LrpredictError

PRIOR = resolve_prior("default")
TARGET = Target(params=7e9, tokens=2e12)


def build(widths):
    return make_plan(name="t", device="cpu", widths=widths, lrs=5)


def test_read_target_from_options_and_files(tmp_path) -> None:
    assert read_target("7B", "2T") == Target(7e9, 2e12)
    (tmp_path / "t.json").write_text(json.dumps({"params": "7B", "tokens": 2e12, "batch_tokens": "4M"}))
    assert read_target(config=tmp_path / "t.json") == Target(7e9, 2e12, None, 4e6)
    (tmp_path / "t.toml").write_text('params = "7B"\ntokens = "2T"\nactive_params = "1B"\n')
    assert read_target(tokens="1T", config=tmp_path / "t.toml") == Target(7e9, 1e12, 1e9)  # options win
    assert read_target() is None
    with pytest.raises(LrpredictError, match="target_tokens"):
        read_target("7B")
    (tmp_path / "bad.json").write_text(json.dumps({"params": "7B", "tokens": "2T", "lr": 1}))
    with pytest.raises(LrpredictError, match="lr"):
        read_target(config=tmp_path / "bad.json")


def test_predictive_sd_shrinks_with_probes_and_grows_with_distance() -> None:
    nothing = predictive_sd([], 5, PRIOR, 7e9, 2e12)
    one = predictive_sd([(1e5, 2e5), (1e5, 4e5)], 5, PRIOR, 7e9, 2e12)
    three = predictive_sd([(n, d) for n in (1e5, 4e5, 1.6e6) for d in (2e5, 4e5)], 5, PRIOR, 7e9, 2e12)
    assert three < one < nothing
    assert predictive_sd([(1e8, 2e9)], 5, PRIOR, 2e8, 4e9) < predictive_sd([(1e8, 2e9)], 5, PRIOR, 7e9, 2e12)


def test_choose_spends_within_budget_and_shows_the_cost_curve() -> None:
    default = build([32, 48, 64])
    result = choose(
        build,
        CPU_LADDER,
        TARGET,
        PRIOR,
        arch="dense",
        cost=lambda p: p.flops,
        budget=default.flops,
        n_lrs=5,
        law_n=law_n,
    )
    assert result.chosen.cost <= default.flops
    assert result.cheaper.cost < result.chosen.cost and result.cheaper.sd > result.chosen.sd
    assert result.dearer.cost > result.chosen.cost and result.dearer.sd < result.chosen.sd
    lines = result.lines(lambda v: f"{v:.3g} FLOPs")
    assert any("chosen" in line and "90% interval ×" in line for line in lines)


def test_choose_with_a_strong_prior_picks_one_or_two_sizes() -> None:
    strong = dataclasses.replace(PRIOR, sd_alpha=0.01, sd_beta=0.01)
    result = choose(
        build, CPU_LADDER, TARGET, strong, arch="dense", cost=lambda p: p.flops, budget=None, n_lrs=5, law_n=law_n
    )
    assert len(result.chosen.widths) <= 2


def test_cli_calibrate_dry_run_for_a_target_prints_interval_and_cost() -> None:
    args = ["calibrate", "--dry-run", "--device", "cpu", "--target-params", "7B", "--target-tokens", "2T"]
    result = CliRunner().invoke(cli, [*args, "--sizes", "32,48"])
    assert result.exit_code == 0, result.output
    assert "target N=7e+09, D=2e+12" in result.stdout and "90% interval ×" in result.stdout
    assert "chosen  widths [32, 48]" in result.stdout and "wall time" in result.stdout
    bad = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--target-params", "7B"])
    assert bad.exit_code == 2 and "--target-tokens" in bad.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "--target-active-params is missing"),
        (["--target-active-params", "20B"], "--target-active-params='20B' is not valid: at most the target's params"),
    ],
)
def test_cli_calibrate_moe_target_needs_a_sane_active_count(extra, expected) -> None:
    args = ["calibrate", "--dry-run", "--arch", "moe", "--device", "cpu", "--target-params", "7B"]
    result = CliRunner().invoke(cli, [*args, "--target-tokens", "2T", *extra])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and expected in result.output


def _resume_error(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --prior"), result.output
    return lines[0]


def test_calibrate_plan_records_prior_and_resume_refuses_another(tmp_path) -> None:
    """Issue 11: --resume refitted with the default prior whatever the run started with."""
    from lrpredict.calibrate.run import load_plan, save_plan

    dry = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--sizes", "32", "--prior", "deepseek-llm-2024"])
    assert dry.exit_code == 0 and "prior: deepseek-llm-2024" in dry.output, dry.output
    plan = build([32])
    plan.prior = "deepseek-llm-2024"
    save_plan(plan, tmp_path)
    runner = CliRunner()
    for other in ("steplaw-2025", "default", "none"):
        line = _resume_error(runner.invoke(cli, ["calibrate", "--resume", str(tmp_path), "--prior", other]))
        assert "deepseek-llm-2024, the prior of the calibration being resumed" in line
    old = tmp_path / "old"
    plan.prior = None  # a plan from before the prior was recorded: it ran under the arch's default
    save_plan(plan, old)
    assert "steplaw-2025" in _resume_error(runner.invoke(cli, ["calibrate", "--resume", str(old), "--prior", "none"]))
    assert load_plan(old).prior is None  # a refused resume writes nothing


def test_resume_takes_the_recorded_prior_and_accepts_the_same_one_spelled_default() -> None:
    import click

    from lrpredict.cli.calibrate import _resume_prior, calibrate_command

    plan = build([32])
    plan.prior = "steplaw-2025"
    ctx = click.Context(calibrate_command)
    ctx.set_parameter_source("prior", click.core.ParameterSource.COMMANDLINE)  # as if typed: --prior default
    opts = {"prior": "default"}
    _resume_prior(ctx, opts, plan)  # default for dense is steplaw-2025: the same prior, not a conflict
    assert opts["prior"] == "steplaw-2025" and opts["prior_law"].law_id == "steplaw-2025"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--prior", "nosuch"], "--prior='nosuch'"),  # load_law's error named --law, an option not given
        (["--prior", "."], "--prior='.'"),  # a folder: named the internal field 'path'
        (["--target-params", "7Q"], "--target-params='7Q'"),  # the typo, not the missing --target-tokens
        (["--prior", ""], "--prior='' is not valid: 'none', 'default', a law id"),  # said "or a LawFile"
    ],
)
def test_cli_calibrate_bad_prior_or_target_names_the_option_typed(args, named) -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", *args])
    assert result.exit_code == 2
    assert named in result.output and "Traceback" not in result.output


def _path_prior(tmp_path):
    """Step Law under another id, read from a file: an id no registry holds (QA 2026-12-01)."""
    from importlib import resources

    text = (resources.files("lrpredict.coefficients") / "steplaw-2025.toml").read_text(encoding="utf-8")
    path = tmp_path / "my-prior.toml"
    path.write_text(text.replace('id = "steplaw-2025"', 'id = "my-prior"', 1), encoding="utf-8")
    return path


def test_calibrate_replay_with_a_prior_from_a_file_writes_its_law(tmp_path, monkeypatch) -> None:
    # the fit looked the prior up by id after every probe had run: "--law='my-prior' is not valid", no law
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    sweep = Path(__file__).parent / "data" / "sweeps" / "steplaw_dense.csv"
    args = ["calibrate", "--replay", str(sweep), "--name", "pathprior", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*args, "--prior", str(_path_prior(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "law installed: pathprior" in result.output and "the batch law is my-prior's" in result.output
    from lrpredict.registry import load_law

    law = load_law("pathprior")
    assert law.posterior is not None and law.posterior.prior == "my-prior" and law.batch is not None


def test_resume_finds_a_prior_from_a_file_by_its_recorded_path(tmp_path, monkeypatch) -> None:
    import click

    from lrpredict.cli.calibrate import _prior_id, _resume_prior, calibrate_command

    path = _path_prior(tmp_path)
    monkeypatch.chdir(tmp_path)
    recorded = _prior_id(resolve_prior("my-prior.toml"))  # what the plan stores: the absolute path, not the id
    assert recorded == str(path.resolve())
    plan = build([32])
    plan.prior = recorded
    ctx = click.Context(calibrate_command)
    opts = {"prior": "default"}
    _resume_prior(ctx, opts, plan)  # --resume with no --prior: the file is found again
    assert opts["prior_law"].law_id == "my-prior" and opts["prior_law"].law().id == "my-prior"
    ctx.set_parameter_source("prior", click.core.ParameterSource.COMMANDLINE)
    _resume_prior(ctx, {"prior": "my-prior.toml"}, plan)  # the same file, spelled relative: no conflict


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("[1, 2]", "--target-config="),  # was TypeError: sequence item 0
        ("7", "--target-config="),
        ("null", "--target-config="),
        ('"abc"', "--target-config="),  # was iterated: 'a, b, c' named as unknown fields
        ("{}", "--target-config="),  # was exit 0 with no target at all
        (b"\x92\xff\x00binary", "--target-config="),  # was UnicodeDecodeError
        ('{"params": "7Q", "tokens": "2T"}', "target_config.params='7Q'"),  # the file's field, not --target-params
        ('{"params": "7B", "tokens": "2T", "experts": 8}', "target_config.experts=8"),  # dense: was ignored
        ('{"params": "7B", "tokens": "2T", "batch_tokens": 0.5}', "target_config.batch_tokens=0.5"),
    ],
)
def test_cli_calibrate_target_config_hostile_content_is_one_line(tmp_path, content, named) -> None:
    path = tmp_path / "target.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--target-config", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and named in result.output, result.output


def test_cli_calibrate_dense_target_refuses_an_active_count_it_would_ignore() -> None:
    args = ["calibrate", "--dry-run", "--target-params", "7B", "--target-tokens", "2T"]
    result = CliRunner().invoke(cli, [*args, "--target-active-params", "100K"])
    assert result.exit_code == 2 and "--target-active-params=100000.0 is not valid: only for an MoE target" in (
        result.output
    )


def test_cli_calibrate_target_batch_changes_the_prior_line() -> None:
    # --target-batch-tokens was parsed, stored and never read (QA 2026-12-01)
    args = ["calibrate", "--dry-run", "--device", "cpu", "--target-params", "7B", "--target-tokens", "2T"]
    runner = CliRunner()
    at_optimal = runner.invoke(cli, args)
    at_4m = runner.invoke(cli, [*args, "--target-batch-tokens", "4M"])
    at_64m = runner.invoke(cli, [*args, "--target-batch-tokens", "64M"])
    assert at_optimal.exit_code == at_4m.exit_code == at_64m.exit_code == 0, at_4m.output
    assert "steplaw-2025's optimal batch" in at_optimal.output
    line_4m = next(x for x in at_4m.output.splitlines() if "before calibration" in x)
    line_64m = next(x for x in at_64m.output.splitlines() if "before calibration" in x)
    assert "at batch 4e+06 tokens (your --target-batch-tokens)" in line_4m and line_4m != line_64m.replace(
        "6.4e+07", "4e+06"
    )


def test_cli_suggest_binary_hf_config_is_one_line(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b"\x92\xff\x00binary")
    result = CliRunner().invoke(cli, ["suggest", "--hf-config", str(path), "--tokens", "1T"])
    assert result.exit_code == 2 and result.output.startswith("Error: --hf-config="), result.output


def test_cli_calibrate_target_plan_over_the_budget_refuses_naming_the_budget() -> None:
    """Issue 19: a budget no plan fits is refused (exit 2, one line naming the budget that would), not run as shown."""
    args = ["calibrate", "--dry-run", "--device", "cpu", "--budget", "1e6", "--target-params", "7B"]
    result = CliRunner().invoke(cli, [*args, "--target-tokens", "2T"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: --budget='1e6' is not valid: at least ~") and "FLOPs" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("--target-params", "1e40"), ("--target-params", "1000"), ("--target-tokens", "1000")],
)
def test_cli_calibrate_target_no_one_could_train_is_refused(option, value) -> None:
    args = {"--target-params": "7B", "--target-tokens": "2T", option: value}
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", *[x for kv in args.items() for x in kv]])
    assert result.exit_code == 2 and f"{option}='{value}' is not valid" in result.output, result.output


def test_cli_calibrate_target_smaller_than_the_probes_says_tune_it_directly() -> None:
    args = ["calibrate", "--dry-run", "--device", "cpu", "--sizes", "96", "--target-params", "200K"]
    result = CliRunner().invoke(cli, [*args, "--target-tokens", "10M"])
    assert result.exit_code == 0, result.output
    assert "is no larger than the probes" in result.output


def test_cli_calibrate_prior_of_another_architecture_is_noted() -> None:
    runner = CliRunner()
    moe_prior = runner.invoke(cli, ["calibrate", "--dry-run", "--device", "cpu", "--prior", "ling-2025"])
    assert moe_prior.exit_code == 0 and "ling-2025 was fitted on moe models only" in moe_prior.output
    default = runner.invoke(cli, ["calibrate", "--dry-run", "--device", "cpu"])
    assert "models only and these probes" not in default.output
