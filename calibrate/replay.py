"""Replay backend: a probe "runs" by reading its loss off a recorded LR × batch sweep (a CSV: the columns are in
``REQUIRED``/``OPTIONAL`` and docs/calibrate.md, example docs/examples/replay_sweep.csv), optionally with noise, and
is charged the FLOPs the real run would cost.

Lets a team plan a calibration on past sweeps, and lets lrpredict benchmark its fit against exhaustive grids.
Model size is N_active (= N for dense): within an MoE family the total barely varies (Step Law's MoE configs all
have N_total ≈ 2.15e9), so only the active count can carry a size exponent.
"""

from __future__ import annotations

import csv
import math
import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lrpredict import bounded_read
from lrpredict.calibrate.fit import CalibrationFit, Observation
from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile
from lrpredict.sweeps import Cell, Run, group_cells, interpolate_loss, regrets

# Replay CSV columns.  Required: what a loss-vs-LR curve per (N, D, batch) needs.  Optional: defaults in brackets.
REQUIRED = {
    "N": "non-embedding parameters (MoE: total)",
    "D": "training tokens of the run",
    "batch_tokens": "tokens per optimizer step (sequences × seq_len)",
    "lr": "peak learning rate",
    "final_loss": "final loss (held-out or smoothed train; one kind per file); nan or inf for a diverged run",
}
OPTIONAL = {
    "arch": "dense or moe [dense]",
    "N_active": "active parameters of an MoE [N]",
    "diverged": "True/False [False; a non-finite final_loss is diverged]",
    "seq_len": "sequence length [0: unknown]",
    "hidden": "d_model [0]",
    "ffn_hidden": "FFN width [0]",
    "n_heads": "attention heads [0]",
    "n_layers": "layers [0]",
    "moe_experts": "routed experts [0]",
    "moe_topk": "experts per token [0]",
}
MIN_LRS = 3  # Eq.2's parabola needs three LRs that did not diverge
# Plausible ranges (docs/log.md, 2026-12-01): every published LLM run and lrpredict's smallest probes lie well inside;
# values outside (QA: LRs ×1e±10, half a token per step, D=1e308) were fitted, installed, then crashed the report.
RANGES = {
    "N": (1e3, 1e15, "parameters"),
    "N_active": (1e3, 1e15, "active parameters"),
    "D": (1e3, 1e16, "tokens"),
    "batch_tokens": (1.0, 1e10, "tokens per step"),
    "lr": (1e-7, 10.0, "(peak LR)"),
}
# Cross-entropy in nats: uniform over a 2^24-token vocabulary is 16.6, so a finite loss above 100 is no per-token
# loss unless the row says the run diverged (then the loss is not fitted).
MAX_LOSS = 100.0
MAX_SHAPE = 1e8  # a sequence length, width or expert count: the largest published are ~1e6
MAX_CSV_BYTES = 1 << 30  # the Step Law sweeps are a few MB; read through lrpredict.bounded_read
SIZE_TOLERANCE = 0.005  # a --sizes value printed to 3 significant digits ("2.15e+08") is within 0.5% of the size
_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "": False}


@dataclass(frozen=True)
class ReplayProbe:
    n: float
    tokens: float
    lr: float
    batch_tokens: float


class RecordedSweep:
    """The cells of a replay CSV and look-ups on them: its sizes (N_active), the cells of a size, and the recorded
    LRs and batches nearest a value."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.notes: list[str] = []  # one line each, for the caller to print (dropped duplicates, capped batches)
        self.cells = group_cells(read_replay_csv(self.path, self.notes))
        self.arch = self.cells[0].arch if self.cells else "dense"
        self._by_key = {(c.n_active, c.tokens): c for c in self.cells}

    def sizes(self) -> list[float]:
        return sorted({c.n_active for c in self.cells})

    def match_sizes(self, requested: list[float]) -> list[float]:
        """The recorded sizes that ``requested`` name, each within ``SIZE_TOLERANCE`` of one recorded size (as the
        tool prints them); a value near none or several, or two values naming one size, is an ``LrpredictError``."""
        recorded = self.sizes()
        listing = ", ".join(f"{s:.10g}" for s in recorded)
        chosen: list[float] = []
        for n in requested:
            near = [s for s in recorded if abs(n - s) <= SIZE_TOLERANCE * s]
            if len(near) != 1:
                why = f" ({len(near)} lie within 0.5%: give the exact value)" if near else ""
                allowed = f"a size recorded in {self.path.name}, within 0.5%{why}: {listing}"
                raise LrpredictError("sizes", n, allowed)
            if near[0] in chosen:
                raise LrpredictError("sizes", n, f"distinct sizes ({near[0]:.10g} is named twice)")
            chosen.append(near[0])
        return sorted(chosen)

    def cells_of(self, n: float) -> list[Cell]:
        return sorted((c for c in self.cells if c.n_active == n), key=lambda c: c.tokens)

    def cell(self, n: float, tokens: float) -> Cell:
        return self._by_key[(n, tokens)]

    def nearest_lrs(self, n: float, tokens: float, batch: float, center: float, count: int) -> list[float]:
        """``count`` recorded LRs at that batch nearest ``center`` in ln η (a grid centred on a prediction)."""
        lrs = [lr for lr, _ in self.cell(n, tokens).curve(batch)]
        return sorted(sorted(lrs, key=lambda lr: abs(math.log(lr / center)))[:count])

    def nearest_batches(self, n: float, tokens: float, center: float, count: int) -> list[float]:
        batches = self.cell(n, tokens).batches()
        return sorted(sorted(batches, key=lambda b: abs(math.log(b / center)))[:count])


class ReplayBackend(RecordedSweep):
    """Recorded runs as probes.  ``branch_accounting``: horizons of one (N, LR, B) share a WSD stable phase, so a
    set of horizons costs the longest plus the decay phases of the others (``decay_frac`` of each)."""

    def __init__(self, path: str | Path, *, noise: float = 0.0, seed: int = 0, decay_frac: float = 0.2) -> None:
        super().__init__(path)
        self.noise = noise
        self.decay_frac = decay_frac
        self._rng = random.Random(seed)

    def run(self, probe: ReplayProbe) -> Observation:
        """The recorded loss at the probe's LR (interpolated in ln η between recorded LRs); None when it diverged
        or lies outside the recorded LRs of that batch."""
        curve = self.cell(probe.n, probe.tokens).curve(probe.batch_tokens)
        loss: float | None = None
        if curve:
            value, inside = interpolate_loss(curve, probe.lr)
            if inside:
                loss = value * (1 + self._rng.gauss(0.0, self.noise)) if self.noise else value
        return Observation(probe.n, probe.tokens, probe.lr, loss, probe.batch_tokens)

    @staticmethod
    def flops(n: float, tokens: float) -> float:
        return 6.0 * n * tokens

    def probe_flops(self, probes: list[ReplayProbe], *, branch_accounting: bool = False) -> float:
        if not branch_accounting:
            return sum(self.flops(p.n, p.tokens) for p in probes)
        runs: dict[tuple[float, float, float], list[float]] = {}
        for p in probes:
            runs.setdefault((p.n, p.lr, p.batch_tokens), []).append(p.tokens)
        total = 0.0
        for (n, _, _), horizons in runs.items():
            horizons = sorted(set(horizons))
            total += self.flops(n, horizons[-1]) + sum(self.decay_frac * self.flops(n, d) for d in horizons[:-1])
        return total

    def grid_flops(self) -> float:
        """FLOPs of every recorded run: what the exhaustive sweep cost."""
        return sum(self.flops(c.n_active, c.tokens) * len(c.runs) for c in self.cells)

    def plan(
        self, sizes: list[float], centre: LawFile, *, lrs: int = 5, batches: int = 2, max_tokens: float = math.inf
    ) -> list[ReplayProbe]:
        """Per cell of ``sizes`` (D ≤ ``max_tokens``): ``batches`` recorded batches nearest the centre law's B_opt,
        and at each ``lrs`` recorded LRs nearest its LR, as the planner centres a real grid."""
        held = [len(c.batches()) for n in sizes for c in self.cells_of(n) if c.tokens <= max_tokens]
        if held and batches > min(held):  # --batches 64 on a 10-batch sweep silently meant 10
            count = f"{min(held)}" if min(held) == max(held) else f"{min(held)}–{max(held)}"
            self.notes.append(f"note: batches {batches} capped at the {count} recorded per cell in {self.path.name}")
        probes = []
        for n in sizes:
            for cell in self.cells_of(n):
                if cell.tokens > max_tokens:
                    continue
                values = {"N": cell.n, "D": cell.tokens}
                for batch in self.nearest_batches(n, cell.tokens, centre.batch.evaluate(values), batches):
                    for lr in self.nearest_lrs(n, cell.tokens, batch, centre.lr.evaluate(values), lrs):
                        probes.append(ReplayProbe(n, cell.tokens, lr, batch))
        return probes

    def held_out_regret(self, fit: CalibrationFit, sizes: list[float], *, lr_only: bool = False) -> list[float]:
        """Joint regret of the fitted laws on every cell of ``sizes`` (sizes the fit did not see); ``lr_only``: the
        LR law's regret along each cell's best batch (needs no batch law)."""
        if fit.lr_law is None or (fit.batch_law is None and not lr_only):
            return []
        out = []
        for n in sizes:
            for cell in self.cells_of(n):
                lr = fit.lr_law.lr(n, cell.tokens)
                if lr_only:
                    out.append(regrets(cell, lr, cell.best().batch_tokens)[0])
                else:
                    assert fit.batch_law is not None
                    out.append(regrets(cell, lr, fit.batch_law.lr(n, cell.tokens))[1])
        return out


def summarise(values: list[float]) -> str:
    return f"median {statistics.median(values):.3%}, max {max(values):.3%} over {len(values)} cells" if values else "–"


def read_replay_csv(path: Path, notes: list[str] | None = None) -> list[Run]:
    """The runs of a replay CSV, checked as read: a binary file, a missing or repeated column, a value that is not a
    number or lies outside ``RANGES``, a loss outside (0, ``MAX_LOSS``], an ``N_active`` that is not N (dense) or
    exceeds it (MoE), a second architecture, one run recorded twice with different losses, a header with no rows,
    or no (N, D, batch) with ``MIN_LRS`` usable LRs is a one-line ``LrpredictError`` naming the file, the line and
    the column.  Exact duplicate rows are dropped with a line in ``notes``."""
    raw = bounded_read.read_bytes(path, option="replay", limit=MAX_CSV_BYTES, what="CSV file")
    if b"\0" in raw[:65536]:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise LrpredictError("replay", f"{path}:{line}", "a CSV text file (it holds binary data)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LrpredictError("replay", f"{path}:{line}", f"UTF-8 text (byte {exc.start} is not)") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise LrpredictError(
            "replay", f"{path}:1", f"a header with the columns {', '.join(REQUIRED)} (missing {', '.join(missing)})"
        )
    for i, name in enumerate(header):  # csv.DictReader keeps the last of two same-named columns, silently
        if (name in REQUIRED or name in OPTIONAL) and name in header[:i]:
            first = header.index(name) + 1
            raise LrpredictError(
                "replay", f"{path}:1 column {name}", f"one column {name} (columns {first} and {i + 1})"
            )
    reader.fieldnames = header
    runs: list[Run] = []
    seen: dict[tuple[float, ...], tuple[int, Run]] = {}
    totals: dict[float, tuple[int, float]] = {}  # N_active -> (line, N): the backend keys sizes by N_active
    dropped: list[tuple[int, int]] = []
    first_line = 0
    for line, row in _rows(reader, path):
        run = _run(row, path, line)
        first_line = first_line or line
        if runs and run.arch != runs[0].arch:  # one file, one architecture: the fit and the prior depend on it
            allowed = f"{runs[0].arch} as on line {first_line}: one architecture per file"
            raise LrpredictError("replay", f"{path}:{line} column arch", f"{allowed} (got {run.arch!r})")
        first_n = totals.setdefault(run.n_active, (line, run.n))
        if first_n[1] != run.n:
            allowed = f"N {first_n[1]:.10g} as on line {first_n[0]} with this N_active (sizes are keyed by N_active)"
            raise LrpredictError("replay", f"{path}:{line} column N", f"{allowed} (got {run.n:.10g})")
        key = (run.n, run.n_active, run.tokens, run.batch_tokens, run.lr)
        if key in seen:
            earlier, first = seen[key]
            if _same_outcome(first, run):
                dropped.append((line, earlier))
                continue
            # not averaged: optima are flat (several LRs within 0.25%), so seed noise picks the optimum; the user
            # knows whether these are seeds to average or a mislabelled run
            recorded = "diverged" if first.diverged else f"{first.loss:g}"
            got = "diverged" if run.diverged else f"{run.loss:g}"
            allowed = f"one run per (N, N_active, D, batch_tokens, lr): line {earlier} has it with loss {recorded}"
            raise LrpredictError("replay", f"{path}:{line} column final_loss", f"{allowed} (got {got})")
        seen[key] = (line, run)
        runs.append(run)
    if not runs:
        raise LrpredictError("replay", f"{path}:2", "at least one run after the header")
    if dropped and notes is not None:
        notes.append(
            f"note: {path.name}: {len(dropped)} exact duplicate row(s) dropped "
            f"(line {dropped[0][0]} repeats line {dropped[0][1]})"
        )
    curves: dict[tuple[float, float, float], int] = {}
    for r in runs:
        key3 = (r.n_active, r.tokens, r.batch_tokens)
        curves[key3] = curves.get(key3, 0) + (not r.diverged)
    if max(curves.values()) < MIN_LRS:
        raise LrpredictError(
            "replay", str(path), f"a usable cell: {MIN_LRS}+ non-diverged LRs at one (N, D, batch_tokens) (none has)"
        )
    return runs


def _rows(reader: csv.DictReader, path: Path) -> Iterator[tuple[int, dict]]:
    """(line, row) of each non-blank row; a cell over csv's field limit (131,072 characters) is one line naming
    the file and the line, not a ``_csv.Error`` traceback (issue 23)."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise LrpredictError("replay", f"{path}:{reader.line_num}", f"CSV cells of numbers ({exc})") from None
        if any((v or "").strip() for v in row.values() if isinstance(v, str)):
            yield reader.line_num, row


def _same_outcome(a: Run, b: Run) -> bool:
    """The same run written twice: both diverged, or the same loss up to float printing."""
    if a.diverged or b.diverged:
        return a.diverged and b.diverged
    return math.isclose(a.loss, b.loss, rel_tol=1e-9)


def _run(row: dict[str, str | None], path: Path, line: int) -> Run:
    def cell(column: str) -> str:
        return (row.get(column) or "").strip()

    def number(column: str) -> float:
        text = cell(column)
        try:
            return float(text)
        except ValueError:
            raise LrpredictError("replay", f"{path}:{line} column {column}", f"a number (got {text!r})") from None

    def plausible(column: str) -> float:
        value = number(column)
        low, high, unit = RANGES[column]
        if not low <= value <= high:  # nan fails too
            allowed = f"a finite number > 0, from {low:g} to {high:g} {unit}"
            raise LrpredictError("replay", f"{path}:{line} column {column}", f"{allowed} (got {cell(column)!r})")
        return value

    def integer(column: str) -> int:
        value = number(column) if cell(column) else 0.0
        if not math.isfinite(value):  # "nan": not recorded
            return 0
        if not (0 <= value <= MAX_SHAPE and value.is_integer()):  # seq_len -5 or 1e300 was accepted (issue 23)
            allowed = f"a whole number from 0 (not recorded) to {MAX_SHAPE:g}"
            raise LrpredictError("replay", f"{path}:{line} column {column}", f"{allowed} (got {cell(column)!r})")
        return int(value)

    if None in row:  # more cells than header columns
        raise LrpredictError("replay", f"{path}:{line}", f"at most {len(row) - 1} cells, as in the header")
    arch = cell("arch") or "dense"
    if arch not in ("dense", "moe"):
        raise LrpredictError("replay", f"{path}:{line} column arch", f"dense or moe (got {arch!r})")
    flag = cell("diverged").lower()
    if flag not in _BOOL:
        raise LrpredictError("replay", f"{path}:{line} column diverged", f"True or False (got {flag!r})")
    loss = number("final_loss")
    diverged = _BOOL[flag] or not math.isfinite(loss)
    if not (math.isnan(loss) or (loss > 0 and (loss <= MAX_LOSS or diverged))):
        allowed = f"a loss > 0 and ≤ {MAX_LOSS:g} nats, or nan/inf (or diverged=True) for a diverged run"
        raise LrpredictError("replay", f"{path}:{line} column final_loss", f"{allowed} (got {cell('final_loss')!r})")
    n = plausible("N")
    n_active = plausible("N_active") if cell("N_active") else n
    if arch == "dense" and not math.isclose(n_active, n, rel_tol=1e-9):  # the backend sizes by N_active
        allowed = f"N ({n:.10g}) or empty for a dense model"
        raise LrpredictError("replay", f"{path}:{line} column N_active", f"{allowed} (got {cell('N_active')!r})")
    if n_active > n:
        allowed = f"at most N ({n:.10g}): an MoE's active parameters are part of its total"
        raise LrpredictError("replay", f"{path}:{line} column N_active", f"{allowed} (got {cell('N_active')!r})")
    tokens, batch = plausible("D"), plausible("batch_tokens")
    if tokens < batch:
        allowed = f"at least batch_tokens ({batch:g}): a run takes one step or more"
        raise LrpredictError("replay", f"{path}:{line} column D", f"{allowed} (got {cell('D')!r})")
    experts, top_k = integer("moe_experts"), integer("moe_topk")
    if experts and top_k > experts:
        allowed = f"at most moe_experts ({experts})"
        raise LrpredictError("replay", f"{path}:{line} column moe_topk", f"{allowed} (got {cell('moe_topk')!r})")
    return Run(
        arch=arch,
        n=n,
        n_active=n if arch == "dense" else n_active,
        tokens=tokens,
        batch_tokens=batch,
        seq_len=integer("seq_len"),
        lr=plausible("lr"),
        loss=loss,
        diverged=diverged,
        d_model=integer("hidden"),
        n_layers=integer("n_layers"),
        d_ffn=integer("ffn_hidden"),
        n_heads=integer("n_heads"),
        n_experts=experts,
        top_k=top_k,
    )
