"""``lrpredict laws``: list, export, remove and pull law files (a thin client of ``lrpredict.share``)."""

from __future__ import annotations

import dataclasses
import json

import click

from lrpredict import share
from lrpredict.cli.common import CONTEXT, handles_errors


@click.group(
    name="laws",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict laws list\n  lrpredict laws export steplaw-2025 steplaw.toml\n  lrpredict laws pull https://example.org/team-lr.toml --sha256 HEX",
)
def laws_group() -> None:
    """Manage law files: the bundled ones and those in your user registry ($LRPREDICT_HOME/laws)."""


def render_rows(rows: list[share.LawRow]) -> str:
    """One line per law; every column as wide as its longest entry, so long ids (user laws) stay aligned."""
    table = [("id", "source", "status", "fits", "batch", "domain", "formula")]
    table += [(r.id, r.source, r.status, "/".join(r.architectures), r.batch_policy, r.domain, r.formula) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(6)]
    lines = [
        " ".join(f"{cell:<{w}}" for cell, w in zip(line[:6], widths, strict=True)) + " " + line[6] for line in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@laws_group.command(
    name="list", context_settings=CONTEXT, epilog="\b\nExamples:\n  lrpredict laws list\n  lrpredict laws list --json"
)
@click.option("json_", "--json", is_flag=True, help="machine output only, on stdout")
@handles_errors
def list_command(json_: bool) -> None:
    """Every law: id, bundled or user, status, architectures, batch policy, fitted domain and formula."""
    rows = share.list_laws()
    if json_:
        click.echo(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
    else:
        click.echo(render_rows(rows))


@laws_group.command(
    name="export",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict laws export steplaw-2025 steplaw.toml\n  lrpredict laws export team.lr-v2 shared/",
)
@click.argument("law_id", metavar="ID")
@click.argument("file", type=click.Path(dir_okay=True, writable=True))
@click.option("--force", is_flag=True, help="replace FILE if it exists")
@handles_errors
def export_command(law_id: str, file: str, force: bool) -> None:
    """Write the law file of ID (bundled or user) to FILE (or DIR/ID.toml), comments included."""
    target = share.export(law_id, file, force=force)
    click.echo(f"exported {law_id} to {target}")


@laws_group.command(
    name="remove",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict laws remove team.lr-v2\n  lrpredict laws list",
)
@click.argument("law_id", metavar="ID")
@handles_errors
def remove_command(law_id: str) -> None:
    """Delete the user law ID (bundled laws cannot be removed)."""
    path = share.remove(law_id)
    click.echo(f"removed {law_id} ({path})")


@laws_group.command(
    name="pull",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict laws pull https://example.org/team-lr.toml --sha256 HEX\n  lrpredict laws pull https://example.org/law.toml --name team.lr-v2",
)
@click.argument("url")
@click.option("--sha256", metavar="HEX", help="refuse the file unless its SHA-256 is HEX")
@click.option("--name", help="install under this id (default: the law's own id)")
@click.option("--allow-redirect", is_flag=True, help="follow a redirect to another host (refused by default)")
@handles_errors
def pull_command(url: str, sha256: str | None, name: str | None, allow_redirect: bool) -> None:
    """Download a law file from URL, validate it and install it into the user registry (never executed)."""
    law = share.pull(url, sha256=sha256, name=name, allow_redirect=allow_redirect)
    click.echo(f"installed {law.id} [status: {law.status}] — {law.title}")
    if sha256 is None:
        click.echo("note: no --sha256 given, so the file's integrity was not checked", err=True)
