"""Append-only JSONL record of finished probes: the state a calibration resumes from.

One line per finished probe, written with a single ``write`` and made durable (flush + fsync) before the next probe
is recorded, so a SIGKILL loses at most the line being written.  A torn last line (no newline, or not JSON) is
ignored on read and cut off before the next append; anything else that is not a probe record (bad JSON, or valid JSON
that is not a ``ProbeResult``) is an error naming its line, raised by ``validate`` before any probe runs (issue 15).

A probe whose worker process died (SIGKILL, the kernel's OOM killer) is recorded as failed with ``WORKER_DIED`` and
is not counted as finished: a resume runs it again.  Any other failure is the probe's own and is kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from lrpredict.calibrate.spec import ProbeResult
from lrpredict.errors import LrpredictError

LEDGER_NAME = "probes.jsonl"
WORKER_DIED = "worker process died"  # the start of a failed record's error when its process, not the probe, failed


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
        return [record for _, record in self._iter_records()]

    def results(self) -> list[ProbeResult]:
        """Every complete line as a ``ProbeResult``; a line that is not one is an error naming its line number."""
        out = []
        for number, record in self._iter_records():
            try:
                out.append(ProbeResult.model_validate(record))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "the line"
                raise LrpredictError(
                    "ledger", f"{self.path}:{number}", f"a probe record ({where}: {first['msg']})"
                ) from None
        return out

    def validate(self) -> int:
        """Read every record now (before any probe runs) and return how many; raise on the first bad line."""
        return len(self.results())

    def latest(self) -> dict[str, ProbeResult]:
        """The last record of each probe_id (a rerun supersedes an earlier record)."""
        return {r.probe_id: r for r in self.results()}

    def finished_ids(self, *, include_failed: bool = True) -> set[str]:
        """probe_ids whose latest record counts as finished: ok and diverged always, failed ones only with
        ``include_failed`` and never when the worker died (that probe did not fail; its process did)."""
        return {
            pid
            for pid, r in self.latest().items()
            if r.status != "failed" or (include_failed and not (r.error or "").startswith(WORKER_DIED))
        }

    def _iter_records(self) -> Iterator[tuple[int, dict]]:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        # the text after the last newline is empty for an intact file, and a torn fragment otherwise
        for number, raw in enumerate(lines[:-1], start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise LrpredictError(
                    "ledger", f"{self.path}:{number}", f"every line but a torn last one must be JSON ({exc})"
                ) from None
            if not isinstance(record, dict):
                raise LrpredictError("ledger", f"{self.path}:{number}", "a probe record (a JSON object)")
            yield number, record


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
