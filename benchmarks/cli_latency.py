"""Wall time of ``lrpredict suggest`` against the import floor of its two dependencies (issue 21: goal ≤ 2×).

    python benchmarks/cli_latency.py [--runs 15] [--pythonpath DIR] [--before DIR] [--breakdown RUNS]

Each command runs in a fresh interpreter, the commands interleaved round-robin so that load on a shared machine
falls on all of them alike; the table gives the median and the minimum over ``--runs`` rounds (after one untimed
round, which also writes the bytecode) of the wall time and of the child's CPU time, and each median over the
floor's, ``python -c "import pydantic, click"``.  ``--pythonpath`` times another checkout; ``--before DIR`` adds
each lrpredict command run from DIR (e.g. the code before a change) to the same rounds, so both sides see the same
load.  The row "+ one pydantic model" is the floor plus one one-field ``BaseModel`` subclass: ``import pydantic``
does not load pydantic's model machinery, the first model does, so no command that builds a pydantic model can be
faster than that row.

``--breakdown RUNS`` adds where the CPU of one ``suggest`` goes, step by step, in-process (``time.process_time``,
median and minimum over RUNS fresh interpreters, interpreter start-up not counted).  Since lrpredict's models became
``lrpredict.record.Record``s (fourth session), ``suggest`` pays none of pydantic's first-model steps below: the script
still times them, as what one BaseModel would add.  The steps: pydantic's own first-model cost
(its imports, ``importlib.metadata`` and the plugin scan of every installed distribution that
``pydantic.plugin._loader`` does), lrpredict's models (the class creation of each, outermost, timed by wrapping
pydantic's ``ModelMetaclass.__new__``), the rest of lrpredict's imports, the bundled laws and the published-runs
ledger (TOML, then checks and validation), and the run itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ONE_MODEL = "import pydantic, click\nclass M(pydantic.BaseModel):\n    x: int"
SUGGEST = ["suggest", "--params", "1B", "--tokens", "20B"]
COMMANDS = {
    'python -c "import pydantic, click"': [sys.executable, "-c", "import pydantic, click"],
    'python -c "import pydantic, click" + one pydantic model': [sys.executable, "-c", ONE_MODEL],
    'python -c "import lrpredict"': [sys.executable, "-c", "import lrpredict"],
    "lrpredict --help": [sys.executable, "-m", "lrpredict", "--help"],
    "lrpredict suggest --params 1B --tokens 20B": [sys.executable, "-m", "lrpredict", *SUGGEST],
    "lrpredict suggest --params 1B --tokens 20B --law steplaw-2025": [
        sys.executable,
        "-m",
        "lrpredict",
        *SUGGEST,
        "--law",
        "steplaw-2025",
    ],
}
FLOOR = 'python -c "import pydantic, click"'


# Run in a fresh interpreter by --breakdown; prints one JSON object, step -> CPU seconds.
BREAKDOWN = """
import contextlib, io, json, sys, time
P = time.process_time
steps = {}
def step(name, start):
    steps[name] = steps.get(name, 0.0) + P() - start
t = P(); import pydantic, click; step("import pydantic, click (the floor's imports)", t)
t = P(); import pydantic.main, pydantic.fields, pydantic.json_schema, pydantic._internal._generate_schema
step("pydantic's model machinery (pydantic.main, fields, _generate_schema, json_schema)", t)
t = P(); import importlib.metadata; step("importlib.metadata (imported by pydantic.plugin._loader)", t)
t = P(); from pydantic.plugin import _loader; _ = list(_loader.get_plugins())
step("pydantic's plugin scan of the installed distributions", t)
t = P()
class _First(pydantic.BaseModel):
    x: int
step("a first one-field model", t)
from pydantic._internal import _model_construction as mc
new, depth, models = mc.ModelMetaclass.__new__, [0], [0.0]
def timed_new(*args, **kwargs):
    depth[0] += 1; t = P()
    try:
        return new(*args, **kwargs)
    finally:
        depth[0] -= 1
        if not depth[0]:
            models[0] += P() - t
mc.ModelMetaclass.__new__ = timed_new
import tomllib
loads, parsed = tomllib.loads, [0.0]
def timed_loads(text, **kwargs):
    t = P(); out = loads(text, **kwargs); parsed[0] += P() - t; return out
tomllib.loads = timed_loads
t = P(); import lrpredict.cli, lrpredict.cli.suggest, lrpredict.render
steps["lrpredict's pydantic models (class creation and schema)"] = models[0]
step("lrpredict's other import work", t); steps["lrpredict's other import work"] -= models[0]
from lrpredict import registry, runs
for name, load in (("the bundled laws", registry._bundled), ("the published-runs ledger", runs.published_runs)):
    parsed[0] = 0.0; t = P(); load(); step(name + ": checks and validation", t)
    steps[name + ": checks and validation"] -= parsed[0]; steps[name + ": TOML"] = parsed[0]
sys.argv = ["lrpredict", *SUGGEST]
t = P()
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    lrpredict.cli.main()
step("the suggest run (pipeline, nearest runs, render)", t)
print(json.dumps(steps))
"""


def time_commands(
    runs: int, env: dict[str, str], cwd: str, before: str | None = None
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per run of each command, the commands interleaved; one untimed round first (file cache,
    .pyc).  CPU is the child's user + system time: on a loaded machine it moves less than the wall time.
    ``before``: the lrpredict commands also with that PYTHONPATH, in the same rounds (an A/B under the same load)."""
    commands = {name: (argv, env) for name, argv in COMMANDS.items()}
    if before:
        for name, argv in COMMANDS.items():
            if "lrpredict" in name:
                commands[f"{name} (before)"] = (argv, {**env, "PYTHONPATH": before})
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, (argv, command_env) in commands.items():
            usage, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(argv, env=command_env, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
            wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_:
                cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
                times[name].append((wall, cpu))
    return times


def table(times: dict[str, list[tuple[float, float]]]) -> str:
    floor = [statistics.median(sample[i] for sample in times[FLOOR]) for i in (0, 1)]
    lines = [
        "| command | wall median ms | wall min ms | wall median / floor | CPU median ms | CPU median / floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, samples in times.items():
        wall, cpu = (statistics.median(sample[i] for sample in samples) for i in (0, 1))
        lines.append(
            f"| `{name}` | {wall * 1e3:.0f} | {min(s[0] for s in samples) * 1e3:.0f} | {wall / floor[0]:.2f}× "
            f"| {cpu * 1e3:.0f} | {cpu / floor[1]:.2f}× |"
        )
    return "\n".join(lines)


def breakdown(runs: int, env: dict[str, str], cwd: str) -> str:
    """The table of --breakdown: each step's median and minimum CPU over ``runs`` fresh interpreters."""
    code = f"SUGGEST = {SUGGEST!r}\n{BREAKDOWN}"
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, cwd=cwd)
        for name, seconds in json.loads(out.stdout.splitlines()[-1]).items():
            samples.setdefault(name, []).append(seconds)
    lines = ["| step (in-process CPU) | median ms | min ms |", "|---|---:|---:|"]
    for name, values in samples.items():
        lines.append(f"| {name} | {statistics.median(values) * 1e3:.1f} | {min(values) * 1e3:.1f} |")
    total = sum(statistics.median(values) for values in samples.values())
    lines.append(f"| sum of the medians | {total * 1e3:.1f} | |")
    return "\n".join(lines)


def where(env: dict[str, str], cwd: str) -> str:
    """The folder the timed commands import lrpredict from (PYTHONPATH, else an installed lrpredict)."""
    code = "import os, lrpredict; print(os.path.dirname(lrpredict.__file__))"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed rounds (each runs every command once)")
    parser.add_argument("--pythonpath", help="PYTHONPATH for the timed commands (default: the current one)")
    parser.add_argument("--before", metavar="DIR", help="also the lrpredict commands from DIR, interleaved (A/B)")
    parser.add_argument("--breakdown", type=int, default=0, metavar="RUNS", help="also the in-process steps")
    args = parser.parse_args()
    env = dict(os.environ)
    # an installed package runs from bytecode (pip compiles it); without this every run would recompile lrpredict
    # from source while pydantic and click load their .pyc
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    # every command runs in an empty folder: python -c and -m put the working directory first on sys.path, so run
    # from a checkout they would import that checkout's lrpredict, whatever --pythonpath or --before say
    with tempfile.TemporaryDirectory(prefix="cli-latency-") as cwd:
        print(table(time_commands(args.runs, env, cwd, args.before)))
        print(f"\n{args.runs} rounds; python {sys.version.split()[0]}; lrpredict from {where(env, cwd)}", end="")
        print(f", before: {where({**env, 'PYTHONPATH': args.before}, cwd)}" if args.before else "")
        if args.breakdown:
            print("\n" + breakdown(args.breakdown, env, cwd))
            plugins = env.get("PYDANTIC_DISABLE_PLUGINS", "(unset)")
            print(f"\n{args.breakdown} runs; PYDANTIC_DISABLE_PLUGINS={plugins}")


if __name__ == "__main__":
    main()
