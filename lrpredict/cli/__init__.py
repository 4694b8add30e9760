"""The ``lrpredict`` command line: one module per command (``lrpredict.cli.suggest``, ...) and what they share
(``lrpredict.cli.common``).  Each command's module is imported only when that command runs, so ``lrpredict suggest``
does not build the calibrate, transfer, share and runs modules first (issue 21: the CLI took 2.7–3.8× the
pydantic + click import time)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping

import click

from lrpredict.cli.common import CONTEXT, OneLineGroup

# command -> ("module:attribute", its one-line help): `lrpredict --help` lists the commands from this table without
# importing them (tests/test_cli.py checks each line against the command's own docstring).
COMMANDS: dict[str, tuple[str, str]] = {
    "calibrate": (
        "lrpredict.cli.calibrate:calibrate_command",
        "Run short training probes (or replay recorded ones), fit Eq.2/Eq.4/Eq.6 and install a law file.",
    ),
    "explore": (
        "lrpredict.cli.explore:explore_command",
        "Write one self-contained HTML page to explore the suggestion, every law, the published runs and the sweeps.",
    ),
    "laws": (
        "lrpredict.cli.laws:laws_group",
        "Manage law files: the bundled ones and those in your user registry ($LRPREDICT_HOME/laws).",
    ),
    "runs": (
        "lrpredict.cli.runs:runs_command",
        "Published pre-training runs: N, D, batch, peak LR, weight decay, schedule, each with its source.",
    ),
    "show-law": (
        "lrpredict.cli.show_law:show_law_command",
        "LAW_ID's formula, coefficients, validity, citation and a grid (``lrpredict laws list`` lists every law).",
    ),
    "suggest": ("lrpredict.cli.suggest:suggest_command", "Suggest peak LR, weight decay and batch size for one run."),
    "transfer": (
        "lrpredict.cli.transfer:transfer_command",
        "Move hyperparameters tuned on a small proxy to a target (μP / CompleteP / depth-μP, MoE per Complete-muE).",
    ),
}


class LazyGroup(OneLineGroup):
    """A group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def __init__(self, *args: object, lazy: Mapping[str, tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, from the table's help lines: ``lrpredict --help`` imports no command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # a stand-in command shortens the line exactly as click shortens the real one's docstring
            help_line = self.lazy[name][1] if name in self.lazy else self.commands[name].help
            rows.append((name, click.Command(name, help=help_line).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict suggest --params 1B --tokens 20B\n  lrpredict show-law steplaw-2025\n  lrpredict runs --arch moe",
)
@click.version_option(package_name="lrpredict", prog_name="lrpredict")
def cli() -> None:
    """Peak learning rate, weight decay and batch size for LLM pre-training, from published scaling laws."""


def main() -> None:
    try:
        cli(prog_name="lrpredict")
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


__all__ = ["COMMANDS", "LazyGroup", "cli", "main"]
