"""One error type for bad input: it names the field, the value and what is allowed, in one line."""

from __future__ import annotations

from typing import Any


class LrpredictError(ValueError):
    """Bad input or a bad law file. ``str(err)`` is a single line fit for a CLI."""

    def __init__(self, field: str, value: Any, allowed: str, *, where: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.where = where
        prefix = f"{where}: " if where else ""
        # a field given no value reads "is missing", not "=None is not valid"
        problem = f"{field} is missing" if value is None else f"{field}={value!r} is not valid"
        super().__init__(f"{prefix}{problem}: {allowed}")


class LawFileError(LrpredictError):
    """A law file that cannot be read or does not follow the schema."""


class MissingInputError(LrpredictError):
    """A law needs a quantity the config does not give."""

    def __init__(self, law_id: str, quantity: str, fields: str) -> None:
        self.field = fields
        self.value = None
        self.allowed = f"law {law_id} needs {quantity}"
        self.where = None
        ValueError.__init__(self, f"law {law_id} needs {quantity}: give {fields}")
