"""Stage 1 of ``suggest``, resolve.  Reads the :class:`~lrpredict.pipeline.state.Request` (config, law id or file,
options); adds the law itself (given, or the default for the run: :func:`default_law`), the variables it needs
(N, D, M, C, B in the law's own conventions: :func:`resolve_variables`) and the warnings about the law's fit to the
run (architecture, approximated M).  Refuses bad options before any law is evaluated."""

from __future__ import annotations

import math

from lrpredict import default_blend
from lrpredict.config import M_APPROXIMATION_WARNING, ModelConfig
from lrpredict.errors import LrpredictError, MissingInputError
from lrpredict.laws import LawFile
from lrpredict.pipeline.state import Request, Resolved
from lrpredict.registry import load_law


def resolve(request: Request) -> Resolved:
    """The law and its variables for the request; a bad tolerance, a law without an LR, or references given to an
    absolute law is an error naming the option."""
    tolerance = request.tolerance
    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool)) or not (
        math.isfinite(tolerance) and 0 < tolerance < 1
    ):  # None or "0.01" gave a TypeError (issue 15 fuzzing)
        raise LrpredictError("tolerance", tolerance, "a relative loss between 0 and 1, e.g. 0.0025")
    config, approximate_m = request.config, request.approximate_m
    default_note = None
    blend = None
    if request.law is None:
        choice = default_blend.choose(config, resolve_variables)
        chosen, default_note = choice.law, choice.note
        blend = choice if choice.blended else None
    else:
        chosen = load_law(request.law)
    if chosen.lr is None:
        raise LrpredictError("law", chosen.id, "a law that predicts lr (see lrpredict show-law)")
    reference_lr, reference_tokens = request.reference_lr, request.reference_tokens
    if not chosen.relative and (reference_lr is not None or reference_tokens is not None):
        # an absolute law would ignore them silently (issue 15)
        given = "reference_lr" if reference_lr is not None else "reference_tokens"
        raise LrpredictError(
            given,
            reference_lr if reference_lr is not None else reference_tokens,
            f"only with a relative law such as bjorck-2024; {chosen.id} predicts the LR itself",
        )
    warnings: list[str] = []
    if config.arch not in chosen.architectures:
        fitted = "/".join(chosen.architectures)
        warnings.append(f"{chosen.id} was fitted on {fitted} models only; this run is {config.arch}")
    values = resolve_variables(config, chosen, approximate_m=approximate_m)
    if "M" in values and config.flops_per_token() is None:
        warnings.append(M_APPROXIMATION_WARNING)
    return Resolved(
        request=request, law=chosen, default_note=default_note, values=values, warnings=warnings, blend=blend
    )


def resolve_variables(
    config: ModelConfig, law: LawFile, needed: set[str] | None = None, *, approximate_m: bool = False
) -> dict[str, float]:
    """The law's variables from the config, in the law's conventions; a missing one names the fields to give.
    ``approximate_m``: without width, depth and sequence length, take M = 6·N_active (attention FLOPs omitted)."""
    needed = law.variables() | set(law.domain) if needed is None else needed
    values: dict[str, float] = {"D": config.tokens}
    if "N" in needed:
        total, active = config.params_for(law.conventions.count)  # the law's own way of counting N (issue 14)
        if law.conventions.n == "active":
            if active is None:
                raise MissingInputError(law.id, "N_active (active non-embedding parameters)", "active_params")
            values["N"] = active
        else:
            values["N"] = total
    if needed & {"M", "C"}:
        m = config.flops_per_token()
        if m is None and approximate_m and config.n_active is not None:
            m = 6.0 * config.n_active
        if m is None:
            fields = "n_layers, d_model, seq_len" + (" and active_params" if config.n_active is None else "")
            if approximate_m:  # only the active count is missing: with it M ≈ 6·N_active
                fields = "active_params"
            raise MissingInputError(law.id, "M (non-embedding FLOPs per token)", fields)
        values["M"] = m
        values["C"] = m * config.tokens
    if "B" in needed:
        if config.batch_tokens is None:
            raise MissingInputError(law.id, "B (your batch size in tokens)", "batch_tokens")
        values["B"] = config.batch_tokens
    return values


def default_law(config: ModelConfig) -> tuple[LawFile, str]:
    """The default's law for ``config`` (where it blends, the one with the largest weight) and why: the sweep-fitted
    law (Step Law) near the data it was fitted on, a compute law (``registry.PRODUCTION_LAW``) farther out, a blend
    in between (``lrpredict.default_blend``), chosen on sweeps and published runs together."""
    choice = default_blend.choose(config, resolve_variables)
    return choice.law, choice.note


def extrapolation_factor(law: LawFile, values: dict[str, float]) -> float:
    """The largest factor by which any variable lies outside the law's fitted domain (1: inside)."""
    return max(law.domain_distance(values).values(), default=1.0)


def open_warnings(law: LawFile) -> list[str]:
    """One warning per OPEN (unconfirmed) coefficient of the law."""
    return [
        f"{law.id}: coefficient '{name}' of {kind} is OPEN (unconfirmed){': ' + c.note if c.note else ''}"
        for kind, pred in law.predictions().items()
        for name, c in pred.coefficients().items()
        if c.status == "open"
    ]
