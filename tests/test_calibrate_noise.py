"""Issue 19: loss noise measured (per-sequence eval stats, replicate probes), Eq.2 on a window, the validation stage,
and calibrated statuses that never say "confirmed"."""

import math
from pathlib import Path

import numpy as np
import pytest
import tomllib
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from lrpredict.architecture import Architecture  # noqa: E402
from lrpredict.calibrate.executor import SerialExecutor  # noqa: E402
from lrpredict.calibrate.fit import Observation, fit_calibration, fit_parabola  # noqa: E402
from lrpredict.calibrate.noise import (  # noqa: E402
    LossNoise,
    SeedTrend,
    measure_noise,
    replicate_specs,
    split_replicates,
)
from lrpredict.calibrate.planner import CalibrationPlan, probe_flops  # noqa: E402
from lrpredict.calibrate.replicates import add_replicates  # noqa: E402
from lrpredict.calibrate.run import calibrate_replay, calibrate_torch, load_plan  # noqa: E402
from lrpredict.calibrate.spec import BranchResult, DataSpec, ProbeResult, ProbeSpec  # noqa: E402
from lrpredict.calibrate.train import ProbeRun, train_probe  # noqa: E402
from lrpredict.cli import cli  # noqa: E402
from lrpredict.config import ModelConfig  # noqa: E402
from lrpredict.laws import LawFile  # noqa: E402
from lrpredict.registry import load_law  # noqa: E402
from lrpredict.suggest import suggest  # noqa: E402
from tests.tiny_probes import tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_evaluate_records_per_sequence_stats_whose_se_matches_the_sequences() -> None:
    spec = tiny(3e-3).model_copy(update={"eval_batches": 3})
    run = ProbeRun(spec)
    mean, sd, count = run.evaluate()
    # the same held-out windows, one sequence at a time through the model's own loss
    per_sequence = []
    with torch.no_grad():
        for xb, yb in run.batches.eval(spec.eval_batches):
            for x, y in zip(torch.from_numpy(xb), torch.from_numpy(yb), strict=True):
                per_sequence.append(run.model(x[None], y[None]).loss.item())
    assert count == len(per_sequence) == 3 * spec.batch_size
    assert mean == pytest.approx(np.mean(per_sequence), rel=1e-5)
    assert sd == pytest.approx(np.std(per_sequence, ddof=1), rel=1e-4) and sd > 0
    result = train_probe(spec)
    branch = result.branches[-1]
    assert branch.eval_sequences == count and branch.eval_sd > 0
    assert branch.eval_se == pytest.approx(branch.eval_sd / math.sqrt(count))
    assert "eval_sd" in result.model_dump_json()  # in the ledger line


def _result(spec: ProbeSpec, losses: list[float], sd: float = 0.1, n: int = 64) -> ProbeResult:
    branches = tuple(
        BranchResult(tokens=t * spec.tokens_per_step, steps=t, eval_loss=loss, eval_sd=sd, eval_sequences=n)
        for t, loss in zip(spec.horizon_steps, losses, strict=True)
    )
    return ProbeResult(probe_id=spec.probe_id, spec=spec, status="ok", branches=branches)


def test_replicates_measure_the_seed_sd_and_stay_out_of_the_cells() -> None:
    grid = [tiny(lr) for lr in (1e-3, 2e-3, 4e-3)]
    plan = CalibrationPlan(name="r", arch="dense", device="cpu", probes=grid, flops=1.0, centre_law="x")
    replicate, below = replicate_specs(plan)
    assert replicate.lr == 2e-3 and replicate.seed == 1  # the grid's centre LR, another seed
    assert below.lr == 1e-3 and below.seed == 1  # and the LR below it: a pair, for the LR contrast
    results = [_result(s, [3.0, 2.9]) for s in grid] + [_result(replicate, [3.03, 2.86])]
    main, pairs = split_replicates(results)
    assert [r.spec.lr for r in main] == [1e-3, 2e-3, 4e-3] and len(pairs) == 1
    noise = measure_noise(main, pairs)
    assert noise.seed_sd == pytest.approx(math.sqrt((0.03**2 + 0.04**2) / 4))  # √(Σd²/2m), m = 2 horizons
    assert noise.contrast_sd is None  # one LR replicated: no contrast measured
    assert noise.eval_se == pytest.approx(0.1 / 8) and noise.eval_sequences == 64
    text = noise.describe()
    assert "eval s.e. 0.013 from 64 held-out sequences" in text and "seed sd 0.025 from 1 replicate" in text
    plan.probes += [replicate, below]
    assert replicate_specs(plan) == []  # idempotent: a size with a replicate gets no other


def test_replicate_pair_measures_the_lr_contrast_that_the_cells_are_judged_by() -> None:
    # the LRs of a cell share their seed: a shift common to both seeds' LRs cancels, only the rest is contrast
    grid = [tiny(lr) for lr in (1e-3, 2e-3, 4e-3)]
    plan = CalibrationPlan(name="r", arch="dense", device="cpu", probes=grid, flops=1.0, centre_law="x")
    centre, below = replicate_specs(plan)
    results = [_result(s, [3.0, 2.9]) for s in grid]
    results += [_result(centre, [3.3, 3.02]), _result(below, [3.2, 3.0])]  # seed 1: +0.3/+0.12 common, ±0.1/0.02
    noise = measure_noise(*split_replicates(results))
    assert noise.seed_sd == pytest.approx(math.sqrt((0.3**2 + 0.12**2 + 0.2**2 + 0.1**2) / 8))
    # (d_c − d_b)² / 4 per horizon: (0.1² + 0.02²) / 8
    assert noise.contrast_sd == pytest.approx(math.sqrt((0.1**2 + 0.02**2) / 8)) and noise.contrast_pairs == 1
    assert noise.contrast_sd < noise.seed_sd / 2
    short, long = (b.tokens for b in results[0].branches)
    assert noise.contrast_at(short) == pytest.approx(0.1 / 2) and noise.contrast_at(long) == pytest.approx(0.01)
    assert noise.cell_sd(0.0, misfit=1.0, floor=0.0, tokens=short) == pytest.approx(0.05)  # not the seed sd
    assert "LR-contrast sd 0.036 from 1 replicate pair" in noise.describe()
    assert "seed sd 0.14 from 2 replicates" in noise.describe()


def _cells(spread: float, misfit_cell: bool = True) -> list[Observation]:
    """A bowl with losses moving by ``spread`` across its LRs, and (optionally) a cell far off a parabola whose
    residuals make the pooled misfit large."""
    lrs = [1e-3 * 2**k for k in range(5)]
    bowl = [3.0 + spread * (k - 2) ** 2 / 4 for k in range(5)]
    obs = [Observation(1e6, 1e8, lr, loss, 1e4, se=0.001) for lr, loss in zip(lrs, bowl, strict=True)]
    if misfit_cell:
        ragged = [3.3, 3.1, 3.25, 3.0, 3.2]
        obs += [Observation(1e6, 2e8, lr, loss, 1e4, se=0.001) for lr, loss in zip(lrs, ragged, strict=True)]
    return obs


def test_flat_cell_rule_uses_the_measured_noise_not_the_misfit() -> None:
    obs = _cells(spread=0.02)
    by_misfit = fit_calibration(obs, bootstrap=0)
    assert by_misfit.cells[0].flat  # the ragged cell's residuals called a 0.02 bowl flat
    measured = fit_calibration(obs, bootstrap=0, noise=LossNoise(eval_se=0.001, eval_sequences=64, seed_sd=0.004))
    assert not measured.cells[0].flat
    assert measured.cells[0].noise_sd == pytest.approx(math.hypot(0.001, 0.004))
    assert measured.noise.misfit_sd == pytest.approx(by_misfit.noise.misfit_sd)  # kept, as a diagnostic
    assert "misfit diagnostic" in measured.noise.describe()
    noisy = fit_calibration(obs, bootstrap=0, noise=LossNoise(eval_se=0.001, eval_sequences=64, seed_sd=0.05))
    assert noisy.cells[0].flat and any("measured" in w for w in noisy.warnings)


def test_windowed_parabola_ignores_a_far_asymmetric_tail() -> None:
    true = math.log(4e-3)
    lrs = [1e-3 * 2**k for k in range(7)]  # 1e-3 … 6.4e-2, optimum at 4e-3 (index 2)
    losses = [3.0 + 0.05 * (math.log(lr) - true) ** 2 for lr in lrs]
    losses[4] += 0.6  # the onset of divergence two steps above the optimum
    losses[5] += 1.5
    losses[6] += 3.0
    fit = fit_parabola(lrs, losses)
    assert fit is not None and fit.bracketed
    assert fit.log_lr_opt == pytest.approx(true, abs=0.02)
    # what a 5-point fit around the best point made of the same curve: the tail dragged the vertex
    x = np.log(lrs[0:5])
    a, b, _ = np.polyfit(x, losses[0:5], 2)
    assert abs(-b / (2 * a) - true) > 0.1


@pytest.fixture
def replayed(sweeps_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    outcome = calibrate_replay(
        sweeps_dir / "steplaw_dense.csv", tmp_path / "out", name="replayed-v", lrs=5, batches=3, write=lambda _: None
    )
    return outcome, tmp_path


def test_replay_validates_on_the_largest_held_out_size(replayed) -> None:
    outcome, tmp_path = replayed
    v = outcome.validation
    assert v is not None and v.measured is not None and v.interval is not None
    fitted_sizes = {c.n for c in outcome.fit.cells}
    assert v.n == max(fitted_sizes)  # refitted with the validation cell, the largest recorded size
    table = tomllib.loads((tmp_path / "out" / "replayed-v.toml").read_text())["validation"]
    assert table["n"] == v.n and table["predicted"] == pytest.approx(v.predicted) and "inside" in table
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Validation (held-out cell)" in report and "## Loss noise" in report
    result = CliRunner().invoke(cli, ["suggest", "--params", "1B", "--tokens", "20B", "--law", "replayed-v"])
    assert result.exit_code == 0, result.output
    assert "replayed-v was validated at N=" in result.output and "predicted ×" in result.output
    shown = CliRunner().invoke(cli, ["show-law", "replayed-v"])
    assert "validation    replayed-v was validated" in shown.output


def test_calibrated_statuses_are_never_confirmed(replayed, sweeps_dir: Path, tmp_path: Path) -> None:
    outcome, _ = replayed
    free = calibrate_replay(
        sweeps_dir / "steplaw_dense.csv", tmp_path / "free", name="free-v", prior="none", write=lambda _: None
    )
    for law in (outcome.law, free.law):
        statuses = [c.status for p in law.predictions().values() for c in p.coefficients().values()]
        assert "confirmed" not in statuses and law.status in ("fitted", "open")
        assert law.lr.coefficient.basis.startswith(("fitted: ", "open: "))
    explain = CliRunner().invoke(
        cli, ["suggest", "--params", "1B", "--tokens", "20B", "--law", "replayed-v", "--explain"]
    )
    assert "(confirmed)" not in explain.output and "replayed-v (fitted: " in explain.output
    listed = CliRunner().invoke(cli, ["laws", "list"])
    row = next(line for line in listed.output.splitlines() if line.startswith("replayed-v"))
    assert (
        "confirmed" not in row.split() and outcome.law.status in row.split()
    )  # fitted, or open when an exponent is unstable


def _installed(name: str, cells: list[tuple[float, float, float]]) -> LawFile:
    """A calibrated law from bowls with their optimum at each (N, D, η*)."""
    from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated

    obs = [
        Observation(n, d, opt * 2 ** (k - 2), 3.0 + 0.05 * (k - 2) ** 2, 1e5) for n, d, opt in cells for k in range(5)
    ]
    fit = fit_calibration(obs, bootstrap=0)
    schedule = {"kind": "wsd", "description": "t"}
    return install_calibrated(calibrated_law(fit, name=name, arch="dense", schedule=schedule, provenance={}), name)


def test_interval_wider_than_the_default_band_says_so_and_recommends_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    # one probe size, one horizon: the exponents rest on the prior, so at 7B/2T the interval is very wide
    one = _installed("wide-one", [(4e7, 8e8, 4e-3)])
    far = suggest(ModelConfig(params=7e9, tokens=2e12), one)
    said = [w for w in far.warnings if "wider than the bundled default" in w]
    assert said and "suggest without --law" in said[0] and "bigger budget" in said[0]
    # optima that follow the prior at 3 sizes × 2 horizons: near the probes the calibration is the sharper
    steplaw = load_law("steplaw-2025").lr
    cells = [(n, d, 0.5 * steplaw.evaluate({"N": n, "D": d})) for n in (2e8, 4e8, 8e8) for d in (4e9, 8e9)]
    sharp = _installed("sharp-six", cells)
    near = suggest(ModelConfig(params=6e8, tokens=8e9), sharp)
    assert not any("wider than the bundled default" in w for w in near.warnings)


def _tiny_shape(width: int) -> Architecture:
    return Architecture(d_model=width, n_layers=1, d_ffn=2 * width, n_heads=1, vocab_size=64)


def test_torch_calibration_validates_a_larger_cell_and_records_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    data = DataSpec(n_tokens=1 << 15, eval_tokens=1 << 11)

    def spec(width: int, lr: float) -> ProbeSpec:
        return tiny(lr, data).model_copy(update={"arch": _tiny_shape(width)})

    grid = [spec(w, 2e-3 * 2**k) for w in (16, 24) for k in range(5)]
    held = [spec(48, 1e-2 * 2**k) for k in range(3)]  # re-centred on the fit's prediction before it runs
    plan = CalibrationPlan(name="tiny-v", arch="dense", device="cpu", probes=grid, validation=held,
                           flops=sum(map(probe_flops, grid)), centre_law="x")  # fmt: skip
    assert add_replicates(plan) and len(plan.probes) == 14  # what the CLI's plan does (lrpredict.calibrate.noise)
    lines: list[str] = []
    outcome = calibrate_torch(plan, tmp_path / "out", executor=SerialExecutor(), write=lines.append)
    assert outcome.law is not None and outcome.validation is not None
    v = outcome.validation
    saved = load_plan(tmp_path / "out")
    assert len(saved.validation) == 3 and len([p for p in saved.probes if p.seed == 1]) == 4  # replicate pairs
    centre = math.exp(sum(math.log(s.lr) for s in saved.validation) / 3)
    assert centre == pytest.approx(v.predicted, rel=1e-9)  # re-centred, spacing kept
    assert saved.validation[1].lr / saved.validation[0].lr == pytest.approx(2.0)
    assert any(line.startswith("validation: 3 probes") for line in lines)
    law = load_law("tiny-v")
    assert law.validation is not None and law.validation.n == v.n and law.domain["N"][1] == v.n
    assert outcome.fit.noise.seed_sd is not None and outcome.fit.noise.eval_se > 0
    # a resume re-runs nothing: the validation LRs re-centre to the same probe ids
    ledger_lines = (tmp_path / "out" / "probes.jsonl").read_text().count("\n")
    calibrate_torch(load_plan(tmp_path / "out"), tmp_path / "out", executor=SerialExecutor(), write=lines.append,
                    replace_law=True)  # fmt: skip
    assert (tmp_path / "out" / "probes.jsonl").read_text().count("\n") == ledger_lines


def test_seed_trend_follows_the_horizon_and_holds_at_the_measured_ends() -> None:
    # differences whose mean square halves ×4 per doubling of the tokens: sd ∝ D^-1
    diffs = [(t, d) for t, sd in ((1e5, 0.4), (2e5, 0.2), (4e5, 0.1)) for d in (sd * math.sqrt(2), -sd * math.sqrt(2))]
    trend = SeedTrend.fit(diffs)
    assert trend is not None and trend.exponent == pytest.approx(-1.0)
    assert trend.at(2e5) == pytest.approx(0.2) and trend.at(4e5) == pytest.approx(0.1)
    assert trend.at(1e7) == pytest.approx(0.1) and trend.at(10.0) == pytest.approx(0.4)  # held, not extrapolated
    assert SeedTrend.fit([(1e5, 0.1), (1e5, 0.2)]) is None  # one horizon: no trend
    assert SeedTrend.fit([(1e5, 0.0), (2e5, 0.1)]) is None  # a zero variance has no logarithm


def test_long_horizon_cell_is_judged_by_its_own_seed_noise() -> None:
    # issue 19's CPU run: noise pooled over horizons (0.3 nats, mostly the short ones) left the long horizon flat
    lrs = [1e-3 * 2**k for k in range(5)]
    obs = [Observation(1e6, 4e5, lr, 3.0 + 0.1 * (k - 2) ** 2, 1e4, se=0.001) for k, lr in enumerate(lrs)]
    obs += [Observation(1e6, 1e5, lr, 4.0 + 0.1 * (k - 2) ** 2, 1e4, se=0.001) for k, lr in enumerate(lrs)]
    diffs = [(1e5, 0.8), (1e5, -0.8), (4e5, 0.05), (4e5, -0.05)]
    pooled = LossNoise(eval_se=0.001, eval_sequences=64, seed_sd=math.sqrt(sum(d * d for _, d in diffs) / 8))
    by_horizon = LossNoise(**{**pooled.__dict__, "trend": SeedTrend.fit(diffs)})
    flat = {c.tokens: c.flat for c in fit_calibration(obs, bootstrap=0, noise=pooled).cells}
    assert flat == {1e5: True, 4e5: True}
    fit = fit_calibration(obs, bootstrap=0, noise=by_horizon)
    assert {c.tokens: c.flat for c in fit.cells} == {1e5: True, 4e5: False}
    assert "by horizon 0.57 at 100,000 → 0.035 at 400,000 tokens" in fit.noise.describe()


def test_measure_noise_fits_the_trend_from_replicate_horizons() -> None:
    grid = [tiny(lr) for lr in (1e-3, 2e-3, 4e-3)]
    plan = CalibrationPlan(name="r", arch="dense", device="cpu", probes=grid, flops=1.0, centre_law="x")
    replicate, _ = replicate_specs(plan)
    results = [_result(s, [3.0, 2.9]) for s in grid] + [_result(replicate, [3.2, 2.95])]
    noise = measure_noise(*split_replicates(results))
    short, long = (b.tokens for b in results[0].branches)
    assert noise.trend is not None
    assert noise.seed_at(short) == pytest.approx(0.2 / math.sqrt(2)) and noise.seed_at(long) == pytest.approx(
        0.05 / math.sqrt(2)
    )


def test_flat_cells_get_the_horizon_the_noise_trend_asks_for() -> None:
    lrs = [1e-3 * 2**k for k in range(5)]
    obs = [
        Observation(1e6, d, lr, 3.0 + 0.1 * (k - 2) ** 2, 1e4, se=0.001) for d in (1e5, 4e5) for k, lr in enumerate(lrs)
    ]
    diffs = [(1e5, 0.8), (1e5, -0.8), (4e5, 0.4), (4e5, -0.4)]  # sd 0.57 → 0.28: ∝ D^-0.5
    noise = LossNoise(eval_se=0.001, eval_sequences=64, seed_sd=0.45, trend=SeedTrend.fit(diffs))
    fit = fit_calibration(obs, bootstrap=0, noise=noise)
    assert all(c.flat for c in fit.cells)
    (advice,) = [w for w in fit.warnings if "cells flat" in w]
    # a quarter of the 0.4-nat LR effect is 0.1: 0.283·(D/4e5)^-0.5 = 0.1 at D = 4e5·(2.83)² = 3.2e6
    assert (
        "2 of 2 cells flat" in advice
        and "~3,200,000 tokens" in advice
        and "--horizons 800000,1600000,3200000" in advice
    )


def test_flat_cells_with_a_seed_noise_that_does_not_fall_say_so() -> None:
    lrs = [1e-3 * 2**k for k in range(5)]
    obs = [
        Observation(1e6, d, lr, 3.0 + 0.1 * (k - 2) ** 2, 1e4, se=0.001) for d in (1e5, 4e5) for k, lr in enumerate(lrs)
    ]
    diffs = [(1e5, 0.6), (1e5, -0.6), (4e5, 0.8), (4e5, -0.8)]  # rising: still in the early, seed-timed phase
    noise = LossNoise(eval_se=0.001, eval_sequences=64, seed_sd=0.5, trend=SeedTrend.fit(diffs))
    fit = fit_calibration(obs, bootstrap=0, noise=noise)
    (advice,) = [w for w in fit.warnings if "cells flat" in w]
    assert "does not fall across the horizons trained" in advice and "--horizons" in advice
