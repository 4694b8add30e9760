"""Find and load law files: the bundled ones (``lrpredict.coefficients``) and the user's own registry.

The user registry is ``$LRPREDICT_HOME/laws`` or, without that variable, the platform's user data directory
(platformdirs).  Calibrated and pulled laws go there; bundled files are never edited, a refit is a new file.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from pydantic_core import ValidationError

from lrpredict import bounded_read
from lrpredict.errors import LawFileError, LrpredictError
from lrpredict.law_checks import MAX_BYTES, check_data, check_law, check_text
from lrpredict.laws import FORM_TAGS, LawFile
from lrpredict.paths import remove_stale_parts, shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# Default law per architecture, chosen by loss regret on the Step Law sweeps (docs/benchmarks.md,
# benchmarks/law_regret.py); those sweeps are Step Law's own data, so the choice is in-sample for it.
DEFAULT_LAW = {"dense": "steplaw-2025", "moe": "steplaw-2025"}
# Far outside the default law's fitted domain, the default is a compute law, chosen on the published runs
# (benchmarks/production_runs.py, docs/log.md 2026-11-30 — production defaults); lrpredict.default_blend blends the
# two in between (issue 20).
PRODUCTION_LAW = {"dense": "deepseek-llm-2024", "moe": "ling-2025"}
# Power Lines has fitted coefficients (secondary); Wang & Aitchison's timescale is only anchored (open).  No data
# here records weight decay, so the choice is by strength of evidence, not by a benchmark (docs/log.md 2026-11-24).
DEFAULT_WEIGHT_DECAY_LAW = "powerlines-2025"


# data files shipped next to the laws that are not law files (lrpredict.runs reads the ledger of published runs)
NOT_LAWS = frozenset({"published_runs.toml"})


def conditional_batch_law_id(arch: str) -> str:
    """lrpredict's law for the optimal LR away from the optimal batch (benchmarks/fit_conditional_batch.py)."""
    return f"lrpredict-batch-{arch}-2026"


def home() -> Path:
    """lrpredict's per-user directory."""
    env = os.environ.get("LRPREDICT_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("lrpredict", appauthor=False))


def user_law_dir() -> Path:
    return home() / "laws"


def parse_law(text: str, source: str) -> LawFile:
    """Validate the TOML text of a law file; errors name the file, the field and the reason.

    Size and nesting are checked before the parser runs, strings after it, the law's numbers last
    (``lrpredict.law_checks``): every way into the registry (bundled, user, pulled, a local path) comes here.
    """
    check_text(text, source)
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise LawFileError("toml", reason, "a valid TOML document", where=source) from None
    check_data(data, source)
    try:
        law = LawFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        # pydantic puts the union tag in the location (lr.power_law.coefficient); users wrote lr.coefficient
        field = ".".join(str(part) for part in err["loc"] if part not in FORM_TAGS) or "law"
        value = err.get("input")
        if err["type"] == "union_tag_invalid":
            value = (err.get("ctx") or {}).get("tag", value)
            field += ".form"
        if isinstance(value, dict):
            value = "{...}"
        reason = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise LawFileError(field, value, reason, where=source) from None
    check_law(law, source)
    return law


def read_law_file(path: str | Path, option: str = "law") -> LawFile:
    """A law file from disk through the bounded reader (issue 23: ``--law /dev/zero`` read until MemoryError, a
    FIFO blocked): a path that is not a readable regular UTF-8 file of at most MAX_BYTES is ``LawFileError("path")``."""
    path = Path(path)
    try:
        text = bounded_read.read_text(path, option=option, limit=MAX_BYTES, what="law file")
    except LrpredictError as exc:
        if "(it is larger)" in exc.allowed:
            raise LawFileError(
                "size", "more bytes", f"a law file of at most {MAX_BYTES} bytes", where=path.name
            ) from None
        raise LawFileError("path", shown(str(path)), exc.allowed) from None
    return parse_law(text, path.name)


@lru_cache(maxsize=1)
def _bundled_names() -> tuple[str, ...]:
    """The bundled law files' names, sorted (a listing: nothing is read)."""
    return tuple(
        sorted(
            f.name
            for f in resources.files("lrpredict.coefficients").iterdir()
            if f.name.endswith(".toml") and f.name not in NOT_LAWS
        )
    )


@cache  # bounded: only the names of _bundled_names() come here
def _bundled_file(name: str) -> tuple[LawFile, str]:
    """One bundled law file (``name``: one of :func:`_bundled_names`) with its text, read and validated once."""
    text = resources.files("lrpredict.coefficients").joinpath(name).read_text(encoding="utf-8")
    return parse_law(text, name), text


@lru_cache(maxsize=1)
def _bundled() -> tuple[tuple[LawFile, str], ...]:
    """Every bundled law with its file's text, read and validated once."""
    return tuple(map(_bundled_file, _bundled_names()))


def bundled_laws() -> tuple[LawFile, ...]:
    return tuple(law for law, _ in _bundled())


def _bundled_law(law_id: str) -> LawFile | None:
    """The bundled law ``law_id`` (None: none has it).  Each bundled law lives in ``<id>.toml``, so that file is read
    alone first: ``suggest --law ID`` parses the laws it uses, not all of them (issue 21: CLI latency); any other
    name (a user law's id, an unknown one) is looked up among all of them, as before."""
    if f"{law_id}.toml" in _bundled_names():
        law, _ = _bundled_file(f"{law_id}.toml")
        if law.id == law_id:
            return law
    return next((law for law in bundled_laws() if law.id == law_id), None)


def bundled_text(law_id: str) -> str | None:
    """The file text of a bundled law, comments included (None: no bundled law has that id)."""
    return next((text for law, text in _bundled() if law.id == law_id), None)


# share._write_atomic's temporary files: ".NAME.toml." + mkstemp's random letters + ".part"
STALE_PART = re.compile(r"\.[a-z0-9][a-z0-9._-]*\.toml\.[A-Za-z0-9_]{6,12}\.part")


class BrokenLawWarning(UserWarning):
    """A user law file that does not load; it is skipped so the other laws stay usable."""


def user_laws() -> list[LawFile]:
    """The user's laws that load; each broken file is skipped with one warning (issue 15: one corrupt file took
    ``laws list``, ``show-law`` and ``--compare`` down for every law)."""
    directory = user_law_dir()
    try:
        entries = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    except (OSError, RuntimeError) as exc:  # a loop of links in LRPREDICT_HOME: no user laws, said once
        warnings.warn(f"skipped the user registry {directory}: {exc}", BrokenLawWarning, stacklevel=2)
        return []
    remove_stale_parts(directory, STALE_PART)  # a pull or export killed mid-write (issue 23)
    found = []
    for path in entries:
        if not bounded_read.regular_file(path):  # a device, FIFO or loop of links must not break the others
            warnings.warn(f"skipped user law {path.name}: not a regular file", BrokenLawWarning, stacklevel=2)
            continue
        try:
            found.append(read_law_file(path))
        except LrpredictError as exc:
            warnings.warn(f"skipped user law {path.name}: {exc}", BrokenLawWarning, stacklevel=2)
    return found


def laws() -> list[LawFile]:
    """Every known law: bundled first, then the user's (a user law may not reuse a bundled id).

    >>> "steplaw-2025" in [law.id for law in laws()]
    True
    """
    bundled = list(bundled_laws())
    taken = {law.id for law in bundled}
    return bundled + [law for law in user_laws() if law.id not in taken]


def is_bundled(law_id: str) -> bool:
    return any(law.id == law_id for law in bundled_laws())


def _is_file(path: Path) -> bool:
    """``path.is_file()`` that is False, not an exception, for names the OS cannot hold (too long, NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _lexists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def names_a_file(text: str) -> bool:
    """Whether ``load_law(text)`` reads a law file rather than looking an id up."""
    return text.endswith(".toml") or os.sep in text or _is_file(Path(text))


def load_law(id_or_path: str | Path | LawFile) -> LawFile:
    """A law by id (bundled or user registry) or by the path of a TOML file.

    >>> law = load_law("steplaw-2025")
    >>> law.status, law.conventions.count
    ('confirmed', 'steplaw')
    """
    if isinstance(id_or_path, LawFile):
        check_law(id_or_path)  # built in Python, never parsed: its numbers are checked here
        return id_or_path
    if not isinstance(id_or_path, (str, Path)) or not str(id_or_path).strip():
        raise LrpredictError("law", id_or_path, "a law id, the path of a law file or a LawFile")
    text = str(id_or_path)
    if names_a_file(text):
        try:
            return read_law_file(text)
        except LawFileError as exc:  # an unreadable path (a folder, no such file) is a bad --law, not a bad file
            if exc.field != "path":
                raise
            raise LrpredictError("law", text, exc.allowed) from None
    bundled = _bundled_law(text)
    if bundled is not None:
        return bundled
    user_file = user_law_dir() / f"{text}.toml"
    if _is_file(user_file) or _lexists(user_file):  # a link to a device is refused by the reader, not "unknown"
        try:
            return read_law_file(user_file)
        except LawFileError as exc:
            if exc.field != "path":
                raise
            raise LrpredictError(
                "law", text, f"a user law that is a regular file ({user_file}: {exc.allowed})"
            ) from None
    known = ", ".join(law.id for law in laws())
    raise LrpredictError("law", text, f"one of [{known}] or the path of a law file")
