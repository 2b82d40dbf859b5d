"""``senflow archive status``: is every closed run going to be archived before Temporal's
retention deletes it?

The *dangerous set* is every closed run not yet archived that Temporal may delete before
the archiver can be expected to have stored it: all of them when no schedule is active;
otherwise those whose retention ends before the next scheduled pass plus one more interval
(one failed pass is survivable). It must be empty.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus

from archive.archiver import closed_runs
from archive.schedule import RETENTION_MARGIN, SCHEDULE_ID, ScheduleView, describe_schedule
from archive.store import Archive
from settings import Settings


@dataclass
class PendingRun:
    workflow_id: str
    run_id: str
    closed_at: datetime
    deleted_from: datetime  # the earliest Temporal may delete it (close + retention)


@dataclass
class ArchiveStatus:
    namespace: str
    retention: timedelta
    configured_retention: timedelta
    schedule: ScheduleView | None
    closed_runs: int
    archived_runs: int  # of those closed runs Temporal still holds
    pending: list[PendingRun]
    dangerous: list[PendingRun]
    archive: dict[str, int]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def pass_failure(client: Client, workflow_id: str) -> str | None:
    """Why a pass ended without archiving, or None while it runs or once it has completed."""
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    if described.status in (
        None,
        WorkflowExecutionStatus.RUNNING,
        WorkflowExecutionStatus.COMPLETED,
    ):
        return None
    last = (await handle.fetch_history()).events[-1]
    if last.HasField("workflow_execution_failed_event_attributes"):
        cause = last.workflow_execution_failed_event_attributes.failure
        while cause.HasField("cause"):
            cause = cause.cause
        return cause.message
    return described.status.name.lower()


def human(duration: timedelta | None) -> str:
    """30 days, 6 hours, 90 minutes: durations as people write them."""
    if duration is None:
        return "-"
    seconds = int(duration.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


async def namespace_retention(client: Client) -> timedelta:
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    retention: timedelta = described.config.workflow_execution_retention_ttl.ToTimedelta()
    return retention


async def archive_status(
    client: Client,
    archive: Archive,
    settings: Settings,
    schedule_id: str = SCHEDULE_ID,
    where: str | None = None,
    now: datetime | None = None,
) -> ArchiveStatus:
    now = now or datetime.now(UTC)
    retention = await namespace_retention(client)
    schedule = await describe_schedule(client, schedule_id)
    runs = await closed_runs(client, where)
    done = await asyncio.to_thread(archive.archived, [(r.workflow_id, r.run_id) for r in runs])
    pending = sorted(
        (
            PendingRun(r.workflow_id, r.run_id, r.closed_at, r.closed_at + retention)
            for r in runs
            if (r.workflow_id, r.run_id) not in done
        ),
        key=lambda p: p.deleted_from,
    )
    status = ArchiveStatus(
        namespace=client.namespace,
        retention=retention,
        configured_retention=settings.retention,
        schedule=schedule,
        closed_runs=len(runs),
        archived_runs=len(done),
        pending=pending,
        dangerous=[],
        archive=await asyncio.to_thread(archive.totals),
    )
    active = schedule is not None and not schedule.paused and schedule.every is not None
    if schedule is None:
        status.problems.append(
            f"no archiver schedule ({schedule_id}): run `senflow archive schedule`"
        )
    elif schedule.paused:
        status.problems.append(f"the archiver schedule {schedule_id} is paused")
    if schedule is not None and schedule.last_workflow_id:
        failure = await pass_failure(client, schedule.last_workflow_id)
        if failure:
            status.problems.append(
                f"the last archiver pass ({schedule.last_workflow_id}) failed: {failure}"
            )
    if active:
        assert schedule is not None and schedule.every is not None
        every = schedule.every
        if every * RETENTION_MARGIN > retention:
            status.problems.append(
                f"the archiver runs every {human(every)}: not well inside the retention of "
                f"{human(retention)}"
            )
        next_run = schedule.next_runs[0] if schedule.next_runs else now + every
        horizon = max(next_run, now) + every
        status.dangerous = [p for p in pending if p.deleted_from <= horizon]
    else:
        status.dangerous = list(pending)
    if status.dangerous:
        status.problems.append(
            f"{len(status.dangerous)} closed run(s) may be deleted by Temporal before they "
            "are archived: run `senflow archive run` now"
        )
    if retention != settings.retention:
        status.notes.append(
            f"namespace retention is {human(retention)}, SENFLOW_RETENTION_DAYS asks for "
            f"{human(settings.retention)} (`make run` sets it; elsewhere `temporal operator "
            "namespace update --retention`)"
        )
    return status
