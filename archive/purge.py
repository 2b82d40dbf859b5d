"""``senflow archive purge PUPIL``: erase a pupil's closed journeys — archived histories,
read-model rows, letters in the outbox, and any closed run Temporal still holds — and log
who did it, when and why, without anything that identifies the pupil.

Refused while the pupil has an open journey. Only an admin may purge, and only with
SENFLOW_PURGE_KEY set: the log keeps HMAC(key, pupil id), so whoever holds the key can
later prove a pupil was erased, and the archiver (which has the key too) can refuse to
archive again a run it read just before the purge.
"""

from __future__ import annotations

import asyncio
import enum
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import delete, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from access.models import AccessBase
from archive.models import ArchivedRun, PurgeLogEntry
from archive.store import Archive, pupil_ref
from domain.commands import Refused, check_opaque_id
from domain.model import Actor, Role
from records import models as read_model


class PurgeReason(enum.Enum):
    #: the school's records retention period for this pupil has ended
    RETENTION_ENDED = "retention-ended"
    #: a data-protection erasure request the school has accepted
    ERASURE_REQUEST = "erasure-request"


@dataclass
class PurgeResult:
    purge_id: str
    pupil_ref: str
    archived_runs: int
    read_model_rows: int
    temporal_runs: int
    letters: int
    #: Temporal deletes asynchronously: runs it had not finished deleting when we stopped waiting
    temporal_pending: int


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")  # how activities/notices.py names outbox files


async def purge(
    client: Client,
    archive: Archive,
    pupil_id: str,
    actor: Actor,
    reason: PurgeReason,
    purge_key: str | None,
    outbox_dir: Path | None = None,
    wait: float = 60.0,
) -> PurgeResult:
    check_opaque_id(pupil_id, "pupil id")
    if actor.role is not Role.ADMIN:
        raise Refused("only an admin may purge a pupil's records")
    if not purge_key:
        raise Refused("SENFLOW_PURGE_KEY is not set: the purge log could not name the pupil")
    if not archive.available():
        raise Refused("the archive's tables are missing: run `senflow records migrate` first")
    workflow_id = f"pupil-{pupil_id}"
    in_temporal = await _runs_in_temporal(client, workflow_id)
    if any(status is WorkflowExecutionStatus.RUNNING for _, status in in_temporal):
        raise Refused(
            f"pupil {pupil_id} has an open journey ({workflow_id}): close it before purging"
        )

    entry = PurgeLogEntry(
        purge_id=str(uuid.uuid4()),
        pupil_ref=pupil_ref(purge_key, pupil_id),
        actor_id=actor.id,
        actor_role=actor.role.value,
        reason=reason.value,
        started_at=datetime.now(UTC),
        archived_runs=0,
        read_model_rows=0,
        temporal_runs=0,
        letters=0,
    )
    # The log entry is committed before anything is deleted: an archiver that stores one of
    # these runs after this point sees the entry and undoes its own write (archive/store.py).
    await asyncio.to_thread(_log_start, archive, entry)

    for run_id, _ in in_temporal:
        await _delete_from_temporal(client, workflow_id, run_id)
    archived, rows, files = await asyncio.to_thread(_delete_rows, archive, entry, pupil_id)
    for location in files:
        Path(unquote(urlparse(location).path)).unlink(missing_ok=True)
    if archive.blobs is not None:
        archive.blobs.delete(workflow_id)
    letters = _delete_letters(outbox_dir, workflow_id) if outbox_dir is not None else 0
    pending = await _wait_until_deleted(client, workflow_id, [r for r, _ in in_temporal], wait)
    await asyncio.to_thread(_log_finish, archive, entry.purge_id, len(in_temporal), letters)
    return PurgeResult(
        entry.purge_id, entry.pupil_ref, archived, rows, len(in_temporal), letters, pending
    )


async def _runs_in_temporal(
    client: Client, workflow_id: str
) -> list[tuple[str, WorkflowExecutionStatus | None]]:
    runs: dict[str, WorkflowExecutionStatus | None] = {}
    async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        runs[wf.run_id] = wf.status
    try:  # visibility lags; the current run's status is read where it is always up to date
        described = await client.get_workflow_handle(workflow_id).describe()
        runs[described.run_id] = described.status
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
    return sorted(runs.items())


async def _delete_from_temporal(client: Client, workflow_id: str, run_id: str) -> None:
    try:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            )
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise


async def _wait_until_deleted(
    client: Client, workflow_id: str, run_ids: list[str], wait: float
) -> int:
    """Temporal deletes a closed run asynchronously (after its queues' next ack, up to ~30 s)."""
    left = set(run_ids)
    deadline = asyncio.get_running_loop().time() + wait
    while left and asyncio.get_running_loop().time() < deadline:
        for run_id in sorted(left):
            try:
                await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
                left.discard(run_id)
        if left:
            await asyncio.sleep(0.5)
    return len(left)


def _log_start(archive: Archive, entry: PurgeLogEntry) -> None:
    with archive.sessions.begin() as session:
        session.add(entry)


def _delete_rows(
    archive: Archive, entry: PurgeLogEntry, pupil_id: str
) -> tuple[int, int, list[str]]:
    workflow_id = f"pupil-{pupil_id}"
    with archive.sessions.begin() as session:
        files = [
            loc
            for loc in session.scalars(
                select(ArchivedRun.location).where(ArchivedRun.workflow_id == workflow_id)
            )
            if loc.startswith("file:")
        ]
        archived = _count(
            session.execute(delete(ArchivedRun).where(ArchivedRun.workflow_id == workflow_id))
        )
        rows = 0
        # every table keyed by the journey (children first): the read model's, and parents'
        # single-purpose reply codes for its consultations; then the pupil
        tables = [*read_model.Base.metadata.sorted_tables, *AccessBase.metadata.sorted_tables]
        for table in reversed(tables):
            if "workflow_id" in table.c:
                rows += _count(
                    session.execute(delete(table).where(table.c.workflow_id == workflow_id))
                )
        rows += _count(
            session.execute(delete(read_model.Pupil).where(read_model.Pupil.pupil_id == pupil_id))
        )
        logged = session.get(PurgeLogEntry, entry.purge_id)
        assert logged is not None
        logged.archived_runs, logged.read_model_rows = archived, rows
    return archived, rows, files


def _count(result: Any) -> int:
    return int(result.rowcount)


def _delete_letters(outbox_dir: Path, workflow_id: str) -> int:
    pattern = f"{_UNSAFE.sub('_', workflow_id)}--*.eml"
    letters = [*outbox_dir.glob(pattern), *(outbox_dir / "undeliverable").glob(pattern)]
    for letter in letters:
        letter.unlink(missing_ok=True)
    return len(letters)


def _log_finish(archive: Archive, purge_id: str, temporal_runs: int, letters: int) -> None:
    with archive.sessions.begin() as session:
        logged = session.get(PurgeLogEntry, purge_id)
        assert logged is not None
        logged.temporal_runs, logged.letters = temporal_runs, letters
        logged.finished_at = datetime.now(UTC)


def purge_log(archive: Archive, pupil_id: str | None, purge_key: str | None) -> list[PurgeLogEntry]:
    with archive.sessions() as session:
        query = select(PurgeLogEntry).order_by(PurgeLogEntry.started_at)
        if pupil_id is not None:
            if not purge_key:
                raise Refused("SENFLOW_PURGE_KEY is needed to look a pupil up in the purge log")
            check_opaque_id(pupil_id, "pupil id")
            query = query.where(PurgeLogEntry.pupil_ref == pupil_ref(purge_key, pupil_id))
        return list(session.scalars(query))
