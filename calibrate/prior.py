"""The prior of a prior-anchored calibration: a bundled law's coefficients as a Gaussian over (offset, α, β).

Published laws were fitted over 10²–10³× in N and D; what differs between stacks is mostly the *offset* (a ×2–4
shift of the optimum between codebases, issue 11).  So the fit (``lrpredict.calibrate.fit.fit_anchored``) regresses
ln η* = offset + α·(ln N − ln N_ref) + β·(ln D − ln D_ref) with a Gaussian prior: α, β centred on the law's
exponents with the widths written in its file (``prior_sd``, justified in docs/log.md 2026-11-30 — prior widths),
and a weak prior on the offset at the probes' centre (N_ref, D_ref).  A law may instead give the widths of α+β and
α−β (``prior_sd_sum``, ``prior_sd_difference``): published laws agree along the compute-optimal line and disagree
on the split between N and D, so the prior is correlated (docs/log.md 2026-12-04 — correlated exponent priors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lrpredict.errors import LrpredictError
from lrpredict.laws import LawFile, PowerLaw

# Weak prior on the offset at the probes' centre: 1 sd = ×7.4 in η, wider than the ×2–4 shifts seen between
# codebases (issue 11), so a few probes set it (docs/log.md 2026-11-30).
OFFSET_SD = 2.0
# A law whose coefficient or unit is still open (zhou-2026: N in millions or raw counts) may be off by the unit
# itself, ×21 in η for N^−0.22 (ln 3.1): double the offset's width so the probes, not the guess, set it.
OPEN_OFFSET_SD = 4.0
# A variable the law does not use (e.g. N in Step Law's batch law): exponent 0 with this width.
ABSENT_SD = 0.2
# The power law's own misfit in ln η, added to every cell and to the predictive variance at the target: between the
# Eq.6 residual rms of a free fit on the 15 Step Law dense optima (0.067) and their scatter about Step Law (sd 0.090)
# (docs/log.md 2026-11-30 — anchored calibration).
MISFIT_SD = 0.08
# The prior when --prior is not given.  MoE probes are keyed by *active* N (calibrate/replay.py: within an MoE family
# total N barely varies), so the MoE prior must count active N too: ling-2025 (M counts active experts).  Step Law
# counts total N for MoE; applied to active N its N exponent cost 1.82% max regret on the MoE replay against 0.41%
# for ling-2025 and 0.37% for the free fit (benchmarks/calibrate_extrapolation.py (c), docs/log.md 2026-11-30).
DEFAULT_PRIOR = {"dense": "steplaw-2025", "moe": "ling-2025"}
# The MoE batch prior: a law in D only.  Ling's B_opt (∝ C^0.364, so growing with active N) sat 1.4–8.5× (median
# 3.9×) above the best recorded batch of the held-out Step Law MoE configs, whose best batch does not follow active
# N across activation ratios (docs/log.md 2026-12-01); Power Lines (arXiv 2505.13738) also finds B_opt depends on D
# only.  Step Law's B = 0.58·D^0.571 was fitted on those same MoE sweeps: in-sample there (docs/log.md 2026-12-04).
MOE_BATCH_PRIOR = "steplaw-2025"
# Fewer distinct probe batches than this fit no MoE batch law: the prior's is kept and the fit says so.
MIN_MOE_BATCHES = 3
# A plan saved before the prior was recorded ran under this (the only law with widths then).
LEGACY_PRIOR = "steplaw-2025"
# M ≈ 6·N for a law in C = M·D (DeepSeek's convention, attention FLOPs neglected): the prior is approximate.
FLOPS_PER_PARAM = 6.0


@dataclass(frozen=True)
class Prior:
    """ln y = ln_c + alpha·ln N + beta·ln D (raw counts), with 1-sd widths on the exponents and the offset."""

    law_id: str
    quantity: str
    ln_c: float
    alpha: float
    beta: float
    sd_alpha: float
    sd_beta: float
    sd_offset: float = OFFSET_SD
    batch_policy: str = "optimal"
    note: str = ""
    # what load_law resolves it from: the id of a bundled or user law, else the law file's absolute path (an id
    # read from a file is in no registry: looking it up after the probes ran failed, QA 2026-12-01)
    source: str = ""
    corr_alpha_beta: float = 0.0  # prior correlation of α and β (0: independent, the older files)

    def law(self) -> LawFile:
        from lrpredict.registry import load_law

        return load_law(self.source or self.law_id)

    def ln_value(self, n: float, tokens: float) -> float:
        return self.ln_c + self.alpha * math.log(n) + self.beta * math.log(tokens)

    def mean_at(self, ln_n_ref: float, ln_d_ref: float) -> tuple[float, float, float]:
        """(offset at the reference, α, β)."""
        return (self.ln_c + self.alpha * ln_n_ref + self.beta * ln_d_ref, self.alpha, self.beta)

    def sd(self) -> tuple[float, float, float]:
        return (self.sd_offset, self.sd_alpha, self.sd_beta)

    @property
    def cov_alpha_beta(self) -> float:
        return self.corr_alpha_beta * self.sd_alpha * self.sd_beta

    def covariance(self) -> np.ndarray:
        """3×3 prior covariance over (offset, α, β); the offset independent of the exponents."""
        cov = np.diag(np.square(self.sd()))
        cov[1, 2] = cov[2, 1] = self.cov_alpha_beta
        return cov

    def widened(self, scale: float) -> Prior:
        """The same prior with its exponent covariance multiplied by ``scale`` (prior–data conflict)."""
        root = math.sqrt(scale)
        return replace(self, sd_alpha=self.sd_alpha * root, sd_beta=self.sd_beta * root)


def sum_difference_covariance(sd_sum: float, sd_difference: float) -> tuple[float, float]:
    """(sd of α = sd of β, cov(α, β)) for independent α+β ~ sd_sum and α−β ~ sd_difference: α = (s + d)/2."""
    var = (sd_sum**2 + sd_difference**2) / 4
    return math.sqrt(var), (sd_sum**2 - sd_difference**2) / 4


def prior_from_law(law: LawFile, quantity: str = "lr", source: str = "") -> Prior:
    """The prior a law gives for ``quantity`` (lr or batch): needs a power law in N, D or C with ``prior_sd`` on
    each exponent, or ``prior_sd_sum`` and ``prior_sd_difference`` (a correlated prior)."""
    pred = law.lr if quantity == "lr" else law.batch
    usable = isinstance(pred, PowerLaw) and set(pred.exponents) <= {"N", "D", "C"}
    correlated = usable and pred.prior_sd_sum is not None  # type: ignore[union-attr]
    if not usable or (not correlated and any(e.prior_sd is None for e in pred.exponents.values())):  # type: ignore[union-attr]
        raise LrpredictError("prior", law.id, f"a law with prior widths on its {quantity} exponents, or 'none'")
    assert isinstance(pred, PowerLaw)
    ln_c = math.log(pred.coefficient.value)
    alpha = beta = 0.0
    sd = {"N": ABSENT_SD, "D": ABSENT_SD}
    notes = []
    for var, exponent in pred.exponents.items():
        scale = pred.scales[var].value if var in pred.scales else 1.0
        ln_c -= exponent.value * math.log(scale)  # (x/scale)^e = x^e · scale^(−e)
        if var == "C":  # C = M·D ≈ 6·N·D
            ln_c += exponent.value * math.log(FLOPS_PER_PARAM)
            alpha += exponent.value
            beta += exponent.value
            sd = {"N": exponent.prior_sd, "D": exponent.prior_sd}  # type: ignore[dict-item]
            notes.append("C = M·D read as 6·N·D")
        elif var == "N":
            alpha, sd["N"] = exponent.value, exponent.prior_sd  # type: ignore[assignment]
        else:
            beta, sd["D"] = exponent.value, exponent.prior_sd  # type: ignore[assignment]
    unsure = [pred.coefficient, *pred.scales.values()]
    open_units = any(c.status == "open" for c in unsure)
    if open_units:
        notes.append("coefficient or unit open: weak prior on the offset")
    cov = 0.0
    if correlated:
        assert pred.prior_sd_sum is not None and pred.prior_sd_difference is not None
        width, cov = sum_difference_covariance(pred.prior_sd_sum, pred.prior_sd_difference)
        sd = {"N": width, "D": width}
        notes.append(f"correlated prior: sd {pred.prior_sd_sum:g} on α+β, {pred.prior_sd_difference:g} on α−β")
    return Prior(
        law_id=law.id,
        quantity=quantity,
        ln_c=ln_c,
        alpha=alpha,
        beta=beta,
        sd_alpha=sd["N"],
        sd_beta=sd["D"],
        sd_offset=OPEN_OFFSET_SD if open_units else OFFSET_SD,
        batch_policy=law.batch_policy,
        note="; ".join(notes),
        source=source or law.id,
        corr_alpha_beta=cov / (sd["N"] * sd["D"]),
    )


def resolve_prior(spec: str | LawFile | None, arch: str = "dense") -> Prior | None:
    """``--prior``: a law id, 'none' (the free fit) or None/'default' (``DEFAULT_PRIOR`` for the arch)."""
    if isinstance(spec, LawFile):
        return prior_from_law(spec, source=spec.id)
    if spec == "none":
        return None
    from lrpredict.registry import load_law, names_a_file

    if spec in (None, "default"):
        return prior_from_law(load_law(DEFAULT_PRIOR[arch]))
    if not str(spec).strip():  # load_law's message names its Python-only form (a LawFile)
        raise LrpredictError("prior", spec, "'none', 'default', a law id or the path of a law file")
    try:
        law = load_law(spec)
    except LrpredictError as exc:  # load_law names --law; the user typed --prior
        if exc.field not in ("law", "path"):
            raise
        raise LrpredictError("prior", spec, f"'none', 'default' or {exc.allowed}") from None
    text = str(spec)
    return prior_from_law(law, source=str(Path(text).resolve()) if names_a_file(text) else text)


def batch_prior(prior: Prior | None, arch: str = "dense") -> Prior | None:
    """The prior law's optimal-batch law as a prior (None when it has none or no widths).  MoE: a batch law that
    grows with N (or C) is replaced by MOE_BATCH_PRIOR's, which depends on D only."""
    if prior is None:
        return None
    law = prior.law()
    if law.batch is None:
        return None
    source = prior.source  # a prior read from a file is found again by its path, not its id
    if arch == "moe" and set(law.batch.exponents) != {"D"}:
        from lrpredict.registry import load_law

        law, source = load_law(MOE_BATCH_PRIOR), MOE_BATCH_PRIOR
    try:
        return prior_from_law(law, "batch", source=source)
    except LrpredictError:
        return None


def ln_batch_factor(
    prior: Prior, n: float, tokens: float, batch: float, arch: str = "dense", *, optimal: float | None = None
) -> float:
    """ln of lrpredict's conditional batch factor (B/B_opt)^s at (N, D): moves an optimum measured at the probes'
    batch B to the optimal batch (``optimal``, else the prior law's; divide by it), so a fixed-batch probe can meet
    a batch-optimal law."""
    from lrpredict.registry import DEFAULT_LAW, conditional_batch_law_id, load_law

    if optimal is None:
        law = prior.law()
        batch_law = law.batch if law.batch is not None else load_law(DEFAULT_LAW["dense"]).batch
        assert batch_law is not None
        optimal = batch_law.evaluate({"N": n, "D": tokens, "C": FLOPS_PER_PARAM * n * tokens})
    hinge = load_law(conditional_batch_law_id(arch)).lr_batch
    assert hinge is not None
    return math.log(hinge.factor(batch, optimal))
