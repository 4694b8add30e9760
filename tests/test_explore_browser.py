"""``lrpredict explore``: the page is self-contained, and in a real headless browser (Debian's chromium driven by
Selenium with the system chromedriver) its numbers equal ``lrpredict suggest --json`` within the tolerance it states.

The browser test fails, not skips, under CI=true when the browser is missing (.ci/browser-setup installs it).
``EXPLORER_SCREENSHOT=docs/img/explorer.png`` also saves the page as the README shows it.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lrpredict.cli import cli
from lrpredict.explore import write_explorer
from lrpredict.explore.grid import BATCH_RATIO_RANGE, D_RANGE, N_RANGE, make_axes
from lrpredict.explore.sources import calibrated_data, chart_laws, law_grid

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dense explorer at 2 grid points a decade (coarser than the default 3: the test is about the page, and the
    tolerance it states is measured for its own grid)."""
    out = tmp_path_factory.mktemp("explore") / "explorer.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LRPREDICT_HOME", str(out.parent / "home"))
        write_explorer(out, "dense", sweeps=Path(__file__).parent / "data" / "sweeps", per_decade=2)
    return out


def payload(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    blob = re.search(r'<script id="explorer-data"[^>]*>([^<]*)</script>', text)
    assert blob is not None
    return json.loads(gzip.decompress(base64.b64decode(blob.group(1))))


def test_explore_page_loads_nothing_from_the_network(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", text, re.I)
    assert text.count("plotly.js v") >= 1 and len(text) < 7_000_000  # one inline plotly.js, compact grids


def test_explore_page_states_its_resolution_and_error(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    data = payload(page)
    stated = data["errors"]["stated"]
    assert set(stated) >= {"lr", "batch", "weight_decay"}
    assert all(stated[q] >= 2 * data["errors"]["measured"][q] for q in stated)
    assert "2 points a decade" in text and "random points" in text
    assert len(data["sweeps"]) > 0 and len(data["laws"]) >= 2


def test_explore_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    out.write_text("mine")
    result = CliRunner().invoke(cli, ["explore", "--out", str(out)])
    assert result.exit_code == 2
    assert "--force" in result.output and len(result.output.strip().splitlines()) == 1
    assert out.read_text() == "mine"


def test_explore_refuses_a_name_that_is_not_html(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["explore", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and ".html" in result.output


def test_explore_draws_only_the_laws_asked_for() -> None:
    assert [law.id for law in chart_laws("dense", ("steplaw-2025",))] == ["steplaw-2025"]
    every = [law.id for law in chart_laws("moe")]
    assert "steplaw-2025" in every and "deepseek-llm-2024" not in every  # fitted on dense only


def test_explore_shows_an_installed_calibrated_law_with_its_interval() -> None:
    from test_calibrate_report_html import _observations

    from lrpredict.calibrate.fit import fit_calibration
    from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated

    fit = fit_calibration(_observations(), bootstrap=0, prior="default")
    schedule = {"kind": "wsd", "description": "test"}
    install_calibrated(calibrated_law(fit, name="team-x", arch="dense", schedule=schedule, provenance={}), "team-x")
    rows = calibrated_data("dense")
    assert [r["id"] for r in rows] == ["team-x"] and rows[0]["prior"] == "steplaw-2025"
    assert rows[0]["validation"] is None  # no [validation] table in this file
    assert calibrated_data("moe") == []
    grid = law_grid("dense", next(law for law in chart_laws("dense") if law.id == "team-x"))
    lr, low, high = (grid.curve(0, 2, q)[10][1] for q in ("lr", "lr_low", "lr_high"))
    assert low < lr < high  # the posterior's 90% interval, drawn as the band


def test_explore_blend_ramp_ends_are_node_pairs() -> None:
    axes = make_axes("dense", 2)
    gaps = [b - a for a, b in zip(axes.n, axes.n[1:], strict=False)]
    assert sum(g < 1e-4 for g in gaps) >= 4  # Step Law's N domain edges and the blend ramp's ends, each twice
    assert 0.0 in [round(b, 9) for b in axes.batch] or any(abs(b) < 1e-5 for b in axes.batch)  # the hinge B = B_opt


def _browser():
    """A headless chromium driven by the system chromedriver (never a downloaded one); None when absent."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        return None
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1500,2300",
    ):
        options.add_argument(arg)
    options.binary_location = binary
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    if driver is None:
        message = "chromium, chromedriver and selenium are needed (.ci/browser-setup installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no browser: {message}")
        pytest.skip(message)
    yield driver
    driver.quit()


def _type(driver, element_id: str, text: str) -> None:
    element = driver.find_element("id", element_id)
    element.clear()
    element.send_keys(text)


def _shown(driver, element_id: str) -> tuple[float, str]:
    element = driver.find_element("id", element_id)
    return float(element.get_attribute("data-value")), element.text


def _parse_shown(text: str) -> float:
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    return float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)


def _points(count: int, seed: int) -> list[tuple[str, str, str | None]]:
    """(N, D, batch or None) inside the grid, log-uniform, half of them at a fixed batch inside the grid's B/B_opt
    range (BATCH_RATIO_RANGE, a little inside its ends)."""
    from lrpredict.suggest import suggest

    rng = random.Random(seed)
    out = []
    for k in range(count):
        n = 10 ** rng.uniform(math.log10(N_RANGE[0]) + 0.01, math.log10(N_RANGE[1]) - 0.01)
        d = 10 ** rng.uniform(math.log10(D_RANGE[0]) + 0.01, math.log10(D_RANGE[1]) - 0.01)
        batch = None
        if k % 2:
            optimal = suggest(params=float(f"{n:.6e}"), tokens=float(f"{d:.6e}")).optimal_batch_tokens
            low, high = (math.log10(r) for r in BATCH_RATIO_RANGE)
            batch = f"{optimal * 10 ** rng.uniform(low + 0.01, high - 0.01):.6e}"
        out.append((f"{n:.6e}", f"{d:.6e}", batch))
    return out


def test_explore_browser_numbers_equal_suggest_json(page: Path, browser) -> None:
    browser.get(page.resolve().as_uri())
    for _ in range(300):
        if browser.execute_script("return document.body.dataset.ready") == "1":
            break
        time.sleep(0.1)
    stated = browser.execute_script("return DATA.errors.stated")
    for n, d, batch in _points(20, seed=22):
        _type(browser, "in-n", n)
        _type(browser, "in-d", d)
        browser.find_element("id", "in-batch-optimal" if batch is None else "in-batch-fixed").click()
        if batch is not None:
            _type(browser, "in-batch", batch)
        args = ["suggest", "--params", n, "--tokens", d, "--json"] + (
            [] if batch is None else ["--batch-tokens", batch]
        )
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        expected = json.loads(result.output)
        assert browser.find_element("id", "problems").text == ""
        for element_id, key, q in (("out-lr", "lr", "lr"), ("out-batch", "batch_tokens", "batch"),
                                   ("out-wd", "weight_decay", "weight_decay")):  # fmt: skip
            value, text = _shown(browser, element_id)
            where = f"N={n} D={d} batch={batch}: {element_id}"
            assert value == pytest.approx(expected[key], rel=stated[q]), where
            assert _parse_shown(text) == pytest.approx(expected[key], rel=stated[q] + 5e-3), where  # 3 digits shown
    if os.environ.get("EXPLORER_SCREENSHOT"):
        _type(browser, "in-n", "1B")
        _type(browser, "in-d", "100B")
        _type(browser, "in-batch", "4M")
        browser.find_element("id", "in-batch-optimal").click()
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(1)
        browser.save_screenshot(os.environ["EXPLORER_SCREENSHOT"])
