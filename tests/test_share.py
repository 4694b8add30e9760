"""Sharing laws (issue 8): pull from a real HTTP server on 127.0.0.1, export, remove, list."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

import lrpredict
from lrpredict import registry, share
from lrpredict.cli import cli
from lrpredict.config import ModelConfig
from lrpredict.errors import LawFileError, LrpredictError

STEPLAW = (resources.files("lrpredict.coefficients") / "steplaw-2025.toml").read_text(encoding="utf-8")
# A calibrated law: Step Law with twice its LR coefficient, so a suggestion shows which law it came from.
SHARED = STEPLAW.replace('id = "steplaw-2025"', 'id = "shared-law"', 1).replace("value = 1.79", "value = 3.58", 1)
assert SHARED.count("shared-law") == 1 and "3.58" in SHARED


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    delay: float = 0.0  # before the status line
    body_delay: float = 0.0  # after the headers and half the body
    content_length: bool = True  # False: the body ends when the connection closes
    trickle: float = 0.0  # seconds between 50-byte pieces of the body
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Location for a redirect


@dataclass
class Server:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)

    def serve(self, path: str, body: str | bytes = b"", **kwargs: object) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **kwargs)  # type: ignore[arg-type]
        return self.base + path


@pytest.fixture(autouse=True)
def user_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LRPREDICT_HOME", str(tmp_path / "home"))
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def server():
    routes: dict[str, Route] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path)
            try:
                if route is None:
                    self.send_error(404)
                    return
                time.sleep(route.delay)
                self.send_response(route.status)
                self.send_header("Content-Type", "application/toml")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.content_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                half = len(route.body) // 2
                self.wfile.write(route.body[:half])
                self.wfile.flush()
                time.sleep(route.body_delay)
                for start in range(half, len(route.body), 50 if route.trickle else len(route.body) or 1):
                    self.wfile.write(route.body[start : start + 50 if route.trickle else None])
                    self.wfile.flush()
                    time.sleep(route.trickle)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", routes)
    finally:
        httpd.shutdown()
        httpd.server_close()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_cli_refused(result, *needles: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


def user_files(home) -> list[str]:
    directory = home / "laws"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- pull: success ---------------------------------------------------------------------------------------------


def test_pull_installs_law_that_suggest_uses(server, user_home):
    url = server.serve("/shared-law.toml", SHARED)
    law = share.pull(url, sha256=sha(SHARED))
    assert law.id == "shared-law"
    assert (user_home / "laws" / "shared-law.toml").read_text(encoding="utf-8") == SHARED
    assert user_files(user_home) == ["shared-law.toml"]  # no temp file left behind

    config = ModelConfig(params=4e8, tokens=2e10)
    pulled = lrpredict.suggest(config, law="shared-law")
    assert pulled.law == "shared-law"
    assert pulled.lr == pytest.approx(2 * lrpredict.suggest(config, law="steplaw-2025").lr)

    result = invoke("suggest", "--params", "400M", "--tokens", "20B", "--law", "shared-law", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["law"] == "shared-law"


def test_pull_cli_installs_under_name_rewriting_id(server, user_home):
    url = server.serve("/law.toml", SHARED)
    result = invoke("laws", "pull", url, "--sha256", sha(SHARED).upper(), "--name", "team.lr-v2")
    assert result.exit_code == 0, result.output
    assert "installed team.lr-v2" in result.stdout

    text = (user_home / "laws" / "team.lr-v2.toml").read_text(encoding="utf-8")
    assert 'id = "team.lr-v2"' in text and "shared-law" not in text
    assert text.replace('"team.lr-v2"', '"shared-law"', 1) == SHARED  # only the id changed: comments, layout kept
    assert registry.load_law("team.lr-v2") == registry.parse_law(SHARED, "x").model_copy(update={"id": "team.lr-v2"})

    result = invoke("suggest", "--params", "400M", "--tokens", "20B", "--law", "team.lr-v2")
    assert result.exit_code == 0, result.output
    assert "team.lr-v2" in result.stdout
    listed = invoke("laws", "list", "--json")
    assert {"id": "team.lr-v2", "source": "user"}.items() <= json.loads(listed.stdout)[-1].items()


def test_pull_without_checksum_warns(server):
    result = invoke("laws", "pull", server.serve("/law.toml", SHARED))
    assert result.exit_code == 0, result.output
    assert "--sha256" in result.stderr


# --- pull: refusals ---------------------------------------------------------------------------------------------


def test_pull_wrong_checksum_refused(server, user_home):
    url = server.serve("/law.toml", SHARED)
    with pytest.raises(LrpredictError, match=f"which is {sha(SHARED)}"):
        share.pull(url, sha256="0" * 64)
    assert_cli_refused(invoke("laws", "pull", url, "--sha256", "ab" * 32), "sha256", sha(SHARED))
    assert_cli_refused(invoke("laws", "pull", url, "--sha256", "not-hex"), "64 hexadecimal digits")
    assert user_files(user_home) == []


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"), (500, "Internal Server Error")])
def test_pull_http_error_refused(server, user_home, status, reason):
    url = server.serve("/law.toml", "oops", status=status)
    with pytest.raises(LrpredictError, match=f"HTTP {status} {reason}") as err:
        share.pull(url)
    assert err.value.field == "url" and err.value.value == url
    assert_cli_refused(invoke("laws", "pull", url), url, f"HTTP {status}")
    assert user_files(user_home) == []


@pytest.mark.parametrize("where", ["before the headers", "in the body"])
def test_pull_slow_server_times_out(server, user_home, where):
    delay = {"delay": 2.0} if where == "before the headers" else {"body_delay": 2.0}
    url = server.serve("/law.toml", SHARED, **delay)
    started = time.monotonic()
    with pytest.raises(LrpredictError, match=r"answers within 1 s \(connect\) and 0.3 s") as err:
        share.pull(url, timeout=(1, 0.3))
    assert time.monotonic() - started < 1.5
    assert err.value.value == url
    assert user_files(user_home) == []


def test_pull_trickling_server_times_out(server, user_home):
    url = server.serve("/law.toml", SHARED, trickle=0.05)  # each read is quick, the whole body takes seconds
    started = time.monotonic()
    with pytest.raises(LrpredictError, match=r"finishes within 0.7 s"):
        share.pull(url, timeout=(0.2, 0.5))
    assert time.monotonic() - started < 1.5
    assert user_files(user_home) == []


@pytest.mark.parametrize("content_length", [True, False], ids=["announced", "streamed"])
def test_pull_oversize_body_refused(server, user_home, content_length):
    url = server.serve("/big.toml", SHARED + "#" * 5000, content_length=content_length)
    expected = "announces" if content_length else "body is larger"
    with pytest.raises(LrpredictError, match=f"at most 1000 bytes.*{expected}"):
        share.pull(url, max_bytes=1000)
    assert user_files(user_home) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("<html><body>Not a law</body></html>", "toml"),
        (b"\xff\xfe binary", "url"),
        ('schema_version = 1\nid = "half"\n', "title"),
    ],
    ids=["html", "not-utf8", "incomplete"],
)
def test_pull_not_a_law_file_refused(server, user_home, body, field):
    url = server.serve("/law.toml", body)
    with pytest.raises(LrpredictError) as err:
        share.pull(url)
    assert err.value.field == field
    assert_cli_refused(invoke("laws", "pull", url))
    assert user_files(user_home) == []


def test_pull_unknown_form_refused(server, user_home):
    body = SHARED.replace('form = "power_law"', 'form = "neural_net"', 1)
    url = server.serve("/law.toml", body)
    with pytest.raises(LawFileError, match="neural_net") as err:
        share.pull(url)
    assert err.value.field == "lr.form" and err.value.where == "law.toml"
    assert_cli_refused(invoke("laws", "pull", url), "lr.form", "neural_net")
    assert user_files(user_home) == []


@pytest.mark.parametrize(
    "name", ["../evil", "..", "a/../../b", "/tmp/evil", "sub/dir", ".hidden", "Evil", "law.toml", "x" * 81, ""]
)
def test_pull_name_escaping_registry_refused(server, user_home, name):
    url = server.serve("/law.toml", SHARED)
    with pytest.raises(LrpredictError) as err:
        share.pull(url, name=name)
    assert err.value.field == "name"
    assert_cli_refused(invoke("laws", "pull", url, "--name", name), "name=")
    assert not (user_home.parent / "evil").exists() and not (user_home / "evil.toml").exists()
    assert user_files(user_home) == []


def test_pull_name_shadowing_bundled_law_refused(server, user_home):
    url = server.serve("/law.toml", SHARED)
    with pytest.raises(LrpredictError, match="bundled"):
        share.pull(url, name="steplaw-2025")
    own_id = server.serve("/steplaw.toml", STEPLAW)  # the law's own id is a bundled one
    assert_cli_refused(invoke("laws", "pull", own_id), "steplaw-2025", "--name")
    assert user_files(user_home) == []
    share.pull(own_id, name="steplaw-copy")  # under another name it installs
    assert registry.load_law("steplaw-copy").lr == registry.load_law("steplaw-2025").lr


def test_pull_existing_user_law_refused(server, user_home):
    url = server.serve("/law.toml", SHARED)
    share.pull(url)
    changed = server.serve("/v2.toml", SHARED.replace("value = 3.58", "value = 9.99", 1))
    with pytest.raises(LrpredictError, match="laws remove shared-law"):
        share.pull(changed)
    assert "3.58" in (user_home / "laws" / "shared-law.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/law.toml", "law.toml"])
def test_pull_non_http_url_refused(url):
    with pytest.raises(LrpredictError, match="http:// or https://"):
        share.pull(url)


def test_pull_unreachable_server_refused():
    with pytest.raises(LrpredictError, match="reachable server"):
        share.pull("http://127.0.0.1:9/law.toml", timeout=(1, 1))  # discard port: nothing listens


def test_share_import_is_light():
    code = "import sys, lrpredict, lrpredict.share, lrpredict.cli; assert 'requests' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- remove, export, list ---------------------------------------------------------------------------------------


def test_remove_bundled_law_refused():
    with pytest.raises(LrpredictError, match="bundled laws ship with lrpredict"):
        share.remove("steplaw-2025")
    assert_cli_refused(invoke("laws", "remove", "steplaw-2025"), "steplaw-2025", "cannot be removed")
    assert registry.load_law("steplaw-2025").id == "steplaw-2025"


def test_remove_user_law_deletes_it(server, user_home):
    share.pull(server.serve("/law.toml", SHARED))
    result = invoke("laws", "remove", "shared-law")
    assert result.exit_code == 0, result.output
    assert user_files(user_home) == []
    with pytest.raises(LrpredictError):
        registry.load_law("shared-law")
    assert_cli_refused(invoke("laws", "remove", "shared-law"), "user laws")
    assert_cli_refused(invoke("laws", "remove", "../../etc/passwd"), "name=")


def test_export_bundled_law_round_trips(tmp_path):
    out = tmp_path / "exported.toml"
    result = invoke("laws", "export", "steplaw-2025", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == STEPLAW
    assert registry.load_law(str(out)) == registry.load_law("steplaw-2025")
    assert share.export("ling-2025", tmp_path) == tmp_path / "ling-2025.toml"  # a directory gets ID.toml


def test_export_user_law_round_trips(server, tmp_path):
    share.pull(server.serve("/law.toml", SHARED), name="mine")
    out = share.export("mine", tmp_path / "mine.toml")
    assert registry.load_law(str(out)) == registry.load_law("mine")
    share.remove("mine")
    share.pull(server.serve("/again.toml", out.read_text(encoding="utf-8")))  # what was exported pulls back
    assert registry.load_law("mine").lr == registry.parse_law(SHARED, "x").lr


def test_export_unknown_law_refused(tmp_path):
    assert_cli_refused(invoke("laws", "export", "no-such-law", str(tmp_path / "x.toml")), "no-such-law")
    assert_cli_refused(invoke("laws", "export", "steplaw-2025", str(tmp_path / "missing" / "x.toml")), "directory")


def test_list_laws_marks_source(server):
    share.pull(server.serve("/law.toml", SHARED))
    rows = {row.id: row for row in share.list_laws()}
    assert rows["steplaw-2025"].source == "bundled" and rows["shared-law"].source == "user"
    assert rows["shared-law"].architectures == ("dense", "moe")
    assert rows["shared-law"].status == "confirmed" and "N 2.1e+08" in rows["shared-law"].domain
    table = invoke("laws", "list")
    assert table.exit_code == 0
    assert any(line.split()[:2] == ["shared-law", "user"] for line in table.stdout.splitlines())
    assert [row["id"] for row in json.loads(invoke("laws", "list", "--json").stdout)] == list(rows)


def test_pull_rename_without_plain_id_line_reserialises(server, user_home):
    body = SHARED.replace('id = "shared-law"', '"id" = "shared-law"', 1)  # a quoted key: no line to rewrite
    share.pull(server.serve("/law.toml", body), name="renamed")
    text = (user_home / "laws" / "renamed.toml").read_text(encoding="utf-8")
    assert "shared-law" not in text
    assert registry.load_law("renamed") == registry.parse_law(SHARED, "x").model_copy(update={"id": "renamed"})


# --- pull: hardening (issue 15) -----------------------------------------------------------------------------------

HOSTILE = sorted((Path(__file__).parent / "data" / "hostile_laws").glob("*.toml"))


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_pull_hostile_law_refused(server, user_home, path):
    url = server.serve(f"/{path.name}", path.read_bytes())
    with pytest.raises(LawFileError):
        share.pull(url)
    assert user_files(user_home) == []


def test_pull_cli_hostile_law_is_one_line(server, user_home):
    url = server.serve("/neg.toml", (HOSTILE[0].parent / "negative_coefficient.toml").read_bytes())
    assert_cli_refused(invoke("laws", "pull", url), "lr.coefficient=-1.79", "finite number > 0")
    assert user_files(user_home) == []


def test_pull_malformed_url_is_one_line():
    # urllib raised "ValueError: Invalid IPv6 URL" through the CLI
    assert_cli_refused(invoke("laws", "pull", "http://[::1/x.toml"), "url=", "well-formed")
    for url in ("http://127.0.0.1:99999/x.toml", "http:///x.toml", "http://exa mple.com/x.toml", "http://\x1b[31m/x"):
        with pytest.raises(LrpredictError):
            share.pull(url, timeout=(1, 1))


def test_pull_cross_host_redirect_refused_unless_allowed(server, user_home):
    port = server.base.rsplit(":", 1)[1]
    elsewhere = f"http://localhost:{port}/law.toml"  # same server, another host name: another origin
    server.serve("/law.toml", SHARED)
    url = server.serve("/moved.toml", "", status=302, headers={"Location": elsewhere})
    with pytest.raises(LrpredictError, match="redirects to http://localhost"):
        share.pull(url)
    assert user_files(user_home) == []
    assert_cli_refused(invoke("laws", "pull", url), "--allow-redirect")

    result = invoke("laws", "pull", url, "--allow-redirect")
    assert result.exit_code == 0, result.output
    assert user_files(user_home) == ["shared-law.toml"]


def test_pull_same_host_redirect_followed_and_loops_bounded(server, user_home):
    server.serve("/law.toml", SHARED)
    url = server.serve("/old.toml", "", status=301, headers={"Location": "/law.toml"})
    assert share.pull(url).id == "shared-law"
    loop = server.serve("/loop.toml", "", status=302, headers={"Location": "/loop.toml"})
    with pytest.raises(LrpredictError, match="within 5 redirects"):
        share.pull(loop, name="other")


def test_pull_redirect_off_http_refused(server, user_home):
    url = server.serve("/file.toml", "", status=302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(LrpredictError, match="redirect off http"):
        share.pull(url, allow_redirect=True)


def test_install_same_id_concurrently_installs_once(user_home, monkeypatch):
    # two threads race on one id: the per-id lock makes exactly one install, the other is told the name is taken.
    # Each write is slowed by 50 ms so that, without the lock, both would pass the "name is free" check first.
    write = share._write_atomic

    def slow_write(path, data):
        time.sleep(0.05)
        write(path, data)

    monkeypatch.setattr(share, "_write_atomic", slow_write)
    for round_ in range(4):
        name = f"race-{round_}"
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def attempt(
            coefficient: str, name: str = name, barrier: threading.Barrier = barrier, outcomes=outcomes
        ) -> None:
            text = SHARED.replace("value = 3.58", f"value = {coefficient}", 1)
            barrier.wait()
            try:
                share.install(text, name)
                outcomes.append(f"installed {coefficient}")
            except LrpredictError:
                outcomes.append("refused")

        threads = [threading.Thread(target=attempt, args=(c,)) for c in ("3.58", "7.16")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("refused") == 1, outcomes
        winner = next(o for o in outcomes if o.startswith("installed")).split()[1]
        assert f"value = {winner}" in (user_home / "laws" / f"{name}.toml").read_text(encoding="utf-8")


def test_pull_same_id_from_two_processes_installs_once(server, user_home):
    # issue 15: two pulls of one id both said "installed" and one file survived.  Two real processes, both
    # downloading at once (the server holds each answer 0.3 s), then installing.
    url = server.serve("/law.toml", SHARED, delay=0.3)
    # each write is held 0.3 s, so without the lock both processes would find the name free before either writes
    code = (
        "import sys, time; from lrpredict import share; write = share._write_atomic; "
        "share._write_atomic = lambda path, data: (time.sleep(0.3), write(path, data)); "
        "from lrpredict.cli import main; sys.argv = ['lrpredict', 'laws', 'pull', sys.argv[1]]; main()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    refused = next(r for r in results if r[0] == 2)
    assert "laws remove shared-law" in refused[2] and "Traceback" not in refused[2]
    assert user_files(user_home) == ["shared-law.toml"]
    assert registry.load_law("shared-law").id == "shared-law"


def test_export_never_replaces_a_device_and_unwritable_targets_are_one_line(tmp_path):
    # fuzzing the CLI by hand found `laws export ID /dev/null` replacing the device node with a regular file (as
    # root), and a traceback for targets under /proc or /sys.  A FIFO stands in for the device here.
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_cli_refused(invoke("laws", "export", "steplaw-2025", str(fifo)), "not a device, pipe or socket")
    assert fifo.is_fifo()
    if Path("/proc/self").is_dir():  # procfs takes no new files, even from root
        assert_cli_refused(invoke("laws", "export", "steplaw-2025", "/proc/lrpredict-export.toml"), "can write")


def test_install_into_unwritable_home_is_one_error(monkeypatch):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs procfs")
    monkeypatch.setenv("LRPREDICT_HOME", "/proc/lrpredict-home")
    with pytest.raises(LrpredictError, match="LRPREDICT_HOME='/proc/lrpredict-home'"):
        share.install(SHARED)


def test_export_refuses_to_overwrite_without_force(tmp_path):
    existing = tmp_path / "tokens.bin"
    existing.write_bytes(b"precious data")
    assert_cli_refused(invoke("laws", "export", "steplaw-2025", str(existing)), "--force replaces it")
    assert existing.read_bytes() == b"precious data"  # was replaced by TOML, exit 0 (QA 2026-12-01)
    result = invoke("laws", "export", "steplaw-2025", str(existing), "--force")
    assert result.exit_code == 0 and existing.read_text(encoding="utf-8") == STEPLAW


@pytest.mark.parametrize("name", ["", "newdir/"])
def test_export_refuses_an_empty_name_or_a_missing_directory(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert_cli_refused(invoke("laws", "export", "steplaw-2025", name), "path=")
    assert not (tmp_path / "newdir").exists() and not (tmp_path / "steplaw-2025.toml").exists()


def test_export_into_the_user_registry_is_refused(tmp_path):
    # a file there with a bundled id was ignored by every command and could not be removed
    laws = registry.user_law_dir()
    laws.mkdir(parents=True, exist_ok=True)
    assert_cli_refused(invoke("laws", "export", "steplaw-2025", str(laws)), "outside the user registry")
    assert not (laws / "steplaw-2025.toml").exists()
