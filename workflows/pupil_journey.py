"""PupilJourney: one durable workflow per pupil, for years.

Determinism: everything that decides lives in ``domain`` (pure, passed through the sandbox);
this module only turns Temporal messages into domain calls, sleeps until the domain's next
wake-up, and delivers the notices the domain queued. Changes here must keep replaying the
histories in tests/histories/ (gate behaviour changes behind ``workflow.patched``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.notices import Notifier, SendNoticeInput
    from activities.records import Recorder, RecordJourneyInput
    from domain.commands import (
        ActionResult,
        AssessmentCompletedInput,
        CloseInput,
        EhcAdviceReceivedInput,
        EhcAdviceRequestInput,
        EhcDecisionInput,
        EhcDraftInput,
        EhcFinalInput,
        EhcPauseInput,
        EhcResumeInput,
        EscalateInput,
        MigrateInput,
        OpenSchoolActionInput,
        OpenSenSupportInput,
        ParentRespondedInput,
        PupilJourneyInput,
        RecordNoteInput,
        RecordReviewInput,
        ReferInput,
        Refused,
        RequestEhcAssessmentInput,
        RequestStatutoryAssessmentInput,
        StepDownInput,
        check_input,
        check_opaque_id,
    )
    from domain.journey import FEATURE_REVIEW_INVITATIONS, Journey
    from domain.model import Actor, JourneyState, Role, Stage, TimelineEntry
    from domain.policy import school_year_start
    from workflows.priority import notice_priority
    from workflows.search_attributes import (
        SEN_CODE,
        SEN_NEXT_REVIEW,
        SEN_OVERDUE,
        SEN_SCHOOL,
        SEN_STAGE,
    )

C = TypeVar("C")

#: Side effects retry until they succeed (a mail or database outage must lose nothing).
NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)
)
UNKNOWN_SENDER = Actor(id="unknown", role=Role.SYSTEM)
MAX_REMEMBERED_REPLIES = 1000
#: Journeys started (or continued) after this change project every change to the read model;
#: histories recorded before it replay without those activities.
READ_MODEL_PATCH = "read-model-projection"
#: (domain feature, patch id): parents invited to each IEP review (decision 31).
FEATURE_PATCHES = ((FEATURE_REVIEW_INVITATIONS, "parents-invited-to-reviews"),)
#: The 2014 reform: journeys publish the Code they follow (``SenCode``), so admins can find
#: the journeys still to move. Runs recorded before it replay without that upsert.
SEN_CODE_PATCH = "sen-code-search-attribute"
#: Replies (signals) are held to the same input limits as school actions (text length, list
#: sizes, an opaque actor), and a reply id reused for a different reply is rejected instead
#: of silently dropped. Replies in older runs replay as they were applied.
STRICT_REPLIES_PATCH = "strict-replies"
#: One marker per run for all of the above, and a leaner run. Every patch costs a marker and
#: an upsert of the TemporalChangeVersion search attribute (a visibility write) in each run; a
#: run that records this one takes every earlier patch's new path without recording them, and
#: it re-arms its wake-up timer only when the wake-up moves and writes a search attribute or
#: its memo only where the value differs (decision 87: 118 -> 85-90 history events for the
#: benchmark's journey). Runs recorded before it replay through the individual patches.
LEAN_RUN_PATCH = "lean-run"


def workflow_id(pupil_id: str) -> str:
    """The id journeys had before each had a random one of its own: ``pupil-<reference>``.
    Those journeys keep it; tests and scripts still start journeys under readable ids of
    this form. A journey started through ``service`` gets ``service.temporal.new_journey_id``."""
    return f"pupil-{pupil_id}"


@workflow.defn
class PupilJourney:
    """A pupil's SEN journey from first concern to closure.

    Updates (school actions; a refused one returns the reason and leaves no history event):
        open_school_action, record_note, record_review, escalate, refer,
        request_statutory_assessment, step_down, close
    Signals (replies from outside the school; never fail the workflow, bad ones are recorded
    as rejected): assessment_completed, parent_responded
    Queries: state -> JourneyState, timeline -> list[TimelineEntry]
    Timers: review reminder / due / overdue, consultation reminder / deadline, referral chase,
    compulsory school age, the school-year boundary (continue-as-new).
    """

    @workflow.init
    def __init__(self, input: PupilJourneyInput) -> None:
        self._start_error: str | None = None
        if input.carried is not None:
            self._journey = Journey(input.carried)
        else:
            try:
                self._journey = Journey.begin(input.start, workflow.now())
            except Refused as err:  # the CLI checks first; a raw client may not
                self._start_error = str(err)
                self._journey = Journey.begin(_placeholder(input), workflow.now())
        self._version = 0
        self._published: tuple[Any, ...] | None = None
        self._projecting = False
        self._publish_code = False
        self._lean: bool | None = None
        #: The lean run's wake-up timer and the instant it is set for.
        self._alarm: asyncio.Task[None] | None = None
        self._alarm_at: datetime | None = None

    @property
    def _state(self) -> JourneyState:
        return self._journey.state

    @workflow.run
    async def run(self, input: PupilJourneyInput) -> JourneyState:
        if self._start_error is not None:
            raise ApplicationError(self._start_error, type="Refused", non_retryable=True)
        self._publish_code = self._patched(SEN_CODE_PATCH)
        self._publish()
        pumps = [asyncio.create_task(self._deliver_notices())]
        self._projecting = self._patched(READ_MODEL_PATCH)
        # Domain behaviour added later, one patch each, decided once per run.
        self._journey.features = frozenset(
            feature for feature, patch in FEATURE_PATCHES if self._patched(patch)
        )
        if self._projecting:
            pumps.append(asyncio.create_task(self._record_changes()))
        year = school_year_start(workflow.now(), self._state.policy)
        while self._state.stage is not Stage.CLOSED:
            await self._sleep_until_something_changes(year)
            if self._journey.on_time(workflow.now()):
                self._changed()
            if self._journey.is_open() and self._should_continue_as_new(year):
                await workflow.wait_condition(self._drained)
                self._stop(pumps)
                self._state.runs += 1
                workflow.continue_as_new(PupilJourneyInput(start=input.start, carried=self._state))
        await workflow.wait_condition(self._drained)
        self._stop(pumps)
        return self._state

    def _patched(self, patch: str) -> bool:
        """``workflow.patched(patch)``, except that a lean run has every earlier patch on
        without a marker of its own. Decided lazily: whichever handler asks first records it."""
        return self._lean_run() or workflow.patched(patch)

    def _lean_run(self) -> bool:
        if self._lean is None:
            self._lean = workflow.patched(LEAN_RUN_PATCH)
        return self._lean

    def _stop(self, pumps: list[asyncio.Task[None]]) -> None:
        for task in [*pumps, *([self._alarm] if self._alarm is not None else [])]:
            task.cancel()

    def _drained(self) -> bool:
        """Nothing in flight: no handler running, no notice unsent, no change unrecorded."""
        s = self._state
        recorded = not self._projecting or s.projected_step >= s.step
        return workflow.all_handlers_finished() and not s.outbox and recorded

    async def _sleep_until_something_changes(self, year: Any) -> None:
        now = workflow.now()
        wakeups = [self._next_school_year(year)]
        domain_wakeup = self._journey.next_wakeup()
        if domain_wakeup is not None:
            wakeups.append(domain_wakeup)
        timeout = min(wakeups) - now
        if timeout <= timedelta(0):
            return
        seen = self._version
        if self._lean_run():
            await self._sleep_on_alarm(min(wakeups), seen)
            return
        try:
            await workflow.wait_condition(lambda: self._version != seen, timeout=timeout)
        except TimeoutError:
            pass

    async def _sleep_on_alarm(self, wake: datetime, seen: int) -> None:
        """Sleep until ``wake`` or the next change. The timer outlives a change that leaves the
        wake-up where it was (a note, most replies): no TIMER_CANCELED + TIMER_STARTED pair."""
        if self._alarm is not None and self._alarm_at != wake:
            self._alarm.cancel()
            self._alarm = None
        if self._alarm is None:
            self._alarm_at = wake
            self._alarm = asyncio.create_task(workflow.sleep(wake - workflow.now()))
        alarm = self._alarm
        await workflow.wait_condition(lambda: self._version != seen or alarm.done())
        if alarm.done():
            self._alarm = None

    def _next_school_year(self, year: Any) -> datetime:
        policy = self._state.policy
        return policy.due_instant(year.replace(year=year.year + 1))

    def _should_continue_as_new(self, year: Any) -> bool:
        if workflow.info().is_continue_as_new_suggested():
            return True
        # A new school year starts a new run: histories stay short and each year replays alone.
        return workflow.now() >= self._next_school_year(year)

    async def _deliver_notices(self) -> None:
        wf_id = workflow.info().workflow_id
        while True:
            await workflow.wait_condition(lambda: bool(self._state.outbox))
            notice = self._state.outbox[0]
            await workflow.execute_activity_method(
                Notifier.send_notice,
                SendNoticeInput(workflow_id=wf_id, notice=notice),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTICE_RETRY,
                summary=notice.kind,
                # a reminder that a review is due goes ahead of the term's queue of letters;
                # a command's priority is not part of what replay compares (decision 91)
                priority=notice_priority(notice.kind),
            )
            self._state.outbox.pop(0)

    async def _record_changes(self) -> None:
        wf_id = workflow.info().workflow_id
        while True:
            await workflow.wait_condition(lambda: self._state.projected_step < self._state.step)
            changes = self._journey.delta_since(self._state.projected_step)
            await workflow.execute_activity_method(
                Recorder.record_journey,
                RecordJourneyInput(workflow_id=wf_id, changes=changes),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTICE_RETRY,
                summary=f"record to step {changes.step}",
            )
            self._state.projected_step = max(self._state.projected_step, changes.step)

    # -- bookkeeping ------------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        self._publish()

    def _publish(self) -> None:
        """Keep search attributes and memo current. Each change emits a command, so a replay
        that diverges in the domain (a changed guard) fails loudly instead of silently."""
        if self._lean_run():
            self._publish_differences()
            return
        s = self._state
        code = s.policy.name if self._publish_code else None
        current = (s.stage, s.school_id, s.review_due_at, s.overdue, s.machine_state, s.step, code)
        if current == self._published:
            return
        previous, self._published = self._published, current
        if previous is None or previous[:4] != current[:4] or previous[6] != current[6]:
            updates: list[SearchAttributeUpdate[Any]] = [
                SEN_STAGE.value_set(s.stage.value),
                SEN_SCHOOL.value_set(s.school_id),
                SEN_OVERDUE.value_set(s.overdue),
            ]
            if code is not None:
                updates.append(SEN_CODE.value_set(code))
            if s.review_due_at is not None:
                updates.append(SEN_NEXT_REVIEW.value_set(s.review_due_at))
            elif previous is not None and previous[2] is not None:
                updates.append(SEN_NEXT_REVIEW.value_unset())  # never unset what was never set
            workflow.upsert_search_attributes(updates)
        workflow.upsert_memo({"machine_state": s.machine_state, "step": s.step})

    def _publish_differences(self) -> None:
        """The lean run's publishing: a value is upserted only where it differs from what the
        run already holds (set at the start, carried over by continue-as-new, or upserted)."""
        s = self._state
        held = workflow.info().typed_search_attributes
        wanted: list[tuple[SearchAttributeKey[Any], Any]] = [
            (SEN_STAGE, s.stage.value),
            (SEN_SCHOOL, s.school_id),
            (SEN_OVERDUE, s.overdue),
            (SEN_CODE, s.policy.name),
            (SEN_NEXT_REVIEW, s.review_due_at),
        ]
        updates = [
            key.value_set(value) if value is not None else key.value_unset()
            for key, value in wanted
            if held.get(key) != value
        ]
        if updates:
            workflow.upsert_search_attributes(updates)
        if workflow.memo_value("machine_state", None, type_hint=str) != s.machine_state:
            # the step is in the timeline; the memo says where the journey stands
            workflow.upsert_memo({"machine_state": s.machine_state})

    def _act(self, action: Callable[[C, datetime], ActionResult], cmd: C) -> ActionResult:
        try:
            result = action(cmd, workflow.now())
        except Refused as err:
            # The validator passed moments ago at the same state, so this is rare; fail the
            # update only (an ApplicationError never fails the workflow task).
            raise ApplicationError(str(err), type="Refused", non_retryable=True) from None
        self._changed()
        return result

    def _validate(self, trigger: str, cmd: object) -> None:
        # Validators never run on replay, so new input limits apply here without a patch.
        check_input(cmd)
        self._journey.check(trigger, cmd, workflow.now())

    # -- school actions: updates with validators -------------------------------------------

    @workflow.update
    def open_school_action(self, cmd: OpenSchoolActionInput) -> ActionResult:
        return self._act(self._journey.open_school_action, cmd)

    @open_school_action.validator
    def _check_open_school_action(self, cmd: OpenSchoolActionInput) -> None:
        self._validate("open_school_action", cmd)

    @workflow.update
    def record_note(self, cmd: RecordNoteInput) -> ActionResult:
        return self._act(self._journey.record_note, cmd)

    @record_note.validator
    def _check_record_note(self, cmd: RecordNoteInput) -> None:
        self._validate("record_note", cmd)

    @workflow.update
    def record_review(self, cmd: RecordReviewInput) -> ActionResult:
        return self._act(self._journey.record_review, cmd)

    @record_review.validator
    def _check_record_review(self, cmd: RecordReviewInput) -> None:
        self._validate("record_review", cmd)

    @workflow.update
    def escalate(self, cmd: EscalateInput) -> ActionResult:
        return self._act(self._journey.escalate, cmd)

    @escalate.validator
    def _check_escalate(self, cmd: EscalateInput) -> None:
        self._validate("escalate", cmd)

    @workflow.update
    def refer(self, cmd: ReferInput) -> ActionResult:
        return self._act(self._journey.refer, cmd)

    @refer.validator
    def _check_refer(self, cmd: ReferInput) -> None:
        self._validate("refer", cmd)

    @workflow.update
    def request_statutory_assessment(self, cmd: RequestStatutoryAssessmentInput) -> ActionResult:
        return self._act(self._journey.request_statutory_assessment, cmd)

    @request_statutory_assessment.validator
    def _check_request_statutory_assessment(self, cmd: RequestStatutoryAssessmentInput) -> None:
        self._validate("request_statutory_assessment", cmd)

    @workflow.update
    def step_down(self, cmd: StepDownInput) -> ActionResult:
        return self._act(self._journey.step_down, cmd)

    @step_down.validator
    def _check_step_down(self, cmd: StepDownInput) -> None:
        self._validate("step_down", cmd)

    @workflow.update
    def close(self, cmd: CloseInput) -> ActionResult:
        return self._act(self._journey.close, cmd)

    @close.validator
    def _check_close(self, cmd: CloseInput) -> None:
        self._validate("close", cmd)

    # -- the 2014 Code: SEN Support, the EHC needs assessment, moving journeys ----------------

    @workflow.update
    def open_sen_support(self, cmd: OpenSenSupportInput) -> ActionResult:
        return self._act(self._journey.open_sen_support, cmd)

    @open_sen_support.validator
    def _check_open_sen_support(self, cmd: OpenSenSupportInput) -> None:
        self._validate("open_sen_support", cmd)

    @workflow.update
    def request_ehc_assessment(self, cmd: RequestEhcAssessmentInput) -> ActionResult:
        return self._act(self._journey.request_ehc_assessment, cmd)

    @request_ehc_assessment.validator
    def _check_request_ehc_assessment(self, cmd: RequestEhcAssessmentInput) -> None:
        self._validate("request_ehc_assessment", cmd)

    @workflow.update
    def ehc_decide(self, cmd: EhcDecisionInput) -> ActionResult:
        return self._act(self._journey.ehc_decide, cmd)

    @ehc_decide.validator
    def _check_ehc_decide(self, cmd: EhcDecisionInput) -> None:
        self._validate("ehc_decide", cmd)

    @workflow.update
    def ehc_request_advice(self, cmd: EhcAdviceRequestInput) -> ActionResult:
        return self._act(self._journey.ehc_request_advice, cmd)

    @ehc_request_advice.validator
    def _check_ehc_request_advice(self, cmd: EhcAdviceRequestInput) -> None:
        self._validate("ehc_request_advice", cmd)

    @workflow.update
    def ehc_advice_received(self, cmd: EhcAdviceReceivedInput) -> ActionResult:
        return self._act(self._journey.ehc_advice_received, cmd)

    @ehc_advice_received.validator
    def _check_ehc_advice_received(self, cmd: EhcAdviceReceivedInput) -> None:
        self._validate("ehc_advice_received", cmd)

    @workflow.update
    def ehc_draft(self, cmd: EhcDraftInput) -> ActionResult:
        return self._act(self._journey.ehc_draft, cmd)

    @ehc_draft.validator
    def _check_ehc_draft(self, cmd: EhcDraftInput) -> None:
        self._validate("ehc_draft", cmd)

    @workflow.update
    def ehc_finalise(self, cmd: EhcFinalInput) -> ActionResult:
        return self._act(self._journey.ehc_finalise, cmd)

    @ehc_finalise.validator
    def _check_ehc_finalise(self, cmd: EhcFinalInput) -> None:
        self._validate("ehc_finalise", cmd)

    @workflow.update
    def pause_ehc_clock(self, cmd: EhcPauseInput) -> ActionResult:
        return self._act(self._journey.pause_ehc_clock, cmd)

    @pause_ehc_clock.validator
    def _check_pause_ehc_clock(self, cmd: EhcPauseInput) -> None:
        self._validate("pause_ehc_clock", cmd)

    @workflow.update
    def resume_ehc_clock(self, cmd: EhcResumeInput) -> ActionResult:
        return self._act(self._journey.resume_ehc_clock, cmd)

    @resume_ehc_clock.validator
    def _check_resume_ehc_clock(self, cmd: EhcResumeInput) -> None:
        self._validate("resume_ehc_clock", cmd)

    @workflow.update
    def move_to_code_2014(self, cmd: MigrateInput) -> ActionResult:
        return self._act(self._journey.move_to_code_2014, cmd)

    @move_to_code_2014.validator
    def _check_move_to_code_2014(self, cmd: MigrateInput) -> None:
        self._validate("move_to_code_2014", cmd)

    # -- replies: signals that record, never raise ------------------------------------------

    @workflow.signal
    def assessment_completed(self, raw: RawValue) -> None:
        cmd = self._decode("assessment_completed", raw, AssessmentCompletedInput)
        if cmd is not None:
            self._reply(
                "assessment_completed",
                cmd,
                cmd.reply_id,
                cmd.actor,
                lambda: self._journey.complete_assessment(cmd, workflow.now()),
            )

    @workflow.signal
    def parent_responded(self, raw: RawValue) -> None:
        cmd = self._decode("parent_responded", raw, ParentRespondedInput)
        if cmd is not None:
            self._reply(
                "parent_responded",
                cmd,
                cmd.reply_id,
                Actor(id=cmd.parent_id, role=Role.PARENT),
                lambda: self._journey.parent_responded(cmd, workflow.now()),
            )

    def _decode(self, name: str, raw: RawValue, cls: type[C]) -> C | None:
        try:
            value = workflow.payload_converter().from_payload(raw.payload, cls)
            if not isinstance(value, cls):
                raise TypeError(f"expected an object of {cls.__name__}")
            return value
        except Exception as err:  # malformed payload: record it, never fail the task
            self._reject(name, f"malformed message: {type(err).__name__}", UNKNOWN_SENDER)
            return None

    def _reply(
        self, name: str, cmd: object, reply_id: str, actor: Actor, apply: Callable[[], object]
    ) -> None:
        strict = self._patched(STRICT_REPLIES_PATCH)
        digest = hashlib.sha256(repr(cmd).encode()).hexdigest()[:16] if strict else ""
        try:
            check_opaque_id(reply_id, "reply id")
            if strict:
                check_input(cmd)
            if reply_id in self._state.processed_reply_ids:
                seen = self._state.reply_digests.get(reply_id)
                if strict and seen is not None and seen != digest:
                    raise Refused(f"reply id {reply_id} was already used for a different reply")
                return  # the same reply delivered twice (e.g. a client retry): already applied
            apply()
        except Refused as err:
            # a sender named by something other than an opaque id is not written to history
            known = isinstance(actor, Actor) and _opaque(actor.id)
            self._reject(name, str(err), actor if known else UNKNOWN_SENDER)
            return
        except Exception as err:  # never let a reply fail the workflow task
            self._reject(name, f"could not apply: {type(err).__name__}", UNKNOWN_SENDER)
            return
        self._state.processed_reply_ids.append(reply_id)
        del self._state.processed_reply_ids[:-MAX_REMEMBERED_REPLIES]
        if strict:
            kept = set(self._state.processed_reply_ids)
            digests = self._state.reply_digests
            digests[reply_id] = digest
            for old in [k for k in digests if k not in kept]:
                del digests[old]
        self._changed()

    def _reject(self, name: str, reason: str, actor: Actor) -> None:
        self._journey.reject_message(workflow.now(), name, reason, actor)
        workflow.logger.warning("rejected a %s message", name)  # the reason may quote input
        self._changed()

    # -- queries ----------------------------------------------------------------------------

    @workflow.query
    def state(self) -> JourneyState:
        return self._state

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        return self._state.timeline


def _opaque(value: object) -> bool:
    try:
        check_opaque_id(value, "id")  # type: ignore[arg-type]
    except Refused:
        return False
    return True


def _placeholder(input: PupilJourneyInput) -> Any:
    """A minimal valid start, so a refused start can fail the workflow cleanly in ``run``."""
    from dataclasses import replace

    return replace(
        input.start,
        pupil_id="refused",
        school_id="refused",
        senco_id="refused",
        parent_ids=["refused"],
        actor=Actor(id="refused", role=Role.SENCO),
        concern="refused",
    )
