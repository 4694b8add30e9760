"""Write a calibration's fit as a law file in the bundled schema, with its provenance, and install it."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import tomli_w

from lrpredict import share
from lrpredict.calibrate.fit import UNSTABLE_EXPONENT_WIDTH, Z90, CalibrationFit, JointFit
from lrpredict.calibrate.validation import ValidationResult
from lrpredict.laws import LawFile
from lrpredict.registry import load_law


def _spread(key: str, low: float, high: float) -> str:
    """How well an exponent is known: ±half its 90% interval."""
    return f"±{(high - low) / 2:.2g}"


def _coefficient(fit: JointFit, key: str, value: float, unstable: list[str]) -> dict[str, Any]:
    """Never "confirmed" (issue 19): a calibrated coefficient is "fitted" by the probes, "prior" when the anchoring
    law set it, "open" when the probes could not pin it; ``basis`` says what set it and how well."""
    low, high = fit.intervals[key]
    if fit.posterior is not None:
        return _anchored_coefficient(fit, key, value, low, high)
    cells = f"{fit.n_cells} cell{'s' * (fit.n_cells != 1)}"
    if key != "c" and key not in fit.fitted:
        note = "not identified by the probes (one value only); set to 0"
        return {"value": value, "status": "open", "basis": "open: not identified, set to 0", "note": note}
    status = "open" if key in unstable else "fitted"
    note = f"lrpredict calibrate fit; bootstrap 90% interval [{low:.4g}, {high:.4g}]"
    if status == "open":
        note += " — unstable: probe more sizes or horizons"
    spread = (
        f"{_spread(key, low, high)} (bootstrap 90%)" if key != "c" else f"residual ×{math.exp(fit.residual_rms):.3g}"
    )
    basis = f"{status}: {cells}, {spread}"
    return {"value": value, "status": status, "basis": basis, "note": note}


def _anchored_coefficient(fit: JointFit, key: str, value: float, low: float, high: float) -> dict[str, Any]:
    """Status says who set it: the probes ("fitted"; "open" when its 90% interval is wider than
    UNSTABLE_EXPONENT_WIDTH) or the prior ("prior": the published law's value, carried over to this stack untested)."""
    post = fit.posterior
    assert post is not None
    interval = f"posterior 90% interval [{low:.4g}, {high:.4g}]"
    spread = _spread(key, low, high)
    cells = f"{fit.n_cells} cell{'s' * (fit.n_cells != 1)}"
    if key == "c":  # c's own interval is η* at N = D = 1, far from any probe: its spread at the probes says more
        note = f"set by the probes (offset); {interval}"
        at_probes = f"×{math.exp(Z90 * math.sqrt(post.covariance[0][0])):.3g} at the probes (90%)"
        return {"value": value, "status": "fitted", "basis": f"fitted: {cells}, {at_probes}", "note": note}
    by = post.set_by["N" if key == "alpha" else "D"]
    if by == "prior":
        note = f"set by the prior {post.prior} (the probes cannot identify it); {interval}"
        return {"value": value, "status": "prior", "basis": f"prior: {post.prior}, {spread} (90%)", "note": note}
    status = "open" if high - low > UNSTABLE_EXPONENT_WIDTH else "fitted"
    note = f"set by the probes (prior {post.prior}); {interval}"
    return {"value": value, "status": status, "basis": f"{status}: {cells}, {spread} (90%)", "note": note}


def _power_law(fit: JointFit, variable_names: tuple[str, str]) -> dict[str, Any]:
    unstable = fit.unstable()
    return {
        "form": "power_law",
        "coefficient": _coefficient(fit, "c", fit.c, unstable),
        "exponents": {
            variable_names[0]: _coefficient(fit, "alpha", fit.alpha, unstable),
            variable_names[1]: _coefficient(fit, "beta", fit.beta, unstable),
        },
    }


# A calibrated law file holds one provenance row per fitted cell (~210 bytes) and the fit's warnings; a 1,550-cell
# replay made a 296 KB file that the registry's 256 KB limit (lrpredict.law_checks.MAX_BYTES) refused after the fit
# (issue 23).  At most this many rows and warnings go in: ~85 KB + ~25 KB, whatever the run's size.
MAX_CELL_ROWS = 400
MAX_NOTED_WARNINGS = 40


def _cells_shown(cells: list, limit: int) -> list:
    """At most ``limit`` of ``cells``, evenly spaced in (N, D) order, the first and last always kept."""
    if len(cells) <= limit:
        return cells
    ordered = sorted(cells, key=lambda c: (c.n, c.tokens, c.batch_tokens))
    step = (len(ordered) - 1) / (limit - 1)
    return [ordered[round(k * step)] for k in range(limit)]


def _warnings_note(warnings: list[str]) -> str:
    """The fit's warnings for the law's notes, the first ``MAX_NOTED_WARNINGS`` of them (report.md has them all)."""
    if not warnings:
        return "No fit warnings."
    more = len(warnings) - MAX_NOTED_WARNINGS
    tail = f"; and {more} more (the calibration's report.md lists them all)" if more > 0 else ""
    return "Warnings at fit time: " + "; ".join(warnings[:MAX_NOTED_WARNINGS]) + tail


def calibrated_law(
    fit: CalibrationFit,
    *,
    name: str,
    arch: str,
    schedule: dict[str, Any],
    provenance: dict[str, Any],
    batch_policy: str = "fixed",
    validation: ValidationResult | None = None,
) -> str:
    """The TOML text of a law file for ``fit`` (needs ``fit.lr_law``)."""
    if fit.lr_law is None:
        raise ValueError("no joint LR law was fitted")
    cells = [c for c in fit.cells if c.fit is not None]
    ns = [c.n for c in cells]
    ds = [c.tokens for c in cells]
    shown = _cells_shown(cells, MAX_CELL_ROWS)
    law: dict[str, Any] = {
        "schema_version": 2,
        "id": name,
        "title": f"Calibrated on {provenance.get('hardware', 'this machine')}: η*(N, D) = c·N^α·D^β",
        "citation": f"lrpredict calibrate, {dt.date.today().isoformat()} (Fitting paradigm, arXiv 2601.05049)",
        "architectures": [arch],
        "batch_policy": batch_policy,
        "notes": "Fitted by lrpredict calibrate on the probes in provenance. " + _warnings_note(fit.warnings),
        "domain_note": "the model sizes and horizons probed",
        "conventions": {
            "n": "active" if arch == "moe" else "total",
            "n_note": "non-embedding parameters of the probes (MoE: active), counted by lrpredict.architecture",
        },
        "domain": {"N": [min(ns), max(ns)], "D": [min(ds), max(ds)]},
        "schedule": schedule,
        "lr": _power_law(fit.lr_law, ("N", "D")),
        "provenance": {
            **provenance,
            "fit_residual_rms_ln_lr": fit.lr_law.residual_rms,
            "cells": [
                {
                    "N": c.n,
                    "D": c.tokens,
                    "B": c.batch_tokens,
                    "lr_opt": c.fit.lr_opt,  # type: ignore[union-attr]
                    "loss_min": c.fit.loss_min,  # type: ignore[union-attr]
                    "bracketed": c.fit.bracketed,  # type: ignore[union-attr]
                    "extrapolated": c.extrapolated,
                }
                for c in shown
            ],
        },
    }
    if len(shown) < len(cells):
        law["provenance"]["cells_note"] = (
            f"{len(shown)} of the {len(cells)} fitted cells, spread over N and D (the law file stays under the "
            "registry's size limit); every cell is in the calibration folder's fit.json and report.md"
        )
    if fit.batch_law is not None and fit.batch_law.n_cells > 0:
        law["batch"] = _power_law(fit.batch_law, ("N", "D"))
        law["batch_policy"] = "optimal"
    batches = sorted({c.batch_tokens for c in cells})
    if len(batches) == 1:
        law["provenance"]["probe_batch_tokens"] = batches[0]  # suggest moves a fixed-batch law from it
    posterior = fit.lr_law.posterior
    if posterior is not None:
        law["posterior"] = posterior.model_dump(mode="json", exclude_none=True)
        law["provenance"]["probe_batch_tokens"] = posterior.probe_batch_tokens or "several"
        law["provenance"]["prior"] = posterior.prior
        if posterior.probe_batch_policy == "optimal":
            law["batch_policy"] = "optimal"
            if fit.batch_law is None or fit.batch_law.n_cells == 0:
                source = (fit.batch_prior or fit.prior).law() if fit.prior else load_law(posterior.prior)
                law["batch"], law["provenance"]["batch_law_from"] = _prior_batch(source)
        law["notes"] += (
            f" Anchored fit: prior {posterior.prior}; each exponent's note says whether the probes or the prior set"
            " it; the posterior table gives the predictive interval suggest prints."
        )
    if validation is not None:
        law["validation"] = validation.table()  # issue 19: what the held-out cell said of the fit without it
    return tomli_w.dumps(_finite(law))


def _prior_batch(prior: LawFile) -> tuple[dict[str, Any], str]:
    """The prior law's optimal batch, copied (the probes' optima were moved to it: one batch probed), and the id of
    the law it came from (suggest labels the batch with it)."""
    prior_id, batch = prior.id, prior.batch
    if batch is None:
        from lrpredict.registry import DEFAULT_LAW

        prior_id = DEFAULT_LAW["dense"]
        batch = load_law(prior_id).batch
    assert batch is not None
    out = batch.model_dump(mode="json", exclude_defaults=True)
    out["form"] = "power_law"
    out["coefficient"]["note"] = (
        f"{prior_id}'s optimal batch, copied: the probes ran one batch and their optima were moved to it by "
        "lrpredict's conditional batch law"
    )
    for exponent in out["exponents"].values():
        exponent.pop("prior_sd", None)
    if "C" in out["exponents"]:
        # a compute law (deepseek-llm-2024, ling-2025): C = M·D read as 6·N·D, as the prior read it
        # (calibrate/prior.py), so the calibrated law needs no model shape for M
        from lrpredict.calibrate.prior import FLOPS_PER_PARAM

        exponent = out["exponents"].pop("C")
        scale = out.get("scales", {}).pop("C", {"value": 1.0})
        if not out.get("scales"):
            out.pop("scales", None)
        out["coefficient"]["value"] *= (FLOPS_PER_PARAM / scale["value"]) ** exponent["value"]
        note = f"{prior_id}'s C exponent with C = M·D read as 6·N·D"
        out["exponents"] = {"N": {**exponent, "note": note}, "D": {**exponent, "note": note}}
    # copied, not measured here: "prior", never the published law's "confirmed" (issue 19)
    for c in [out["coefficient"], *out["exponents"].values(), *out.get("scales", {}).values()]:
        c["status"], c["basis"] = "prior", f"prior: {prior_id}'s batch law, copied"
    return out, prior_id


def _finite(obj: Any) -> Any:
    """TOML has inf and nan, but our schema's numbers should be finite: record them as strings."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def install_calibrated(text: str, name: str, *, replace: bool = False) -> LawFile:
    return share.install(text, name, source=f"{name}.toml", replace=replace)
