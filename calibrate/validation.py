"""The validation stage (issue 19): one held-out cell, larger than every fit probe, that checks the fitted law.

The fit is made without it.  Its LRs (the plan's ``validation`` specs, or a replay's recorded LRs at a held-out size)
are re-centred on the fit's predicted η* at that (N, D, batch), keeping their count and spacing, and run like any
probe (the same executor, the same ledger: a resume re-runs none).  Scored: the predicted η* with its 90% posterior
predictive interval, the measured η* (Eq.2 over the validation LRs, with its se; an optimum at the grid's edge is
said to be unbracketed), whether it lies inside the interval, and the loss regret of the predicted LR on the
measured parabola.  Then the caller refits with every cell.  A miss is a loud warning, not an error: the law is still
installed, with the miss recorded in its ``[validation]`` table, which ``suggest --law`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lrpredict.calibrate.fit import LOSS_NOISE_FLOOR, Z90, CalibrationFit, fit_parabola
from lrpredict.calibrate.noise import LossNoise
from lrpredict.calibrate.planner import MAX_PROBE_LR, MIN_PROBE_LR
from lrpredict.calibrate.spec import ProbeSpec


@dataclass(frozen=True)
class Prediction:
    """The fit's η* at the validation cell and its 90% predictive interval (None for the free fit: no posterior)."""

    lr: float
    interval: tuple[float, float] | None


def predict(fit: CalibrationFit, n: float, tokens: float, batch: float, arch: str) -> Prediction:
    """η* of ``fit`` at (N, D) and the probes' batch ``batch``.  An anchored fit whose optima were moved to B_opt is
    moved back to ``batch`` by the same conditional batch law the fit used (lrpredict.calibrate.prior)."""
    law = fit.lr_law
    assert law is not None
    ln_lr = math.log(law.lr(n, tokens))
    posterior = law.posterior
    if posterior is not None and posterior.probe_batch_policy == "optimal" and fit.prior is not None:
        from lrpredict.calibrate.prior import ln_batch_factor

        measured = fit.batch_law is not None and fit.batch_law.n_cells > 0
        optimal = fit.batch_law.lr(n, tokens) if measured else None  # type: ignore[union-attr]
        ln_lr += ln_batch_factor(fit.prior, n, tokens, batch, arch, optimal=optimal)
    if posterior is None:
        return Prediction(math.exp(ln_lr), None)
    half = Z90 * posterior.ln_sd(n, tokens)
    return Prediction(math.exp(ln_lr), (math.exp(ln_lr - half), math.exp(ln_lr + half)))


def recentre(specs: list[ProbeSpec], centre: float) -> list[ProbeSpec]:
    """``specs`` with their LRs moved so that their geometric centre is ``centre``: same count, same spacing
    (clipped to the probe LR range, lrpredict.calibrate.planner)."""
    if not specs:
        return []
    ln_factor = math.log(centre) - sum(math.log(s.lr) for s in specs) / len(specs)
    if abs(ln_factor) < 1e-9:  # already centred (a resume): the same LRs to the bit, so the same probe ids
        return list(specs)
    factor = math.exp(ln_factor)
    return [s.model_copy(update={"lr": min(max(s.lr * factor, MIN_PROBE_LR), MAX_PROBE_LR)}) for s in specs]


def extension(specs: list[ProbeSpec], result: ValidationResult, diverged: list[float]) -> list[ProbeSpec]:
    """Two LRs past the edge the held-out cell's best LR sits on, at the cell's own spacing, when its optimum was not
    bracketed: both H200 runs of 2026-12-04 found the optimum above all three validation LRs, so the validation could
    only say "not bracketed" (docs/log.md).  None past a diverged probe (the bowl is closed there) or outside the
    probe LR range; the caller adds them once, within the budget."""
    if result.bracketed or result.edge is None or len(specs) < 2:
        return []
    lrs = sorted(s.lr for s in specs)
    spacing = (lrs[-1] / lrs[0]) ** (1 / (len(lrs) - 1))
    if result.edge == "high":
        if any(lr > lrs[-1] * (1 - 1e-9) for lr in diverged):
            return []
        new = [lrs[-1] * spacing**k for k in (1, 2)]
    else:
        if any(lr < lrs[0] * (1 + 1e-9) for lr in diverged):
            return []
        new = [lrs[0] / spacing**k for k in (1, 2)]
    return [specs[0].model_copy(update={"lr": lr}) for lr in new if MIN_PROBE_LR <= lr <= MAX_PROBE_LR]


@dataclass(frozen=True)
class ValidationResult:
    """What the held-out cell said about the law fitted without it."""

    n: float
    tokens: float
    batch_tokens: float
    lrs: int
    predicted: float
    interval: tuple[float, float] | None
    measured: float | None  # the Eq.2 vertex, or the best LR when it is not bracketed
    measured_se_ln: float | None  # se of ln(measured) (bracketed only)
    bracketed: bool
    edge: str | None  # "low"/"high": the best validation LR is the grid's lowest/highest
    inside: bool | None  # None: no interval (free fit) or no bracketed optimum
    regret: float | None  # relative loss regret of the predicted LR on the measured parabola
    extrapolated_regret: bool = False  # the predicted LR lies outside the validation LRs: the parabola extrapolates

    @property
    def missed(self) -> bool:
        return self.inside is False

    def where(self) -> str:
        return f"N={self.n:.3g}, D={self.tokens:.3g} (batch {self.batch_tokens:.3g} tokens)"

    def verdict(self) -> str:
        """'predicted ×1.2 of measured, inside the 90% interval; loss regret 0.12%'."""
        if self.measured is None:
            return "no optimum measured (fewer than 3 validation LRs finished)"
        if not self.bracketed:
            side = "below" if self.edge == "low" else "above"
            return (
                f"the optimum is not bracketed: it lies {side} the validation LRs (best {self.measured:.3g}); "
                f"predicted ×{self.predicted / self.measured:.2g} of that best LR"
            )
        text = f"predicted ×{self.predicted / self.measured:.3g} of measured"
        if self.inside is not None:
            text += ", inside the 90% interval" if self.inside else ", OUTSIDE the 90% interval"
        if self.regret is not None:
            text += f"; loss regret of the predicted LR {self.regret:.2%}" + (
                " (parabola extrapolated past the validation LRs)" if self.extrapolated_regret else ""
            )
        return text

    def lines(self) -> list[str]:
        """The report's and calibrate's last lines."""
        out = [
            f"validation at {self.where()}, held out of the fit, {self.lrs} LRs centred on the prediction: "
            f"predicted η* {self.predicted:.3g}{_interval_text(self)}, measured {_measured_text(self)}: "
            f"{self.verdict()}"
        ]
        if self.missed:
            out.append(
                "!! VALIDATION MISSED: the measured optimum lies outside the law's 90% interval at a size it was not "
                "fitted on; the law is installed refitted with that cell, but its intervals are optimistic at scale "
                "(probe larger sizes, or use the bundled law)"
            )
        return out

    def table(self) -> dict[str, Any]:
        """The law file's ``[validation]`` table (no None: TOML has no null)."""
        out: dict[str, Any] = {
            "n": self.n,
            "tokens": self.tokens,
            "batch_tokens": self.batch_tokens,
            "lrs": self.lrs,
            "predicted": self.predicted,
            "bracketed": self.bracketed,
        }
        optional = {
            "interval": list(self.interval) if self.interval else None,
            "measured": self.measured,
            "measured_se_ln": self.measured_se_ln,
            "edge": self.edge,
            "inside": self.inside,
            "regret": self.regret,
        }
        return out | {k: v for k, v in optional.items() if v is not None}


def _interval_text(result: ValidationResult) -> str:
    """The predicted LR's 90% interval as the report writes it, or that the free fit has none."""
    if result.interval:
        return f" (90% interval {result.interval[0]:.3g}–{result.interval[1]:.3g})"
    return " (free fit: no interval)"


def _measured_text(result: ValidationResult) -> str:
    """The measured optimum with its s.e. factor and whether it was bracketed ("–" when none was measured)."""
    if result.measured is None:
        return "–"
    measured = f"{result.measured:.3g}"
    if result.measured_se_ln is not None:
        measured += f" (se ×{math.exp(result.measured_se_ln):.3g})"
    if not result.bracketed:
        measured += ", not bracketed"
    return measured


def score(
    prediction: Prediction,
    *,
    n: float,
    tokens: float,
    batch: float,
    lrs: list[float],
    losses: list[float | None],
    ses: list[float | None],
    noise: LossNoise | None,
) -> ValidationResult:
    """Score ``prediction`` against the validation losses (one per LR, None where a probe diverged)."""
    fit = fit_parabola(lrs, losses)
    common = {"n": n, "tokens": tokens, "batch_tokens": batch, "lrs": len(lrs), "predicted": prediction.lr}
    common["interval"] = prediction.interval
    if fit is None:
        return ValidationResult(**common, measured=None, measured_se_ln=None, bracketed=False, edge=None, inside=None,
                                regret=None)  # fmt: skip
    if not fit.bracketed:
        return ValidationResult(**common, measured=fit.lr_opt, measured_se_ln=None, bracketed=False, edge=fit.edge,
                                inside=None, regret=None)  # fmt: skip
    measured_ses = [se for se in ses if se is not None]
    eval_se = math.sqrt(sum(s * s for s in measured_ses) / len(measured_ses)) if measured_ses else None
    misfit = noise.misfit_sd if noise is not None else None
    if misfit is None:
        misfit = math.sqrt(fit.rss / fit.dof) if fit.dof > 0 else 0.0
    floor = LOSS_NOISE_FLOOR * fit.loss_min
    sigma = (noise or LossNoise()).cell_sd(eval_se, misfit, floor, tokens)
    se_ln = min(sigma * fit.vertex_se_per_noise, 2 * fit.spacing)
    inside = None
    if prediction.interval is not None:
        inside = prediction.interval[0] <= fit.lr_opt <= prediction.interval[1]
    offset = math.log(prediction.lr) - fit.log_lr_opt
    regret = fit.curvature * offset**2 / fit.loss_min if fit.loss_min > 0 else None
    outside = not min(lrs) <= prediction.lr <= max(lrs)
    return ValidationResult(**common, measured=fit.lr_opt, measured_se_ln=se_ln, bracketed=True, edge=None,
                            inside=inside, regret=regret, extrapolated_regret=outside)  # fmt: skip
