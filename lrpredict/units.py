"""Parse human sizes such as ``7B``, ``2T``, ``1.3e9``, ``4M`` or ``128Ki``.

Suffixes are decimal (K=1e3, M=1e6, B=G=1e9, T=1e12) because parameter and token counts in papers are decimal;
``Ki``/``Mi``/``Gi`` are binary, for batch sizes written as powers of two.
"""

from __future__ import annotations

import math
import re

from lrpredict.errors import LrpredictError

_SUFFIX = {
    "": 1.0,
    "K": 1e3,
    "M": 1e6,
    "B": 1e9,
    "G": 1e9,
    "T": 1e12,
    "KI": 2.0**10,
    "MI": 2.0**20,
    "GI": 2.0**30,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]{0,2})\s*$")
ALLOWED = (
    "a positive number, optionally with a suffix K, M, B/G, T (decimal) or Ki, Mi, Gi (binary), e.g. 7B, 1.3e9, 4M"
)


def parse_size(text: str | float | int, field: str = "size") -> float:
    """Return the size as a float; raise :class:`LrpredictError` naming ``field`` when it is malformed.

    >>> parse_size("7B"), parse_size("4Mi"), parse_size(1.3e9)
    (7000000000.0, 4194304.0, 1300000000.0)
    """
    if isinstance(text, bool):  # bool is an int in Python, but True is not a size (issue 15: read as 1.0)
        raise LrpredictError(field, text, ALLOWED)
    if isinstance(text, (int, float)):
        value = float(text)
    elif not isinstance(text, str):
        raise LrpredictError(field, type(text).__name__, ALLOWED)
    else:
        match = _SIZE.match(text) if len(text) <= 64 else None  # a size is short; bound the regex's work
        if not match or match.group(2).upper() not in _SUFFIX:
            raise LrpredictError(field, text, ALLOWED)
        value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise LrpredictError(field, text, ALLOWED)
    return value


def format_size(value: float) -> str:
    """Short decimal form: 1.3e9 -> '1.3B', 5e11 -> '500B', 4194304 -> '4.19M'; from 1e15 on, plain '1e+20' (not
    '1e+08T')."""
    if abs(value) >= 1e15:
        return f"{value:.3g}"
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
