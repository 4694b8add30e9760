"""Append-only JSONL record of finished probes: the state a calibration resumes from.

One line per finished probe, written with a single ``write`` and made durable (flush + fsync) before the next probe
is recorded, so a SIGKILL loses at most the line being written.  A torn last line (no newline, or not JSON) is
ignored on read and cut off before the next append; anything unreadable earlier is a real error and is reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from lrpredict.calibrate.spec import ProbeResult
from lrpredict.errors import LrpredictError

LEDGER_NAME = "probes.jsonl"


class Ledger:
    """The ledger file ``probes.jsonl`` in ``out_dir`` (created on first append)."""

    def __init__(self, out_dir: str | os.PathLike[str], name: str = LEDGER_NAME) -> None:
        self.path = Path(out_dir) / name

    def append(self, result: ProbeResult) -> None:
        """Add ``result`` as one line and fsync it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = result.model_dump_json() + "\n"
        with self.path.open("ab") as f:
            _cut_torn_tail(f)
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict]:
        """Every complete line as a dict, in file order (a torn last line is left out)."""
        return list(self._iter_records())

    def results(self) -> list[ProbeResult]:
        """Every complete line as a ``ProbeResult``."""
        return [ProbeResult.model_validate(r) for r in self._iter_records()]

    def finished_ids(self, *, include_failed: bool = True) -> set[str]:
        """probe_ids with a record; leave out ``failed`` ones to retry them (diverged probes count as finished)."""
        return {r["probe_id"] for r in self._iter_records() if include_failed or r.get("status") != "failed"}

    def _iter_records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        # the text after the last newline is empty for an intact file, and a torn fragment otherwise
        for number, raw in enumerate(lines[:-1], start=1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except json.JSONDecodeError as exc:
                raise LrpredictError(
                    "ledger", f"{self.path}:{number}", f"every line but a torn last one must be JSON ({exc})"
                ) from exc


def _cut_torn_tail(f) -> None:
    """Truncate an append-mode file after its last newline, dropping a line a killed writer left half-written."""
    end = f.seek(0, os.SEEK_END)
    keep = 0
    with open(f.name, "rb") as r:
        pos = end
        while pos > 0:
            start = max(0, pos - 65536)
            r.seek(start)
            newline = r.read(pos - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            pos = start
    if keep < end:
        f.truncate(keep)
