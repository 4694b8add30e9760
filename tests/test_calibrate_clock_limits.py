"""The probe clock's limits: a shape too big for the free memory is never built (a dry run of d_model=2048 was
OOM-killed on a 24 GB machine), and a cold process does not inflate the first shape it times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lrpredict.calibrate import clock as clock_module
from lrpredict.calibrate import train
from lrpredict.calibrate.clock import Clock, estimate_memory, step_flops
from lrpredict.calibrate.ledger import LEDGER_NAME
from lrpredict.calibrate.planner import make_plan
from lrpredict.calibrate.spec import ProbeSpec


def probe(width: int) -> ProbeSpec:
    """The CPU plan's probe of ``width`` (its shape, batch and sequence length)."""
    return make_plan(name="x", widths=[width], lrs=3).probes[0]


def test_estimate_memory_of_the_d2048_cpu_probe_is_over_the_24gb_that_killed_it() -> None:
    # 1.6e9 parameters: 26 GB of weights, gradients and AdamW moments before any activation
    assert estimate_memory(probe(2048), "cpu") > 26e9
    assert estimate_memory(probe(32), "cpu") < 2**30


def test_clock_extrapolates_a_shape_too_big_for_free_memory_without_building_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = probe(256)  # 4 layers
    one_layer = big.model_copy(update={"arch": big.arch.model_copy(update={"n_layers": 1})})
    fits, too_big = estimate_memory(one_layer, "cpu"), estimate_memory(big, "cpu")
    assert fits < too_big
    free = int((fits + too_big) / 2 / clock_module.MEMORY_FRACTION)  # room for the one-layer shape only
    monkeypatch.setattr(clock_module, "available_memory", lambda device: free)
    built: list[int] = []

    class Recorded(train.ProbeRun):
        def __init__(self, spec: ProbeSpec) -> None:
            built.append(spec.arch.n_layers)
            super().__init__(spec)

    monkeypatch.setattr(train, "ProbeRun", Recorded)
    cache = tmp_path / "clock.json"
    clock = Clock("cpu", threads=1, cache=cache)
    timing = clock.timing(big)
    assert built and set(built) == {1} and clock.measured == 1  # only the one-layer shape was built
    measured = clock.timing(one_layer)
    ratio = step_flops(big) / step_flops(one_layer)
    assert timing.step_s == pytest.approx(measured.step_s * ratio) and ratio > 3
    assert timing.setup_s == pytest.approx(measured.setup_s * ratio) and measured.note == ""
    assert "extrapolated by FLOPs" in timing.note and "from d_model=256 layers=1" in timing.note
    assert "too large to time here" in timing.note and "would not fit" not in timing.note  # a probe would
    assert clock.notes == [timing.note]
    tighter = clock_module._extrapolated(measured, one_layer, big, "cpu", free=fits)
    assert "a probe of this shape (~" in tighter.note and "would not fit in memory here either" in tighter.note
    # the cache holds the measurement, not the extrapolation: with more memory the big shape is timed itself
    entries = json.loads(cache.read_text())["devices"][clock.name]
    # (issue 19: each CPU entry also records the machine's contention when it was timed, "load")
    assert len(entries) == 1 and all(set(v) - {"load"} == {"setup_s", "step_s", "eval_s"} for v in entries.values())


def test_clock_smaller_reduces_depth_then_micro_batch_or_width() -> None:
    from lrpredict.calibrate.clock import smaller

    gpu = make_plan(name="x", device="cuda", widths=[1024], lrs=3).probes[0]  # 16 layers, batch 64 × 1024
    shallow = smaller(gpu, "cuda")
    assert shallow is not None and shallow.arch.n_layers == 1 and shallow.arch.d_model == 1024
    split = smaller(shallow, "cuda")  # activations of 64 × 1024 tokens outweigh one layer's weights
    assert split is not None and split.grad_accum == 2 and split.arch == shallow.arch
    wide = probe(2048).model_copy(update={"arch": probe(2048).arch.model_copy(update={"n_layers": 1})})
    narrow = smaller(wide, "cpu")  # 16 × 64 tokens: the weights dominate, so the width halves
    assert narrow is not None and (narrow.arch.d_model, narrow.grad_accum) == (1024, 1)
    assert step_flops(narrow) < step_flops(wide) and estimate_memory(narrow, "cpu") < estimate_memory(wide, "cpu")


_FRESH = """
import json, sys
from pathlib import Path
from lrpredict.calibrate.clock import Clock
from lrpredict.calibrate.planner import make_plan
clock = Clock("cpu", threads=1, cache=Path(sys.argv[1]))
out = {}
for width in (16, 128):  # the small one first: under the old benchmark it paid the process's cold start
    spec = make_plan(name="x", widths=[width], lrs=3).probes[0]
    t = clock.timing(spec)
    out[width] = {"setup_s": t.setup_s, "step_s": t.step_s, "probe_s": clock.probe_seconds(spec)}
print(json.dumps(out))
"""


def test_clock_first_shape_in_a_fresh_process_is_not_charged_its_cold_start(tmp_path: Path) -> None:
    """In a new process the first shape timed paid ~1.5 s of one-time costs in its setup and sometimes several slow
    steps (d=32 cached at 0.196 s/step, d=48 at 0.049), which made the smaller plan look dearer."""
    done = subprocess.run(
        [sys.executable, "-c", _FRESH, str(tmp_path / "clock.json")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    t = json.loads(done.stdout.strip().splitlines()[-1])
    small, big = t["16"], t["128"]
    # a bigger shape is not cheaper (with room for a loaded machine's noise, far less than the old 4–80×)
    assert small["setup_s"] < big["setup_s"] + 0.25, t
    assert small["step_s"] < 1.5 * big["step_s"], t
    assert small["probe_s"] < big["probe_s"], t


def test_cli_calibrate_refuses_a_run_whose_probes_cannot_fit_but_plans_it_dry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real run of such a shape would be OOM-killed mid-probe; the dry run still shows the plan and says why
    from click.testing import CliRunner

    from lrpredict.cli import cli

    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(clock_module, "available_memory", lambda device: int(0.9 * estimate_memory(probe(64), "cpu")))
    args = ["calibrate", "--device", "cpu", "--sizes", "64", "--lrs", "3", "--out", str(tmp_path / "out")]
    dry = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "would not fit in memory here either" in dry.output, dry.output
    run = CliRunner().invoke(cli, [*args, "--name", "too-big"])
    assert run.exit_code == 2, run.output
    assert run.output.startswith("Error: --sizes='64' is not valid: probes that fit in memory here (d_model=64")
    assert not (tmp_path / "out" / LEDGER_NAME).exists()  # no probe ran
