"""Percentiles and ratios, the same way everywhere in the benchmark."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank (a value that actually happened), as the read model's reports do."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency(values_s: Sequence[float], *ps: float) -> dict[str, float | None]:
    """p50/p95/p99... in milliseconds."""
    out: dict[str, float | None] = {}
    for p in ps:
        v = percentile(values_s, p)
        out[f"p{p:g}_ms"] = None if v is None else round(v * 1000, 1)
    return out


def ratio(senflow: float | None, baseline: float | None) -> float | None:
    """senflow / baseline; None when either is missing or the baseline is zero."""
    if senflow is None or baseline is None or baseline == 0:
        return None
    return round(senflow / baseline, 3)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0
