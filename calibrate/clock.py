"""How long a probe takes on this machine: a timed micro-benchmark of the probe model, cached per device.

Issue 12: the planner used to turn GPU-hours into FLOPs at an assumed 35% MFU of an H100, whatever the device and
probe size; a 10M-parameter probe reaches a small fraction of that.  Here a few real optimizer steps of each probe
shape (the probe's own model, batch, sequence length, precision and data) are timed on the device that will run it:

    seconds per probe ≈ setup + steps · (seconds per step) + branches · (seconds per held-out evaluation)

where ``setup`` is model and optimizer construction plus the first step (allocator, kernels, ``torch.compile``) in
a warm process: a probe worker pays its process's cold start (thread pools, first kernels) once, not per probe, so
the benchmark warms up untimed first (docs/log.md: a cold first shape cost 4× its step time, cached for good).
The timings are cached in ``$LRPREDICT_HOME/cache/clock.json`` under the device's name, the torch version, the
threads per worker and the shape, so a second plan on the same machine measures nothing.  A CUDA benchmark runs in
a spawned process, so the planning process holds no CUDA context while the probes train.

A shape whose estimated memory does not fit comfortably in what the device has free is never built (a dry run of
d_model=2048 on a 24 GB machine was OOM-killed): it is timed on a smaller shape (fewer layers, then smaller
micro-batches, then half the width) and scaled by FLOPs per step, and its ``Timing.note`` says so.
"""

from __future__ import annotations

import gc
import heapq
import json
import math
import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrpredict.architecture import Architecture, count_parameters, flops_per_token
from lrpredict.calibrate.spec import ProbeResult, ProbeSpec

BENCH_STEPS = 3  # timed steps after the first (a few: the estimate, not the benchmark, should cost the time) …
MIN_BENCH_S, MAX_BENCH_STEPS = 0.5, 20  # … more while they are quick, for a steadier median
# untimed steps before anything is timed; one slow step already absorbs the cold start, so no more once this long
WARMUP_STEPS, WARMUP_S = 3, 0.5
CACHE_VERSION = 1
# in every shape key: timings of an older method are measured again (1 timed a cold process's first shape)
METHOD = 2
# a shape is built only when its estimate is under this share of the free memory: the estimate is rough and the
# planning process, the allocator's slack and the OS need the rest
MEMORY_FRACTION = 0.5
RUNTIME_BYTES = 512 * 2**20  # torch's own footprint and allocator slack, beyond tensors
FIELDS = ("setup_s", "step_s", "eval_s")  # what the cache holds for a shape
# A shape whose real probes took more than this factor off their estimate has its cached timing rescaled (issue 19:
# was 3×; a timing taken under load stayed cached 2× too slow and the ETA said 483 s with ~15 min left).
CLOCK_OFF = 1.5
# A cached CPU timing is measured again when the machine is this much more, or less, contended than when it was
# taken: contention = max(1, 1-minute load average per core), recorded with the timing (issue 19).
LOAD_OFF = 1.5


@dataclass(frozen=True)
class Timing:
    """Measured costs of one probe shape on one device."""

    setup_s: float  # data, model, optimizer, first step
    step_s: float  # one optimizer step after the first
    eval_s: float  # one held-out evaluation (every branch ends with one)
    note: str = ""  # why the timing is not a measurement of this shape ("" when it is)
    fits: bool = True  # False: a probe of this shape needs more memory than is free here (the run would be killed)

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
    """What decides a step's cost (not the LR, horizons or seed), and the method that timed it."""
    fields = spec.model_dump(
        mode="json", include={"arch", "batch_size", "seq_len", "precision", "compile", "grad_accum", "eval_batches"}
    )
    fields["data"] = spec.data.kind
    fields["method"] = METHOD
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def estimate_memory(spec: ProbeSpec, device: str) -> int:
    """Peak bytes of one probe of ``spec`` on ``device`` while it trains, on the generous side."""
    return _state_bytes(spec) + _activation_bytes(spec, device) + RUNTIME_BYTES


def _state_bytes(spec: ProbeSpec) -> int:
    """fp32 weights, gradients and both AdamW moments: 16 bytes a parameter, every expert included."""
    return 16 * count_parameters(spec.arch).total


def _activation_bytes(spec: ProbeSpec, device: str) -> int:
    """What one micro-batch keeps for backward, all of it counted as fp32 (autocast keeps some in bf16)."""
    arch = spec.arch
    # values a token keeps per layer (cf. Korthikanti et al. arXiv 2205.05198, 34·d + 5·heads·seq bytes in 16-bit):
    # ~16 d-wide (norm outputs, q, k, v, attention output, residuals) and ~6 FFN-wide (gate, up, SiLU, product,
    # workspace); on the CPU a heads·seq score matrix too (CUDA's SDPA kernels do not keep one)
    per_layer = 16 * arch.d_model + 6 * _ffn_width(arch)
    if not device.startswith("cuda"):
        per_layer += arch.n_heads * spec.seq_len
    per_token = arch.n_layers * per_layer + 4 * arch.vocab_size  # logits, their fp32 copy, softmax, its gradient
    return 4 * spec.batch_size // spec.grad_accum * spec.seq_len * per_token


def _ffn_width(arch: Architecture) -> int:
    """The FFN hidden width a token goes through (MoE: its top-k experts and the shared ones)."""
    if not arch.is_moe:
        return arch.d_ffn
    d_expert = arch.d_expert or arch.d_ffn
    shared = arch.n_shared_experts * (arch.d_shared_expert or d_expert)
    return max(arch.d_ffn, arch.top_k * d_expert + shared)


def step_flops(spec: ProbeSpec) -> float:
    """Training FLOPs of one optimizer step: DeepSeek's 6·N_active + 12·L·d·seq per token plus the tied head's
    6·d·vocab, which is a large share of a small probe's compute."""
    arch = spec.arch
    active = count_parameters(arch).non_embedding_active
    per_token = flops_per_token(active, arch.n_layers, arch.d_model, spec.seq_len)
    return per_token * spec.tokens_per_step + head_flops(spec)


def head_flops(spec: ProbeSpec) -> float:
    """Training FLOPs of one step in the output layer: the logits are 2·d·V per token forward, 6·d·V with backward
    (the input embedding is a lookup).  With a 50,257-id vocabulary this is ~98% of a d=32 probe (issue 19)."""
    return 6.0 * spec.arch.d_model * spec.arch.vocab_size * spec.tokens_per_step


def smaller(spec: ProbeSpec, device: str) -> ProbeSpec | None:
    """A cheaper shape to time instead of ``spec``, one reduction at a time: one layer (the others repeat it, so
    FLOPs scale it exactly), then half the micro-batch while activations outweigh the weights and optimizer state
    (what the executor does after an OOM), else half the width; None at the smallest."""
    arch = spec.arch
    depth = arch.n_dense_layers + 1 if arch.is_moe else 1
    if arch.n_layers > depth:
        return _with_arch(spec, n_layers=depth)
    micro_halves = spec.batch_size % (2 * spec.grad_accum) == 0
    if micro_halves and _activation_bytes(spec, device) > _state_bytes(spec):
        return spec.model_copy(update={"grad_accum": 2 * spec.grad_accum})
    if arch.d_model < 32 or arch.d_model % 2:
        return None
    heads = max(1, arch.n_heads // 2)
    while (arch.d_model // 2) % heads:
        heads -= 1
    half = {"d_model": arch.d_model // 2, "d_ffn": max(8, arch.d_ffn // 2), "n_heads": heads}
    if arch.n_kv_heads is not None:
        half["n_kv_heads"] = math.gcd(arch.n_kv_heads, heads)
    for name in ("d_expert", "d_shared_expert"):
        if getattr(arch, name) is not None:
            half[name] = max(8, getattr(arch, name) // 2)
    return _with_arch(spec, **half)


def _with_arch(spec: ProbeSpec, **changes: int) -> ProbeSpec:
    arch = Architecture.model_validate({**spec.arch.model_dump(), **changes})
    return spec.model_copy(update={"arch": arch})


def available_memory(device: str) -> int | None:
    """Bytes free for a new probe on ``device`` (None: unknown).  CUDA asks torch, so call it in the process that
    will measure; the CPU takes the smaller of the system's MemAvailable and what the cgroup (container) allows."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    found = [v for v in (_meminfo_available(), _cgroup_available(), _rlimit_available()) if v is not None]
    return min(found) if found else None


def _rlimit_available() -> int | None:
    """Address space left under ``ulimit -v`` (RLIMIT_AS) for this process (issue 23: the guard ignored it, so a
    probe the limit could not hold was planned and died in malloc)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
        return soft
    except (ImportError, OSError, ValueError, IndexError):
        return None


def _meminfo_available() -> int | None:
    try:
        import psutil  # not a dependency: used where it is installed (macOS has no /proc)

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def _gigabytes(n: float) -> str:
    return f"{n / 2**30:.3g} GB"


class _ClockCache:
    """The clock's timing cache on disk (one entry per device name and shape), and its rescaling from finished
    probes."""

    def learn(self, results: Iterable[ProbeResult], estimates: dict[str, float]) -> list[str]:
        """Rescale the cached timing of each shape whose finished probes ran more than ``CLOCK_OFF``× off their
        ``estimates`` (median actual / estimated): a benchmark taken while the machine was busy (QA 2026-12-01: d=32
        cached at 1.09 s a step, 0.014 s unloaded) would otherwise mislead every later plan.  One line per shape."""
        ratios: dict[str, list[float]] = {}
        widths: dict[str, int] = {}
        for r in results:
            estimate = estimates.get(r.probe_id)
            if r.status == "ok" and estimate and r.wall_time_s > 0:
                key = _shape_key(r.spec)
                ratios.setdefault(key, []).append(r.wall_time_s / estimate)
                widths[key] = r.spec.arch.d_model
        lines = []
        for key, values in ratios.items():
            ratio = statistics.median(values)
            cached = self._read_cache().get(key)
            if cached is None or 1 / CLOCK_OFF <= ratio <= CLOCK_OFF:
                continue
            self._write_cache(key, Timing(**{f: cached[f] * ratio for f in FIELDS}))
            self._timings.pop(key, None)
            lines.append(
                f"clock: d={widths[key]} probes took {ratio:.2g}× their estimate; its cached timing is rescaled for "
                "the next plan on this machine"
            )
        return lines

    def _read_cache(self) -> dict[str, dict[str, float]]:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        entries = data.get("devices", {}).get(self.name, {})
        return {k: v for k, v in entries.items() if isinstance(v, dict) and set(FIELDS) <= set(v) <= {*FIELDS, "load"}}

    def _write_cache(self, key: str, timing: Timing) -> None:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
                raise ValueError
        except (OSError, ValueError):
            data = {"version": CACHE_VERSION, "devices": {}}
        entry: dict[str, float] = {f: getattr(timing, f) for f in FIELDS}
        if not self.device.startswith("cuda"):
            entry["load"] = contention()
        data.setdefault("devices", {}).setdefault(self.name, {})[key] = entry
        try:  # a cache that cannot be written costs a re-measurement next time, nothing else
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".{os.getpid()}.part")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(self.cache_path)
        except OSError:
            pass


class _ClockProcess:
    """Where a clock's measurements run: here on CPU, in one spawned process for CUDA."""

    def _available_memory(self) -> int | None:
        if not self.device.startswith("cuda"):
            return available_memory(self.device)
        return self._worker().submit(available_memory, self.device).result()  # no CUDA context here

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _measure(self, spec: ProbeSpec) -> Timing:
        payload = spec.model_dump_json()
        if not self.device.startswith("cuda"):
            return Timing(**measure(payload, self.device, self.threads, self.steps))
        return Timing(**self._worker().submit(measure, payload, self.device, self.threads, self.steps).result())

    def _worker(self) -> Any:
        """The spawned process CUDA work runs in."""
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        return self._pool


def _matmul_flops(threads: int) -> float:
    """FLOP/s of the best of three 512×1024 @ 1024×1024 fp32 matmuls with ``threads`` torch threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(512, 1024), torch.randn(1024, 1024)
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    finally:
        torch.set_num_threads(previous)
    return 2 * 512 * 1024 * 1024 / max(best, 1e-9)


class Clock(_ClockCache, _ClockProcess):
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
            if cached is not None and self._same_load(cached.get("load")):
                self._timings[key] = Timing(**{f: cached[f] for f in FIELDS})
            else:
                self._timings[key] = self._new_timing(spec, key)
        return self._timings[key]

    def _same_load(self, then: float | None) -> bool:
        """Whether a cached timing taken at contention ``then`` still holds now (GPUs, and timings from before the
        load was recorded, always do)."""
        if self.device.startswith("cuda") or then is None:
            return True
        ratio = contention() / max(1.0, then)
        return 1 / LOAD_OFF <= ratio <= LOAD_OFF

    def probe_seconds(self, spec: ProbeSpec) -> float:
        return self.timing(spec).probe_seconds(spec)

    def peak_flops(self) -> float:
        """FLOP/s of a large fp32 matmul on this CPU with this clock's threads, now: no probe runs faster, so FLOPs
        over it bound a plan's time from below without building a probe (issue 19: a refusal within a minute on a
        busy machine).  GPUs: infinite (no bound; their probes are timed)."""
        return math.inf if self.device.startswith("cuda") else _matmul_flops(self.threads)

    @property
    def notes(self) -> list[str]:
        """One line for each timing that is not a measurement of its own shape (for the plan's notes)."""
        return [t.note for t in self._timings.values() if t.note]

    @property
    def unfit(self) -> list[str]:
        """The notes of shapes whose probes would not fit in memory here, narrowest first (the fit probes before a
        wider validation cell): a run of them would be OOM-killed."""
        notes = [t.note for t in self._timings.values() if not t.fits]
        return sorted(notes, key=lambda note: int(note.split()[0].partition("=")[2] or 0))

    def unfit_among(self, specs: Iterable[ProbeSpec]) -> list[str]:
        """``unfit`` for the shapes of ``specs`` only: a wider candidate the target planner timed and did not choose
        must not refuse the plan it chose (the H200 run of 2026-12-04 was refused over an untaken d=1024)."""
        keys = {_shape_key(spec) for spec in specs}
        notes = [t.note for key, t in self._timings.items() if key in keys and not t.fits]
        return sorted(notes, key=lambda note: int(note.split()[0].partition("=")[2] or 0))

    def _new_timing(self, spec: ProbeSpec, key: str) -> Timing:
        """Measure ``spec`` (and cache it) if it fits in memory, else scale a smaller shape's timing (not cached:
        it depends on the memory free now, and the smaller shape's measurement is)."""
        free = self._available_memory()
        proxy = spec
        while free is not None and estimate_memory(proxy, self.device) > MEMORY_FRACTION * free:
            cheaper = smaller(proxy, self.device)
            if cheaper is None:  # nothing smaller: time the smallest anyway, it is a few MB
                break
            proxy = cheaper
        if proxy is not spec:
            assert free is not None
            return _extrapolated(self.timing(proxy), proxy, spec, self.device, free)
        timing = self._measure(spec)
        self.measured += 1
        self._write_cache(key, timing)
        return timing


def contention() -> float:
    """How contended this machine's CPUs are now: max(1, 1-minute load average per core) (1 where unknown)."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def _extrapolated(measured: Timing, proxy: ProbeSpec, spec: ProbeSpec, device: str, free: int) -> Timing:
    """``measured`` (the timing of ``proxy``) scaled to ``spec`` by FLOPs per step, with a note saying so."""
    ratio = step_flops(spec) / step_flops(proxy)
    need = estimate_memory(spec, device)
    arch, small = spec.arch, proxy.arch
    micro = f" micro-batch {proxy.batch_size // proxy.grad_accum}" if proxy.grad_accum != spec.grad_accum else ""
    note = (
        f"d_model={arch.d_model} layers={arch.n_layers}: time extrapolated by FLOPs (×{ratio:.3g}) from "
        f"d_model={small.d_model} layers={small.n_layers}{micro}: too large to time here "
        f"(~{_gigabytes(need)} needed, {_gigabytes(free)} free)"
    )
    # a probe also holds its branch snapshot (weights and both moments) where branch_store puts it
    store = "device" if device.startswith("cuda") else "cpu"
    run = need + (12 * count_parameters(arch).total if spec.branch_store == store else 0)
    if run > free:
        note += f"; a probe of this shape (~{_gigabytes(run)}) would not fit in memory here either"
    scaled = (measured.setup_s * ratio, measured.step_s * ratio, measured.eval_s * ratio)
    return Timing(*scaled, note, fits=run <= free)


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
    """Time the setup, ``steps`` optimizer steps and one evaluation of the probe ``spec_json`` on ``device`` in this
    process, after an untimed warm-up; runs in a spawned process for CUDA (so the warm-up does too)."""
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

        _warm_up(ProbeRun(spec), spec.lr, sync)
        gc.collect()  # the warm-up's model is gone before the timed one is built: the peak stays one probe
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


def _warm_up(run: Any, lr: float, sync: Any) -> None:
    """Untimed steps and an evaluation: the process's one-time costs (thread pools, allocator, first kernels, data)
    are paid here, not charged to whichever shape happens to be timed first."""
    t0 = time.perf_counter()
    for step in range(WARMUP_STEPS):
        run.step(step, lr)
        sync()
        if time.perf_counter() - t0 > WARMUP_S:
            return  # a slow step has absorbed costs of this size: more would only lengthen the benchmark
    run.evaluate()
    sync()
