"""One reader for every file a user names (law, ledger, config, prior, target, dataset metadata).

A size check on ``st_size`` is no bound: it is 0 for ``/dev/zero``, pipes and ``/proc`` files, so ``--law /dev/zero``
read until MemoryError and a FIFO as ``--hf-config`` blocked forever (issue 23, item 1).  Here the file is opened
with ``O_NONBLOCK`` (a FIFO never blocks the open), refused unless ``fstat`` of the open descriptor says it is a
regular file outside ``/proc``, ``/sys`` and ``/dev``, and read at most ``limit + 1`` bytes whatever its size says.
Symlinks are followed by the kernel, which refuses a loop (ELOOP) instead of Python's ``RuntimeError``.
Nesting is bounded on the text, before a recursive parser sees it (:func:`check_nesting`).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from lrpredict.errors import LrpredictError
from lrpredict.paths import checked_path, shown

SYSTEM_ROOTS = ("/proc", "/sys", "/dev")
# JSON nesting: a Hugging Face config.json nests 3 levels (rope_scaling, text_config); 64 leaves room and stays far
# below Python's recursion limit (100k nested '[' gave a RecursionError, issue 23 item 5).
MAX_JSON_DEPTH = 64
CONFIG_BYTES = 4 * 1024 * 1024  # config.json of the largest published models is under 10 KB
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _system(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + "/") for root in SYSTEM_ROOTS)


def read_bytes(path: str | os.PathLike[str], *, option: str, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, at most ``limit``; anything else is an LrpredictError naming
    ``option``, the path and what is allowed (``what``: "law file", "config.json" ...)."""
    text = os.fspath(path)
    checked_path(option, text)
    allowed = f"a regular {what} of at most {limit:,} bytes"
    if _system(text):
        raise LrpredictError(option, shown(text), f"{allowed} (not under /proc, /sys or /dev)")
    try:
        fd = os.open(text, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise LrpredictError(option, shown(text), f"{allowed} ({exc.strerror or exc.__class__.__name__})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise LrpredictError(option, shown(text), f"{allowed} (it is {_kind(mode)})")
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise LrpredictError(option, shown(text), f"{allowed} ({exc.strerror or exc.__class__.__name__})") from None
    finally:
        os.close(fd)
    if got > limit:
        raise LrpredictError(option, shown(text), f"{allowed} (it is larger)")
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], *, option: str, limit: int, what: str = "file") -> str:
    """:func:`read_bytes` decoded as UTF-8 (a BOM dropped); a binary file is the option's error."""
    raw = read_bytes(path, option=option, limit=limit, what=what)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LrpredictError(
            option, shown(os.fspath(path)), f"a UTF-8 {what} (byte {exc.start} is not UTF-8)"
        ) from None


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_TOML_TOKENS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^']|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]{}]",
    re.DOTALL,
)


def nesting(text: str, *, toml: bool = False) -> int:
    """The deepest ``[``/``{`` nesting of JSON (or TOML) text, strings and comments skipped."""
    depth = deepest = 0
    for match in (_TOML_TOKENS if toml else _JSON_TOKENS).finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth = max(0, depth - 1)
    return deepest


def check_nesting(text: str, *, option: str, where: str, max_depth: int = MAX_JSON_DEPTH, toml: bool = False) -> None:
    if nesting(text, toml=toml) > max_depth:
        raise LrpredictError(option, shown(where), f"at most {max_depth} nested [ or {{ (a recursive parser's bound)")


def load_json(path: str | os.PathLike[str], *, option: str, limit: int = CONFIG_BYTES, what: str = "JSON file") -> Any:
    """A JSON document from a user-named file: bounded size and nesting, one-line errors naming ``option``."""
    import json  # here, not at the top: ``lrpredict suggest`` reads no JSON (issue 21, CLI start-up)

    text = read_text(path, option=option, limit=limit, what=what)
    check_nesting(text, option=option, where=os.fspath(path))
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise LrpredictError(option, shown(os.fspath(path)), f"a valid {what} ({reason})") from None


def regular_file(path: Path) -> bool:
    """Whether ``path`` is (a link to) a regular file outside /proc, /sys, /dev; False, not an exception, for a
    loop of links or a name the OS refuses (the registry skips such entries)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode) and not _system(str(path))
    except (OSError, ValueError):
        return False
