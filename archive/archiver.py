"""Archiving passes: list closed journey runs in Temporal, store each one not yet archived.

Every *run* is archived as soon as it closes — including runs that continued as new. A
journey lasts years and continues as new at least every school year, while retention is
days to months, so waiting for the whole journey to close would lose its early runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from archive.messages import ArchiveBatchInput, ArchiveBatchResult, ArchivePassResult
from archive.store import Archive, MissingPurgeKey, pack

log = structlog.get_logger("senflow.archive")

JOURNEY_TYPE = "PupilJourney"


@dataclass(frozen=True)
class ClosedRun:
    workflow_id: str
    run_id: str
    closed_at: datetime


async def closed_runs(client: Client, where: str | None = None) -> list[ClosedRun]:
    """Every closed run of a journey Temporal still holds (continued-as-new runs included)."""
    query = f"WorkflowType = '{JOURNEY_TYPE}' AND ExecutionStatus != 'Running'"
    if where:
        query += f" AND {where}"
    found = []
    async for wf in client.list_workflows(query):
        if wf.close_time is not None:
            found.append(ClosedRun(wf.id, wf.run_id, wf.close_time))
    return found


async def archive_batch(
    client: Client,
    archive: Archive,
    input: ArchiveBatchInput,
    heartbeat: Callable[..., None] | None = None,
) -> ArchiveBatchResult:
    """Archive up to ``input.limit`` closed runs not yet archived, oldest closed first (the
    nearest to deletion)."""
    runs = await closed_runs(client, input.where)
    done = await asyncio.to_thread(archive.archived, [(r.workflow_id, r.run_id) for r in runs])
    todo = sorted(
        (r for r in runs if (r.workflow_id, r.run_id) not in done), key=lambda r: r.closed_at
    )
    result = ArchiveBatchResult(more=len(todo) > input.limit)
    for i, run in enumerate(todo[: input.limit]):
        outcome = await archive_run(client, archive, run, input.pass_id)
        result.note(outcome, f"{run.workflow_id} run {run.run_id}")
        log.info(
            "run_archived" if outcome == "archived" else "run_not_archived",
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            outcome=outcome,
            archiver=input.pass_id,
        )
        if heartbeat is not None:
            heartbeat(i + 1)
    return result


async def archive_run(client: Client, archive: Archive, run: ClosedRun, pass_id: str) -> str:
    try:
        history = await client.get_workflow_handle(
            run.workflow_id, run_id=run.run_id
        ).fetch_history()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        archived = await asyncio.to_thread(archive.archived, [(run.workflow_id, run.run_id)])
        return "already" if archived else "lost: Temporal deleted it before it was archived"
    packed = pack(run.workflow_id, run.run_id, history)
    return await asyncio.to_thread(archive.store, packed, pass_id)


async def archive_pass(
    client: Client,
    archive: Archive,
    pass_id: str,
    batch_size: int = 100,
    max_batches: int = 100,
    where: str | None = None,
) -> ArchivePassResult:
    """What the archiver workflow does, in this process (``senflow archive run``)."""
    result = ArchivePassResult()
    for _ in range(max_batches):
        batch = await archive_batch(client, archive, ArchiveBatchInput(pass_id, batch_size, where))
        result.add(batch)
        if not batch.more:
            break
    return result


class Archiver:
    """The archiver's activity; built in ``worker.py`` with the worker's client."""

    def __init__(self, client: Client, archive: Archive) -> None:
        self.client = client
        self.archive = archive

    @activity.defn(name="archive_closed_runs")
    async def archive_closed_runs(self, input: ArchiveBatchInput) -> ArchiveBatchResult:
        try:
            result = await archive_batch(self.client, self.archive, input, activity.heartbeat)
        except MissingPurgeKey as err:
            raise ApplicationError(str(err), type="MissingPurgeKey", non_retryable=True) from err
        log.info(
            "archive_batch",
            archiver=input.pass_id,
            archived=result.archived,
            already=result.already,
            lost=result.lost,
            failed=result.failed,
            more=result.more,
        )
        return result
