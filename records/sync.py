"""Rebuild the read model from Temporal, and verify it against each journey's own state.

Temporal is the source of truth: the state of a running journey comes from its ``state``
query, a closed journey's from the result recorded in its history, and the letters sent from
the completed ``send_notice`` activities in the histories of every run. Once retention has
deleted a closed journey from Temporal, its histories come from the archive (``archive``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from activities.notices import SendNoticeInput, SendNoticeResult
from domain.model import EntryKind, JourneyState
from records import models as m
from records.db import migrate, sessions
from records.projection import project, record_message
from workflows.pupil_journey import PupilJourney

Progress = Callable[[str, int], None]  # (what, total) then called once per item with ("", 0)


@dataclass
class Source:
    workflow_id: str
    state: JourneyState
    messages: list[m.MessageSent] = field(default_factory=list)


@dataclass
class Difference:
    workflow_id: str
    what: str
    expected: Any
    found: Any


class ArchivedJourneys(Protocol):
    """Closed journeys Temporal has deleted (``archive.store.Archive``)."""

    def journey_ids(self) -> list[str]: ...

    def latest_runs(self, workflow_id: str) -> list[tuple[str, WorkflowHistory]] | None: ...

    def history(self, workflow_id: str, run_id: str) -> WorkflowHistory | None: ...


async def read_journeys(
    client: Client,
    progress: Progress | None = None,
    where: str | None = None,
    archive: ArchivedJourneys | None = None,
) -> list[Source]:
    """Every journey Temporal knows (``where``: an extra visibility filter), and every
    journey the archive holds that Temporal no longer does."""
    executions: dict[str, list[Any]] = {}
    query = "WorkflowType = 'PupilJourney'" + (f" AND {where}" if where else "")
    async for wf in client.list_workflows(query):
        executions.setdefault(wf.id, []).append(wf)
    if progress:
        progress("reading journeys from Temporal", len(executions))
    sources = []
    gone: set[str] = set()  # deleted by retention while visibility still listed it
    for workflow_id, runs in sorted(executions.items()):
        try:
            found = await _temporal_source(client, archive, workflow_id, runs)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND or archive is None:
                raise
            gone.add(workflow_id)
            found = None
        if found is not None:
            sources.append(found)
        if progress:
            progress("", 0)
    if archive is not None:
        for workflow_id in archive.journey_ids():
            if workflow_id in executions and workflow_id not in gone:
                continue
            archived_runs = archive.latest_runs(workflow_id) or []
            archived = await _archived_source(client.data_converter, workflow_id, archived_runs)
            if archived is not None:
                sources.append(archived)
    return sources


async def _temporal_source(
    client: Client, archive: ArchivedJourneys | None, workflow_id: str, runs: list[Any]
) -> Source | None:
    runs.sort(key=lambda r: r.start_time)
    state = await _state_of(client, workflow_id, runs[-1])
    if state is None:
        return None
    source = Source(workflow_id, state)
    chain = _chain(runs)
    for run in chain:
        source.messages += await _messages(client, workflow_id, run.run_id)
    if archive is not None:  # earlier runs of this journey Temporal has deleted
        for history in await _expired_runs(client, archive, workflow_id, chain[-1]):
            source.messages += await _messages_in(client.data_converter, workflow_id, history)
    return source


async def _expired_runs(
    client: Client, archive: ArchivedJourneys, workflow_id: str, earliest: Any
) -> list[WorkflowHistory]:
    """The archived runs this journey continued from before its earliest run in Temporal."""
    history = await client.get_workflow_handle(workflow_id, run_id=earliest.run_id).fetch_history()
    found = []
    previous = history.events[0].workflow_execution_started_event_attributes
    while previous.continued_execution_run_id:
        older = archive.history(workflow_id, previous.continued_execution_run_id)
        if older is None:
            break  # not archived either: nothing more to read
        found.append(older)
        previous = older.events[0].workflow_execution_started_event_attributes
    return found


async def _archived_source(
    converter: DataConverter, workflow_id: str, runs: list[tuple[str, WorkflowHistory]]
) -> Source | None:
    if not runs:
        return None
    last = runs[-1][1].events[-1]
    if last.event_type is not EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None  # terminated or failed: nothing trustworthy to project (as above)
    payloads = last.workflow_execution_completed_event_attributes.result.payloads
    [state] = await converter.decode(payloads, [JourneyState])
    assert isinstance(state, JourneyState)
    source = Source(workflow_id, state)
    for _, history in runs:
        source.messages += await _messages_in(converter, workflow_id, history)
    return source


def _chain(runs: list[Any]) -> list[Any]:
    """The latest journey's runs: a pupil may have had an earlier, closed journey under the
    same id, so walk back only through runs that continued as new."""
    chain = [runs[-1]]
    for run in reversed(runs[:-1]):
        if run.status is not WorkflowExecutionStatus.CONTINUED_AS_NEW:
            break
        chain.append(run)
    return chain


async def _state_of(client: Client, workflow_id: str, run: Any) -> JourneyState | None:
    handle = client.get_workflow_handle(workflow_id, run_id=run.run_id)
    if run.status is WorkflowExecutionStatus.RUNNING:
        return await handle.query(PupilJourney.state)
    if run.status is WorkflowExecutionStatus.COMPLETED:
        history = await handle.fetch_history()
        attrs = history.events[-1].workflow_execution_completed_event_attributes
        [result] = await client.data_converter.decode(attrs.result.payloads, [JourneyState])
        assert isinstance(result, JourneyState)
        return result
    return None  # terminated or failed: nothing trustworthy to project


async def _messages(client: Client, workflow_id: str, run_id: str) -> list[m.MessageSent]:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return await _messages_in(client.data_converter, workflow_id, history)


async def _messages_in(
    converter: DataConverter, workflow_id: str, history: WorkflowHistory
) -> list[m.MessageSent]:
    scheduled: dict[int, tuple[SendNoticeInput, datetime]] = {}
    rows = []
    for event in history.events:
        if event.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "send_notice":
                [value] = await converter.decode(attrs.input.payloads, [SendNoticeInput])
                # the activity stamps a message with its scheduled time: the same here
                scheduled[event.event_id] = (value, event.event_time.ToDatetime(tzinfo=UTC))
        elif event.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id not in scheduled:
                continue
            sent, sent_at = scheduled[done.scheduled_event_id]
            [result] = await converter.decode(done.result.payloads, [SendNoticeResult])
            rows.append(
                m.MessageSent(
                    workflow_id=workflow_id,
                    notice_key=sent.notice.key,
                    kind=sent.notice.kind,
                    recipient_role=sent.notice.recipient_role.value,
                    recipient_id=sent.notice.recipient_id,
                    message_id=result.message_id,
                    sent_at=sent_at,
                )
            )
    return rows


def rebuild(engine: Engine, sources: list[Source], progress: Progress | None = None) -> int:
    """Empty the tables projected from Temporal and project every journey again, in one
    transaction. Tables Temporal cannot give back (contacts, users, the archive) are kept.
    Returns journeys written."""
    migrate(engine)
    if progress:
        progress("rebuilding the read model", len(sources))
    with sessions(engine).begin() as session:
        for table in reversed(m.Base.metadata.sorted_tables):
            if table.name in m.PROJECTED_TABLES:
                session.execute(table.delete())
        for source in sources:
            project(session, source.workflow_id, source.state)
            for row in source.messages:
                record_message(session, row)
            if progress:
                progress("", 0)
    return len(sources)


def verify(session: Session, sources: list[Source]) -> list[Difference]:
    """Every way the read model disagrees with Temporal; empty means they agree."""
    diffs: list[Difference] = []
    known = {s.workflow_id for s in sources}
    for workflow_id in session.scalars(select(m.Journey.workflow_id)):
        if workflow_id not in known:
            diffs.append(Difference(workflow_id, "journey", None, "row without a journey"))
    for source in sources:
        diffs += _verify_one(session, source)
    return diffs


def _verify_one(session: Session, source: Source) -> list[Difference]:
    wf, s = source.workflow_id, source.state
    diffs: list[Difference] = []

    def check(what: str, expected: Any, found: Any) -> None:
        if expected != found:
            diffs.append(Difference(wf, what, expected, found))

    journey = session.get(m.Journey, wf)
    if journey is None:
        return [Difference(wf, "journey", "a row", None)]
    check("stage", s.stage.value, journey.stage)
    check("phase", s.phase.value, journey.phase)
    check("overdue", s.overdue, journey.overdue)
    check("next_review_at", s.review_due_at, journey.next_review_at)
    check("closed_at", s.closed_at, journey.closed_at)
    check("last_step", s.step, journey.last_step)
    pupil = session.get(m.Pupil, (s.pupil_id, s.school_id))
    check("pupil.school", s.school_id, pupil.school_id if pupil else None)
    check(
        "stage_changes",
        sorted(e.step for e in s.timeline if e.kind is EntryKind.DECISION and e.stage_before),
        sorted(session.scalars(select(m.StageChange.step).where(m.StageChange.workflow_id == wf))),
    )
    check(
        "reviews",
        sorted(r.review_id for r in s.reviews),
        sorted(session.scalars(select(m.Review.review_id).where(m.Review.workflow_id == wf))),
    )
    check(
        "ieps",
        sorted(i.iep_id for i in [*s.past_ieps, *([s.iep] if s.iep else [])]),
        sorted(session.scalars(select(m.Iep.iep_id).where(m.Iep.workflow_id == wf))),
    )
    check(
        "consultations",
        {c.consultation_id: c.status.value for c in s.consultations},
        dict(
            session.execute(
                select(m.Consultation.consultation_id, m.Consultation.status).where(
                    m.Consultation.workflow_id == wf
                )
            ).all()
        ),
    )
    check(
        "referrals",
        {r.referral_id: (r.status.value, r.chases) for r in s.referrals},
        {
            rid: (status, chases)
            for rid, status, chases in session.execute(
                select(m.Referral.referral_id, m.Referral.status, m.Referral.chases).where(
                    m.Referral.workflow_id == wf
                )
            )
        },
    )
    return diffs
