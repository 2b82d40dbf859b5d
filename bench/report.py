"""The table people read and the goals senflow is judged by, both from the result dictionary."""

from __future__ import annotations

from typing import Any

from bench.stats import ratio

#: (scenario, metric path, label, goal): ratio >= goal for rates, <= goal for times.
GOALS: list[tuple[str, str, str, str, float]] = [
    ("messages", "journeys_per_s", "journeys/s", ">=", 0.8),
    ("messages", "updates_per_s", "updates/s", ">=", 0.8),
    ("messages", "update_latency.p99_ms", "update p99", "<=", 1.3),
    ("storm", "timer_lag_p99_s", "storm timer lag p99", "<=", 1.25),
    ("storm", "drain_s", "storm drain time", "<=", 1.25),
]

#: Rows of the comparison table: (scenario, metric path, label).
ROWS: list[tuple[str, str, str]] = [
    ("messages", "completed", "journeys completed"),
    ("messages", "journeys_per_s", "journeys/s"),
    ("messages", "updates_per_s", "updates/s"),
    ("messages", "update_latency.p50_ms", "update p50 ms"),
    ("messages", "update_latency.p95_ms", "update p95 ms"),
    ("messages", "update_latency.p99_ms", "update p99 ms"),
    ("messages", "query_latency.p50_ms", "query p50 ms"),
    ("messages", "query_latency.p99_ms", "query p99 ms"),
    ("messages", "history_events_per_journey", "history events/journey"),
    ("messages", "history_bytes_per_journey", "history bytes/journey"),
    ("messages", "worker_peak_rss_kib", "worker peak RSS KiB"),
    ("messages", "cpu_ms_per_journey.server", "server CPU ms/journey"),
    ("messages", "cpu_ms_per_journey.worker", "worker CPU ms/journey"),
    ("messages", "cpu_ms_per_journey.client", "client CPU ms/journey"),
    ("messages", "cpu_ms_per_journey.total", "total CPU ms/journey"),
    ("messages", "cores_busy", "cores busy (of 2)"),
    ("storm", "journeys", "storm journeys"),
    ("storm", "due_span_s", "reviews due within s"),
    ("storm", "reached_review_due", "reached review_due"),
    ("storm", "reminders_run", "reminders run"),
    ("storm", "drain_s", "drain s"),
    ("storm", "drain_journeys_per_s", "drained journeys/s"),
    ("storm", "timer_lag_p50_s", "timer lag p50 s"),
    ("storm", "timer_lag_p99_s", "timer lag p99 s"),
    ("storm", "reminder_done_p99_s", "reminder done p99 s"),
    ("storm", "cpu_s.server", "server CPU s in the storm"),
    ("storm", "cpu_s.worker", "worker CPU s in the storm"),
    ("storm", "cores_busy", "cores busy in the storm"),
    ("storm", "setup_activities_during_storm", "setup work left at storm"),
    ("storm", "worker_kib_per_cached_journey", "worker KiB/cached journey"),
    ("replay", "pattern.histories_per_s", "replay histories/s"),
    ("replay", "pattern.events_per_s", "replay events/s"),
]


def dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def add_ratios(scenario: dict[str, Any]) -> None:
    """``scenario["ratios"]``: senflow / baseline for every number both sides have, nested
    like the figures themselves (``ratios.update_latency.p99_ms``)."""
    base, mine = scenario.get("baseline"), scenario.get("senflow")
    if isinstance(base, dict) and isinstance(mine, dict):
        scenario["ratios"] = _ratios(mine, base)


def _ratios(mine: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mine.items():
        other = base.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            out[key] = _ratios(value, other)
        elif _number(value) and _number(other):
            out[key] = ratio(value, other)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for scenario, path, label, op, limit in GOALS:
        r = dig(result, f"scenarios.{scenario}.ratios.{path}")
        met = None if r is None else (r >= limit if op == ">=" else r <= limit)
        out.append({"goal": f"{label} ratio {op} {limit}", "ratio": r, "met": met})
    return out


def table(result: dict[str, Any]) -> str:
    lines = [f"{'':30} {'baseline':>12} {'senflow':>12} {'ratio':>8}"]
    for scenario, path, label in ROWS:
        s = dig(result, f"scenarios.{scenario}")
        if not isinstance(s, dict):
            continue
        b, m = dig(s, f"baseline.{path}"), dig(s, f"senflow.{path}")
        if b is None and m is None:
            continue
        r = dig(s, f"ratios.{path}")
        lines.append(f"{label:30} {_cell(b):>12} {_cell(m):>12} {_cell(r):>8}")
    lines += _senflow_only(result)
    lines.append("")
    for g in result.get("goals", []):
        verdict = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        lines.append(f"goal  {g['goal']:34} ratio {_cell(g['ratio']):>7}  {verdict}")
    return "\n".join(lines)


def _senflow_only(result: dict[str, Any]) -> list[str]:
    lines = []
    replay = dig(result, "scenarios.replay.two_year_journeys")
    if replay:
        lines.append(
            f"{'replay two-year journeys':30} {'':>12} {_cell(replay['histories_per_s']):>12}"
            f"  histories/s ({replay['events_per_history']} events each)"
        )
    f = dig(result, "scenarios.footprint")
    if f and "largest_run_events" in f:
        label = f"{f['school_years']}-year journey"
        lines.append(
            f"{label:30} {'':>12} {f['whole_chain_events']:>12,}"
            f"  events in {f['runs']} runs; largest run {f['largest_run_events']:,} events "
            f"({f['largest_run_share_of_event_limit']:.1%} of 51,200), "
            f"largest {f['largest_run_bytes'] / 1024:,.0f} KiB; carried state "
            f"{f['carried_state_bytes_last_run'] / 1024:,.0f} KiB"
        )
    rec = dig(result, "scenarios.records")
    if rec:
        for db in ("sqlite", "postgresql"):
            v = rec.get(db, {})
            label = f"projection writes/s {db}"
            lines.append(
                f"{label:30} {'':>12} {_cell(v.get('writes_per_s', v.get('skipped'))):>12}"
            )
    h = dig(result, "scenarios.hold")
    if h:
        label = f"{h['journeys']:,} journeys held open"
        lines.append(
            f"{label:30} {'':>12} {h['worker_rss_kib'] / 1024:>8,.0f} MiB  worker RSS "
            f"({h['worker_kib_per_journey']} KiB/journey; server "
            f"{h['server_rss_kib'] / 1024:,.0f} MiB)"
        )
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
