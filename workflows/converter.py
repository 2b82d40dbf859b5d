"""The data converter every senflow client and worker uses.

Temporal's default JSON converter knows ``datetime`` but not ``date`` or ``timedelta``, which the
domain uses for calendar dates people see and policy durations. Every Client, Worker and
Replayer must be built with ``DATA_CONVERTER`` (see ``settings.connect``).

It also does the SDK's dataclass work more cheaply, with the same results. Decoding, the SDK
calls ``typing.get_type_hints`` for every dataclass of every payload (the domain's ``from
__future__ import annotations`` makes that a re-evaluation of every field's annotation string)
and ``inspect.getattr_static`` (a Pydantic v1 probe) for every enum and list value;
``DomainTypes`` works both out once per class. Encoding, the SDK's ``dataclasses.asdict``
deep-copies a whole state (every leaf) before json walks it again.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import types
import typing
import weakref
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from temporalio.converter import (
    AdvancedJSONEncoder,
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


class JSONEncoder(AdvancedJSONEncoder):
    """Dataclasses, datetimes, dates and durations as JSON (also the CLI's --json)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, timedelta):
            return o.total_seconds()
        if isinstance(o, date) and not isinstance(o, datetime):
            return o.isoformat()
        # One level only: json calls back here for each nested dataclass, so the output is
        # what the SDK's ``dataclasses.asdict`` gives without deep-copying every leaf first.
        # (datetime first, as in the SDK's own order.)
        if not isinstance(o, type | datetime) and dataclasses.is_dataclass(o):
            return {name: getattr(o, name) for name in _field_names(type(o))}
        return super().default(o)


#: What ``value_to_type`` would do with a class, worked out once: a dataclass's fields as
#: (name, resolved type hint, init), ``_STR_ENUM``, or None to leave the class to the SDK.
#: Weak keys: a run under the full sandbox re-imports the domain, and its classes must not
#: outlive the run because they were cached here.
_Plan = tuple[tuple[str, Any, bool], ...] | str | None
_PLANS: weakref.WeakKeyDictionary[type, _Plan] = weakref.WeakKeyDictionary()
_NAMES: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()
_STR_ENUM = "str-enum"
#: Hints value_to_type settles before it looks at classes (and ones no converter here takes).
_SDK_FIRST: frozenset[Any] = frozenset(
    {Any, datetime, int, float, bool, str, bytes, type(None), date, timedelta}
)


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plan(cls: type) -> _Plan:
    try:
        return _PLANS[cls]
    except KeyError:
        pass
    plan: _Plan = None
    # The checks value_to_type makes, in its order, before its dataclass and enum branches.
    if (
        hasattr(cls, "__supertype__")
        or hasattr(cls, "__origin__")
        or issubclass(cls, collections.abc.Mapping)
    ):
        plan = None
    elif dataclasses.is_dataclass(cls):
        # Raises (uncached) for an unresolvable annotation, exactly where the SDK would.
        hints = typing.get_type_hints(cls)
        plan = tuple((f.name, hints[f.name], f.init) for f in dataclasses.fields(cls))
    elif isinstance(inspect.getattr_static(cls, "parse_obj", None), classmethod | staticmethod):
        plan = None  # the SDK's (deprecated) Pydantic v1 path
    elif issubclass(cls, enum.Enum) and issubclass(cls, str) and not issubclass(cls, int):
        plan = _STR_ENUM
    _PLANS[cls] = plan
    return plan


class DomainTypes(JSONTypeConverter):
    """Dataclasses, string enums and lists, decoded exactly as ``value_to_type`` decodes them,
    with what it works out per class (type hints, which branch applies) worked out once.

    Values inside are converted by ``value_to_type`` with ``converters`` (the converters given,
    then this one), so nested dataclasses, dates and durations come back here. The SDK's
    semantics and errors: unknown keys are ignored, a missing required field fails the class's
    ``__init__`` (TypeError), ``init=False`` fields are set after construction, a field or item
    that does not convert raises TypeError naming it (so a union tries its next member), and an
    unknown enum value raises ValueError.
    """

    def __init__(self, before: Sequence[JSONTypeConverter] = ()) -> None:
        self.converters: tuple[JSONTypeConverter, ...] = (*before, self)

    def to_typed_value(self, hint: Any, value: Any) -> Any:
        if type(hint) is types.GenericAlias:
            return self._list(hint, value)
        if not isinstance(hint, type) or hint in _SDK_FIRST:
            return JSONTypeConverter.Unhandled
        plan = _plan(hint)
        if plan is None:
            return JSONTypeConverter.Unhandled
        if plan is _STR_ENUM:
            if not isinstance(value, str):
                raise TypeError(
                    f"Cannot convert to enum {hint}, value not a string, value is {type(value)}"
                )
            return hint(value)
        return self._dataclass(hint, plan, value)

    def _dataclass(self, hint: type, plan: _Plan, value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"Cannot convert to dataclass {hint}, value is {type(value)} not dict")
        init_values: dict[str, Any] = {}
        late_values: dict[str, Any] = {}
        missing = dataclasses.MISSING
        for name, field_hint, init in typing.cast(tuple[tuple[str, Any, bool], ...], plan):
            field_value = value.get(name, missing)
            if field_value is missing:
                continue  # a required one fails __init__ below, as in the SDK
            try:
                converted = value_to_type(field_hint, field_value, self.converters)
            except Exception as err:
                raise TypeError(f"Failed converting field {name} on dataclass {hint}") from err
            if init:
                init_values[name] = converted
            else:
                late_values[name] = converted
        obj = hint(**init_values)
        for name, converted in late_values.items():
            object.__setattr__(obj, name, converted)  # works on frozen dataclasses too
        return obj

    def _list(self, hint: Any, value: Any) -> Any:
        args = hint.__args__
        if (
            hint.__origin__ is not list
            or len(args) != 1
            or isinstance(args[0], typing.TypeVar)
            or args[0] is Ellipsis
        ):
            return JSONTypeConverter.Unhandled
        if not isinstance(value, collections.abc.Iterable):
            raise TypeError(f"Expected {hint}, value was {type(value)}")
        item_hint, converters, items = args[0], self.converters, []
        for i, item in enumerate(value):
            try:
                items.append(value_to_type(item_hint, item, converters))
            except Exception as err:
                raise TypeError(f"Failed converting {hint} index {i}") from err
        return items


class _DateTypes(JSONTypeConverter):
    def to_typed_value(self, hint: type, value: Any) -> Any:
        if hint is timedelta and isinstance(value, int | float):
            return timedelta(seconds=value)
        if hint is date and isinstance(value, str):
            return date.fromisoformat(value)
        return JSONTypeConverter.Unhandled


#: What the JSON payload converter consults, in order, before the SDK's own conversion.
TYPE_CONVERTERS = DomainTypes([_DateTypes()]).converters


class PayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            BinaryNullPayloadConverter(),
            BinaryPlainPayloadConverter(),
            JSONProtoPayloadConverter(),
            BinaryProtoPayloadConverter(),
            JSONPlainPayloadConverter(encoder=JSONEncoder, custom_type_converters=TYPE_CONVERTERS),
        )


DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=PayloadConverter
)
