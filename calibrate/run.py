"""Run a calibration end to end: plan → probes (torch or replay) → fit → law file → report.

Everything a run needs to resume lives in its output directory: ``plan.json`` (extended in place when the LR grid
grows) and the ledger ``probes.jsonl``.  Rerunning on the same directory re-runs no finished probe.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lrpredict.calibrate.fit import CalibrationFit, Observation, fit_calibration
from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated
from lrpredict.calibrate.planner import CalibrationPlan, extend, law_n, probe_flops
from lrpredict.calibrate.report import write_report
from lrpredict.calibrate.spec import ProbeResult
from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile

PLAN_NAME = "plan.json"
MAX_EXTENSIONS = 2


@dataclass
class Outcome:
    summary: list[str]
    fit: CalibrationFit
    observations: list[Observation]
    law: LawFile | None
    report: Path
    probe_flops: float
    probes: int


def save_plan(plan: CalibrationPlan, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (PLAN_NAME + ".part")
    tmp.write_text(plan.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(out_dir / PLAN_NAME)


def load_plan(out_dir: Path) -> CalibrationPlan:
    path = out_dir / PLAN_NAME
    if not path.is_file():
        raise LrpredictError("resume", str(out_dir), f"a calibration directory holding {PLAN_NAME}")
    return CalibrationPlan.model_validate_json(path.read_text(encoding="utf-8"))


def observations_from_results(results: list[ProbeResult]) -> list[Observation]:
    out = []
    for r in results:
        if r.status == "failed":
            continue
        n = law_n(r.spec.arch)
        for branch in r.branches:
            out.append(Observation(n, float(branch.tokens), r.spec.lr, branch.eval_loss, float(r.spec.tokens_per_step)))
    return out


class Progress:
    """One stderr line per finished probe: a progress bar, the probe's losses, and an ETA from the mean probe time
    so far (lines, not a redrawn bar: logs of a node job stay readable)."""

    def __init__(self, total: int, write: Callable[[str], None], already: int = 0) -> None:
        self.total, self.done, self.write = total, already, write
        self.start = time.monotonic()
        self.fresh = 0

    def __call__(self, result: ProbeResult) -> None:
        self.done += 1
        self.fresh += 1
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.fresh * (self.total - self.done)
        losses = ", ".join(f"{b.eval_loss:.3f}" if b.eval_loss is not None else "–" for b in result.branches)
        filled = round(20 * self.done / max(self.total, 1))
        bar = "█" * filled + "░" * (20 - filled)
        self.write(
            f"{bar} [{self.done}/{self.total}] d={result.spec.arch.d_model} lr={result.spec.lr:.3g} {result.status} "
            f"loss@horizons: {losses} ({result.wall_time_s:.1f}s; ETA {eta:.0f}s)"
        )


def calibrate_torch(
    plan: CalibrationPlan,
    out_dir: Path,
    *,
    executor=None,
    write: Callable[[str], None] = print,
    replace_law: bool = False,
) -> Outcome:
    from lrpredict.calibrate.executor import run_probes
    from lrpredict.calibrate.ledger import Ledger

    save_plan(plan, out_dir)
    fit = None
    for round_ in range(MAX_EXTENSIONS + 1):
        done = len(Ledger(out_dir).finished_ids() & {p.probe_id for p in plan.probes})
        progress = Progress(len(plan.probes), write, already=done)
        results = run_probes(plan.probes, out_dir, executor, on_result=progress)
        observations = observations_from_results(results)
        fit = fit_calibration(observations)
        more = [p for p in extend(plan, fit) if p.probe_id not in {q.probe_id for q in plan.probes}]
        if not more or round_ == MAX_EXTENSIONS:
            break
        write(f"extending the LR grid: {len(more)} probes beyond an unbracketed optimum")
        plan.probes.extend(more)
        plan.flops += sum(probe_flops(p) for p in more)
        save_plan(plan, out_dir)
    assert fit is not None
    device = results[0].device if results else plan.device
    fingerprint = next((r.data_fingerprint for r in results if r.data_fingerprint), None)
    provenance = {
        "hardware": f"{device} on {platform.node() or 'this machine'}",
        "data_fingerprint": fingerprint or "unknown",
        "probe_grid": f"{len(plan.probes)} probes: widths {[a.d_model for a in plan.sizes()]}, "
        f"LRs {sorted({round(p.lr, 8) for p in plan.probes})}, horizons {list(plan.probes[0].horizons)} tokens",
        "probe_flops": plan.flops,
        "backend": "torch",
    }
    spec = plan.probes[0]
    schedule = {
        "kind": "wsd",
        "description": f"probes: WSD, warmup then constant, decay over the last {spec.decay_frac:.0%} of each horizon "
        f"({spec.decay_shape}) to {spec.final_lr_ratio:g}× peak",
        "decay_fraction": spec.decay_frac,
        "final_lr_ratio": spec.final_lr_ratio,
    }
    return _finish(
        fit,
        observations,
        plan.name,
        plan.arch,
        out_dir,
        schedule,
        provenance,
        replace_law,
        len(plan.probes),
        plan.flops,
    )


def calibrate_replay(
    csv_path: Path,
    out_dir: Path,
    *,
    name: str,
    sizes: list[float] | None = None,
    lrs: int = 5,
    batches: int = 2,
    max_tokens: float = float("inf"),
    noise: float = 0.0,
    seed: int = 0,
    write: Callable[[str], None] = print,
    replace_law: bool = False,
) -> Outcome:
    """Calibrate on a recorded sweep: probes at ``lrs`` recorded LRs × ``batches`` recorded batches around the
    bundled law's prediction, on ``sizes`` (default: every size but the largest, which is held out and scored:
    benchmarks/calibrate_replay.py reports the same numbers)."""
    from lrpredict.calibrate.replay import ReplayBackend, summarise
    from lrpredict.registry import DEFAULT_LAW, load_law

    backend = ReplayBackend(csv_path, noise=noise, seed=seed)
    all_sizes = backend.sizes()
    chosen = sizes or all_sizes[:-1] or all_sizes
    for n in chosen:
        if n not in all_sizes:
            recorded = ", ".join(f"{s:.4g}" for s in all_sizes)
            raise LrpredictError("sizes", n, f"sizes recorded in {csv_path.name}: {recorded}")
    probes = backend.plan(chosen, load_law(DEFAULT_LAW["dense"]), lrs=lrs, batches=batches, max_tokens=max_tokens)
    observations = [backend.run(p) for p in probes]
    write(f"replayed {len(probes)} probes from {csv_path.name} (sizes {', '.join(f'{n:.3g}' for n in chosen)})")
    fit = fit_calibration(observations)
    flops = backend.probe_flops(probes)
    held_out = [n for n in all_sizes if n not in chosen]
    provenance = {
        "hardware": f"replay of {csv_path.name}",
        "data_fingerprint": f"{csv_path.name}, {len(backend.cells)} cells",
        "probe_grid": f"{len(probes)} probes: {lrs} recorded LRs × {batches} batches per cell, sizes {chosen}",
        "probe_flops": flops,
        "probe_flops_fraction_of_grid": flops / backend.grid_flops(),
        "backend": "replay",
        "noise": noise,
    }
    if held_out:
        provenance["held_out_regret"] = f"sizes {held_out}: {summarise(backend.held_out_regret(fit, held_out))}"
    schedule = {"kind": "unknown", "description": f"as recorded in {csv_path.name}"}
    return _finish(
        fit, observations, name, backend.arch, out_dir, schedule, provenance, replace_law, len(probes), flops
    )


def _finish(
    fit: CalibrationFit,
    observations: list[Observation],
    name: str,
    arch: str,
    out_dir: Path,
    schedule: dict,
    provenance: dict,
    replace_law: bool,
    probes: int,
    flops: float,
) -> Outcome:
    out_dir.mkdir(parents=True, exist_ok=True)
    law = None
    summary = [
        f"- probes: {probes}; probe FLOPs {flops:.3g}",
        f"- backend: {provenance['backend']}; {provenance['hardware']}",
    ]
    if "probe_flops_fraction_of_grid" in provenance:
        summary.append(f"- probe FLOPs / recorded grid FLOPs: {provenance['probe_flops_fraction_of_grid']:.2%}")
    if "held_out_regret" in provenance:
        summary.append(f"- joint regret on held-out {provenance['held_out_regret']}")
    if fit.lr_law is not None and all(map(math.isfinite, (fit.lr_law.c, fit.lr_law.alpha, fit.lr_law.beta))):
        text = calibrated_law(fit, name=name, arch=arch, schedule=schedule, provenance=provenance)
        (out_dir / f"{name}.toml").write_text(text, encoding="utf-8")
        law = install_calibrated(text, name, replace=replace_law)
    else:
        summary.append("- no law written: the fit did not produce a finite joint law (see warnings)")
    report = write_report(
        out_dir, fit, observations, title=f"Calibration {name}", law_id=law.id if law else None, summary=summary
    )
    (out_dir / "fit.json").write_text(
        json.dumps({"warnings": fit.warnings, "law": law.id if law else None}, indent=1), encoding="utf-8"
    )
    return Outcome(summary, fit, observations, law, report, flops, probes)
