"""What every ``lrpredict`` command shares: help options, and bad input as one line with exit status 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from lrpredict.errors import LrpredictError

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
    for field, flag in OPTION_OF_FIELD.items():
        message = message.replace(f"give {field}", f"give {flag}")
    return message


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LrpredictError as exc:
            raise BadInput(_cli_message(exc)) from None

    return wrapper
