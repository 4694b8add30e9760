"""Issue 19: a budget that holds — plans priced whole (fit probes, extension reserve, validation), shrunk to fit or
refused before any probe; grid extension toward the falling side, stopped by divergence and by the budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lrpredict.calibrate.clock import CACHE_VERSION, Clock, _shape_key, step_flops
from lrpredict.calibrate.executor import _cpu_count
from lrpredict.calibrate.fit import CalibrationFit, Cell, fit_calibration, fit_parabola
from lrpredict.calibrate.planner import (
    BUDGET_SLACK,
    CPU_LADDER,
    PHASES,
    VALIDATION_BEYOND,
    VALIDATION_RATIO,
    Budget,
    BudgetTooSmall,
    affordable_extension,
    extend,
    falling_side,
    law_n,
    make_plan,
    parse_budget_spec,
    probe_flops,
)
from lrpredict.calibrate.spec import DataSpec, ProbeResult
from lrpredict.cli import cli

FLOPS_PER_S = 2e10  # a seeded clock: every shape runs at this many training FLOPs a second


def _seed_clock(cache: Path, name: str, data: DataSpec, vocab: int) -> None:
    """A clock cache as a measurement would leave it, for every width the planner may price."""
    entries = {}
    for width in (*CPU_LADDER, *VALIDATION_BEYOND[True]):
        spec = make_plan(name="x", widths=[width], lrs=3, data=data, vocab_size=vocab, validate=False).probes[0]
        step = step_flops(spec) / FLOPS_PER_S
        entries[_shape_key(spec)] = {"setup_s": 1.0, "step_s": step, "eval_s": 4 * step}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"version": CACHE_VERSION, "devices": {name: entries}}))


def test_make_plan_budget_below_the_smallest_plan_refuses_naming_the_budget_that_fits() -> None:
    with pytest.raises(BudgetTooSmall) as caught:
        make_plan(name="x", budget=parse_budget_spec("1e9"))
    needed = caught.value.needed
    assert needed > 1e9 and f"at least ~{needed:.3g} FLOPs" in str(caught.value)
    assert "--no-validate" in str(caught.value)
    plan = make_plan(name="x", budget=Budget("flops", needed))  # the budget it names does fit
    assert plan.cost("flops") <= needed


def test_make_plan_shrinks_to_a_budget_and_its_estimate_stays_within_it() -> None:
    full = make_plan(name="x")
    budget = full.cost("flops") / 4
    plan = make_plan(name="x", budget=Budget("flops", budget))
    assert plan.cost("flops") <= budget < full.cost("flops")
    assert len(plan.probes) < len(full.probes) or max(plan.probes[0].horizons) < max(full.probes[0].horizons)
    assert any(note.startswith("sized to the budget") for note in plan.notes)


def test_make_plan_prices_extension_reserve_and_validation_in_every_estimate(tmp_path: Path) -> None:
    cache = tmp_path / "clock.json"
    clock = Clock("cpu", threads=1, cache=cache)
    data = DataSpec(n_tokens=2**21, eval_tokens=2**15)
    _seed_clock(cache, clock.name, data, 512)
    plan = make_plan(name="x", budget=parse_budget_spec("20min wall"), clock=clock, workers=2)
    assert clock.measured == 0
    parts = plan.estimated_parts()
    assert set(parts) == set(PHASES) and all(v > 0 for v in parts.values())
    assert plan.estimated_wall_s() == pytest.approx(sum(parts.values())) and plan.estimated_wall_s() <= 1200
    largest = max(law_n(p.arch) for p in plan.probes)
    assert law_n(plan.validation[0].arch) >= VALIDATION_RATIO * largest
    assert 3 <= len(plan.validation) <= 5 and plan.validation[0].horizons == (max(plan.probes[0].horizons),)
    assert plan.cost("flops") == pytest.approx(
        sum(probe_flops(p) for p in plan.probes + plan.reserve + plan.validation)
    )


def test_make_plan_no_validate_leaves_the_validation_cell_empty() -> None:
    assert make_plan(name="x").validation and make_plan(name="x", validate=False).validation == []


def test_probe_flops_counts_the_output_layer() -> None:
    small, large = (make_plan(name="x", widths=[32], lrs=3, vocab_size=v).probes[0] for v in (512, 50_257))
    # the body is the same; a 50K vocabulary's logits are ~98% of a d=32 probe's FLOPs (issue 19)
    assert probe_flops(large) > 20 * probe_flops(small)


def test_cli_calibrate_budget_too_small_exits_2_before_any_probe(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["calibrate", "--budget", "1e6", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("Error: --budget='1e6' is not valid: at least ~") and "\n" not in line
    assert not (out / "probes.jsonl").exists() and not (out / "plan.json").exists()


def test_cli_calibrate_50k_vocabulary_six_minutes_fits_or_refuses(tmp_path: Path) -> None:
    """The issue's case: 50,257 ids and --budget '6m wall' either plans within 6 min × 1.2 or refuses (exit 2)."""
    rng = np.random.default_rng(0)
    tokens = tmp_path / "train.bin"
    rng.integers(0, 50_257, size=400_000).astype(np.uint16).tofile(tokens)
    home = tmp_path / "lrpredict-home"
    out = tmp_path / "run"
    args = ["calibrate", "--dry-run", "--data", str(tokens), "--vocab-size", "50257", "--workers", "1"]
    clock = Clock("cpu", threads=_cpu_count())
    assert clock.cache_path.is_relative_to(home)
    # a step's cost depends on the data's kind, not its path (clock._shape_key): this cache prices the CLI's probes
    _seed_clock(clock.cache_path, clock.name, DataSpec(kind="bin", path=str(tokens)), 50_257)
    result = CliRunner().invoke(cli, [*args, "--budget", "6m wall", "--out", str(out)])
    if result.exit_code == 2:
        assert result.output.startswith("Error: --budget='6m wall' is not valid: at least ~"), result.output
        return
    assert result.exit_code == 0, result.output
    total = next(line for line in result.output.splitlines() if line.startswith("calibration plan"))
    assert "wall time on 1 worker in all" in total
    assert "validation: held-out" in result.output and "extension reserve" in result.output
    assert "runs as shown" not in result.output


def _cell(lrs: list[float], losses: list[float | None], tokens: float, n: float) -> Cell:
    cell = Cell(n, tokens, 1024.0, list(lrs), list(losses))
    cell.fit = fit_parabola(lrs, losses)
    return cell


def test_extend_moves_toward_lower_lr_when_the_best_is_second_of_the_grid() -> None:
    """Issue 19: best LR 2nd of the grid, no convex parabola around it: the grid grew *upward*; it must grow down."""
    plan = make_plan(name="x", widths=[32], lrs=5, validate=False)
    lrs = sorted(p.lr for p in plan.probes)
    n = law_n(plan.probes[0].arch)
    # best LR 2nd, no convex parabola in the fit's window around it (the windowed Eq.2 fit brackets the issue's own
    # [3.0, 2.95, 3.3, 3.2, 3.5], so a noisier curve keeps this the case of the bug)
    cells = [_cell(lrs, [2.96, 2.95, 3.3, 2.97, 3.5], h, n) for h in plan.probes[0].horizons]
    assert not cells[0].fit.bracketed and cells[0].fit.edge is None  # the case of the bug
    assert falling_side(cells) == "low"
    new = extend(plan, CalibrationFit(cells, None, None, [], {}))
    assert sorted(p.lr for p in new) == pytest.approx([lrs[0] / 4, lrs[0] / 2])


def test_fit_warning_does_not_call_an_interior_best_lr_the_grid_edge() -> None:
    plan = make_plan(name="x", widths=[32], lrs=5, validate=False)
    from lrpredict.calibrate.fit import Observation

    lrs = sorted(p.lr for p in plan.probes)
    obs = [
        Observation(1e5, h, lr, loss, 1024.0)
        for h in (65536.0, 131072.0, 262144.0)
        for lr, loss in zip(lrs, [2.96, 2.95, 3.3, 2.97, 3.5], strict=True)  # unbracketed by the windowed fit too
    ]
    warnings = [w for w in fit_calibration(obs, prior=None).warnings if "unbracketed" in w]
    assert warnings and all("grid's edge" not in w and "inside the grid" in w for w in warnings)


def test_extend_stops_at_divergence() -> None:
    """The best finite LR is the top one, but the LRs above it diverged: the bowl is closed there, no extension."""
    plan = make_plan(name="x", widths=[32], lrs=5, validate=False)
    lrs = sorted(p.lr for p in plan.probes)
    n = law_n(plan.probes[0].arch)
    cells = [_cell(lrs, [3.5, 3.3, 3.1, None, None], h, n) for h in plan.probes[0].horizons]
    assert cells[0].fit.edge == "high"
    assert extend(plan, CalibrationFit(cells, None, None, [], {})) == []


def _results(plan, seconds: float) -> list[ProbeResult]:
    return [ProbeResult(probe_id=p.probe_id, spec=p, status="ok", wall_time_s=seconds) for p in plan.probes]


def test_affordable_extension_skips_what_would_pass_the_budget_and_counts_resumed_probes(tmp_path: Path) -> None:
    cache = tmp_path / "clock.json"
    clock = Clock("cpu", threads=1, cache=cache)
    _seed_clock(cache, clock.name, DataSpec(n_tokens=2**21, eval_tokens=2**15), 512)
    budget = parse_budget_spec("20min wall")
    plan = make_plan(name="x", budget=budget, clock=clock, workers=1)
    more = [p.model_copy(update={"lr": p.lr * 64}) for p in plan.probes[:2]]
    on_time = _results(plan, plan.estimates[plan.probes[0].probe_id])
    kept, lines = affordable_extension(plan, on_time, more)
    assert kept == more and lines == []
    # the same probes (e.g. from a session before a --resume, in the ledger) ran slowly: spent is near the limit
    slow = [r.model_copy(update={"wall_time_s": BUDGET_SLACK * budget.value / len(on_time)}) for r in on_time]
    kept, lines = affordable_extension(plan, slow, more)
    assert kept == [] and len(lines) == 1 and "skipped" in lines[0] and "1.2× the budget" in lines[0]


def test_clock_measures_again_a_timing_taken_at_another_load(tmp_path: Path) -> None:
    from lrpredict.calibrate.clock import LOAD_OFF, contention

    clock = Clock("cpu", threads=1, cache=tmp_path / "clock.json")
    now = contention()
    assert clock._same_load(now) and clock._same_load(None)  # timings from before loads were recorded still hold
    assert not clock._same_load(now * LOAD_OFF * 2)  # taken on a machine twice as busy again: measured anew
    assert clock.peak_flops() > 1e6


def test_progress_eta_counts_the_validation_cell_at_the_measured_pace() -> None:
    from lrpredict.calibrate.run import Progress

    plan = make_plan(name="x", widths=[32], lrs=3, validate=False)
    a, b = plan.probes[:2]
    lines: list[str] = []
    progress = Progress(
        3, lines.append, estimates={a.probe_id: 10.0, b.probe_id: 10.0}, remaining=[a.probe_id, b.probe_id], after_s=30
    )
    progress(ProbeResult(probe_id=a.probe_id, spec=a, status="ok", wall_time_s=20.0))
    assert "ETA 80s" in lines[0]  # 2× slower than estimated: (10 s left + 30 s validation) × 2


def test_cli_calibrate_target_plan_under_a_wall_budget_fits_it(tmp_path: Path) -> None:
    """Issue 19: with '15m wall' the target plan chose widths [32, 48] at ~17 min ('it runs as shown') while a [48]
    plan at ~6 min fitted: candidates were priced by non-embedding FLOPs, then timed.  Now each is timed whole."""
    import re

    data = DataSpec(n_tokens=2**21, eval_tokens=2**15)
    clock = Clock("cpu", threads=_cpu_count())
    _seed_clock(clock.cache_path, clock.name, data, 512)
    entries = json.loads(clock.cache_path.read_text())
    for key, entry in entries["devices"][clock.name].items():  # d=32 timed under load: slow, as in the issue
        if json.loads(key)["arch"]["d_model"] == 32:
            entry["step_s"] *= 40
    clock.cache_path.write_text(json.dumps(entries))
    args = ["calibrate", "--dry-run", "--budget", "15m wall", "--workers", "1", "--target-params", "7B"]
    result = CliRunner().invoke(cli, [*args, "--target-tokens", "2T", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    found = re.search(r"~([0-9.]+)(min|s) wall time", first)
    minutes = float(found[1]) / (60 if found[2] == "s" else 1)
    assert minutes <= 15 and "runs as shown" not in result.output, result.output
    assert "no target-aware plan fits" not in result.output and "chosen  widths [48" in result.output


def test_affordable_validation_says_why_it_is_skipped_past_the_budget(tmp_path: Path) -> None:
    from lrpredict.calibrate.planner import affordable_validation

    cache = tmp_path / "clock.json"
    clock = Clock("cpu", threads=1, cache=cache)
    _seed_clock(cache, clock.name, DataSpec(n_tokens=2**21, eval_tokens=2**15), 512)
    budget = parse_budget_spec("20min wall")
    plan = make_plan(name="x", budget=budget, clock=clock, workers=1)
    assert affordable_validation(plan, _results(plan, plan.estimates[plan.probes[0].probe_id])) is None
    line = affordable_validation(plan, _results(plan, BUDGET_SLACK * budget.value / len(plan.probes)))
    assert line is not None and line.startswith("validation skipped") and "1.2× the budget" in line
