"""Issue 19: the held-out validation cell keeps the budget at run time, and grows past its edge when the optimum
lies beyond it (both H200 runs of 2026-12-04 could only say "not bracketed")."""

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lrpredict.architecture import Architecture  # noqa: E402
from lrpredict.calibrate.executor import SerialExecutor  # noqa: E402
from lrpredict.calibrate.planner import Budget, CalibrationPlan, probe_flops  # noqa: E402
from lrpredict.calibrate.run import calibrate_torch, load_plan  # noqa: E402
from lrpredict.calibrate.spec import DataSpec, ProbeSpec  # noqa: E402
from lrpredict.calibrate.validation import Prediction, ValidationResult, extension, score  # noqa: E402
from tests.tiny_probes import tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = DataSpec(n_tokens=1 << 15, eval_tokens=1 << 11)


def _spec(width: int, lr: float) -> ProbeSpec:
    shape = Architecture(d_model=width, n_layers=1, d_ffn=2 * width, n_heads=1, vocab_size=64)
    return tiny(lr, DATA).model_copy(update={"arch": shape})


def _result(lrs: list[float], losses: list[float | None]):
    return score(Prediction(lrs[1], None), n=1e6, tokens=1e7, batch=1e3, lrs=lrs, losses=losses, ses=[None] * len(lrs),
                 noise=None)  # fmt: skip


def test_validation_extension_adds_two_lrs_past_the_edge_the_loss_falls_toward() -> None:
    specs = [_spec(48, 1e-3 * 2**k) for k in range(3)]
    lrs = [s.lr for s in specs]
    above = extension(specs, _result(lrs, [3.0, 2.9, 2.8]), diverged=[])
    assert [s.lr for s in above] == pytest.approx([8e-3, 1.6e-2])
    below = extension(specs, _result(lrs, [2.8, 2.9, 3.0]), diverged=[])
    assert [s.lr for s in below] == pytest.approx([5e-4, 2.5e-4])
    assert all(s.arch == specs[0].arch and s.horizons == specs[0].horizons for s in above + below)


def test_validation_extension_adds_nothing_when_bracketed_or_past_a_divergence() -> None:
    specs = [_spec(48, 1e-3 * 2**k) for k in range(3)]
    lrs = [s.lr for s in specs]
    assert extension(specs, _result(lrs, [3.0, 2.8, 2.9]), diverged=[]) == []  # a bowl: bracketed
    assert extension(specs, _result(lrs, [3.0, 2.9, 2.8]), diverged=[8e-3]) == []  # the bowl closes above


def _plan(name: str) -> CalibrationPlan:
    grid = [_spec(w, 2e-3 * 2**k) for w in (16, 24) for k in range(5)]
    held = [_spec(48, 1e-2 * 2**k) for k in range(3)]
    return CalibrationPlan(name=name, arch="dense", device="cpu", probes=grid, validation=held,
                           flops=sum(map(probe_flops, grid)), centre_law="x")  # fmt: skip


def test_calibrate_torch_skips_the_validation_cell_the_budget_no_longer_affords(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    plan = _plan("tiny-budget")
    plan.budget = Budget("flops", plan.flops)  # the fit probes use it all: the held-out cell would pass 1.2×
    lines: list[str] = []
    outcome = calibrate_torch(plan, tmp_path / "out", executor=SerialExecutor(), write=lines.append)
    assert outcome.validation is None and outcome.law is not None
    assert any(line.startswith("validation skipped") and "1.2× the budget" in line for line in lines)
    assert any(w.startswith("validation skipped") for w in outcome.fit.warnings)  # in the report too
    ledger = (tmp_path / "out" / "probes.jsonl").read_text()
    assert '"d_model": 48' not in ledger  # no held-out probe was trained


def test_calibrate_torch_runs_and_scores_a_recorded_validation_extension_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    plan = _plan("tiny-ext")
    # as a run that found the optimum past the cell's high edge leaves its plan (the LRs are only ids here)
    plan.validation_extension = [_spec(48, 1e-1), _spec(48, 2e-1)]
    lines: list[str] = []
    outcome = calibrate_torch(plan, tmp_path / "out", executor=SerialExecutor(), write=lines.append)
    assert outcome.validation is not None and outcome.validation.lrs == 5  # 3 held out + 2 past the edge
    assert any(line.startswith("extending the validation cell") for line in lines)
    assert outcome.probes == len(plan.probes) + 5
    saved = load_plan(tmp_path / "out")
    assert [s.lr for s in saved.validation_extension] == pytest.approx([1e-1, 2e-1])
    assert math.isfinite(outcome.validation.predicted)
    ledger_lines = (tmp_path / "out" / "probes.jsonl").read_text().count("\n")
    calibrate_torch(saved, tmp_path / "out", executor=SerialExecutor(), write=lines.append, replace_law=True)
    assert (tmp_path / "out" / "probes.jsonl").read_text().count("\n") == ledger_lines  # a resume trains nothing


def test_calibrate_torch_refit_by_another_fit_keeps_the_validation_cell_that_ran(tmp_path: Path, monkeypatch) -> None:
    # a refit that predicts another η* there (the end-to-end benchmark's refits; newer code on --resume) scores the
    # cell that ran against it, instead of re-centring it and training it again
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    plan = _plan("tiny-refit")
    first = calibrate_torch(plan, tmp_path / "out", executor=SerialExecutor(), write=lambda _: None)
    saved = load_plan(tmp_path / "out")
    ran = [s.lr for s in saved.validation]
    ledger_lines = (tmp_path / "out" / "probes.jsonl").read_text().count("\n")
    other = calibrate_torch(
        saved,
        tmp_path / "out",
        executor=SerialExecutor(),
        write=lambda _: None,
        replace_law=True,
        prior="deepseek-llm-2024",
    )
    assert first.validation is not None and other.validation is not None
    assert other.validation.predicted != pytest.approx(first.validation.predicted, rel=1e-3)  # another fit indeed
    assert (tmp_path / "out" / "probes.jsonl").read_text().count("\n") == ledger_lines  # nothing trained again
    assert [s.lr for s in load_plan(tmp_path / "out").validation] == pytest.approx(ran)


def _verdict(inside: bool | None) -> ValidationResult:
    return ValidationResult(n=2e5, tokens=3e5, batch_tokens=1e3, lrs=5, predicted=1e-3, interval=(5e-4, 2e-3),
                            measured=3e-3 if inside is False else 1.2e-3, measured_se_ln=0.3, bracketed=inside is not None,
                            edge=None if inside is not None else "high", inside=inside, regret=0.01)  # fmt: skip


def test_calibrate_says_use_this_law_only_when_the_held_out_cell_fell_inside() -> None:
    """The CPU end-to-end run printed "narrower … use this law" right after "VALIDATION MISSED" (2026-12-04)."""
    from lrpredict.cli.calibrate import _narrower_advice

    assert _narrower_advice(_verdict(True)).endswith("use this law")
    missed = _narrower_advice(_verdict(False))
    assert "use this law" not in missed and "prefer the bundled law" in missed and missed.lstrip().startswith("!")
    for unconfirmed in (_narrower_advice(_verdict(None)), _narrower_advice(None)):
        assert "use this law" not in unconfirmed and "no held-out cell confirmed it" in unconfirmed
