"""Plausibility ranges: one table for the CLI, the API, law checks, exports and transfer (issue 23, item 3).

Outside ``low``–``high`` a value is refused (a unit slip or an attack: ``--tokens 1e-300`` gave peak LR 5.9e35 with
exit 0); outside ``usual`` it is accepted with a warning that names the bound.  The ranges are wide on purpose:
every published run in ``coefficients/published_runs.toml`` lies inside ``usual`` (its own ``SANE`` table: N 1e5–1e13,
D 1e8–1e15, batch 1e3–1e9 tokens, peak LR 1e-6–0.1, λ 0–10), and lrpredict's smallest CPU probes (N ≈ 1e4, 1e5 tokens) inside ``low``–``high``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrpredict.errors import LrpredictError


@dataclass(frozen=True)
class Bound:
    low: float  # refused below
    high: float  # refused above
    usual_low: float  # warned below
    usual_high: float  # warned above
    what: str

    def allowed(self) -> str:
        return f"{self.low:g} to {self.high:g} {self.what}"


_LR = Bound(1e-7, 1.0, 1e-6, 0.1, "(peak LR, AdamW)")
# From 1e4 tokens: a calibrated law's CPU probes train 1e5-1e6 tokens, and suggest answers at their own scale.
_TOKENS = Bound(1e4, 1e16, 1e8, 1e15, "training tokens")
_PARAMS = Bound(1e3, 1e14, 1e5, 1e13, "non-embedding parameters")
BOUNDS: dict[str, Bound] = {
    "params": _PARAMS,
    "active_params": _PARAMS,
    "tokens": _TOKENS,
    "reference_tokens": _TOKENS,
    "batch_tokens": Bound(1.0, 1e10, 1e3, 1e9, "tokens per step"),
    "lr": _LR,
    "reference_lr": _LR,
    "proxy_lr": _LR,
    "weight_decay": Bound(0.0, 10.0, 0.0, 1.0, "(AdamW decoupled weight decay λ)"),
    "width": Bound(1.0, 1e6, 32.0, 1e5, "(hidden width d_model)"),
    "depth": Bound(1.0, 1e5, 1.0, 1e3, "(transformer blocks)"),
}
BOUNDS["proxy_wd"] = BOUNDS["weight_decay"]


def check(field: str, value: Any, *, kind: str | None = None, shown: Any = None) -> str | None:
    """Refuse ``value`` outside ``BOUNDS[kind or field]`` (an LrpredictError naming ``field``); return a warning
    naming the bound when it lies outside the usual range, else None.  None is no value: nothing to check."""
    if value is None:
        return None
    bound = BOUNDS[kind or field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LrpredictError(field, value if shown is None else shown, f"a finite number, {bound.allowed()}")
    if not bound.low <= value <= bound.high:
        raise LrpredictError(field, value if shown is None else shown, bound.allowed())
    if not bound.usual_low <= value <= bound.usual_high:
        return (
            f"{field}={value:.3g} is outside the usual {bound.usual_low:g}–{bound.usual_high:g} {bound.what}: "
            "check its units"
        )
    return None


def check_transfer_inputs(proxy: Any, hparams: Any, target: Any, **widths: Any) -> None:
    """Transfer's inputs within bounds before any arithmetic (issue 23: ``--proxy-lr 1e236`` and ``--base-width
    1e-300`` gave LRs from 1e-307 to 1e304 with exit 0).  Missing or non-numeric values are left to transfer's own
    checks, which name them."""
    if isinstance(hparams, Mapping):  # a Suggestion's numbers already passed the output bounds
        for key, kind in (("lr", "proxy_lr"), ("weight_decay", "proxy_wd")):
            value = hparams.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                check(f"proxy_hparams.{key}", value, kind=kind)
    for name, config in (("proxy", proxy), ("target", target)):
        for field in ("params", "tokens", "batch_tokens"):
            value = getattr(config, field, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                check(f"{name}.{field}", value, kind=field)
        for field, kind in (("d_model", "width"), ("n_layers", "depth")):
            value = getattr(config, field, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                check(f"{name}.{field}", value, kind=kind)
    for name, value in widths.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check(name, value, kind="depth" if "depth" in name else "width")


# Where a law's domain leaves a variable open, it is evaluated at the ends of the usual range.
_VARIABLE_RANGE = {"N": (_PARAMS.usual_low, _PARAMS.usual_high), "D": (_TOKENS.usual_low, _TOKENS.usual_high)}


def law_corners(law: Any) -> list[dict[str, float]]:
    """The corners of a law's own domain in N and D (the usual range where it states none), with M ≈ 6·N and
    C = M·D, as its absolute predictions are evaluated at load."""
    ranges = []
    for var in ("N", "D"):
        low, high = law.domain.get(var, _VARIABLE_RANGE[var])
        low = max(low, _VARIABLE_RANGE[var][0])  # a domain from 0 (zhou-2026) starts at the usual range
        ranges.append((low, max(low, high)))
    corners = []
    for n, d in itertools.product(*ranges):
        corners.append({"N": n, "D": d, "M": 6.0 * n, "C": 6.0 * n * d})
    return corners


def check_law_range(law: Any) -> tuple[str, float, str] | None:
    """(field, value, allowed) of the first absolute LR or batch prediction of ``law`` outside the bounds at a
    corner of its domain (issue 23: an LR coefficient of 1e308 or a batch of 0.762 tokens installed); None: sane."""
    from lrpredict.laws import PowerLaw

    limits = {"lr": BOUNDS["lr"], "batch": BOUNDS["batch_tokens"]}
    for kind, bound in limits.items():
        pred = getattr(law, kind, None)
        if not isinstance(pred, PowerLaw) or not set(pred.exponents) <= {"N", "D", "M", "C"}:
            continue
        for values in law_corners(law):
            try:
                value = pred.evaluate(values)
            except (OverflowError, ZeroDivisionError):
                value = math.inf
            if not (math.isfinite(value) and bound.low <= value <= bound.high):
                where = f"N={values['N']:.3g}, D={values['D']:.3g}"
                allowed = f"a law whose {kind} stays within {bound.allowed()} across its domain"
                return f"{kind}.coefficient", pred.coefficient.value, f"{allowed} (it gives {value:.3g} at {where})"
    return None


def check_plan(plan: Any) -> list[str]:
    """Refuse a transfer plan whose group LR or weight decay lies outside the bounds (an export must never carry
    one with exit 0); the warnings for values outside the usual range, each naming the group and the bound."""
    notes = []
    for name, group in plan.groups.items():
        for kind, value in (("lr", group.lr), ("weight_decay", group.weight_decay)):
            try:
                note = check(f"{name}.{kind}", value, kind=kind)
            except LrpredictError:
                raise LrpredictError(
                    "rule",
                    plan.rule,
                    f"proxy values and shapes whose transfer keeps {name}'s {kind} within "
                    f"{BOUNDS[kind].allowed()} (it gives {value:.3g})",
                ) from None
            if note:
                notes.append(note)
    return notes
