# ruff: noqa: E402  (imports follow the importorskip guards)
"""The Ray backend against a real local Ray cluster (ray.init with fixed resources: 2 CPUs, 2 workers)."""

import os
import signal
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
from lrpredict.calibrate.ray_executor import RayExecutor
from lrpredict.calibrate.run import observations_from_results
from lrpredict.calibrate.spec import DataSpec, ProbeSpec

DATA = DataSpec(n_tokens=1 << 17, eval_tokens=1 << 12)


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


def test_ray_executor_retries_a_killed_worker(cluster, tmp_path: Path) -> None:
    killed: list[int] = []

    def assassin() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pids = _probe_worker_pids()
            if pids:
                time.sleep(0.5)  # let it get into training
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    thread = threading.Thread(target=assassin, daemon=True)
    thread.start()
    probes = specs(steps=(150, 300), widths=(32,))
    results = run_probes(probes, tmp_path, RayExecutor(max_retries=3))
    thread.join(timeout=5)
    assert killed, "no probe worker was seen to kill"
    assert [r.probe_id for r in results] == [s.probe_id for s in probes]
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert len(Ledger(tmp_path).records()) == len(probes)
