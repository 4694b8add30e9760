"""``lrpredict calibrate``: refit the LR law on your hardware and data (a thin client of lrpredict.calibrate)."""

from __future__ import annotations

from pathlib import Path

import click

from lrpredict.cli_common import CONTEXT, BadInput, handles_errors
from lrpredict.errors import LrpredictError
from lrpredict.units import parse_size


def _need_calibrate_extra() -> None:
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        raise BadInput("calibrate needs the calibrate extra: pip install 'lrpredict[calibrate]'") from None


@click.command(name="calibrate", context_settings=CONTEXT)
@click.option("--name", default="calibrated", show_default=True, help="id of the law file it writes")
@click.option("--arch", type=click.Choice(["dense", "moe"]), default="dense", show_default=True)
@click.option("--data", "data_path", type=click.Path(dir_okay=False), help=".bin/.npy tokens or a text file")
@click.option("--budget", help="FLOPs (1e18) or GPU-hours (2h); default: the laptop-CPU plan")
@click.option("--sizes", help="probe widths, comma-separated (torch) or recorded N values (replay)")
@click.option("--lrs", type=int, default=5, show_default=True, help="LRs per size")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
@click.option("--workers", type=int, help="parallel probes (default: every GPU, or a quarter of the CPU cores)")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="ray: cluster address (default: start or join a local one)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="output directory (default: ./calibrate-NAME)")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="continue the calibration in DIR")
@click.option("--replay", "replay_csv", type=click.Path(dir_okay=False), help="recorded sweep CSV instead of probes")
@click.option("--noise", type=float, default=0.0, help="replay: relative loss noise")
@click.option("--batches", type=int, default=2, show_default=True, help="replay: recorded batches per cell")
@click.option("--max-tokens", help="replay: probe only cells with D at most this, e.g. 2e10")
@click.option("--dry-run", is_flag=True, help="print the plan and its cost, run nothing")
@handles_errors
def calibrate_command(
    name: str,
    arch: str,
    data_path: str | None,
    budget: str | None,
    sizes: str | None,
    lrs: int,
    device: str,
    workers: int | None,
    backend: str,
    address: str | None,
    out_dir: str | None,
    resume_dir: str | None,
    replay_csv: str | None,
    noise: float,
    batches: int,
    max_tokens: str | None,
    dry_run: bool,
) -> None:
    """Run short training probes (or replay recorded ones), fit Eq.2/Eq.4/Eq.6 and install a law file."""
    _need_calibrate_extra()
    from lrpredict.calibrate.run import calibrate_replay

    def note(line: str) -> None:
        click.echo(line, err=True)

    if replay_csv is not None:
        path = Path(replay_csv)
        if not path.is_file():
            raise LrpredictError("replay", replay_csv, "a recorded sweep CSV (format of ../shared/data/sweeps)")
        size_list = [parse_size(s, "sizes") for s in sizes.split(",")] if sizes else None
        outcome = calibrate_replay(
            path,
            Path(out_dir or f"calibrate-{name}"),
            name=name,
            sizes=size_list,
            lrs=lrs,
            batches=batches,
            max_tokens=parse_size(max_tokens, "max_tokens") if max_tokens else float("inf"),
            noise=noise,
            write=note,
        )
        _summary(outcome)
        return
    plan, directory, resuming = _plan(name, arch, data_path, budget, sizes, lrs, device, out_dir, resume_dir)
    if dry_run:
        click.echo(_describe(plan))
        return
    from lrpredict.calibrate.run import calibrate_torch

    note(_describe(plan))
    executor = _executor(backend, address, device, workers)
    outcome = calibrate_torch(plan, directory, executor=executor, write=note, replace_law=resuming)
    _summary(outcome)


def _executor(backend: str, address: str | None, device: str, workers: int | None):
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BadInput("--backend ray needs the ray extra: pip install 'lrpredict[ray]'") from None
        from lrpredict.calibrate.ray_executor import RayExecutor

        return RayExecutor(address, num_gpus=1 if device == "cuda" else 0)
    from lrpredict.calibrate.executor import LocalExecutor

    return LocalExecutor(
        [f"cuda:{i}" for i in range(workers)] if device == "cuda" and workers else None,
        cpu_workers=workers if device == "cpu" else None,
    )


def _plan(name, arch, data_path, budget, sizes, lrs, device, out_dir, resume_dir):
    from lrpredict.calibrate.planner import make_plan, parse_budget
    from lrpredict.calibrate.run import PLAN_NAME, load_plan
    from lrpredict.calibrate.spec import DataSpec

    if resume_dir is not None:
        return load_plan(Path(resume_dir)), Path(resume_dir), True
    directory = Path(out_dir or f"calibrate-{name}")
    if (directory / PLAN_NAME).exists():
        raise LrpredictError(
            "out", str(directory), f"a new directory (this one holds a calibration: --resume {directory})"
        )
    data = None
    if data_path is not None:
        suffix = Path(data_path).suffix
        kind = {".bin": "bin", ".npy": "npy"}.get(suffix, "text")
        if not Path(data_path).is_file():
            raise LrpredictError("data", data_path, "an existing .bin, .npy or text file")
        data = DataSpec(kind=kind, path=str(Path(data_path).resolve()))
    widths = [int(w) for w in sizes.split(",")] if sizes else None
    plan = make_plan(
        name=name,
        arch=arch,
        device=device,
        budget_flops=parse_budget(budget) if budget else None,
        widths=widths,
        lrs=lrs,
        data=data,
        vocab_size=256 if data is not None and data.kind == "text" else 512,
    )
    return plan, directory, False


def _describe(plan) -> str:
    from lrpredict.architecture import count_parameters

    lines = [f"calibration plan '{plan.name}': {len(plan.probes)} probes on {plan.device}, ~{plan.flops:.3g} FLOPs"]
    for shape in plan.sizes():
        probes = [p for p in plan.probes if p.arch == shape]
        counts = count_parameters(shape)
        lines.append(
            f"  d_model={shape.d_model} layers={shape.n_layers} N={counts.non_embedding:,} "
            f"LRs {', '.join(f'{p.lr:.3g}' for p in probes)}; horizons {', '.join(str(h) for h in probes[0].horizons)} tokens"
        )
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _summary(outcome) -> None:
    fit = outcome.fit
    for line in outcome.summary:
        click.echo(line)
    if fit.lr_law is not None:
        law = fit.lr_law
        click.echo(f"η*(N, D) = {law.c:.4g} · N^{law.alpha:.4f} · D^{law.beta:.4f}  (cells {law.n_cells})")
    for warning in fit.warnings:
        click.echo(f"  ! {warning}")
    if outcome.law is not None:
        click.echo(f"law installed: {outcome.law.id} — use: lrpredict suggest ... --law {outcome.law.id}")
    click.echo(f"report: {outcome.report}")
