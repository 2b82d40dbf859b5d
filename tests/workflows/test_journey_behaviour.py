"""PupilJourney on the time-skipping server: timers, refusals, bad replies, starts, labels."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from domain.commands import (
    CloseInput,
    EscalateInput,
    OpenSchoolActionInput,
    RecordNoteInput,
    RecordReviewInput,
    Refused,
)
from domain.model import (
    Actor,
    CloseReason,
    ConsultationStatus,
    EntryKind,
    ParentReply,
    Phase,
    ReviewOutcome,
    Role,
    Stage,
    Trigger,
)
from domain.policy import Policy
from journeys import (
    PARENTS,
    SENCO,
    TEACHER,
    iep,
    new_pupil,
    parent_reply,
    progress,
    start_cmd,
    state_of,
    until_delivered,
)
from service import temporal
from service.errors import NotFound
from workflows.pupil_journey import PupilJourney, workflow_id
from workflows.search_attributes import SEN_OVERDUE, SEN_STAGE


async def open_school_action(ts, pupil: str, **start_kw: object) -> None:
    await temporal.start(ts.client, ts.settings, start_cmd(pupil, **start_kw), workflow_id(pupil))
    await open_started(ts, pupil)


async def open_started(ts, pupil: str) -> None:
    """Open School Action on a journey already started."""
    await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.open_school_action,
        OpenSchoolActionInput(
            SENCO, [Trigger.SA_PROGRESS], "little progress with targeted teaching", iep()
        ),
    )


async def server_today(ts) -> date:
    """The test server's clock has been skipped ahead by earlier tests in the session."""
    return Policy().local_date(await ts.env.get_current_time())


async def event_count(ts, pupil: str) -> int:
    history = await ts.client.get_workflow_handle(workflow_id(pupil)).fetch_history()
    return len(history.events)


async def no_failed_workflow_tasks(ts, pupil: str) -> bool:
    history = await ts.client.get_workflow_handle(workflow_id(pupil)).fetch_history()
    return not any(
        e.event_type is EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events
    )


async def test_an_unreviewed_iep_goes_overdue_and_staff_are_told(ts) -> None:
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    state = await state_of(ts.client, pupil)
    assert state.next_review_date is not None and not state.overdue

    await ts.env.sleep(timedelta(weeks=13, days=9))
    state = await until_delivered(ts.client, pupil)
    assert state.phase is Phase.REVIEW_DUE
    assert state.overdue
    described = await ts.client.get_workflow_handle(workflow_id(pupil)).describe()
    assert described.typed_search_attributes.get(SEN_OVERDUE) is True
    kinds = [e.kind for e in state.timeline]
    assert kinds.index(EntryKind.REVIEW_REMINDER) < kinds.index(EntryKind.REVIEW_DUE)
    assert kinds.index(EntryKind.REVIEW_DUE) < kinds.index(EntryKind.REVIEW_OVERDUE)
    overdue_notices = sorted(p.name for p in ts.outbox.glob("*review_overdue*"))
    assert len(overdue_notices) == 2  # the SENCO and the teacher responsible

    # a review with a new IEP clears the flag and sets the next date
    await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.record_review,
        RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, progress(), "late, but held", iep("new")),
    )
    state = await state_of(ts.client, pupil)
    assert not state.overdue and state.phase is Phase.AWAITING_PARENTS
    described = await ts.client.get_workflow_handle(workflow_id(pupil)).describe()
    assert described.typed_search_attributes.get(SEN_OVERDUE) is False


@pytest.mark.parametrize(
    ("update", "cmd", "reason"),
    [
        (
            PupilJourney.escalate,
            EscalateInput(SENCO, [Trigger.AP_PROGRESS_LONG], "no progress", iep()),
            "completed School Action review",
        ),
        (
            PupilJourney.escalate,
            EscalateInput(SENCO, [Trigger.SA_PROGRESS], "no progress", iep()),
            "AP-* trigger",
        ),
        (
            PupilJourney.record_review,
            RecordReviewInput(TEACHER, ReviewOutcome.STEP_DOWN, progress(), "ok"),
            "only a SENCO",
        ),
        (
            PupilJourney.record_review,
            RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, progress()[:1], "x", iep()),
            "once for each",
        ),
        (
            PupilJourney.open_school_action,
            OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "x", iep()),
            "cannot open School Action",
        ),
        (
            PupilJourney.record_note,
            RecordNoteInput(Actor("mum", Role.PARENT), "hello"),
            "only a SENCO",
        ),
    ],
)
async def test_a_refused_school_action_gives_the_reason_and_leaves_history_untouched(
    dev, update: Any, cmd: object, reason: str
) -> None:
    # On the real dev server: the time-skipping test server has no speculative workflow
    # tasks, so even a rejected update leaves an empty workflow task in its history.
    ts = dev
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    state_before = await until_delivered(ts.client, pupil)
    before = await event_count(ts, pupil)

    with pytest.raises(Refused, match=re.escape(reason)):
        await temporal.execute(ts.client, workflow_id(pupil), update, cmd)
    # the raw client sees the same refusal as an update failure
    with pytest.raises(WorkflowUpdateFailedError):
        await ts.client.get_workflow_handle(workflow_id(pupil)).execute_update(update, cmd)

    assert await event_count(ts, pupil) == before
    assert await state_of(ts.client, pupil) == state_before


async def test_an_iep_review_date_beyond_six_months_is_refused(ts) -> None:
    pupil = new_pupil()
    await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    too_late = iep()
    too_late.review_date = await server_today(ts) + timedelta(days=200)
    with pytest.raises(Refused, match="at least every 6 months"):
        await temporal.execute(
            ts.client,
            workflow_id(pupil),
            PupilJourney.open_school_action,
            OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "evidence", too_late),
        )


async def test_malformed_and_out_of_place_replies_are_recorded_as_rejected(ts) -> None:
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    handle = ts.client.get_workflow_handle(workflow_id(pupil))
    await handle.signal(PupilJourney.parent_responded, {"nonsense": True})
    await handle.signal(PupilJourney.assessment_completed, "not even an object")
    await parent_reply(ts.client, pupil, "consultation-999", PARENTS[0], ParentReply.AGREE)
    await temporal.signal(
        ts.client,
        workflow_id(pupil),
        PupilJourney.parent_responded,
        {
            "reply_id": "r1",
            "consultation_id": "consultation-2",
            "parent_id": PARENTS[0],
            "reply": "maybe",
        },
    )

    state = await state_of(ts.client, pupil)
    rejected = [e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]
    assert len(rejected) == 4
    assert "no consultation 'consultation-999'" in rejected[2].reason
    assert state.stage is Stage.SCHOOL_ACTION  # nothing else changed
    assert all(c.status is ConsultationStatus.OPEN for c in state.consultations)
    assert await no_failed_workflow_tasks(ts, pupil)


async def test_the_same_reply_delivered_twice_is_applied_once(ts) -> None:
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    consultation = (await state_of(ts.client, pupil)).consultations[0].consultation_id
    payload = {
        "reply_id": "same-1",
        "consultation_id": consultation,
        "parent_id": PARENTS[0],
        "reply": "disagree",
        "comments": "we'd like to talk",
    }
    await temporal.signal(ts.client, workflow_id(pupil), PupilJourney.parent_responded, payload)
    await temporal.signal(ts.client, workflow_id(pupil), PupilJourney.parent_responded, payload)
    state = await state_of(ts.client, pupil)
    replies = [e for e in state.timeline if e.kind is EntryKind.PARENT_REPLY]
    assert len(replies) == 1
    assert not [e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]


async def test_starting_a_pupil_with_an_open_journey_is_refused(ts) -> None:
    pupil = new_pupil()
    await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    handle = ts.client.get_workflow_handle(workflow_id(pupil))
    first_run = (await handle.describe()).run_id
    await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.record_note,
        RecordNoteInput(TEACHER, "first week"),
    )
    with pytest.raises(Refused, match="already has an open journey"):
        await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    assert (await handle.describe()).run_id == first_run  # not a second workflow
    state = await state_of(ts.client, pupil)
    assert [e.kind for e in state.timeline] == [EntryKind.STARTED, EntryKind.NOTE]


async def test_an_early_years_label_changes_at_compulsory_school_age(ts) -> None:
    pupil = new_pupil()
    today = await server_today(ts)
    csa = today + timedelta(days=40)
    await temporal.start(
        ts.client, ts.settings, start_cmd(pupil, compulsory_school_age_date=csa), workflow_id(pupil)
    )
    five_months = iep()
    five_months.review_date = today + timedelta(days=150)
    with pytest.raises(Refused, match="at least every 4 months"):
        await temporal.execute(
            ts.client,
            workflow_id(pupil),
            PupilJourney.open_school_action,
            OpenSchoolActionInput(SENCO, [Trigger.SA_COMMUNICATION], "speech unclear", five_months),
        )
    await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_COMMUNICATION], "speech unclear", iep()),
    )
    state = await state_of(ts.client, pupil)
    assert (state.stage, state.stage_label, state.early_years) == (
        Stage.SCHOOL_ACTION,
        "early_years_action",
        True,
    )

    await ts.env.sleep(timedelta(days=41))
    state = await state_of(ts.client, pupil)
    assert (state.stage, state.stage_label, state.early_years) == (
        Stage.SCHOOL_ACTION,
        "school_action",
        False,
    )
    reached = [e for e in state.timeline if e.kind is EntryKind.COMPULSORY_SCHOOL_AGE]
    assert len(reached) == 1 and str(csa) in reached[0].summary
    described = await ts.client.get_workflow_handle(workflow_id(pupil)).describe()
    assert described.typed_search_attributes.get(SEN_STAGE) == "school_action"


async def test_a_closed_journey_finishes_and_can_be_started_again(ts) -> None:
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.close,
        CloseInput(SENCO, CloseReason.MOVED_SCHOOL, "family moved to another authority"),
    )
    handle = ts.client.get_workflow_handle_for(PupilJourney.run, workflow_id(pupil))
    final = await handle.result()
    assert final.stage is Stage.CLOSED and not final.outbox
    with pytest.raises(NotFound):
        await temporal.execute(
            ts.client,
            workflow_id(pupil),
            PupilJourney.record_note,
            RecordNoteInput(TEACHER, "late note"),
        )
    await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    assert (await state_of(ts.client, pupil)).stage is Stage.MONITORING


@pytest.mark.parametrize(
    "payload",
    [{"nonsense": True}, "a string", {"actor": {"id": "s", "role": "headteacher"}}, None],
)
async def test_a_malformed_update_is_refused_without_touching_history(dev, payload) -> None:
    pupil = new_pupil()
    await open_school_action(dev, pupil)
    await until_delivered(dev.client, pupil)
    before = await event_count(dev, pupil)
    with pytest.raises(Refused):
        await temporal.execute(dev.client, workflow_id(pupil), PupilJourney.refer, payload)
    assert await event_count(dev, pupil) == before
    assert await no_failed_workflow_tasks(dev, pupil)


async def test_an_unanswered_referral_is_chased_and_the_senco_told_after_the_second(ts) -> None:
    from domain.commands import ReferInput
    from domain.model import SpecialistKind

    pupil = new_pupil()
    await open_school_action(ts, pupil)
    await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO,
            ReviewOutcome.ESCALATE,
            progress(),
            "little progress",
            iep("plus"),
            [Trigger.AP_COMMUNICATION],
        ),
    )
    referral = await temporal.execute(
        ts.client,
        workflow_id(pupil),
        PupilJourney.refer,
        ReferInput(SENCO, SpecialistKind.SPEECH_AND_LANGUAGE, "salt-3", "expressive language?"),
    )

    await ts.env.sleep(timedelta(weeks=6, days=1))
    state = await until_delivered(ts.client, pupil)
    assert [r.chases for r in state.referrals] == [1]
    assert not list(ts.outbox.glob("*referral_escalated*"))

    await ts.env.sleep(timedelta(weeks=6))
    state = await until_delivered(ts.client, pupil)
    assert [r.chases for r in state.referrals] == [2]
    chases = sorted(p.name for p in ts.outbox.glob("*referral_chase-salt-3*"))
    assert len(chases) == 2
    told = list(ts.outbox.glob("*referral_escalated-senco-1*"))
    assert len(told) == 1 and referral.ref is not None
    assert referral.ref in told[0].read_text()


async def test_a_new_journey_records_one_patch_marker_and_keeps_its_timer_across_notes(
    ts,
) -> None:
    # A run on today's code records one marker (lean-run) instead of one per patch, and a
    # progress note, which moves no deadline, neither re-arms the wake-up timer nor rewrites
    # the memo. The journey still does everything the patches gave it: it publishes SenCode
    # and projects every change to the read model.
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    await until_delivered(ts.client, pupil)
    handle = ts.client.get_workflow_handle(workflow_id(pupil))

    def count(events: list, kind: EventType.ValueType) -> int:
        return sum(1 for e in events if e.event_type == kind)

    before = (await handle.fetch_history()).events
    for n in range(3):
        await temporal.execute(
            ts.client,
            workflow_id(pupil),
            PupilJourney.record_note,
            RecordNoteInput(TEACHER, f"note {n}: reads more"),
        )
    state = await until_delivered(ts.client, pupil)
    for _ in range(100):  # the projection runs beside the letters
        if state.projected_step == state.step:
            break
        await asyncio.sleep(0.05)
        state = await state_of(ts.client, pupil)
    after = (await handle.fetch_history()).events

    markers = [e for e in after if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) == 1
    assert (
        b"lean-run"
        in markers[0].marker_recorded_event_attributes.details["patch-data"].payloads[0].data
    )
    for kind in (
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_TIMER_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
    ):
        assert count(after, kind) == count(before, kind), EventType.Name(kind)
    assert (
        count(after, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
        == count(before, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) + 3
    )
    assert state.projected_step == state.step == 5  # the read model still gets every change
    description = await handle.describe()
    assert description.typed_search_attributes.get(SEN_STAGE) == Stage.SCHOOL_ACTION.value


async def test_a_journey_starts_with_its_memo_and_writes_it_only_when_its_state_moves(
    ts,
) -> None:
    # The start request carries the memo (monitoring__observing), so the first workflow task
    # has no memo to write; opening School Action moves the machine state and writes it once.
    pupil = new_pupil()
    state = await temporal.start(ts.client, ts.settings, start_cmd(pupil), workflow_id(pupil))
    handle = ts.client.get_workflow_handle(workflow_id(pupil))

    def memo_writes(events: list) -> int:
        kind = EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED
        return sum(1 for e in events if e.event_type == kind)

    assert state.machine_state == "monitoring__observing"
    assert memo_writes((await handle.fetch_history()).events) == 0
    assert await (await handle.describe()).memo_value("machine_state") == state.machine_state

    await open_started(ts, pupil)
    opened = await state_of(ts.client, pupil)
    assert memo_writes((await handle.fetch_history()).events) == 1
    assert await (await handle.describe()).memo_value("machine_state") == opened.machine_state
    assert opened.machine_state != state.machine_state


async def test_deadline_notices_to_staff_go_ahead_of_letters_in_the_activity_queue(ts) -> None:
    # Temporal's task queue priority: the reminder and the overdue notice (priority 1) are
    # taken before the letters queued before them (the default, 3) when a term's reviews fall
    # due together. The letters themselves are scheduled with no priority of their own.
    pupil = new_pupil()
    await open_school_action(ts, pupil)
    await ts.env.sleep(timedelta(weeks=13, days=9))
    await until_delivered(ts.client, pupil)
    history = await ts.client.get_workflow_handle(workflow_id(pupil)).fetch_history()

    priority: dict[str, set[int]] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "send_notice":
                kind = json.loads(attrs.input.payloads[0].data)["notice"]["kind"]
                priority.setdefault(kind, set()).add(attrs.priority.priority_key)
    # (the run fetched is the newest: the shared test server's clock may have crossed a
    # school year, so this run need not hold the consultation letters of the first)
    assert priority.pop("review_reminder") == {1}
    assert priority.pop("review_overdue") == {1}
    assert priority["review_invitation"] == {0}  # 0: none sent, the queue's default
    assert all(keys == {0} for keys in priority.values()), priority  # every other letter
