"""The stages of ``suggest`` (lrpredict/pipeline/) called one by one, as a reader of suggest.py would (issue 21)."""

import pytest

from lrpredict import ModelConfig
from lrpredict.errors import LrpredictError
from lrpredict.pipeline.context import context
from lrpredict.pipeline.predict import predict
from lrpredict.pipeline.resolve import resolve
from lrpredict.pipeline.state import Request
from lrpredict.pipeline.uncertainty import uncertainty
from lrpredict.suggest import _evaluate, _suggest

# an MoE run far from every law's data at a batch far from the optimum: warnings from every stage
FAR = ModelConfig(arch="moe", params="600B", active_params="37B", tokens="15T", batch_tokens="1M")


def _request(config: ModelConfig, law: str | None = None, **options: object) -> Request:
    fields = dict(weight_decay_law=None, tolerance=0.0025, reference_lr=None, reference_tokens=None)
    fields.update(options)
    return Request(config=config, law=law, approximate_m=True, with_runs=True, **fields)  # type: ignore[arg-type]


def test_pipeline_stages_by_hand_give_suggests_numbers_and_warnings_in_stage_order() -> None:
    resolved = resolve(_request(FAR))
    point = predict(resolved)
    spread = uncertainty(resolved, point)
    around = context(resolved, point, _evaluate)
    s = _suggest(FAR)
    assert (s.law, s.lr, s.weight_decay, s.batch_tokens) == (
        resolved.law.id,
        point.lr,
        point.weight_decay,
        point.batch,
    )
    assert s.lr_range == spread.lr_range and s.domain == "extrapolated" and spread.extrapolated
    assert s.nearest_runs == around.nearest_runs and s.law_lrs == around.law_lrs
    assert all([resolved.warnings, point.warnings, spread.warnings, around.warnings])  # each stage has its say
    assert s.warnings == resolved.warnings + point.warnings + spread.warnings + around.warnings


def test_pipeline_context_without_evaluate_adds_nothing() -> None:
    resolved = resolve(_request(FAR))
    around = context(resolved, predict(resolved), None)
    assert (around.nearest_runs, around.law_lrs, around.warnings) == ([], {}, [])


def test_pipeline_resolve_refuses_references_for_an_absolute_law() -> None:
    with pytest.raises(LrpredictError, match="reference_lr"):
        resolve(_request(ModelConfig(params="1B", tokens="20B"), "steplaw-2025", reference_lr=1e-3))
