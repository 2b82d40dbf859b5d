"""The data converter every senflow client and worker uses.

Temporal's default JSON converter knows ``datetime`` but not ``date`` or ``timedelta``, which the
domain uses for calendar dates people see and policy durations. Every Client, Worker and
Replayer must be built with ``DATA_CONVERTER`` (see ``settings.connect``).

The encoder gives the SDK's JSON without its ``dataclasses.asdict``, which deep-copies a whole
state (every leaf) before json walks it again.
"""

from __future__ import annotations

import dataclasses
import weakref
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


#: Weak keys: a run under the full sandbox re-imports the domain, and its classes must not
#: outlive the run because they were cached here.
_NAMES: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


class _DateTypes(JSONTypeConverter):
    def to_typed_value(self, hint: type, value: Any) -> Any:
        if hint is timedelta and isinstance(value, int | float):
            return timedelta(seconds=value)
        if hint is date and isinstance(value, str):
            return date.fromisoformat(value)
        return JSONTypeConverter.Unhandled


class PayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            BinaryNullPayloadConverter(),
            BinaryPlainPayloadConverter(),
            JSONProtoPayloadConverter(),
            BinaryProtoPayloadConverter(),
            JSONPlainPayloadConverter(encoder=JSONEncoder, custom_type_converters=[_DateTypes()]),
        )


DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=PayloadConverter
)
