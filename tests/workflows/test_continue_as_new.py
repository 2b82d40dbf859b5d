"""Continue-as-new when Temporal suggests it (dev server, suggested after 60 events)."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType

from domain.commands import RecordNoteInput
from domain.model import EntryKind, Stage
from journeys import TEACHER, new_pupil, start_cmd, state_of
from service import temporal
from workflows.pupil_journey import PupilJourney, workflow_id


async def test_a_suggested_continue_as_new_carries_the_whole_journey(dev) -> None:
    pupil = new_pupil()
    await temporal.start(dev.client, dev.settings, start_cmd(pupil), workflow_id(pupil))
    handle = dev.client.get_workflow_handle(workflow_id(pupil))
    first_run = (await handle.describe()).run_id

    notes = [f"week {i}: progress note" for i in range(40)]
    for note in notes:
        await temporal.execute(
            dev.client, workflow_id(pupil), PupilJourney.record_note, RecordNoteInput(TEACHER, note)
        )

    for _ in range(100):  # the new run starts asynchronously
        if (await handle.describe()).run_id != first_run:
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).run_id != first_run

    old = await dev.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    assert old.events[-1].event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # suggested at 60 events; updates keep arriving while the run drains, so it overshoots,
    # but stays orders of magnitude below Temporal's 51,200-event limit
    assert len(old.events) < 1000

    state = await state_of(dev.client, pupil)
    assert state.runs >= 2
    assert state.stage is Stage.MONITORING
    recorded = [e.reason for e in state.timeline if e.kind is EntryKind.NOTE]
    assert recorded == notes  # every note, in order, none twice
    assert [e.step for e in state.timeline] == sorted({e.step for e in state.timeline})

    # and the journey still works in its new run
    await temporal.execute(
        dev.client, workflow_id(pupil), PupilJourney.record_note, RecordNoteInput(TEACHER, "after")
    )
    assert (await state_of(dev.client, pupil)).timeline[-1].reason == "after"
