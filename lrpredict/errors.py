"""One error type for bad input: it names the field, the value and what is allowed, in one line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable with its keyword (a worker process's error reaches the parent intact, not as a TypeError)."""
        return (_rebuild, (type(self), self.field, self.value, self.allowed, self.where))


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


def error_from_validation(
    exc: Any, known: Iterable[str] = (), aliases: Mapping[str, str] | None = None
) -> LrpredictError:
    """Turn pydantic's ``ValidationError`` into our one-line error (one problem: fix one thing at a time).  An
    unknown field comes first, with the nearest of ``known`` (an alias maps to the field it means): {"token": "20B"}
    reported "tokens={...whole dict...}: Field required" (QA 2026-12-01)."""
    import difflib  # only on the error path: it is not free to import

    aliases = aliases or {}
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, LrpredictError):
        return original
    field = ".".join(str(part) for part in err["loc"]) or "config"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        near = difflib.get_close_matches(str(err["loc"][-1]), [*known, *aliases], n=1)
        hint = f" (did you mean {aliases.get(near[0], near[0])}?)" if near else ""
        return LrpredictError(field, err.get("input"), f"unknown field{hint}")
    if err["type"] == "missing":
        return LrpredictError(field, None, "a required field")
    return LrpredictError(field, err.get("input"), message)


def _rebuild(cls: type[LrpredictError], field: str, value: Any, allowed: str, where: str | None) -> LrpredictError:
    error = cls.__new__(cls)
    LrpredictError.__init__(error, field, value, allowed, where=where)
    return error
