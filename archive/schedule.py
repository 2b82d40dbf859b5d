"""The archiver's Temporal Schedule (visible in the Web UI under Schedules), created or updated
idempotently by ``senflow archive schedule`` and by a worker started with
SENFLOW_ARCHIVE_SCHEDULE=1 (what ``make run`` and docker-compose do)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from archive.messages import ArchivePassInput
from archive.workflow import JourneyArchiver
from domain.commands import Refused
from settings import Settings

SCHEDULE_ID = "senflow-archiver"
NOTE = (
    "Archives closed PupilJourney runs before the namespace retention deletes them; "
    "check with `senflow archive status`."
)
#: How many archiver intervals must fit in the retention ("well inside it").
RETENTION_MARGIN = 4


def check_interval(every: timedelta, retention: timedelta) -> None:
    if every * RETENTION_MARGIN > retention:
        raise Refused(
            f"the archiver would run every {every}, not well inside the retention of "
            f"{retention}: make SENFLOW_ARCHIVE_EVERY_MINUTES at most 1/{RETENTION_MARGIN} "
            "of the retention"
        )


def archiver_schedule(
    settings: Settings, input: ArchivePassInput, workflow_id: str = SCHEDULE_ID
) -> Schedule:
    every = settings.archive_every
    return Schedule(
        action=ScheduleActionStartWorkflow(
            JourneyArchiver.run,
            input,
            id=workflow_id,  # Temporal appends the scheduled time
            task_queue=settings.task_queue,
            # a pass that hangs (no worker) must not block the ones after it forever
            execution_timeout=max(every * 2, timedelta(minutes=10)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
        state=ScheduleState(note=NOTE),
    )


async def ensure_schedule(
    client: Client,
    settings: Settings,
    schedule_id: str = SCHEDULE_ID,
    input: ArchivePassInput | None = None,
) -> str:
    """Create the schedule, or bring an existing one to these settings (keeping a pause an
    operator made). Returns ``created`` or ``updated``."""
    check_interval(settings.archive_every, settings.retention)
    schedule = archiver_schedule(settings, input or ArchivePassInput(), schedule_id)
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(keep_state)
    return "updated"


@dataclass
class ScheduleView:
    schedule_id: str
    every: timedelta | None
    paused: bool
    next_runs: list[datetime]
    last_run: datetime | None
    last_workflow_id: str | None
    actions: int


async def describe_schedule(client: Client, schedule_id: str = SCHEDULE_ID) -> ScheduleView | None:
    try:
        d = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    intervals = d.schedule.spec.intervals
    recent = d.info.recent_actions[-1] if d.info.recent_actions else None
    return ScheduleView(
        schedule_id=schedule_id,
        every=intervals[0].every if intervals else None,
        paused=d.schedule.state.paused,
        next_runs=list(d.info.next_action_times),
        last_run=recent.started_at if recent else None,
        last_workflow_id=getattr(recent.action, "workflow_id", None) if recent else None,
        actions=d.info.num_actions,
    )
