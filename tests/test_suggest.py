import math

import pytest

from lrpredict import ModelConfig, compare, load_law, suggest
from lrpredict.errors import LrpredictError, MissingInputError

MOE = dict(arch="moe", params="12B", active_params="1.3B", tokens="500B")
DENSE_IN_DOMAIN = dict(params=4e8, tokens=2e10)


def test_suggest_steplaw_matches_formula() -> None:
    s = suggest(ModelConfig(**DENSE_IN_DOMAIN), "steplaw-2025")
    assert s.lr == pytest.approx(1.79 * 4e8**-0.713 * 2e10**0.307)
    assert s.batch_tokens == pytest.approx(0.58 * 2e10**0.571)
    assert s.domain == "inside" and s.status == "confirmed" and s.law == "steplaw-2025"
    assert s.lr_range.low < s.lr < s.lr_range.high


def test_suggest_default_law_is_chosen_per_arch() -> None:
    # Step Law near its sweeps, a compute law beyond (docs/log.md 2026-11-30 — production defaults)
    assert suggest(ModelConfig(**DENSE_IN_DOMAIN)).law == "steplaw-2025"
    assert suggest(ModelConfig(params="7B", tokens="2T")).law == "deepseek-llm-2024"
    assert suggest(ModelConfig(**MOE)).law == "ling-2025"
    assert suggest(ModelConfig(arch="moe", params="2.15B", active_params="0.6B", tokens="4B")).law == "steplaw-2025"


def test_suggest_warns_on_extrapolation() -> None:
    s = suggest(ModelConfig(params="70B", tokens="15T"), "steplaw-2025")
    assert s.domain == "extrapolated"
    assert any("N=7e+10" in w and "outside the fitted domain" in w for w in s.warnings)
    assert any("D=1.5e+13" in w for w in s.warnings)


def test_suggest_warns_when_dense_law_used_for_moe() -> None:
    s = suggest(ModelConfig(**MOE, n_layers=24, d_model=2048, seq_len=4096), "deepseek-llm-2024")
    assert any("fitted on dense models only; this run is moe" in w for w in s.warnings)


def test_suggest_moves_lr_to_your_batch() -> None:
    optimal = suggest(ModelConfig(**DENSE_IN_DOMAIN), "steplaw-2025")
    small = suggest(ModelConfig(**DENSE_IN_DOMAIN, batch_tokens=optimal.optimal_batch_tokens / 4), "steplaw-2025")
    assert small.batch_tokens == optimal.optimal_batch_tokens / 4
    assert small.lr_at_optimal_batch == optimal.lr
    s_below = load_law("lrpredict-batch-dense-2026").lr_batch.s_below.value
    assert 0.5 < s_below < 0.9  # the LR falls with the batch below B_opt, as the recorded grids show
    assert small.lr == pytest.approx(optimal.lr * 0.25**s_below)
    assert "lrpredict-batch-dense-2026" in small.batch_source
    at_optimum = suggest(ModelConfig(**DENSE_IN_DOMAIN, batch_tokens=optimal.optimal_batch_tokens), "steplaw-2025")
    assert at_optimum.lr == pytest.approx(optimal.lr)


def test_suggest_warns_when_batch_far_from_optimal() -> None:
    s = suggest(ModelConfig(**DENSE_IN_DOMAIN, batch_tokens="8K"), "steplaw-2025")
    assert any("expect a higher loss" in w for w in s.warnings)
    assert any("lrpredict-batch-dense-2026 was fitted on ratios" in w for w in s.warnings)


def test_suggest_zhou_uses_active_params_in_millions_and_flags_open_units() -> None:
    s = suggest(ModelConfig(**MOE), "zhou-2026")
    assert s.lr == pytest.approx(38.4588 * 1300**-0.2219 * 5e11**-0.3509)
    assert 5e-4 < s.lr < 7e-4  # the evidence for the unit reading, ../shared/reference/laws.md
    assert s.status == "open"
    assert any("OPEN" in w and "unit of N" in w for w in s.warnings)
    assert s.batch_source.startswith("steplaw-2025")  # Zhou gives no batch: labelled fallback


def test_suggest_zhou_uses_your_batch_when_given() -> None:
    s = suggest(ModelConfig(**MOE, batch_tokens="4M"), "zhou-2026")
    assert s.batch_tokens == 4e6 and "fixed batch" in s.batch_source


def test_suggest_compute_law_without_shape_approximates_m_and_says_so() -> None:
    # issue 20: an explicit compute law takes M ≈ 6·N_active like the default, with the warning (it refused before)
    s = suggest(ModelConfig(**DENSE_IN_DOMAIN), "deepseek-llm-2024")
    assert s.inputs["M"] == 6 * 4e8 and any("M approximated as 6·N_active" in w for w in s.warnings)
    with pytest.raises(MissingInputError, match="give active_params"):
        suggest(ModelConfig(arch="moe", params=1e10, tokens=1e11), "ling-2025")


def test_suggest_compute_law_uses_deepseek_m() -> None:
    config = ModelConfig(params=1e9, tokens=1e11, n_layers=24, d_model=2048, seq_len=4096)
    s = suggest(config, "deepseek-llm-2024")
    c = config.flops_per_token() * 1e11
    assert s.inputs["C"] == c
    assert s.lr == pytest.approx(0.3118 * c**-0.125)
    assert s.weight_decay_law == "powerlines-2025"


def test_suggest_ling_needs_active_params() -> None:
    with pytest.raises(MissingInputError, match="active_params"):
        suggest(ModelConfig(arch="moe", params=1e10, tokens=1e11, n_layers=24, d_model=2048, seq_len=4096), "ling-2025")


def test_suggest_relative_law_moves_reference_lr() -> None:
    config = ModelConfig(params=1e9, tokens=8e10)
    s = suggest(config, "bjorck-2024", reference_lr=1e-3, reference_tokens=2e10)
    assert s.lr == pytest.approx(1e-3 * 4**-0.32)
    assert suggest(config, "bjorck-2024", reference_lr=1e-3, reference_tokens=8e10).lr == pytest.approx(1e-3)


def test_suggest_relative_law_without_reference_says_what_to_give() -> None:
    with pytest.raises(MissingInputError, match="reference_lr and reference_tokens"):
        suggest(ModelConfig(params=1e9, tokens=8e10), "bjorck-2024")


def test_suggest_weight_decay_follows_timescale_law() -> None:
    config = ModelConfig(**DENSE_IN_DOMAIN)
    s = suggest(config, "steplaw-2025")
    tau = 1.084 * (config.tokens / config.params) ** -0.527
    assert s.weight_decay_law == "powerlines-2025"
    assert s.weight_decay == pytest.approx(s.batch_tokens / (s.lr * tau * config.tokens))
    assert s.weight_decay_groups == {"matrices": s.weight_decay, "embeddings": 0.0, "norms_and_biases": 0.0}


def test_suggest_weight_decay_grows_as_batch_grows() -> None:
    """Power Lines: optimal λ ∝ B at fixed N, D (with the LR barely moving above B_opt)."""
    small = suggest(ModelConfig(**DENSE_IN_DOMAIN, batch_tokens="512K"))
    large = suggest(ModelConfig(**DENSE_IN_DOMAIN, batch_tokens="2M"))
    assert large.weight_decay > 3 * small.weight_decay


def test_suggest_wang_aitchison_law_is_open_and_anchored() -> None:
    s = suggest(ModelConfig(params=1e9, tokens=2e10), "steplaw-2025", weight_decay_law="wang-aitchison-2024")
    assert s.weight_decay == pytest.approx(0.1, rel=2e-3)  # its anchor run
    assert any("wang-aitchison-2024" in w and "OPEN" in w for w in s.warnings)


def test_suggest_schedule_recipe_adds_up() -> None:
    s = suggest(ModelConfig(params=1e9, tokens=2e10, n_layers=24, d_model=2048, seq_len=4096), "deepseek-llm-2024")
    r = s.recommended_schedule
    assert r.warmup_steps + r.stable_steps + r.decay_steps == r.total_steps == math.ceil(2e10 / s.batch_tokens)
    assert r.warmup_steps == min(2000, r.total_steps // 10) and r.final_lr_ratio == 0.1
    assert "deepseek-llm-2024" in r.sources["warmup"]


def test_suggest_warns_on_schedule_mismatch() -> None:
    s = suggest(ModelConfig(**MOE, schedule="cosine"), "zhou-2026")
    assert any(w.startswith("schedule mismatch") for w in s.warnings)
    assert not any("schedule mismatch" in w for w in suggest(ModelConfig(**MOE, schedule="wsd"), "zhou-2026").warnings)


def test_suggest_lr_band_widens_with_tolerance() -> None:
    config = ModelConfig(**DENSE_IN_DOMAIN)
    narrow, wide = suggest(config, tolerance=0.001).lr_range, suggest(config, tolerance=0.01).lr_range
    assert wide.low < narrow.low and wide.high > narrow.high
    assert math.isclose(narrow.low * narrow.high, suggest(config).lr ** 2)  # symmetric in log LR
    with pytest.raises(LrpredictError, match="tolerance"):
        suggest(config, tolerance=0)


def test_suggest_derivation_multiplies_to_the_lr() -> None:
    s = suggest(ModelConfig(**DENSE_IN_DOMAIN), "steplaw-2025")
    lr_steps = s.derivation[:3]
    assert math.prod(f.value for f in lr_steps) == pytest.approx(s.lr)
    assert s.derivation[3].name == "η" and s.derivation[3].value == s.lr


def test_suggest_json_round_trips() -> None:
    s = suggest(ModelConfig(**MOE))
    assert type(s).model_validate_json(s.to_json()) == s


def test_compare_reports_laws_that_cannot_answer() -> None:
    # without active_params Ling's law has no N_active for M ≈ 6·N_active (with them it answers: issue 20)
    rows = {law.id: result for law, result in compare(ModelConfig(arch="moe", params="12B", tokens="500B"))}
    assert "bjorck-2024" not in rows  # relative: needs a reference
    assert isinstance(rows["ling-2025"], MissingInputError)
    assert rows["steplaw-2025"].lr > 0


def test_suggest_takes_numpy_and_decimal_numbers_for_its_numeric_arguments() -> None:
    # reference_lr=Decimal raised a TypeError inside the law; tolerance=np.float32(0.01) was refused (QA 2026-12-01)
    from decimal import Decimal

    import numpy as np

    relative = dict(params="1B", tokens="20B", law="bjorck-2024", reference_tokens="1B")
    assert suggest(**relative, reference_lr=Decimal("0.001")).lr == pytest.approx(
        suggest(**relative, reference_lr=0.001).lr
    )
    assert suggest(params="1B", tokens="20B", tolerance=np.float32(0.01)).lr_range.tolerance == pytest.approx(0.01)
    with pytest.raises(LrpredictError, match="tolerance=True"):
        suggest(params="1B", tokens="20B", tolerance=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"params": "1B", "token": "20B"}, "token='20B' is not valid: unknown field (did you mean tokens?)"),
        ({"params": "1B", "tokens": "20B", "layers": 16}, "unknown field (did you mean n_layers?)"),
        ({"params": "1B"}, "tokens is missing: a required field"),
    ],
)
def test_suggest_mapping_with_a_typo_names_the_key(fields, message) -> None:
    # was "tokens={'params': '1B', 'token': '20B'} is not valid: Field required": the whole dict, not the typo
    with pytest.raises(LrpredictError) as caught:
        suggest(fields)
    assert message in str(caught.value)
