"""`lrpredict calibrate` end to end on CPU with the default tiny plan: killed, resumed, law installed and used.

Slow (a few minutes on 2 cores): it is the issue's acceptance run, so CI runs it.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")


def _ledger_ids(out: Path) -> list[str]:
    path = out / "probes.jsonl"
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a torn last line
            ids.append(json.loads(line)["probe_id"])
    return ids


@pytest.mark.slow
def test_cli_calibrate_cpu_survives_kill_and_writes_a_bracketed_law(tmp_path: Path) -> None:
    env = {**os.environ, "LRPREDICT_HOME": str(tmp_path / "home")}
    out = tmp_path / "cal"
    cmd = [sys.executable, "-m", "lrpredict", "calibrate", "--name", "cpu-test", "--workers", "2", "--out", str(out)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while len(_ledger_ids(out)) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    os.killpg(first.pid, signal.SIGKILL)  # the driver and its workers, mid-run
    first.wait()
    before = _ledger_ids(out)
    assert len(before) >= 3

    resumed = subprocess.run(
        [sys.executable, "-m", "lrpredict", "calibrate", "--resume", str(out), "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _ledger_ids(out)
    assert after[: len(before)] == before  # nothing lost
    assert len(after) == len(set(after))  # no finished probe ran twice
    plan = json.loads((out / "plan.json").read_text())
    # every probe of the (possibly extended) plan is in the ledger, and the held-out validation cell's (issue 19)
    assert len(after) == len(plan["probes"]) + len(plan["validation"])
    fit = json.loads((out / "fit.json").read_text())
    assert fit["law"] == "cpu-test"
    assert not [w for w in fit["warnings"] if "unbracketed" in w or "too few points" in w]
    assert "law installed: cpu-test" in resumed.stdout

    suggestion = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrpredict",
            "suggest",
            "--params",
            "100K",  # suggest refuses N < 1e5 (no real run is smaller): the top of the probes' domain
            "--tokens",
            "131072",
            "--law",
            "cpu-test",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(suggestion.stdout)
    assert data["law"] == "cpu-test" and 1e-4 < data["lr"] < 0.1
