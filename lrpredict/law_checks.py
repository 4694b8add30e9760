"""Checks a law must pass before it is installed, loaded or used, and checks on the numbers a law produces.

A law file is data from anywhere (a colleague's URL, a calibration, a hand edit).  The schema (``lrpredict.laws``)
says which fields exist; these checks say which values are sane (issue 15, docs/laws.md "What a law file may hold"):

* before parsing: at most ``MAX_BYTES`` of text and ``MAX_DEPTH`` levels of ``[``/``{`` nesting, so a small deeply
  nested file is refused instead of recursing in the TOML parser (an 11 KB file reached Python's recursion limit);
* after parsing: every string printable (no control characters: a title could carry terminal escapes), the
  parsed data at most ``MAX_DEPTH`` deep (dotted keys nest without brackets);
* on the law: coefficients, scales and timescales finite and > 0; exponents finite and within
  ``[-MAX_EXPONENT, MAX_EXPONENT]``; domains finite, non-negative and ordered; optimizer and schedule numbers finite;
* on a prediction: every LR, weight decay and batch finite and > 0 (:func:`check_output`).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from lrpredict.errors import LawFileError, LrpredictError

# Bundled files are under 2 KB; calibrated ones hold one provenance row per probe cell (~200 bytes each).  256 KB
# leaves room for a thousand cells and still bounds what a parse can cost.
MAX_BYTES = 256 * 1024
# The schema nests four levels (lr.exponents.N.value); provenance may add a few.  tomllib recurses per level.
MAX_DEPTH = 16
# Published exponents stay within ±0.75 (Step Law N^-0.713, Porian batch N^0.703, Power Lines (D/N)^-0.527; see
# /work/shared/reference/laws.md); theory gives ±1 (μP: η ∝ 1/width).  ±3 is four times the largest published
# magnitude: a factor 10 in N or D then moves a prediction at most 1000×.  A larger exponent is a typo or an attack
# (a 1e6 exponent overflowed every --compare row).  docs/log.md 2026-11-30 — law validation.
MAX_EXPONENT = 3.0
# Fields shown on one line: a newline there would forge extra lines of output.
_SINGLE_LINE = frozenset(
    {"id", "title", "citation", "url", "form", "status", "basis", "name", "kind", "n", "d", "b", "m"}
)
# Bidirectional overrides reorder what a terminal shows (Trojan Source, CVE-2021-42574); category Cf but harmful.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_LINE_AND_TAB = str.maketrans("", "", "\n\t")  # allowed in multi-line text
_TOKENS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'  # multi-line basic string
    r"|'''(?:[^']|'(?!''))*'''"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'  # basic string
    r"|'[^'\n]*'"  # literal string
    r"|#[^\n]*"  # comment
    r"|[\[\]{}]",
    re.DOTALL,
)


def check_text(text: str, source: str) -> None:
    """Refuse a law file's text that is too large or too deeply nested, before any parser sees it."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BYTES:
        raise LawFileError("size", f"{size} bytes", f"a law file of at most {MAX_BYTES} bytes", where=source)
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    raise LawFileError(
                        "nesting", f"more than {MAX_DEPTH} levels", f"at most {MAX_DEPTH} nested [ or {{", where=source
                    )
        elif token in ("]", "}"):
            depth = max(0, depth - 1)


def _strings(data: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every (field path, string) in parsed TOML data, keys included; refuses data deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise LrpredictError("nesting", path or "law", f"at most {MAX_DEPTH} levels of tables and arrays")
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            shown = str(key) if unprintable(str(key), multiline=False) is None else ascii(key)  # the path is printed
            child = f"{path}.{shown}" if path else shown
            yield child, str(key)
            yield from _strings(value, child, depth + 1)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, f"{path}[{i}]", depth + 1)


def unprintable(text: str, *, multiline: bool = True, line_separators: bool | None = None) -> str | None:
    """The first character of ``text`` a terminal should not receive raw (None: all printable).  On one line,
    U+2028/U+2029 count too (issue 23: a title with U+2028 broke one-line output)."""
    # fast path (half of reading the bundled laws went to the loop below, docs/log.md 2026-12-04): no character
    # str.isprintable accepts is Cc, Cs, a bidi control or Zl/Zp, so such text (\n and \t aside) is all printable
    if (text.translate(_LINE_AND_TAB) if multiline else text).isprintable():
        return None
    return _per_character(text, multiline, (not multiline) if line_separators is None else line_separators)


def _per_character(text: str, multiline: bool, separators: bool) -> str | None:
    """``unprintable`` without its fast path: the first Cc/Cs/bidi character (Zl/Zp with ``separators``)."""
    for char in text:
        if char in "\n\t" and multiline:
            continue
        if unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI:
            return char
        if separators and unicodedata.category(char) in ("Zl", "Zp"):
            return char
    return None


def check_data(data: Any, source: str) -> None:
    """Refuse parsed law data holding a control character or nested deeper than MAX_DEPTH."""
    try:
        for path, text in _strings(data):
            leaf = path.rsplit(".", 1)[-1]
            bad = unprintable(text, multiline=leaf not in _SINGLE_LINE)
            if bad is not None:
                raise LawFileError(path, text[:60], f"printable text (no control character {bad!a})", where=source)
    except LawFileError:
        raise
    except LrpredictError as exc:
        raise LawFileError(exc.field, exc.value, exc.allowed, where=source) from None


def _finite_positive(field: str, value: float, source: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise LawFileError(field, value, "a finite number > 0", where=source)


def _exponent(field: str, value: float, source: str) -> None:
    if not (math.isfinite(value) and -MAX_EXPONENT <= value <= MAX_EXPONENT):
        raise LawFileError(
            field, value, f"a finite exponent within ±{MAX_EXPONENT:g} (docs/laws.md: plausible range)", where=source
        )


def check_law(law: Any, source: str | None = None) -> None:
    """Refuse a parsed :class:`~lrpredict.laws.LawFile` whose numbers cannot give a sane prediction."""
    from lrpredict.laws import BatchHinge, HorizonRatio, PowerLaw, Timescale

    where = source or law.id
    for kind, pred in law.predictions().items():
        for name, coefficient in pred.coefficients().items():
            name = name.replace("exponent of ", "exponents.")  # the file's own key: lr.exponents.N.prior_sd
            for extra, number in coefficient.model_dump().items():  # e.g. a prior's sd next to the value
                if extra != "value" and isinstance(number, float) and not (math.isfinite(number) and number >= 0):
                    raise LawFileError(f"{kind}.{name}.{extra}", number, "a finite number >= 0", where=where)
                if extra == "prior_sd" and isinstance(number, float) and number > MAX_EXPONENT:
                    # wider than the whole plausible range of an exponent is no prior; 1e300 made the anchored
                    # fit's normal equations singular (a traceback, QA 2026-12-01)
                    raise LawFileError(
                        f"{kind}.{name}.{extra}", number, f"a width ≤ {MAX_EXPONENT:g} (or --prior none)", where=where
                    )
        if isinstance(pred, PowerLaw):
            _finite_positive(f"{kind}.coefficient", pred.coefficient.value, where)
            for var, exponent in pred.exponents.items():
                _exponent(f"{kind}.exponents.{var}", exponent.value, where)
            for var, scale in pred.scales.items():
                _finite_positive(f"{kind}.scales.{var}", scale.value, where)
        elif isinstance(pred, HorizonRatio):
            _exponent(f"{kind}.exponent", pred.exponent.value, where)
        elif isinstance(pred, BatchHinge):
            _exponent(f"{kind}.s_below", pred.s_below.value, where)
            _exponent(f"{kind}.s_above", pred.s_above.value, where)
        elif isinstance(pred, Timescale):
            _finite_positive(f"{kind}.tau", pred.tau.value, where)
            _exponent(f"{kind}.tpp_exponent", pred.tpp_exponent.value, where)
    for var, (low, high) in law.domain.items():
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
            raise LawFileError(
                f"domain.{var}", [low, high], "[low, high] with 0 <= low <= high, both finite", where=where
            )
    for section in (law.optimizer, law.schedule):
        for name, value in section.model_dump().items():
            if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
                kind = type(section).__name__.lower()
                raise LawFileError(f"{kind}.{name}", value, "a finite number >= 0", where=where)
    posterior = getattr(law, "posterior", None)  # calibrated laws (schema 2): every number in it finite
    if posterior is not None:
        for path, number in _numbers(posterior.model_dump(), "posterior"):
            if not math.isfinite(number):
                raise LawFileError(path, number, "a finite number", where=where)
        for var, ref in posterior.reference.items():
            _finite_positive(f"posterior.reference.{var}", ref, where)
    from lrpredict.bounds import check_law_range

    out_of_range = check_law_range(law)  # a poisoned magnitude never installs (issue 23)
    if out_of_range is not None:
        raise LawFileError(*out_of_range, where=where)
    for field in ("id", "title", "citation", "url"):
        bad = unprintable(getattr(law, field), multiline=False, line_separators=True)
        if bad is not None:
            raise LawFileError(field, getattr(law, field)[:60], f"printable text (no {bad!a})", where=where)


def _numbers(data: Any, path: str) -> Iterator[tuple[str, float]]:
    if isinstance(data, float):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            yield from _numbers(value, f"{path}[{i}]")


def check_output(law_id: str, values: dict[str, Any], *, field: str = "law", subject: str = "a law") -> None:
    """Refuse a prediction with a non-finite or non-positive number: it must never reach a training config.

    ``values`` maps a name (lr, weight_decay, ...) to a number or to a dict of numbers (weight-decay groups, where
    0 is allowed: no decay on embeddings and norms is a choice, not a law's output).
    """
    for name, value in values.items():
        if isinstance(value, dict):
            for group, number in value.items():
                if not (isinstance(number, (int, float)) and math.isfinite(number) and number >= 0):
                    raise LrpredictError(
                        field, law_id, f"{subject} whose {name}[{group}] is finite and >= 0 (it gives {number!r})"
                    )
        elif not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise LrpredictError(field, law_id, f"{subject} whose {name} is finite and > 0 here (it gives {value!r})")


def _with_bound_warnings(config: Any, suggestion: Any) -> Any:
    """Refuse a suggestion outside the plausibility bounds (``lrpredict.bounds``: no export may carry an LR of 10
    or a batch over D with exit 0, issue 23) and warn, naming the bound, where an input or output is unusual."""
    from lrpredict import bounds

    where = f"{suggestion.law}:"
    notes = [
        bounds.check(name, getattr(config, name)) for name in ("params", "active_params", "tokens", "batch_tokens")
    ]
    for name, value, law in (
        ("lr", suggestion.lr, suggestion.law),
        ("batch_tokens", suggestion.batch_tokens, suggestion.law),
        ("weight_decay", suggestion.weight_decay, suggestion.weight_decay_law),
    ):
        try:
            notes.append(bounds.check(name, value))
        except LrpredictError as exc:
            raise LrpredictError(
                "law", law, f"a law whose {name} is within {exc.allowed} here (it gives {value:.3g})"
            ) from None
    if suggestion.batch_tokens > config.tokens:
        raise LrpredictError(
            "law",
            suggestion.law,
            f"a batch of at most D={config.tokens:.3g} tokens (it gives {suggestion.batch_tokens:.3g})",
        )
    notes = [f"{where} {n}" if n.startswith(("lr=", "batch_tokens=", "weight_decay=")) else n for n in notes if n]
    if not notes:
        return suggestion
    return suggestion.model_copy(update={"warnings": [*suggestion.warnings, *notes]})


def check_suggestion(suggestion: Any) -> None:
    """Refuse a Suggestion holding a number that must not reach a training config (issue 15: a negative law
    printed ``--lr -0.000996``, a NaN law exported ``"learning_rate": NaN``)."""
    check_output(
        suggestion.law,
        {
            "lr": suggestion.lr,
            "lr_range.low": suggestion.lr_range.low,
            "lr_range.high": suggestion.lr_range.high,
            "lr_at_optimal_batch": suggestion.lr_at_optimal_batch,
            "batch_tokens": suggestion.batch_tokens,
            "optimal_batch_tokens": suggestion.optimal_batch_tokens,
        },
    )
    check_output(
        suggestion.weight_decay_law,
        {"weight_decay": suggestion.weight_decay, "weight_decay_groups": suggestion.weight_decay_groups},
    )


def require_config(field: str, value: Any) -> None:
    """Refuse anything but a ModelConfig where the API needs one (``suggest(None)`` gave an AttributeError)."""
    from lrpredict.config import ModelConfig

    if not isinstance(value, ModelConfig):
        shown = value if isinstance(value, (type(None), bool, int, float, str)) else type(value).__name__
        raise LrpredictError(field, shown, "a ModelConfig, e.g. ModelConfig(params='7B', tokens='2T')")


def checked_prediction(law_name: Callable[[Any, Any], str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap ``suggest``: its config must be a ModelConfig, arithmetic that overflows or divides by zero becomes an
    error naming the law and the inputs, and the result passes :func:`check_suggestion` before anyone sees it.
    ``law_name(law, config)`` names the law ``suggest`` used: only suggest knows its default (so this checker does
    not import suggest; issue 21)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            config = args[0] if args else kwargs.get("config")
            require_config("config", config)
            law = args[1] if len(args) > 1 else kwargs.get("law")
            try:
                result = func(*args, **kwargs)
            except (OverflowError, ZeroDivisionError) as exc:
                inputs = f"params={config.params:.3g}, tokens={config.tokens:.3g}"
                raise LrpredictError(
                    "law",
                    law_name(law, config),
                    f"a law that gives finite numbers for this run ({inputs}: {exc.__class__.__name__}); "
                    "check the sizes' units",
                ) from None
            check_suggestion(result)
            return _with_bound_warnings(config, result)

        return wrapper

    return decorate


def checked_plan(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``transfer``: every group's LR finite and > 0, its weight decay, ε and init std finite and >= 0, and
    arithmetic that overflows an error rather than a traceback (fuzzing found a proxy LR of 1e236 giving lr=inf)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            plan = func(*args, **kwargs)
        except (OverflowError, ZeroDivisionError) as exc:
            raise LrpredictError(
                "proxy_hparams", "overflow", f"values whose transfer stays finite ({exc.__class__.__name__})"
            ) from None
        for name, group in plan.groups.items():
            extras = {"weight_decay": group.weight_decay, "adam_eps": group.adam_eps, "init_std": group.init_std}
            check_output(
                plan.rule,
                {f"{name}.lr": group.lr, name: {k: v for k, v in extras.items() if v is not None}},
                field="rule",
                subject="proxy hyperparameters and shapes",
            )
        return plan

    return wrapper
