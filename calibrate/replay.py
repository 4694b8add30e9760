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
from dataclasses import dataclass
from pathlib import Path

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
_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "": False}


@dataclass(frozen=True)
class ReplayProbe:
    n: float
    tokens: float
    lr: float
    batch_tokens: float


class ReplayBackend:
    """Recorded runs as probes.  ``branch_accounting``: horizons of one (N, LR, B) share a WSD stable phase, so a
    set of horizons costs the longest plus the decay phases of the others (``decay_frac`` of each)."""

    def __init__(self, path: str | Path, *, noise: float = 0.0, seed: int = 0, decay_frac: float = 0.2) -> None:
        self.path = Path(path)
        self.cells = group_cells(read_replay_csv(self.path))
        self.arch = self.cells[0].arch if self.cells else "dense"
        self.noise = noise
        self.decay_frac = decay_frac
        self._rng = random.Random(seed)
        self._by_key = {(c.n_active, c.tokens): c for c in self.cells}

    def sizes(self) -> list[float]:
        return sorted({c.n_active for c in self.cells})

    def cells_of(self, n: float) -> list[Cell]:
        return sorted((c for c in self.cells if c.n_active == n), key=lambda c: c.tokens)

    def cell(self, n: float, tokens: float) -> Cell:
        return self._by_key[(n, tokens)]

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

    def nearest_lrs(self, n: float, tokens: float, batch: float, center: float, count: int) -> list[float]:
        """``count`` recorded LRs at that batch nearest ``center`` in ln η (a grid centred on a prediction)."""
        lrs = [lr for lr, _ in self.cell(n, tokens).curve(batch)]
        return sorted(sorted(lrs, key=lambda lr: abs(math.log(lr / center)))[:count])

    def nearest_batches(self, n: float, tokens: float, center: float, count: int) -> list[float]:
        batches = self.cell(n, tokens).batches()
        return sorted(sorted(batches, key=lambda b: abs(math.log(b / center)))[:count])

    def plan(
        self, sizes: list[float], centre: LawFile, *, lrs: int = 5, batches: int = 2, max_tokens: float = math.inf
    ) -> list[ReplayProbe]:
        """Per cell of ``sizes`` (D ≤ ``max_tokens``): ``batches`` recorded batches nearest the centre law's B_opt,
        and at each ``lrs`` recorded LRs nearest its LR, as the planner centres a real grid."""
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

    def held_out_regret(self, fit: CalibrationFit, sizes: list[float]) -> list[float]:
        """Joint regret of the fitted laws on every cell of ``sizes`` (sizes the fit did not see)."""
        if fit.lr_law is None or fit.batch_law is None:
            return []
        return [
            regrets(cell, fit.lr_law.lr(n, cell.tokens), fit.batch_law.lr(n, cell.tokens))[1]
            for n in sizes
            for cell in self.cells_of(n)
        ]


def summarise(values: list[float]) -> str:
    return f"median {statistics.median(values):.3%}, max {max(values):.3%} over {len(values)} cells" if values else "–"


def read_replay_csv(path: Path) -> list[Run]:
    """The runs of a replay CSV, checked as read: a binary file, a missing required column, a value that is not a
    number, a header with no rows, or no (N, D, batch) with ``MIN_LRS`` usable LRs is a one-line ``LrpredictError``
    naming the file, the line and the column."""
    raw = path.read_bytes()
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
    reader.fieldnames = header
    runs = [_run(row, path, reader.line_num) for row in reader if any((v or "").strip() for v in row.values())]
    if not runs:
        raise LrpredictError("replay", f"{path}:2", "at least one run after the header")
    curves: dict[tuple[float, float, float], int] = {}
    for r in runs:
        key = (r.n_active, r.tokens, r.batch_tokens)
        curves[key] = curves.get(key, 0) + (not r.diverged)
    if max(curves.values()) < MIN_LRS:
        raise LrpredictError(
            "replay", str(path), f"a usable cell: {MIN_LRS}+ non-diverged LRs at one (N, D, batch_tokens) (none has)"
        )
    return runs


def _run(row: dict[str, str | None], path: Path, line: int) -> Run:
    def number(column: str, default: float | None = None, *, positive: bool = True) -> float:
        text = (row.get(column) or "").strip()
        if not text and default is not None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise LrpredictError("replay", f"{path}:{line} column {column}", f"a number (got {text!r})") from None
        if positive and not (value > 0 and math.isfinite(value)):
            raise LrpredictError("replay", f"{path}:{line} column {column}", f"a finite number > 0 (got {text!r})")
        return value

    def integer(column: str) -> int:
        value = number(column, 0.0, positive=False)
        return int(value) if math.isfinite(value) else 0  # "nan": not recorded

    if None in row:  # more cells than header columns
        raise LrpredictError("replay", f"{path}:{line}", f"at most {len(row) - 1} cells, as in the header")
    arch = (row.get("arch") or "dense").strip() or "dense"
    if arch not in ("dense", "moe"):
        raise LrpredictError("replay", f"{path}:{line} column arch", f"dense or moe (got {arch!r})")
    flag = (row.get("diverged") or "").strip().lower()
    if flag not in _BOOL:
        raise LrpredictError("replay", f"{path}:{line} column diverged", f"True or False (got {flag!r})")
    loss = number("final_loss", positive=False)
    n = number("N")
    return Run(
        arch=arch,
        n=n,
        n_active=number("N_active", n),
        tokens=number("D"),
        batch_tokens=number("batch_tokens"),
        seq_len=integer("seq_len"),
        lr=number("lr"),
        loss=loss,
        diverged=_BOOL[flag] or not math.isfinite(loss),
        d_model=integer("hidden"),
        n_layers=integer("n_layers"),
        d_ffn=integer("ffn_hidden"),
        n_heads=integer("n_heads"),
        n_experts=integer("moe_experts"),
        top_k=integer("moe_topk"),
    )
