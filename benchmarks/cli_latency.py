"""Wall time of ``lrpredict suggest`` against the import floor of its two dependencies (issue 21: goal ≤ 2×).

    python benchmarks/cli_latency.py [--runs 15] [--pythonpath DIR]

Each command runs in a fresh interpreter, the commands interleaved round-robin so that load on a shared machine
falls on all of them alike; the table gives the median and the minimum over ``--runs`` rounds (after one untimed
round, which also writes the bytecode) and each median over the floor's, ``python -c "import pydantic, click"``.  ``--pythonpath`` times another
checkout (e.g. the code before a change).  ``python -X importtime -c "import lrpredict.cli"`` says where the time
goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

SUGGEST = ["suggest", "--params", "1B", "--tokens", "20B"]
COMMANDS = {
    'python -c "import pydantic, click"': [sys.executable, "-c", "import pydantic, click"],
    'python -c "import lrpredict"': [sys.executable, "-c", "import lrpredict"],
    "lrpredict --help": [sys.executable, "-m", "lrpredict", "--help"],
    "lrpredict suggest --params 1B --tokens 20B": [sys.executable, "-m", "lrpredict", *SUGGEST],
}
FLOOR = 'python -c "import pydantic, click"'


def time_commands(runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Seconds per run of each command, the commands interleaved; one untimed round first (file cache, .pyc)."""
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_ in range(runs + 1):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def table(times: dict[str, list[float]]) -> str:
    floor = statistics.median(times[FLOOR])
    lines = ["| command | median ms | min ms | median / floor |", "|---|---:|---:|---:|"]
    for name, samples in times.items():
        median = statistics.median(samples)
        lines.append(f"| `{name}` | {median * 1e3:.0f} | {min(samples) * 1e3:.0f} | {median / floor:.2f}× |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed rounds (each runs every command once)")
    parser.add_argument("--pythonpath", help="PYTHONPATH for the timed commands (default: the current one)")
    args = parser.parse_args()
    env = dict(os.environ)
    # an installed package runs from bytecode (pip compiles it); without this every run would recompile lrpredict
    # from source while pydantic and click load their .pyc
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    print(table(time_commands(args.runs, env)))
    print(f"\n{args.runs} rounds; python {sys.version.split()[0]}; PYTHONPATH={env.get('PYTHONPATH', '')}")


if __name__ == "__main__":
    main()
