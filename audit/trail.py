"""An auditor's record of a journey, read from Temporal's event histories — not from the
workflow's own query — so it works for closed journeys and follows every continued-as-new run.

Each run's history holds snapshots of the journey: its start input (the state carried over
from the previous run), every ``record_journey`` activity input (what changed, as it
changed), and its end (the state handed to the next run, or the final result). Folding them
in order gives the journey as it was recorded.

Histories are read from Temporal while it has them and from the archive (``archive``) once
retention has deleted them — run by run, so a long journey whose early runs have expired
but whose last run is still in Temporal reads whole, and the output is the same either way.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from activities.records import RecordJourneyInput
from domain.commands import PupilJourneyInput
from domain.model import JourneyState, TimelineEntry


@dataclass
class Run:
    run_id: str
    history: WorkflowHistory


@dataclass
class Trail:
    """A journey as its histories recorded it."""

    workflow_id: str
    runs: list[Run]
    state: JourneyState
    snapshots: int = 0  # how many recorded snapshots were folded
    notes: list[str] = field(default_factory=list)


class HistoryArchive(Protocol):
    """Where closed runs' histories are kept after Temporal has deleted them
    (``archive.store.Archive``). Raises ``domain.commands.Refused`` with the reason when it
    holds a journey only in part, or its bytes no longer match their hash."""

    def history(self, workflow_id: str, run_id: str) -> WorkflowHistory | None: ...

    def latest_runs(self, workflow_id: str) -> list[tuple[str, WorkflowHistory]] | None: ...

    def journey_ids(self) -> list[str]: ...


_archive_opener: Callable[[], HistoryArchive | None] | None = None
_opened: list[HistoryArchive | None] = []


def use_archive(opener: Callable[[], HistoryArchive | None] | None) -> None:
    """Where ``fetch_runs`` looks for histories Temporal no longer has. Opened lazily, only
    when a history is missing; ``None`` turns the fallback off."""
    global _archive_opener
    _archive_opener = opener
    _opened.clear()


def default_archive() -> HistoryArchive | None:
    if _archive_opener is None:
        return None
    if not _opened:
        _opened.append(_archive_opener())
    return _opened[0]


async def fetch_runs(
    client: Client, workflow_id: str, archive: HistoryArchive | None = None
) -> list[Run]:
    """Every run of the latest journey under this id, oldest first (follows continue-as-new):
    from Temporal while it has them, else from the archive."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        archive = archive or await asyncio.to_thread(default_archive)
        if err.status is not RPCStatusCode.NOT_FOUND or archive is None:
            raise
        archived = await asyncio.to_thread(archive.latest_runs, workflow_id)
        if not archived:
            raise
        return [Run(run_id, history) for run_id, history in archived]
    run_id = description.raw_description.workflow_execution_info.first_run_id
    runs = []
    while run_id:
        try:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        except RPCError as err:
            archive = archive or await asyncio.to_thread(default_archive)
            if err.status is not RPCStatusCode.NOT_FOUND or archive is None:
                raise
            found = await asyncio.to_thread(archive.history, workflow_id, run_id)
            if found is None:
                raise
            history = found
        runs.append(Run(run_id, history))
        last = history.events[-1]
        run_id = ""
        if last.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


async def archived_journey_ids(archive: HistoryArchive | None = None) -> list[str]:
    """Workflow ids the archive holds (for ``--all``: journeys Temporal may have deleted)."""
    archive = archive or await asyncio.to_thread(default_archive)
    return [] if archive is None else await asyncio.to_thread(archive.journey_ids)


async def snapshots(converter: DataConverter, run: Run) -> list[JourneyState]:
    """The journey states a run's history holds, in the order they were recorded."""
    found: list[JourneyState] = []
    for event in run.history.events:
        value = await _snapshot(converter, event)
        if value is not None:
            found.append(value)
    return found


async def _snapshot(converter: DataConverter, event: HistoryEvent) -> JourneyState | None:
    kind = event.event_type
    if kind is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [start] = await converter.decode(payloads, [PupilJourneyInput])
        return start.carried if isinstance(start, PupilJourneyInput) else None
    if kind is EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name != "record_journey":
            return None
        [change] = await converter.decode(attrs.input.payloads, [RecordJourneyInput])
        assert isinstance(change, RecordJourneyInput)
        return change.changes
    if kind is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        payloads = event.workflow_execution_continued_as_new_event_attributes.input.payloads
        [carried] = await converter.decode(payloads, [PupilJourneyInput])
        return carried.carried if isinstance(carried, PupilJourneyInput) else None
    if kind is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        payloads = event.workflow_execution_completed_event_attributes.result.payloads
        [final] = await converter.decode(payloads, [JourneyState])
        return final if isinstance(final, JourneyState) else None
    return None


def fold(states: Iterable[JourneyState]) -> JourneyState:
    """Merge recorded snapshots, oldest first: a later record of the same thing wins."""
    result: JourneyState | None = None
    for s in states:
        if result is None:
            result = copy.deepcopy(s)
            continue
        entries = {_entry_key(e): e for e in result.timeline}
        for e in s.timeline:
            entries[_entry_key(e)] = e
        merged = copy.deepcopy(s)
        merged.timeline = sorted(entries.values(), key=lambda e: (e.step, _KIND_ORDER(e)))
        merged.past_ieps = _union(result.past_ieps, s.past_ieps, "iep_id")
        if result.iep is not None and (s.iep is None or s.iep.iep_id != result.iep.iep_id):
            merged.past_ieps = _union(merged.past_ieps, [result.iep], "iep_id")
        if merged.iep is not None:
            merged.past_ieps = [i for i in merged.past_ieps if i.iep_id != merged.iep.iep_id]
        merged.reviews = _union(result.reviews, s.reviews, "review_id")
        merged.consultations = _union(result.consultations, s.consultations, "consultation_id")
        merged.referrals = _union(result.referrals, s.referrals, "referral_id")
        result = merged
    if result is None:
        raise ValueError("no recorded state in these histories")
    result.past_ieps.sort(key=lambda i: i.agreed_at)
    return result


def _entry_key(e: TimelineEntry) -> tuple[Any, ...]:
    return (e.step, e.kind.value, e.ref, e.summary)


def _KIND_ORDER(e: TimelineEntry) -> int:  # noqa: N802 - a sort key, read as a table
    return 0 if e.kind.value in ("decision", "review", "started") else 1


def _union(old: list[Any], new: list[Any], key: str) -> list[Any]:
    merged = {getattr(x, key): x for x in old}
    for x in new:
        merged[getattr(x, key)] = x
    return list(merged.values())


async def trail_from_runs(converter: DataConverter, workflow_id: str, runs: list[Run]) -> Trail:
    states: list[JourneyState] = []
    for run in runs:
        states += await snapshots(converter, run)
    trail = Trail(workflow_id, runs, fold(states), snapshots=len(states))
    last = runs[-1].history.events[-1].event_type
    if last not in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    ):
        trail.notes.append(
            "the journey is still running: changes not yet recorded by its "
            "record_journey activity are not shown"
        )
    return trail


async def trail_of(client: Client, workflow_id: str) -> Trail:
    runs = await fetch_runs(client, workflow_id)
    return await trail_from_runs(client.data_converter, workflow_id, runs)


# -- export / import: Temporal's JSON history format, one object per run -------------------


def export_json(trail_or_runs: Trail | list[Run], workflow_id: str) -> str:
    runs = trail_or_runs.runs if isinstance(trail_or_runs, Trail) else trail_or_runs
    return json.dumps(
        {
            "workflowId": workflow_id,
            "runs": [{"runId": r.run_id, "history": json.loads(r.history.to_json())} for r in runs],
        },
        indent=1,
        # protobuf prints map fields (payload metadata, headers) in whatever order the map
        # was filled: sorted keys make the same history export to the same text, whether it
        # came from Temporal or from the archive
        sort_keys=True,
    )


def load_histories(text: str, name: str) -> list[Run]:
    """An export bundle, or a single run's history as `temporal workflow show -o json` writes."""
    data = json.loads(text)
    if isinstance(data, dict) and "runs" in data:
        workflow_id = data.get("workflowId", name)
        return [
            Run(
                r.get("runId", f"{name}#{i}"),
                WorkflowHistory.from_json(workflow_id, json.dumps(r["history"])),
            )
            for i, r in enumerate(data["runs"])
        ]
    return [Run(name, WorkflowHistory.from_json(name, text))]
