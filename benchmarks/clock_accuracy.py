"""How good is the calibration clock?  Plan with a measured ``Clock``, run the probes, compare actual with estimated.

    python benchmarks/clock_accuracy.py --device cpu --workers 2 --widths 32,48,64 --lrs 3

Prints one markdown row per width (median actual/estimated probe time) and the whole run's wall time against the
plan's estimate, for docs/benchmarks.md.  The machine's load average is printed too: the micro-benchmark times a
probe alone, so contention shows up as a ratio above 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--widths", default="32,48,64")
    parser.add_argument("--lrs", type=int, default=3)
    args = parser.parse_args()

    from lrpredict.calibrate.clock import Clock, format_seconds
    from lrpredict.calibrate.executor import LocalExecutor, _cpu_count, run_probes
    from lrpredict.calibrate.planner import make_plan

    cpu = args.device == "cpu"
    devices = ["cpu"] * args.workers if cpu else [f"cuda:{i}" for i in range(args.workers)]
    threads = max(1, _cpu_count() // args.workers) if cpu else 1
    with tempfile.TemporaryDirectory() as home:
        clock = Clock(devices[0], threads=threads, cache=Path(home) / "clock.json")
        t0 = time.perf_counter()
        plan = make_plan(
            name="clock-bench",
            device="cpu" if cpu else "cuda",
            widths=[int(w) for w in args.widths.split(",")],
            lrs=args.lrs,
            clock=clock,
            workers=args.workers,
        )
        clock.close()
        bench_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = run_probes(plan.probes, Path(home) / "out", LocalExecutor(devices, threads_per_worker=threads))
        wall = time.perf_counter() - t1
    print(f"load average (1 min, at the end): {os.getloadavg()[0]:.1f}; clock: {plan.clock}; benchmark {bench_s:.1f}s")
    print("| width | probes | estimated per probe | actual (median) | actual / estimated |")
    print("|---|---|---|---|---|")
    for shape in plan.sizes():
        mine = [r for r in results if r.spec.arch == shape]
        estimate = plan.estimates[mine[0].probe_id]
        actual = statistics.median(r.wall_time_s for r in mine)
        print(f"| {shape.d_model} | {len(mine)} | {estimate:.1f}s | {actual:.1f}s | {actual / estimate:.2f} |")
    estimated = plan.estimated_wall_s() or 0.0
    print(
        f"| all, {args.workers} workers | {len(results)} | {format_seconds(estimated)} wall | "
        f"{format_seconds(wall)} wall | {wall / estimated:.2f} |"
    )


if __name__ == "__main__":
    main()
