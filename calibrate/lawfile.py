"""Write a calibration's fit as a law file in the bundled schema, with its provenance, and install it."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import tomli_w

from lrpredict import share
from lrpredict.calibrate.fit import CalibrationFit, JointFit
from lrpredict.laws import LawFile


def _coefficient(fit: JointFit, key: str, value: float, unstable: list[str]) -> dict[str, Any]:
    low, high = fit.intervals[key]
    if key != "c" and key not in fit.fitted:
        return {"value": value, "status": "open", "note": "not identified by the probes (one value only); set to 0"}
    status = "open" if key in unstable else "confirmed"
    note = f"lrpredict calibrate fit; bootstrap 90% interval [{low:.4g}, {high:.4g}]"
    if status == "open":
        note += " — unstable: probe more sizes or horizons"
    return {"value": value, "status": status, "note": note}


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


def calibrated_law(
    fit: CalibrationFit,
    *,
    name: str,
    arch: str,
    schedule: dict[str, Any],
    provenance: dict[str, Any],
    batch_policy: str = "fixed",
) -> str:
    """The TOML text of a law file for ``fit`` (needs ``fit.lr_law``)."""
    if fit.lr_law is None:
        raise ValueError("no joint LR law was fitted")
    cells = [c for c in fit.cells if c.fit is not None]
    ns = [c.n for c in cells]
    ds = [c.tokens for c in cells]
    law: dict[str, Any] = {
        "schema_version": 1,
        "id": name,
        "title": f"Calibrated on {provenance.get('hardware', 'this machine')}: η*(N, D) = c·N^α·D^β",
        "citation": f"lrpredict calibrate, {dt.date.today().isoformat()} (Fitting paradigm, arXiv 2601.05049)",
        "architectures": [arch],
        "batch_policy": batch_policy,
        "notes": "Fitted by lrpredict calibrate on the probes in provenance. "
        + ("Warnings at fit time: " + "; ".join(fit.warnings) if fit.warnings else "No fit warnings."),
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
                for c in cells
            ],
        },
    }
    if fit.batch_law is not None:
        law["batch"] = _power_law(fit.batch_law, ("N", "D"))
        law["batch_policy"] = "optimal"
    return tomli_w.dumps(_finite(law))


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
