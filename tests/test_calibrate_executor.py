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

from lrpredict.architecture import Architecture
from lrpredict.calibrate.executor import LocalExecutor, run_probes
from lrpredict.calibrate.ledger import Ledger
from lrpredict.calibrate.spec import DataSpec, ProbeSpec

STEP_TOKENS = 8 * 64
DATA = DataSpec(n_tokens=1 << 18, eval_tokens=1 << 13)


def grid(widths=(32, 64), lrs=(1e-3, 3e-3, 1e-2), steps=(60, 120)) -> list[ProbeSpec]:
    return [
        ProbeSpec(
            arch=Architecture(d_model=d, n_layers=2, d_ffn=2 * d, n_heads=2, vocab_size=256),
            lr=lr,
            horizons=tuple(s * STEP_TOKENS for s in steps),
            batch_size=8,
            seq_len=64,
            warmup_steps=10,
            eval_batches=2,
            data=DATA,
        )
        for d in widths
        for lr in lrs
    ]


def test_run_probes_grid_on_two_cpu_workers_fills_the_ledger(tmp_path: Path) -> None:
    specs = grid()
    seen = []
    results = run_probes(specs, tmp_path, LocalExecutor(cpu_workers=2, threads_per_worker=1), on_result=seen.append)
    assert [r.probe_id for r in results] == [s.probe_id for s in specs]
    assert len(seen) == 6 and len(Ledger(tmp_path).records()) == 6
    assert all(r.status == "ok" for r in results)
    for r in results:
        short, long = (b.eval_loss for b in r.branches)
        assert long < short  # more tokens, lower held-out loss
        assert r.data_fingerprint == results[0].data_fingerprint
    for width in (32, 64):
        losses = [r.branches[-1].eval_loss for r in results if r.spec.arch.d_model == width]
        assert min(abs(a - b) for i, a in enumerate(losses) for b in losses[i + 1 :]) > 1e-3  # the LR matters
    assert len({r.device for r in results}) == 1 and results[0].device == "cpu (1 threads)"
    # a second call finds everything in the ledger and starts no worker
    again = run_probes(specs, tmp_path, executor=None)
    assert again == results and len(Ledger(tmp_path).records()) == 6


def test_local_executor_replaces_a_dead_worker_and_records_its_probe_as_failed(tmp_path: Path) -> None:
    long, short = grid(widths=(32,), lrs=(1e-3,), steps=(5000,))[0], grid(widths=(32,), lrs=(2e-3,), steps=(20,))[0]
    executor = LocalExecutor(["cpu"], threads_per_worker=1)

    def kill_worker() -> None:
        while not executor.worker_pids():
            time.sleep(0.05)
        time.sleep(2.0)  # let it get into the long probe
        os.kill(executor.worker_pids()[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_worker)
    killer.start()
    results = run_probes([long, short], tmp_path, executor)
    killer.join()
    assert [r.status for r in results] == ["failed", "ok"]
    assert "worker process died" in results[0].error
    assert Ledger(tmp_path).finished_ids(include_failed=False) == {short.probe_id}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


SCRIPT = """
import sys
from lrpredict.calibrate.executor import LocalExecutor, run_probes
from lrpredict.calibrate.spec import ProbeSpec

if __name__ == "__main__":
    specs = [ProbeSpec.model_validate_json(line) for line in open(sys.argv[2])]
    run_probes(specs, sys.argv[1], LocalExecutor(cpu_workers=2, threads_per_worker=1))
"""


def test_run_probes_survives_sigkill_and_resumes_without_rerunning(tmp_path: Path) -> None:
    out = tmp_path / "out"
    specs = grid(lrs=(1e-3, 3e-3, 1e-2), steps=(40, 80))
    (tmp_path / "specs.jsonl").write_text("".join(s.model_dump_json() + "\n" for s in specs))
    (tmp_path / "grid.py").write_text(textwrap.dedent(SCRIPT))
    cmd = [sys.executable, str(tmp_path / "grid.py"), str(out), str(tmp_path / "specs.jsonl")]
    ledger = Ledger(out)

    first = subprocess.Popen(cmd)
    deadline = time.time() + 120
    while not ledger.records() and time.time() < deadline and first.poll() is None:
        time.sleep(0.1)
    workers = _children(first.pid)
    assert len(workers) >= 2 or not Path("/proc/self/task").exists()
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.time()
    before = ledger.path.read_bytes()
    n_before = before.count(b"\n")
    assert 1 <= n_before < len(specs), "the kill should land mid-grid"
    deadline = time.time() + 15  # orphaned workers exit at once (PDEATHSIG), or when their watcher next runs
    while [pid for pid in workers if _alive(pid)] and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived their killed parent"
    assert ledger.path.read_bytes() == before  # nothing more was written
    with ledger.path.open("a") as f:
        f.write('{"probe_id": "torn-by-a-kill", "spec": {')  # a half-written line, as a kill mid-append leaves

    subprocess.run(cmd, check=True, timeout=300)
    records = ledger.records()
    ids = [r["probe_id"] for r in records]
    assert sorted(ids) == sorted(s.probe_id for s in specs)  # every probe exactly once
    assert ledger.path.read_bytes().startswith(before)  # finished probes kept as they were, none re-run
    assert all(r["finished_at"] > killed_at for r in records[n_before:])
    assert all(r["status"] == "ok" for r in records)
    assert "torn-by-a-kill" not in ledger.path.read_text()
    assert all(json.loads(line) for line in ledger.path.read_text().splitlines())
