"""Input limits: refused with the reason (which field, which limit) before anything reaches
history, by the CLI's functions and again by the journey's validators; a reply id reused for
a different reply is rejected, not dropped; a name typed as an actor id never enters history."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.commands import (
    AssessmentCompletedInput,
    ParentRespondedInput,
    RecordNoteInput,
    Refused,
)
from domain.model import Actor, EntryKind, ParentReply, Role
from journeys import PARENTS, TEACHER, at_school_action, new_pupil, start_cmd, state_of
from service import temporal
from service.journeys import with_date_of_birth
from workflows.pupil_journey import PupilJourney, workflow_id


async def test_over_long_text_and_a_named_actor_are_refused_with_the_reason(ts) -> None:  # type: ignore[no-untyped-def]
    pupil = new_pupil()
    await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    with pytest.raises(Refused, match="RecordNoteInput.note is 4001 characters; the limit is 4000"):
        await temporal.execute(
            ts.client,
            workflow_id(pupil),
            PupilJourney.record_note,
            RecordNoteInput(TEACHER, "y" * 4001),
        )
    named = Actor("Mrs Jane Smith", Role.CLASS_TEACHER)
    with pytest.raises(Refused, match="actor's id must be an opaque reference") as err:
        await temporal.execute(
            ts.client, workflow_id(pupil), PupilJourney.record_note, RecordNoteInput(named, "reads")
        )
    assert "Jane" not in str(err.value)  # the refusal does not repeat what may be a name
    with pytest.raises(Refused, match=r"request\.note is 300000 characters"):  # a raw payload
        await temporal.execute(
            ts.client,
            workflow_id(pupil),
            PupilJourney.record_note,
            {"actor": {}, "note": "z" * 300_000},
        )
    bulky = {"actor": {}, "note": "n", "x": [["a" * 4000] * 20] * 5}  # each part within limits
    with pytest.raises(Refused, match="request is .* bytes; the limit is 262144"):
        await temporal.execute(ts.client, workflow_id(pupil), PupilJourney.record_note, bulky)
    # A client that skips those checks meets the journey's validator, which says the same.
    handle = ts.client.get_workflow_handle(workflow_id(pupil))
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(PupilJourney.record_note, RecordNoteInput(TEACHER, "y" * 4001))
    assert "the limit is 4000" in str(failed.value.cause)
    state = await state_of(ts.client, pupil)
    assert [e.kind for e in state.timeline] == [EntryKind.STARTED]


async def test_a_reply_id_reused_for_another_reply_is_rejected_not_dropped(ts) -> None:  # type: ignore[no-untyped-def]
    pupil = new_pupil()
    await at_school_action(ts.client, ts.settings, pupil)  # both parents agreed
    state = await state_of(ts.client, pupil)
    consultation = state.consultations[0].consultation_id
    assert len(state.reply_digests) == 2  # each applied reply's digest is kept
    reused = state.processed_reply_ids[0]  # parent-a's agreement
    handle = ts.client.get_workflow_handle(workflow_id(pupil))
    retry = ParentRespondedInput(reused, consultation, PARENTS[0], ParentReply.AGREE)
    other = ParentRespondedInput(reused, consultation, PARENTS[1], ParentReply.DISAGREE, "no")
    reply = PupilJourney.parent_responded
    await handle.signal(reply, retry)  # a client's retry: nothing happens
    await handle.signal(reply, other)  # another reply under that id: rejected
    for _ in range(100):
        state = await state_of(ts.client, pupil)
        rejected = [e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]
        if rejected:
            break
        await asyncio.sleep(0.05)
    assert [e.reason for e in rejected] == [
        f"reply id {reused} was already used for a different reply"
    ]
    replies = [e for e in state.timeline if e.kind is EntryKind.PARENT_REPLY]
    assert len(replies) == 2  # the retry applied nothing


async def test_an_assessment_from_a_named_sender_is_rejected_without_the_name(ts) -> None:  # type: ignore[no-untyped-def]
    pupil = new_pupil()
    await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    handle = ts.client.get_workflow_handle(workflow_id(pupil))
    await handle.signal(
        PupilJourney.assessment_completed,
        AssessmentCompletedInput(
            "rep-1", "referral-9", Actor("Dr Ann Jones", Role.SPECIALIST), "s"
        ),
    )
    for _ in range(100):
        state = await state_of(ts.client, pupil)
        rejected = [e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]
        if rejected:
            break
        await asyncio.sleep(0.05)
    assert rejected and rejected[0].actor.id == "unknown"
    assert "Ann Jones" not in str(state.timeline)


def test_a_date_of_birth_in_the_future_is_refused() -> None:
    with pytest.raises(Refused, match="future"):
        with_date_of_birth(start_cmd("p1"), date(2031, 1, 1), date(2026, 11, 25))
