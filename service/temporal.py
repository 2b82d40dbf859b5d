"""One journey's Temporal calls, by journey id: start, update, signal, query, list, histories.

No permissions and no identity here (``service.journeys`` decides who may call what, and which
journey a setting's pupil reference means); this is what tests, the benchmark and operator
scripts drive directly. Messages are named by reference (``PupilJourney.escalate``), never by
a string, so a reader and the type checker can follow an action to its handler.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, is_dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from audit import trail as trail_module
from domain.commands import (
    ActionResult,
    PupilJourneyInput,
    Refused,
    StartJourneyInput,
    check_input,
    check_opaque_id,
)
from domain.journey import check_start
from domain.model import INITIAL_MACHINE_STATE, JourneyState, Stage, TimelineEntry
from service.errors import NotFound, Unreachable
from settings import Settings
from workflows.pupil_journey import PupilJourney
from workflows.search_attributes import (
    SEN_CODE,
    SEN_NEXT_REVIEW,
    SEN_OVERDUE,
    SEN_SCHOOL,
    SEN_STAGE,
)

#: No school action or reply is anywhere near this; Temporal itself refuses 2 MB, and a payload
#: that large would fail the journey's workflow task before the validator could refuse it.
MAX_REQUEST_BYTES = 256 * 1024


def new_journey_id() -> str:
    """A journey's own id: random, opaque, the same wherever the pupil goes."""
    return f"journey-{uuid.uuid4().hex}"


async def start(
    client: Client, settings: Settings, cmd: StartJourneyInput, journey_id: str
) -> JourneyState:
    """Start the journey's workflow under ``journey_id``; refused if that id is open."""
    check_input(cmd)  # clear errors before anything reaches Temporal
    check_start(cmd)
    check_opaque_id(journey_id, "journey id")
    try:
        handle = await client.start_workflow(
            PupilJourney.run,
            PupilJourneyInput(start=cmd),
            id=journey_id,
            task_queue=settings.task_queue,
            # A closed journey may be followed by a new one; an open one is never doubled.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=initial_search_attributes(cmd),
            memo=initial_memo(),
        )
    except WorkflowAlreadyStartedError:
        raise Refused(
            f"pupil {cmd.pupil_id} already has an open journey; act on it instead of "
            "starting another"
        ) from None
    except RPCError as err:
        raise translate(err) from None
    return await _query_state(handle)


def initial_search_attributes(cmd: StartJourneyInput) -> TypedSearchAttributes:
    """What a journey publishes before its first change: a lean run upserts none of it again."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SEN_STAGE, Stage.MONITORING.value),
            SearchAttributePair(SEN_SCHOOL, cmd.school_id),
            SearchAttributePair(SEN_OVERDUE, False),
            SearchAttributePair(SEN_CODE, cmd.policy.name),
        ]
    )


def initial_memo() -> dict[str, Any]:
    """The memo a journey starts with, so its first workflow task has nothing to upsert."""
    return {"machine_state": INITIAL_MACHINE_STATE}


async def execute(client: Client, journey_id: str, update: Any, cmd: object) -> ActionResult:
    """Run one validated update (``update`` is the workflow's method, e.g.
    ``PupilJourney.escalate``). Refused → ``Refused`` with the journey's reason."""
    check_opaque_id(journey_id, "journey id")
    check_request(client, cmd)
    handle = client.get_workflow_handle(journey_id)
    name = update.__name__
    try:
        result: ActionResult = await handle.execute_update(
            update, cmd, result_type=ActionResult, id=f"{name}-{uuid.uuid4()}"
        )
        return result
    except WorkflowUpdateFailedError as err:
        raise Refused(cause_message(err)) from None
    except RPCError as err:
        raise translate(err) from None


async def signal(client: Client, journey_id: str, message: Any, cmd: object) -> None:
    """Deliver a reply (a signal, e.g. ``PupilJourney.parent_responded``). The journey records
    one it cannot apply as rejected; it never fails for it."""
    check_opaque_id(journey_id, "journey id")
    check_request(client, cmd)
    handle = client.get_workflow_handle(journey_id)
    try:
        await handle.signal(message, cmd)
    except RPCError as err:
        raise translate(err) from None


def check_request(client: Client, cmd: object) -> None:
    """Refuse, before Temporal sees it, what the journey would refuse for its size alone."""
    if is_dataclass(cmd) or isinstance(cmd, dict):
        check_input(cmd)
    # the plain payload (no codec): sizing it must not encrypt every action a second time
    payloads = client.data_converter.payload_converter.to_payloads([cmd])
    size = sum(p.ByteSize() for p in payloads)
    if size > MAX_REQUEST_BYTES:
        raise Refused(f"the request is {size} bytes; the limit is {MAX_REQUEST_BYTES}")


async def state(client: Client, journey_id: str) -> JourneyState:
    check_opaque_id(journey_id, "journey id")
    return await _query_state(client.get_workflow_handle(journey_id))


async def timeline(client: Client, journey_id: str) -> list[TimelineEntry]:
    check_opaque_id(journey_id, "journey id")
    handle = client.get_workflow_handle(journey_id)
    try:
        # by reference: the SDK decodes the answer to the query's own return type
        return await handle.query(PupilJourney.timeline)
    except RPCError as err:
        raise translate(err) from None


async def _query_state(handle: WorkflowHandle[Any, Any]) -> JourneyState:
    try:
        return await handle.query(PupilJourney.state)
    except RPCError as err:
        raise translate(err) from None


@dataclass
class JourneyListing:
    journey_id: str
    stage: str | None
    school: str | None
    next_review: datetime | None
    overdue: bool | None
    status: str


async def listing(
    client: Client,
    stage: str | None = None,
    school: str | None = None,
    overdue: bool | None = None,
    include_closed: bool = False,
) -> list[JourneyListing]:
    """Journeys through Temporal visibility (the search attributes), by journey id."""
    clauses = [f"WorkflowType = '{PupilJourney.__name__}'"]
    if not include_closed:
        clauses.append("ExecutionStatus = 'Running'")
    if stage is not None:
        clauses.append(f"{SEN_STAGE.name} = '{_quoted(Stage(stage).value)}'")
    if school is not None:
        check_opaque_id(school, "school id")
        clauses.append(f"{SEN_SCHOOL.name} = '{_quoted(school)}'")
    if overdue is not None:
        clauses.append(f"{SEN_OVERDUE.name} = {'true' if overdue else 'false'}")
    found = []
    try:
        async for wf in client.list_workflows(" AND ".join(clauses)):
            attrs = wf.typed_search_attributes
            status = wf.status.name.lower() if wf.status is not None else "unknown"
            found.append(
                JourneyListing(
                    journey_id=wf.id,
                    stage=attrs.get(SEN_STAGE),
                    school=attrs.get(SEN_SCHOOL),
                    next_review=attrs.get(SEN_NEXT_REVIEW),
                    overdue=attrs.get(SEN_OVERDUE),
                    status=status,
                )
            )
    except RPCError as err:
        raise translate(err) from None
    return sorted(found, key=lambda j: j.journey_id)


async def school_of(client: Client, journey_id: str) -> str | None:
    """The school a journey publishes (``SenSchool``), or None when there is no such journey.
    Cheaper than a query: no workflow task, no history replayed."""
    try:
        described = await client.get_workflow_handle(journey_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise translate(err) from None
    return described.typed_search_attributes.get(SEN_SCHOOL)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


# -- histories ---------------------------------------------------------------------------------


async def runs(
    client: Client, journey_id: str, archive: trail_module.HistoryArchive | None = None
) -> list[trail_module.Run]:
    """Every run of the journey, from Temporal or (once deleted there) the archive."""
    check_opaque_id(journey_id, "journey id")
    try:
        return await trail_module.fetch_runs(client, journey_id, archive)
    except RPCError as err:
        raise translate(err) from None


async def trail(
    client: Client, journey_id: str, archive: trail_module.HistoryArchive | None = None
) -> trail_module.Trail:
    """The journey folded from its recorded histories (what auditors read)."""
    found = await runs(client, journey_id, archive)
    try:
        return await trail_module.trail_from_runs(client.data_converter, journey_id, found)
    except ValueError as err:
        raise Refused(
            f"{err} (recorded before journeys recorded their changes; the export still "
            "gives the raw history)"
        ) from None


async def all_journey_ids(
    client: Client, archive: trail_module.HistoryArchive | None = None
) -> list[str]:
    """Every journey Temporal knows, open or closed, and every one only the archive holds."""
    ids = set()
    try:
        async for wf in client.list_workflows(f"WorkflowType = '{PupilJourney.__name__}'"):
            ids.add(wf.id)
    except RPCError as err:
        raise translate(err) from None
    ids.update(await trail_module.archived_journey_ids(archive))
    return sorted(ids)


# -- errors ------------------------------------------------------------------------------------


def cause_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message  # the domain's reason, without the exception type's name
    return str(cause) if cause is not None else str(err)


def translate(err: RPCError) -> Exception:
    if err.status is RPCStatusCode.NOT_FOUND:
        return NotFound("no such journey")
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return Unreachable(f"Temporal is unreachable: {err.message}")
    return err
