"""The bare baseline: the journey's message pattern on plain Temporal, with no domain logic.

``BareJourney`` takes the same messages as ``PupilJourney`` (a start, validated updates, a
signal, queries, a review timer) and does the same *Temporal* work for them: each accepted
message queues the number of notices the real journey queues for it (counted by the benchmark
from the pure domain, ``bench.shape``) and bumps a step; one pump delivers notices one at a time
through an activity, another records changes through an activity, coalesced, exactly as the
journey's pumps do. What it leaves out is everything senflow adds on top of Temporal: the
``transitions`` machine, the rules, the journey's state and its payloads, search attributes,
memo, timers re-armed on every change, letters rendered and files and rows written.

With ``mirror_effects=False`` (``--baseline bare``) it runs no notice or record activity at all
except the storm's one reminder: the literal "messages only" baseline.

With ``publish=True`` (``--baseline visibility``) it also writes to visibility what the journey
writes for the same messages: its start's search attributes and memo, one patch marker, the
stage and next review when School Action opens and when it closes, the machine state in the
memo at each of those and when the review falls due. Not the default: it measures how much of
senflow's cost is that, not a bare Temporal workflow.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from workflows.priority import notice_priority
from workflows.search_attributes import SEN_NEXT_REVIEW, SEN_STAGE

#: The activities' retry and timeouts match the journey's (retry until delivered).
_TIMEOUT = timedelta(seconds=30)


@dataclass
class BareInput:
    #: Notices the real journey queues for each message kind ("start", update names,
    #: "signal", "review_due"); the first notice of ``review_due`` is the reminder.
    notices: dict[str, int] = field(default_factory=dict)
    mirror_effects: bool = True
    #: The storm: the review falls due at this instant (None: no review timer).
    review_due_at: datetime | None = None
    #: ``--baseline visibility``: write what senflow's journey writes to visibility for the
    #: same messages (its patch marker, search attributes and memo), with fixed values.
    publish: bool = False


@dataclass
class BareUpdate:
    name: str
    text: str


@dataclass
class BareResult:
    step: int


@dataclass
class BareState:
    step: int
    recorded_step: int
    outbox: int
    review_due: bool
    fired_at: datetime | None


@dataclass
class BareNoticeInput:
    workflow_id: str
    key: str
    kind: str


@dataclass
class BareRecordInput:
    workflow_id: str
    step: int


@activity.defn(name="bare_notice")
async def bare_notice(input: BareNoticeInput) -> str:
    return input.key


@activity.defn(name="bare_record")
async def bare_record(input: BareRecordInput) -> int:
    return input.step


@workflow.defn
class BareJourney:
    """Updates: act (validated: a non-empty name and text), finish (completes the workflow).
    Signal: reply. Query: state. Timer: the review (storm), which queues the reminder."""

    @workflow.init
    def __init__(self, input: BareInput) -> None:
        self._input = input
        self._step = 0
        self._recorded = 0
        self._outbox: list[str] = []
        self._finished = False
        self._review_due = False
        self._fired_at: datetime | None = None

    @workflow.run
    async def run(self, input: BareInput) -> BareResult:
        self._changed("start")
        pumps = [asyncio.create_task(self._deliver())]
        if input.mirror_effects:
            pumps.append(asyncio.create_task(self._record()))
        if input.review_due_at is not None:
            pumps.append(asyncio.create_task(self._review_timer(input.review_due_at)))
        await workflow.wait_condition(lambda: self._finished)
        await workflow.wait_condition(self._drained)
        for pump in pumps:
            pump.cancel()
        return BareResult(self._step)

    def _drained(self) -> bool:
        recorded = not self._input.mirror_effects or self._recorded >= self._step
        return workflow.all_handlers_finished() and not self._outbox and recorded

    def _changed(self, kind: str) -> None:
        self._step += 1
        count = self._input.notices.get(kind, 0) if self._input.mirror_effects else 0
        if kind == "review_due":
            count = max(count, 1)  # the reminder: the storm waits for it on both sides
        self._outbox += [f"{self._step}-{kind}-{n}" for n in range(count)]

    async def _review_timer(self, due: datetime) -> None:
        delay = due - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)
        self._review_due = True
        self._fired_at = workflow.now()
        if self._input.publish:  # senflow's machine state moves to review_due
            workflow.upsert_memo({"machine_state": "school_action__review_due"})
        self._changed("review_due")

    async def _deliver(self) -> None:
        wf_id = workflow.info().workflow_id
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox))
            key = self._outbox[0]
            # the message that queued it, and the storm's reminder named as senflow names it
            kind = "review_reminder" if key.endswith("-review_due-0") else key.split("-")[1]
            await workflow.execute_activity(
                bare_notice,
                BareNoticeInput(wf_id, key, kind),
                start_to_close_timeout=_TIMEOUT,
                priority=notice_priority(kind),  # the journey's order, mirrored
            )
            self._outbox.pop(0)

    async def _record(self) -> None:
        wf_id = workflow.info().workflow_id
        while True:
            await workflow.wait_condition(lambda: self._recorded < self._step)
            step = self._step
            await workflow.execute_activity(
                bare_record, BareRecordInput(wf_id, step), start_to_close_timeout=_TIMEOUT
            )
            self._recorded = max(self._recorded, step)

    @workflow.update
    def act(self, cmd: BareUpdate) -> BareResult:
        self._changed(cmd.name)
        if self._input.publish and cmd.name == "open_school_action":
            # senflow's first change: its run's one patch marker, the stage and next review,
            # and the machine state in the memo
            workflow.patched("bare-visibility")
            review = workflow.now() + timedelta(days=91)
            workflow.upsert_search_attributes(
                [SEN_STAGE.value_set("school_action"), SEN_NEXT_REVIEW.value_set(review)]
            )
            workflow.upsert_memo({"machine_state": "school_action__awaiting_parents"})
        return BareResult(self._step)

    @act.validator
    def _check_act(self, cmd: BareUpdate) -> None:
        if not cmd.name or not cmd.text:
            raise ApplicationError("an action needs a name and a text", type="Refused")

    @workflow.update
    def finish(self, cmd: BareUpdate) -> BareResult:
        self._changed(cmd.name)
        self._finished = True
        if self._input.publish:
            workflow.upsert_search_attributes(
                [SEN_STAGE.value_set("closed"), SEN_NEXT_REVIEW.value_unset()]
            )
            workflow.upsert_memo({"machine_state": "closed__ended"})
        return BareResult(self._step)

    @finish.validator
    def _check_finish(self, cmd: BareUpdate) -> None:
        if not cmd.name or not cmd.text:
            raise ApplicationError("an action needs a name and a text", type="Refused")

    @workflow.signal
    def reply(self, cmd: BareUpdate) -> None:
        self._changed("signal")

    @workflow.query
    def state(self) -> BareState:
        return BareState(
            self._step, self._recorded, len(self._outbox), self._review_due, self._fired_at
        )
