"""Issue 15, the law side: a law is validated before it is installed, loaded or used; every number suggest returns is
finite and positive; a broken user file is skipped with one warning; bad CLI input is one line, exit 2."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import lrpredict
from lrpredict import law_checks, registry, share
from lrpredict.cli import cli
from lrpredict.config import ModelConfig
from lrpredict.errors import LawFileError, LrpredictError
from lrpredict.transfer import transfer

HOSTILE_DIR = Path(__file__).parent / "data" / "hostile_laws"
HOSTILE = sorted(HOSTILE_DIR.glob("*.toml"))
# the field each hostile file must be refused for: the refusal is for the planted fault, not something else
REFUSED_FIELD = {
    "bidi_override_citation": "citation",
    "control_char_in_note": "lr.exponents.N.note",
    "control_char_in_provenance_key": "provenance.'evil\\x1bkey'",
    "control_chars_title": "title",
    "deep_dotted_keys": "nesting",
    "deep_nesting_arrays": "nesting",
    "deep_nesting_inline_tables": "nesting",
    "hinge_exponent_50": "lr_batch.s_above",
    "horizon_exponent_nan": "lr.exponent",
    "huge_exponent": "lr.exponents.N",
    "inf_coefficient": "lr.coefficient",
    "nan_coefficient": "lr.coefficient",
    "nan_domain": "domain.D",
    "nan_exponent": "lr.exponents.D",
    "nan_optimizer_beta": "optimizer.beta2",
    "negative_batch_coefficient": "batch.coefficient",
    "negative_coefficient": "lr.coefficient",
    "negative_domain": "domain.D",
    "negative_infinite_exponent": "batch.exponents.D",
    "negative_scale": "batch.scales.B",
    "posterior_bounds_exceed_cells": "posterior",
    "prior_sd_huge": "lr.exponents.N.prior_sd",
    "posterior_negative_unbracketed": "posterior.unbracketed_cells",
    "newline_in_title": "title",
    "unordered_domain": "domain.N",
    "zero_coefficient": "lr.coefficient",
    "zero_tau_weight_decay": "weight_decay.tau",
}
CONFIG = ModelConfig(params="400M", tokens="20B")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def test_hostile_corpus_covers_every_file() -> None:
    assert {p.stem for p in HOSTILE} == set(REFUSED_FIELD)


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_hostile_law_refused_by_load_naming_the_fault(path: Path) -> None:
    with pytest.raises(LawFileError) as caught:
        registry.read_law_file(path)
    assert caught.value.field == REFUSED_FIELD[path.stem]
    assert caught.value.where == path.name
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message  # safe to print


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_hostile_law_refused_by_install(path: Path, _user_home: Path) -> None:
    with pytest.raises(LawFileError):
        share.install(path.read_text(encoding="utf-8"), "hostile")
    assert not (_user_home / "laws").exists() or list((_user_home / "laws").iterdir()) == []


def test_deep_nesting_refused_before_the_parser_recurses() -> None:
    # issue 15: an 11 KB file of nested arrays raised RecursionError inside tomllib
    text = (HOSTILE_DIR / "deep_nesting_arrays.toml").read_text(encoding="utf-8")
    assert 10_000 < len(text) < 12_000
    with pytest.raises(LawFileError, match="at most 16 nested"):
        registry.parse_law(text, "deep.toml")
    # brackets inside strings and comments are not nesting
    law_checks.check_text(
        'a = "[[[[[[[[[[[[[[[[[[[[[["\n# {{{{{{{{{{{{{{{{{{{{{{{{\nb = """[[[[[[[[[[[[[[[[[[[["""\n', "x"
    )


def test_oversize_law_file_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("# padding\n" * (law_checks.MAX_BYTES // 10 + 1), encoding="utf-8")
    with pytest.raises(LawFileError, match="at most 262144 bytes") as caught:
        registry.read_law_file(path)
    assert caught.value.field == "size"
    with pytest.raises(LawFileError, match="at most 262144 bytes"):
        share.install(path.read_text(encoding="utf-8"), "huge")
    result = invoke("show-law", str(path))
    assert_one_line_error(result, "size=")


def test_hostile_local_law_never_reaches_an_export(tmp_path: Path) -> None:
    # issue 15: `suggest --law law-neg --format megatron` printed --lr -0.000996 with exit 0
    for name in ("negative_coefficient", "nan_coefficient", "huge_exponent"):
        result = invoke(
            "suggest", "--params", "400M", "--tokens", "20B", "--law", str(HOSTILE_DIR / f"{name}.toml"),
            "--format", "megatron",
        )  # fmt: skip
        assert_one_line_error(result, f"{name}.toml")


def test_law_built_in_python_is_checked_when_used() -> None:
    good = registry.load_law("steplaw-2025")
    assert good.lr is not None
    bad_coefficient = good.lr.coefficient.model_copy(update={"value": -1.79})
    bad = good.model_copy(update={"lr": good.lr.model_copy(update={"coefficient": bad_coefficient})})
    with pytest.raises(LrpredictError, match=r"lr\.coefficient=-1\.79"):
        lrpredict.suggest(CONFIG, bad)


def test_law_whose_numbers_overflow_is_an_error_naming_it(tmp_path: Path) -> None:
    # inside every static check (c finite > 0, |exponent| <= 3) yet c·N^3 overflows to inf at N = 4e8
    text = (HOSTILE_DIR.parent.parent.parent / "coefficients" / "porian-2024.toml").read_text(encoding="utf-8")
    text = text.replace('id = "porian-2024"', 'id = "overflowing"').replace("value = 3.7,", "value = 1e300,", 1)
    text = text.replace("exponents.N = { value = -0.36,", "exponents.N = { value = 3.0,", 1)
    path = tmp_path / "overflowing.toml"
    path.write_text(text, encoding="utf-8")
    # issue 23: a law is evaluated across its own domain at load, so it is refused before any use
    with pytest.raises(LawFileError, match=r"overflowing.toml: lr\.coefficient=1e\+300.*it gives inf"):
        registry.read_law_file(path)
    result = invoke("suggest", "--params", "400M", "--tokens", "20B", "--law", str(path), "--format", "hf")
    assert_one_line_error(result, "overflowing")

    # a tiny unit makes N/scale huge and ** raise OverflowError (not inf): refused at load the same way
    text = text.replace("value = 1e300,", "value = 3.7,", 1).replace(
        'form = "power_law"\n', 'form = "power_law"\nscales.N = { value = 1e-200, status = "open" }\n', 1
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LawFileError, match=r"lr\.coefficient=3\.7.*it gives inf"):
        registry.read_law_file(path)


def test_absurd_sizes_are_refused_before_any_law_runs() -> None:
    # N = D = 1e200 once reached the default law and failed inside it (ZeroDivisionError); issue 23's bounds refuse
    # it at the config, naming the field and the range (lrpredict.bounds)
    with pytest.raises(LrpredictError, match=r"params=1e\+200 is not valid: 1000 to 1e\+14") as caught:
        ModelConfig(params="1e200", tokens="1e200")
    assert caught.value.field == "params"
    result = invoke("suggest", "--params", "1e200", "--tokens", "1e200")
    assert_one_line_error(result, "--params")


def test_check_output_refuses_every_bad_number() -> None:
    for bad in (math.nan, math.inf, -1e-3, 0.0, None, "1e-3"):
        with pytest.raises(LrpredictError, match="law-x"):
            law_checks.check_output("law-x", {"lr": bad})
    with pytest.raises(LrpredictError, match=r"weight_decay_groups\[matrices\]"):
        law_checks.check_output("law-x", {"weight_decay_groups": {"matrices": math.nan, "norms": 0.0}})
    law_checks.check_output("law-x", {"lr": 1e-3, "weight_decay_groups": {"matrices": 0.1, "norms": 0.0}})


def test_suggest_tiny_params_is_a_clean_error() -> None:
    # issue 15: --params 1e-300 raised ZeroDivisionError through the CLI
    result = invoke("suggest", "--params", "1e-300", "--tokens", "1T")
    assert_one_line_error(result, "--params=1e-300")


def test_broken_user_law_is_skipped_with_one_warning(_user_home: Path) -> None:
    laws_dir = _user_home / "laws"
    laws_dir.mkdir(parents=True)
    (laws_dir / "law-neg.toml").write_text((HOSTILE_DIR / "negative_coefficient.toml").read_text(), encoding="utf-8")
    (laws_dir / "garbage.toml").write_bytes(b"\xff\xfe not toml")
    share.install((HOSTILE_DIR.parent.parent.parent / "coefficients" / "steplaw-2025.toml").read_text().replace(
        'id = "steplaw-2025"', 'id = "mine"'), "mine")  # fmt: skip

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = [law.id for law in registry.laws()]
    assert "mine" in ids and "law-neg" not in ids
    assert sorted(str(w.message).split(":")[0] for w in caught) == [
        "skipped user law garbage.toml",
        "skipped user law law-neg.toml",
    ]

    for args in (
        ("laws", "list"),
        ("show-law", "mine"),
        ("suggest", "--params", "400M", "--tokens", "20B", "--compare"),
        ("suggest", "--params", "400M", "--tokens", "20B", "--law", "mine"),
    ):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        # one line per broken file, each once however often the command lists the laws (none when it lists none)
        assert all(line.startswith("warning: skipped user law") for line in lines), (args, result.stderr)
        assert len(lines) == (0 if "mine" in args else 2), (args, result.stderr)
    result = invoke("show-law", "law-neg")  # asked for by name: the reason, in one line
    assert_one_line_error(result, "lr.coefficient=-1.79")


@pytest.mark.parametrize(
    "args",
    [
        ("suggest", "--bogus"),
        ("suggest", "--arch", "tpu"),
        ("suggest", "--layers", "many"),
        ("nope",),
        ("laws", "pull"),
        ("laws", "frobnicate"),
        ("show-law", "a", "b"),
        ("transfer", "--bogus"),
    ],
)
def test_click_usage_error_is_one_line(args: tuple[str, ...]) -> None:
    # issue 15: click printed Usage, Try, blank, Error — four lines
    assert_one_line_error(invoke(*args))


@pytest.mark.parametrize(
    ("extra", "first", "second"),
    [
        (("--compare", "--law", "steplaw-2025"), "--compare", "--law"),
        (("--compare", "--format", "megatron"), "--compare", "--format"),
        (("--compare", "--format", "hf"), "--compare", "--format"),
        (("--compare", "--explain"), "--compare", "--explain"),
        (("--json", "--format", "torchtitan"), "--json", "--format"),
        (("--explain", "--format", "json"), "--explain", "--format"),
        (("--proxy-lr", "1e-3"), "--proxy", "--paradigm"),
        (("--reference-lr", "1e-3", "--reference-tokens", "10B"), "--reference-lr", "bjorck-2024"),
        (("--law", "steplaw-2025", "--reference-tokens", "10B"), "--reference-tokens", "steplaw-2025"),
    ],
)
def test_suggest_ignored_option_combination_refused(extra: tuple[str, ...], first: str, second: str) -> None:
    result = invoke("suggest", "--params", "400M", "--tokens", "20B", *extra)
    assert_one_line_error(result, first, second)


def test_reference_lr_still_works_with_relative_law_and_compare() -> None:
    ref = ("--reference-lr", "1e-3", "--reference-tokens", "10B")
    assert invoke("suggest", "--params", "400M", "--tokens", "20B", "--law", "bjorck-2024", *ref).exit_code == 0
    result = invoke("suggest", "--params", "400M", "--tokens", "20B", "--compare", "--json", *ref)
    assert result.exit_code == 0, result.output
    rows = {row["law"]: row for row in json.loads(result.stdout)}
    assert "lr" in rows["bjorck-2024"] and "lr" in rows["steplaw-2025"]  # absolute laws ignore no option here


def test_api_refuses_none_config_and_bool_sizes() -> None:
    # issue 15: suggest(None) and transfer(None, ...) raised AttributeError; params=True was read as 1.0
    with pytest.raises(LrpredictError):
        lrpredict.suggest(None)
    with pytest.raises(LrpredictError, match="proxy"):
        transfer(None, {"lr": 1e-3}, CONFIG)  # type: ignore[arg-type]
    with pytest.raises(LrpredictError, match="target"):
        transfer(ModelConfig(params="50M", tokens="1B", d_model=256, n_layers=4), {"lr": 1e-3}, None)  # type: ignore[arg-type]
    with pytest.raises(LrpredictError):
        lrpredict.compare(None)  # type: ignore[arg-type]
    for field in ("params", "tokens"):
        with pytest.raises(LrpredictError, match=field):
            ModelConfig(**{"params": "1B", "tokens": "20B", field: True})
    with pytest.raises(LrpredictError, match="law"):
        registry.load_law(None)  # type: ignore[arg-type]


def test_bundled_laws_pass_every_check() -> None:
    for law in registry.bundled_laws():
        law_checks.check_law(law)
        text = registry.bundled_text(law.id)
        assert text is not None and len(text.encode()) < law_checks.MAX_BYTES / 50


def test_lrpredict_error_outside_handles_errors_is_still_one_line() -> None:
    import click

    from lrpredict.cli.common import OneLineGroup

    @click.group(cls=OneLineGroup)
    def group() -> None:
        pass

    @group.command()
    def undecorated() -> None:
        raise LrpredictError("thing", "x\ny", "one line\nalways")

    result = CliRunner().invoke(group, ["undecorated"])
    assert_one_line_error(result, "thing=", "always")


def test_group_without_command_shows_its_help() -> None:
    result = invoke("laws")
    assert result.exit_code == 2 and result.stderr.startswith("Usage: ") and "pull" in result.stderr
