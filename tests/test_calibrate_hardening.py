# ruff: noqa: E402  (imports follow the importorskip guards)
"""Issue 15 (calibration folders, options checked at parse time) and issue 12 (device truth, an honest clock,
failure that says so): each reproducer of the issues is a test here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")

from click.testing import CliRunner
from tiny_probes import DATA, tiny

from lrpredict.calibrate.clock import Clock, Timing, total_wall_seconds
from lrpredict.calibrate.executor import SerialExecutor, failed_result, run_probes
from lrpredict.calibrate.ledger import WORKER_DIED, Ledger
from lrpredict.calibrate.lock import LOCK_NAME, folder_lock
from lrpredict.calibrate.planner import (
    MAX_EXTENSIONS,
    Budget,
    CalibrationPlan,
    extend,
    make_plan,
    parse_budget_spec,
    probe_flops,
)
from lrpredict.calibrate.run import CalibrationFailed, calibrate_torch, load_plan, save_plan
from lrpredict.calibrate.spec import DataSpec
from lrpredict.cli import cli
from lrpredict.errors import LrpredictError


def tiny_plan(name: str, lrs=(1e-3, 4e-3, 1.6e-2), data: DataSpec = DATA, device: str = "cpu") -> CalibrationPlan:
    probes = [tiny(lr, data) for lr in lrs]
    return CalibrationPlan(
        name=name, arch="dense", device=device, probes=probes, flops=sum(map(probe_flops, probes)), centre_law="x"
    )


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--sizes", "abc"], "--sizes"),
        (["--sizes", "0"], "--sizes"),
        (["--sizes", "-64"], "--sizes"),
        (["--sizes", "64.5"], "--sizes"),
        (["--sizes", "64,,128"], "--sizes"),
        (["--sizes", "50"], "--sizes"),  # 3 heads of 16.7: the probe model cannot be built
        (["--lrs", "1"], "--lrs"),
        (["--lrs", "100000"], "--lrs"),
        (["--workers", "-1"], "--workers"),
        (["--workers", "0"], "--workers"),
        (["--device", "gpu"], "--device"),
        (["--budget", "lots"], "--budget"),
        (["--budget", "8 gpus"], "--budget"),
        (["--budget", "nan"], "--budget"),
        (["--noise", "0.1"], "--replay"),  # ignored without --replay
        (["--batches", "0"], "--replay"),
        (["--max-tokens", "1"], "--replay"),
        (["--address", "auto"], "--backend ray"),
        (["--out", "/proc/lrpredict-x"], "/proc"),
        (["--name", "/some/dir/pyproject"], "--name"),
        (["--name", "../../escaped"], "--name"),
        (["--name", "steplaw-2025"], "bundled"),
    ],
)
def test_calibrate_cli_bad_option_is_one_line_exit_2_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], names: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["calibrate", *args])
    line = _one_line_error(result)
    assert names in line
    assert list(tmp_path.iterdir()) == []  # no folder, no file: nothing ran


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--noise", "-1"], "--noise"),
        (["--noise", "nan"], "--noise"),
        (["--batches", "0"], "--batches"),
        (["--device", "cpu"], "--device"),  # ignored by a replay
        (["--dry-run"], "--dry-run"),
    ],
)
def test_calibrate_cli_bad_replay_option_is_one_line_exit_2(tmp_path: Path, args: list[str], names: str) -> None:
    csv = tmp_path / "sweep.csv"
    csv.write_text("N,D,lr,final_loss\n")
    result = CliRunner().invoke(cli, ["calibrate", "--replay", str(csv), "--out", str(tmp_path / "o"), *args])
    assert names in _one_line_error(result)
    assert not (tmp_path / "o").exists()


def test_calibrate_cli_out_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--out", str(tmp_path / "file" / "cal")])
    assert "is a file" in _one_line_error(result)


def test_calibrate_cli_name_never_writes_outside_out(tmp_path: Path) -> None:
    victim = tmp_path / "pyproject.toml"
    victim.write_text("keep me")
    out = tmp_path / "cal"
    result = CliRunner().invoke(cli, ["calibrate", "--out", str(out), "--name", str(tmp_path / "pyproject")])
    assert "--name" in _one_line_error(result)
    assert victim.read_text() == "keep me" and not out.exists()


def test_calibrate_cli_device_cuda_without_cuda_is_one_line_exit_2(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error is for machines without it")
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--device", "cuda", "--out", str(tmp_path / "o")])
    assert "no CUDA" in _one_line_error(result)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_calibrate_device_auto_picks_cuda_and_one_worker_per_gpu() -> None:
    from lrpredict.cli.calibrate import _resolve_device, _worker_devices

    device, count = _resolve_device("auto")
    assert device == "cuda" and count == torch.cuda.device_count()
    assert _worker_devices({"workers": None}, device) == [f"cuda:{i}" for i in range(count)]


def test_calibrate_resume_refuses_conflicting_name_device_and_plan_options(tmp_path: Path) -> None:
    save_plan(tiny_plan("team-a", device="cuda"), tmp_path)
    runner = CliRunner()
    base = ["calibrate", "--resume", str(tmp_path)]
    assert "'team-a'" in _one_line_error(runner.invoke(cli, [*base, "--name", "team-b"]))
    assert "--device" in _one_line_error(runner.invoke(cli, [*base, "--device", "cpu"]))
    assert "--sizes" in _one_line_error(runner.invoke(cli, [*base, "--sizes", "32"]))
    assert "--out" in _one_line_error(runner.invoke(cli, [*base, "--out", str(tmp_path / "elsewhere")]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "plan.json"]  # nothing ran or was added


def test_calibrate_resume_with_a_non_probe_ledger_line_fails_before_any_probe(tmp_path: Path) -> None:
    plan = tiny_plan("ledger-check")
    save_plan(plan, tmp_path)
    ledger = Ledger(tmp_path)
    ledger.append(failed_result(plan.probes[0], "ValueError: kept"))
    with ledger.path.open("a") as f:
        f.write('{"hello": "valid JSON, not a probe"}\n')
    before = ledger.path.read_bytes()
    result = CliRunner().invoke(cli, ["calibrate", "--resume", str(tmp_path), "--workers", "1"])
    assert "probes.jsonl:2" in _one_line_error(result)
    assert ledger.path.read_bytes() == before


def test_run_probes_reruns_a_probe_whose_worker_died_and_keeps_its_own_failures(tmp_path: Path) -> None:
    died, broken, fine = tiny(1e-3), tiny(2e-3), tiny(4e-3)
    ledger = Ledger(tmp_path)
    ledger.append(failed_result(died, f"{WORKER_DIED} (exit code -9)"))
    ledger.append(failed_result(broken, "ValueError: the probe's own error"))
    assert ledger.finished_ids() == {broken.probe_id}
    results = run_probes([died, broken, fine], tmp_path, SerialExecutor())
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert [r["probe_id"] for r in ledger.records()][2:] == [died.probe_id, fine.probe_id]  # broken not rerun


def test_calibrate_torch_resumed_finished_run_adds_no_probe(tmp_path: Path) -> None:
    plan = tiny_plan("finished-run", lrs=tuple(1e-3 * 2**k for k in range(5)))
    calibrate_torch(plan, tmp_path, executor=SerialExecutor(), write=lambda _: None)
    done = load_plan(tmp_path)
    lines = Ledger(tmp_path).path.read_bytes()
    assert done.finished and done.extensions <= MAX_EXTENSIONS
    outcome = calibrate_torch(done, tmp_path, executor=SerialExecutor(), write=lambda _: None, replace_law=True)
    again = load_plan(tmp_path)
    assert len(again.probes) == len(done.probes) == outcome.probes
    assert Ledger(tmp_path).path.read_bytes() == lines  # no probe ran
    assert extend(done.model_copy(update={"finished": False, "extensions": MAX_EXTENSIONS}), outcome.fit) == []


def test_calibrate_torch_all_probes_failed_raises_with_the_first_reason(tmp_path: Path) -> None:
    missing = DataSpec(kind="npy", path=str(tmp_path / "missing.npy"), eval_tokens=64)
    with pytest.raises(CalibrationFailed, match=r"all 3 probes failed; first reason: \w+"):
        calibrate_torch(tiny_plan("all-fail", data=missing), tmp_path / "o", executor=SerialExecutor(), write=print)
    assert not (tmp_path / "o" / "fit.json").exists()


def test_calibrate_cli_all_probes_failed_exits_1_with_the_reason(tmp_path: Path) -> None:
    missing = DataSpec(kind="npy", path=str(tmp_path / "missing.npy"), eval_tokens=64)
    save_plan(tiny_plan("cli-all-fail", data=missing), tmp_path / "o")
    result = CliRunner().invoke(cli, ["calibrate", "--resume", str(tmp_path / "o"), "--workers", "1"])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: all 3 probes failed; first reason: ") and "missing.npy" in last
    assert "Traceback" not in result.output


def test_folder_lock_refuses_a_second_process_with_the_holders_pid(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom lrpredict.calibrate.lock import folder_lock\n"
        "try:\n    with folder_lock(sys.argv[1]): pass\nexcept ValueError as e:\n    print(e); sys.exit(2)\n"
    )
    with folder_lock(tmp_path), folder_lock(tmp_path):  # re-entrant in one process
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
        assert other.returncode == 2 and f"PID {os.getpid()} holds its lock" in other.stdout
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)]).returncode == 0  # released
    assert (tmp_path / LOCK_NAME).exists()


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that have not exited (Linux /proc; empty elsewhere)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, …
            live.append(int(stat.parent.name))
    return live


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    assert predicate(), "timed out"


@pytest.mark.slow
def test_calibrate_cli_second_run_in_the_same_folder_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    """Issue 15's acceptance: two real calibrations on one --out; the second is refused at once, with the PID."""
    out = tmp_path / "cal"
    env = {**os.environ, "LRPREDICT_HOME": str(tmp_path / "home")}
    lrpredict = [sys.executable, "-m", "lrpredict", "calibrate"]
    first = subprocess.Popen(
        [*lrpredict, "--name", "lock-a", "--workers", "1", "--sizes", "32", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: (out / "plan.json").exists(), 120, first)
        for args in (["--name", "lock-b", "--out", str(out)], ["--resume", str(out)]):
            started = time.monotonic()
            second = subprocess.run([*lrpredict, *args], env=env, capture_output=True, text=True, timeout=120)
            assert second.returncode == 2, second.stderr
            assert f"PID {first.pid} holds its lock" in second.stderr and "Traceback" not in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
            assert time.monotonic() - started < 60  # refused at once, not after probes
        assert first.poll() is None
        assert len(Ledger(out).records()) <= len(load_plan(out).probes)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with folder_lock(out):  # the kernel released the dead holder's lock
        pass


@pytest.mark.slow
def test_calibrate_cli_ctrl_c_stops_cleanly_keeps_probes_and_prints_the_resume_command(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    quick = tiny(1e-3)
    slow = [tiny(lr).model_copy(update={"horizons": (1000 * 128, 3000 * 128)}) for lr in (2e-3, 4e-3)]
    plan = tiny_plan("sigint")
    save_plan(plan.model_copy(update={"probes": [quick, *slow]}), out)
    env = {**os.environ, "LRPREDICT_HOME": str(tmp_path / "home")}
    run = subprocess.Popen(
        [sys.executable, "-m", "lrpredict", "calibrate", "--resume", str(out), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: Ledger(out).path.exists() and len(Ledger(out).records()) >= 1, 300, run)
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        _, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, stderr[-2000:]
    # no worker outlived it (exited ones may wait as zombies for a reaper); multiprocessing's resource tracker
    # exits when it reads EOF from the dead parent, which on a loaded machine can take a moment
    deadline = time.monotonic() + 15
    while _live_members(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _live_members(run.pid) == []
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert f"continue with: lrpredict calibrate --resume {out} --workers 1" in stderr
    kept = Ledger(out).records()
    assert [r["probe_id"] for r in kept] == [quick.probe_id]  # the interrupted probe left no record
    assert kept[0]["status"] == "ok"
    assert not [line for line in Ledger(out).path.read_text().splitlines() if not json.loads(line)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("1e18", "flops", 1e18),
        ("1e18 FLOPs", "flops", 1e18),
        ("8h", "device_s", 8 * 3600),
        ("8 GPU-hours", "device_s", 8 * 3600),
        ("0.5gpu-h", "device_s", 1800),
        ("90min", "device_s", 5400),
        ("2h wall", "wall_s", 7200),
        ("30min-wall", "wall_s", 1800),
    ],
)
def test_parse_budget_spec_reads_flops_device_time_and_wall_time(text: str, kind: str, value: float) -> None:
    assert parse_budget_spec(text) == Budget(kind, value)


@pytest.mark.parametrize("text", ["lots", "-1", "0", "nan", "5 wall", "8 gpus", "2h flops", "1e400"])
def test_parse_budget_spec_refuses_anything_else(text: str) -> None:
    with pytest.raises(LrpredictError, match="budget="):
        parse_budget_spec(text)


def test_clock_measures_each_shape_once_then_reads_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "clock.json"
    first = Clock("cpu", threads=1, cache=cache)
    timing = first.timing(tiny(1e-3))
    assert first.measured == 1 and 0 < timing.step_s < timing.setup_s + 1 and timing.eval_s > 0
    assert first.timing(tiny(2e-3)) == timing and first.measured == 1  # the LR does not change a step's cost
    second = Clock("cpu", threads=1, cache=cache)
    assert second.timing(tiny(1e-3)) == timing and second.measured == 0
    assert second.probe_seconds(tiny(1e-3)) == pytest.approx(timing.setup_s + 18 * timing.step_s + 2 * timing.eval_s)


def test_total_wall_seconds_schedules_probes_on_the_first_free_worker() -> None:
    assert total_wall_seconds([4, 1, 1, 1, 1], 2) == 4 and total_wall_seconds([1, 1, 1], 1) == 3


def _seed_clock(cache: Path, device_name: str, step_s: float) -> None:
    """A clock cache as a previous measurement leaves it: every CPU ladder width costs ``step_s`` per step·width."""
    from lrpredict.calibrate.clock import CACHE_VERSION, _shape_key
    from lrpredict.calibrate.planner import CPU_LADDER, VALIDATION_BEYOND

    entries = {}
    for width in (*CPU_LADDER, *VALIDATION_BEYOND[True]):  # the validation cell may be wider than the ladder
        spec = make_plan(name="x", widths=[width], lrs=3).probes[0]
        entries[_shape_key(spec)] = {"setup_s": 1.0, "step_s": step_s * width / 32, "eval_s": 0.1}
    cache.write_text(json.dumps({"version": CACHE_VERSION, "devices": {device_name: entries}}))


def test_make_plan_time_budget_picks_the_largest_ladder_its_clock_fits(tmp_path: Path) -> None:
    cache = tmp_path / "clock.json"
    clock = Clock("cpu", threads=1, cache=cache)
    _seed_clock(cache, clock.name, step_s=0.01)
    small = make_plan(name="x", budget=parse_budget_spec("50s wall"), clock=clock, workers=2)
    large = make_plan(name="x", budget=parse_budget_spec("20min wall"), clock=clock, workers=2)
    assert clock.measured == 0  # everything came from the cache
    widths = [[a.d_model for a in p.sizes()] for p in (small, large)]
    assert widths[1][-1] > widths[0][-1] and len(widths[1]) == 3
    for plan, budget in ((small, 50), (large, 1200)):
        # issue 19: the estimate covers the fit probes, the extension reserve and the validation cell
        assert set(plan.estimates) == {p.probe_id for p in plan.probes + plan.reserve + plan.validation}
        assert plan.estimated_wall_s() <= budget
    fit = total_wall_seconds([small.estimates[p.probe_id] for p in small.probes], 2)
    assert small.estimated_parts()["fit probes"] == fit < small.estimated_wall_s()


def test_make_plan_gpu_default_is_sized_to_an_hour_not_the_largest_ladder(tmp_path: Path) -> None:
    """Issue 12: --device cuda with no budget planned 2.1e21 FLOPs (~1,700 H100-hours)."""
    from lrpredict.calibrate.clock import _shape_key
    from lrpredict.calibrate.planner import DEFAULT_GPU_WALL_S, GPU_WIDTHS, VALIDATION_BEYOND

    cache = tmp_path / "clock.json"
    clock = Clock("cpu", threads=1, cache=cache)  # a GPU's timings, as a measurement on one would cache them
    entries = {}
    # the validation cell (issue 19) may be wider than the ladder: those shapes are cached too, or this CPU clock
    # would time a 4096-wide GPU shape
    for width in (*GPU_WIDTHS, *VALIDATION_BEYOND[False]):
        spec = make_plan(name="x", device="cuda", widths=[width], lrs=3, validate=False).probes[0]
        step = 1e-3 * (width / 256) ** 3  # steps cost more with width
        entries[_shape_key(spec)] = {"setup_s": 5.0, "step_s": step, "eval_s": 10 * step}
    cache.write_text(json.dumps({"version": 1, "devices": {clock.name: entries}}))
    plan = make_plan(name="x", device="cuda", clock=clock, workers=1)
    assert clock.measured == 0
    assert 0 < plan.estimated_wall_s() <= DEFAULT_GPU_WALL_S
    assert [a.d_model for a in plan.sizes()] != list(GPU_WIDTHS[-3:])


def test_calibrate_cli_dry_run_prints_a_measured_wall_time(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--workers", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "wall time on 1 worker" in result.output and "per probe" in result.output
    assert "measured by a micro-benchmark on cpu" in result.output
    assert not (tmp_path / "o").exists()  # a dry run creates nothing


def test_progress_compares_actual_with_estimated_time(tmp_path: Path) -> None:
    from lrpredict.calibrate.run import Progress

    lines: list[str] = []
    specs = [tiny(1e-3), tiny(2e-3)]
    estimates = {s.probe_id: 10.0 for s in specs}
    progress = Progress(2, lines.append, estimates=estimates, remaining=[s.probe_id for s in specs])
    result = failed_result(specs[0], "boom").model_copy(update={"status": "ok", "wall_time_s": 20.0})
    progress(result)
    assert "20.0s vs est. 10.0s" in lines[0] and "ETA 20s" in lines[0]  # the other probe, at the pace so far
    assert Timing(1.0, 0.5, 0.25).probe_seconds(specs[0]) == pytest.approx(1 + 18 * 0.5 + 2 * 0.25)


def test_calibrate_resume_of_a_plan_with_an_invalid_name_asks_for_name_and_accepts_one(tmp_path: Path) -> None:
    """Issue 15: an id-pattern failure used to surface after every probe ran, and --resume then failed forever."""
    plan = tiny_plan("placeholder").model_copy(update={"name": "Bad Name"})
    (tmp_path / "plan.json").write_text(plan.model_dump_json())
    runner = CliRunner()
    assert "give --name" in _one_line_error(runner.invoke(cli, ["calibrate", "--resume", str(tmp_path)]))
    renamed = runner.invoke(cli, ["calibrate", "--resume", str(tmp_path), "--name", "good-name", "--workers", "1"])
    assert renamed.exit_code == 0, renamed.output
    assert load_plan(tmp_path).name == "good-name" and (tmp_path / "good-name.toml").is_file()


def test_worker_devices_cpu_takes_workers_and_cuda_needs_gpus() -> None:
    from lrpredict.cli.calibrate import _worker_devices

    assert _worker_devices({"workers": 3}, "cpu") == ["cpu"] * 3
    assert _worker_devices({"workers": None}, "cpu")[0] == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(LrpredictError, match="no CUDA"):
            _worker_devices({"workers": None}, "cuda")


def test_calibrate_replay_max_tokens_that_keeps_no_cell_is_an_error_not_zero_probes(tmp_path: Path) -> None:
    """Issue 15: `--max-tokens 1` planned 0 probes and exited 0."""
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "replay_sweep.csv"
    args = ["calibrate", "--replay", str(example), "--name", "none-left", "--out", str(tmp_path / "o")]
    line = _one_line_error(CliRunner().invoke(cli, [*args, "--max-tokens", "1"]))
    assert "--max-tokens" in line and "at least one recorded cell" in line
    assert not (tmp_path / "o" / "none-left.toml").exists()


def test_cpu_plan_note_names_the_shifted_centre_its_grid_uses() -> None:
    from lrpredict.calibrate.planner import CPU_CENTRE_SHIFT, law_n, make_plan
    from lrpredict.registry import load_law

    # the note once said "centred on steplaw-2025" while the CPU grid sits at a quarter of it
    plan = make_plan(name="x", widths=[32], lrs=5)
    law = load_law("steplaw-2025")
    probes = [p for p in plan.probes if p.arch.d_model == 32]
    lrs = sorted(p.lr for p in probes)
    law_lr = law.lr.evaluate({"N": law_n(probes[0].arch), "D": probes[0].horizons[1]})
    assert lrs[2] == pytest.approx(CPU_CENTRE_SHIFT * law_lr)
    assert any(f"centred on {CPU_CENTRE_SHIFT:g}× steplaw-2025's LR" in note for note in plan.notes)


@pytest.mark.parametrize("value", ["-1", "0", "1", "99999999999"])
def test_calibrate_vocab_size_out_of_range_is_one_line(value: str) -> None:
    # -1 and 1e11 were tracebacks (pydantic, numpy), 0 was silently the default 512 (docs/log.md 2026-12-01)
    from click.testing import CliRunner

    from lrpredict.cli import cli

    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--vocab-size", value])
    assert result.exit_code == 2 and result.output.strip() == (
        f"Error: --vocab-size={value} is not valid: 2 to 16,777,216 token ids"
    ), result.output


def test_calibrate_vocab_bound_matches_the_token_reader() -> None:
    from lrpredict.calibrate.token_sources import MAX_VOCAB
    from lrpredict.cli.calibrate import MAX_VOCAB as CLI_MAX_VOCAB

    assert CLI_MAX_VOCAB == MAX_VOCAB
