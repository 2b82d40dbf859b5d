"""The data converter as it was before workflows/converter.py had its own dataclass paths: the
SDK's ``dataclasses.asdict`` encoder and ``get_type_hints`` decoder, plus senflow's dates and
durations. The reference the converter tests compare against, and the micro-benchmark's
"stock" figures (scripts/microbench_convert.py)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from temporalio.converter import AdvancedJSONEncoder, value_to_type

from workflows.converter import TYPE_CONVERTERS, DomainTypes


class StockEncoder(AdvancedJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, timedelta):
            return o.total_seconds()
        if isinstance(o, date) and not isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


#: The type converters without senflow's dataclass path: the SDK converts dataclasses itself.
STOCK_CONVERTERS = [c for c in TYPE_CONVERTERS if not isinstance(c, DomainTypes)]


def stock_bytes(value: object) -> bytes:
    """The JSON payload data the SDK's own converter wrote for ``value``."""
    return json.dumps(value, cls=StockEncoder, separators=(",", ":"), sort_keys=True).encode()


def stock_decode(data: bytes, hint: type) -> Any:
    return value_to_type(hint, json.loads(data), STOCK_CONVERTERS)
