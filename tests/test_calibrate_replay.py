import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("scipy")

import lrpredict
from lrpredict.calibrate.planner import make_plan, parse_budget, probe_flops
from lrpredict.calibrate.replay import OPTIONAL, REQUIRED, ReplayBackend, ReplayProbe, read_replay_csv
from lrpredict.cli import cli
from lrpredict.errors import LrpredictError


def test_replay_backend_reads_recorded_loss(sweeps_dir) -> None:
    backend = ReplayBackend(sweeps_dir / "steplaw_dense.csv")
    cell = backend.cells[0]
    lr, loss = cell.curve(cell.batches()[0])[0]
    observed = backend.run(ReplayProbe(cell.n_active, cell.tokens, lr, cell.batches()[0]))
    assert observed.loss == pytest.approx(loss)
    outside = backend.run(ReplayProbe(cell.n_active, cell.tokens, lr / 100, cell.batches()[0]))
    assert outside.loss is None


def test_replay_branch_accounting_is_cheaper(sweeps_dir) -> None:
    backend = ReplayBackend(sweeps_dir / "steplaw_dense.csv")
    n = backend.sizes()[0]
    probes = [ReplayProbe(n, c.tokens, 1e-3, 2**20) for c in backend.cells_of(n)]
    separate, branched = backend.probe_flops(probes), backend.probe_flops(probes, branch_accounting=True)
    assert branched < separate
    assert branched == pytest.approx(
        6 * n * (max(p.tokens for p in probes) + 0.2 * sum(sorted(p.tokens for p in probes)[:-1]))
    )


def test_cli_calibrate_replay_writes_a_law_suggest_uses(sweeps_dir, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "cal"
    args = ["calibrate", "--replay", str(sweeps_dir / "steplaw_dense.csv"), "--name", "team-dense", "--out", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "law installed: team-dense" in result.stdout
    assert (out / "report.md").is_file() and (out / "team-dense.toml").is_file()
    law = lrpredict.load_law("team-dense")
    assert law.lr.exponents["N"].value < 0 and law.provenance["backend"] == "replay"
    suggestion = json.loads(
        runner.invoke(
            cli, ["suggest", "--params", "5.37e8", "--tokens", "1e10", "--law", "team-dense", "--json"]
        ).stdout
    )
    assert 5e-4 < suggestion["lr"] < 5e-3  # the recorded optima of that size lie in 1e-3 – 3e-3


def test_cli_calibrate_dry_run_prints_plan_and_cost() -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run"])
    assert result.exit_code == 0, result.output
    # 15 grid probes + a replicate pair per size (issue 19: seed noise and its LR contrast measured), costed
    assert "21 probes on cpu" in result.stdout and "FLOPs" in result.stdout and "d_model=32" in result.stdout
    assert "replicate probes" in result.stdout


def test_planner_budget_plan_fits_the_budget() -> None:
    plan = make_plan(name="x", device="cuda", budget_flops=parse_budget("2h"))
    assert plan.flops == pytest.approx(sum(probe_flops(p) for p in plan.probes))
    assert plan.flops <= parse_budget("2h")
    assert len({p.arch.d_model for p in plan.probes}) == 3


@pytest.mark.parametrize(
    ("text", "ok"), [("1e18", True), ("2h", True), ("0.5gpu-h", True), ("-1", False), ("lots", False)]
)
def test_parse_budget_accepts_flops_or_gpu_hours(text: str, ok: bool) -> None:
    if ok:
        assert parse_budget(text) > 0
    else:
        with pytest.raises(LrpredictError, match="budget="):
            parse_budget(text)


def test_cli_calibrate_refuses_existing_directory(tmp_path) -> None:
    (tmp_path / "plan.json").write_text("{}")
    result = CliRunner().invoke(cli, ["calibrate", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--resume" in result.output


def test_cli_calibrate_replay_reproduces_the_benchmark_row(sweeps_dir, tmp_path) -> None:
    """docs/benchmarks.md, dense, 5 LRs × 2 batches, D ≤ 2e10: 0.86% of the grid, median regret 0.052%."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from calibrate_replay import run

    row = run(sweeps_dir, "dense", 5, 2, 2e10)
    args = ["calibrate", "--replay", str(sweeps_dir / "steplaw_dense.csv"), "--name", "bench", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--lrs", "5", "--batches", "2", "--max-tokens", "2e10"])
    assert result.exit_code == 0, result.output
    assert f"probe FLOPs / recorded grid FLOPs: {row['flops_fraction']:.2%}" in result.stdout
    assert f"median {row['regret_median']:.3%}, max {row['regret_max']:.3%}" in result.stdout
    assert row["regret_median"] <= 0.001 and row["flops_fraction"] <= 0.05


EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "replay_sweep.csv"
HEADER = "N,D,batch_tokens,lr,final_loss"


def _replay(csv_path: Path, tmp_path: Path):
    args = ["calibrate", "--replay", str(csv_path), "--name", "mine", "--out", str(tmp_path / "cal")]
    return CliRunner().invoke(cli, args)


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_cli_calibrate_replay_of_the_documented_example_writes_a_law(tmp_path: Path) -> None:
    result = _replay(EXAMPLE, tmp_path)
    assert result.exit_code == 0, result.output
    assert "law installed: mine" in result.stdout
    columns = EXAMPLE.read_text().splitlines()[0].split(",")
    assert set(REQUIRED) <= set(columns) and set(columns) <= set(REQUIRED) | set(OPTIONAL)


def test_replay_csv_with_only_required_columns_reads(tmp_path: Path) -> None:
    rows = [f"1e8,1e9,65536,{lr},{3 + (lr - 2e-3) ** 2 * 1e4}" for lr in (1e-3, 2e-3, 4e-3)]
    (tmp_path / "s.csv").write_text("\n".join([HEADER, *rows, "1e8,1e9,65536,8e-3,nan"]) + "\n")
    runs = read_replay_csv(tmp_path / "s.csv")
    assert [r.diverged for r in runs] == [False, False, False, True]
    assert runs[0].arch == "dense" and runs[0].n_active == 1e8


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("N,D,lr,loss\n1e8,1e9,1e-3,3.0\n", r"s\.csv:1'.*missing batch_tokens, final_loss"),
        (f"{HEADER}\n1e8,1e9,65536,1e-3,3.0\n1e8,1e9,65536,abc,3.1\n", r"s\.csv:3 column lr'.*a number \(got 'abc'\)"),
        (f"{HEADER}\n1e8,1e9,-5,1e-3,3.0\n", r"s\.csv:2 column batch_tokens'.*> 0"),
        (f"{HEADER}\n", r"s\.csv:2'.*at least one run after the header"),
        (f"{HEADER}\n1e8,1e9,65536,1e-3,3.0\n1e8,1e9,65536,2e-3,nan\n", r"s\.csv'.*a usable cell"),
        (f"{HEADER}\n1e8,1e9,65536,1e-3,3.0,7\n", r"s\.csv:2'.*at most 5 cells"),
    ],
    ids=["wrong-columns", "not-a-number", "negative", "header-only", "no-usable-cell", "extra-cell"],
)
def test_cli_replay_csv_errors_name_file_line_and_column(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "s.csv").write_text(content)
    line = _one_line_error(_replay(tmp_path / "s.csv", tmp_path))
    assert re.search(expected, line), line
    assert not (tmp_path / "cal" / "mine.toml").exists()


def test_cli_replay_binary_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_bytes(b"N,D\n" + bytes(range(256)) * 4)
    line = _one_line_error(_replay(tmp_path / "s.csv", tmp_path))
    assert "s.csv:2" in line and "binary" in line


def _write_flat_sweep(path: Path) -> None:
    rows = ["N,D,lr,batch_tokens,final_loss"]
    for d in (1e9, 4e9):
        # a bowl far shallower than the loss noise floor: an LR signal the permutation test sees (a perfect
        # parabola), but no optimum a fit can use
        rows += [f"1e8,{d},{1e-3 * 2**k},131072,{3.0 + 1e-6 * (k - 2) ** 2}" for k in range(5)]
    path.write_text("\n".join(rows) + "\n")


def test_cli_calibrate_replay_of_a_flat_sweep_writes_no_law_and_exits_1(tmp_path: Path) -> None:
    # a flat curve was read as "best at the lowest LR", entered as a bound, and a law was installed (a perfectly flat
    # one is now refused as input: test_hardening_round2's random-loss test)
    _write_flat_sweep(tmp_path / "flat.csv")
    args = ["calibrate", "--replay", str(tmp_path / "flat.csv"), "--out", str(tmp_path / "o"), "--name", "flat"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.count("! no optimum at N=1e+08") == 2 and "unbracketed" not in result.output
    assert "within 2× the noise sd" in result.output  # the threshold, so "0.092 within 0.058" cannot be read
    assert result.output.strip().endswith(
        "Error: no law written: the probes measured no usable optimum (see the warnings above)"
    )
    assert "flat" not in [law.id for law in lrpredict.registry.laws()]


def test_cli_calibrate_refuses_a_taken_name_before_it_runs(sweeps_dir, tmp_path: Path) -> None:
    csv = str(sweeps_dir / "steplaw_dense.csv")
    first = CliRunner().invoke(cli, ["calibrate", "--replay", csv, "--out", str(tmp_path / "a"), "--name", "mine"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, ["calibrate", "--replay", csv, "--out", str(tmp_path / "b"), "--name", "mine"])
    assert second.exit_code == 2 and not (tmp_path / "b").exists(), second.output
    assert second.output.strip().splitlines() == [
        "Error: --name='mine' is not valid: a name not yet in the user registry "
        "(`lrpredict laws remove mine` first, or another --name)"
    ]
    dry = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--sizes", "32", "--name", "mine"])
    assert dry.exit_code == 0, dry.output  # a dry run installs nothing: the name may be taken


def test_batch_reference_benchmark_scores_every_method_at_every_shared_batch(sweeps_dir) -> None:
    """benchmarks/batch_reference.py (issue 19): one row per (batch, method) and one pooled row per method."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from batch_reference import METHODS, run

    rows = run(sweeps_dir, "moe", 7)
    table = [r for r in rows if r.startswith("| moe |")]
    assert len(table) >= 5 * len(METHODS) - 2  # a method without a law at a batch has no row there
    for method in METHODS:
        pooled = next(r for r in table if f"| **all** | {method} |" in r)
        cells, median_err = pooled.split(" | ")[3:5]
        assert int(cells) > 0 and float(median_err) >= 0
