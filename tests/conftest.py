from __future__ import annotations

from pathlib import Path

import pytest

SWEEPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sweeps"


@pytest.fixture(autouse=True)
def _user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user registry."""
    home = tmp_path / "lrpredict-home"
    monkeypatch.setenv("LRPREDICT_HOME", str(home))
    return home


@pytest.fixture
def sweeps_dir() -> Path:
    if not (SWEEPS / "steplaw_dense.csv").is_file():
        pytest.skip("../shared/data/sweeps is not present")
    return SWEEPS
