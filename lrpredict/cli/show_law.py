"""``lrpredict show-law ID``: one law's formula, coefficients, validity and grid (``laws list`` lists them all)."""

from __future__ import annotations

import click

from lrpredict import registry, render
from lrpredict.cli.common import CONTEXT, BadInput, check_plot, handles_errors, refuse_empty_plot
from lrpredict.errors import LrpredictError


@click.command(
    name="show-law",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict show-law steplaw-2025\n  lrpredict show-law steplaw-2025 --json\n  lrpredict show-law steplaw-2025 --plot steplaw.png --sweeps DIR",
)
@click.argument("law_id", required=False)
@click.option("json_", "--json", is_flag=True, help="the law file as JSON")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="also write LR and batch vs N to FILE.png")
@click.option("--sweeps", type=click.Path(file_okay=False), help="with --plot: Step Law sweeps folder, optima drawn")
@click.option("--force", is_flag=True, help="with --plot: replace an existing file")
@handles_errors
def show_law_command(
    law_id: str | None, json_: bool, plot_file: str | None, sweeps: str | None, force: bool = False
) -> None:
    """LAW_ID's formula, coefficients, validity, citation and a grid (``lrpredict laws list`` lists every law)."""
    if law_id is None:  # issue 23: the table it printed duplicated `laws list`
        raise BadInput(
            "show-law needs LAW_ID, the law to show (e.g. show-law steplaw-2025); `lrpredict laws list` lists every law"
        )
    refuse_empty_plot(plot_file)
    check_plot(plot_file, force)
    if sweeps and not plot_file:
        raise BadInput("--sweeps is read only with --plot FILE.png")
    try:
        law = registry.load_law(law_id)
        if plot_file:
            from lrpredict.plot import plot_law

            written = plot_law(law, plot_file, sweeps=sweeps, force=force)
            click.echo(f"plot written: {written}", err=True)
    except LrpredictError as exc:  # the law is the LAW_ID argument here, not the --law option
        if exc.field != "law":
            raise
        raise BadInput(f"LAW_ID={exc.value!r} is not valid: {exc.allowed}") from None
    click.echo(law.model_dump_json(indent=2) if json_ else render.render_law(law))
