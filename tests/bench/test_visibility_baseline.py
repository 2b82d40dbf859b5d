"""``--baseline visibility``: the bare journey writes to visibility what senflow's journey
writes for the same messages (its patch marker, search-attribute upserts, memo changes), so
that part of senflow's cost can be told apart from the rest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from bench.drivers import Timings
from bench.scenarios import Options, phase

WRITES = (
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
)


async def _writes(opts: Options, side: str) -> tuple[Counter[int], dict[str, object]]:
    async with phase(opts, side, "messages") as ph:
        pupil = ph.driver.pupil("v", 0)
        await ph.driver.journey(pupil, opts.updates, opts.queries, Timings())
        handle = ph.client.get_workflow_handle(ph.driver.workflow_id(pupil))
        history = await handle.fetch_history()
        described = await handle.describe()
    counts = Counter(e.event_type for e in history.events if e.event_type in WRITES)
    return counts, {"memo": await described.memo(), "attrs": described.typed_search_attributes}


async def test_the_baseline_writes_what_the_journey_writes(tmp_path: Path) -> None:
    opts = Options(out_dir=tmp_path, baseline="visibility", updates=3, queries=1)
    bare, bare_final = await _writes(opts, "baseline")
    senflow, senflow_final = await _writes(opts, "senflow")
    assert senflow[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES] > 0
    assert senflow[EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED] > 0
    assert bare == senflow
    assert bare_final["memo"] == senflow_final["memo"] == {"machine_state": "closed__ended"}


async def test_the_default_baseline_writes_none_of_it(tmp_path: Path) -> None:
    bare, final = await _writes(Options(out_dir=tmp_path, updates=3, queries=1), "baseline")
    assert sum(bare.values()) == 0 and final["memo"] == {}
