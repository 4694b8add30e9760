"""``lrpredict explore``: write the offline explorer page (``lrpredict.explore``)."""

from __future__ import annotations

import click

from lrpredict.cli.common import CONTEXT, handles_errors


@click.command(
    name="explore",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n  lrpredict explore --open\n  lrpredict explore --arch moe --out moe.html --sweeps ../shared/data/sweeps",
)
@click.option("--arch", type=click.Choice(["dense", "moe"]), default="dense", show_default=True)
@click.option(
    "--law", "laws", multiple=True, help="draw only this law (id or law file; repeatable; default: every one)"
)
@click.option("--out", default="explorer.html", show_default=True, type=click.Path(dir_okay=False), help="the page")
@click.option("--sweeps", type=click.Path(file_okay=False), help="Step Law sweeps folder (default: the checkout's)")
@click.option(
    "--resolution",
    type=click.IntRange(1, 8),
    default=3,
    show_default=True,
    help="grid points a decade in N and D (more: slower to write, closer to suggest)",
)
@click.option("--open", "open_", is_flag=True, help="open the page in the web browser")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@handles_errors
def explore_command(
    arch: str, laws: tuple[str, ...], out: str, sweeps: str | None, resolution: int, open_: bool, force: bool
) -> None:
    """Write one self-contained HTML page to explore the suggestion, every law, the published runs and the sweeps."""
    from lrpredict.explore import write_explorer

    path = write_explorer(
        out, arch, laws, force=force, sweeps=sweeps, per_decade=resolution, progress=lambda m: click.echo(m, err=True)
    )
    click.echo(f"explorer written: {path} (offline; open it in any browser)")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
