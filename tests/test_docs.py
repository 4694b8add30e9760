"""Docs that run: every python block of README.md and docs/*.md executes, the README's law table agrees with the
law files, every public function's docstring example runs (doctest), and each command's --help ends with examples."""

from __future__ import annotations

import doctest
import hashlib
import http.server
import importlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_readme_starts_with_two_one_line_commands() -> None:
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert block[0].startswith("pip install . && lrpredict suggest ")
    assert "python -m pytest" in block[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert block[1] in ci  # CI runs the README's test command verbatim


@pytest.fixture
def law_server() -> Iterator[tuple[str, str]]:
    """A bundled law file served on 127.0.0.1: (url, sha256), the two things docs/sharing.md says you are given."""
    from lrpredict.registry import bundled_text

    body = (bundled_text("steplaw-2025") or "").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/team-lr.toml", hashlib.sha256(body).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("doc", [d for d in DOCS if PYTHON_BLOCK.search(d.read_text())], ids=lambda d: d.name)
def test_docs_python_blocks_run(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> None:
    """The blocks of one file run in order in one namespace (later blocks may use earlier names), in a scratch
    directory; a few names the text says you bring (a URL and its digest) are provided."""
    given: dict[str, object] = {}
    if doc.name == "sharing.md":
        given["url"], given["sha256"] = request.getfixturevalue("law_server")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__", **given}
    for i, block in enumerate(PYTHON_BLOCK.findall(doc.read_text())):
        try:
            exec(compile(block, f"{doc.name}[python block {i + 1}]", "exec"), namespace)
        except Exception as exc:  # name the block: the traceback's file name is the block
            raise AssertionError(f"{doc.name}, python block {i + 1} fails: {exc!r}\n{block}") from exc


def _readme_law_rows() -> dict[str, str]:
    table = README.read_text().split("## Laws shipped", 1)[1]
    rows: dict[str, str] = {}
    for match in re.finditer(r"^\| `([^`]+)` \|[^|]*\|[^|]*\| ([^|]+) \|$", table, re.M):
        ids, status = match.group(1), match.group(2).strip()
        brace = re.search(r"\{([^}]+)\}", ids)
        for part in brace.group(1).split(",") if brace else [None]:
            rows[ids.replace(brace.group(0), part) if brace else ids] = status
    return rows


def test_readme_law_table_matches_the_law_files() -> None:
    from lrpredict.registry import bundled_laws

    rows = _readme_law_rows()
    laws = {law.id: law for law in bundled_laws()}
    assert set(rows) == set(laws), "README's table must list every bundled law and no other"
    for law_id, status in rows.items():
        shown = re.sub(r"[*_]", "", status).split()[0].strip(",")
        assert shown == laws[law_id].status, f"README says {law_id} is {status!r}; its file says {laws[law_id].status}"


PUBLIC_MODULES = [
    "lrpredict",
    "lrpredict.architecture",
    "lrpredict.config",
    "lrpredict.hf_config",
    "lrpredict.suggest",
    "lrpredict.transfer",
    "lrpredict.export",
    "lrpredict.registry",
    "lrpredict.units",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} fail (python -m doctest -v)"


def test_public_api_functions_have_docstring_examples() -> None:
    import lrpredict

    documented = {
        "suggest": lrpredict.suggest,
        "count_parameters": lrpredict.count_parameters,
        "transfer": lrpredict.transfer.transfer,
        "ModelConfig.from_architecture": lrpredict.ModelConfig.from_architecture,
        "ModelConfig.from_hf_config": lrpredict.ModelConfig.from_hf_config,
        "ModelConfig.params_for": lrpredict.ModelConfig.params_for,
        "compare": lrpredict.compare,
        "laws": lrpredict.laws,
        "load_law": lrpredict.load_law,
        "parse_size": lrpredict.parse_size,
    }
    missing = [name for name, fn in documented.items() if ">>>" not in (fn.__doc__ or "")]
    assert not missing, f"public functions without a docstring example: {missing}"


def _commands() -> list[tuple[str, ...]]:
    from lrpredict.cli import cli

    out: list[tuple[str, ...]] = [()]  # `lrpredict --help` itself
    context = click.Context(cli)
    for name in cli.list_commands(context):  # the group loads each command on demand (issue 21)
        command = cli.get_command(context, name)
        out.append((name,))
        out += [(name, sub) for sub in getattr(command, "commands", {})]
    return out


@pytest.mark.parametrize("path", _commands(), ids=lambda path: " ".join(path) or "lrpredict")
def test_cli_help_ends_with_examples(path: tuple[str, ...]) -> None:
    from lrpredict.cli import cli

    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    tail = result.output.rsplit("Examples:", 1)
    assert len(tail) == 2, f"lrpredict {' '.join(path)} --help has no 'Examples:' section"
    examples = [line for line in tail[1].splitlines() if line.strip().startswith("lrpredict ")]
    assert 2 <= len(examples) <= 4, tail[1]


def test_laws_list_columns_align_on_long_ids() -> None:
    from lrpredict.cli.laws import render_rows
    from lrpredict.share import LawRow

    rows = [
        LawRow("steplaw-2025", "bundled", "confirmed", ("dense", "moe"), "N 2.1e+08–1.1e+09", "Step Law"),
        LawRow("team.calibrated-dense-law-from-the-2026-cluster", "user", "secondary", ("dense",), "N 1e8–1e9", "x"),
    ]
    lines = render_rows(rows).splitlines()
    starts = {line.index(" bundled" if "bundled" in line else " user") for line in lines[2:]}
    assert len(starts) == 1 and lines[0].index(" source") == starts.pop()
    status_col = {line.index("confirmed" if "confirmed" in line else "secondary") for line in lines[2:]}
    assert status_col == {lines[0].index("status")}


def test_shell_completion_completes_commands() -> None:
    import os
    import subprocess
    import sys

    # python -m lrpredict runs the same entry point (prog_name "lrpredict") as the installed script
    env = {**os.environ, "_LRPREDICT_COMPLETE": "bash_complete", "COMP_WORDS": "lrpredict sug", "COMP_CWORD": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "lrpredict"], env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert "suggest" in out


def test_choosing_disagreement_example_is_what_the_command_prints() -> None:
    from lrpredict.cli import cli

    # the quoted warning went stale when Porian's N convention changed (3.4× / 0.000817 in the text, 3.2× printed)
    text = " ".join((ROOT / "docs" / "choosing.md").read_text(encoding="utf-8").split())
    command = re.search(r"`lrpredict (suggest --params 7B --tokens 2T --batch-tokens 4M)`\): \"(.*?)\"", text)
    assert command is not None
    result = CliRunner().invoke(cli, command.group(1).split())
    assert result.exit_code == 0, result.output
    assert command.group(2) in " ".join(result.output.split())
