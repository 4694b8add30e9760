"""lrpredict.record: the frozen records that replace lrpredict's pydantic models on the suggest path (issue 21 item 5)."""

from __future__ import annotations

import copy
import importlib
import pickle
import subprocess
import sys
import types
import typing
from typing import Annotated, Any, Literal, Union

import pydantic
import pytest
from pydantic import BaseModel
from pydantic_core import ValidationError

import lrpredict
from lrpredict import record
from lrpredict.architecture import Architecture
from lrpredict.laws import Coefficient, PowerLaw
from lrpredict.record import Before, Field, FieldInfo, Record, after_validation, computed


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


def test_record_cli_suggest_imports_no_pydantic_model_machinery() -> None:
    """What the CLI latency goal rests on (issue 21 item 5): ``lrpredict suggest`` never loads pydantic.main, nor the
    importlib.metadata and plugin scan that pydantic's first model brings (docs/benchmarks.md)."""
    command = [sys.executable, "-X", "importtime", "-m", "lrpredict", "suggest", "--params", "1B", "--tokens", "20B"]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "lrpredict.suggest" in imported  # the listing does show lrpredict's own imports
    # pydantic.main itself is not always listed (pydantic imports it lazily), the machinery it needs is
    assert not imported & {"pydantic.main", "pydantic._internal._model_construction", "importlib.metadata"}


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


# --- every lrpredict record against the schema pydantic generates for a BaseModel built from the same declaration ---


def _pydantic_hint(hint: Any) -> Any:
    """The annotation with record's markers turned into pydantic's (Field → pydantic.Field, Before →
    BeforeValidator); records inside stay records (pydantic asks them for their schema)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        meta = [
            pydantic.Field(**m.constraints)
            if isinstance(m, FieldInfo)
            else pydantic.BeforeValidator(m.function)
            if isinstance(m, Before)
            else m
            for m in hint.__metadata__
        ]
        return Annotated[(_pydantic_hint(args[0]), *meta)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_pydantic_hint(a) for a in args)]  # noqa: UP007 - built from a tuple
    if origin in (list, dict, tuple):
        return origin[tuple(a if a is Ellipsis else _pydantic_hint(a) for a in args)]
    return hint


def _pydantic_twin(cls: type[Record]) -> type[BaseModel]:
    """A BaseModel declared as ``cls`` is: its fields, defaults, constraints, after-validation and computed fields."""
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__annotations__": {}}
    if cls.__record_extra__ != "ignore":  # pydantic's default, which its schema leaves unsaid
        namespace["model_config"] = pydantic.ConfigDict(extra=cls.__record_extra__)  # type: ignore[typeddict-item]
    for name, info in cls.model_fields.items():
        namespace["__annotations__"][name] = _pydantic_hint(info.annotation)
        default = {} if info.default is record._MISSING else {"default": info.default}
        factory = {} if info.default_factory is None else {"default_factory": info.default_factory}
        namespace[name] = pydantic.Field(**default, **factory, **info.constraints)
    for name, value in record._own_and_inherited(cls, types.FunctionType):
        if getattr(value, "__record_after__", False):
            namespace[name] = pydantic.model_validator(mode="after")(value)
    for name, prop in record._own_and_inherited(cls, computed):
        namespace[name] = pydantic.computed_field(property(prop.fget))  # type: ignore[prop-decorator]
    return type(cls.__name__, (BaseModel,), namespace)


def _normalised(schema: Any, definitions: dict[str, Any]) -> Any:
    """A core schema with references inlined and what does not validate or serialise a value left out (titles,
    metadata, refs), classes and functions by name."""
    if isinstance(schema, dict):
        if schema.get("type") == "definitions":
            definitions.update((d["ref"], d) for d in schema["definitions"])
            return _normalised(schema["schema"], definitions)
        if schema.get("type") == "definition-ref":
            return _normalised(definitions[schema["schema_ref"]], definitions)
        kept = {k: v for k, v in schema.items() if k not in _NOT_COMPARED}
        if kept.get("default_factory_takes_data") is False:  # the default, which pydantic >= 2.10 writes out
            del kept["default_factory_takes_data"]
        if "config" in schema:
            kept["config"] = {k: v for k, v in schema["config"].items() if k == "extra_fields_behavior"}
        return {k: _normalised(v, definitions) for k, v in kept.items()}
    if isinstance(schema, (list, tuple)):
        return [_normalised(item, definitions) for item in schema]
    if callable(schema):
        return f"<{getattr(schema, '__name__', type(schema).__name__)}>"
    return schema


_NOT_COMPARED = {"ref", "metadata", "serialization", "model_name", "root_model", "custom_init", "post_init", "config"}
RECORDS = [
    obj
    for module in ("laws", "runs", "config", "architecture", "suggestion", "schedule")
    for obj in vars(importlib.import_module(f"lrpredict.{module}")).values()
    if isinstance(obj, type) and issubclass(obj, Record) and obj.__module__ == f"lrpredict.{module}"
]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_record_schema_is_the_one_pydantic_generates(cls: type[Record]) -> None:
    assert len(RECORDS) >= 20  # every model suggest touches
    twin = _pydantic_twin(cls)
    assert _normalised(cls.__record_schema__, {}) == _normalised(twin.__pydantic_core_schema__, {})
