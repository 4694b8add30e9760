"""``lrpredict calibrate``: refit the LR law on your hardware and data (a thin client of lrpredict.calibrate).

Every option is checked before anything runs (``_check_options``: one line, exit 2), the output folder is locked for
the whole run (``calibrate/lock.py``), the plan is sized by a micro-benchmark on the device (``calibrate/clock.py``),
a run whose probes all failed exits 1 with the first reason, and Ctrl-C exits 130 with the ``--resume`` command.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shlex
import signal
from pathlib import Path
from typing import Any

import click

from lrpredict.cli.common import CONTEXT, BadInput, handles_errors
from lrpredict.errors import LrpredictError
from lrpredict.paths import checked_path, real
from lrpredict.units import parse_size

DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")
MAX_LRS, MAX_WORKERS, MAX_BATCHES, MAX_WIDTH = 15, 1024, 64, 8192
MAX_HORIZONS = 6  # WSD branches of one probe run
# Options that only a torch run reads, and those only --replay reads: giving one where it is ignored is an error.
TORCH_ONLY = ("arch", "data_path", "vocab_size", "tokenizer", "text_column", "token_dtype", "budget", "device")
TORCH_ONLY += ("workers", "backend", "address", "resume_dir", "dry_run")
TORCH_ONLY += ("target_params", "target_tokens", "target_active_params", "target_batch_tokens", "target_config")
TORCH_ONLY += ("target_hf_config", "horizons")
TORCH_ONLY += ("compile_model", "experts", "top_k", "no_validate")
REPLAY_ONLY = ("noise", "batches", "max_tokens")
# Options a --resume takes from the folder's plan (name and device may be repeated if they agree).
PLAN_OPTIONS = ("arch", "data_path", "vocab_size", "tokenizer", "text_column", "token_dtype", "budget", "sizes", "lrs")
PLAN_OPTIONS += ("experts", "top_k", "no_validate", "horizons")
# The MoE probes' routing when neither --experts/--top-k nor the target config says: 8 experts, top-2.
DEFAULT_EXPERTS, DEFAULT_TOP_K = 8, 2
MAX_EXPERTS = 512
MAX_VOCAB = 1 << 24  # as lrpredict.calibrate.token_sources.MAX_VOCAB (not imported here: it needs numpy)
UNUSABLE_ROOTS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/boot")
# Temporary files of a calibration: tokenised data, the plan, the report's plots (calibrate/report.py)
OWN_PARTS = re.compile(
    r"tokens-[0-9a-f]{16}(-[A-Za-z0-9_.-]+)?\.bin\.part|plan\.json\.part|\.(parabolas|horizons|joint_law)\.png\.\d+\.part"
)
DATA_ONLY = ("tokenizer", "text_column", "token_dtype")
# Error fields of lrpredict.calibrate -> the option's parameter, so an error names what the user typed (issue 23)
FIELD_PARAM = {"data": "data_path", "out": "out_dir", "resume": "resume_dir", "replay": "replay_csv"}
# Folders a calibration must not write into (issue 23: --out / wrote 7 files into /); below the first group too.
SYSTEM_FOLDERS = frozenset(Path(p) for p in ("/", "/bin", "/boot", "/etc", "/home", "/lib", "/opt", "/root", "/sbin"))
SYSTEM_FOLDERS |= frozenset(Path(p) for p in ("/srv", "/tmp", "/usr", "/var", "/var/tmp"))
# What this tool leaves in a folder before its plan is saved: a dry run's data caches, the lock.
OWN_ENTRIES = frozenset({".lock", "data"})
MIN_FREE_BYTES = 64 << 20  # a report, a law file and a ledger: a few MB; 64 MB also leaves room for the plots
PATH_OPTIONS = ("data_path", "tokenizer", "out_dir", "resume_dir", "replay_csv", "target_config", "target_hf_config")


def _need_calibrate_extra() -> None:
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        raise BadInput("calibrate needs the calibrate extra: pip install 'lrpredict[calibrate]'") from None


@click.command(
    name="calibrate",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict calibrate --dry-run\n  lrpredict calibrate --name team-dense --budget 2h --out cal/\n  lrpredict calibrate --replay steplaw_dense.csv --name replayed",
)
@click.option("--name", default="calibrated", show_default=True, help="id of the law file it writes")
@click.option("--arch", type=click.Choice(["dense", "moe"]), default="dense", show_default=True)
@click.option(
    "--data",
    "data_path",
    type=click.Path(),
    help="tokens (.bin nanoGPT or Megatron, .npy), a datasets save_to_disk folder, .parquet/.jsonl shards, or text",
)
@click.option("--vocab-size", type=int, help="model vocabulary (default: the tokenizer's, else max id + 1)")
@click.option("--tokenizer", type=click.Path(), help="local Hugging Face tokenizer.json (or its folder) for text data")
@click.option("--text-column", default="text", show_default=True, help="text column of a dataset or shard")
@click.option("--token-dtype", type=click.Choice(["uint16", "uint32"]), help="nanoGPT .bin dtype (default: inferred)")
@click.option("--experts", type=int, help="MoE probes: routed experts (default: the target config's, else 8)")
@click.option("--top-k", type=int, help="MoE probes: experts per token (default: the target config's, else 2)")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the probes (pays on long probes only)")
@click.option(
    "--budget",
    help="FLOPs (1e18), device time summed over GPUs (8h, '8 GPU-hours') or wall time ('2h wall'); "
    "default: minutes on a CPU, about an hour on the GPUs",
)
@click.option("--sizes", help="probe widths, comma-separated (torch) or recorded N values (replay)")
@click.option(
    "--horizons",
    help="probe horizons in tokens, comma-separated (e.g. 256K,512K,1M); default: the planner's (longer probes cost "
    "more but lower the seed noise that leaves cells flat)",
)
@click.option("--lrs", type=int, default=5, show_default=True, help=f"LRs per size (3–{MAX_LRS})")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N")
@click.option("--workers", type=int, help="parallel probes (default: one per GPU, or a quarter of the CPU cores)")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="ray: cluster address (default: start or join a local one)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="output directory (default: ./calibrate-NAME)")
@click.option("--force", is_flag=True, help="write into a non-empty --out folder that holds no calibration")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="continue the calibration in DIR")
@click.option("--replay", "replay_csv", type=click.Path(dir_okay=False), help="recorded sweep CSV instead of probes")
@click.option("--noise", type=float, default=0.0, help="replay: relative loss noise, 0 ≤ noise < 1")
@click.option("--batches", type=int, default=2, show_default=True, help="replay: recorded batches per cell")
@click.option("--max-tokens", help="replay: probe only cells with D at most this, e.g. 2e10")
@click.option("--dry-run", is_flag=True, help="print the plan, its cost and its estimated time; run nothing")
@click.option(
    "--no-validate",
    is_flag=True,
    help="skip the held-out validation cell (by default ~25%% of the budget checks the fit at a 2× larger size)",
)
@click.option(
    "--prior",
    default="default",
    show_default=True,
    help="law anchoring the exponents (id), or none; default: steplaw-2025 dense, ling-2025 MoE",
)
@click.option("--target-params", help="your target run's non-embedding params (e.g. 7B): plan probes for it")
@click.option("--target-tokens", help="your target run's training tokens (e.g. 2T)")
@click.option("--target-active-params", help="your target run's active non-embedding params (MoE)")
@click.option("--target-batch-tokens", help="your target run's batch in tokens per step")
@click.option("--target-config", type=click.Path(dir_okay=False), help="JSON/TOML with the target-* fields")
@click.option(
    "--target-hf-config",
    type=click.Path(),
    help="the target model's Hugging Face config.json (or its folder): params, active params, experts, top-k, arch",
)
@handles_errors
def calibrate_command(**params: Any) -> None:
    """Run short training probes (or replay recorded ones), fit Eq.2/Eq.4/Eq.6 and install a law file."""
    ctx = click.get_current_context()
    try:
        _calibrate(ctx)
    except LrpredictError as exc:
        raise _as_option(ctx, exc) from None


def _as_option(ctx: click.Context, exc: LrpredictError) -> LrpredictError:
    """The error naming the option as typed (--max-tokens, not max_tokens); a budget too small for any plan names
    the --budget as given."""
    if exc.field == "budget" and ctx.params.get("budget") is not None:
        return LrpredictError("--budget", ctx.params["budget"], exc.allowed)
    field = FIELD_PARAM.get(exc.field, exc.field)
    if field in ctx.params:
        return LrpredictError(_flag(ctx, field), exc.value, exc.allowed)
    return exc


def _calibrate(ctx: click.Context) -> None:
    opts = _check_options(ctx)
    _need_calibrate_extra()
    if opts["replay_csv"] is not None:
        _replay(opts)
        return
    from lrpredict.calibrate.lock import folder_lock
    from lrpredict.calibrate.run import CalibrationFailed, calibrate_torch

    directory: Path = opts["directory"]
    if opts["dry_run"]:
        plan = _plan(ctx, opts)
        click.echo(_describe(plan))
        return
    previous = signal.signal(signal.SIGTERM, _terminated)  # SLURM and Kubernetes stop a job with SIGTERM
    try:
        with folder_lock(directory, option="--resume" if opts["resume_dir"] else "--out"):
            _remove_stale_parts(directory)  # under the lock: no other run is writing them
            plan = _plan(ctx, opts)  # under the lock: a second run is refused before it plans or measures
            executor = _executor(opts, plan.device)
            _note(_describe(plan))
            if opts["resume_dir"] is not None:
                _note(_left(plan, directory))
            outcome = calibrate_torch(
                plan,
                directory,
                executor=executor,
                write=_note,
                replace_law=opts["resume_dir"] is not None,
                prior=opts["prior"],
            )
    except KeyboardInterrupt as exc:
        code = _interrupted(ctx, directory)
        raise click.exceptions.Exit(143 if isinstance(exc, Terminated) else code) from None
    except CalibrationFailed as exc:
        raise click.ClickException(str(exc)) from None  # exit 1: the input was fine, the probes were not
    finally:
        signal.signal(signal.SIGTERM, previous)
    _correct_clock(opts, plan, directory)
    _summary(outcome, opts["target"])


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C: the finished probes are kept and the "continue with" line is printed (issue 23);
    exit status 143 (128 + SIGTERM)."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


def _left(plan, directory: Path) -> str:
    """What a --resume still has to run (issue 23: it reprinted the original plan only)."""
    from lrpredict.calibrate.ledger import Ledger

    finished = Ledger(directory).finished_ids()
    left = [p for p in plan.probes if p.probe_id not in finished]
    seconds = sum(plan.estimates.get(p.probe_id, 0.0) for p in left)
    timing = ""
    if seconds:
        from lrpredict.calibrate.clock import format_seconds

        timing = f", ~{format_seconds(seconds)} of device time"
    return f"resuming: {len(plan.probes) - len(left)} of {len(plan.probes)} probes finished, {len(left)} left{timing}"


def _correct_clock(opts: dict[str, Any], plan, directory: Path) -> None:
    """Let the clock learn from this run's probe times (lrpredict.calibrate.clock.Clock.learn)."""
    from lrpredict.calibrate.clock import Clock
    from lrpredict.calibrate.ledger import Ledger

    if "clock_args" not in opts or not plan.estimates:
        return
    device, threads = opts["clock_args"]
    for line in Clock(device, threads=threads).learn(Ledger(directory).results(), plan.estimates):
        _note(line)


def _note(line: str) -> None:
    click.echo(line, err=True)


def _given(ctx: click.Context, name: str) -> bool:
    """Whether the user typed the option (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _flag(ctx: click.Context, name: str) -> str:
    for param in ctx.command.params:
        if param.name == name:
            return param.opts[0]
    return name


def _check_options(ctx: click.Context) -> dict[str, Any]:
    """Check every option before anything runs; return them with sizes, budget and the folder parsed."""
    opts = dict(ctx.params)
    for name in PATH_OPTIONS:  # a name the OS cannot look up is the option's error, before anything probes it
        if opts[name] is not None:
            checked_path(_flag(ctx, name), opts[name])
    replay = opts["replay_csv"] is not None
    _check_combinations(ctx, opts, replay)
    _check_name(ctx, opts)
    _check_numbers(opts)
    opts["max_tokens_value"] = parse_size(opts["max_tokens"], "--max-tokens") if opts["max_tokens"] else math.inf
    opts["size_list"] = _parse_sizes(opts["sizes"], replay)
    opts["horizon_list"] = _parse_horizons(opts["horizons"])
    if opts["budget"] is not None:
        from lrpredict.calibrate.planner import parse_budget_spec

        opts["budget_spec"] = parse_budget_spec(opts["budget"])
    if not DEVICE.fullmatch(opts["device"]):  # `$` matched before a final newline: "cpu\n" (issue 23)
        raise LrpredictError("--device", opts["device"], "auto, cpu, cuda or cuda:N")
    _check_directory(opts, replay)
    _check_target(ctx, opts)
    return opts


def _check_combinations(ctx: click.Context, opts: dict[str, Any], replay: bool) -> None:
    """Refuse an option given where it would be ignored: torch-only with --replay, replay-only or data-only
    without them, plan options with --resume, --address without ray."""
    conflicts = [
        (other, name)
        for other, names in (("replay_csv", TORCH_ONLY), ("", REPLAY_ONLY))
        for name in names
        if _given(ctx, name) and (replay if other else not replay)
    ]
    for other, name in conflicts:
        allowed = "not used with --replay (it would be ignored)" if other else "used only with --replay (here ignored)"
        raise LrpredictError(_flag(ctx, name), opts[name], allowed)
    for name in DATA_ONLY:  # read only with --data: given without it they would be ignored (issue 23)
        if _given(ctx, name) and opts["data_path"] is None and opts["resume_dir"] is None and not replay:
            raise LrpredictError(_flag(ctx, name), opts[name], "used only with --data (here ignored)")
    if opts["data_path"] is not None:
        data = real(opts["data_path"])
        if data in SYSTEM_FOLDERS or any(data == Path(r) or Path(r) in data.parents for r in UNUSABLE_ROOTS):
            raise LrpredictError(
                "--data", opts["data_path"], "a token file, dataset folder or shard, not a system folder"
            )
    if opts["resume_dir"] is not None:
        for name in PLAN_OPTIONS:
            if _given(ctx, name):
                raise LrpredictError(
                    _flag(ctx, name), opts[name], f"not given with --resume: the plan in {opts['resume_dir']} fixes it"
                )
    if _given(ctx, "address") and opts["backend"] != "ray":
        raise LrpredictError("--address", opts["address"], "an option used only with --backend ray")


def _check_name(ctx: click.Context, opts: dict[str, Any]) -> None:
    """Refuse a --name that is no valid id, is a bundled law's, or (for a new run) is already in the user registry."""
    from lrpredict import share

    if _given(ctx, "name") or opts["resume_dir"] is None:  # before anything runs: it names files and the law
        from lrpredict import registry

        try:
            share.check_name(opts["name"])
        except LrpredictError as exc:
            raise LrpredictError("--name", opts["name"], exc.allowed) from None
        if registry.is_bundled(opts["name"]):
            raise LrpredictError("--name", opts["name"], "an id no bundled law uses (pick another with --name)")
        taken = registry.user_law_dir() / f"{opts['name']}.toml"
        if opts["resume_dir"] is None and not opts["dry_run"] and taken.exists():
            # refused now, not after hours of probes (install at the end refuses it too)
            raise LrpredictError(
                "--name",
                opts["name"],
                f"a name not yet in the user registry (`lrpredict laws remove {opts['name']}` first, or another --name)",
            )


def _check_numbers(opts: dict[str, Any]) -> None:
    """Refuse a numeric option outside its range (vocab size, LRs, workers, noise, batches)."""
    vocab = opts["vocab_size"]
    if vocab is not None and not 2 <= vocab <= MAX_VOCAB:  # 0 was taken as "not given", -1 and 1e11 gave tracebacks
        raise LrpredictError("--vocab-size", vocab, f"2 to {MAX_VOCAB:,} token ids")
    lrs = opts["lrs"]
    if not 3 <= lrs <= MAX_LRS:
        raise LrpredictError("--lrs", lrs, f"3 to {MAX_LRS} LRs per size (Eq.2 needs points on both sides)")
    workers = opts["workers"]
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise LrpredictError("--workers", workers, f"1 to {MAX_WORKERS} parallel probes")
    if not (math.isfinite(opts["noise"]) and 0 <= opts["noise"] < 1):
        raise LrpredictError("--noise", opts["noise"], "a relative loss noise with 0 ≤ noise < 1")
    if not 1 <= opts["batches"] <= MAX_BATCHES:
        raise LrpredictError("--batches", opts["batches"], f"1 to {MAX_BATCHES} recorded batches per cell")


def _check_directory(opts: dict[str, Any], replay: bool) -> None:
    """Check --out/--resume/--force and the calibration folder; set ``opts['directory']``."""
    resume, out = opts["resume_dir"], opts["out_dir"]
    if resume is not None and out is not None and real(out) != real(resume):
        raise LrpredictError("--out", opts["out_dir"], f"the --resume folder {opts['resume_dir']}, or no --out")
    if out is not None and not out.strip():  # '' silently meant the default folder (issue 23)
        raise LrpredictError("--out", out, "a folder name (leave --out out for ./calibrate-NAME)")
    if opts["force"] and resume is not None:
        raise LrpredictError("--force", True, "not used with --resume (the folder is the calibration's own)")
    directory = Path(opts["resume_dir"] or opts["out_dir"] or f"calibrate-{opts['name']}")
    _check_folder(directory, "--resume" if opts["resume_dir"] else "--out")
    if resume is None:
        _check_foreign(directory, opts["force"], replay)
    if not opts["dry_run"]:
        _check_destinations(directory, "--resume" if resume else "--out")
    if opts["resume_dir"] is not None and not (directory / "plan.json").is_file():
        raise LrpredictError("--resume", opts["resume_dir"], "a calibration folder holding plan.json")
    opts["directory"] = directory


def _check_target(ctx: click.Context, opts: dict[str, Any]) -> None:
    """Read the target, settle --arch from it, resolve the prior and the MoE routing; refuse options that do not fit."""
    from lrpredict.calibrate.prior import resolve_prior  # issue 11: anchored fit and target-aware plan
    from lrpredict.calibrate.target_plan import read_target

    opts["target"] = read_target(
        opts["target_params"],
        opts["target_tokens"],
        opts["target_active_params"],
        opts["target_batch_tokens"],
        opts["target_config"],
        opts["target_hf_config"],
    )
    hf_arch = opts["target"].arch if opts["target"] is not None else None
    if hf_arch is not None and hf_arch != opts["arch"]:
        if _given(ctx, "arch"):  # the probes must be of the target's kind: MoE priors and probes count active N
            raise LrpredictError("--arch", opts["arch"], f"{hf_arch}, the kind of model --target-hf-config describes")
        opts["arch"] = hf_arch
    opts["prior_law"] = resolve_prior(opts["prior"], opts["arch"])
    target = opts["target"]
    opts["routing"] = _routing(ctx, opts, target)
    if target is not None and opts["arch"] == "moe" and target.active_params is None:
        # MoE probes and MoE priors count active N: planning for the total would aim at the wrong model
        raise LrpredictError("--target-active-params", None, "the MoE target's active non-embedding params, e.g. 1.3B")
    if target is not None and opts["arch"] == "dense":  # accepted and echoed, then ignored: refuse instead
        for name in ("active_params", "experts", "top_k"):
            if getattr(target, name) is not None:
                where = f"--target-{name.replace('_', '-')}" if opts.get(f"target_{name}") is not None else None
                raise LrpredictError(
                    where or f"target_config.{name}", getattr(target, name), "only for an MoE target (--arch moe)"
                )


def _routing(ctx: click.Context, opts: dict[str, Any], target) -> tuple[int, int]:
    """(experts, top_k) of the MoE probes: the options, else the target config's, else 8 and 2.  The probes should
    route like the target: across activation ratios a calibrated batch law is Ling's extrapolation, not a measurement
    (docs/benchmarks.md, calibration extrapolation (e))."""
    for name in ("experts", "top_k"):
        if _given(ctx, name) and opts["arch"] != "moe":
            raise LrpredictError(
                _flag(ctx, name), opts[name], "used only with --arch moe (a dense probe has no experts)"
            )

    def pick(name: str) -> int | None:
        return opts[name] if opts[name] is not None else getattr(target, name, None)

    experts = pick("experts")
    experts = DEFAULT_EXPERTS if experts is None else experts
    top_k = pick("top_k")
    top_k = min(DEFAULT_TOP_K, experts - 1) if top_k is None else top_k
    where = "--experts" if opts["experts"] is not None else "target_config.experts"
    if not 2 <= experts <= MAX_EXPERTS:
        raise LrpredictError(where, experts, f"2 to {MAX_EXPERTS} routed experts")
    if not 1 <= top_k < experts:
        where = "--top-k" if opts["top_k"] is not None else "target_config.top_k"
        raise LrpredictError(where, top_k, f"1 to {experts - 1} experts per token (fewer than the {experts} experts)")
    return experts, top_k


def _parse_horizons(text: str | None) -> list[int] | None:
    """``--horizons``: distinct token counts (suffixes allowed), sorted; the planner rounds each to whole steps."""
    if text is None:
        return None
    parts = text.split(",")
    if any(not p.strip() for p in parts) or len(parts) > MAX_HORIZONS:
        raise LrpredictError("--horizons", text, f"1–{MAX_HORIZONS} comma-separated token counts, e.g. 256K,512K,1M")
    values = [parse_size(p.strip(), "--horizons") for p in parts]
    if any(v < 1 or v > 1e15 or v != int(v) for v in values) or len(set(values)) != len(values):
        raise LrpredictError("--horizons", text, "distinct whole token counts from 1 to 1e15, e.g. 256K,512K,1M")
    return sorted(int(v) for v in values)


def _parse_sizes(text: str | None, replay: bool) -> list[float] | list[int] | None:
    if text is None:
        return None
    parts = text.split(",")
    if any(not p.strip() for p in parts):
        raise LrpredictError("--sizes", text, "comma-separated sizes with none empty, e.g. 32,48,64")
    if replay:
        return [parse_size(p.strip(), "--sizes") for p in parts]
    from lrpredict.calibrate.planner import check_width

    widths = []
    for p in parts:
        try:
            width = int(p.strip())
        except ValueError:
            raise LrpredictError("--sizes", text, "probe widths (d_model) as whole numbers, e.g. 32,48,64") from None
        widths.append(check_width(width, field="--sizes"))
    if len(set(widths)) != len(widths):
        raise LrpredictError("--sizes", text, "distinct widths")
    return sorted(widths)


def _check_folder(directory: Path, option: str) -> None:
    """A folder that is, or can be made, a writable directory on a real file system (nothing is created here)."""
    resolved = real(directory)
    if any(resolved == Path(r) or Path(r) in resolved.parents for r in UNUSABLE_ROOTS):
        raise LrpredictError(
            option, str(directory), "a folder on a real file system (not under /proc, /sys, /dev, /etc, /usr or /boot)"
        )
    probe = resolved
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise LrpredictError(option, str(directory), f"a folder ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LrpredictError(option, str(directory), f"a folder this user can write ({probe} is not writable)")


def _check_foreign(directory: Path, force: bool, replay: bool) -> None:
    """Refuse an --out that holds files this tool did not write (issue 23: a user's report.md, fit.json, plots and a
    same-named law file were all replaced), unless --force.  What a dry run or a run stopped before its plan leaves
    (the lock, data/ caches, .part files) is ours."""
    resolved = real(directory)
    if resolved in SYSTEM_FOLDERS or resolved == real(Path.home()):
        raise LrpredictError("--out", str(directory), f"a folder of its own, not {resolved} (e.g. --out calibrate-x)")
    if force or not resolved.is_dir():
        return
    try:
        foreign = sorted(e.name for e in resolved.iterdir() if not _ours(e.name))
    except OSError as exc:
        raise LrpredictError("--out", str(directory), f"a folder this user can list ({exc.strerror})") from None
    if "plan.json" in foreign and not replay:  # refused under the folder's lock, naming a running holder's PID
        foreign.remove("plan.json")
    elif "plan.json" in foreign:
        raise LrpredictError(
            "--out", str(directory), f"a new directory (this one holds a calibration: --resume {directory})"
        )
    if foreign:
        shown_names = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise LrpredictError(
            "--out", str(directory), f"an empty or new folder (it holds {shown_names}: another --out, or --force)"
        )


def _ours(name: str) -> bool:
    return name in OWN_ENTRIES or (name.startswith(("tokens-", "counts-", "vocab-map-")) or name.endswith(".part"))


def _check_destinations(directory: Path, option: str) -> None:
    """Every place the run will write, checked before the first probe (issue 23: a read-only registry was found at
    install, after the fit; a full disk after the report): the registry folder accepts a file, and the output
    folder's and the registry's file systems have MIN_FREE_BYTES free."""
    import shutil
    import tempfile

    from lrpredict import registry

    laws = registry.user_law_dir()
    existing = laws.absolute()
    try:
        while True:  # the nearest existing folder: nothing is created before the run starts
            try:
                os.stat(existing)  # a loop of links is ELOOP here, not "missing"
                break
            except FileNotFoundError:
                existing = existing.parent
        if existing == laws.absolute():
            with tempfile.NamedTemporaryFile(dir=laws, prefix=".write-check.", suffix=".part"):
                pass
        elif not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a writable folder")
    except OSError as exc:
        raise LrpredictError(
            "LRPREDICT_HOME", str(registry.home()), f"a folder this user can write, for the law ({exc.strerror})"
        ) from None
    for where, label in ((directory, option), (laws, "LRPREDICT_HOME")):
        probe = real(where)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            continue
        if free < MIN_FREE_BYTES:
            raise LrpredictError(
                label, str(where), f"a file system with {MIN_FREE_BYTES >> 20} MB free (it has {free >> 20} MB)"
            )


def _remove_stale_parts(directory: Path) -> None:
    """The .part files a killed calibration left in its folder (tokenisation, plan, report plots), ours by name."""
    from lrpredict.paths import remove_stale_parts

    removed = remove_stale_parts(directory, OWN_PARTS, min_age_s=0) + remove_stale_parts(
        directory / "data", OWN_PARTS, min_age_s=0
    )
    if removed:
        _note(f"removed {len(removed)} unfinished file(s) a stopped run left: {', '.join(sorted(removed)[:3])}")


def _valid_name(name: str) -> bool:
    from lrpredict import registry, share

    try:
        share.check_name(name)
    except LrpredictError:
        return False
    return not registry.is_bundled(name)


def _resolve_device(requested: str) -> tuple[str, int]:
    """('cpu' | 'cuda' | 'cuda:N', GPUs it can use); CUDA asked for but absent is an error."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if requested == "auto":
        return ("cuda", count) if count else ("cpu", 0)
    if requested == "cpu":
        return "cpu", 0
    if not count:
        raise LrpredictError("--device", requested, "cpu or auto: this machine has no CUDA device torch can use")
    index = requested.partition(":")[2]
    if index and int(index) >= count:
        raise LrpredictError("--device", requested, f"cuda or cuda:0 … cuda:{count - 1} ({count} GPUs here)")
    return requested, 1 if index else count


def _worker_devices(opts: dict[str, Any], device: str) -> list[str]:
    """One executor slot per device: every GPU (or --workers of them), or --workers CPU workers."""
    from lrpredict.calibrate.executor import _cpu_count

    workers = opts["workers"]
    if device == "cpu":
        return ["cpu"] * (workers or max(1, _cpu_count() // 4))
    if ":" in device:
        if workers not in (None, 1):
            raise LrpredictError("--workers", workers, f"1 with --device {device} (one probe per GPU)")
        return [device]
    _, count = _resolve_device(device)
    if workers is not None and workers > count:
        raise LrpredictError("--workers", workers, f"at most {count}: one probe per GPU and {count} GPUs here")
    return [f"cuda:{i}" for i in range(workers or count)]


def _executor(opts: dict[str, Any], device: str):
    if opts["backend"] == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BadInput("--backend ray needs the ray extra: pip install 'lrpredict[ray]'") from None
        from lrpredict.calibrate.ray_executor import RayExecutor

        return RayExecutor(opts["address"], num_gpus=1 if device.startswith("cuda") else 0)
    from lrpredict.calibrate.executor import LocalExecutor

    return LocalExecutor(_worker_devices(opts, device))


def _plan(ctx: click.Context, opts: dict[str, Any]):
    from lrpredict.calibrate.clock import Clock
    from lrpredict.calibrate.executor import _cpu_count
    from lrpredict.calibrate.planner import make_plan
    from lrpredict.calibrate.run import PLAN_NAME

    directory: Path = opts["directory"]
    if opts["resume_dir"] is not None:
        return _resumed_plan(ctx, opts, directory)
    if (directory / PLAN_NAME).exists():
        raise LrpredictError(
            "out", str(directory), f"a new directory (this one holds a calibration: --resume {directory})"
        )
    device, _ = _resolve_device(opts["device"])
    slots = _worker_devices(opts, device) if opts["backend"] == "local" else [device]
    vocab_size = opts["vocab_size"]
    data, prepared = None, None
    if opts["data_path"] is not None:  # read, scanned and checked here: a bad id is an error before any probe starts
        from lrpredict.calibrate.token_sources import prepare_data

        tok = opts["tokenizer"]
        prepared = prepare_data(
            Path(opts["data_path"]),
            directory / "data",
            tokenizer=Path(tok) if tok else None,
            text_column=opts["text_column"],
            token_dtype=opts["token_dtype"],
            vocab_size=vocab_size,
            write=_note,
        )
        data, vocab_size = prepared.spec, prepared.probe_vocab
    threads = max(1, _cpu_count() // len(slots)) if device == "cpu" else 1
    opts["clock_args"] = (slots[0] if device.startswith("cuda") else "cpu", threads)
    clock = Clock(opts["clock_args"][0], threads=threads)
    try:
        plan = make_plan(
            device=device,
            budget=opts.get("budget_spec"),
            widths=opts["size_list"],
            clock=clock,
            workers=len(slots),
            **_plan_options(opts, data, vocab_size),
        )
        if opts["target"] is not None:
            plan = _target_plan(opts, plan, device, data, vocab_size, clock, len(slots))
    finally:
        clock.close()
    plan.notes.extend(clock.notes)  # shapes too big to time here: estimated from a smaller one by FLOPs
    plan.notes = list(dict.fromkeys(plan.notes))
    unfit = clock.unfit_among([*plan.probes, *plan.validation])  # the chosen plan's shapes, not every candidate's
    if unfit and not opts["dry_run"]:  # the kernel would kill it mid-probe (QA: a d=2048 CPU probe, 24 GB)
        raise LrpredictError(
            "--sizes",
            opts["sizes"] or "the default ladder",
            f"probes that fit in memory here ({unfit[0]}); smaller --sizes, or a machine with more memory",
        )
    _record_prior(opts, plan)
    if prepared is not None:
        prepared.check_windows(max(p.seq_len for p in plan.probes))
        plan.notes[:0] = prepared.notes
        longest = max(max(p.horizons) for p in plan.probes)
        plan.notes += prepared.repetition_notes(int(longest), max(p.seq_len for p in plan.probes))
    if opts["compile_model"]:  # how probes run, not what they compute: probe ids stay the same
        plan.probes[:] = [p.model_copy(update={"compile": True}) for p in plan.probes]
    from lrpredict.calibrate.replicates import add_replicates

    plan.notes += add_replicates(plan)  # issue 19: seed noise measured; a no-op when the planner added them
    return plan


def _resumed_plan(ctx: click.Context, opts: dict[str, Any], directory: Path):
    """The plan in the --resume folder, renamed by --name where allowed; refuse a changed device or data, or a law
    name another calibration installed."""
    from lrpredict.calibrate.run import load_plan

    plan = load_plan(directory)
    from lrpredict.calibrate.executor import check_same_data
    from lrpredict.calibrate.ledger import Ledger

    ledger = Ledger(directory)
    finished = ledger.finished_ids()  # validates: a bad record is one line naming it, before anything is printed
    # data changed since the probes in the ledger ran: one line now (run_probes would refuse too, after the plan)
    check_same_data([p for p in plan.probes if p.probe_id not in finished], ledger)
    if not _valid_name(plan.name):  # a plan from before names were checked first: let the resume rename it
        if not _given(ctx, "name"):
            raise LrpredictError(
                "--resume", str(directory), f"a plan whose name {plan.name!r} is a law id: give --name"
            )
        plan.name = opts["name"]
    elif _given(ctx, "name") and opts["name"] != plan.name:
        if _installed_elsewhere(plan.name, directory) is None:
            raise LrpredictError("--name", opts["name"], f"{plan.name!r}, the name of the calibration being resumed")
        plan.name = opts["name"]  # its own name is another calibration's law: install under this one
    other = _installed_elsewhere(plan.name, directory)
    if other is not None:
        raise LrpredictError(
            "--resume",
            str(directory),
            f"a calibration whose law name is free: {plan.name!r} is installed from {other}, which this resume "
            "would replace; resume with --name NEW",
        )
    if _given(ctx, "device"):
        device, _ = _resolve_device(opts["device"])
        if device.split(":")[0] != plan.device.split(":")[0]:
            raise LrpredictError("--device", opts["device"], f"{plan.device}, the device of the resumed plan")
    _resolve_device(plan.device if plan.device != "cpu" else "cpu")  # its GPUs must still be here
    _resume_prior(ctx, opts, plan)
    return plan


def _record_prior(opts: dict[str, Any], plan) -> None:
    """Record the prior in the plan, with notes when it or the probes' routing may not carry over to the target."""
    plan.prior = _prior_id(opts["prior_law"])  # recorded: a --resume refits with the same prior (issue 11)
    prior_law = opts["prior_law"].law() if opts["prior_law"] is not None else None
    if prior_law is not None and plan.arch not in prior_law.architectures:  # Step Law on MoE warns; the reverse did not
        plan.notes.append(
            f"the prior {prior_law.id} was fitted on {'/'.join(prior_law.architectures)} models only and these probes "
            f"are {plan.arch}: its exponents may not carry over (--prior with a {plan.arch} law, or --prior none)"
        )
    target = opts["target"]
    if plan.arch == "moe" and target is not None and target.active_params is not None:
        from lrpredict.architecture import count_parameters
        from lrpredict.suggest import routes_differently

        probes, aim = count_parameters(plan.probes[0].arch).active_fraction, target.active_params / target.params
        if routes_differently(probes, aim):
            plan.notes.append(
                f"the probes activate {probes:.1%} of their parameters, the target {aim:.1%}: give --experts/--top-k "
                "(or experts, top_k in --target-config) so they route like it"
            )


def _installed_elsewhere(name: str, directory: Path) -> str | None:
    """The folder another calibration installed the user law ``name`` from (None: not installed, installed from
    ``directory``, or a law from before folders were recorded, which a resume replaces as it always did)."""
    from lrpredict import registry

    path = registry.user_law_dir() / f"{name}.toml"
    if not path.is_file():
        return None
    try:
        folder = registry.load_law(path).provenance.get("calibration_folder")
    except LrpredictError:
        return f"{path} (unreadable: remove it with `lrpredict laws remove {name}`)"
    if folder is None or Path(folder) == real(directory):
        return None
    return str(folder)


def _prior_id(prior) -> str:
    return "none" if prior is None else prior.source  # a path prior by its path: a resume must find it again


def _resume_prior(ctx: click.Context, opts: dict[str, Any], plan) -> None:
    """The prior a resumed calibration refits with is the plan's (a plan from before it was recorded:
    steplaw-2025, the default then); a different --prior is refused, as a different --name or --device is."""
    from lrpredict.calibrate.prior import LEGACY_PRIOR, resolve_prior

    recorded = plan.prior or LEGACY_PRIOR
    if _given(ctx, "prior") and _prior_id(resolve_prior(opts["prior"], plan.arch)) != recorded:
        raise LrpredictError("--prior", opts["prior"], f"{recorded}, the prior of the calibration being resumed")
    plan.prior = recorded
    opts["prior"] = recorded
    opts["prior_law"] = resolve_prior(recorded, plan.arch)


def _target_plan(opts: dict[str, Any], default, device, data, vocab_size, clock, workers: int):
    """Issue 11: the probe widths that narrow the optimum at the target most within the budget (default: the cost
    of the plan without a target); the expected interval of the chosen, a cheaper and a dearer plan go in its notes.
    Every candidate is sized by ``make_plan`` within the budget (issue 19: priced whole — fit probes, extension
    reserve and validation — by the clock, output layer included); a width whose smallest plan does not fit alone
    is not a candidate, nor is any wider one."""
    from lrpredict.calibrate.clock import format_seconds
    from lrpredict.calibrate.planner import CPU_LADDER, GPU_WIDTHS, Budget, BudgetTooSmall, law_n, make_plan
    from lrpredict.calibrate.target_plan import choose

    given = opts.get("budget_spec")
    # without --budget the candidates are compared in FLOPs at the default plan's cost (timing every ladder shape
    # would take minutes on a busy CPU); the chosen one is then timed by the clock
    kind = given.kind if given is not None else "flops"
    budget = given if given is not None else Budget(kind, default.cost(kind))
    if opts["prior_law"] is None:
        default.notes.append("--target-* plans under a prior: with --prior none the default plan is kept")
        return default

    def build(widths: list[int]):
        try:
            return plan_for(widths)
        except BudgetTooSmall:
            return None

    def plan_for(widths: list[int], timer=clock if kind != "flops" else None):
        return make_plan(
            device=device,
            budget=budget,
            widths=widths,
            clock=timer,
            workers=workers,
            **_plan_options(opts, data, vocab_size),
        )

    ladder = list(opts["size_list"] or (CPU_LADDER if device == "cpu" else GPU_WIDTHS))
    if opts["size_list"] is None:  # costs grow with width, mostly: stop after two widths that cannot fit alone
        affordable, misses = [], 0
        for width in ladder:
            if build([width]) is not None:
                affordable.append(width)
            elif (misses := misses + 1) == 2:
                break
        ladder = affordable or ladder[:1]
    result = choose(
        build,
        ladder,
        opts["target"],
        opts["prior_law"],
        arch=opts["arch"],
        cost=lambda plan: plan.cost(kind),
        budget=budget.value,
        n_lrs=opts["lrs"],
        law_n=law_n,
        fixed=opts["size_list"] is not None,  # your --sizes: only its expected interval
    )
    if result is None:  # no candidate of these widths fits; the default plan did: keep it
        default.notes.append("no target-aware plan fits the budget: the default plan is kept")
        return default
    plan = result.chosen.plan if kind != "flops" or clock is None else plan_for(result.chosen.widths, clock)
    show = (lambda v: f"{v:.3g} FLOPs") if kind == "flops" else format_seconds
    if given is None:  # the default plan's cost bounded the candidates; the user set no budget to hold
        plan.budget = None
        plan.notes = [n for n in plan.notes if not n.startswith(("budget ", "sized to the budget"))]
        plan.notes.append(f"no --budget: candidates cost at most the default plan (~{show(budget.value)})")
    plan.notes.extend(result.lines(show))
    return plan


def _replay(opts: dict[str, Any]) -> None:
    from lrpredict.calibrate.lock import folder_lock
    from lrpredict.calibrate.run import calibrate_replay

    path = Path(opts["replay_csv"])
    if not path.is_file():
        raise LrpredictError("--replay", opts["replay_csv"], "a recorded sweep CSV (columns: docs/calibrate.md)")
    with folder_lock(opts["directory"], option="--out"):
        outcome = calibrate_replay(
            path,
            opts["directory"],
            name=opts["name"],
            sizes=opts["size_list"],
            lrs=opts["lrs"],
            batches=opts["batches"],
            max_tokens=opts["max_tokens_value"],
            noise=opts["noise"],
            write=_note,
            prior=opts["prior"],
        )
    _summary(outcome)


def _interrupted(ctx: click.Context, directory: Path) -> int:
    """After Ctrl-C: what was kept and the exact command that continues; exit status 130 (128 + SIGINT)."""
    from lrpredict.calibrate.ledger import Ledger
    from lrpredict.calibrate.run import PLAN_NAME

    if not (directory / PLAN_NAME).is_file():
        _note("interrupted before the plan was saved: nothing to resume")
        return 130
    try:
        kept = len(Ledger(directory).finished_ids())
    except LrpredictError:
        kept = 0
    command = ["lrpredict", "calibrate", "--resume", str(directory)]
    for name in ("workers", "backend", "address"):
        if _given(ctx, name):
            command += [_flag(ctx, name), str(ctx.params[name])]
    _note(f"interrupted: {kept} finished probes kept in {directory / 'probes.jsonl'}")
    _note(f"continue with: {shlex.join(command)}")
    return 130


def _verdict(outcome, target) -> None:
    """calibrate's last lines (issue 19): the held-out cell's verdict, and the interval at the target against the
    bundled default's band."""
    if outcome.validation is not None:
        for line in outcome.validation.lines():
            click.echo(line)
    if target is None or outcome.law is None:
        return
    from lrpredict.config import ModelConfig
    from lrpredict.suggest import suggest, wider_than_default

    try:
        config = ModelConfig(
            params=target.params,
            tokens=target.tokens,
            active_params=target.active_params,
            batch_tokens=target.batch_tokens,
            arch=outcome.law.architectures[0],
        )
        s = suggest(config, law=outcome.law)
    except LrpredictError:
        return
    # the batch the LR is for: a fixed-batch law's LR at the optimal batch is 2-3x its probes'-batch LR (run C)
    batch = "your --target-batch-tokens" if target.batch_tokens is not None else s.batch_source
    click.echo(
        f"at your target (N={target.params:.3g}, D={target.tokens:.3g}): peak LR {s.lr:.3g}, 90% interval "
        f"{s.lr_range.low:.3g}–{s.lr_range.high:.3g} (×{s.lr_range.high / s.lr_range.low:.3g}), at batch "
        f"{s.batch_tokens:,.0f} tokens ({batch})"
    )
    wider = wider_than_default(config, outcome.law, s.lr_range, s.lr_range.tolerance)
    click.echo(f"  ! {wider}" if wider else _narrower_advice(outcome.validation))


def _narrower_advice(validation) -> str:
    """What a calibrated interval narrower than the bundled band is worth: only a held-out cell inside it says "use
    it" (the CPU end-to-end run of 2026-12-04 said "use this law" after its validation missed: docs/log.md)."""
    narrower = "  narrower than the bundled default law's band there"
    if validation is not None and validation.missed:
        return (
            f"  ! {narrower.strip()}, but the held-out cell's optimum fell outside this law's interval: the "
            "interval is optimistic; prefer the bundled law (suggest without --law) or calibrate at larger sizes"
        )
    if validation is None or validation.inside is None:
        return f"{narrower}, but no held-out cell confirmed it: compare with the bundled law before relying on it"
    return f"{narrower}, and the held-out cell fell inside it: use this law"


def _describe(plan) -> str:
    from lrpredict.architecture import count_parameters
    from lrpredict.calibrate.clock import format_seconds

    lines = [f"calibration plan '{plan.name}': {len(plan.probes)} probes on {plan.device}, ~{plan.flops:.3g} FLOPs"]
    wall = plan.estimated_wall_s()
    if wall is not None:
        lines[0] += f", ~{format_seconds(wall)} wall time on {plan.workers} worker{'s' * (plan.workers > 1)}"
        lines[0] += " in all (fit probes, extension reserve, validation)"
    for shape in plan.sizes():
        probes = [p for p in plan.probes if p.arch == shape]
        counts = count_parameters(shape)
        estimate = plan.estimates.get(probes[0].probe_id)
        timing = f"; ~{format_seconds(estimate)} per probe" if estimate else ""
        routing = (
            f" (active {counts.non_embedding_active:,}: {shape.n_experts} experts, top-{shape.top_k})"
            if shape.is_moe
            else ""
        )
        lines.append(
            f"  d_model={shape.d_model} layers={shape.n_layers} N={counts.non_embedding:,}{routing} "
            f"LRs {', '.join(f'{p.lr:.3g}' for p in probes)}; horizons {', '.join(str(h) for h in probes[0].horizons)} tokens"
            f"{timing}"
        )
    lines += _phase_lines(plan)
    if plan.clock:
        lines.append(f"  time: measured by a micro-benchmark on {plan.clock}")
    if plan.prior:
        lines.append(f"  prior: {plan.prior} (--prior; a --resume refits with it)")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _phase_lines(plan) -> list[str]:
    """The plan's cost by phase (issue 19): fit probes, the room kept for grid extensions, the validation cell."""
    from lrpredict.calibrate.clock import format_seconds
    from lrpredict.calibrate.planner import PHASES, law_n, probe_flops

    parts = plan.estimated_parts() or {}
    specs = plan.phase_specs()
    out = []
    for phase in PHASES:
        group = specs[phase]
        cost = f"~{sum(probe_flops(p) for p in group):.3g} FLOPs"
        cost += f", ~{format_seconds(parts[phase])} wall time" if phase in parts else ""
        if phase == PHASES[1] and group:
            out.append(f"  extension reserve: up to {len(group)} probes (two LRs per size, one grid extension): {cost}")
        elif phase == PHASES[2] and group:
            shape, tokens = group[0].arch, max(group[0].horizons)
            ratio = law_n(shape) / max(law_n(p.arch) for p in plan.probes)
            out.append(
                f"  validation: held-out d_model={shape.d_model} layers={shape.n_layers} N={law_n(shape):,.0f} "
                f"({ratio:.2g}× the largest probe's N), D={tokens:,} tokens, LRs "
                f"{', '.join(f'{p.lr:.3g}' for p in group)} (re-centred on the fit's prediction before it runs): {cost}"
            )
        elif phase == PHASES[2]:
            out.append("  validation: none (--no-validate)")
    if plan.budget is not None:
        out.append(f"  budget: {plan.budget.describe()} (a run stops launching probes that would pass 1.2× it)")
    return out


def _summary(outcome, target=None) -> None:
    fit = outcome.fit
    for line in outcome.summary:
        click.echo(line)
    if fit.lr_law is not None:
        law = fit.lr_law
        # what "cells" counts: (N, D) optima in the fit, bounds among them, and how many measured ones stayed out
        measured = len({(c.n, c.tokens) for c in fit.cells})
        bounds = law.posterior.unbracketed_cells if law.posterior is not None else 0
        detail = f"{law.n_cells} of {measured} (N, D) cells in the fit"
        detail += f", {bounds} of them one-sided bounds" if bounds else ""
        detail += "; the rest left out, see the warnings" if law.n_cells < measured else ""
        click.echo(f"η*(N, D) = {law.c:.4g} · N^{law.alpha:.4f} · D^{law.beta:.4f}  ({detail})")
    for warning in fit.warnings:
        click.echo(f"  ! {warning}")
    if outcome.law is not None:
        click.echo(f"law installed: {outcome.law.id} — use: lrpredict suggest ... --law {outcome.law.id}")
    click.echo(f"report: {outcome.report}")
    _verdict(outcome, target)
    if outcome.law is None:  # the run's product is the law: without one it failed, whatever it measured
        click.echo("Error: no law written: the probes measured no usable optimum (see the warnings above)", err=True)
        raise click.exceptions.Exit(1)


def _plan_options(opts: dict[str, Any], data, vocab_size: int | None) -> dict[str, Any]:
    """The ``make_plan`` arguments every plan of one run shares (the default plan and each target-plan candidate)."""
    return {
        "name": opts["name"],
        "arch": opts["arch"],
        "lrs": opts["lrs"],
        "data": data,
        "vocab_size": vocab_size or 512,
        "n_experts": opts["routing"][0],
        "top_k": opts["routing"][1],
        "validate": not opts["no_validate"],
        "horizons": opts["horizon_list"],
    }
