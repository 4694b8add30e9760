"""Replay CSV values that QA found accepted (exit 0, a law installed) and that must be one-line errors naming the
file, line, column and allowed range; plus the notes and size matching of the replay backend."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("scipy")

from lrpredict.calibrate.replay import ReplayBackend, read_replay_csv
from lrpredict.cli import cli
from lrpredict.errors import LrpredictError
from lrpredict.sweeps import read_runs

HEADER = "N,D,batch_tokens,lr,final_loss"
GOOD = [f"1e8,1e9,65536,{lr},{3 + (lr - 2e-3) ** 2 * 1e4}" for lr in (1e-3, 2e-3, 4e-3)]  # a bracketed optimum


def _write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "s.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _one_line_error(tmp_path: Path, path: Path) -> str:
    args = ["calibrate", "--replay", str(path), "--name", "mine", "--out", str(tmp_path / "cal")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "cal" / "mine.toml").exists()  # refused before a law was written or installed
    return lines[0]


MOE = "arch,N,N_active,D,batch_tokens,lr,final_loss"


@pytest.mark.parametrize(
    ("header", "rows", "expected"),
    [
        # 1. losses: > 0, ≤ 100 nats unless the run diverged; 0 everywhere gave exit 1 "no law written"
        (HEADER, [GOOD[0], "1e8,1e9,65536,2e-3,-3.0"], r"s\.csv:3 column final_loss'.*> 0 and ≤ 100 nats.*'-3\.0'"),
        (HEADER, [f"1e8,1e9,65536,{lr},0" for lr in (1e-3, 2e-3, 4e-3)], r"s\.csv:2 column final_loss'.*> 0"),
        (HEADER, [GOOD[0], "1e8,1e9,65536,2e-3,-inf"], r"s\.csv:3 column final_loss'"),
        (HEADER, [GOOD[0], "1e8,1e9,65536,2e-3,300"], r"s\.csv:3 column final_loss'.*diverged"),
        # 2. implausible magnitudes (report crashes, LR 3.45e+06 printed)
        (HEADER, ["1e8,1e9,65536,1e-303,3.0"], r"s\.csv:2 column lr'.*from 1e-07 to 10 .*'1e-303'"),
        (HEADER, ["1e8,1e9,65536,2e7,3.0"], r"s\.csv:2 column lr'.*from 1e-07 to 10 "),
        (HEADER, ["1e8,1e9,0.5,1e-3,3.0"], r"s\.csv:2 column batch_tokens'.*from 1 to 1e\+10 tokens per step"),
        (HEADER, ["1e8,1e308,65536,1e-3,3.0"], r"s\.csv:2 column D'.*from 1000 to 1e\+16 tokens"),
        (HEADER, ["1e20,1e9,65536,1e-3,3.0"], r"s\.csv:2 column N'.*from 1000 to 1e\+15 parameters"),
        (HEADER, ["1e8,1e9,nan,1e-3,3.0"], r"s\.csv:2 column batch_tokens'"),
        (HEADER, ["1e8,1e5,1e6,1e-3,3.0"], r"s\.csv:2 column D'.*at least batch_tokens"),
        # 3. N_active: = N (or empty) for dense, ≤ N for MoE
        ("N,N_active,D,batch_tokens,lr,final_loss", ["1e8,1e9,1e9,65536,1e-3,3.0"], r"s\.csv:2 column N_active'.*N"),
        (MOE, ["moe,1e9,2e9,1e9,65536,1e-3,3.0"], r"s\.csv:2 column N_active'.*at most N"),
        (MOE, ["moe,2e9,2e8,1e9,65536,1e-3,3.0", "moe,2.1e9,2e8,1e9,65536,2e-3,3.0"], r"s\.csv:3 column N'"),
        # 4. one architecture per file, naming the first line that differs
        (MOE, ["dense,1e8,,1e9,65536,1e-3,3.0", "moe,1e9,1e8,1e9,65536,2e-3,3.0"], r"s\.csv:3 column arch'.*line 2"),
        # 5. one run recorded twice with different losses
        (HEADER, [*GOOD, "1e8,1e9,65536,1e-3,3.5"], r"s\.csv:5 column final_loss'.*line 2 .*3\.01 .got 3\.5"),
        (HEADER, [*GOOD, "1e8,1e9,65536,1e-3,nan"], r"s\.csv:5 column final_loss'.*\(got diverged\)"),
        # 6. two columns of one name: the last one silently won
        ("N,D,batch_tokens,lr,final_loss,lr", ["1e8,1e9,65536,1e-3,3.0,1e-2"], r"s\.csv:1 column lr'.*columns 4 and 6"),
    ],
    ids=[
        "negative-loss",
        "zero-loss",
        "minus-inf-loss",
        "huge-loss",
        "tiny-lr",
        "huge-lr",
        "half-token-batch",
        "huge-D",
        "huge-N",
        "nan-batch",
        "D-below-one-batch",
        "dense-N_active",
        "moe-active-above-total",
        "moe-two-totals",
        "mixed-arch",
        "duplicate-run",
        "duplicate-diverged",
        "duplicate-column",
    ],
)
def test_cli_replay_refuses_implausible_values(tmp_path: Path, header: str, rows: list[str], expected: str) -> None:
    line = _one_line_error(tmp_path, _write(tmp_path, rows, header))
    assert re.match(r"Error: (--)?replay='", line) and re.search(expected, line), line


def test_replay_accepts_a_diverged_huge_loss_and_empty_dense_n_active(tmp_path: Path) -> None:
    header = "N,N_active,D,batch_tokens,lr,final_loss,diverged"
    rows = [f"1e8,,{r.split(',', 1)[1]},False" for r in GOOD] + ["1e8,1e8,1e9,65536,8e-3,1e4,True"]
    runs = read_replay_csv(_write(tmp_path, rows, header))
    assert [r.diverged for r in runs] == [False, False, False, True]
    assert {r.n_active for r in runs} == {1e8}


def test_replay_drops_exact_duplicates_with_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path, [*GOOD, GOOD[1], "1e8,1e9,65536,8e-3,nan", "1e8,1e9,65536,8e-3,inf"])
    backend = ReplayBackend(path)
    assert len(backend.cells[0].runs) == 4
    assert backend.notes == ["note: s.csv: 2 exact duplicate row(s) dropped (line 5 repeats line 3)"]


def _two_sizes(tmp_path: Path, sizes: tuple[float, float] = (214663680, 429260800)) -> ReplayBackend:
    rows = [f"{n:.0f},{d},{row.split(',', 2)[2]}" for n in sizes for d in (1e9, 2e9) for row in GOOD]
    return ReplayBackend(_write(tmp_path, rows))


@pytest.mark.parametrize("typed", [214663680, 2.15e8, 2.147e8])
def test_replay_sizes_match_within_half_a_percent(tmp_path: Path, typed: float) -> None:
    # the tool prints sizes as 2.15e+08 and its own error lists 2.147e+08: both name the recorded 214663680
    assert _two_sizes(tmp_path).match_sizes([typed]) == [214663680]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ([214663680, 214663680], r"distinct sizes"),
        ([2.15e8, 214663680], r"distinct sizes"),
        ([3e8], r"a size recorded in s\.csv, within 0\.5%: 214663680, 429260800"),
    ],
    ids=["repeated", "same-size-twice", "unknown"],
)
def test_replay_sizes_refused(tmp_path: Path, typed: list[float], expected: str) -> None:
    with pytest.raises(LrpredictError, match=expected) as err:
        _two_sizes(tmp_path).match_sizes(typed)
    assert err.value.field == "sizes"


def test_replay_size_near_two_recorded_sizes_is_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(LrpredictError, match=r"2 lie within 0\.5%: give the exact value"):
        _two_sizes(tmp_path, (1.000e8, 1.004e8)).match_sizes([1.002e8])


def test_replay_plan_notes_batches_capped_at_the_recorded_ones(sweeps_dir: Path) -> None:
    from lrpredict.registry import load_law

    backend = ReplayBackend(sweeps_dir / "steplaw_dense.csv")
    n = backend.sizes()[0]
    held = {len(c.batches()) for c in backend.cells_of(n)}
    backend.plan([n], load_law("steplaw-2025"), batches=2)
    assert backend.notes == []
    probes = backend.plan([n], load_law("steplaw-2025"), batches=64)
    count = f"{min(held)}" if len(held) == 1 else f"{min(held)}–{max(held)}"
    assert backend.notes == [f"note: batches 64 capped at the {count} recorded per cell in steplaw_dense.csv"]
    assert {p.batch_tokens for p in probes} == {b for c in backend.cells_of(n) for b in c.batches()}


@pytest.mark.parametrize("name", ["steplaw_dense.csv", "steplaw_moe.csv"])
def test_real_sweeps_load_unchanged(sweeps_dir: Path, name: str) -> None:
    backend = ReplayBackend(sweeps_dir / name)
    assert backend.notes == []
    # as the tidy reader reads the same file: no row refused, dropped or changed
    assert read_replay_csv(sweeps_dir / name) == read_runs(sweeps_dir / name)


def test_replay_free_fit_explains_its_missing_joint_regret(tmp_path, monkeypatch) -> None:
    # with --prior none and 2 batches per cell no batch law is fitted: the held-out regret was a bare "–"
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    sweep = Path(__file__).parent / "data" / "sweeps" / "steplaw_dense.csv"
    args = ["calibrate", "--replay", str(sweep), "--name", "free", "--out", str(tmp_path / "o"), "--prior", "none"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "regret on held-out" in x)
    assert "no batch law fitted" in line and "LR-only regret at each cell's best batch median" in line
    assert "(N, D) cells in the fit" in result.output
