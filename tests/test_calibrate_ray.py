# ruff: noqa: E402  (imports follow the importorskip guards)
"""The Ray backend against a real local Ray cluster (ray.init with fixed resources: 2 CPUs, 2 workers)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from lrpredict.architecture import Architecture
from lrpredict.calibrate.executor import run_probes
from lrpredict.calibrate.fit import fit_calibration
from lrpredict.calibrate.ledger import Ledger
from lrpredict.calibrate.planner import CalibrationPlan, probe_flops
from lrpredict.calibrate.ray_executor import RayExecutor
from lrpredict.calibrate.run import calibrate_torch, load_plan, observations_from_results
from lrpredict.calibrate.spec import DataSpec, ProbeSpec
from lrpredict.registry import load_law

DATA = DataSpec(n_tokens=1 << 17, eval_tokens=1 << 12)


def plan(name: str) -> CalibrationPlan:
    probes = specs(steps=(100, 200), lrs=tuple(1e-3 * 2**k for k in range(5)))
    return CalibrationPlan(
        name=name, arch="dense", device="cpu", probes=probes, flops=sum(map(probe_flops, probes)), centre_law="x"
    )


def specs(steps=(40, 80), lrs=(2e-3, 8e-3, 3.2e-2), widths=(16, 32)) -> list[ProbeSpec]:
    return [
        ProbeSpec(
            arch=Architecture(d_model=d, n_layers=1, d_ffn=2 * d, n_heads=2, vocab_size=128),
            lr=lr,
            horizons=tuple(s * 256 for s in steps),
            batch_size=4,
            seq_len=64,
            warmup_steps=4,
            eval_batches=1,
            data=DATA,
        )
        for d in widths
        for lr in lrs
    ]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir="/tmp/ray-lrpredict-tests")
    yield
    ray.shutdown()


def _probe_worker_pids() -> list[int]:
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "ray::_ray_run_probe" in cmdline:
            pids.append(proc.info["pid"])
    return pids


def test_ray_executor_runs_a_calibration_grid(cluster, tmp_path: Path) -> None:
    results = run_probes(specs(), tmp_path, RayExecutor())
    assert len(results) == 6 and all(r.status == "ok" for r in results)
    assert len(Ledger(tmp_path).records()) == 6
    fit = fit_calibration(observations_from_results(results), bootstrap=50)
    assert len(fit.cells) == 4  # 2 widths × 2 horizons


def test_ray_calibration_survives_a_killed_worker_and_writes_a_law(cluster, tmp_path: Path) -> None:
    """Issue 7's acceptance: a small calibration through Ray, one worker SIGKILLed mid-probe, complete ledger, law."""
    killed: list[int] = []

    def assassin() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = _probe_worker_pids()
            if pids:
                time.sleep(0.5)  # let it get into training
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    thread = threading.Thread(target=assassin, daemon=True)
    thread.start()
    calibration = plan("ray-test")
    outcome = calibrate_torch(calibration, tmp_path, executor=RayExecutor(max_retries=3), write=lambda _: None)
    thread.join(timeout=5)
    assert killed, "no probe worker was seen to kill"
    records = Ledger(tmp_path).records()
    assert len(records) == len(load_plan(tmp_path).probes) == len({r["probe_id"] for r in records})
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    assert outcome.law is not None and load_law("ray-test").lr.exponents["N"].value != 0


DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import ray
    sys.path.insert(0, {tests!r})
    from test_calibrate_ray import plan
    from lrpredict.calibrate.ray_executor import RayExecutor
    from lrpredict.calibrate.run import calibrate_torch
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir={temp!r})
    calibrate_torch(plan("ray-driver"), Path({out!r}), executor=RayExecutor(), write=print)
    """
)


def test_ray_calibration_resumes_after_the_driver_is_killed(cluster, tmp_path: Path) -> None:
    out, temp = tmp_path / "cal", f"/tmp/ray-driver-{os.getpid()}"
    script = DRIVER.format(tests=str(Path(__file__).parent), temp=temp, out=str(out))
    driver = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, env={**os.environ})
    ledger = Ledger(out)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None and len(ledger.records()) < 2:
        time.sleep(0.2)
    assert driver.poll() is None, "the driver ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    for proc in psutil.process_iter(["pid", "cmdline"]):  # the killed driver's own Ray processes
        if temp in " ".join(proc.info["cmdline"] or []):
            proc.kill()
    before = [r["probe_id"] for r in ledger.records()]
    assert 2 <= len(before) < len(plan("x").probes)

    outcome = calibrate_torch(load_plan(out), out, executor=RayExecutor(), write=lambda _: None)
    after = [r["probe_id"] for r in ledger.records()]
    assert after[: len(before)] == before and len(after) == len(set(after)) == len(load_plan(out).probes)
    assert outcome.law is not None
    assert json.loads((out / "fit.json").read_text())["law"] == "ray-driver"
