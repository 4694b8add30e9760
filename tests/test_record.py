"""lrpredict.record: the frozen records that replace lrpredict's pydantic models on the suggest path (issue 21 item 5)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel
from pydantic_core import ValidationError

import lrpredict
from lrpredict.architecture import Architecture
from lrpredict.laws import Coefficient, PowerLaw
from lrpredict.record import Before, Field, Record, after_validation, computed


class _Point(Record, extra="forbid"):
    kind: Literal["point"] = "point"
    x: Annotated[float, Field(strict=True)] = Field(gt=0)
    label: str = Field(default="", max_length=3)
    tags: list[str] = Field(default_factory=list)

    @after_validation
    def _x_small(self) -> _Point:
        if self.x > 100:
            raise ValueError("x must be at most 100")
        return self

    @computed
    def double(self) -> float:
        return 2 * self.x


class _Size(Record):
    value: Annotated[float, Before(lambda v: float(v.removesuffix("k")) * 1e3 if isinstance(v, str) else v)]


def test_record_suggest_imports_no_pydantic_model_machinery() -> None:
    code = (
        "import sys, lrpredict; lrpredict.suggest(params='1B', tokens='20B'); "
        "print(sorted(m for m in ('pydantic.main', 'importlib.metadata') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_record_validates_with_pydantic_errors() -> None:
    assert _Point(x=2.5).model_dump() == {"kind": "point", "x": 2.5, "label": "", "tags": [], "double": 5.0}
    cases = [
        (dict(x="2.5"), "float_type"),  # strict: a string is not a number
        (dict(x=-1.0), "greater_than"),
        (dict(x=1.0, label="long"), "string_too_long"),
        (dict(x=1.0, colour="red"), "extra_forbidden"),
        (dict(), "missing"),
        (dict(x=1000.0), "value_error"),  # the after-validation method
    ]
    for data, kind in cases:
        with pytest.raises(ValidationError) as info:
            _Point(**data)
        assert info.value.errors()[0]["type"] == kind, data
    assert _Size(value="2k").value == 2000.0


def test_record_is_frozen_and_copies_without_validating() -> None:
    point = _Point(x=2.0, tags=["a"])
    with pytest.raises(ValidationError, match="frozen_instance"):
        point.x = 3.0  # type: ignore[misc]
    moved = point.model_copy(update={"x": 1000.0})  # as BaseModel.model_copy: not validated
    assert (moved.x, point.x, moved.tags) == (1000.0, 2.0, ["a"])
    assert moved.model_fields_set == {"x", "tags"}
    for clone in (pickle.loads(pickle.dumps(point)), copy.deepcopy(point), copy.copy(point)):
        assert clone == point
    assert point != _Point(x=2.0)
    shape = Architecture(d_model=64, n_layers=2, d_ffn=256, n_heads=4, vocab_size=100)  # hashable: no list field
    assert hash(pickle.loads(pickle.dumps(shape))) == hash(shape)


def test_record_round_trips_through_json() -> None:
    suggestion = lrpredict.suggest(params="1B", tokens="20B")
    assert type(suggestion).model_validate_json(suggestion.model_dump_json()) == suggestion
    law = PowerLaw(form="power_law", coefficient=Coefficient(value=1.0, status="open"), exponents={})
    assert PowerLaw.model_validate(law.model_dump()) == law


def test_record_is_a_field_type_of_a_pydantic_model() -> None:
    class Probe(BaseModel):  # calibrate's and transfer's models hold records so
        arch: Architecture

    shape = {"d_model": 64, "n_layers": 2, "d_ffn": 256, "n_heads": 4, "vocab_size": 100}
    probe = Probe(arch=shape)
    assert isinstance(probe.arch, Architecture) and probe.arch.d_model == 64
    assert Probe.model_validate_json(probe.model_dump_json()) == probe
    with pytest.raises(ValidationError, match="n_heads"):
        Probe(arch={**shape, "n_heads": 3})
