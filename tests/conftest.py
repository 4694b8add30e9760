from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_SWEEPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sweeps"
# A column slice of the same sweeps shipped with the tests (tests/data/sweeps/SOURCE.md), so a fresh clone that has
# no ../shared still runs every sweep test.
BUNDLED_SWEEPS = Path(__file__).resolve().parent / "data" / "sweeps"


def sweeps_path() -> Path:
    """The sweeps folder the tests use: $LRPREDICT_TEST_SWEEPS when set (e.g. to tests/data/sweeps, to check the
    fresh-clone path on a machine that has ../shared), else ../shared/data/sweeps when present, else the slice."""
    override = os.environ.get("LRPREDICT_TEST_SWEEPS")
    if override:
        return Path(override)
    if (SHARED_SWEEPS / "steplaw_dense.csv").is_file():
        return SHARED_SWEEPS
    return BUNDLED_SWEEPS


@pytest.fixture(autouse=True)
def _user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user registry."""
    home = tmp_path / "lrpredict-home"
    monkeypatch.setenv("LRPREDICT_HOME", str(home))
    return home


@pytest.fixture
def sweeps_dir() -> Path:
    """The Step Law sweeps (steplaw_dense.csv, steplaw_moe.csv); see sweeps_path()."""
    path = sweeps_path()
    if not (path / "steplaw_dense.csv").is_file():
        raise FileNotFoundError(f"no steplaw_dense.csv in {path} (LRPREDICT_TEST_SWEEPS or tests/data/sweeps)")
    return path


@pytest.fixture
def one_torch_thread():
    """torch on one intra-op thread for the test (tiny probes; 2-core CI runs several processes at once)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
