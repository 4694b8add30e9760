"""A path the OS cannot look up (a 400-character name, a NUL byte) is a one-line error naming its option, never a
traceback; OneLineGroup is the last net for any OSError a command did not check (docs/log.md 2026-12-01)."""

import errno

import click
import pytest
from click.testing import CliRunner

from lrpredict.cli import cli
from lrpredict.cli.common import OneLineGroup
from lrpredict.errors import LrpredictError
from lrpredict.paths import checked_path

LONG = "9" * 400


def test_checked_path_refuses_a_name_over_name_max_and_quotes_it_short() -> None:
    with pytest.raises(LrpredictError, match=r"^--data='9{60}… \(400 characters\)' is not valid: .*File name too long"):
        checked_path("--data", LONG)


def test_checked_path_refuses_a_nul_byte_and_lets_a_new_name_through(tmp_path) -> None:
    with pytest.raises(LrpredictError, match="without NUL bytes"):
        checked_path("--out", "a\x00b")
    assert checked_path("--out", tmp_path / "not-yet" / "there") == tmp_path / "not-yet" / "there"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["calibrate", "--replay", LONG], "--replay="),
        (["calibrate", "--dry-run", "--data", LONG], "--data="),
        (["calibrate", "--dry-run", "--target-config", LONG], "--target-config="),
        (["calibrate", "--dry-run", "--out", LONG], "--out="),
        (["calibrate", "--resume", LONG], "--resume="),
        (["calibrate", "--dry-run", "--data", "README.md", "--tokenizer", LONG], "--tokenizer="),
        (["suggest", "--hf-config", LONG, "--tokens", "1T"], "--hf-config="),
        (["laws", "export", "steplaw-2025", LONG], "path="),
        (["show-law", "steplaw-2025", "--plot", "x.png", "--sweeps", LONG], "--sweeps="),
        (["runs", "--ledger", LONG], "--ledger="),
    ],
)
def test_cli_path_over_name_max_is_one_line_naming_the_option(args, field) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {field}"), result.output
    assert "Traceback" not in result.output and len(lines[0]) < 300


def _group_raising(error: OSError) -> click.Group:
    group = OneLineGroup()

    @group.command()
    def boom() -> None:
        raise error

    return group


def test_one_line_group_turns_an_unchecked_path_error_into_exit_2() -> None:
    result = CliRunner().invoke(_group_raising(OSError(errno.ENAMETOOLONG, "File name too long", LONG)), ["boom"])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: File name too long: {'9' * 60}… (400 characters)"


def test_one_line_group_turns_a_machine_error_into_exit_1() -> None:
    result = CliRunner().invoke(_group_raising(OSError(errno.ENOSPC, "No space left on device", "/x")), ["boom"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: No space left on device: /x"


def test_one_line_group_turns_a_nul_byte_into_exit_2() -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--dry-run", "--out", "a\x00b"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "NUL" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["suggest", "--params", "7B", "--tokens", "2T", "--law", "{dir}"], "--law="),
        (["show-law", "{dir}/missing.toml"], "LAW_ID="),
    ],
)
def test_cli_law_path_that_is_a_folder_or_missing_names_the_law_option(tmp_path, args, named) -> None:
    # read_law_file's field is 'path', an option no command has: load_law names the law argument instead
    result = CliRunner().invoke(cli, [a.format(dir=tmp_path) for a in args])
    assert result.exit_code == 2
    assert named in result.output and "path=" not in result.output
