"""Issue 19: probe horizons the user chooses (``calibrate --horizons``), kept under a budget, refused when malformed,
fixed by the plan on a --resume; a time budget refused on its FLOPs lower bound says the timed need is larger."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lrpredict.calibrate.clock import Clock
from lrpredict.calibrate.planner import Budget, BudgetTooSmall, make_plan, parse_budget_spec
from lrpredict.cli import cli


def test_make_plan_keeps_the_given_horizons_rounded_to_whole_steps() -> None:
    plan = make_plan(name="x", widths=[32], lrs=3, horizons=[100_000, 300_000])
    step = plan.probes[0].tokens_per_step
    assert {p.horizons for p in plan.probes} == {(round(100_000 / step) * step, round(300_000 / step) * step)}
    assert any(n.startswith("horizons as given (--horizons)") for n in plan.notes)
    assert max(plan.validation[0].horizons) == round(300_000 / step) * step  # the validation cell's horizon too


def test_make_plan_budget_shrinks_the_rest_not_the_given_horizons() -> None:
    given = [131_072, 262_144]
    full = make_plan(name="x", horizons=given)
    plan = make_plan(name="x", horizons=given, budget=Budget("flops", full.cost("flops") / 3))
    assert {p.horizons for p in plan.probes} == {tuple(given)}
    assert plan.cost("flops") <= full.cost("flops") / 3 and len(plan.probes) < len(full.probes)
    with pytest.raises(BudgetTooSmall):  # below the smallest plan with these horizons: refused, never shortened
        make_plan(name="x", horizons=[2**24], budget=Budget("flops", full.cost("flops")))


def test_make_plan_warns_of_a_horizon_inside_the_unigram_phase() -> None:
    plan = make_plan(name="x", widths=[32], lrs=3, horizons=[8192, 65_536], vocab_size=50_257)
    assert any("inside the unigram phase" in n for n in plan.notes)


@pytest.mark.parametrize(
    "value",
    ["", "128K,,256K", "abc", "0", "-5", "1.5", "128K,128K", "1e16", "1,2,3,4,5,6,7", "nan"],
)
def test_cli_calibrate_horizons_malformed_is_one_line_exit_2(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--horizons", value, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and line.startswith("Error: --horizons=") and "Traceback" not in result.output


def test_cli_calibrate_horizons_with_replay_or_resume_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("N,D,lr,bs,loss\n")
    replay = CliRunner().invoke(cli, ["calibrate", "--replay", str(csv), "--horizons", "1M"])
    assert replay.exit_code == 2 and "--horizons" in replay.output and "--replay" in replay.output
    (tmp_path / "r").mkdir()
    resume = CliRunner().invoke(cli, ["calibrate", "--resume", str(tmp_path / "r"), "--horizons", "1M"])
    assert resume.exit_code == 2 and "not given with --resume" in resume.output


def test_cli_calibrate_dry_run_plans_the_given_horizons(tmp_path: Path) -> None:
    args = ["calibrate", "--dry-run", "--budget", "1e13", "--horizons", "65536,131072", "--sizes", "32", "--lrs", "3"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "horizons 65536, 131072 tokens" in result.output


def test_time_budget_refused_on_its_lower_bound_says_the_timed_need_is_larger(tmp_path: Path) -> None:
    clock = Clock("cpu", threads=1, cache=tmp_path / "clock.json")
    with pytest.raises(BudgetTooSmall) as caught:
        make_plan(name="x", budget=parse_budget_spec("1s wall"), clock=clock)
    text = str(caught.value)
    assert "a lower bound" in text and "`--dry-run --budget` at this value prints it" in text
    assert clock.measured == 0  # refused before timing a probe
    cache = tmp_path / "clock.json"
    assert not cache.exists() or not json.loads(cache.read_text() or "{}").get("devices")  # nothing timed, cached
