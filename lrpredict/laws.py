"""Law files: the schema (``lrpredict.record``) every ``coefficients/*.toml`` follows, and the math of each law form.

A law file holds one published (or calibrated) law: which quantities it predicts (``lr``, ``batch``,
``weight_decay``), each as a *form* with coefficients, plus its variable conventions, fitted domain, assumed
schedule, batch policy and optimizer.  Every coefficient carries a status: ``confirmed`` (read in the paper's own
text, code or data), ``secondary`` (quoted by a third party) or ``open`` (nobody here could confirm it).  A calibrated
law's coefficients (lrpredict calibrate) are never confirmed (issue 19): ``fitted`` (set by its own probes) or
``prior`` (the anchoring law's value, carried over untested), with ``basis`` saying how well ("fitted: 3 cells, ±0.21").
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from lrpredict.record import Field, Record, after_validation, literal_tag

Status = Literal["confirmed", "secondary", "prior", "fitted", "open"]
# weakest last: a calibrated law with one fitted coefficient is "fitted", whatever its prior-set ones say
STATUS_ORDER: dict[str, int] = {"confirmed": 0, "secondary": 1, "prior": 2, "fitted": 3, "open": 4}

# Variables a law may use.  N follows the law's own convention (conventions.n: total or active non-embedding);
# C = M·D with M the non-embedding FLOPs per token (DeepSeek convention); B is tokens per step.
Variable = Literal["N", "D", "C", "M", "B", "B_ratio"]
VARIABLE_MEANING: dict[str, str] = {
    "N": "non-embedding parameters",
    "D": "training tokens",
    "C": "compute M·D in FLOPs",
    "M": "non-embedding FLOPs per token",
    "B": "batch size in tokens",
    "B_ratio": "batch over the optimal batch, B/B_opt",
}
# what a domain bound of each variable is, for "N is 610× above the largest model <law> was fitted on"
DOMAIN_NOUN: dict[str, str] = {
    "N": "model",
    "D": "token count",
    "C": "compute budget",
    "M": "FLOPs per token",
    "B": "batch",
    "B_ratio": "batch ratio",
}


# A number in a law file: a TOML integer or float, never a bool or a string (pydantic's lax mode read
# `value = true` as 1.0 and `value = "1.79"` as 1.79: hostile-law QA, 2026-12-01).
Number = Annotated[float, Field(strict=True)]


class _Strict(Record, extra="forbid"):
    """A law file's tables: unknown keys refused (a typo is an error, not a silent default), frozen."""


class Coefficient(_Strict):
    value: Number
    status: Status
    note: str = ""
    # prior width (1 sd, in the exponent's own units) when the law anchors a calibration (lrpredict.calibrate.prior;
    # docs/log.md 2026-11-30 — prior widths)
    prior_sd: Number | None = Field(default=None, gt=0)
    # calibrated laws: what set the value and how well, one line ("fitted: 3 cells, ±0.21 (90%)", "prior: steplaw-2025")
    basis: str = ""

    def describe(self) -> str:
        """The status as shown next to a value: the basis when there is one, else the status."""
        return self.basis or self.status


def weakest(statuses: list[str]) -> Status:
    """The least certain of several statuses: a prediction is only as sure as its weakest coefficient."""
    return max(statuses, key=STATUS_ORDER.__getitem__, default="confirmed")  # type: ignore[return-value]


class PowerLaw(_Strict):
    """y = c · Π (x / scale_x)^(e_x).  ``scales`` states the units (e.g. N in millions: scale 1e6)."""

    form: Literal["power_law"]
    coefficient: Coefficient
    exponents: dict[Variable, Coefficient]
    scales: dict[Variable, Coefficient] = Field(default_factory=dict)
    # A correlated prior on the N and D exponents (lrpredict.calibrate.prior): 1-sd widths of α+β, the exponent along
    # the compute-optimal line D ∝ N (where published laws agree), and of α−β, the split between N and D (where they
    # do not).  Given together; they replace the exponents' own prior_sd (docs/log.md 2026-12-04 — correlated priors).
    prior_sd_sum: Number | None = Field(default=None, gt=0, le=3.0)
    prior_sd_difference: Number | None = Field(default=None, gt=0, le=3.0)

    relative: bool = False

    @after_validation
    def _correlated_prior_complete(self) -> PowerLaw:
        given = (self.prior_sd_sum is None, self.prior_sd_difference is None)
        if given[0] != given[1]:
            raise ValueError("prior_sd_sum and prior_sd_difference come together (or neither)")
        if not given[0] and set(self.exponents) not in ({"N", "D"}, {"C"}):
            raise ValueError("prior_sd_sum/prior_sd_difference need exponents of N and D (or of C alone)")
        return self

    def variables(self) -> list[str]:
        return list(self.exponents)

    def coefficients(self) -> dict[str, Coefficient]:
        out = {"c": self.coefficient}
        out.update({f"exponent of {v}": c for v, c in self.exponents.items()})
        out.update({f"unit of {v}": c for v, c in self.scales.items()})
        return out

    def evaluate(self, values: dict[str, float]) -> float:
        result = self.coefficient.value
        for var, exponent in self.exponents.items():
            scale = self.scales[var].value if var in self.scales else 1.0
            result *= (values[var] / scale) ** exponent.value
        return result

    def formula(self, symbol: str) -> str:
        terms = [f"{self.coefficient.value:g}"]
        for var, exponent in self.exponents.items():
            name = f"({var}/{self.scales[var].value:g})" if var in self.scales else var
            terms.append(f"{name}^{exponent.value:g}")
        return f"{symbol} = " + " · ".join(terms)


class HorizonRatio(_Strict):
    """A relative law: moves a known value from horizon D_ref to D, y(D) = y(D_ref) · (D / D_ref)^exponent."""

    form: Literal["horizon_ratio"]
    exponent: Coefficient

    relative: bool = True

    def variables(self) -> list[str]:
        return ["D"]

    def coefficients(self) -> dict[str, Coefficient]:
        return {"exponent of D/D_ref": self.exponent}

    def evaluate_relative(self, reference: float, reference_tokens: float, tokens: float) -> float:
        return reference * (tokens / reference_tokens) ** self.exponent.value

    def formula(self, symbol: str) -> str:
        return f"{symbol}(D) = {symbol}(D_ref) · (D/D_ref)^{self.exponent.value:g}"


class BatchHinge(_Strict):
    """Relative: moves an LR that is optimal at B_opt to batch B, η*(B) = η*(B_opt)·(B/B_opt)^s, with
    s = s_below under B_opt and s_above over it (lrpredict's own law, fitted on recorded LR × batch grids)."""

    form: Literal["batch_hinge"]
    s_below: Coefficient
    s_above: Coefficient

    relative: bool = True

    def variables(self) -> list[str]:
        return ["B_ratio"]

    def coefficients(self) -> dict[str, Coefficient]:
        return {"s below B_opt": self.s_below, "s above B_opt": self.s_above}

    def factor(self, batch: float, optimal_batch: float) -> float:
        ratio = batch / optimal_batch
        return ratio ** (self.s_below.value if ratio < 1 else self.s_above.value)

    def formula(self, symbol: str) -> str:
        return (
            f"{symbol}(B) = {symbol}(B_opt) · (B/B_opt)^s, s = {self.s_below.value:g} below B_opt, "
            f"{self.s_above.value:g} above"
        )


class Timescale(_Strict):
    """Weight decay from the AdamW EMA timescale as a fraction of training, τ = B/(η·λ·D)
    (Wang & Aitchison, arXiv 2405.13698; Power Lines, arXiv 2505.13738): τ_opt = τ·(D/N)^e, λ = B/(η·τ_opt·D)."""

    form: Literal["timescale"]
    tau: Coefficient
    tpp_exponent: Coefficient

    relative: bool = True

    def variables(self) -> list[str]:
        return ["N", "D", "B"]

    def coefficients(self) -> dict[str, Coefficient]:
        return {"tau": self.tau, "exponent of D/N": self.tpp_exponent}

    def optimal_tau(self, n: float, tokens: float) -> float:
        return self.tau.value * (tokens / n) ** self.tpp_exponent.value

    def weight_decay(self, lr: float, batch: float, tokens: float, n: float) -> float:
        return batch / (lr * self.optimal_tau(n, tokens) * tokens)

    def formula(self, symbol: str) -> str:
        return f"{symbol} = B/(η·τ·D), τ = {self.tau.value:g}·(D/N)^{self.tpp_exponent.value:g}"


Prediction = Annotated[PowerLaw | HorizonRatio, Field(discriminator="form")]
# every form's tag, e.g. "power_law": pydantic puts it in error locations, which registry.parse_law strips
FORM_TAGS = frozenset(literal_tag(cls, "form") for cls in (PowerLaw, HorizonRatio, BatchHinge, Timescale))


class PriorConflict(_Strict):
    """How far the probes' own exponents (a data-only fit) sit from the prior's, and what the fit did about it
    (lrpredict.calibrate.conflict)."""

    chi2: Number = Field(
        ge=0, description="(θ̂ − θ0)ᵀ(Σ0 + V)⁻¹(θ̂ − θ0) over the exponent directions the probes identify"
    )
    dof: int = Field(ge=0, description="exponent directions the probes identify (0–2)")
    p_value: Number = Field(ge=0, le=1)
    prior_scale: Number = Field(ge=1, description="factor on the prior's exponent covariance (1: not widened)")
    scatter: Number = Field(default=1.0, ge=1, description="Birge ratio of a data-only fit's residuals")
    flagged: bool = Field(default=False, description="p below the conflict threshold: said loudly")
    message: str = ""


class Posterior(_Strict):
    """A calibrated LR law's Gaussian posterior (lrpredict.calibrate.prior): ln η* = offset + α·(ln N − ln N_ref) +
    β·(ln D − ln D_ref), with ``mean`` and ``covariance`` over (offset, α, β).  Pure Python: suggest reads it."""

    parameters: tuple[str, str, str] = ("offset", "N", "D")
    reference: dict[Literal["N", "D"], float]
    mean: tuple[Number, Number, Number]
    covariance: tuple[tuple[Number, Number, Number], tuple[Number, Number, Number], tuple[Number, Number, Number]]
    misfit_sd: Number = Field(
        default=0.0, ge=0, description="sd of the power law's misfit in ln η, added at the target"
    )
    prior: str = Field(description="id of the law that anchored the fit, or 'none'")
    prior_mean: tuple[float, float, float] | None = None
    prior_sd: tuple[float, float, float] | None = None
    set_by: dict[str, Literal["probes", "prior"]] = Field(default_factory=dict)
    probe_batch_tokens: Number | None = Field(default=None, description="the probes' batch (tokens per step)")
    probe_batch_policy: Literal["fixed", "optimal"] = "fixed"
    unbracketed_cells: int = Field(default=0, ge=0)
    cells: int | None = Field(default=None, ge=1, description="rows of the fit, bracketed or not (absent: older files)")
    # rows entered as inequalities (censored likelihood), a subset of unbracketed_cells (absent: older files)
    censored_cells: int | None = Field(default=None, ge=0)
    # the prior's α–β covariance as used (after any widening); absent: independent (older files)
    prior_covariance_exponents: tuple[tuple[Number, Number], tuple[Number, Number]] | None = None
    conflict: PriorConflict | None = None
    # sd of the vertex error every cell shares (Eq.2's lack of fit), already in the offset's variance; absent: none
    shared_vertex_sd: Number | None = Field(default=None, ge=0)

    @after_validation
    def _bounds_within_cells(self) -> Posterior:
        if self.cells is not None and self.unbracketed_cells > self.cells:
            raise ValueError(f"unbracketed_cells ({self.unbracketed_cells}) exceeds cells ({self.cells})")
        return self

    def ln_sd(self, n: float, tokens: float) -> float:
        """Posterior sd of ln η* at (N, D): the mean law's uncertainty and its misfit, added in quadrature."""
        x = (1.0, math.log(n / self.reference["N"]), math.log(tokens / self.reference["D"]))
        var = sum(x[i] * self.covariance[i][j] * x[j] for i in range(3) for j in range(3))
        return math.sqrt(max(var, 0.0) + self.misfit_sd**2)

    def ln_sd_without(self, n: float, tokens: float, parameter: int) -> float:
        """ln_sd if ``parameter`` (0 offset, 1 α, 2 β) were known exactly: which uncertainty dominates."""
        x = [1.0, math.log(n / self.reference["N"]), math.log(tokens / self.reference["D"])]
        keep = [i for i in range(3) if i != parameter]
        # condition the Gaussian on the parameter: Σ_kk − Σ_kp Σ_pp⁻¹ Σ_pk
        p = parameter
        var = 0.0
        for i in keep:
            for j in keep:
                cov = self.covariance[i][j]
                if self.covariance[p][p] > 0:
                    cov -= self.covariance[i][p] * self.covariance[p][j] / self.covariance[p][p]
                var += x[i] * cov * x[j]
        return math.sqrt(max(var, 0.0) + self.misfit_sd**2)


class Validation(_Strict):
    """A calibration's held-out cell (issue 19): the law fitted without it predicted ``predicted`` (90% ``interval``)
    at (``n``, ``tokens``) and the probes there measured ``measured``; ``regret`` is the relative loss regret of the
    predicted LR on the measured parabola.  The law file then holds the refit with that cell."""

    n: Number = Field(gt=0)
    tokens: Number = Field(gt=0)
    batch_tokens: Number = Field(gt=0)
    lrs: int = Field(ge=0)
    predicted: Number = Field(gt=0)
    interval: tuple[Number, Number] | None = None
    measured: Number | None = Field(default=None, gt=0)
    measured_se_ln: Number | None = Field(default=None, ge=0)
    bracketed: bool = False
    edge: Literal["low", "high"] | None = None
    inside: bool | None = None
    regret: Number | None = Field(default=None, ge=0)

    def describe(self, law_id: str) -> str:
        """'nc-bin15 was validated at N=…, D=… (held out of its fit): predicted ×1.2 of measured, inside …'."""
        head = f"{law_id} was validated at N={self.n:.3g}, D={self.tokens:.3g} (held out of its fit)"
        if self.measured is None:
            return f"{head}: no optimum was measured there"
        ratio = f"predicted ×{self.predicted / self.measured:.3g} of measured"
        if not self.bracketed:
            side = "below" if self.edge == "low" else "above"
            return f"{head}: the optimum lay {side} its LRs (not bracketed); {ratio} best LR"
        verdict = "" if self.inside is None else (", inside" if self.inside else ", OUTSIDE") + " the 90% interval"
        regret = f"; loss regret {self.regret:.2%}" if self.regret is not None else ""
        return f"{head}: {ratio}{verdict}{regret}"


class Conventions(_Strict):
    n: Literal["total", "active"] = Field(description="which N: total or active non-embedding parameters")
    n_note: str = ""
    count: Literal["exact", "steplaw", "with-head"] = Field(
        default="exact",
        description="how N is counted from a model shape (lrpredict.architecture): every non-embedding weight, Step "
        "Law's n_layers·(4·d² + 3·d·d_ffn) with attention 4·d² whatever the K/V heads, or with the output head",
    )
    d: str = "training tokens"
    b: str = "tokens per optimizer step (sequences × sequence length)"
    m: str = ""


class Schedule(_Strict):
    kind: Literal["wsd", "cosine", "linear", "multistep", "unknown"]
    description: str
    warmup: str = ""
    decay_fraction: Number | None = Field(default=None, ge=0, le=1)
    warmup_steps: int | None = Field(default=None, ge=0)
    warmup_fraction: Number | None = Field(default=None, ge=0, le=1)
    final_lr_ratio: Number | None = Field(default=None, ge=0, le=1)
    final_lr: Number | None = Field(default=None, ge=0, description="absolute final LR, when the law fixes it")


class Optimizer(_Strict):
    name: str = "AdamW"
    beta1: Number | None = None
    beta2: Number | None = None
    eps: Number | None = None
    weight_decay: Number | None = None
    note: str = ""


class LawFile(_Strict):
    schema_version: Literal[1, 2]  # 2: calibrated laws with a posterior; 1 still loads
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)
    title: str
    citation: str
    url: str = ""
    architectures: list[Literal["dense", "moe"]] = Field(min_length=1)
    batch_policy: Literal["optimal", "fixed", "any"] = Field(
        description="optimal: each run at its optimal batch; fixed: batch held constant; any: batch is an input"
    )
    notes: str = ""
    conventions: Conventions
    domain: dict[Variable, tuple[Number, Number]] = Field(default_factory=dict)
    domain_note: str = ""
    schedule: Schedule
    optimizer: Optimizer = Field(default_factory=Optimizer)
    lr: Prediction | None = None
    batch: PowerLaw | None = None
    weight_decay: Timescale | None = None
    lr_batch: BatchHinge | None = None
    posterior: Posterior | None = None
    validation: Validation | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    def predictions(self) -> dict[str, PowerLaw | HorizonRatio | BatchHinge | Timescale]:
        found = {"lr": self.lr, "batch": self.batch, "weight_decay": self.weight_decay, "lr_batch": self.lr_batch}
        return {name: pred for name, pred in found.items() if pred is not None}

    @property
    def relative(self) -> bool:
        """True when the LR it gives moves a known LR (needs a reference) rather than predicting one."""
        return self.lr is not None and self.lr.relative

    @property
    def status(self) -> Status:
        return weakest([c.status for p in self.predictions().values() for c in p.coefficients().values()])

    def variables(self) -> set[str]:
        return {v for p in self.predictions().values() for v in p.variables()}

    def domain_distance(self, values: dict[str, float]) -> dict[str, float]:
        """How far each variable lies outside the fitted domain, as a factor ≥ 1 (1: inside)."""
        out = {}
        for var, (low, high) in self.domain.items():
            value = values.get(var)
            if value is None or not math.isfinite(value) or value <= 0:
                continue
            out[var] = value / high if value > high else (low / value if value < low else 1.0)
        return out

    def domain_status(self, values: dict[str, float]) -> list[str]:
        """One message per variable outside the fitted domain, with how far (empty: inside)."""
        out = []
        for var, (low, high) in self.domain.items():
            value = values.get(var)
            if value is None or not math.isfinite(value):
                continue
            if not low <= value <= high:
                # the magnitude matters: 2× out and 600× out are different answers (issue 13)
                above = value > high
                factor = value / high if above else (low / value if value > 0 else math.inf)
                where = f"above the largest {DOMAIN_NOUN[var]}" if above else f"below the smallest {DOMAIN_NOUN[var]}"
                out.append(
                    f"{var}={value:.3g} ({VARIABLE_MEANING[var]}) is {factor:.3g}× {where} {self.id} was fitted on, "
                    f"outside the fitted domain [{low:.3g}, {high:.3g}]: extrapolation"
                )
        return out
