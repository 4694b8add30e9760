"""Paths a user typed, checked before use: a name the OS refuses is an input error naming its field, not a traceback.

``Path.is_dir()`` and friends raise on a file name over NAME_MAX (found by fuzzing calibrate's options, docs/log.md
2026-12-01), so every path option goes through ``checked_path`` before anything probes it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from pathlib import Path

from lrpredict.errors import LrpredictError

SHOWN = 60  # characters of a refused path quoted in the one-line error


def shown(value: str) -> str:
    """A path short enough to quote in one line."""
    return value if len(value) <= SHOWN else f"{value[:SHOWN]}… ({len(value)} characters)"


def checked_path(field: str, value: str | os.PathLike[str]) -> Path:
    """``value`` as a Path, or an LrpredictError when the OS cannot even look it up (NUL byte, a component over
    NAME_MAX, a loop of links).  A path that does not exist yet is fine: existence is the caller's question."""
    text = os.fspath(value)
    if "\x00" in text:
        raise LrpredictError(field, shown(text), "a path without NUL bytes")
    try:
        os.stat(text)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        pass
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "unusable")
        raise LrpredictError(field, shown(text), f"a path the system can look up ({reason})") from None
    return Path(text)


def real(value: str | os.PathLike[str]) -> Path:
    """The absolute path with links resolved, without raising on a loop of links (``Path.resolve`` raises
    RuntimeError there: issue 23, a loop in LRPREDICT_HOME gave a traceback); the OS refuses the loop at use."""
    return Path(os.path.realpath(value))


# When this process started: a .part file older than it was left by a killed run, not written by this one.
STARTED = time.time()


def remove_stale_parts(directory: Path, pattern: re.Pattern[str], *, min_age_s: float = 600.0) -> list[str]:
    """Delete the ``.part`` files a killed run left in ``directory`` (issue 23: kill -9 during a pull left a hidden
    ``.NAME.toml.XXXX.part`` forever): only names that fully match ``pattern`` (our own naming, never the user's
    files), regular files, older than this process and than ``min_age_s`` (a concurrent writer's file is young).
    Returns the names removed; a file that cannot be removed is left."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_mtime > min(STARTED, time.time() - min_age_s):
                continue
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed
