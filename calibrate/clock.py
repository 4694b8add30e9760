"""How long a probe takes on this machine: a timed micro-benchmark of the probe model, cached per device.

Issue 12: the planner used to turn GPU-hours into FLOPs at an assumed 35% MFU of an H100, whatever the device and
probe size; a 10M-parameter probe reaches a small fraction of that.  Here a few real optimizer steps of each probe
shape (the probe's own model, batch, sequence length, precision and data) are timed on the device that will run it:

    seconds per probe ≈ setup + steps · (seconds per step) + branches · (seconds per held-out evaluation)

where ``setup`` is model and optimizer construction plus the first step (allocator, kernels, ``torch.compile``).
The timings are cached in ``$LRPREDICT_HOME/cache/clock.json`` under the device's name, the torch version, the
threads per worker and the shape, so a second plan on the same machine measures nothing.  A CUDA benchmark runs in
a spawned process, so the planning process holds no CUDA context while the probes train.
"""

from __future__ import annotations

import heapq
import json
import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lrpredict.calibrate.spec import ProbeSpec

BENCH_STEPS = 3  # timed steps after the first (a few: the estimate, not the benchmark, should cost the time) …
MIN_BENCH_S, MAX_BENCH_STEPS = 0.5, 20  # … more while they are quick, for a steadier median
CACHE_VERSION = 1


@dataclass(frozen=True)
class Timing:
    """Measured costs of one probe shape on one device."""

    setup_s: float  # data, model, optimizer, first step
    step_s: float  # one optimizer step after the first
    eval_s: float  # one held-out evaluation (every branch ends with one)

    def probe_seconds(self, spec: ProbeSpec) -> float:
        steps, branch = spec.horizon_steps, spec.branch_steps
        total = steps[-1] + sum(t - b for t, b in zip(steps[:-1], branch[:-1], strict=True))
        return self.setup_s + total * self.step_s + len(steps) * self.eval_s


def total_wall_seconds(seconds: Iterable[float], workers: int) -> float:
    """Wall time of probes handed in order to the first free of ``workers`` (what ``LocalExecutor`` does)."""
    free = [0.0] * max(1, workers)
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}min"
    return f"{s / 3600:.1f}h"


def _shape_key(spec: ProbeSpec) -> str:
    """What decides a step's cost (not the LR, horizons or seed)."""
    fields = spec.model_dump(
        mode="json", include={"arch", "batch_size", "seq_len", "precision", "compile", "grad_accum", "eval_batches"}
    )
    fields["data"] = spec.data.kind
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


class Clock:
    """Per-probe time estimates for ``device`` ("cpu", "cuda", "cuda:N") with ``threads`` torch threads per probe."""

    def __init__(self, device: str, *, threads: int = 1, steps: int = BENCH_STEPS, cache: Path | None = None) -> None:
        self.device = device
        self.threads = threads
        self.steps = steps
        self.cache_path = cache if cache is not None else _default_cache()
        self.measured = 0  # shapes timed by this clock (not read from the cache)
        self.name = _device_name(device, threads)
        self._timings: dict[str, Timing] = {}
        self._pool: Any = None

    def timing(self, spec: ProbeSpec) -> Timing:
        key = _shape_key(spec)
        if key not in self._timings:
            cached = self._read_cache().get(key)
            if cached is not None:
                self._timings[key] = Timing(**cached)
            else:
                self._timings[key] = self._measure(spec)
                self.measured += 1
                self._write_cache(key, self._timings[key])
        return self._timings[key]

    def probe_seconds(self, spec: ProbeSpec) -> float:
        return self.timing(spec).probe_seconds(spec)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _measure(self, spec: ProbeSpec) -> Timing:
        payload = spec.model_dump_json()
        if not self.device.startswith("cuda"):
            return Timing(**measure(payload, self.device, self.threads, self.steps))
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        return Timing(**self._pool.submit(measure, payload, self.device, self.threads, self.steps).result())

    def _read_cache(self) -> dict[str, dict[str, float]]:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        entries = data.get("devices", {}).get(self.name, {})
        return {k: v for k, v in entries.items() if isinstance(v, dict) and set(v) == {"setup_s", "step_s", "eval_s"}}

    def _write_cache(self, key: str, timing: Timing) -> None:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
                raise ValueError
        except (OSError, ValueError):
            data = {"version": CACHE_VERSION, "devices": {}}
        data.setdefault("devices", {}).setdefault(self.name, {})[key] = asdict(timing)
        try:  # a cache that cannot be written costs a re-measurement next time, nothing else
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".{os.getpid()}.part")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(self.cache_path)
        except OSError:
            pass


def _default_cache() -> Path:
    from lrpredict.registry import home

    return home() / "cache" / "clock.json"


def _device_name(device: str, threads: int) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        hardware = _gpu_name(int(device.partition(":")[2] or 0))
    else:
        hardware = f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip()
    return f"{device}: {hardware}; {threads} threads; torch {torch.__version__}"


def _gpu_name(index: int) -> str:
    """The GPU's name from nvidia-smi: asking torch would create a CUDA context in the planning process."""
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", str(index)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return f"GPU {index}"
    return out.stdout.strip() or f"GPU {index}"


def measure(spec_json: str, device: str, threads: int, steps: int) -> dict[str, float]:
    """Time ``steps`` optimizer steps (after one untimed) and one evaluation of the probe ``spec_json`` on
    ``device`` in this process; runs in a spawned process for CUDA."""
    import torch

    from lrpredict.calibrate.train import ProbeRun

    if device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" not in os.environ:
        torch.cuda.set_device(int(device.partition(":")[2] or 0))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        spec = ProbeSpec.model_validate_json(spec_json).model_copy(update={"device": device})

        def sync() -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize(torch.device(device))

        t0 = time.perf_counter()
        run = ProbeRun(spec)
        run.step(0, spec.lr)
        sync()
        setup = time.perf_counter() - t0
        # the median of single steps: a shared machine's hiccups should not become the estimate
        times: list[float] = []
        while len(times) < steps or (sum(times) < MIN_BENCH_S and len(times) < MAX_BENCH_STEPS):
            t = time.perf_counter()
            run.step(len(times) + 1, spec.lr)
            sync()
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        run.evaluate()
        sync()
        return {"setup_s": setup, "step_s": statistics.median(times), "eval_s": time.perf_counter() - t}
    finally:
        torch.set_num_threads(previous)
