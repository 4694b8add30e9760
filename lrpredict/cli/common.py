"""What every ``lrpredict`` command shares: help options, and bad input as one line with exit status 2."""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import click

from lrpredict.errors import LrpredictError
from lrpredict.paths import shown
from lrpredict.registry import BrokenLawWarning

CONTEXT = {"help_option_names": ["-h", "--help"]}
# config field -> CLI option, so an error names what the user typed
OPTION_OF_FIELD = {
    "params": "--params",
    "active_params": "--active-params",
    "tokens": "--tokens",
    "n_layers": "--layers",
    "d_model": "--d-model",
    "seq_len": "--seq-len",
    "batch_tokens": "--batch-tokens",
    "n_experts": "--n-experts",
    "top_k": "--top-k",
    "vocab_size": "--vocab-size",
    "law": "--law",
    "tolerance": "--tolerance",
    "reference_lr": "--reference-lr",
    "reference_tokens": "--reference-tokens",
    "weight_decay_law": "--weight-decay-law",
    "schedule": "--schedule",
    "world_size": "--world-size",
    "micro_batch_size": "--micro-batch-size",
    "hf_config": "--hf-config",
    "replay": "--replay",
    "out": "--out",
    "plot": "--plot",
    "sweeps": "--sweeps",
}


class BadInput(click.ClickException):
    """Bad input: one line on stderr, exit status 2, no traceback."""

    exit_code = 2


def _cli_message(exc: LrpredictError) -> str:
    """The error with config field names replaced by the options the user typed."""
    message = str(exc)
    option = OPTION_OF_FIELD.get(exc.field)
    if option is not None and message.startswith(f"{exc.field}="):
        message = option + message[len(exc.field) :]
    return with_flags(message)


def with_flags(text: str) -> str:
    """ "give n_layers, d_model, seq_len" -> "give --layers, --d-model, --seq-len": every field of the list, not only
    the first (QA 2026-12-01: "give --layers, d_model, seq_len")."""

    def flags(match: re.Match[str]) -> str:
        return "give " + ", ".join(OPTION_OF_FIELD.get(f, f) for f in match.group(1).split(", "))

    return re.sub(r"give ([a-z_]+(?:, [a-z_]+)*)", flags, text)


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LrpredictError as exc:
            raise BadInput(_cli_message(exc)) from None

    return wrapper


def one_line(text: str) -> str:
    """``text`` on a single line: the CLI's contract is one line per error (issue 15: click used four)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _warn_one_line(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    click.echo(f"warning: {one_line(str(message))}", err=True)


# OSErrors that mean the path a user typed is wrong, not that the machine failed.
INPUT_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EACCES, errno.EPERM, errno.EROFS}
)


class OneLineGroup(click.Group):
    """The top-level group: every click error (usage, bad option value, missing argument) and every ``BadInput``
    is one ``Error: ...`` line on stderr with its exit status, and Python warnings are one ``warning:`` line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        with warnings.catch_warnings():
            warnings.showwarning = _warn_one_line
            # each broken user law once per run (adding a filter also resets what was "already shown"); other
            # categories keep Python's defaults, so library deprecations stay quiet
            warnings.simplefilter("default", BrokenLawWarning)
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.UsageError as exc:
                if type(exc).__name__ == "NoArgsIsHelpError":  # `lrpredict` or `lrpredict laws` alone: the help
                    exc.show()
                    sys.exit(exc.exit_code)
                hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
                click.echo(f"Error: {one_line(exc.format_message())}{hint}", err=True)
                sys.exit(exc.exit_code)
            except click.ClickException as exc:
                click.echo(f"Error: {one_line(exc.format_message())}", err=True)
                sys.exit(exc.exit_code)
            except LrpredictError as exc:  # a command without @handles_errors: still one line, exit 2
                click.echo(f"Error: {one_line(_cli_message(exc))}", err=True)
                sys.exit(2)
            except click.Abort:
                click.echo("Aborted!", err=True)
                sys.exit(1)
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # a closed pipe (``| head``) is not an error
                    sys.exit(1)
                # the last net under every path a user can type (commands check theirs first, naming the option):
                # one line, exit 2 when the OS refused the name itself, else 1 (a full disk is not bad input)
                where = f": {shown(os.fsdecode(exc.filename))}" if exc.filename is not None else ""
                click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
                sys.exit(2 if exc.errno in INPUT_ERRNOS else 1)
            except ValueError as exc:
                if "null byte" not in str(exc):  # a NUL in a path (only in-process: argv cannot hold one)
                    raise
                click.echo("Error: a path holds a NUL byte", err=True)
                sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


def refuse_together(given: dict[str, bool], conflicts: list[tuple[str, str, str]]) -> None:
    """Refuse option pairs where one would be silently ignored: ``conflicts`` holds (option, other option, why);
    ``given`` says which options the user set.  The error names both options (issue 15)."""
    for first, second, why in conflicts:
        if given.get(first) and given.get(second):
            raise BadInput(f"{first} cannot be combined with {second}: {why}")


def refuse_empty_plot(plot_file: str | None) -> None:
    """``--plot ""`` was falsy: no plot, exit 0, nothing said (QA 2026-12-01)."""
    if plot_file is not None and not plot_file.strip():
        raise BadInput("--plot='' is not valid: a file name ending in .png")


def check_plot(plot_file: str | None, force: bool) -> None:
    """Before any work: --plot names a new .png (or --force an existing regular file, never a link; issue 23)."""
    if force and not plot_file:
        raise BadInput("--force replaces an existing --plot file: add --plot FILE.png")
    if plot_file:
        from lrpredict.plot import check_plot_path

        check_plot_path(plot_file, force)
