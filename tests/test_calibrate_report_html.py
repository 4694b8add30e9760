"""calibrate's report.html (calibrate/report_html.py): written next to report.md with plotly, skipped in one line
without it — the calibration itself never fails for want of a picture."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

from lrpredict.calibrate.fit import Observation, fit_calibration
from lrpredict.calibrate.report import write_report


def _observations() -> list[Observation]:
    """Probes whose loss is a parabola in ln LR around η* = 0.02·N^-0.2·D^0.05 (bracketed: LRs on both sides)."""
    out = []
    for n in (2e7, 8e7):
        for tokens in (4e8, 1.6e9):
            best = math.log(0.02 * n**-0.2 * tokens**0.05)
            for step in range(-3, 4):
                lr = math.exp(best + 0.5 * step)
                out.append(
                    Observation(n=n, tokens=tokens, lr=lr, loss=3.0 + 0.05 * (0.5 * step) ** 2, batch_tokens=65536)
                )
    return out


def _write(out: Path) -> str:
    observations = _observations()
    fit = fit_calibration(observations, bootstrap=20, prior="default")
    write_report(out, fit, observations, title="test calibration", law_id=None, summary=[])
    return (out / "report.md").read_text(encoding="utf-8")


def test_calibrate_report_html_written_next_to_report_md(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    markdown = _write(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "[report.html](report.html)" in markdown
    for heading in ("Loss against LR per cell", "Cell optima against the law", "Prior and posterior"):
        assert heading in page
    assert page.count("plotly.js v") == 1  # one inline copy, nothing fetched
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)\s*=", page, re.I)


def test_calibrate_report_html_skipped_without_plotly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")] + ["plotly"]:
        monkeypatch.setitem(sys.modules, name, None)
    markdown = _write(tmp_path)
    assert not (tmp_path / "report.html").exists()
    assert markdown.count("report.html skipped: plotly is not installed") == 1
