"""Pictures: show-law --plot, suggest --compare --plot and the calibration report's figures (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

import lrpredict
from lrpredict.cli import cli
from lrpredict.errors import LrpredictError
from lrpredict.plot import law_curve, plot_compare, plot_law

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000


def test_plot_law_writes_a_png_with_sweep_optima(tmp_path: Path, sweeps_dir: Path) -> None:
    out = plot_law(lrpredict.load_law("steplaw-2025"), tmp_path / "steplaw.png", sweeps=sweeps_dir)
    assert _is_png(out)


def test_law_curve_is_solid_only_inside_the_fitted_domain() -> None:
    law = lrpredict.load_law("steplaw-2025")
    curve = law_curve(law, "lr", [1e8, 5e8, 1e10], 1e10)
    assert [inside for _, _, inside in curve] == [False, True, False]  # N domain 2.1e8–1.1e9
    assert curve[1][1] == pytest.approx(law.lr.evaluate({"N": 5e8, "D": 1e10}))


def test_plot_law_refuses_laws_without_an_absolute_lr(tmp_path: Path) -> None:
    for law_id in ("bjorck-2024", "powerlines-2025"):
        with pytest.raises(LrpredictError, match=r"^law="):
            plot_law(lrpredict.load_law(law_id), tmp_path / "x.png")
    with pytest.raises(LrpredictError, match=r"^plot=.*\.png"):
        plot_law(lrpredict.load_law("steplaw-2025"), tmp_path / "x.pdf")


def test_plot_compare_draws_every_answering_law(tmp_path: Path) -> None:
    config = lrpredict.ModelConfig(params="1B", tokens="20B", n_layers=24, d_model=2048, seq_len=4096)
    assert _is_png(plot_compare(config, lrpredict.compare(config), tmp_path / "compare.png"))


def test_cli_show_law_and_compare_plot(tmp_path: Path, sweeps_dir: Path) -> None:
    law_png, compare_png = tmp_path / "law.png", tmp_path / "cmp.png"
    runner = CliRunner()
    result = runner.invoke(cli, ["show-law", "steplaw-2025", "--plot", str(law_png), "--sweeps", str(sweeps_dir)])
    assert result.exit_code == 0, result.output
    assert _is_png(law_png) and "plot written" in result.stderr and "steplaw-2025" in result.stdout
    args = ["suggest", "--params", "1B", "--tokens", "20B", "--compare", "--plot", str(compare_png)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert _is_png(compare_png)
    lonely = runner.invoke(cli, ["suggest", "--params", "1B", "--tokens", "20B", "--plot", str(compare_png)])
    assert lonely.exit_code == 2 and "--compare" in lonely.output


def test_report_colours_are_distinct_for_many_cells() -> None:
    import matplotlib.pyplot as plt

    from lrpredict.calibrate.report import _colours

    colours = _colours(plt, 27)
    assert len(set(colours)) == 27  # the old report cycled 10 colours over 15+ entries


def test_plot_footnote_names_only_what_the_law_draws() -> None:
    from lrpredict.plot import footnote
    from lrpredict.registry import load_law

    step, deepseek = footnote(load_law("steplaw-2025")), footnote(load_law("deepseek-llm-2024"))
    assert "shaded: fitted N range" in step and "6·N" not in step  # N and D law: no M approximation
    assert "shaded" not in deepseek and "M ≈ 6·N" in deepseek  # domain in C: nothing is shaded


@pytest.mark.parametrize(
    "args",
    [
        ["show-law", "steplaw-2025", "--plot", ""],
        ["suggest", "--params", "1B", "--tokens", "20B", "--compare", "--plot", ""],
    ],
)
def test_cli_empty_plot_name_is_refused_not_ignored(args) -> None:
    # an empty --plot was falsy: no plot, exit 0, nothing said (QA 2026-12-01)
    from click.testing import CliRunner

    from lrpredict.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--plot='' is not valid" in result.output
