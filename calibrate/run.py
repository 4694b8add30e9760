"""Run a calibration end to end: plan → probes (torch or replay) → fit → law file → report.

Everything a run needs to resume lives in its output directory: ``plan.json`` (extended in place when the LR grid
grows) and the ledger ``probes.jsonl``.  Rerunning on the same directory re-runs no finished probe.  A run holds the
folder's lock (``lock.py``) from start to end, validates the ledger before any probe, and fails loudly
(``CalibrationFailed``) when no probe produced a loss (issue 12: 15 of 15 failed probes used to exit 0).
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lrpredict import registry
from lrpredict.architecture import count_parameters
from lrpredict.calibrate.clock import format_seconds, total_wall_seconds
from lrpredict.calibrate.fit import CalibrationFit, Observation, fit_calibration
from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated
from lrpredict.calibrate.lock import folder_lock
from lrpredict.calibrate.noise import LossNoise, measure_noise, split_replicates
from lrpredict.calibrate.planner import (
    MAX_EXTENSIONS,
    CalibrationPlan,
    affordable_extension,
    affordable_validation,
    extend,
    law_n,
    probe_flops,
)
from lrpredict.calibrate.report import write_report
from lrpredict.calibrate.spec import ProbeResult
from lrpredict.calibrate.validation import Prediction, ValidationResult, extension, predict, recentre, score
from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile

PLAN_NAME = "plan.json"
__all__ = ["MAX_EXTENSIONS", "CalibrationFailed", "Outcome", "calibrate_replay", "calibrate_torch", "load_plan"]


class CalibrationFailed(RuntimeError):
    """No probe produced a loss: nothing to fit.  ``str`` names how many failed and the first reason."""


@dataclass
class Outcome:
    summary: list[str]
    fit: CalibrationFit
    observations: list[Observation]
    law: LawFile | None
    report: Path
    probe_flops: float
    probes: int
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # one line per distinct reason, with its count
    validation: ValidationResult | None = None  # the held-out cell's verdict on the law fitted without it (issue 19)


def save_plan(plan: CalibrationPlan, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (PLAN_NAME + ".part")
    tmp.write_text(plan.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(out_dir / PLAN_NAME)


def load_plan(out_dir: Path) -> CalibrationPlan:
    from pydantic import ValidationError

    path = out_dir / PLAN_NAME
    if not path.is_file():
        raise LrpredictError("resume", str(out_dir), f"a calibration directory holding {PLAN_NAME}")
    try:
        return CalibrationPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, UnicodeDecodeError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise LrpredictError("resume", str(path), f"a plan written by lrpredict calibrate ({reason})") from None


def first_line(error: str | None) -> str:
    """The reason of a failed probe without its traceback."""
    return (error or "unknown error").strip().splitlines()[0] if (error or "").strip() else "unknown error"


def failure_lines(results: list[ProbeResult]) -> list[str]:
    """Distinct reasons of the failed results, most frequent first: '3× ValueError: …'."""
    counts = Counter(first_line(r.error) for r in results if r.status == "failed")
    return [f"{n}× {reason}" for reason, n in counts.most_common()]


def observations_from_results(results: list[ProbeResult]) -> list[Observation]:
    out = []
    for r in results:
        if r.status == "failed":
            continue
        n = law_n(r.spec.arch)
        for branch in r.branches:
            batch = float(r.spec.tokens_per_step)
            out.append(Observation(n, float(branch.tokens), r.spec.lr, branch.eval_loss, batch, branch.eval_se))
    return out


def fit_results(
    results: list[ProbeResult], *, prior: str, arch: str
) -> tuple[CalibrationFit, list[Observation], LossNoise]:
    """Eq.2/4/6 on ``results``: replicates measure the seed noise and stay out of the cells (lrpredict.calibrate.noise)."""
    main, pairs = split_replicates(results)
    noise = measure_noise(main, pairs)
    observations = observations_from_results(main)
    return fit_calibration(observations, prior=prior, arch=arch, noise=noise), observations, noise


class Progress:
    """One stderr line per finished probe: a progress bar, the probe's losses, its time against the plan's estimate,
    and an ETA (lines, not a redrawn bar: logs of a node job stay readable).

    With estimates the ETA is the estimated time of the probes left and of the validation cell after them, scaled by
    how the actual times so far compare with their estimates (issue 19: measured pace, not only the plan's
    estimate); without, the mean probe time so far times the probes left."""

    def __init__(
        self,
        total: int,
        write: Callable[[str], None],
        already: int = 0,
        *,
        estimates: dict[str, float] | None = None,
        remaining: list[str] | None = None,
        workers: int = 1,
        after_s: float = 0.0,
    ) -> None:
        self.total, self.done, self.write = total, already, write
        self.start = time.monotonic()
        self.fresh = 0
        self.estimates = estimates or {}
        self.remaining = set(remaining or [])
        self.workers = max(1, workers)
        self.actual_s = self.estimated_s = 0.0
        self.after_s = after_s  # estimated wall time of what runs after these probes (the validation cell)

    def __call__(self, result: ProbeResult) -> None:
        self.done += 1
        self.fresh += 1
        self.remaining.discard(result.probe_id)
        elapsed = time.monotonic() - self.start
        estimate = self.estimates.get(result.probe_id)
        timing = f"{result.wall_time_s:.1f}s"
        if estimate:
            self.actual_s += result.wall_time_s
            self.estimated_s += estimate
            timing += f" vs est. {estimate:.1f}s"
            scale = self.actual_s / self.estimated_s if self.estimated_s > 0 else 1.0
            eta = scale * (sum(self.estimates.get(p, 0.0) for p in self.remaining) / self.workers + self.after_s)
        else:
            eta = elapsed / self.fresh * (self.total - self.done)
        losses = ", ".join(f"{b.eval_loss:.3f}" if b.eval_loss is not None else "–" for b in result.branches)
        filled = round(20 * self.done / max(self.total, 1))
        bar = "█" * filled + "░" * (20 - filled)
        reason = f" ({first_line(result.error)})" if result.status == "failed" else ""
        self.write(
            f"{bar} [{self.done}/{self.total}] d={result.spec.arch.d_model} lr={result.spec.lr:.3g} {result.status}"
            f"{reason} loss@horizons: {losses} ({timing}; ETA {eta:.0f}s)"
        )

    def closing_line(self, estimated_total: float | None) -> str | None:
        """Wall time of this run against the plan's estimate for the probes it ran."""
        if not self.fresh:
            return None
        elapsed = time.monotonic() - self.start
        line = f"probes took {format_seconds(elapsed)} wall time"
        if estimated_total:
            line += f" (estimated {format_seconds(estimated_total)})"
        return line


def calibrate_torch(
    plan: CalibrationPlan,
    out_dir: Path,
    *,
    executor=None,
    write: Callable[[str], None] = print,
    replace_law: bool = False,
    prior: str = "default",
) -> Outcome:
    with folder_lock(out_dir):
        return _calibrate_torch(plan, out_dir, executor=executor, write=write, replace_law=replace_law, prior=prior)


def _calibrate_torch(
    plan: CalibrationPlan,
    out_dir: Path,
    *,
    executor,
    write: Callable[[str], None],
    replace_law: bool,
    prior: str = "default",
) -> Outcome:
    """Fit probes (with grid extensions) → held-out validation → refit with every cell → law file and report."""
    from lrpredict.calibrate.ledger import Ledger
    from lrpredict.share import check_name

    check_name(plan.name)
    Ledger(out_dir).validate()  # a bad record is an error naming its line now, not after every probe ran
    save_plan(plan, out_dir)
    results, (fit, observations, noise), skipped = _fit_stage(plan, out_dir, executor, write, prior)
    plan.finished = True  # a resume of this folder re-fits; it does not grow the grid again
    save_plan(plan, out_dir)
    validation, held = _validate_torch(plan, results, fit, noise, out_dir, executor, write, skipped)
    if any(r.status != "failed" for r in held):  # refit with every cell (issue 19)
        results = results + held
        fit, observations, noise = fit_results(results, prior=prior, arch=plan.arch)
    fit.warnings.extend(skipped)  # what the budget left out, in the report's warnings
    failed = [r for r in results if r.status == "failed"]
    provenance, schedule = _torch_provenance(plan, results)
    outcome = _finish(
        fit,
        observations,
        plan.name,
        plan.arch,
        out_dir,
        schedule,
        provenance,
        replace_law,
        len(plan.probes) + len(held),  # the held-out probes that ran (none when the budget skipped them)
        plan.flops + sum(probe_flops(r.spec) for r in held),
        failures=failure_lines(failed),
        validation=validation,
    )
    outcome.failed = len(failed)
    return outcome


def _fit_stage(
    plan: CalibrationPlan, out_dir: Path, executor, write: Callable[[str], None], prior: str
) -> tuple[list[ProbeResult], tuple[CalibrationFit, list[Observation], LossNoise], list[str]]:
    """Run the fit probes, fit, and grow the LR grid past unbracketed optima (``extend``) within the budget until
    nothing is added; the probes' results, the last fit, and a line per extension the budget left out."""
    over_budget: list[str] = []
    while True:
        results = _run_fit_probes(plan, out_dir, executor, write)
        fitted = fit_results(results, prior=prior, arch=plan.arch)  # anchored (issue 11)
        ids = {p.probe_id for p in plan.probes}
        more = [p for p in extend(plan, fitted[0]) if p.probe_id not in ids]
        more, skipped = affordable_extension(plan, results, more)  # issue 19: the budget holds at run time too
        for line in skipped:
            write(line)
        over_budget += skipped
        if not more:
            return results, fitted, over_budget
        write(f"extending the LR grid: {len(more)} probes beyond an unbracketed optimum")
        plan.probes.extend(more)
        plan.flops += sum(probe_flops(p) for p in more)
        plan.extensions += 1
        save_plan(plan, out_dir)


def _run_fit_probes(plan: CalibrationPlan, out_dir: Path, executor, write: Callable[[str], None]) -> list[ProbeResult]:
    """Every fit probe of the plan (finished ones from the ledger), with a progress bar; raises when all failed."""
    from lrpredict.calibrate.executor import run_probes
    from lrpredict.calibrate.ledger import Ledger

    ids = [p.probe_id for p in plan.probes]
    finished = Ledger(out_dir).finished_ids()
    todo = [i for i in ids if i not in finished]
    progress = Progress(
        len(ids),
        write,
        already=len(ids) - len(todo),
        estimates=plan.estimates,
        remaining=todo,
        workers=plan.workers,
        after_s=(plan.estimated_parts() or {}).get("validation", 0.0),
    )
    results = run_probes(plan.probes, out_dir, executor, on_result=progress)
    estimated = [plan.estimates.get(i, 0.0) for i in todo]
    closing = progress.closing_line(total_wall_seconds(estimated, plan.workers) if plan.estimates else None)
    if closing:
        write(closing)
    if not any(r.status != "failed" for r in results):
        reasons = failure_lines(results)
        raise CalibrationFailed(
            f"all {len(results)} probes failed; first reason: {first_line(results[0].error) if results else '–'}"
            + (f" (and {len(reasons) - 1} other reasons, see {Ledger(out_dir).path})" if len(reasons) > 1 else "")
        )
    return results


def _torch_provenance(plan: CalibrationPlan, results: list[ProbeResult]) -> tuple[dict, dict]:
    """The law file's provenance and schedule tables of a torch calibration."""
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
    if spec.arch.is_moe:  # suggest compares it with an MoE target's active fraction (docs/calibrate.md)
        counts = count_parameters(spec.arch)
        provenance["moe_routing"] = {
            "experts": spec.arch.n_experts,
            "top_k": spec.arch.top_k,
            "active_fraction": counts.active_fraction,
        }
    schedule = {
        "kind": "wsd",
        "description": f"probes: WSD, warmup then constant, decay over the last {spec.decay_frac:.0%} of each horizon "
        f"({spec.decay_shape}) to {spec.final_lr_ratio:g}× peak",
        "decay_fraction": spec.decay_frac,
        "final_lr_ratio": spec.final_lr_ratio,
    }
    return provenance, schedule


def _validate_torch(
    plan: CalibrationPlan,
    results: list[ProbeResult],
    fit: CalibrationFit,
    noise: LossNoise,
    out_dir: Path,
    executor,
    write: Callable[[str], None],
    skipped: list[str],
) -> tuple[ValidationResult | None, list[ProbeResult]]:
    """Run the plan's validation cell re-centred on ``fit``'s η* there, and score it (lrpredict.calibrate.validation),
    when the plan has one and the budget still affords it (issue 19: the budget holds at run time; a skip is written
    and appended to ``skipped``, the report's warnings).  An optimum past the cell's edge gets two more LRs there
    once, within the budget (``extension``)."""
    if not plan.validation:
        return None, []
    line = affordable_validation(plan, results)
    if line:
        write(line)
        skipped.append(line)
        return None, []
    if fit.lr_law is None:
        write("validation skipped: no law was fitted to validate")
        return None, []
    first = plan.validation[0]
    n, batch = law_n(first.arch), float(first.tokens_per_step)
    tokens = float(first.horizon_steps[-1] * first.tokens_per_step)
    prediction = predict(fit, n, tokens, batch, plan.arch)
    if not _validation_started(plan, out_dir):  # a cell that ran stays: a resume that refits (new code) scores it
        plan.validation = recentre(plan.validation, prediction.lr)  # deterministic for one fit
        save_plan(plan, out_dir)
    write(
        f"validation: {len(plan.validation)} probes at N={n:.3g}, D={tokens:.3g} (held out of the fit), LRs "
        f"{', '.join(f'{s.lr:.3g}' for s in plan.validation)} centred on the fit's η* {prediction.lr:.3g}"
    )
    held = _run_held_out(plan.validation, out_dir, executor, write)
    result = _score_results(prediction, held, n, tokens, batch, fit.noise or noise)
    if not plan.validation_extension:
        diverged = [r.spec.lr for r in held if r.status == "diverged"]
        more = extension(plan.validation, result, diverged)
        line = affordable_validation(plan, results + held, more, what="extending the validation cell")
        if line:
            write(line)
            skipped.append(line)
            more = []
        plan.validation_extension = more
        save_plan(plan, out_dir)
    if plan.validation_extension:
        lrs = ", ".join(f"{s.lr:.3g}" for s in plan.validation_extension)
        write(f"extending the validation cell: its best LR is at the grid's edge; LRs {lrs}")
        held += _run_held_out(plan.validation_extension, out_dir, executor, write)
        result = _score_results(prediction, held, n, tokens, batch, fit.noise or noise)
    return result, held


def _validation_started(plan: CalibrationPlan, out_dir: Path) -> bool:
    """Whether a probe of the plan's validation cell is in the ledger: the cell was centred and run before (a refit
    on --resume, by newer code, would otherwise re-centre it by a hair and train the whole cell again)."""
    from lrpredict.calibrate.ledger import Ledger

    done = Ledger(out_dir).finished_ids()
    return any(s.probe_id in done for s in plan.validation)


def _run_held_out(specs: list, out_dir: Path, executor, write: Callable[[str], None]) -> list[ProbeResult]:
    """Run held-out probes (finished ones from the ledger) with a progress bar."""
    from lrpredict.calibrate.executor import run_probes
    from lrpredict.calibrate.ledger import Ledger

    ids = [s.probe_id for s in specs]
    done = Ledger(out_dir).finished_ids()
    progress = Progress(len(ids), write, already=sum(i in done for i in ids))
    return run_probes(specs, out_dir, executor, on_result=progress)


def _score_results(
    prediction: Prediction, held: list[ProbeResult], n: float, tokens: float, batch: float, noise: LossNoise
) -> ValidationResult:
    """Score the validation probes at their longest horizon."""
    lrs, losses, ses = [], [], []
    for r in held:
        if r.status == "failed" or not r.branches:
            continue
        last = r.branches[-1]
        lrs.append(r.spec.lr)
        losses.append(last.eval_loss)
        ses.append(last.eval_se)
    return score(prediction, n=n, tokens=tokens, batch=batch, lrs=lrs, losses=losses, ses=ses, noise=noise)


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
    prior: str = "default",
) -> Outcome:
    """Calibrate on a recorded sweep: probes at ``lrs`` recorded LRs × ``batches`` recorded batches around the
    bundled law's prediction, on ``sizes`` (default: every size but the largest, which is held out and scored:
    benchmarks/calibrate_replay.py reports the same numbers)."""
    from lrpredict.calibrate.replay import ReplayBackend, ReplayProbe, summarise
    from lrpredict.registry import DEFAULT_LAW, load_law
    from lrpredict.share import check_name

    check_name(name)
    backend = ReplayBackend(csv_path, noise=noise, seed=seed)
    _check_lr_signal(backend, csv_path)
    all_sizes = backend.sizes()
    chosen = backend.match_sizes(sizes) if sizes else all_sizes[:-1] or all_sizes  # within 0.5%, each once
    probes = backend.plan(chosen, load_law(DEFAULT_LAW["dense"]), lrs=lrs, batches=batches, max_tokens=max_tokens)
    for note in backend.notes:  # exact duplicate rows dropped, batches capped at what the file records
        write(note)
    if not probes:  # issue 15: --max-tokens 1 planned 0 probes and exited 0
        smallest = min((c.tokens for n in chosen for c in backend.cells_of(n)), default=None)
        allowed = "a bound that keeps at least one recorded cell"
        raise LrpredictError("max_tokens", max_tokens, allowed + (f" (smallest D: {smallest:.3g})" if smallest else ""))
    observations = [backend.run(p) for p in probes]

    def sizes(ns: list[float]) -> str:  # "2.15e+08, 4.29e+08", not the floats' repr
        return ", ".join(f"{n:.3g}" for n in ns)

    write(f"replayed {len(probes)} probes from {csv_path.name} (sizes {sizes(chosen)})")
    fit = fit_calibration(observations, prior=prior, arch=backend.arch)  # anchored unless prior="none" (issue 11)
    flops = backend.probe_flops(probes)
    held_out = [n for n in all_sizes if n not in chosen]
    provenance = {
        "hardware": f"replay of {csv_path.name}",
        "data_fingerprint": f"{csv_path.name}, {len(backend.cells)} cells",
        "probe_grid": f"{len(probes)} probes: {lrs} recorded LRs × {batches} batches per cell, sizes {sizes(chosen)}",
        "probe_flops": flops,
        "probe_flops_fraction_of_grid": flops / backend.grid_flops(),
        "backend": "replay",
        "noise": noise,
    }
    if held_out:
        regret = summarise(backend.held_out_regret(fit, held_out))
        if fit.lr_law is None:
            regret = "– (no LR law was fitted)"
        elif fit.batch_law is None:  # a free fit from one batch per cell: no batch to score a joint regret at
            lr_only = summarise(backend.held_out_regret(fit, held_out, lr_only=True))
            regret = f"– (no batch law fitted: --batches 3 or more measures one); LR-only regret at each cell's best batch {lr_only}"
        provenance["held_out_regret"] = f"sizes {sizes(held_out)}: {regret}"
    validation = None
    if held_out and fit.lr_law is not None:  # issue 19: the largest recorded size not fitted is the validation cell
        validation, extra = _validate_replay(backend, fit, held_out[-1], lrs, max_tokens, write)
        if extra:  # refit with every cell
            observations = observations + extra
            probes += [ReplayProbe(o.n, o.tokens, o.lr, o.batch_tokens) for o in extra]
            flops = provenance["probe_flops"] = backend.probe_flops(probes)
            fit = fit_calibration(observations, prior=prior, arch=backend.arch)
    schedule = {"kind": "unknown", "description": f"as recorded in {csv_path.name}"}
    args = (fit, observations, name, backend.arch, out_dir, schedule, provenance, replace_law, len(probes), flops)
    return _finish(*args, validation=validation)


def _check_lr_signal(backend, csv_path: Path) -> None:
    """Refuse a sweep whose losses show no dependence on the LR (lrpredict.calibrate.lr_signal; issue 23)."""
    from lrpredict.calibrate.lr_signal import lr_signal

    test = lr_signal([cell.curve(batch) for cell in backend.cells for batch in cell.batches()])
    if test is not None and test.no_signal:
        allowed = f"a sweep whose losses depend on the LR: {test.describe()} (is the loss column the final loss?)"
        raise LrpredictError("replay", csv_path.name, allowed)


def _validate_replay(
    backend, fit: CalibrationFit, n: float, lrs: int, max_tokens: float, write: Callable[[str], None]
) -> tuple[ValidationResult | None, list[Observation]]:
    """The replay's validation cell: size ``n`` (held out), its longest recorded D within ``max_tokens``, the recorded
    batch nearest the fit's B_opt (else the prior's), and the ``lrs`` recorded LRs nearest the fit's η* there."""
    from lrpredict.calibrate.replay import ReplayProbe

    cells = [c for c in backend.cells_of(n) if c.tokens <= max_tokens]
    if not cells:
        return None, []
    cell = cells[-1]
    values = {"N": cell.n, "D": cell.tokens}
    if fit.batch_law is not None and fit.batch_law.n_cells > 0:
        centre_batch = fit.batch_law.lr(n, cell.tokens)
    else:
        from lrpredict.registry import DEFAULT_LAW, load_law

        centre_batch = load_law(DEFAULT_LAW["dense"]).batch.evaluate(values)  # type: ignore[union-attr]
    batch = backend.nearest_batches(n, cell.tokens, centre_batch, 1)[0]
    prediction = predict(fit, n, cell.tokens, batch, backend.arch)
    chosen = backend.nearest_lrs(n, cell.tokens, batch, prediction.lr, lrs)
    observations = [backend.run(ReplayProbe(n, cell.tokens, lr, batch)) for lr in chosen]
    write(f"validation: {len(chosen)} recorded LRs at N={n:.3g}, D={cell.tokens:.3g} (held out of the fit)")
    result = score(
        prediction,
        n=n,
        tokens=cell.tokens,
        batch=batch,
        lrs=[o.lr for o in observations],
        losses=[o.loss for o in observations],
        ses=[o.se for o in observations],
        noise=fit.noise,
    )
    return result, observations


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
    failures: list[str] | None = None,
    validation: ValidationResult | None = None,
) -> Outcome:
    out_dir.mkdir(parents=True, exist_ok=True)
    # which folder the law came from: a --resume replaces only its own law, not another calibration's of that name
    provenance = {**provenance, "calibration_folder": str(out_dir.resolve())}
    law = None
    summary = [
        f"- probes: {probes}; probe FLOPs {flops:.3g}",
        f"- backend: {provenance['backend']}; {provenance['hardware']}",
    ]
    if failures:
        count = sum(int(line.split("×", 1)[0]) for line in failures)
        summary.append(f"- failed: {count} of {probes} probes: " + "; ".join(failures))
    if "probe_flops_fraction_of_grid" in provenance:
        summary.append(f"- probe FLOPs / recorded grid FLOPs: {provenance['probe_flops_fraction_of_grid']:.2%}")
    if "held_out_regret" in provenance:
        summary.append(f"- joint regret on held-out {provenance['held_out_regret']}")
    if fit.noise is not None:
        summary.append(f"- {fit.noise.describe()}")
    text = None
    if fit.lr_law is not None and all(map(math.isfinite, (fit.lr_law.c, fit.lr_law.alpha, fit.lr_law.beta))):
        text = calibrated_law(
            fit, name=name, arch=arch, schedule=schedule, provenance=provenance, validation=validation
        )
        registry.parse_law(text, f"{name}.toml")  # a law the registry would refuse fails here, before any file
        target = out_dir / f"{name}.toml"  # name passed check_name: no separator, no '..': it stays in out_dir
        target.write_text(text, encoding="utf-8")
    else:
        summary.append("- no law written: the fit did not produce a finite joint law (see warnings)")
    report = write_report(
        out_dir,
        fit,
        observations,
        title=f"Calibration {name}",
        law_id=name if text else None,
        summary=summary,
        validation=validation,
    )
    (out_dir / "fit.json").write_text(
        json.dumps({"warnings": fit.warnings, "law": name if text else None}, indent=1), encoding="utf-8"
    )
    if text is not None:  # installed last, atomically: a failed report (disk full) leaves no law behind (issue 23)
        law = install_calibrated(text, name, replace=replace_law)
    return Outcome(
        summary, fit, observations, law, report, flops, probes, failures=list(failures or []), validation=validation
    )
