"""The default without cliffs (issue 20, item 5): Step Law near its sweeps, the compute law at production scale and a
log-space blend in between (lrpredict.default_blend)."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner

from lrpredict import ModelConfig, registry, suggest
from lrpredict.cli import cli
from lrpredict.default_blend import BLEND_END, BLEND_START, choose, far_weight
from lrpredict.registry import load_law
from lrpredict.runs import published_runs
from lrpredict.suggest import _suggest, resolve_variables
from lrpredict.sweeps import group_cells, read_runs

STEP = 1.01  # neighbouring points 1% apart (the Done-when)
LIMIT = math.log(1.10)  # LR, batch and weight decay change by at most 10% between them
MOE_ACTIVE = 0.125  # a realistic active fraction: OLMoE 1.3/6.9 B, DeepSeek-V3 37/671 B, Mixtral 13/47 B
STEPLAW = load_law("steplaw-2025")


def _config(arch: str, n: float, d: float, **kw: float) -> ModelConfig:
    return ModelConfig(arch=arch, params=n, active_params=n * MOE_ACTIVE if arch == "moe" else None, tokens=d, **kw)


def _logs(arch: str, n: float, d: float) -> np.ndarray:
    s = _suggest(_config(arch, n, d), None, with_runs=False)
    return np.log([s.lr, s.batch_tokens, s.weight_decay])


def _distance(n: float, d: float) -> float:
    return max(STEPLAW.domain_distance({"N": n, "D": d}).values())


def _grid() -> list[tuple[float, float]]:
    """1e7 ≤ N ≤ 1e12, 1e9 ≤ D ≤ 1e14: every 0.2 decade, where one power law answers, and every 0.05 decade where
    the weights move (the ring between BLEND_START and BLEND_END outside Step Law's domain, slightly widened), where
    the largest steps are (a 0.025-decade scan found the same worst step within 0.005 in ln, docs/log.md)."""
    coarse = [(10**a, 10**b) for a in np.arange(7, 12.001, 0.2) for b in np.arange(9, 14.001, 0.2)]
    fine = [(10**a, 10**b) for a in np.arange(7, 12.001, 0.05) for b in np.arange(9, 14.001, 0.05)]
    ring = [(n, d) for n, d in fine if 0.95 * BLEND_START <= _distance(n, d) <= 1.05 * BLEND_END]
    return [(n, d) for n, d in coarse + ring if n * STEP <= 1e12 and d * STEP <= 1e14]


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_default_blend_changes_at_most_10_percent_per_1_percent_step(arch: str) -> None:
    worst, where = 0.0, None
    for n, d in _grid():
        here = _logs(arch, n, d)
        for step in ((n * STEP, d), (n, d * STEP)):
            change = np.abs(_logs(arch, *step) - here).max()
            if change > worst:
                worst, where = change, (n, d, step)
    assert worst <= LIMIT, f"{math.exp(worst):.3g}× at {where}"


@pytest.mark.parametrize(
    ("arch", "start", "stop", "axis"),
    [
        ("dense", (1e9, 2.49e11), (1e9, 2.51e11), "D"),  # the old switch at N = 1B: LR ×3.1, λ ×4.1
        ("dense", (2.74e9, 20 * 2.74e9), (2.76e9, 20 * 2.76e9), "N"),  # D = 20·N: batch ×2.7, λ ×2.3
        ("moe", (2.37e9, 4e10), (3.16e9, 4e10), "N"),  # MoE total N: LR ×1.36, batch ×2.2
    ],
)
def test_default_blend_has_no_cliff_where_the_switch_was(arch: str, start: tuple, stop: tuple, axis: str) -> None:
    steps = math.ceil(math.log(stop[0 if axis == "N" else 1] / start[0 if axis == "N" else 1]) / math.log(STEP))
    ratio = (stop[0] / start[0]) ** (1 / steps), (stop[1] / start[1]) ** (1 / steps)
    points = [(start[0] * ratio[0] ** k, start[1] * ratio[1] ** k) for k in range(steps + 1)]
    logs = np.array([_logs(arch, n, d) for n, d in points])
    assert np.abs(np.diff(logs, axis=0)).max() <= LIMIT


def _weights(arch: str, n: float, d: float) -> dict[str, float]:
    return {law.id: weight for law, weight in choose(_config(arch, n, d), resolve_variables).parts}


def _alone(arch: str, law: str, n: float, d: float) -> float:
    """ln LR of one law at this config."""
    return math.log(_suggest(_config(arch, n, d), law, with_runs=False).lr)


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_default_blend_is_monotone_wherever_its_laws_and_weights_agree(arch: str) -> None:
    # ln η_blend(x') − ln η_blend(x) = Σ w_i·Δa_i + Σ Δw_i·a_i(x'): when every contributing law moves the same way
    # and the weights move toward the laws on that side, the blend must move that way too (docs/log.md 2026-12-04)
    checked = 0
    for n, d in _grid()[::6]:
        here = _weights(arch, n, d)
        for step in ((n * STEP, d), (n, d * STEP)):
            there = _weights(arch, *step)
            laws = set(here) | set(there)
            moves = [_alone(arch, k, *step) - _alone(arch, k, n, d) for k in laws]
            shift = sum((there.get(k, 0.0) - here.get(k, 0.0)) * _alone(arch, k, *step) for k in laws)
            blend = _logs(arch, *step)[0] - _logs(arch, n, d)[0]
            for sign in (1.0, -1.0):
                if all(sign * m > 0 for m in moves) and sign * shift >= 0:
                    assert sign * blend > 0, (n, d, step, here, there)
                    checked += 1
    assert checked > 200


@pytest.mark.parametrize(("arch", "ratio"), [("dense", 25), ("moe", 50)])
def test_default_blend_is_monotone_in_n_on_the_long_horizon_side(arch: str, ratio: float) -> None:
    # past Step Law's largest N, at D ≥ ratio·N its LR is above the compute law's, so the handover only lowers the LR
    # (below that ratio it need not: docs/log.md 2026-12-04 default blend)
    for d in np.logspace(10.5, 14, 15):
        ns = [n for n in np.logspace(9, 12, 400) if d >= ratio * n]
        lrs = [_logs(arch, n, d)[0] for n in ns]
        assert all(b < a for a, b in itertools.pairwise(lrs)), d


def test_default_blend_weights_label_status_and_explain() -> None:
    config = ModelConfig(params="1B", tokens="249B")
    s = suggest(config)
    weight = far_weight(249e9 / 1e11)
    assert 0 < weight < 1
    assert s.law == f"default blend: deepseek-llm-2024 {weight:.2g}, steplaw-2025 {1 - weight:.2g}"
    factors = {f.name: f.value for f in s.derivation}
    assert factors["weight of deepseek-llm-2024"] == pytest.approx(weight)
    assert factors["weight of steplaw-2025"] == pytest.approx(1 - weight)
    alone = {law: _suggest(config, law, with_runs=False) for law in ("steplaw-2025", "deepseek-llm-2024")}
    for field in ("lr", "batch_tokens", "optimal_batch_tokens", "weight_decay"):
        expected = getattr(alone["deepseek-llm-2024"], field) ** weight
        expected *= getattr(alone["steplaw-2025"], field) ** (1 - weight)
        assert getattr(s, field) == pytest.approx(expected)
    assert s.status == "confirmed" and s.domain == "extrapolated"
    # λ = B/(η·τ·D) holds at the blended η and B: the three are blended together
    tau = load_law("powerlines-2025").weight_decay.optimal_tau(1e9, 249e9)  # type: ignore[union-attr]
    assert s.weight_decay == pytest.approx(s.batch_tokens / (s.lr * tau * 249e9))
    assert s.lr_range.low < s.lr < s.lr_range.high and "blended" in s.lr_range.label()
    out = CliRunner().invoke(cli, ["suggest", "--params", "1B", "--tokens", "249B", "--explain"]).output
    assert "law: default blend: deepseek-llm-2024 0.59, steplaw-2025 0.41" in out
    assert re.search(r"weight of steplaw-2025\s+= 0\.41", out) and "the default at this run's own N, D" in out


def test_default_blend_keeps_your_batch_exactly_and_moves_each_laws_lr_to_it() -> None:
    config = ModelConfig(params="1B", tokens="249B", batch_tokens="1M")
    s = suggest(config)
    assert s.batch_tokens == 1e6 and "1M tokens per step" in str(s)
    weight = far_weight(2.49)
    alone = [_suggest(config, law, with_runs=False) for law in ("deepseek-llm-2024", "steplaw-2025")]
    assert s.lr == pytest.approx(alone[0].lr ** weight * alone[1].lr ** (1 - weight))
    tau = load_law("powerlines-2025").weight_decay.optimal_tau(1e9, 249e9)  # type: ignore[union-attr]
    assert s.weight_decay == pytest.approx(1e6 / (s.lr * tau * 249e9))


def test_default_blend_status_is_the_weakest_contributor(monkeypatch: pytest.MonkeyPatch) -> None:
    # both shipped contributors are confirmed; with an open far law (porian-2024) the blend must say open
    assert suggest(params="1B", tokens="249B").status == "confirmed"
    monkeypatch.setitem(registry.PRODUCTION_LAW, "dense", "porian-2024")
    s = suggest(params="1B", tokens="249B")
    assert s.law.startswith("default blend: ") and "porian-2024" in s.law and s.status == "open"
    assert any("porian-2024" in w and "OPEN" in w for w in s.warnings)
    moe = suggest(_config("moe", 2.4e9, 1e10))
    assert moe.law.startswith("default blend: ") and "ling-2025" in moe.law and moe.status == "confirmed"


def test_default_blend_leaves_every_sweep_cell_on_steplaw_and_every_published_run_on_the_compute_law(
    sweeps_dir,
) -> None:
    for arch in ("dense", "moe"):
        for cell in group_cells(read_runs(sweeps_dir / f"steplaw_{arch}.csv")):
            active = cell.n_active if arch == "moe" else None
            config = ModelConfig(arch=arch, params=cell.n, active_params=active, tokens=cell.tokens)
            assert [law.id for law, _ in choose(config, resolve_variables).parts] == ["steplaw-2025"]
    for run in published_runs():
        active = run.active_params if run.arch == "moe" else None
        config = ModelConfig(arch=run.arch, params=run.params, active_params=active, tokens=run.tokens)
        parts = choose(config, resolve_variables).parts
        assert len(parts) == 1 and parts[0][0].id != "steplaw-2025", run.id


def test_default_blend_ramp_ends() -> None:
    assert far_weight(1.0) == far_weight(BLEND_START) == 0.0
    assert far_weight(BLEND_END) == far_weight(100.0) == 1.0
    assert far_weight(math.sqrt(BLEND_START * BLEND_END)) == pytest.approx(0.5)


def test_default_blend_compare_marks_the_defaults_laws_with_their_weights() -> None:
    out = CliRunner().invoke(cli, ["suggest", "--params", "1B", "--tokens", "249B", "--compare"]).output
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha() and " " in line}
    assert "default, weight 0.41" in rows["steplaw-2025"] and "default, weight 0.59" in rows["deepseek-llm-2024"]
    assert "default" not in rows["porian-2024"].split("out")[1]
    assert "default (no --law): default blend: deepseek-llm-2024 0.59, steplaw-2025 0.41" in out


def test_default_blend_explicit_compute_law_approximates_m_like_the_default() -> None:
    # issue 20: --law deepseek-llm-2024 refused without a shape while the default used M ≈ 6·N; both approximate now
    explicit = suggest(params="7B", tokens="2T", law="deepseek-llm-2024")
    default = suggest(params="7B", tokens="2T")
    assert default.law == "deepseek-llm-2024" and explicit.lr == pytest.approx(default.lr)
    assert any("M approximated as 6·N_active" in w for w in explicit.warnings)
    shaped = suggest(params="7B", tokens="2T", law="deepseek-llm-2024", n_layers=32, d_model=4096, seq_len=4096)
    assert not any("M approximated" in w for w in shaped.warnings)
