"""An exclusive advisory lock on a calibration folder: one run (or resume) per ``--out`` at a time.

``fcntl.flock`` on ``DIR/.lock``: the kernel drops the lock when its holder exits, SIGKILL included, so there is no
stale lock to clean up after a crash.  The holder writes its PID into the file, so a refused second run can say who
holds it.  Re-entrant within one process (the CLI takes it before planning, ``calibrate_torch`` again around the
probes): flock locks belong to an open file description, and a second ``open`` in the same process would block
itself.  Issue 15: two runs in one folder each ran every probe, and two resumes both installed the law.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from lrpredict.errors import LrpredictError

LOCK_NAME = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # resolved folder -> (fd, depth) for the locks this process holds


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def folder_lock(out_dir: str | os.PathLike[str], *, option: str = "out") -> Iterator[Path]:
    """Hold the exclusive lock of ``out_dir`` (created if missing) for the ``with`` block, or raise at once.

    A folder that cannot be created or locked (under a file, on a read-only or pseudo file system) is a one-line
    :class:`LrpredictError` naming ``option``.
    """
    import fcntl  # POSIX only; imported here so the module can be read anywhere

    directory = Path(os.path.realpath(out_dir))  # not resolve(): a loop of links raised RuntimeError
    if directory in _held:
        fd, depth = _held[directory]
        _held[directory] = (fd, depth + 1)
        try:
            yield directory
        finally:
            fd, depth = _held[directory]
            _held[directory] = (fd, depth - 1)
        return
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LrpredictError(
            option, str(out_dir), f"a folder this user can create and write ({exc.strerror})"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        raise LrpredictError(
            option, str(out_dir), f"a folder no other calibration is using (PID {pid} holds its lock)"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise LrpredictError(option, str(out_dir), f"a folder that can be locked ({exc.strerror})") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[directory] = (fd, 1)
        yield directory
    except BaseException:
        if created:  # a run refused before it wrote anything leaves no folder behind (issue 23)
            _remove_if_only_lock(directory)
        raise
    finally:
        _held.pop(directory, None)
        os.close(fd)  # closing the only descriptor releases the flock


def _remove_if_only_lock(directory: Path) -> None:
    """Remove ``directory`` when it holds nothing but its lock file (unlinked while still held: no other run can
    take the lock of a file that is gone, and the descriptor is closed once, by the caller)."""
    try:
        if {p.name for p in directory.iterdir()} == {LOCK_NAME}:
            (directory / LOCK_NAME).unlink()
            directory.rmdir()
    except OSError:
        pass  # something else appeared or it is gone: leave it
