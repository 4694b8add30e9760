"""Stage 3 of ``suggest``, uncertainty.  Reads the :class:`~lrpredict.pipeline.state.Resolved` law and variables and
the :class:`~lrpredict.pipeline.state.Point` LR; adds the LR range — the Eq.2 band (arXiv 2601.05049) around the LR,
then, for a calibrated law, combined with its posterior predictive interval, else widened for each decade the run
lies outside the law's fitted domain — and the warnings that say how far to trust the point: outside the domain,
unconfirmed (OPEN) coefficients, a schedule unlike the law's, a wide or optimistic posterior interval."""

from __future__ import annotations

import math

from lrpredict.band import CURVATURE_SOURCE, lr_band
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.laws import HorizonRatio, LawFile
from lrpredict.pipeline.resolve import default_law, extrapolation_factor, open_warnings, resolve_variables
from lrpredict.pipeline.state import Point, Resolved, Spread
from lrpredict.suggestion import LrRange

# Octaves of LR error per decade of extrapolation, added to the band's half-width: the default law's error on the
# published runs grows with distance from its fitted domain (benchmarks/production_runs.py, docs/log.md 2026-11-30).
BAND_OCTAVES_PER_DECADE = 0.25
# A calibrated law's range: the Eq.2 band's half-width and the posterior predictive 90% half-width of ln η* at the
# target add in quadrature in ln η (docs/calibrate.md, anchored fit).
Z90 = 1.6448536269514722


def uncertainty(resolved: Resolved, point: Point) -> Spread:
    """The LR range and the validity warnings for the point prediction (see the module docstring)."""
    config, law, values, tolerance = resolved.config, resolved.law, resolved.values, resolved.request.tolerance
    low, high = lr_band(point.lr, config.arch, tolerance)
    # the meaning is stated, so the JSON says which kind of range it holds (issue 23: a loss band for bundled laws,
    # a predictive interval for calibrated ones, in the same field)
    meaning = f"loss band: expected within {tolerance:.2%} of the best loss"
    lr_range = LrRange(low=low, high=high, tolerance=tolerance, source=CURVATURE_SOURCE, meaning=meaning)
    out_of_domain = law.domain_status(values)
    warnings = out_of_domain + open_warnings(law)
    if config.schedule is not None and law.schedule.kind not in ("unknown", config.schedule):
        warnings.append(
            f"schedule mismatch: {law.id} was fitted with a {law.schedule.kind} schedule, you train with "
            f"{config.schedule}; the optimal peak LR depends on the schedule"
        )
    if law.posterior is not None:
        lr_range = _posterior_range(lr_range, law, values, point.lr, warnings)
        wider = wider_than_default(config, law, lr_range, tolerance)
        if wider:
            warnings.append(wider)
    if law.validation is not None:  # issue 19: what the calibration's held-out cell said
        warnings.append(law.validation.describe(law.id))
    if law.posterior is None:
        lr_range = widen_for_extrapolation(lr_range, law, values)
    return Spread(lr_range=lr_range, extrapolated=bool(out_of_domain), warnings=warnings)


def widen_for_extrapolation(lr_range: LrRange, law: LawFile, values: dict[str, float]) -> LrRange:
    """Widen the band by BAND_OCTAVES_PER_DECADE octaves per decade outside the law's fitted domain, each side."""
    decades = math.log10(extrapolation_factor(law, values))
    if decades <= 0:
        return lr_range
    widen = 2.0 ** (BAND_OCTAVES_PER_DECADE * decades)
    if widen < 1.01:  # "widened ×1 each side" was printed when nothing visible was widened (issue 23)
        return lr_range
    return lr_range.model_copy(
        update={
            "low": lr_range.low / widen,
            "high": lr_range.high * widen,
            "source": f"{lr_range.source}; widened ×{widen:.3g} each side for {decades:.2g} decades of "
            f"extrapolation ({BAND_OCTAVES_PER_DECADE:g} octave per decade, docs/choosing.md)",
            "meaning": f"loss band: within {lr_range.tolerance:.2%} of the best loss, widened ×{widen:.2g} each side "
            "for extrapolation",
        }
    )


def _posterior_range(
    lr_range: LrRange, law: LawFile, values: dict[str, float], lr: float, warnings: list[str]
) -> LrRange:
    posterior = law.posterior
    assert posterior is not None
    n, tokens = values["N"], values["D"]
    predictive = Z90 * posterior.ln_sd(n, tokens)
    band = math.log(lr_range.high / lr)
    half = math.hypot(band, predictive)
    if 2 * predictive > math.log(2.0):
        # which parameter, if a probe pinned it, would narrow the interval most: α (a larger size) or β (a longer
        # horizon); the offset is what any probe measures
        by_size = posterior.ln_sd_without(n, tokens, 1)
        by_horizon = posterior.ln_sd_without(n, tokens, 2)
        # past the probes' largest size / horizon (the domain), not their centre (the reference): QA 2026-12-01
        top_n = law.domain.get("N", (0.0, posterior.reference["N"]))[1]
        top_d = law.domain.get("D", (0.0, posterior.reference["D"]))[1]
        probe = (
            f"a probe at a larger model size (N above {top_n:.3g}) to pin the N exponent"
            if by_size <= by_horizon
            else f"a probe at a longer horizon (D above {top_d:.3g} tokens) to pin the D exponent"
        )
        warnings.append(
            f"{law.id}: the 90% predictive interval of the optimal LR at this target spans ×{math.exp(2 * predictive):.3g} "
            f"(prior {posterior.prior}; {', '.join(f'{k} exponent set by the {v}' for k, v in posterior.set_by.items())}); "
            f"{probe} would narrow it most"
        )
    if posterior.conflict is not None and posterior.conflict.flagged:
        # issue 20: the probes contradicted the prior's exponents; the fit widened the prior (lrpredict.calibrate.conflict)
        warnings.append(f"{law.id}: {posterior.conflict.message}")
    if posterior.unbracketed_cells and (posterior.cells is None or 2 * posterior.unbracketed_cells >= posterior.cells):
        # most rows one-sided bounds: the 90% interval covered 70–87% (benchmarks/calibrate_censoring.py (B))
        of = f" of {posterior.cells}" if posterior.cells else ""
        warnings.append(
            f"{law.id}: {posterior.unbracketed_cells}{of} calibration cells had their optimum at the LR grid's edge "
            "(entered as one-sided bounds): the interval is optimistic; recalibrate with LRs past that edge"
        )
    return lr_range.model_copy(
        update={
            "low": lr * math.exp(-half),
            "high": lr * math.exp(half),
            "source": f"{lr_range.source}, combined in quadrature (ln η) with {law.id}'s posterior predictive 90% "
            f"interval at this N, D (±{predictive:.3g} in ln η, i.e. ×{math.exp(predictive):.3g})",
            "meaning": f"90% predictive interval of the optimum from {law.id}'s calibration, with the band within "
            f"{lr_range.tolerance:.2%} of the best loss",
        }
    )


def wider_than_default(config: ModelConfig, law: LawFile, lr_range: LrRange, tolerance: float) -> str | None:
    """A calibrated law less informative at ``config`` than the bundled default: its posterior predictive 90%
    interval of η* alone is wider than the default law's band there.  Say so and recommend the default (issue 19: a
    ×655 calibrated interval next to the default's ×9.6 told nobody that the calibration was worse than none).

    Why the posterior part and not the whole range: the calibrated range adds the Eq.2 band in quadrature, so it is
    wider than the default's band (the band alone, inside its domain) for every calibration, however good."""
    if law.posterior is None:
        return None
    try:
        ours = resolve_variables(config, law)
        default, _ = default_law(config)
        values = resolve_variables(config, default, approximate_m=True)
        if default.lr is None or isinstance(default.lr, HorizonRatio):
            return None
        centre = default.lr.evaluate(values)
    except LrpredictError:
        return None
    predictive = math.exp(2 * Z90 * law.posterior.ln_sd(ours["N"], ours["D"]))
    low, high = lr_band(centre, config.arch, tolerance)
    band = LrRange(low=low, high=high, tolerance=tolerance, source=CURVATURE_SOURCE)
    band = widen_for_extrapolation(band, default, values)
    theirs = band.high / band.low
    if predictive <= theirs:
        return None
    return (
        f"{law.id}'s 90% interval of the optimal LR at this target spans ×{predictive:.3g} (×"
        f"{lr_range.high / lr_range.low:.3g} with the band), wider than the bundled default {default.id}'s whole band "
        f"×{theirs:.3g}: this calibration is less informative here than no calibration; use {default.id} (suggest "
        "without --law), or recalibrate with a bigger budget (larger probes, longer horizons: calibrate --target-* "
        "--dry-run shows the interval a plan would give)"
    )
