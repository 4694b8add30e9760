"""The ``lrpredict`` command line: one module per command (``lrpredict.cli.suggest``, ...) and what they share
(``lrpredict.cli.common``)."""

from lrpredict.cli.suggest import cli, main

__all__ = ["cli", "main"]
