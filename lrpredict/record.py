"""Frozen typed records validated by pydantic_core, without pydantic's model machinery (issue 21: CLI latency).

``import pydantic`` loads pydantic_core, but the first ``BaseModel`` subclass loads ``pydantic.main``, its schema
generator, ``importlib.metadata`` and a scan of every installed distribution for plugins: 0.73× of ``python -c
"import pydantic, click"`` before a single model of ours, and lrpredict's 22 models another 0.38× (docs/benchmarks.md,
"CLI latency, third session").  A ``Record`` declares its fields as a BaseModel does (annotations, ``Field(...)``)
and builds, on its first validation, the core schema pydantic would build for it, so it validates, words its errors
and serialises as the BaseModel it replaces (the same Rust validator; docs/log.md, 2026-12-04 records without
pydantic.main).  It has the BaseModel methods lrpredict uses, and pydantic models (calibrate, transfer) take a
Record as a field type through ``__get_pydantic_core_schema__``.  Every Record is frozen.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from pydantic_core import CoreSchema, SchemaSerializer, SchemaValidator, ValidationError, core_schema

__all__ = ["Before", "Field", "Record", "after_validation", "computed", "literal_tag"]

_MISSING: Any = object()
# pydantic's constraint names, as the core schema of a float, int, str, list or dict takes them
_CONSTRAINTS = frozenset({"gt", "ge", "lt", "le", "min_length", "max_length", "pattern", "strict", "discriminator"})


class FieldInfo:
    """A field's default and constraints (``Field(...)``); ``annotation`` is set when ``model_fields`` is read."""

    __slots__ = ("annotation", "constraints", "default", "default_factory", "description")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None, description: str, **constraints: Any):
        unknown = set(constraints) - _CONSTRAINTS
        if unknown:  # a typo would otherwise be a constraint silently not checked
            raise TypeError(f"unknown Field constraint(s) {sorted(unknown)}; known: {sorted(_CONSTRAINTS)}")
        self.default, self.default_factory, self.description = default, default_factory, description
        self.constraints = constraints
        self.annotation: Any = None


def Field(  # named as pydantic's, whose arguments it takes
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    description: str = "",
    **constraints: Any,
) -> Any:
    """A field's default and constraints (gt, ge, lt, le, min_length, max_length, pattern, strict, discriminator)."""
    return FieldInfo(default, default_factory, description, **constraints)


class Before:
    """``Annotated[float, Before(fn)]``: ``fn`` runs on the raw input before the type's own check (a size "7B")."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function


class computed(property):  # lower case: a decorator, as property is
    """A property that ``model_dump`` and JSON include (pydantic's ``computed_field``); its type is its return's."""


def after_validation(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Mark a method run on the built record (pydantic's ``model_validator(mode="after")``): it returns the record,
    or raises ValueError, which becomes the validation error."""
    function.__record_after__ = True  # type: ignore[attr-defined]
    return function


def literal_tag(cls: type[Record], name: str) -> Any:
    """The one value a ``Literal[...]`` field of ``cls`` admits (a tagged union's tag, e.g. a law form's)."""
    return typing.get_args(_hints(cls)[name])[0]


class _Lazy:
    """A class attribute computed from each class on first read (schema, validator, ...), kept in that class's own
    namespace: a subclass builds its own, never inherits its base's."""

    def __init__(self, build: Callable[[type[Record]], Any]) -> None:
        self.build = build

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.cached = name, f"_cached{name}"

    def __get__(self, instance: Any, owner: type[Record]) -> Any:
        value = owner.__dict__.get(self.cached, _MISSING)
        if value is _MISSING:
            if owner is Record:
                raise AttributeError(self.name)
            value = self.build(owner)
            type.__setattr__(owner, self.cached, value)
        return value


class Record:
    """Base of lrpredict's validated, frozen records.  ``class X(Record, extra="forbid")`` refuses unknown keys."""

    __slots__ = ("__dict__", "__pydantic_extra__", "__pydantic_fields_set__", "__pydantic_private__")
    __record_extra__: str = "ignore"

    def __init_subclass__(cls, *, extra: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if extra is not None:
            cls.__record_extra__ = extra

    __record_schema__ = _Lazy(lambda cls: _class_schema(cls))
    __pydantic_validator__ = _Lazy(lambda cls: SchemaValidator(cls.__record_schema__))
    __pydantic_serializer__ = _Lazy(lambda cls: SchemaSerializer(cls.__record_schema__))
    model_fields = _Lazy(lambda cls: _model_fields(cls))

    def __init__(self, **data: Any) -> None:
        self.__pydantic_validator__.validate_python(data, self_instance=self)

    @classmethod
    def model_validate(cls, obj: Any) -> Any:
        return cls.__pydantic_validator__.validate_python(obj)

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Any:
        return cls.__pydantic_validator__.validate_json(text)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> CoreSchema:
        return cls.__record_schema__

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """As ``BaseModel.model_dump``: ``mode="json"``, ``exclude_none``, ... go to pydantic_core's serializer."""
        return self.__pydantic_serializer__.to_python(self, **kwargs)

    def model_dump_json(self, *, indent: int | None = None, **kwargs: Any) -> str:
        return self.__pydantic_serializer__.to_json(self, indent=indent, **kwargs).decode()

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        """A shallow copy with ``update`` applied, not validated (as ``BaseModel.model_copy``)."""
        copy = self.__class__.__new__(self.__class__)
        _set_state(copy, {**self.__dict__, **(update or {})}, self.__pydantic_fields_set__ | set(update or ()))
        return copy

    @property
    def model_fields_set(self) -> set[str]:
        return self.__pydantic_fields_set__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __setattr__(self, name: str, value: Any) -> None:
        """Refused, with the error a frozen BaseModel raises (a ValidationError of type frozen_instance)."""
        error = {"type": "frozen_instance", "loc": (name,), "input": value}
        raise ValidationError.from_exception_data(type(self).__name__, [error])  # type: ignore[list-item]

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_fields(', ')})"

    def __str__(self) -> str:
        return self._repr_fields(" ")

    def _repr_fields(self, separator: str) -> str:
        names = [*self.__dict__, *(name for name, _ in _own_and_inherited(type(self), computed))]
        return separator.join(f"{name}={getattr(self, name)!r}" for name in names)

    def __getstate__(self) -> dict[str, Any]:
        return {"__dict__": self.__dict__, "__pydantic_fields_set__": self.__pydantic_fields_set__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        _set_state(self, state["__dict__"], state["__pydantic_fields_set__"])


def _set_state(record: Record, values: dict[str, Any], fields_set: set[str]) -> None:
    for name, value in (("__dict__", dict(values)), ("__pydantic_fields_set__", set(fields_set))):
        object.__setattr__(record, name, value)
    for name in ("__pydantic_extra__", "__pydantic_private__"):
        object.__setattr__(record, name, None)


def _hints(cls: type) -> dict[str, Any]:
    """The class's field annotations, base classes first, evaluated in their module (``from __future__ import
    annotations`` keeps them as text).  Not ``typing.get_type_hints``: it took ~0.8 ms a class, most of a Record's
    schema build (docs/log.md, 2026-12-04 records without pydantic.main)."""
    hints = {}
    for klass in reversed(cls.__mro__):
        for name, text in inspect.get_annotations(klass).items():
            hint = None if name.startswith("_") else _evaluate(text, klass.__module__)
            if hint is not None and typing.get_origin(hint) is not typing.ClassVar:
                hints[name] = hint
    return hints


_EVALUATED: dict[tuple[str, str], Any] = {}  # (module, annotation text) -> type: "Coefficient" recurs ~30 times


def _evaluate(text: Any, module: str) -> Any:
    if not isinstance(text, str):
        return text
    key = (module, text)
    if key not in _EVALUATED:
        _EVALUATED[key] = eval(text, vars(sys.modules[module]))  # the annotation's text in our own source
    return _EVALUATED[key]


def _field_info(cls: type, name: str) -> FieldInfo:
    declared = getattr(cls, name, _MISSING)
    return declared if isinstance(declared, FieldInfo) else FieldInfo(declared, None, "")


def _model_fields(cls: type[Record]) -> dict[str, FieldInfo]:
    """name → FieldInfo with its ``annotation``, as ``BaseModel.model_fields``."""
    fields = {}
    for name, hint in _hints(cls).items():
        info = _field_info(cls, name)
        fields[name] = FieldInfo(info.default, info.default_factory, info.description, **info.constraints)
        fields[name].annotation = hint
    return fields


def _class_schema(cls: type[Record]) -> CoreSchema:
    """The core schema pydantic builds for a BaseModel with these fields, validators and computed fields."""
    fields = {}
    for name, hint in _hints(cls).items():
        info = _field_info(cls, name)
        schema = _type_schema(hint, dict(info.constraints))
        if info.default_factory is not None:
            schema = core_schema.with_default_schema(schema, default_factory=info.default_factory)
        elif info.default is not _MISSING:
            schema = core_schema.with_default_schema(schema, default=info.default)
        fields[name] = core_schema.model_field(schema)
    computed_fields = [
        core_schema.computed_field(
            name, _type_schema(_evaluate(prop.fget.__annotations__["return"], prop.fget.__module__), {})
        )
        for name, prop in _own_and_inherited(cls, computed)
    ]
    config = core_schema.CoreConfig(title=cls.__name__)
    if cls.__record_extra__ != "ignore":
        config["extra_fields_behavior"] = cls.__record_extra__  # type: ignore[typeddict-item]
    schema = core_schema.model_schema(
        cls,
        core_schema.model_fields_schema(fields, computed_fields=computed_fields, model_name=cls.__name__),
        config=config,
    )
    for _, function in _own_and_inherited(cls, types.FunctionType):
        if getattr(function, "__record_after__", False):
            schema = core_schema.no_info_after_validator_function(function, schema)
    return schema


def _own_and_inherited(cls: type, kind: type) -> list[tuple[str, Any]]:
    """Attributes of type ``kind`` defined on ``cls`` or its Record bases, base classes first."""
    seen: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        seen.update((name, value) for name, value in vars(klass).items() if isinstance(value, kind))
    return list(seen.items())


def _type_schema(hint: Any, constraints: dict[str, Any]) -> CoreSchema:
    """The core schema of one annotation; ``constraints`` (a Field's) apply where pydantic applies them: to the
    innermost scalar, list or dict, through ``| None`` and ``Annotated``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        befores = [m.function for m in hint.__metadata__ if isinstance(m, Before)]
        for meta in hint.__metadata__:
            if isinstance(meta, FieldInfo):
                constraints = {**meta.constraints, **constraints}
        schema = _type_schema(args[0], constraints)
        for function in befores:
            schema = core_schema.no_info_before_validator_function(function, schema)
        return schema
    if origin in (Union, types.UnionType):
        return _union_schema([a for a in args if a is not type(None)], type(None) in args, constraints)
    if origin is Literal:
        return core_schema.literal_schema(list(args))
    if hint in _SCALARS:
        return _SCALARS[hint](**constraints)
    if origin is list:
        return core_schema.list_schema(_type_schema(args[0], {}), **constraints)
    if origin is dict:
        return core_schema.dict_schema(_type_schema(args[0], {}), _type_schema(args[1], {}), **constraints)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return core_schema.tuple_schema([_type_schema(args[0], {})], variadic_item_index=0, **constraints)
        return core_schema.tuple_schema([_type_schema(a, {}) for a in args], **constraints)
    if hint is Any:
        return core_schema.any_schema()
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.__record_schema__
    raise TypeError(f"lrpredict.record has no schema for {hint!r}")


def _union_schema(members: list[Any], nullable: bool, constraints: dict[str, Any]) -> CoreSchema:
    discriminator = constraints.pop("discriminator", None)
    if len(members) == 1:
        schema = _type_schema(members[0], constraints)
    elif discriminator is not None:  # a tagged union: the tag picks the member, and errors name it (lr.power_law.x)
        choices = {literal_tag(m, discriminator): _type_schema(m, {}) for m in members}
        # from_attributes: a member given as a record (LawFile(lr=PowerLaw(...))) is matched by its attribute
        schema = core_schema.tagged_union_schema(choices, discriminator, strict=False, from_attributes=True)  # type: ignore[arg-type]
    else:
        schema = core_schema.union_schema([_type_schema(m, {}) for m in members])
    return core_schema.nullable_schema(schema) if nullable else schema


_SCALARS: dict[Any, Callable[..., CoreSchema]] = {
    float: core_schema.float_schema,
    int: core_schema.int_schema,
    str: core_schema.str_schema,
    bool: core_schema.bool_schema,
}
