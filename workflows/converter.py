"""The data converter every senflow client and worker uses.

Temporal's default JSON converter knows ``datetime`` but not ``date`` or ``timedelta``, which the
domain uses for calendar dates people see and policy durations. Every Client, Worker and
Replayer must be built with ``DATA_CONVERTER`` (see ``settings.connect``).
"""

from __future__ import annotations

import dataclasses
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
        return super().default(o)


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
