import math
import random

import pytest

pytest.importorskip("scipy")

import lrpredict
from lrpredict.calibrate.fit import Observation, Optimum, fit_anchored, fit_calibration
from lrpredict.calibrate.lawfile import calibrated_law, install_calibrated
from lrpredict.calibrate.prior import prior_from_law, resolve_prior
from lrpredict.config import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.registry import load_law
from lrpredict.suggest import suggest

STEPLAW = load_law("steplaw-2025")
PRIOR = resolve_prior("default")


def world(n: float, d: float, shift: float = 3.0, d_alpha: float = 0.05, d_beta: float = -0.05) -> float:
    """ln η* of a stack whose optimum sits ×shift off Step Law, with exponents a little off too."""
    return math.log(shift) + PRIOR.ln_c + (PRIOR.alpha + d_alpha) * math.log(n) + (PRIOR.beta + d_beta) * math.log(d)


def probes(sizes, horizons=(10.0, 20.0, 40.0), noise=0.002, seed=0, lrs=7, truth=world) -> list[Observation]:
    rng = random.Random(seed)
    out = []
    for n in sizes:
        for tpp in horizons:
            d = tpp * n
            batch = STEPLAW.batch.evaluate({"D": d})  # the prior's optimal batch: no batch move
            mu = truth(n, d)
            for k in range(lrs):
                x = mu + (k - lrs // 2 + 0.3) * math.log(2.0)
                loss = 3.0 * (1 + 0.0099 * (x - mu) ** 2) + rng.gauss(0.0, noise)
                out.append(Observation(n, d, math.exp(x), loss, batch))
    return out


def test_prior_from_law_reads_exponents_and_widths() -> None:
    prior = prior_from_law(STEPLAW)
    assert (prior.alpha, prior.beta) == (-0.713, 0.307)
    # issue 20: a correlated prior, α+β ±0.1 and α−β ±0.4 (was ±0.1 on each, independent)
    assert prior.sd_alpha == prior.sd_beta == pytest.approx(math.sqrt(0.1**2 + 0.4**2) / 2)
    assert prior.cov_alpha_beta == pytest.approx((0.1**2 - 0.4**2) / 4)
    assert prior.ln_value(1e9, 1e11) == pytest.approx(math.log(STEPLAW.lr.evaluate({"N": 1e9, "D": 1e11})))
    with pytest.raises(LrpredictError, match="prior widths"):
        prior_from_law(load_law("porian-2024"))  # no prior_sd written: it cannot anchor a calibration
    assert resolve_prior("none") is None


def test_anchored_one_size_keeps_the_prior_exponent_never_zero() -> None:
    fit = fit_calibration(probes([4e7]), bootstrap=0)
    law = fit.lr_law
    # nothing identifies α: the prior's, not 0 — conditioned on the measured β through the prior's correlation
    # (issue 20), E[α | β] = α0 + cov(α, β)/var(β)·(β − β0)
    assert law.alpha == pytest.approx(-0.713 + PRIOR.cov_alpha_beta / PRIOR.sd_beta**2 * (law.beta - 0.307), abs=1e-6)
    assert law.posterior.set_by["N"] == "prior" and law.posterior.set_by["D"] == "probes"
    assert any("exponent of N not identified" in w for w in fit.warnings)
    # the offset is learned: at the probe size the fit lands on this stack's optimum, ×3 off the prior
    assert math.log(law.lr(4e7, 8e8)) == pytest.approx(world(4e7, 8e8), abs=0.05)
    free = fit_calibration(probes([4e7]), bootstrap=0, prior=None).lr_law
    assert free.alpha == 0.0  # today's free fit: what issue 11 measured


def test_anchored_interval_grows_with_extrapolation_and_covers_truth() -> None:
    law = fit_calibration(probes([2e7, 4e7, 8e7]), bootstrap=0).lr_law
    near, far = law.ln_sd(8e7, 1.6e9), law.ln_sd(8e9, 1.6e11)
    assert near < far
    assert abs(math.log(law.lr(8e9, 1.6e11)) - world(8e9, 1.6e11)) < 1.645 * far
    assert law.posterior.set_by == {"N": "probes", "D": "probes"}


def test_fit_anchored_weighs_cells_by_their_standard_error() -> None:
    rows = [Optimum(1e8, 2e9, -7.0, 0.01), Optimum(1e8, 2e9, -5.0, 1.0)]
    fit = fit_anchored(rows, PRIOR, misfit_sd=0.0)
    assert math.log(fit.lr(1e8, 2e9)) == pytest.approx(-7.0, abs=0.05)


def test_unbracketed_cell_enters_as_a_bound_not_dropped() -> None:
    obs = probes([4e7], horizons=(20.0,))
    edge = [o for o in obs if o.lr < math.exp(world(4e7, 8e8))]  # only LRs below the optimum: best at the top edge
    fit = fit_calibration(edge, bootstrap=0)
    assert fit.optima and fit.optima[0].bound == "high"
    # issue 20: a bound at the midpoint of the edge LR and its neighbour, entered as an inequality (not a point)
    top, below = sorted(math.log(o.lr) for o in edge)[-1:-3:-1]
    assert fit.optima[0].ln_y == pytest.approx((top + below) / 2)
    assert any("one-sided bound" in w for w in fit.warnings)
    assert fit.lr_law.posterior.unbracketed_cells == 1 and fit.lr_law.posterior.censored_cells == 1
    assert math.log(fit.lr_law.lr(4e7, 8e8)) > fit.optima[0].ln_y  # the posterior respects the inequality
    free = fit_calibration(edge, bootstrap=0, prior=None)
    assert free.lr_law is None and any("left out of the free fit" in w for w in free.warnings)


def test_law_file_carries_posterior_and_who_set_each_coefficient(tmp_path) -> None:
    fit = fit_calibration(probes([4e7]), bootstrap=0)
    text = calibrated_law(
        fit,
        name="anchored-one",
        arch="dense",
        schedule={"kind": "wsd", "description": "t"},
        provenance={"backend": "test"},
    )
    law = install_calibrated(text, "anchored-one")
    assert law.schema_version == 2 and law.posterior.prior == "steplaw-2025"
    # issue 19: a calibrated coefficient is "prior"/"fitted" with its basis, never a published law's status
    assert law.lr.exponents["N"].value == pytest.approx(fit.lr_law.alpha) and law.lr.exponents["N"].status == "prior"
    assert law.lr.exponents["N"].basis.startswith("prior: steplaw-2025")
    assert law.lr.coefficient.status == "fitted" and law.lr.coefficient.basis.startswith("fitted: 3 cells, ×")
    assert law.status == "fitted" and law.batch.coefficient.status == "prior"
    assert "set by the prior" in law.lr.exponents["N"].note and "set by the probes" in law.lr.coefficient.note
    assert law.batch is not None and law.batch_policy == "optimal"  # the prior's B_opt the optima were moved to
    assert law.provenance["batch_law_from"] == "steplaw-2025"  # labelled as copied, not as the calibration's own
    assert "steplaw-2025's copied" in suggest(ModelConfig(params=4e8, tokens=8e9), law).batch_source
    assert law.posterior.ln_sd(4e7, 8e8) < law.posterior.ln_sd(2e9, 4e10)
    assert load_law("steplaw-2025").schema_version == 1  # old files still load


def test_suggest_at_50x_the_probe_carries_the_posterior_interval() -> None:
    fit = fit_calibration(probes([4e7]), bootstrap=0)
    text = calibrated_law(
        fit, name="one-size", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={"backend": "test"}
    )
    law = install_calibrated(text, "one-size")
    n = 50 * 4e7
    s = suggest(ModelConfig(params=n, tokens=20 * n), law)
    span = s.lr_range.high / s.lr_range.low
    band = math.exp(2 * math.sqrt(0.0025 / 0.0099))
    assert span > band * 1.5  # wider than the Eq.2 band alone
    assert "posterior predictive 90% interval" in s.lr_range.source
    assert any("would narrow it most" in w and "larger model size" in w for w in s.warnings)
    # the advice points past the probes' largest size (the domain), not their centre (QA 2026-12-01)
    advice = next(w for w in s.warnings if "would narrow it most" in w)
    assert f"N above {law.domain['N'][1]:.3g}" in advice
    # the text output says what the range is: not "expected within 0.25% of the best loss" alone
    assert "90% predictive interval of the optimum from one-size's calibration" in str(s)
    small = suggest(ModelConfig(params=n, tokens=20 * n, batch_tokens=131072), law)
    large = suggest(ModelConfig(params=n, tokens=20 * n, batch_tokens=4e6), law)
    assert small.lr < large.lr  # the conditional batch law moves it


def test_fixed_batch_calibrated_law_moves_from_its_probes_batch(tmp_path) -> None:
    fixed = [Observation(o.n, o.tokens, o.lr, o.loss, 2.0**20) for o in probes([2e7, 4e7])]
    fit = fit_calibration(fixed, bootstrap=0, prior=None)
    text = calibrated_law(
        fit,
        name="free-fixed",
        arch="dense",
        schedule={"kind": "wsd", "description": "t"},
        provenance={"backend": "test"},
    )
    law = install_calibrated(text, "free-fixed")
    assert law.batch_policy == "fixed" and law.posterior is None
    config = {"params": 1e8, "tokens": 2e9}
    small = suggest(ModelConfig(**config, batch_tokens=131072), law)
    large = suggest(ModelConfig(**config, batch_tokens=4e6), law)
    assert small.lr != large.lr
    zhou = [suggest(ModelConfig(**config, batch_tokens=b), "zhou-2026") for b in (131072, 4e6)]
    assert any("does not record" in w for w in zhou[0].warnings)


def test_default_prior_is_the_arch_default_law() -> None:
    assert PRIOR.law_id == lrpredict.registry.DEFAULT_LAW["dense"]


@pytest.mark.parametrize("law_id", ["steplaw-2025", "deepseek-llm-2024", "ling-2025", "zhou-2026"])
def test_every_bundled_law_with_widths_anchors_a_finite_fit(law_id: str) -> None:
    """Issue 11: `--prior ID` has bundled alternatives; a law in C reads C = 6·N·D, so α = β = the C exponent."""
    law = load_law(law_id)
    prior = prior_from_law(law)
    if "C" in law.lr.exponents:
        assert prior.alpha == prior.beta == law.lr.exponents["C"].value
        width = law.lr.exponents["C"].prior_sd or math.hypot(law.lr.prior_sd_sum, law.lr.prior_sd_difference) / 2
        assert prior.sd_alpha == prior.sd_beta == pytest.approx(width)
    fitted = fit_calibration(probes([2e7, 4e7]), bootstrap=0, prior=law_id).lr_law
    assert fitted.posterior.prior == law_id
    assert all(math.isfinite(v) for v in (fitted.alpha, fitted.beta, math.log(fitted.lr(7e9, 2e12))))
    assert math.isfinite(fitted.ln_sd(7e9, 2e12)) and fitted.ln_sd(7e9, 2e12) > 0
    # one size: N is not identified and keeps this prior's exponent (given β, through a correlated prior), never 0
    one = fit_calibration(probes([4e7]), bootstrap=0, prior=law_id).lr_law
    expected = prior.alpha + prior.cov_alpha_beta / prior.sd_beta**2 * (one.beta - prior.beta)
    assert one.alpha == pytest.approx(expected, abs=1e-6) and one.alpha != 0.0


def test_prior_with_open_units_gets_a_weak_offset() -> None:
    assert prior_from_law(load_law("zhou-2026")).sd_offset > prior_from_law(STEPLAW).sd_offset


def test_default_moe_prior_counts_active_n_like_the_moe_probes() -> None:
    """Issue 11: MoE probes are keyed by active N; Step Law counts total N for MoE (1.82% max regret on replay)."""
    moe = resolve_prior("default", "moe")
    assert load_law(moe.law_id).conventions.n == "active"
    fit = fit_calibration(probes([4e7, 8e7]), bootstrap=0, arch="moe")
    assert fit.lr_law.posterior.prior == moe.law_id
    assert not any("counts total N" in w for w in fit.warnings)
    explicit = fit_calibration(probes([4e7, 8e7]), bootstrap=0, arch="moe", prior="steplaw-2025")
    assert any("counts total N" in w for w in explicit.warnings)


def test_calibrated_law_under_a_compute_prior_needs_no_model_shape(tmp_path) -> None:
    """A prior in C (deepseek-llm-2024) hands its B_opt to the calibrated law in N and D (C read as 6·N·D, like the
    prior).  (Was ling-2025 under MoE; since issue 20 an MoE calibration takes a D-only batch prior instead.)"""
    fit = fit_calibration(probes([4e7]), bootstrap=0, prior="deepseek-llm-2024")
    text = calibrated_law(
        fit, name="anchored-c", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={"b": "t"}
    )
    law = install_calibrated(text, "anchored-c")
    deepseek = load_law("deepseek-llm-2024").batch
    assert set(law.batch.exponents) == {"N", "D"}
    n, d = 1.2e9, 1e11
    assert law.batch.evaluate({"N": n, "D": d}) == pytest.approx(deepseek.evaluate({"C": 6 * n * d}), rel=1e-9)
    s = suggest(ModelConfig(params=n, tokens=d), law)
    assert math.isfinite(s.lr) and s.lr > 0


def test_moe_batch_prior_is_a_d_only_law_not_lings(tmp_path) -> None:
    """Issue 20: Ling's B_opt grows with active N and sat ×1.4–8.5 above the MoE sweep's best batches; the MoE batch
    prior is Step Law's B = 0.58·D^0.571, and with fewer than 3 probe batches no MoE batch law is fitted."""
    fit = fit_calibration(probes([4e7]), bootstrap=0, arch="moe")
    assert fit.lr_law.posterior.prior == "ling-2025" and fit.batch_prior.law_id == "steplaw-2025"
    assert any("an MoE batch law needs ≥ 3" in w for w in fit.warnings)
    text = calibrated_law(
        fit, name="anchored-moe", arch="moe", schedule={"kind": "wsd", "description": "t"}, provenance={"b": "t"}
    )
    law = install_calibrated(text, "anchored-moe")
    assert set(law.batch.exponents) == {"D"} and law.provenance["batch_law_from"] == "steplaw-2025"
    d = 1e11
    assert law.batch.evaluate({"N": 1.2e9, "D": d}) == pytest.approx(STEPLAW.batch.evaluate({"D": d}), rel=1e-9)
    s = suggest(ModelConfig(params=2e9, active_params=1.2e9, arch="moe", tokens=d), law)
    assert math.isfinite(s.lr) and s.lr > 0


def test_moe_batch_law_not_fitted_from_two_batches() -> None:
    # two batches per cell, the smaller clearly better (an edge): for MoE the batch law stays the prior's
    obs = []
    for o in probes([2e7, 4e7], horizons=(10.0, 40.0)):
        obs.append(Observation(o.n, o.tokens, o.lr, o.loss, o.batch_tokens / 4))
        obs.append(Observation(o.n, o.tokens, o.lr, o.loss + 0.02, o.batch_tokens))
    fit = fit_calibration(obs, bootstrap=0, arch="moe")
    assert fit.batch_law.n_cells == 0  # prior_only: nothing fitted
    assert any("2 probe batches per (N, D) cell: an MoE batch law needs ≥ 3" in w for w in fit.warnings)


def test_unbracketed_batch_is_listed_with_its_direction_and_the_disagreement() -> None:
    # two batches per cell, the smaller one clearly better: B_opt lies below their midpoint, while the prior's batch
    # law (Step Law) puts it at the larger one; the calibration must say so, not drop the cell in silence
    obs = []
    for o in probes([2e7], horizons=(10.0, 40.0)):
        obs.append(Observation(o.n, o.tokens, o.lr, o.loss, o.batch_tokens / 4))
        obs.append(Observation(o.n, o.tokens, o.lr, o.loss + 0.02, o.batch_tokens))  # at the prior's B_opt
    fit = fit_calibration(obs, prior="default", bootstrap=0)
    listed = [w for w in fit.warnings if w.startswith("optimal batch unbracketed")]
    assert len(listed) == 2
    assert all("B_opt lies below" in w and "the probes disagree" in w for w in listed)
    # listed, not fitted: the batch law stays the prior's (docs/log.md 2026-12-01)
    d = 20 * 2e7
    assert fit.batch_law.lr(2e7, d) == pytest.approx(STEPLAW.batch.evaluate({"D": d}), rel=1e-6)


def test_batch_edge_within_the_noise_is_not_listed() -> None:
    obs = []
    for o in probes([2e7], horizons=(10.0, 40.0), noise=0.0):
        obs.append(Observation(o.n, o.tokens, o.lr, o.loss, o.batch_tokens / 2))
        obs.append(Observation(o.n, o.tokens, o.lr, o.loss + 1e-5, o.batch_tokens))
    fit = fit_calibration(obs, prior="default", bootstrap=0)
    assert not [w for w in fit.warnings if w.startswith("optimal batch unbracketed")]


def test_fixed_batch_optima_move_to_the_calibrated_optimal_batch() -> None:
    # one horizon probes 3 batches around a vertex at a quarter of the prior's B_opt (a measured B_opt, so the
    # batch law is calibrated); another probes one batch only: its optimum must be moved to the *calibrated*
    # B_opt, not to the prior's
    from lrpredict.calibrate.prior import ln_batch_factor

    obs = []
    for o in probes([2e7, 4e7], horizons=(10.0,)):
        vertex = o.batch_tokens / 4
        for k in (-1, 0, 1):
            b = vertex * 2.0**k
            obs.append(Observation(o.n, o.tokens, o.lr, o.loss + 0.01 * math.log(b / vertex) ** 2, b))
    single = probes([2e7], horizons=(40.0,))
    obs += single
    fit = fit_calibration(obs, prior="default", bootstrap=0)
    assert fit.batch_law is not None and fit.batch_law.n_cells == 2
    row = next(o for o in fit.optima if o.tokens == single[0].tokens)
    measured = fit_calibration(single, prior="default", bootstrap=0).optima[0]  # moved to the prior's B_opt
    n, d, b = single[0].n, single[0].tokens, single[0].batch_tokens
    raw = measured.ln_y + ln_batch_factor(PRIOR, n, d, b)
    calibrated = ln_batch_factor(PRIOR, n, d, b, optimal=fit.batch_law.lr(n, d))
    assert row.ln_y == pytest.approx(raw - calibrated, abs=1e-9)
    assert abs(calibrated - ln_batch_factor(PRIOR, n, d, b)) > 0.05  # the two moves differ: the test can fail


def test_every_cell_unbracketed_warns_in_the_fit_and_in_suggest() -> None:
    obs = [o for o in probes([4e7], horizons=(10.0, 40.0)) if o.lr < math.exp(world(o.n, o.tokens))]
    fit = fit_calibration(obs, bootstrap=0)
    assert all(o.bound == "high" for o in fit.optima) and len(fit.optima) == 2
    assert any(w.startswith("no bracketed optimum in any of the 2") for w in fit.warnings)
    text = calibrated_law(
        fit, name="edge-only", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={"backend": "t"}
    )
    law = install_calibrated(text, "edge-only")
    assert law.posterior.cells == 2 and law.posterior.unbracketed_cells == 2
    s = suggest(ModelConfig(params=4e9, tokens=8e10), law)
    assert any("2 of 2 calibration cells had their optimum at the LR grid's edge" in w for w in s.warnings)
    # a fully bracketed calibration does not warn
    bracketed = fit_calibration(probes([4e7], horizons=(10.0, 40.0)), bootstrap=0)
    assert not any(w.startswith("no bracketed optimum") for w in bracketed.warnings)
    law = install_calibrated(
        calibrated_law(
            bracketed, name="inside", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={}
        ),
        "inside",
    )
    assert not any("grid's edge" in w for w in suggest(ModelConfig(params=4e9, tokens=8e10), law).warnings)


def one_batch_probes(batch: float) -> list[Observation]:
    """The probes of ``probes`` run at one batch, as the CPU plan runs them (no batch axis)."""
    return [Observation(o.n, o.tokens, o.lr, o.loss, batch) for o in probes([2e7, 4e7])]


def test_one_batch_probes_keep_their_optima_at_the_probes_batch() -> None:
    # issue 19, run C: moving one-batch optima to the prior's B_opt and back at the target cost ×0.38 in LR where
    # the measured optimum sat at the law before the move (docs/benchmarks.md, batch reference)
    from lrpredict.calibrate.prior import ln_batch_factor

    obs = one_batch_probes(2.0**14)
    kept = fit_calibration(obs, prior="default", bootstrap=0)
    moved = fit_calibration(obs, prior="default", bootstrap=0, batch_reference="optimal")
    posterior = kept.lr_law.posterior
    assert posterior.probe_batch_policy == "fixed" and posterior.probe_batch_tokens == 2.0**14
    assert moved.lr_law.posterior.probe_batch_policy == "optimal"
    for k, m in zip(kept.optima, moved.optima, strict=True):
        shift = ln_batch_factor(PRIOR, k.n, k.tokens, 2.0**14)
        assert m.ln_y == pytest.approx(k.ln_y - shift, abs=1e-9) and abs(shift) > 0.05  # the two differ
    assert any("the optima stay at the probes' batch 1.638e+04 tokens" in w for w in kept.warnings)


def test_one_batch_law_holds_at_the_probes_batch_and_moves_to_the_optimal_one() -> None:
    fit = fit_calibration(one_batch_probes(2.0**14), prior="default", bootstrap=0)
    text = calibrated_law(
        fit, name="one-batch", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={"backend": "t"}
    )
    law = install_calibrated(text, "one-batch")
    assert law.batch_policy == "fixed" and law.provenance["probe_batch_tokens"] == 2.0**14
    n, d = 4e8, 8e9
    at_probes = suggest(ModelConfig(params=n, tokens=d, batch_tokens=2.0**14), law)
    assert at_probes.lr == pytest.approx(fit.lr_law.lr(n, d), rel=1e-9)  # the probes' batch: no batch move
    unasked = suggest(ModelConfig(params=n, tokens=d), law)
    hinge = load_law("lrpredict-batch-dense-2026").lr_batch
    expected = fit.lr_law.lr(n, d) / hinge.factor(2.0**14, unasked.optimal_batch_tokens)
    assert unasked.lr == pytest.approx(expected, rel=1e-9) and unasked.lr_at_optimal_batch == unasked.lr
    assert (
        abs(math.log(unasked.lr / at_probes.lr)) > 0.05 and "moved to it from one-batch's batch" in unasked.batch_source
    )


def test_calibrate_last_line_names_the_batch_its_target_lr_is_for(capsys) -> None:
    # a fixed-batch law's LR at the optimal batch is not its LR at the probes' batch: the line says which it is
    from types import SimpleNamespace

    from lrpredict.calibrate.target_plan import Target
    from lrpredict.cli.calibrate import _verdict

    fit = fit_calibration(one_batch_probes(2.0**14), prior="default", bootstrap=0)
    text = calibrated_law(
        fit, name="one-batch-v", arch="dense", schedule={"kind": "wsd", "description": "t"}, provenance={"backend": "t"}
    )
    outcome = SimpleNamespace(validation=None, law=install_calibrated(text, "one-batch-v"))
    _verdict(outcome, Target(params=4e8, tokens=8e9))
    _verdict(outcome, Target(params=4e8, tokens=8e9, batch_tokens=2.0**14))
    optimal, given = [line for line in capsys.readouterr().out.splitlines() if line.startswith("at your target")]
    assert "at batch 16,384 tokens (your --target-batch-tokens)" in given
    assert "optimal batch" in optimal and "at batch 16,384 tokens" not in optimal
