"""Run many probes: an ``Executor`` protocol, a process-pool ``LocalExecutor``, and resumable ``run_probes``.

``LocalExecutor`` keeps one spawned worker process per device (each CUDA GPU, or N CPU workers) and hands each
worker one probe at a time.  A probe that raises is returned as "failed" (CUDA OOM is first retried with doubled
gradient accumulation, which computes the same step in smaller micro-batches); a worker that dies outright is
replaced and its probe returned as failed (``WORKER_DIED``: a resume runs it again).  Workers ignore SIGINT: a
Ctrl-C reaches only the parent, which stops them (``KeyboardInterrupt`` leaves the ledger with every finished probe
and no record of the interrupted ones).  ``run_probes`` appends each result to the ledger as it arrives and skips
probes already there, so a calibration can be SIGKILLed and restarted at any time and runs each probe once.  It
refuses to add a probe whose data's fingerprint differs from the one its ledger's probes were trained on
(``check_same_data``: the token file changed between a run and its resume).

This module imports torch only inside worker processes and ``LocalExecutor`` device discovery.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Protocol

from lrpredict.calibrate.ledger import WORKER_DIED, Ledger
from lrpredict.calibrate.spec import BranchResult, ProbeResult, ProbeSpec
from lrpredict.errors import LrpredictError


class Executor(Protocol):
    """Runs probes somewhere and yields each result as soon as it finishes (in any order)."""

    def submit(self, specs: Iterable[ProbeSpec]) -> Iterator[ProbeResult]: ...


def failed_result(
    spec: ProbeSpec, error: str, *, device: str | None = None, started: float | None = None
) -> ProbeResult:
    """A ``ProbeResult`` with status "failed" and no losses."""
    now = time.time()
    return ProbeResult(
        probe_id=spec.probe_id,
        spec=spec,
        status="failed",
        branches=tuple(
            BranchResult(tokens=t * spec.tokens_per_step, steps=t, eval_loss=None) for t in spec.horizon_steps
        ),
        error=error,
        device=device or spec.device,
        wall_time_s=now - started if started else 0.0,
        finished_at=now,
    )


def is_oom(exc: BaseException) -> bool:
    """CUDA (or other accelerator) out-of-memory, by type where torch has it, else by message."""
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def run_probe(
    spec: ProbeSpec, *, max_oom_retries: int = 3, train: Callable[[ProbeSpec], ProbeResult] | None = None
) -> ProbeResult:
    """Run ``spec`` in this process and always return a result: ok, diverged, or failed with the error.

    On OOM the probe is retried with ``grad_accum`` doubled, at most ``max_oom_retries`` times and while the doubled
    value still divides ``batch_size``.  ``train`` defaults to ``train.train_probe``.
    """
    if train is None:
        from lrpredict.calibrate.train import train_probe as train
    started = time.time()
    attempt = spec
    for retry in range(max_oom_retries + 1):
        try:
            return train(attempt)
        except Exception as exc:  # any crash becomes a failed record; the calibration goes on
            error = f"{type(exc).__name__}: {exc}".strip()
            if not is_oom(exc):
                return failed_result(spec, f"{error}\n{traceback.format_exc(limit=-3)}", started=started)
        _free_accelerator_memory()
        doubled = attempt.grad_accum * 2
        if retry == max_oom_retries or spec.batch_size % doubled:
            break
        attempt = attempt.model_copy(update={"grad_accum": doubled})
    return failed_result(spec, f"out of memory at grad_accum={attempt.grad_accum}: {error}", started=started)


def _free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class SerialExecutor:
    """Runs probes one after another in this process (debugging, notebooks)."""

    def __init__(self, *, max_oom_retries: int = 3) -> None:
        self.max_oom_retries = max_oom_retries

    def submit(self, specs: Iterable[ProbeSpec]) -> Iterator[ProbeResult]:
        for spec in specs:
            yield run_probe(spec, max_oom_retries=self.max_oom_retries)


@dataclass
class _Worker:
    """One spawned worker process, its pipe, and the probe it is running (None: idle)."""

    device: str
    process: Any  # multiprocessing.context.SpawnProcess
    conn: Any  # multiprocessing.connection.Connection
    task: ProbeSpec | None = None
    started: float = 0.0

    def reply(self) -> str | None:
        """The worker's result (JSON) when one has arrived; None when none has or the pipe broke (it died)."""
        if not self.conn.poll():
            return None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None


class LocalExecutor:
    """A pool of spawned processes on this machine, one probe per device at a time.

    ``devices`` names one worker each ("cuda:0", "cpu", …); by default every CUDA GPU, else ``cpu_workers`` CPU
    workers (default: a quarter of the cores).  Each worker gets ``threads_per_worker`` torch threads (default: the
    cores divided among the workers), so CPU workers do not oversubscribe the machine.
    """

    def __init__(
        self,
        devices: Sequence[str] | None = None,
        *,
        cpu_workers: int | None = None,
        threads_per_worker: int | None = None,
        max_oom_retries: int = 3,
    ) -> None:
        self.devices = list(devices) if devices else _default_devices(cpu_workers)
        cores = _cpu_count()
        self.threads = threads_per_worker or max(1, cores // len(self.devices))
        self.max_oom_retries = max_oom_retries
        self._workers: list[_Worker] = []

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty outside ``submit``)."""
        return [w.process.pid for w in self._workers if w.process.is_alive()]

    def submit(self, specs: Iterable[ProbeSpec]) -> Iterator[ProbeResult]:
        pending = list(specs)
        pending.reverse()  # pop() from the end keeps submission order
        ctx = mp.get_context("spawn")  # fork after torch/CUDA initialisation is unsafe
        self._workers = [self._start(ctx, d) for d in self.devices[: len(pending)]]
        try:
            while True:
                for w in self._workers:
                    if w.task is None and pending:
                        w.task, w.started = pending.pop(), time.time()
                        w.conn.send(w.task.model_dump_json())
                busy = [w for w in self._workers if w.task is not None]
                if not busy:
                    return
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                yield from self._collect(ctx)
        finally:
            _stop_workers(self._workers)
            self._workers = []

    def _collect(self, ctx: Any) -> Iterator[ProbeResult]:
        """The result of each busy worker that answered; a worker that died instead yields a failed result for its
        probe and is replaced by a new one on the same device."""
        for i, w in enumerate(self._workers):
            if w.task is None:
                continue
            payload = w.reply()
            if payload is not None:
                w.task = None
                yield ProbeResult.model_validate_json(payload)
                continue
            if not w.process.is_alive():
                code = w.process.exitcode
                yield failed_result(w.task, f"{WORKER_DIED} (exit code {code})", device=w.device, started=w.started)
                w.conn.close()
                self._workers[i] = self._start(ctx, w.device)

    def _start(self, ctx: Any, device: str) -> _Worker:
        return _start_worker(ctx, device, self.threads, self.max_oom_retries)


def _start_worker(ctx: Any, device: str, threads: int, max_oom_retries: int) -> _Worker:
    """Spawn one worker process for ``device`` (``_worker_main``) with SIGINT ignored while it starts."""
    parent, child = ctx.Pipe()
    args = (child, device, threads, max_oom_retries, os.getpid())
    process = ctx.Process(target=_worker_main, args=args, daemon=True, name=f"lrpredict-probe-{device}")
    # A terminal's Ctrl-C signals the whole process group.  A worker started with SIGINT ignored keeps it ignored
    # (Python installs its handler only over SIG_DFL), so a Ctrl-C during its start-up prints no traceback;
    # SIGTERM to the parent waits until the start is done (``_start_signals_deferred``).
    with _start_signals_deferred():
        process.start()
    child.close()
    return _Worker(device=device, process=process, conn=parent)


def _stop_workers(workers: list[_Worker]) -> None:
    """Ask idle workers to exit (10 s in all), kill those still running a probe, and close every pipe."""
    for w in workers:
        if w.process.is_alive() and w.task is None:
            with contextlib.suppress(OSError):  # already gone
                w.conn.send(None)
    deadline = time.time() + 10
    for w in workers:
        w.process.join(timeout=max(0.0, deadline - time.time()) if w.task is None else 0)
        if w.process.is_alive():
            w.process.kill()  # a probe still running when the caller stopped listening
            w.process.join()
        w.conn.close()


@contextlib.contextmanager
def _start_signals_deferred() -> Iterator[None]:
    """While a worker starts: SIGINT ignored (the worker inherits SIG_IGN, so a terminal's Ctrl-C to the group prints
    no traceback in it) and SIGTERM blocked, so it reaches the parent once the start is done (a SIGTERM mid-start
    left the half-started worker printing "EOFError: Ran out of input"; the full suite caught it, 2026-12-04)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change signal handlers
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        signal.signal(signal.SIGINT, previous)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _default_devices(cpu_workers: int | None) -> list[str]:
    import torch

    if cpu_workers is None and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"] * (cpu_workers or max(1, _cpu_count() // 4))


def _worker_main(conn: Any, device: str, threads: int, max_oom_retries: int, parent_pid: int) -> None:
    """Worker process: pin to one device, then run probes received on ``conn`` until it sends None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops this worker
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by the parent while it started us
    _exit_with_parent(parent_pid)
    # before torch is imported: thread pools size themselves from these, and a worker sees only its own GPU
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if device.startswith("cuda"):
        _, _, index = device.partition(":")
        # cuda:i counts the GPUs the parent sees: the i-th of an inherited CUDA_VISIBLE_DEVICES, not physical GPU i
        visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        i = int(index or 0)
        os.environ["CUDA_VISIBLE_DEVICES"] = visible[i].strip() if i < len(visible) else str(i)
        device = "cuda:0"
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away
            return
        if message is None:
            return
        spec = ProbeSpec.model_validate_json(message).model_copy(update={"device": device})
        conn.send(run_probe(spec, max_oom_retries=max_oom_retries).model_dump_json())


def _exit_with_parent(parent_pid: int) -> None:
    """Exit when the parent dies (a SIGKILLed parent cannot stop its workers; they would train on unseen).

    Linux: the kernel sends SIGKILL the moment the parent dies (prctl PR_SET_PDEATHSIG); elsewhere, and as a
    fallback, a thread polls the parent pid (it can be starved for a while on a loaded machine).  PDEATHSIG follows
    the parent *thread* that started the worker: submit from a thread that outlives the executor's use."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
            if os.getppid() != parent_pid:  # the parent died before the request took effect
                os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def run_probes(
    specs: Iterable[ProbeSpec],
    out_dir: str | os.PathLike[str],
    executor: Executor | None = None,
    *,
    retry_failed: bool = False,
    on_result: Callable[[ProbeResult], None] | None = None,
) -> list[ProbeResult]:
    """Run every probe of ``specs`` not yet in ``out_dir``'s ledger, appending each result as it arrives.

    Safe to SIGKILL and rerun: finished probes are read back, not run again (failed ones are retried only with
    ``retry_failed``; probes whose worker died always).  The ledger is validated before anything runs.  Returns the
    latest ledger result of each distinct spec, in the order given.
    """
    ledger = Ledger(out_dir)
    unique = list({s.probe_id: s for s in specs}.values())
    done = ledger.finished_ids(include_failed=not retry_failed)  # reads and validates every line first
    todo = [s for s in unique if s.probe_id not in done]
    if todo:
        check_same_data(todo, ledger)  # new probes never mix with probes trained on other data
        for result in (executor or LocalExecutor()).submit(todo):
            ledger.append(result)
            if on_result is not None:
                on_result(result)
    latest = ledger.latest()
    return [latest[s.probe_id] for s in unique if s.probe_id in latest]


def check_same_data(specs: Iterable[ProbeSpec], ledger: Ledger) -> None:
    """Raise ``LrpredictError`` (field ``data``) when the data ``specs`` would train on has another fingerprint than
    the ledger's probes of the same data source were trained on (the file changed since): their losses would be fit
    together.  Cheap: it reads sizes, first MiBs and 16 samples (``data.data_fingerprint``), no tokens.  Records with no
    fingerprint (failed probes, old ledgers) are no conflict; a file that cannot be read is left to the probe, which
    fails and says why, as before."""
    from lrpredict.calibrate.data import data_fingerprint, legacy_fingerprints

    recorded: dict[tuple[str, int], Counter[str]] = {}
    for result in ledger.results():
        if result.data_fingerprint and result.data_fingerprint != "unknown":
            recorded.setdefault(_data_key(result.spec), Counter())[result.data_fingerprint] += 1
    checked: set[tuple[str, int]] = set()
    for spec in specs:
        key = _data_key(spec)
        if key in checked or key not in recorded:
            continue
        checked.add(key)
        try:
            now = data_fingerprint(spec.data, spec.arch.vocab_size)
        except OSError:
            continue
        with legacy_fingerprints():  # a ledger from before sampled fingerprints: its head-only hash still matches
            before = data_fingerprint(spec.data, spec.arch.vocab_size)
        other = {fp: n for fp, n in recorded[key].items() if fp not in (now, before)}
        if other:
            n = sum(other.values())
            old = " / ".join(map(_short, other))
            raise LrpredictError(
                "data",
                spec.data.path or spec.data.kind,
                f"the same data as the {n} probe{'s' * (n != 1)} already in {ledger.path} (fingerprint {old} there, "
                f"{_short(now)} now), or a new output folder",
            )


def _short(fingerprint: str) -> str:
    """The first 12 hex digits of a sha256; any other recorded text (a replay's 'sweeps.csv, 48 cells') whole."""
    hexdigits = set("0123456789abcdef")
    return fingerprint[:12] if len(fingerprint) == 64 and set(fingerprint) <= hexdigits else fingerprint


def _data_key(spec: ProbeSpec) -> tuple[str, int]:
    """What decides a probe's data fingerprint besides the files' contents (synthetic data: the vocabulary too)."""
    return spec.data.model_dump_json(), spec.arch.vocab_size
