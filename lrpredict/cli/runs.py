"""``lrpredict runs``: list and filter the ledger of published pre-training runs (``lrpredict.runs``)."""

from __future__ import annotations

import json

import click

from lrpredict.cli.common import CONTEXT, handles_errors
from lrpredict.errors import LrpredictError
from lrpredict.runs import PublishedRun, filter_runs, published_runs, read_ledger
from lrpredict.units import format_size, parse_size


def _opt(value: float | None, fmt: str = ".3g") -> str:
    return "-" if value is None else format(value, fmt)


def render_runs(rows: list[PublishedRun]) -> str:
    header = (
        f"{'id':<24} {'arch':<5} {'N':>7} {'N_act':>7} {'D':>7} {'batch':>7} {'seq':>6} {'peak LR':>8} "
        f"{'final LR':>8} {'wd':>5} {'schedule':<9} {'status':<9} source"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        active = format_size(r.active_params) if r.arch == "moe" and r.active_params else "-"
        lines.append(
            f"{r.id:<24} {r.arch:<5} {format_size(r.params):>7} {active:>7} {format_size(r.tokens):>7} "
            f"{format_size(r.batch_tokens):>7} {_opt(r.seq_len, 'd'):>6} {r.peak_lr:>8.3g} {_opt(r.final_lr):>8} "
            f"{_opt(r.weight_decay, '.2g'):>5} {r.schedule or '-':<9} {r.status:<9} {r.source}"
        )
    lines += [
        "",
        f"{len(rows)} run(s).  N: non-embedding parameters (MoE: total); batch in tokens per step.  A published LR is",
        "the team's choice, not a measured optimum: a sanity anchor, not ground truth.",
    ]
    return "\n".join(lines)


@click.command(
    name="runs",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict runs\n  lrpredict runs --arch moe --min-params 1B --json",
)
@click.option("--arch", type=click.Choice(["dense", "moe"]), help="only this architecture")
@click.option("--min-params", help="only runs with N >= this (non-embedding; MoE: total), e.g. 1B")
@click.option("--max-params", help="only runs with N <= this, e.g. 100B")
@click.option("--ledger", type=click.Path(dir_okay=False), help="read this ledger file instead of the bundled one")
@click.option("json_", "--json", is_flag=True, help="machine output only, on stdout")
@handles_errors
def runs_command(
    arch: str | None, min_params: str | None, max_params: str | None, ledger: str | None, json_: bool
) -> None:
    """Published pre-training runs: N, D, batch, peak LR, weight decay, schedule, each with its source."""
    low = None if min_params is None else parse_size(min_params, "--min-params")
    high = None if max_params is None else parse_size(max_params, "--max-params")
    if low is not None and high is not None and low > high:
        raise LrpredictError("--min-params", min_params, f"at most --max-params ({max_params})")
    rows = filter_runs(read_ledger(ledger) if ledger else published_runs(), arch=arch, min_params=low, max_params=high)
    if json_:
        click.echo(json.dumps([r.model_dump(mode="json", exclude_none=True) for r in rows], indent=2))
    else:
        click.echo(render_runs(rows))
