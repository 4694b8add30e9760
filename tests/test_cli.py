import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from lrpredict.cli import COMMANDS, cli

MOE_ARGS = ["--arch", "moe", "--params", "12B", "--active-params", "1.3B", "--tokens", "500B"]


def run(args: list[str]):
    return CliRunner().invoke(cli, args)


def test_cli_suggest_prints_lr_law_and_warnings() -> None:
    result = run(["suggest", *MOE_ARGS])
    assert result.exit_code == 0, result.output
    assert "law: ling-2025" in result.output and "peak LR" in result.output
    assert "EXTRAPOLATED" in result.output and "outside the fitted domain" in result.output


def test_cli_suggest_json_is_only_json() -> None:
    result = run(["suggest", *MOE_ARGS, "--json"])
    data = json.loads(result.stdout)
    assert data["law"] == "ling-2025" and data["lr"] > 0 and data["warnings"]


def test_cli_suggest_explain_shows_each_factor() -> None:
    result = run(["suggest", "--params", "400M", "--tokens", "20B", "--explain"])
    assert "derivation:" in result.output and "N^-0.713" in result.output and "cite:" in result.output


def test_cli_suggest_compare_lists_every_absolute_law() -> None:
    result = run(["suggest", *MOE_ARGS, "--layers", "24", "--d-model", "2048", "--seq-len", "4096", "--compare"])
    assert result.exit_code == 0
    for law_id in ("steplaw-2025", "zhou-2026", "ling-2025", "deepseek-llm-2024", "porian-2024"):
        assert law_id in result.output


def test_cli_suggest_relative_law_with_reference() -> None:
    args = ["suggest", "--params", "1B", "--tokens", "80B", "--law", "bjorck-2024"]
    result = run([*args, "--reference-lr", "1e-3", "--reference-tokens", "20B", "--json"])
    assert json.loads(result.stdout)["lr"] == pytest.approx(1e-3 * 4**-0.32)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--params", "7X", "--tokens", "1T"], "--params='7X' is not valid"),
        (["--params", "-1B", "--tokens", "1T"], "--params='-1B' is not valid"),
        (["--params", "0", "--tokens", "1T"], "--params='0' is not valid"),
        (["--params", "nan", "--tokens", "1T"], "--params='nan' is not valid"),
        (["--params", "1B", "--tokens", "inf"], "--tokens='inf' is not valid"),
        (["--tokens", "1T"], "--params is required"),
        (["--arch", "moe", "--params", "1B", "--active-params", "2B", "--tokens", "1T"], "--active-params="),
        (["--arch", "moe", "--params", "1B", "--tokens", "1T", "--n-experts", "4", "--top-k", "8"], "--top-k=8"),
        (["--params", "1B", "--tokens", "1T", "--law", "nope"], "--law='nope' is not valid: one of ["),
        (["--arch", "moe", "--params", "1B", "--tokens", "1T", "--law", "ling-2025"], "give --active-params"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args: list[str], expected: str) -> None:
    result = run(["suggest", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_cli_corrupt_law_file_exits_2(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("schema_version = 1\nid = 'x'\nform = [\n")
    result = run(["suggest", "--params", "1B", "--tokens", "1T", "--law", str(bad)])
    assert result.exit_code == 2 and "bad.toml: toml=" in result.output


def test_cli_show_law_without_an_id_points_to_laws_list() -> None:
    result = run(["show-law"])
    assert result.exit_code == 2 and "LAW_ID" in result.output and "laws list" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_laws_list_shows_every_law_with_its_formula() -> None:
    result = run(["laws", "list"])
    assert result.exit_code == 0
    for law in ("zhou-2026", "steplaw-2025", "bjorck-2024"):
        row = next(line for line in result.output.splitlines() if line.startswith(law + " "))
        assert "=" in row  # its formula, as show-law ID prints it
    assert "η = 0.3118 · C^-0.125" in result.output


@pytest.mark.parametrize("law_id", ["steplaw-2025", "deepseek-llm-2024", "zhou-2026", "bjorck-2024"])
def test_cli_show_law_details(law_id: str) -> None:
    result = run(["show-law", law_id])
    assert result.exit_code == 0
    assert "cite:" in result.output and "domain" in result.output and "status" in result.output
    assert ("predicted peak LR" in result.output) or ("LR multiplier" in result.output)


def test_cli_runs_as_module_in_subprocess() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lrpredict", "suggest", "--params", "1B", "--tokens", "20B", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["law"] == "steplaw-2025"


def test_import_lrpredict_stays_light() -> None:
    code = (
        "import sys, lrpredict, lrpredict.cli; lrpredict.suggest(lrpredict.ModelConfig(params=1e9, tokens=1e10));"
        "print(' '.join(m for m in ('torch', 'numpy', 'scipy', 'requests', 'matplotlib', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_lrpredict_loads_the_rest_of_the_api_on_first_use() -> None:
    """PEP 562 (issue 21): transfer is not built by `import lrpredict`, and is there when asked for."""
    code = (
        "import sys, lrpredict\nprint('lrpredict.transfer' in sys.modules)\n"
        "print(lrpredict.TransferPlan.__name__, callable(lrpredict.transfer), 'lrpredict.transfer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "TransferPlan", "True", "True"]


def test_cli_suggest_and_help_import_only_what_they_need() -> None:
    """Each command's module loads when it runs (issue 21): `--help` lists all of them, `suggest` loads its own."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom lrpredict.cli import cli\n"
        "listing = CliRunner().invoke(cli, ['--help']).output\nafter_help = sorted(sys.modules)\n"
        "CliRunner().invoke(cli, ['suggest', '--params', '1B', '--tokens', '20B'])\n"
        "print(' '.join(m for m in after_help if m.startswith('lrpredict.cli.')))\n"
        "print(' '.join(m for m in sorted(sys.modules) if m.startswith('lrpredict.cli.')))\n"
        "print(' '.join(line.split()[0] for line in listing.split('Commands:')[1].splitlines()[1:8]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "lrpredict.cli.common"
    assert out[1] == "lrpredict.cli.common lrpredict.cli.suggest"  # not calibrate, laws, runs, transfer, show_law
    assert out[2] == "calibrate explore laws runs show-law suggest transfer"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_command_table_help_is_the_commands_own(name: str) -> None:
    """The listing's line for a command (kept in COMMANDS so listing imports nothing) is its docstring's."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    for width in (45, 300):
        listed = click.Command(name, help=COMMANDS[name][1]).get_short_help_str(width)
        assert listed == command.get_short_help_str(width)


def test_cli_suggest_lr_at_small_batch_is_lower() -> None:
    """Issue 3's acceptance check: 128K tokens gets a lower LR than 512K, as the recorded grids show."""
    base = ["suggest", "--arch", "dense", "--params", "1B", "--tokens", "20B", "--json", "--batch-tokens"]
    small, large = json.loads(run([*base, "128K"]).stdout), json.loads(run([*base, "512K"]).stdout)
    assert small["lr"] < large["lr"]
    assert small["weight_decay_law"] == "powerlines-2025" and small["weight_decay"] > 0
    assert small["recommended_schedule"]["kind"] == "wsd"


def test_cli_suggest_weight_decay_law_and_schedule_options() -> None:
    args = ["suggest", *MOE_ARGS, "--law", "zhou-2026", "--schedule", "cosine", "--json"]
    data = json.loads(run([*args, "--weight-decay-law", "wang-aitchison-2024"]).stdout)
    assert data["weight_decay_law"] == "wang-aitchison-2024"
    assert any(w.startswith("schedule mismatch") for w in data["warnings"])
    bad = run(["suggest", *MOE_ARGS, "--weight-decay-law", "steplaw-2025"])
    assert bad.exit_code == 2 and "--weight-decay-law='steplaw-2025'" in bad.output


@pytest.mark.parametrize("fmt", ["hf", "torchtitan", "megatron"])
def test_cli_suggest_format_prints_only_the_export_on_stdout(fmt: str) -> None:
    result = CliRunner().invoke(
        cli, ["suggest", "--params", "1B", "--tokens", "20B", "--seq-len", "4096", "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    if fmt == "hf":
        assert json.loads(result.stdout)["lr_scheduler_type"] == "warmup_stable_decay"
    elif fmt == "torchtitan":
        import tomllib

        assert tomllib.loads(result.stdout)["lr_scheduler"]["decay_type"] == "sqrt"
    else:
        assert result.stdout.startswith("--optimizer adam") and "--lr-decay-style WSD" in result.stdout
    assert "warning: global batch" in result.stderr  # 442K tokens is not a whole number of 4096-token sequences


def test_cli_suggest_paradigm_transfer_shows_both() -> None:
    args = ["suggest", "--params", "1B", "--tokens", "20B", "--d-model", "2048", "--layers", "16", "--paradigm"]
    proxy = ["--proxy-params", "50M", "--proxy-tokens", "1B", "--proxy-d-model", "512", "--proxy-layers", "8"]
    result = run([*args, "transfer", *proxy, "--proxy-lr", "3e-3", "--proxy-wd", "0.1"])
    assert result.exit_code == 0, result.output
    assert "law: steplaw-2025" in result.output and "lrpredict transfer — rule completep" in result.output
    assert "side by side: hidden-matrix peak LR" in result.output
    data = json.loads(run([*args, "transfer", *proxy, "--proxy-lr", "3e-3", "--proxy-wd", "0.1", "--json"]).stdout)
    assert data["fitting"]["law"] == "steplaw-2025" and data["transfer"]["rule"] == "completep"
    missing = run([*args, "transfer", *proxy])
    assert missing.exit_code == 2 and "--proxy-lr is required" in missing.output


def test_show_law_unknown_id_names_the_argument_not_the_law_option() -> None:
    result = CliRunner().invoke(cli, ["show-law", "no-such-law"])
    assert result.exit_code == 2
    assert "LAW_ID='no-such-law' is not valid" in result.output and "--law" not in result.output
    assert "steplaw-2025" in result.output and len(result.output.strip().splitlines()) == 1
    pytest.importorskip("matplotlib")
    unplottable = CliRunner().invoke(cli, ["show-law", "powerlines-2025", "--plot", "never.png"])
    assert unplottable.exit_code == 2 and "LAW_ID='powerlines-2025'" in unplottable.output
