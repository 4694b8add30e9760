"""Issue 23 (hardening, round two): every reproducer of the hostile audit is a case here.  Each ends in one
``Error:`` line with exit status 2 (or a warning naming the bound), never a traceback or a hang, and writes
nothing it should not.  Cases that could block (FIFOs) run in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lrpredict import bounded_read, registry
from lrpredict.cli import cli
from lrpredict.errors import LawFileError, LrpredictError

ROOT = Path(__file__).resolve().parents[1]
REPLAY = ROOT / "docs" / "examples" / "replay_sweep.csv"
HANG_LIMIT_S = 60  # generous on a loaded CI machine; a FIFO read without O_NONBLOCK blocks forever
SUGGEST = ["suggest", "--params", "1B", "--tokens", "20B"]
TRANSFER = ["transfer", "--proxy-params", "50M", "--proxy-tokens", "1B", "--proxy-d-model", "256"]
TRANSFER += ["--proxy-layers", "8", "--params", "1B", "--d-model", "2048", "--layers", "16"]
MOE_CONFIG = {
    "model_type": "qwen2_moe",
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "vocab_size": 32000,
    "num_experts": 60,
    "num_experts_per_tok": 4,
    "moe_intermediate_size": 1408,
    "max_position_embeddings": 131072,
}


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def run_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process: a hang is a failed test after HANG_LIMIT_S, not a stuck suite."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lrpredict", *args], env=environ, capture_output=True, text=True, timeout=HANG_LIMIT_S
    )


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


def _poisoned(tmp_path: Path, section: str, coefficient: str) -> Path:
    """Step Law's file with the coefficient of ``section`` replaced: statically a fine law."""
    text = registry.bundled_text("steplaw-2025").replace('id = "steplaw-2025"', 'id = "poison"')
    head, tail = text.split(f"[{section}]", 1)
    start = tail.index("value = ") + len("value = ")
    end = tail.index(",", start)
    path = tmp_path / f"poison-{section}.toml"
    path.write_text(f"{head}[{section}]{tail[:start]}{coefficient}{tail[end:]}", encoding="utf-8")
    return path


# --- 1. files of unknown size ---------------------------------------------------------------------------------------

DEVICE_CASES = [
    ([*SUGGEST, "--law", "/dev/zero"], "--law"),
    ([*SUGGEST, "--weight-decay-law", "/dev/zero"], "--weight-decay-law"),
    (["show-law", "/dev/zero"], "LAW_ID"),
    (["runs", "--ledger", "/dev/zero"], "--ledger"),
    (["suggest", "--hf-config", "/dev/zero", "--tokens", "1T"], "--hf-config"),
    (["calibrate", "--dry-run", "--prior", "/dev/zero"], "--prior"),
    (["calibrate", "--dry-run", "--target-hf-config", "/dev/zero"], "--target-hf-config"),
    ([*SUGGEST, "--law", "/proc/self/status"], "--law"),
    ([*TRANSFER, "--tokens", "20B", "--proxy-lr", "1e-3", "--proxy-wd", "0.1", "--horizon-rule", "/dev/zero"],
     "--horizon-rule"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "option"), DEVICE_CASES, ids=lambda v: v if isinstance(v, str) else v[0])
def test_device_as_a_user_file_is_refused_naming_the_option(args: list[str], option: str) -> None:
    started = time.monotonic()
    message = one_line_error(run(*args), option)
    assert "regular" in message or "/dev" in message
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "args",
    [
        [*SUGGEST, "--law", "{fifo}"],
        ["runs", "--ledger", "{fifo}"],
        ["suggest", "--hf-config", "{fifo}", "--tokens", "1T"],
    ],
    ids=["law", "ledger", "hf-config"],
)
def test_fifo_as_a_user_file_is_refused_without_blocking(args: list[str], fifo: Path) -> None:
    result = run_process(*[a.format(fifo=fifo) for a in args])
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "pipe (FIFO)" in result.stderr and "Traceback" not in result.stderr


def test_registry_skips_devices_fifos_and_link_loops_with_one_warning_each(_user_home: Path, fifo: Path) -> None:
    laws = _user_home / "laws"
    laws.mkdir(parents=True)
    (laws / "zero.toml").symlink_to("/dev/zero")
    os.mkfifo(laws / "pipe.toml")
    (laws / "loop.toml").symlink_to(laws / "loop.toml")
    for args in (["laws", "list"], [*SUGGEST, "--compare"]):
        result = run_process(*args, env={"LRPREDICT_HOME": str(_user_home)})
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped user law")]
        assert len(warnings) == 3 and "Traceback" not in result.stderr
        assert "steplaw-2025" in result.stdout


def test_link_loop_as_lrpredict_home_is_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    home = str(tmp_path / "a")
    listed = run_process("laws", "list", env={"LRPREDICT_HOME": home})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    out = tmp_path / "out"
    cal = run_process(
        "calibrate", "--replay", str(REPLAY), "--name", "x", "--out", str(out), env={"LRPREDICT_HOME": home}
    )
    assert cal.returncode == 2 and cal.stderr.startswith("Error: LRPREDICT_HOME=") and "Traceback" not in cal.stderr
    assert not out.exists()


def test_bounded_reader_reads_at_most_the_limit_whatever_the_size_says(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"x" * 101)
    assert bounded_read.read_bytes(path, option="--law", limit=101) == b"x" * 101
    with pytest.raises(LrpredictError, match="at most 100 bytes"):
        bounded_read.read_bytes(path, option="--law", limit=100)
    with pytest.raises(LrpredictError, match="a folder"):
        bounded_read.read_bytes(tmp_path, option="--law", limit=100)
    assert bounded_read.nesting('{"a": "[[[[", "b": [[1]]}') == 3  # brackets in strings are not nesting


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["suggest", "--hf-config", "{deep}", "--tokens", "1T"], "--hf-config"),
        (["calibrate", "--dry-run", "--target-config", "{deep}"], "--target-config"),
        (["runs", "--ledger", "{deep_toml}"], "nesting"),
    ],
    ids=["hf-config", "target-config", "ledger"],
)
def test_deep_nesting_is_refused_before_the_parser(args: list[str], option: str, tmp_path: Path) -> None:
    deep, deep_toml = tmp_path / "deep.json", tmp_path / "deep.toml"
    deep.write_text('{"a": ' + "[" * 100_000, encoding="utf-8")
    deep_toml.write_text("schema_version = 1\nrun = " + "[" * 100_000, encoding="utf-8")
    one_line_error(run(*[a.format(deep=deep, deep_toml=deep_toml) for a in args]), option)


def test_dataset_dict_json_nesting_is_refused(tmp_path: Path) -> None:
    from lrpredict.calibrate.hf_text import held_out_split

    (tmp_path / "dataset_dict.json").write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(LrpredictError, match="nested"):
        held_out_split(tmp_path)


# --- 2. output folders and files ------------------------------------------------------------------------------------


def test_calibrate_refuses_a_folder_holding_the_users_files(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my notes", encoding="utf-8")
    (out / "ptx1.toml").write_text("# mine", encoding="utf-8")
    link = tmp_path / "link"
    link.symlink_to(out)
    for target in (out, link):
        one_line_error(run("calibrate", "--replay", str(REPLAY), "--name", "ptx1", "--out", str(target)), "--force")
    assert (out / "report.md").read_text(encoding="utf-8") == "my notes"
    assert sorted(p.name for p in out.iterdir()) == ["ptx1.toml", "report.md"]


def test_calibrate_second_replay_into_one_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    first = run("calibrate", "--replay", str(REPLAY), "--name", "one", "--out", str(out))
    assert first.exit_code == 0, first.output
    report = (out / "report.md").read_text(encoding="utf-8")
    one_line_error(run("calibrate", "--replay", str(REPLAY), "--name", "two", "--out", str(out)), "--out")
    assert (out / "report.md").read_text(encoding="utf-8") == report


@pytest.mark.parametrize("out", ["/", "/etc", "/usr/lib", ""], ids=["root", "etc", "usr-lib", "empty"])
def test_calibrate_refuses_system_folders_and_an_empty_out(out: str) -> None:
    one_line_error(run("calibrate", "--replay", str(REPLAY), "--name", "x", "--out", out), "--out")


def test_calibrate_unwritable_registry_is_refused_before_any_probe(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    out = tmp_path / "out"
    result = run_process(
        "calibrate", "--replay", str(REPLAY), "--name", "x", "--out", str(out), env={"LRPREDICT_HOME": str(blocker)}
    )
    assert result.returncode == 2 and result.stderr.startswith("Error: LRPREDICT_HOME=")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["file", "link"])
def test_plot_never_replaces_a_file_or_writes_through_a_link(kind: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    path = victim if kind == "file" else tmp_path / "link.png"
    if kind == "link":
        path.symlink_to(victim)
    for args in (["show-law", "steplaw-2025", "--plot", str(path)], [*SUGGEST, "--compare", "--plot", str(path)]):
        one_line_error(run(*args), "--plot")
    assert victim.read_bytes() == b"precious"
    if kind == "link":  # --force may replace a file, never a link's target
        one_line_error(run("show-law", "steplaw-2025", "--plot", str(path), "--force"), "symbolic link")
        assert victim.read_bytes() == b"precious"
    else:
        assert run("show-law", "steplaw-2025", "--plot", str(path), "--force").exit_code == 0
        assert victim.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


# --- 3. and 4. plausibility ranges, poisoned laws -------------------------------------------------------------------

ABSURD = [
    (["suggest", "--params", "1B", "--tokens", "1e-300"], "--tokens"),
    (["suggest", "--params", "1B", "--tokens", "1"], "--tokens"),
    (["suggest", "--params", "1e30", "--tokens", "20B"], "--params"),
    ([*SUGGEST, "--law", "bjorck-2024", "--reference-lr", "1e-3", "--reference-tokens", "1e300"],
     "--reference-tokens"),
    ([*SUGGEST, "--law", "bjorck-2024", "--reference-lr", "1e308", "--reference-tokens", "1e9"], "--reference-lr"),
    ([*TRANSFER, "--tokens", "20B", "--proxy-lr", "1e236", "--proxy-wd", "0.1"], "--proxy-lr"),
    ([*TRANSFER, "--tokens", "20B", "--proxy-lr", "1e-3", "--proxy-wd", "1e300"], "--proxy-wd"),
    ([*TRANSFER, "--tokens", "20B", "--proxy-lr", "1e-3", "--proxy-wd", "0.1", "--proxy-batch-tokens", "1e-300"],
     "--proxy-batch-tokens"),
    ([*TRANSFER, "--tokens", "20B", "--proxy-lr", "1e-3", "--proxy-wd", "0.1", "--base-width", "1e-300"],
     "--base-width"),
    ([*TRANSFER, "--tokens", "1e300", "--proxy-lr", "1e-3", "--proxy-wd", "0.1"], "--tokens"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "option"), ABSURD, ids=[f"{a[0]}-{o}-{i}" for i, (a, o) in enumerate(ABSURD)])
def test_absurd_values_are_refused_naming_the_option_and_the_bound(args: list[str], option: str) -> None:
    message = one_line_error(run(*args), option)
    assert " to " in message  # the allowed range is stated


def test_unusual_value_is_accepted_with_a_warning_naming_the_bound() -> None:
    result = run(*SUGGEST, "--law", "bjorck-2024", "--reference-lr", "0.5", "--reference-tokens", "1e9")
    assert result.exit_code == 0
    assert "outside the usual 1e-06–0.1" in result.output


@pytest.mark.parametrize(
    ("section", "coefficient"),
    [("lr", "1e308"), ("lr", "5e-324"), ("lr", "5000.0"), ("batch", "1e-6"), ("batch", "1e12")],
)
def test_poisoned_law_is_refused_at_load_pull_and_export(section: str, coefficient: str, tmp_path: Path) -> None:
    path = _poisoned(tmp_path, section, coefficient)
    with pytest.raises(LawFileError, match=f"{section}.coefficient"):
        registry.read_law_file(path)
    from lrpredict import share

    with pytest.raises(LawFileError):
        share.install(path.read_text(encoding="utf-8"), "poison")
    one_line_error(run(*SUGGEST, "--law", str(path), "--format", "megatron", "--seq-len", "4096"), "within")
    assert not (registry.user_law_dir() / "poison.toml").exists()


# --- 5. hostile config.json -----------------------------------------------------------------------------------------

HOSTILE_CONFIG = {
    "max_position_embeddings": "abc",
    "rope_scaling": {"original_max_position_embeddings": "4096"},
    "mlp_only_layers": 5,
    "num_hidden_layers": 1_000_000_000,
    "vocab_size": 1,
    "head_dim": 0,
    "moe_layer_freq": -1,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [*HOSTILE_CONFIG.items(), ("mlp_only_layers", [[1]]), ("hidden_size", int("9" * 401)),
     ("rope_scaling", {"original_max_position_embeddings": [1]}), ("max_position_embeddings", 4096.7)],
    ids=lambda v: str(v)[:20],
)  # fmt: skip
def test_hostile_config_field_is_one_line_naming_it(field: str, value: object, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**MOE_CONFIG, field: value}), encoding="utf-8")
    started = time.monotonic()
    one_line_error(run("suggest", "--hf-config", str(path), "--tokens", "1T"), "hf_config.")
    assert time.monotonic() - started < 30  # 1e9 layers looped per layer
    if field not in ("max_position_embeddings", "rope_scaling"):  # calibrate reads the shape, not the context
        one_line_error(run("calibrate", "--dry-run", "--target-hf-config", str(path)), "hf_config.")


def test_hf_config_uses_a_stated_default_sequence_length_not_the_context_window(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MOE_CONFIG), encoding="utf-8")
    result = run("suggest", "--hf-config", str(path), "--tokens", "1T")
    assert result.exit_code == 0, result.output
    assert "sequences of 4096" in result.output and "default training sequence length" in result.output
    assert "131072 is the context window" in result.output


# --- 6. data formats and ledgers ------------------------------------------------------------------------------------


def _npy_object(path: Path) -> None:
    import numpy as np

    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _npy_short(path: Path) -> None:
    header = "{'descr': '<u2', 'fortran_order': False, 'shape': (100000000,), }".ljust(117) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 200)


def _megatron_negative(path: Path) -> None:
    header = struct.pack("<9sQBQQ", b"MMIDIDX\x00\x00", 1, 8, 2, 3)
    path.with_suffix(".idx").write_bytes(header + struct.pack("<2i", -5, 10) + struct.pack("<5q", 0, 0, 0, 1, 2))
    path.write_bytes(b"\0" * 100)


DATA_CASES = {
    "obj.npy": _npy_object,
    "random.npy": lambda p: p.write_bytes(os.urandom(4096)),
    "short.npy": _npy_short,
    "meg.bin": _megatron_negative,
    "bad.parquet": lambda p: p.write_bytes(b"PAR1" + os.urandom(300) + b"PAR1"),
}


@pytest.mark.parametrize("name", list(DATA_CASES))
def test_unreadable_data_is_one_line_naming_data(name: str, tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    path = tmp_path / name
    DATA_CASES[name](path)
    out = tmp_path / "out"
    result = run("calibrate", "--dry-run", "--data", str(path), "--out", str(out))
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    last = result.stderr.strip().splitlines()[-1]  # after progress lines ("tokenising ...")
    assert last.startswith("Error: --data=") and "Traceback" not in result.stderr
    assert not out.exists() or not list(out.rglob("*.part"))  # a failed tokenisation leaves no .part


@pytest.mark.parametrize(
    ("text", "needle"),
    [("schema_version = 1\nrun = 5\n", "run=5"), ("schema_version = 1\nrun = [1, 2]\n", "run=[1, 2]")],
)
def test_ledger_run_that_is_not_tables_is_refused(text: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "ledger.toml"
    path.write_text(text, encoding="utf-8")
    one_line_error(run("runs", "--ledger", str(path)), needle)


def test_ledger_duplicate_check_is_linear(tmp_path: Path) -> None:
    row = (
        '[[run]]\nid = "r{i}"\nmodel = "m"\narch = "dense"\nparams = 1e9\ntokens = 2e10\nbatch_tokens = 1e6\n'
        'peak_lr = 3e-4\nsource = "paper, table 1"\nstatus = "paper"\n'
    )
    path = tmp_path / "ledger.toml"
    path.write_text("schema_version = 1\n" + "".join(row.format(i=i) for i in range(40_000)), encoding="utf-8")
    started = time.monotonic()
    from lrpredict.runs import read_ledger

    assert len(read_ledger(path)) == 40_000
    assert time.monotonic() - started < 60  # quadratic: 33 s idle, ~220 s on a loaded CI box; now the TOML parse


def test_replay_cell_over_the_csv_limit_is_one_line(tmp_path: Path) -> None:
    lines = REPLAY.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "big.csv"
    path.write_text("\n".join([lines[0], lines[1], "x" * 140_000]) + "\n", encoding="utf-8")
    one_line_error(run("calibrate", "--replay", str(path), "--name", "x", "--out", str(tmp_path / "o")), "--replay")


@pytest.mark.parametrize(("column", "value"), [("seq_len", "-5"), ("seq_len", "1e300")])
def test_replay_shape_columns_are_bounded(column: str, value: str, tmp_path: Path) -> None:
    lines = REPLAY.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index(column)] = value
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n", encoding="utf-8")
    one_line_error(run("calibrate", "--replay", str(path), "--name", "x", "--out", str(tmp_path / "o")), column)


# --- 7. names, options, .part files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["calibrate", "--replay", str(REPLAY), "--name", "ok\n"], "--name"),
        (["calibrate", "--dry-run", "--device", "cpu\n"], "--device"),
        (["calibrate", "--dry-run", "--tokenizer", "tok.json"], "--tokenizer"),
        (["calibrate", "--dry-run", "--text-column", "body"], "--text-column"),
        (["calibrate", "--dry-run", "--token-dtype", "uint32"], "--token-dtype"),
        (["calibrate", "--dry-run", "--data", "/"], "--data"),
        ([*SUGGEST, "--weight-decay-law", "nope"], "--weight-decay-law"),
    ],
    ids=["name-newline", "device-newline", "tokenizer", "text-column", "token-dtype", "data-root", "wd-law"],
)
def test_names_and_ignored_options_are_refused_naming_the_option(args: list[str], option: str, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    one_line_error(run(*args), option)
    assert list(tmp_path.iterdir()) == [tmp_path / "lrpredict-home"] or not list(tmp_path.glob("calibrate-*"))


def test_stale_part_files_of_killed_pulls_are_removed_and_the_users_are_not(_user_home: Path) -> None:
    laws = _user_home / "laws"
    laws.mkdir(parents=True)
    ours, users, fresh = laws / ".mine.toml.ab12cd34.part", laws / "notes.part", laws / ".new.toml.zz99yy88.part"
    for path in (ours, users, fresh):
        path.write_text("", encoding="utf-8")
    old = time.time() - 7200
    os.utime(ours, (old, old))
    os.utime(users, (old, old))
    registry.user_laws()
    assert not ours.exists() and users.exists() and fresh.exists()  # fresh: a concurrent pull may be writing it


def test_law_title_with_a_line_separator_is_refused(tmp_path: Path) -> None:
    text = registry.bundled_text("steplaw-2025").replace('id = "steplaw-2025"', 'id = "sep"')
    text = text.replace('title = "', 'title = "a\u2028b ', 1)
    with pytest.raises(LawFileError, match="title"):
        registry.parse_law(text, "sep.toml")


# --- 8. newcomer papercuts ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_ends_a_calibration_with_the_continue_line(tmp_path: Path) -> None:
    """What SLURM and Kubernetes send: the finished probes are kept and the resume command printed, as for Ctrl-C."""
    import signal

    pytest.importorskip("torch")
    out = tmp_path / "cal"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LRPREDICT_HOME": str(tmp_path / "home")}
    args = ["--name", "term", "--workers", "1", "--sizes", "32", "--lrs", "3", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrpredict", "calibrate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / "plan.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (out / "plan.json").exists(), proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, stderr[-2000:]
    assert f"continue with: lrpredict calibrate --resume {out} --workers 1" in stderr
    assert "Traceback" not in stderr


def test_help_and_messages_say_what_hf_config_replaces() -> None:
    help_text = run("suggest", "--help").output
    assert "[required unless --hf-config]" in help_text
    message = one_line_error(run("suggest", "--params", "1B"), "--tokens is required")
    assert "--hf-config" not in message  # a config.json holds no token count


def test_transfer_lists_expert_groups_only_for_moe() -> None:
    result = run(*TRANSFER, "--tokens", "20B", "--proxy-lr", "3e-3", "--proxy-wd", "0.1")
    assert result.exit_code == 0, result.output
    assert "expert_ffn" not in result.output and "router" not in result.output.split("forward multipliers")[0]


def test_megatron_export_states_the_embedding_decay_caveat() -> None:
    result = run(*SUGGEST, "--seq-len", "4096", "--format", "megatron")
    assert result.exit_code == 0, result.output
    assert "Megatron decays embeddings too" in result.stderr and "--lr" in result.stdout


def test_lr_range_says_which_kind_in_text_and_json() -> None:
    text = run(*SUGGEST).output
    assert "loss band: expected within 0.25% of the best loss" in text
    data = json.loads(run(*SUGGEST, "--json").stdout)
    assert "loss band" in data["lr_range"]["meaning"]


def test_compare_marks_the_default_law() -> None:
    result = run(*SUGGEST, "--compare")
    assert result.exit_code == 0, result.output
    # issue 20's blend marks each row the default takes with its weight, and the table ends with the default's label
    marked = [line for line in result.output.splitlines() if "default, weight" in line]
    assert len(marked) == 1 and marked[0].startswith("steplaw-2025") and "weight 1" in marked[0]
    assert any(line.startswith("default (no --law): steplaw-2025") for line in result.output.splitlines())


def test_memory_guard_sees_ulimit_v() -> None:
    resource = pytest.importorskip("resource")
    limit = 3 << 30
    code = "from lrpredict.calibrate.clock import available_memory; print(available_memory('cpu'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT_S,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) <= limit


def test_suggestion_batch_sequences_is_the_batch_in_whole_sequences() -> None:
    from lrpredict.config import ModelConfig
    from lrpredict.suggest import suggest

    s = suggest(ModelConfig(params=1e9, tokens=2e10, seq_len=4096))
    assert isinstance(s.batch_sequences, int) and s.batch_sequences == round(s.batch_tokens / 4096)
    assert json.loads(s.to_json())["batch_sequences"] == s.batch_sequences  # in the JSON users parse
    assert f"≈ {s.batch_sequences} sequences of 4096" in str(s)
    assert suggest(ModelConfig(params=1e9, tokens=2e10)).batch_sequences is None  # no sequence length: no count
    given = suggest(ModelConfig(params=1e9, tokens=2e10, seq_len=4096, batch_tokens=4096 * 1.4))
    assert given.batch_sequences == 1


def test_calibrated_law_of_many_cells_stays_under_the_registry_limit(tmp_path: Path, monkeypatch) -> None:
    """A 1,550-cell replay wrote a 296 KB law the registry refused, found only after the fit (issue 23, item 8)."""
    import tomllib

    from lrpredict.calibrate.fit import Observation, fit_calibration
    from lrpredict.calibrate.lawfile import MAX_CELL_ROWS, MAX_NOTED_WARNINGS, calibrated_law, install_calibrated
    from lrpredict.law_checks import MAX_BYTES

    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    cells = [(n, 4e9 * 1.003**j, 9 * n**-0.5) for n in (2e8, 4e8, 8e8, 1.6e9) for j in range(400)]
    obs = [
        Observation(n, d, opt * 2 ** (k - 2), 3.0 + 0.05 * (k - 2) ** 2, 1e5) for n, d, opt in cells for k in range(5)
    ]
    fit = fit_calibration(obs, bootstrap=0)
    fit.warnings.extend(f"warning {i} " + "x" * 200 for i in range(500))  # one per cell, as unbracketed cells give
    text = calibrated_law(fit, name="many", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={})
    assert len(text.encode()) < MAX_BYTES // 2
    provenance = tomllib.loads(text)["provenance"]
    rows = provenance["cells"]
    assert len(rows) == MAX_CELL_ROWS and "1600 fitted cells" in provenance["cells_note"]
    assert rows[0]["N"] == 2e8 and rows[-1]["N"] == 1.6e9  # spread over the sizes, the extremes kept
    assert f"and {len(fit.warnings) - MAX_NOTED_WARNINGS} more" in tomllib.loads(text)["notes"]
    assert install_calibrated(text, "many").id == "many"


def test_replay_of_pure_random_losses_is_refused_before_any_fit(tmp_path: Path) -> None:
    """Issue 23: a sweep of random losses was fitted and installed; now a permutation test refuses it."""
    import csv
    import random

    rows = list(csv.DictReader((ROOT / "docs" / "examples" / "replay_sweep.csv").open()))
    rng = random.Random(0)
    for row in rows:
        row["final_loss"] = f"{rng.uniform(2.5, 3.5):.6f}"
    path = tmp_path / "random.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run("calibrate", "--replay", str(path), "--name", "rnd", "--out", str(tmp_path / "out"))
    one_line_error(result, "--replay")
    assert "depend on the LR" in result.output and "p = " in result.output
    assert not (tmp_path / "out").exists()  # refused before it wrote anything: no folder left behind


def test_lr_signal_separates_parabolas_from_shuffled_losses() -> None:
    import random

    from lrpredict.calibrate.lr_signal import lr_signal

    rng = random.Random(1)
    lrs = [1e-3 * 2 ** (k / 2) for k in range(7)]
    bowls = [[(lr, 3.0 + 0.05 * (k - 3) ** 2 + rng.gauss(0, 0.01)) for k, lr in enumerate(lrs)] for _ in range(10)]
    real = lr_signal(bowls)
    assert real is not None and not real.no_signal and real.p_value < 0.01
    noise = [[(lr, rng.uniform(2.5, 3.5)) for lr in lrs] for _ in range(10)]
    assert lr_signal(noise).no_signal  # type: ignore[union-attr]
    assert lr_signal([[(1e-3, 3.0), (2e-3, 2.9), (4e-3, 3.1)]]) is None  # 3 points: a parabola fits any losses
    assert lr_signal([[(lr, 3.0) for lr in lrs]]).no_signal  # type: ignore[union-attr]  # perfectly flat


def test_refused_calibration_leaves_a_folder_it_did_not_create(tmp_path: Path) -> None:
    from lrpredict.calibrate.lock import LOCK_NAME, folder_lock

    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(LrpredictError), folder_lock(mine):
        raise LrpredictError("x", 1, "y")
    assert mine.is_dir()  # the user's folder stays (only its lock file is left, as after any run)
    fresh = tmp_path / "fresh"
    with pytest.raises(LrpredictError), folder_lock(fresh):
        raise LrpredictError("x", 1, "y")
    assert not fresh.exists()
    with folder_lock(fresh) as held:
        (held / "report.md").write_text("kept")
    assert (fresh / "report.md").is_file() and (fresh / LOCK_NAME).is_file()  # a run that wrote keeps its folder
