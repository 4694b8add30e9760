"""The ledger of published runs: schema, validation, nearest runs and the ``lrpredict runs`` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lrpredict import ModelConfig
from lrpredict.cli import cli
from lrpredict.errors import LrpredictError
from lrpredict.runs import SANE, filter_runs, nearest_runs, parse_ledger, published_runs, read_ledger

FIXTURE = Path(__file__).parent / "data" / "runs_fixture.toml"
FIXTURE_TEXT = FIXTURE.read_text()


def test_runs_fixture_ledger_loads_every_field() -> None:
    rows = read_ledger(FIXTURE)
    assert [r.id for r in rows] == ["fixture-dense-1b", "fixture-dense-7b", "fixture-dense-70b", "fixture-moe-big"]
    seven = rows[1]
    assert (seven.params, seven.tokens, seven.batch_tokens, seven.peak_lr) == (6.5e9, 2e12, 4e6, 3e-4)
    assert (seven.final_lr, seven.weight_decay, seven.adam_beta2, seven.warmup_steps) == (3e-5, 0.1, 0.95, 2000)
    assert rows[2].weight_decay is None and rows[2].seq_len is None  # a cell the source does not give stays empty
    assert rows[3].n_active == 3.7e10 and rows[1].n_active == 6.5e9


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('id = "fixture-dense-70b"', 'id = "fixture-dense-7b"', "run.fixture-dense-7b.id"),  # duplicate id
        ("peak_lr = 1.5e-4", "peak_lr = 1.5", "run.fixture-dense-70b"),  # LR of 1.5: a unit slip
        ("params = 6.8e10", "params = 68", "run.fixture-dense-70b"),  # 68 parameters: billions typed as units
        ('status = "config"', 'status = "blog"', "run.fixture-dense-70b.status"),
        (
            'source = "test fixture, not a real run"\nstatus = "config"',
            'status = "config"',
            "run.fixture-dense-70b.source",
        ),
        ("batch_tokens = 6.0e7", "batch_tokens = 6.0e7\nlearning_rate = 1e-4", "run.fixture-moe-big.learning_rate"),
        ("peak_lr = 2.2e-4", "peak_lr = nan", "run.fixture-moe-big"),
        ("active_params = 3.7e10", "active_params = 7e11", "run.fixture-moe-big"),  # active > total
    ],
)
def test_runs_ledger_rejects_bad_rows_naming_the_row(old: str, new: str, field: str) -> None:
    assert old in FIXTURE_TEXT
    with pytest.raises(LrpredictError) as info:
        parse_ledger(FIXTURE_TEXT.replace(old, new, 1), "runs.toml")
    message = str(info.value)
    assert info.value.field == field and message.startswith("runs.toml: ") and "\n" not in message


def test_runs_nearest_ranks_by_log_params_and_tokens() -> None:
    rows = read_ledger(FIXTURE)
    near = nearest_runs(ModelConfig(params="7B", tokens="2T"), k=2, lr=6e-4, batch_tokens=4e6, runs=rows)
    assert [r.id for r in near] == ["fixture-dense-7b", "fixture-dense-70b"]
    assert near[0].distance < 0.05 < near[1].distance
    assert near[0].lr_ratio == pytest.approx(2.0) and near[0].batch_ratio == pytest.approx(1.0)
    assert near[1].weight_decay_ratio is None  # that row gives no weight decay


def test_runs_nearest_keeps_to_the_architecture() -> None:
    rows = read_ledger(FIXTURE)
    moe = ModelConfig(arch="moe", params="1B", active_params="0.3B", tokens="100B")
    assert [r.id for r in nearest_runs(moe, k=3, runs=rows)] == ["fixture-moe-big"]
    dense_far = nearest_runs(ModelConfig(params="600B", tokens="15T"), k=1, runs=rows)
    assert dense_far[0].id == "fixture-dense-70b"


def test_runs_filter_by_architecture_and_size() -> None:
    rows = read_ledger(FIXTURE)
    assert [r.id for r in filter_runs(rows, arch="dense", min_params=2e9)] == ["fixture-dense-7b", "fixture-dense-70b"]
    assert [r.id for r in filter_runs(rows, max_params=2e9)] == ["fixture-dense-1b"]
    with pytest.raises(LrpredictError):
        filter_runs(rows, min_params=1e10, max_params=1e9)


def test_runs_cli_lists_filters_and_prints_json() -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["runs", "--ledger", str(FIXTURE), "--arch", "dense", "--min-params", "2B"])
    assert text.exit_code == 0, text.output
    assert "fixture-dense-7b" in text.output and "fixture-dense-1b" not in text.output
    assert "fixture-moe-big" not in text.output and "not a measured optimum" in text.output
    out = runner.invoke(cli, ["runs", "--ledger", str(FIXTURE), "--max-params", "10B", "--json"])
    assert out.exit_code == 0
    assert [row["id"] for row in json.loads(out.output)] == ["fixture-dense-1b", "fixture-dense-7b"]


def test_runs_cli_bad_size_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(cli, ["runs", "--min-params", "lots"])
    assert result.exit_code == 2 and "--min-params" in result.output and "Traceback" not in result.output


def test_runs_module_imports_no_heavy_package() -> None:
    code = (
        "import sys, lrpredict.runs, lrpredict.cli.runs; "
        "print(sorted(m for m in ('torch','numpy','scipy','requests','matplotlib','ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runs_bundled_ledger_rows_are_cited_and_in_units() -> None:
    rows = published_runs()
    if not rows:
        pytest.skip("coefficients/published_runs.toml is not shipped yet")
    assert len(rows) >= 30
    assert {"dense", "moe"} <= {r.arch for r in rows}
    for r in rows:
        # the loader enforced the ranges; check the cells that make a row usable as an anchor
        assert len(r.source) >= 8 and any(ch.isdigit() for ch in r.source), r.id
        for name, (low, high) in SANE.items():
            value = getattr(r, name)
            assert value is None or (math.isfinite(value) and low <= value <= high), (r.id, name)
        assert r.tokens / r.n_active >= 1, r.id  # at least one token per active parameter
        assert r.batch_tokens < r.tokens / 100, r.id  # at least 100 steps
