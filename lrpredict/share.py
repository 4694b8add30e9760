"""Share calibrated laws: pull a law file from a URL into the user registry, export one, remove one, list them all.

A law file is data, never code: a pulled body is read as UTF-8 TOML, validated against the law-file schema
(``registry.parse_law``) and only then written into ``registry.user_law_dir()``.  Nothing downloaded is executed.
Bundled laws are read-only: a pulled law may not take a bundled id and ``remove`` refuses them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from lrpredict import bounded_read, registry
from lrpredict.errors import LrpredictError
from lrpredict.law_checks import MAX_BYTES, unprintable
from lrpredict.laws import LawFile
from lrpredict.paths import checked_path, real, remove_stale_parts
from lrpredict.render import domain_text, formulas

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
NAME_RULE = "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, at most 80 characters"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 64 * 1024
MAX_REDIRECTS = 5
# A top-level ``id = "..."`` line (top-level keys come before the first [table] header).
_ID_LINE = re.compile(r"""^(\s*id\s*=\s*)("[^"\\\n]*"|'[^'\n]*')""", re.MULTILINE)


@dataclass(frozen=True)
class LawRow:
    """One line of ``lrpredict laws list``."""

    id: str
    source: str  # "bundled" or "user"
    status: str
    architectures: tuple[str, ...]
    domain: str
    title: str
    batch_policy: str = ""  # "optimal": the law gives B_opt; "fixed": it holds at the user's batch
    formula: str = ""  # the law's formulas, as show-law ID prints them


def list_laws() -> list[LawRow]:
    """Every known law, bundled first, with where it comes from, its status, architectures and fitted domain."""
    return [
        LawRow(
            id=law.id,
            source="bundled" if registry.is_bundled(law.id) else "user",
            status=law.status,
            architectures=tuple(law.architectures),
            domain=domain_text(law),
            title=law.title,
            batch_policy=law.batch_policy,
            formula=formulas(law),
        )
        for law in registry.laws()
    ]


def check_name(name: str) -> str:
    """A registry name that stays inside the registry directory and can be loaded by id."""
    if (
        not isinstance(name, str)
        or not NAME_PATTERN.fullmatch(name)  # fullmatch: `$` lets "ok\n" through (issue 23)
        or len(name) > 80
        or ".." in name
        or name.endswith(".toml")  # load_law("x.toml") reads a path, not the registry
    ):
        raise LrpredictError("name", name, NAME_RULE + ", not ending in .toml")
    # os.path.realpath, not Path.resolve: a loop of links is a refused name, not RuntimeError (issue 23)
    directory = Path(os.path.realpath(registry.user_law_dir()))
    if (
        Path(os.path.realpath(directory / f"{name}.toml")).parent != directory
    ):  # belt and braces: the pattern already forbids /
        raise LrpredictError("name", name, f"a name inside the law registry {directory}")
    return name


def _user_file(name: str) -> Path:
    return registry.user_law_dir() / f"{check_name(name)}.toml"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")  # not *.toml: never loaded
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable (POSIX); harmless to skip where directories cannot be opened
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)


def export(law_id: str, path: str | Path, *, force: bool = False) -> Path:
    """Write the law file of ``law_id`` (bundled or user) to ``path`` (a file, or a directory to hold ``ID.toml``).

    The text is copied as it is, comments included, so the export parses to the same law.  An existing file is
    replaced only with ``force`` (QA 2026-12-01: a token file was silently overwritten with TOML).
    """
    text = registry.bundled_text(law_id)
    if text is None:
        source = registry.user_law_dir() / f"{law_id}.toml"
        if not NAME_PATTERN.fullmatch(law_id) or not source.is_file():
            known = ", ".join(law.id for law in registry.laws())
            raise LrpredictError("id", law_id, f"one of [{known}]")
        text = bounded_read.read_text(source, option="id", limit=MAX_BYTES, what="law file")
        registry.parse_law(text, source.name)  # export only what loads
    if not str(path).strip():
        raise LrpredictError("path", str(path), "a file name or an existing directory")
    target = checked_path("path", path)
    if str(path).endswith(("/", os.sep)) and not target.is_dir():  # "newdir/" was written as a file named newdir
        raise LrpredictError("path", str(path), "an existing directory (the name ends in a separator)")
    if target.is_dir():
        target = target / f"{law_id}.toml"
    registry_dir = real(registry.user_law_dir())
    if real(target).parent == registry_dir:  # a file there is not installed (a bundled id is ignored): pull it
        raise LrpredictError(
            "path", str(target), f"a path outside the user registry {registry_dir} (to install a law: laws pull)"
        )
    if target.is_file() and not force:
        raise LrpredictError("path", str(target), "a new file (it exists: --force replaces it)")
    if not target.parent.is_dir():
        raise LrpredictError("path", str(target), "a file in an existing directory")
    if target.exists() and not target.is_file():  # the atomic rename would replace a device such as /dev/null
        raise LrpredictError("path", str(target), "a regular file or a new name, not a device, pipe or socket")
    try:
        _write_atomic(target, text.encode("utf-8"))
    except OSError as exc:  # /proc, /sys, a read-only or full file system
        raise LrpredictError(
            "path", str(target), f"a file in a directory this user can write ({exc.strerror})"
        ) from None
    return target


def remove(law_id: str) -> Path:
    """Delete a user law from the registry; bundled laws ship with lrpredict and cannot be removed."""
    if registry.is_bundled(law_id):
        raise LrpredictError("id", law_id, "a user law: bundled laws ship with lrpredict and cannot be removed")
    path = _user_file(law_id)
    if not path.is_file():
        directory = registry.user_law_dir()
        names = sorted(p.stem for p in directory.glob("*.toml")) if directory.is_dir() else []
        raise LrpredictError("id", law_id, f"one of the user laws [{', '.join(names)}]")
    path.unlink()
    return path


def _rename(text: str, law: LawFile, name: str, source: str) -> tuple[str, LawFile]:
    """``text`` with its id set to ``name``: the id line rewritten in place (comments kept), else re-serialised."""
    expected = law.model_copy(update={"id": name})
    head = re.split(r"^\s*\[", text, maxsplit=1, flags=re.MULTILINE)[0]
    match = _ID_LINE.search(head)
    if match:
        quoted = '"' + name + '"'  # name matches NAME_PATTERN: no quotes or escapes to worry about
        candidate = text[: match.start(2)] + quoted + text[match.end(2) :]
        try:
            if registry.parse_law(candidate, source) == expected:
                return candidate, expected
        except LrpredictError:
            pass
    import tomli_w

    data = tomllib.loads(text)
    data["id"] = name
    candidate = tomli_w.dumps(data)
    return candidate, registry.parse_law(candidate, source)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower() + f":{parts.port or ''}"


@contextlib.contextmanager
def _get(url: str, timeout: tuple[float, float], allow_redirect: bool) -> Iterator[Any]:
    """GET ``url`` following at most MAX_REDIRECTS redirects, each to the same scheme, host and port unless
    ``allow_redirect`` (issue 15: a redirect to another host was followed silently)."""
    import requests

    current = url
    for _ in range(MAX_REDIRECTS + 1):
        headers = {"Accept": "application/toml, */*"}
        response = requests.get(current, stream=True, timeout=timeout, headers=headers, allow_redirects=False)
        if not response.is_redirect:
            with response:
                yield response
            return
        target = urljoin(current, response.headers.get("Location", ""))
        response.close()
        if urlsplit(target).scheme not in ("http", "https"):
            raise LrpredictError(
                "url", url, f"an address that does not redirect off http(s) (it redirects to {target})"
            )
        if _origin(target) != _origin(url) and not allow_redirect:
            raise LrpredictError(
                "url", url, f"an address on one host (it redirects to {target}; pass --allow-redirect to follow)"
            )
        current = target
    raise LrpredictError("url", url, f"an address reached within {MAX_REDIRECTS} redirects")


def _download(url: str, timeout: float | tuple[float, float], max_bytes: int, allow_redirect: bool = False) -> bytes:
    import requests
    import urllib3

    connect, read = (timeout, timeout) if isinstance(timeout, (int, float)) else timeout
    deadline = time.monotonic() + connect + read  # the read timeout is per read; this bounds a trickling server
    too_big = f"a law file of at most {max_bytes} bytes"
    try:
        with _get(url, (connect, read), allow_redirect) as r:
            if r.status_code >= 400:
                raise LrpredictError("url", url, f"an address that serves a law file (HTTP {r.status_code} {r.reason})")
            length = r.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise LrpredictError("url", url, f"{too_big} (server announces {int(length)})")
            # read1 returns whatever has arrived, so the deadline is checked while a server trickles (urllib3 2)
            read1 = getattr(r.raw, "read1", None)
            chunks = iter(lambda: read1(CHUNK, decode_content=True), b"") if read1 else r.iter_content(CHUNK)
            body = bytearray()
            for chunk in chunks:
                body += chunk
                if len(body) > max_bytes:
                    raise LrpredictError("url", url, f"{too_big} (body is larger)")
                if time.monotonic() > deadline:
                    raise LrpredictError("url", url, f"a download that finishes within {connect + read:g} s")
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError, UnicodeError) as exc:
        if isinstance(exc, LrpredictError):
            raise
        if isinstance(exc, (ValueError, UnicodeError)) and not isinstance(exc, requests.RequestException):
            raise LrpredictError("url", url, f"a well-formed http(s) address ({exc.__class__.__name__})") from None
        # a read timeout while streaming the body arrives as urllib3's ReadTimeoutError (or requests' ConnectionError)
        if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)) or "timed out" in str(exc).lower():
            allowed = f"a server that answers within {connect:g} s (connect) and {read:g} s (each read)"
        else:
            allowed = f"a reachable server ({exc.__class__.__name__})"
        raise LrpredictError("url", url, allowed) from None
    return bytes(body)


def pull(
    url: str,
    *,
    sha256: str | None = None,
    name: str | None = None,
    timeout: float | tuple[float, float] = (5, 30),
    max_bytes: int = 1_000_000,
    allow_redirect: bool = False,
) -> LawFile:
    """Download a law file, check it and install it into the user registry as ``NAME.toml``; return the law.

    ``sha256`` (hex) must match the body when given.  ``name`` defaults to the law's own id; under another name the
    id inside the file is rewritten so ``load_law(name)`` finds it.  The name may not be a bundled id, nor one the
    user registry already holds (``remove`` it first).  Refused downloads leave the registry untouched.
    """
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
        _ = parts.port if parts is not None else None  # a bad port raises here, not inside requests
    except ValueError as exc:  # e.g. http://[::1/x.toml: "Invalid IPv6 URL"
        raise LrpredictError("url", url, f"a well-formed http(s) address ({exc})") from None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise LrpredictError("url", url, "an http:// or https:// address with a host")
    if unprintable(url, multiline=False) is not None or any(c.isspace() for c in url):
        raise LrpredictError("url", ascii(url), "an address without spaces or control characters")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not SHA256_PATTERN.fullmatch(sha256):
            raise LrpredictError("sha256", sha256, "64 hexadecimal digits")
    if name is not None:
        check_name(name)

    body = _download(url, timeout, max_bytes, allow_redirect)
    if sha256 is not None:
        actual = hashlib.sha256(body).hexdigest()
        if actual != sha256:
            raise LrpredictError("sha256", sha256, f"the SHA-256 of the body served by {url}, which is {actual}")
    source = urlsplit(url).path.rsplit("/", 1)[-1] or url
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise LrpredictError("url", url, "a UTF-8 law file") from None
    return install(text, name, source=source)  # validates: unknown forms, fields and statuses are refused


def install(text: str, name: str | None = None, *, source: str = "law", replace: bool = False) -> LawFile:
    """Validate law-file ``text`` and write it atomically into the user registry as ``NAME.toml``.

    ``name`` defaults to the law's id; under another name the id inside is rewritten.  Bundled ids are refused, and
    so is an existing user law unless ``replace`` (a calibration resuming its own run).
    """
    law = registry.parse_law(text, source)
    name = check_name(law.id if name is None else name)
    if registry.is_bundled(name):
        raise LrpredictError("name", name, "an id no bundled law uses (pick another with --name)")
    target = registry.user_law_dir() / f"{name}.toml"
    if name != law.id:
        text, law = _rename(text, law, name, source)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target.parent, registry.STALE_PART)  # what a killed pull or export left (issue 23)
        # check-then-write under the id's lock: two pulls of one id both said "installed" and one file survived
        with _id_lock(name):
            if target.exists() and not replace:
                raise LrpredictError(
                    "name", name, f"a name not yet in the user registry (`lrpredict laws remove {name}` first)"
                )
            _write_atomic(target, text.encode("utf-8"))
    except OSError as exc:
        raise LrpredictError(
            "LRPREDICT_HOME", str(registry.home()), f"a directory this user can write ({exc.strerror})"
        ) from None
    return law


@contextlib.contextmanager
def _id_lock(name: str) -> Iterator[None]:
    """An exclusive advisory lock per registry id, held while its file is checked and written.

    ``fcntl.flock`` on ``$LRPREDICT_HOME/locks/NAME.lock`` (outside the law folder: never listed or loaded); the
    kernel releases it when the holder exits, SIGKILL included.  Without fcntl (Windows) installs are unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    directory = registry.home() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits: an install takes milliseconds
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
