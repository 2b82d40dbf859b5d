"""`senflow`: the command line for every role, and the application functions behind it.

The functions take a ``Client`` so tests (and later the HTTP API) call the same code.
Exit codes: 0 done, 1 refused (the reason on stderr), 2 usage error, 3 Temporal unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import cli as api_cli
from archive import cli as archive_cli
from archive.store import archive_reader
from audit import compliance
from audit import report as audit_report
from audit import trail as trail_module
from domain.commands import (
    ActionResult,
    AssessmentCompletedInput,
    CloseInput,
    EscalateInput,
    IepInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    PupilJourneyInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
    StepDownInput,
    check_input,
    check_opaque_id,
)
from domain.journey import check_start
from domain.machine import STATES, TRANSITIONS
from domain.model import (
    INITIAL_MACHINE_STATE,
    Actor,
    CloseReason,
    JourneyState,
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Stage,
    Target,
    TargetProgress,
    TimelineEntry,
    Trigger,
)
from domain.policy import LONDON, Policy, compulsory_school_age_date
from records import reports, sync
from records.db import make_engine, migrate, sessions
from settings import Settings, configure_logging, connect
from workflows.converter import JSONEncoder
from workflows.pupil_journey import PupilJourney, workflow_id
from workflows.search_attributes import (
    SEN_CODE,
    SEN_NEXT_REVIEW,
    SEN_OVERDUE,
    SEN_SCHOOL,
    SEN_STAGE,
)


class NotFound(Exception):
    """No journey for that pupil (or it has closed)."""


class Unreachable(Exception):
    """Temporal could not be reached."""


# -- application functions (shared by the CLI, tests and later the API) ----------------------


async def start_journey(client: Client, settings: Settings, cmd: StartJourneyInput) -> JourneyState:
    check_input(cmd)  # clear errors before anything reaches Temporal
    check_start(cmd)
    try:
        handle = await client.start_workflow(
            PupilJourney.run,
            PupilJourneyInput(start=cmd),
            id=workflow_id(cmd.pupil_id),
            task_queue=settings.task_queue,
            # A closed journey may be followed by a new one; an open one is never doubled.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=initial_search_attributes(cmd),
            memo=initial_memo(),
        )
    except WorkflowAlreadyStartedError:
        raise Refused(
            f"pupil {cmd.pupil_id} already has an open journey ({workflow_id(cmd.pupil_id)}); "
            "act on it instead of starting another"
        ) from None
    return await _query_state(handle)


def with_date_of_birth(
    cmd: StartJourneyInput, date_of_birth: date | None, today: date
) -> StartJourneyInput:
    """Only what the journey needs from a date of birth: the compulsory school age date (when
    still to come) and the birth month and year. The day itself never reaches Temporal."""
    if date_of_birth is None:
        return cmd
    if date_of_birth > today:
        raise Refused("the date of birth is in the future")
    if date_of_birth.year < today.year - 30:
        raise Refused("the date of birth is more than 30 years ago: SEN journeys end by 25")
    csa = compulsory_school_age_date(date_of_birth)
    return replace(
        cmd,
        compulsory_school_age_date=csa if csa > today else None,
        birth_year=date_of_birth.year,
        birth_month=date_of_birth.month,
    )


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


async def act(client: Client, pupil_id: str, update: str, cmd: object) -> ActionResult:
    """Run one school action (a validated update). Refused → ``Refused`` with the reason."""
    check_opaque_id(pupil_id, "pupil id")
    _check_request(client, cmd)
    handle = client.get_workflow_handle(workflow_id(pupil_id))
    try:
        result: ActionResult = await handle.execute_update(
            update, cmd, result_type=ActionResult, id=f"{update}-{uuid.uuid4()}"
        )
        return result
    except WorkflowUpdateFailedError as err:
        raise Refused(_cause_message(err)) from None
    except RPCError as err:
        raise _translate(err, pupil_id) from None


async def reply(client: Client, pupil_id: str, signal: str, cmd: object) -> None:
    """Deliver a parent's or specialist's reply (a signal). The journey records bad ones."""
    check_opaque_id(pupil_id, "pupil id")
    _check_request(client, cmd)
    handle = client.get_workflow_handle(workflow_id(pupil_id))
    try:
        await handle.signal(signal, cmd)
    except RPCError as err:
        raise _translate(err, pupil_id) from None


#: No school action or reply is anywhere near this; Temporal itself refuses 2 MB, and a payload
#: that large would fail the journey's workflow task before the validator could refuse it.
MAX_REQUEST_BYTES = 256 * 1024


def _check_request(client: Client, cmd: object) -> None:
    """Refuse, before Temporal sees it, what the journey would refuse for its size alone."""
    if is_dataclass(cmd) or isinstance(cmd, dict):
        check_input(cmd)
    # the plain payload (no codec): sizing it must not encrypt every action a second time
    payloads = client.data_converter.payload_converter.to_payloads([cmd])
    size = sum(p.ByteSize() for p in payloads)
    if size > MAX_REQUEST_BYTES:
        raise Refused(f"the request is {size} bytes; the limit is {MAX_REQUEST_BYTES}")


async def show(client: Client, pupil_id: str) -> JourneyState:
    check_opaque_id(pupil_id, "pupil id")
    return await _query_state(client.get_workflow_handle(workflow_id(pupil_id)))


async def history(client: Client, pupil_id: str) -> list[TimelineEntry]:
    check_opaque_id(pupil_id, "pupil id")
    handle = client.get_workflow_handle(workflow_id(pupil_id))
    try:
        entries: list[TimelineEntry] = await handle.query(
            "timeline", result_type=list[TimelineEntry]
        )
        return entries
    except RPCError as err:
        raise _translate(err, pupil_id) from None


@dataclass
class JourneyListing:
    pupil_id: str
    stage: str | None
    school: str | None
    next_review: datetime | None
    overdue: bool | None
    status: str


async def list_journeys(
    client: Client,
    stage: str | None = None,
    school: str | None = None,
    overdue: bool | None = None,
    include_closed: bool = False,
) -> list[JourneyListing]:
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
    listings = []
    try:
        async for wf in client.list_workflows(" AND ".join(clauses)):
            attrs = wf.typed_search_attributes
            status = wf.status.name.lower() if wf.status is not None else "unknown"
            listings.append(
                JourneyListing(
                    pupil_id=wf.id.removeprefix("pupil-"),
                    stage=attrs.get(SEN_STAGE),
                    school=attrs.get(SEN_SCHOOL),
                    next_review=attrs.get(SEN_NEXT_REVIEW),
                    overdue=attrs.get(SEN_OVERDUE),
                    status=status,
                )
            )
    except RPCError as err:
        raise _translate(err, "") from None
    return sorted(listings, key=lambda j: j.pupil_id)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def _query_state(handle: Any) -> JourneyState:
    try:
        state: JourneyState = await handle.query(PupilJourney.state, result_type=JourneyState)
        return state
    except RPCError as err:
        raise _translate(err, handle.id.removeprefix("pupil-")) from None


def _cause_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message  # the domain's reason, without the exception type's name
    return str(cause) if cause is not None else str(err)


def _translate(err: RPCError, pupil_id: str) -> Exception:
    if err.status is RPCStatusCode.NOT_FOUND:
        return NotFound(f"no open journey for pupil {pupil_id}: {err.message}")
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return Unreachable(f"Temporal is unreachable: {err.message}")
    return err


# -- the command line -------------------------------------------------------------------------


#: For other front ends (migration, API): the same error mapping as the CLI's own actions.
cause_message = _cause_message
translate = _translate


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _target(value: str) -> Target:
    description, sep, criterion = value.partition("::")
    if not sep or not description.strip() or not criterion.strip():
        raise argparse.ArgumentTypeError(
            "a target is 'what the pupil will do::how we know it is met'"
        )
    return Target(description=description.strip(), success_criterion=criterion.strip())


def _progress(value: str) -> TargetProgress:
    parts = value.split(":", 2)
    try:
        index = int(parts[0])
    except ValueError:
        raise argparse.ArgumentTypeError(
            "progress is 'TARGET_INDEX:what progress was made[:met]'"
        ) from None
    text = parts[1] if len(parts) > 1 else ""
    met = len(parts) > 2 and parts[2].strip().lower() in ("met", "yes", "true")
    return TargetProgress(target_index=index, progress=text, met=met)


def _enum(cls: Any) -> Any:
    def parse(value: str) -> Any:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise argparse.ArgumentTypeError(f"{value!r} is not one of: {choices}") from None

    parse.__name__ = cls.__name__
    return parse


def _add_iep(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("IEP" + ("" if required else " (optional: a new plan)"))
    g.add_argument(
        "--target",
        type=_target,
        action="append",
        default=[],
        help="'target::success criterion' (repeat)",
    )
    g.add_argument("--strategy", action="append", default=[], help="teaching strategy (repeat)")
    g.add_argument("--provision", action="append", default=[], help="provision (repeat)")
    g.add_argument(
        "--responsible", action="append", default=[], help="staff id responsible (repeat)"
    )
    g.add_argument(
        "--review-date", type=_date, help="YYYY-MM-DD; default: the policy's interval (termly)"
    )


def _iep(args: argparse.Namespace) -> IepInput | None:
    if not (args.target or args.strategy or args.provision or args.responsible):
        return None
    return IepInput(
        targets=args.target,
        strategies=args.strategy,
        provision=args.provision,
        responsible=args.responsible,
        review_date=args.review_date,
    )


def _required_iep(args: argparse.Namespace) -> IepInput:
    return _iep(args) or IepInput(targets=[], strategies=[], provision=[], responsible=[])


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--actor",
        default=os.environ.get("SENFLOW_ACTOR"),
        help="your staff/parent/specialist id (env SENFLOW_ACTOR)",
    )
    common.add_argument(
        "--role",
        type=_enum(Role),
        default=os.environ.get("SENFLOW_ROLE"),
        help="your role (env SENFLOW_ROLE): "
        + ", ".join(r.value for r in Role if r is not Role.SYSTEM),
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="senflow", description="Durable SEN journeys: one Temporal workflow per pupil."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help: str, pupil: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        if pupil:
            p.add_argument("pupil", help="the school's opaque pupil reference (never a name)")
        return p

    p = cmd("start", "raise a concern: start a pupil's journey (monitoring)")
    p.add_argument("--school", required=True)
    p.add_argument("--senco", required=True, help="the SENCO's staff id")
    p.add_argument("--parent", action="append", required=True, help="parent/carer id (repeat)")
    p.add_argument("--concern", required=True)
    p.add_argument(
        "--date-of-birth",
        type=_date,
        help="only the month and year are kept (for reports) and the compulsory school age "
        "date; the day never leaves this command",
    )
    p.add_argument("--year-group", help="e.g. R, Y1 ... Y11")
    p.add_argument(
        "--policy",
        choices=["code_2001", "code_2014", "demo"],
        help="the Code this journey follows (default: SENFLOW_POLICY, else code_2001); "
        "demo: the configured Code on a clock of minutes",
    )
    p.add_argument(
        "--minute",
        type=float,
        default=60.0,
        help="with --policy demo: seconds in a policy 'minute'",
    )

    p = cmd("open-school-action", "SENCO: move to School Action with an IEP")
    p.add_argument("--trigger", type=_enum(Trigger), action="append", default=[])
    p.add_argument("--evidence", default="")
    _add_iep(p, required=True)

    p = cmd("note", "class teacher / SENCO: record a progress note")
    p.add_argument("--note", required=True)

    p = cmd("review", "record an IEP review and its outcome")
    p.add_argument("--outcome", type=_enum(ReviewOutcome), required=True)
    p.add_argument(
        "--progress",
        type=_progress,
        action="append",
        default=[],
        help="'TARGET_INDEX:progress made[:met]' (one per target)",
    )
    p.add_argument("--notes", default="")
    p.add_argument(
        "--trigger",
        type=_enum(Trigger),
        action="append",
        default=[],
        help="AP-* triggers when the outcome is escalate from School Action",
    )
    p.add_argument("--close-reason", type=_enum(CloseReason))
    _add_iep(p, required=False)

    p = cmd("escalate", "SENCO: move to School Action Plus with a new IEP")
    p.add_argument("--trigger", type=_enum(Trigger), action="append", default=[])
    p.add_argument("--evidence", default="")
    _add_iep(p, required=True)

    p = cmd("refer", "SENCO: refer to a specialist (from School Action Plus)")
    p.add_argument("--kind", type=_enum(SpecialistKind), required=True)
    p.add_argument("--specialist", required=True, help="the specialist's id")
    p.add_argument("--question", required=True)

    p = cmd("request-statutory-assessment", "SENCO: ask the local authority to assess")
    p.add_argument("--evidence", default="")

    p = cmd("step-down", "SENCO: move one stage down")
    p.add_argument("--reason", default="")
    _add_iep(p, required=False)

    p = cmd("close", "SENCO: close the journey")
    p.add_argument("--close-reason", type=_enum(CloseReason), required=True)
    p.add_argument("--reason", default="")

    p = cmd("assessment-completed", "specialist: report a completed assessment")
    p.add_argument("--referral", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--recommendation", action="append", default=[])
    p.add_argument("--reply-id", help="idempotency key (default: a new one)")

    p = cmd("parent-response", "parent: answer a consultation")
    p.add_argument("--consultation", required=True)
    p.add_argument("--reply", type=_enum(ParentReply), required=True)
    p.add_argument("--comments", default="")
    p.add_argument("--reply-id", help="idempotency key (default: a new one)")

    cmd("show", "where a pupil stands now")
    p = cmd("history", "auditors: the journey as Temporal recorded it, across every run")
    p.add_argument("--html", metavar="FILE", help="also write a printable HTML report")

    p = cmd("export", "auditors: every run's history in Temporal's JSON format")
    p.add_argument("-o", "--output", required=True, metavar="FILE")

    p = cmd(
        "replay", "auditors: replay histories on today's code (exit 1 on any failure)", pupil=False
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="exports or single-run histories")
    p.add_argument("--all", action="store_true", help="every journey in the namespace")

    p = cmd("audit", "auditors: were the rules followed? (exit 1 on any breach)", pupil=False)
    p.add_argument("pupil", nargs="?", help="one pupil (or --all)")
    p.add_argument("--all", action="store_true", help="every journey in the namespace")

    p = cmd("list", "open journeys (Temporal visibility)", pupil=False)
    p.add_argument("--stage", type=_enum(Stage))
    p.add_argument("--school")
    p.add_argument("--overdue", action="store_true", help="only overdue reviews")
    p.add_argument("--all", action="store_true", help="include closed journeys")

    p = cmd("demo", "drive one scripted pupil through the whole journey", pupil=False)
    p.add_argument("--pupil", default=None, help="default: demo-<random>")
    p.add_argument(
        "--minute",
        type=float,
        default=15.0,
        help="seconds in a policy 'minute' (the review falls due after 3)",
    )

    import reform.cli

    reform.cli.register(cmd)

    p = cmd("report", "admin reports from the read model", pupil=False)
    p.add_argument("name", choices=list(REPORTS), help="which report")
    p.add_argument("--school", help="one school only")
    p.add_argument("--days", type=int, default=14, help="reviews: how far ahead to look")
    p.add_argument("--stage", type=_enum(Stage), help="register: list the pupils at a stage")
    p.add_argument("--csv", action="store_true", help="CSV output")

    p = cmd(
        "contacts",
        "how to reach parents, specialists and staff (kept outside Temporal)",
        pupil=False,
    )
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("contact_id", nargs="?", help="the opaque id used in journeys")
    p.add_argument("--contact-role", type=_enum(Role), help="parent, specialist, senco, ...")
    p.add_argument("--name", help="how letters address them")
    p.add_argument("--email")

    p = cmd("records", "the read model: migrate, rebuild from Temporal, verify", pupil=False)
    p.add_argument("action", choices=["migrate", "rebuild", "verify"])

    cmd("diagram", "print the journey's state machine as Mermaid", pupil=False)
    cmd("worker", "run the Temporal worker", pupil=False)
    p = cmd("up", "run a dev server, a worker and the API (what `make run` runs)", pupil=False)
    p.add_argument("--port", type=int, default=7233)
    p.add_argument("--ui-port", type=int, default=8233)
    p.add_argument("--api-port", type=int, default=None, help="default SENFLOW_API_PORT or 8000")
    api_cli.register(sub, common)  # users, keys, api
    archive_cli.register(sub, common)
    try:
        from bench import cli as bench_cli  # here: bench imports this module
    except ImportError:  # an image built without the benchmark (Dockerfile)
        return parser
    bench_cli.register(sub)
    return parser


ACTIONS: dict[str, str] = {
    "open-school-action": "open_school_action",
    "note": "record_note",
    "review": "record_review",
    "escalate": "escalate",
    "refer": "refer",
    "request-statutory-assessment": "request_statutory_assessment",
    "step-down": "step_down",
    "close": "close",
}


def _actor(
    args: argparse.Namespace, parser: argparse.ArgumentParser, default_role: Role | None = None
) -> Actor:
    role = args.role or default_role
    if not args.actor or role is None:
        parser.error("say who you are: --actor ID --role ROLE (or SENFLOW_ACTOR/SENFLOW_ROLE)")
    if isinstance(role, str):
        role = _enum(Role)(role)
    return Actor(id=args.actor, role=role)


def _command(args: argparse.Namespace, actor: Actor) -> object:
    c = args.command
    if c == "open-school-action":
        return OpenSchoolActionInput(actor, args.trigger, args.evidence, _required_iep(args))
    if c == "note":
        return RecordNoteInput(actor, args.note)
    if c == "review":
        return RecordReviewInput(
            actor,
            args.outcome,
            args.progress,
            args.notes,
            _iep(args),
            args.trigger,
            args.close_reason,
        )
    if c == "escalate":
        return EscalateInput(actor, args.trigger, args.evidence, _required_iep(args))
    if c == "refer":
        return ReferInput(actor, args.kind, args.specialist, args.question)
    if c == "request-statutory-assessment":
        return RequestStatutoryAssessmentInput(actor, args.evidence)
    if c == "step-down":
        return StepDownInput(actor, args.reason, _iep(args))
    if c == "close":
        return CloseInput(actor, args.close_reason, args.reason)
    raise AssertionError(c)


async def run_command(
    args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings
) -> int:
    c = args.command
    if c == "diagram":
        _out(diagram())
        return 0
    import reform.cli

    if c == "report" and args.name != "statutory-clock":  # that one asks the journeys
        return report(args, settings)
    if c == "contacts":
        return contacts(args, parser, settings)
    if c == "records" and args.action == "migrate":
        migrate(make_engine(settings.database_url))
        _out(f"read model at head ({_safe_url(settings.database_url)})")
        return 0
    if c == "replay" and not args.all:
        return await replay_command(None, args)  # files replay without a server
    if c == "archive":
        return await archive_cli.run(args, settings)
    # auditors read histories Temporal has deleted from the archive (issue 10)
    trail_module.use_archive(lambda: archive_reader(settings.database_url, settings.archive_url))
    if c == "start" or c in ACTIONS or c in reform.cli.ACTIONS or c in reform.cli.COMMANDS:
        # a usage error is reported before any connection is tried
        reform.cli.check_actor(c, _actor(args, parser, reform.cli.default_role(c)), parser)
    try:
        client = await connect(settings)
    except RuntimeError as err:
        raise Unreachable(
            f"Temporal is unreachable at {settings.temporal_address}: {err}"
        ) from None
    if c == "start":
        actor = _actor(args, parser)
        code = settings.policy if args.policy in (None, "demo") else args.policy
        minute = timedelta(seconds=args.minute) if args.policy == "demo" else None
        policy = Policy.named(code, minute)
        start_cmd = StartJourneyInput(
            pupil_id=args.pupil,
            school_id=args.school,
            senco_id=args.senco,
            parent_ids=args.parent,
            actor=actor,
            concern=args.concern,
            policy=policy,
            year_group=args.year_group,
        )
        state = await start_journey(
            client, settings, with_date_of_birth(start_cmd, args.date_of_birth, date.today())
        )
        _print(args, state, _state_text(state))
    elif c in ACTIONS or c in reform.cli.ACTIONS:
        actor = _actor(args, parser, reform.cli.default_role(c))
        if c in ACTIONS:
            result = await act(client, args.pupil, ACTIONS[c], _command(args, actor))
        else:
            result = await act(
                client, args.pupil, reform.cli.ACTIONS[c], reform.cli.command(args, actor)
            )
        _print(
            args,
            result,
            f"pupil {args.pupil}: {result.summary} -> {result.stage_label} "
            f"({result.phase}), step {result.step}" + (f", ref {result.ref}" if result.ref else ""),
        )
    elif c == "assessment-completed":
        actor = _actor(args, parser, Role.SPECIALIST)
        cmd = AssessmentCompletedInput(
            args.reply_id or f"reply-{uuid.uuid4().hex[:16]}",
            args.referral,
            actor,
            args.summary,
            args.recommendation,
        )
        await reply(client, args.pupil, "assessment_completed", cmd)
        _print(
            args,
            cmd,
            f"pupil {args.pupil}: assessment for {args.referral} sent "
            "(check `senflow history` for it or for its rejection)",
        )
    elif c == "parent-response":
        actor = _actor(args, parser, Role.PARENT)
        cmd2 = ParentRespondedInput(
            args.reply_id or f"reply-{uuid.uuid4().hex[:16]}",
            args.consultation,
            actor.id,
            args.reply,
            args.comments,
        )
        await reply(client, args.pupil, "parent_responded", cmd2)
        _print(args, cmd2, f"pupil {args.pupil}: reply to {args.consultation} sent")
    elif c == "show":
        state = await show(client, args.pupil)
        _print(args, state, _state_text(state))
    elif c == "history":
        trail = await _trail(client, args.pupil)
        breaches = compliance.check(trail.state, datetime.now(UTC))
        if args.html:
            Path(args.html).write_text(audit_report.as_html(trail, breaches, datetime.now(UTC)))
        _out(
            audit_report.as_json(trail, breaches)
            if args.json
            else audit_report.as_text(trail, breaches)
        )
    elif c == "export":
        check_opaque_id(args.pupil, "pupil id")
        runs = await _runs(client, args.pupil)
        Path(args.output).write_text(trail_module.export_json(runs, workflow_id(args.pupil)))
        events = sum(len(r.history.events) for r in runs)
        _print(
            args,
            {"runs": len(runs), "events": events, "file": args.output},
            f"wrote {len(runs)} run(s), {events} events, to {args.output}",
        )
    elif c == "replay":
        return await replay_command(client, args)
    elif c == "audit":
        return await audit_command(client, args, parser)
    elif c == "list":
        rows = await list_journeys(
            client, args.stage, args.school, True if args.overdue else None, args.all
        )
        _print(args, rows, _list_text(rows))
    elif c == "demo":
        return await demo(client, settings, args.pupil, args.minute, args.json)
    elif c == "migrate":
        return await reform.cli.run(client, args, parser, settings)
    elif c == "report":
        return await reform.cli.statutory_clock_report(client, args)
    elif c == "records":
        return await records_sync(client, settings, args.action, args.json)
    return 0


# -- auditors ---------------------------------------------------------------------------------


async def _runs(client: Client, pupil_id: str) -> list[trail_module.Run]:
    try:
        return await trail_module.fetch_runs(client, workflow_id(pupil_id))
    except RPCError as err:
        raise _translate(err, pupil_id) from None


async def _trail(client: Client, pupil_id: str) -> trail_module.Trail:
    check_opaque_id(pupil_id, "pupil id")
    runs = await _runs(client, pupil_id)
    try:
        return await trail_module.trail_from_runs(
            client.data_converter, workflow_id(pupil_id), runs
        )
    except ValueError as err:
        raise Refused(
            f"pupil {pupil_id}: {err} (recorded before journeys recorded their "
            "changes; `senflow export` still gives the raw history)"
        ) from None


async def _all_journey_ids(client: Client) -> list[str]:
    ids = set()
    async for wf in client.list_workflows(f"WorkflowType = '{PupilJourney.__name__}'"):
        ids.add(wf.id)
    ids.update(await trail_module.archived_journey_ids())  # closed, and deleted from Temporal
    return sorted(ids)


async def replay_command(client: Client | None, args: argparse.Namespace) -> int:
    from audit.replay import replay_runs

    runs: list[trail_module.Run] = []
    for name in args.files:
        runs += trail_module.load_histories(Path(name).read_text(), Path(name).stem)
    if args.all and client is not None:
        for wf_id in await _all_journey_ids(client):
            runs += await trail_module.fetch_runs(client, wf_id)
    if not runs:
        raise Refused("nothing to replay: give FILE... or --all")
    converter = client.data_converter if client else Settings.from_env().data_converter()
    outcomes = await replay_runs(runs, converter)  # encrypted histories need the keys
    rows = [vars(o) for o in outcomes]
    text = "\n".join(
        f"{'ok  ' if o.ok else 'FAIL'} {o.workflow_id} run {o.run_id} ({o.events} events)"
        + (f"\n     {o.failure}" if o.failure else "")
        for o in outcomes
    )
    failed = sum(not o.ok for o in outcomes)
    _print_json_or(args.json, rows, f"{text}\n{len(outcomes) - failed} replayed, {failed} failed")
    return 1 if failed else 0


async def audit_command(
    client: Client, args: argparse.Namespace, parser: argparse.ArgumentParser
) -> int:
    if bool(args.pupil) == bool(args.all):
        parser.error("audit PUPIL, or audit --all")
    ids = await _all_journey_ids(client) if args.all else [workflow_id(args.pupil)]
    now = datetime.now(UTC)
    rows, lines = [], []
    for wf_id in ids:
        try:
            trail = await _trail(client, wf_id.removeprefix("pupil-"))
        except Refused as err:
            lines.append(f"skipped {wf_id}: {err}")
            continue
        breaches = compliance.check(trail.state, now)
        rows.append({"workflow_id": wf_id, "breaches": [vars(b) for b in breaches]})
        lines.append(f"{wf_id}: {len(breaches)} breach(es)")
        for b in breaches:
            lines.append(f"  BREACH {b.rule}: {b.detail}")
            lines += [f"    {ev}" for ev in b.evidence]
    _print_json_or(args.json, rows, "\n".join(lines))
    return 1 if any(r["breaches"] for r in rows) else 0


# -- the read model ---------------------------------------------------------------------------


REPORTS = ("register", "reviews", "referrals", "stages", "birth-months", "statutory-clock")


def report(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    with sessions(make_engine(settings.database_url))() as session:
        if args.name == "register" and args.stage is not None:
            rows = [
                {
                    "school": school,
                    "stage": args.stage.value,
                    "pupil": pupil,
                    "census_code": reports.CENSUS_CODES.get(args.stage.value, "?"),
                }
                for school, pupil in reports.register_pupils(session, args.stage.value, args.school)
            ]
        elif args.name == "register":
            rows = reports.register(session, args.school)
        elif args.name == "reviews":
            rows = reports.reviews(session, now, args.days, args.school)
        elif args.name == "referrals":
            rows = reports.referral_waits(session, now)
        elif args.name == "stages":
            rows = reports.time_in_stage(session, now, args.school)
        else:
            rows = reports.identification_by_birth_month(session)
    if args.json:
        _out(json.dumps(rows, cls=JSONEncoder, indent=2))
    elif args.csv:
        _out(_csv(rows))
    else:
        _out(_table(rows))
    return 0


def contacts(args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings) -> int:
    from records.models import Contact

    factory = sessions(make_engine(settings.database_url))
    if args.action == "add":
        if not args.contact_id or args.contact_role is None or not args.name:
            parser.error("contacts add ID --contact-role ROLE --name NAME [--email ADDRESS]")
        check_opaque_id(args.contact_id, "contact id")
        with factory.begin() as session:
            session.merge(
                Contact(
                    contact_id=args.contact_id,
                    role=args.contact_role.value,
                    display_name=args.name,
                    email=args.email,
                )
            )
        _out(f"contact {args.contact_id} saved")
        return 0
    with factory() as session:
        rows = [
            {"contact": c.contact_id, "role": c.role, "name": c.display_name, "email": c.email}
            for c in session.scalars(select(Contact))
        ]
    _print_json_or(args.json, rows, _table(rows))
    return 0


async def records_sync(client: Client, settings: Settings, action: str, as_json: bool) -> int:
    engine = make_engine(settings.database_url)
    progress = None if as_json or not sys.stderr.isatty() else _RichProgress()
    try:
        archive = archive_reader(settings.database_url, settings.archive_url)
        sources = await sync.read_journeys(client, progress, archive=archive)
        if action == "rebuild":
            started = time.monotonic()
            written = sync.rebuild(engine, sources, progress)
            elapsed = time.monotonic() - started
            summary = {"journeys": written, "seconds": round(elapsed, 2)}
            _print_json_or(as_json, summary, f"rebuilt {written} journeys in {elapsed:.1f}s")
            return 0
        with sessions(engine)() as session:
            diffs = sync.verify(session, sources)
    finally:
        if progress is not None:
            progress.close()
    rows = [vars(d) for d in diffs]
    _print_json_or(
        as_json,
        rows,
        _table(rows) if rows else f"the read model agrees with Temporal ({len(sources)} journeys)",
    )
    return 1 if diffs else 0


class _RichProgress:
    """A progress bar on a terminal for long commands; never used with --json."""

    def __init__(self) -> None:
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        self._task: Any = None

    def __call__(self, what: str, total: int) -> None:
        if what:
            self._task = self._bar.add_task(what, total=total)
        elif self._task is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        self._bar.stop()


def _print_json_or(as_json: bool, value: Any, text: str) -> None:
    _out(json.dumps(value, cls=JSONEncoder, indent=2) if as_json else text)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{_local(value):%Y-%m-%d %H:%M}"
    return str(value)


def _safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def diagram() -> str:
    from transitions.extensions.diagrams import GraphMachine

    class Model:
        pass

    model = Model()
    GraphMachine(
        model=model,
        states=list(STATES),
        transitions=TRANSITIONS,
        initial=next(iter(STATES)),
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        model_attribute="machine_state",
        title="PupilJourney",
    )
    graph: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    return graph


# -- output -----------------------------------------------------------------------------------


def _out(text: str) -> None:
    print(text)


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    _out(json.dumps(value, cls=JSONEncoder, indent=2) if args.json else text)


def _local(instant: datetime) -> datetime:
    """Times people read are London times."""
    return instant.astimezone(ZoneInfo(LONDON))


def _state_text(s: JourneyState) -> str:
    lines = [
        f"pupil        {s.pupil_id} (school {s.school_id}, journey pupil-{s.pupil_id})",
        f"stage        {s.stage_label}" + (" (early years)" if s.early_years else ""),
        f"phase        {s.phase.value}",
        f"next review  {s.next_review_date or '-'}" + ("  OVERDUE" if s.overdue else ""),
    ]
    if s.iep is not None:
        lines.append(
            f"IEP          {s.iep.iep_id}, agreed {s.iep.agreed_at:%Y-%m-%d}, "
            f"responsible: {', '.join(s.iep.responsible)}"
        )
        lines += [
            f"  target {i}: {t.description} (success: {t.success_criterion})"
            for i, t in enumerate(s.iep.targets)
        ]
    for c in s.open_consultations():
        lines.append(
            f"consultation {c.consultation_id} on {c.subject}: awaiting "
            f"{', '.join(c.unanswered())} until {c.deadline:%Y-%m-%d %H:%M}"
        )
    for r in s.open_referrals():
        lines.append(
            f"referral     {r.referral_id}: {r.kind.value} ({r.specialist_id}), "
            f"requested {r.requested_at:%Y-%m-%d}, chased {r.chases}x"
        )
    if s.close_reason is not None:
        lines.append(f"closed       {s.close_reason.value}")
    return "\n".join(lines)


def _entry_text(e: TimelineEntry) -> str:
    moved = (
        f" [{e.stage_before.value} -> {e.stage_after.value}]"
        if e.stage_before and e.stage_after
        else ""
    )
    triggers = f" triggers: {', '.join(t.value for t in e.triggers)}" if e.triggers else ""
    reason = f" -- {e.reason}" if e.reason else ""
    return (
        f"{_local(e.at):%Y-%m-%d %H:%M} #{e.step:<3} {e.actor.role.value}:{e.actor.id} "
        f"{e.kind.value}: {e.summary}{moved}{triggers}{reason}"
    )


def _list_text(rows: Sequence[JourneyListing]) -> str:
    if not rows:
        return "no journeys match"
    header = f"{'pupil':<16} {'school':<10} {'stage':<22} {'next review':<17} overdue"
    body = [
        f"{r.pupil_id:<16} {r.school or '-':<10} {r.stage or '-':<22} "
        f"{_local(r.next_review).strftime('%Y-%m-%d %H:%M') if r.next_review else '-':<17} "
        f"{'yes' if r.overdue else 'no'}" + ("" if r.status == "running" else f" ({r.status})")
        for r in rows
    ]
    return "\n".join([header, *body])


# -- demo -------------------------------------------------------------------------------------


async def demo(
    client: Client, settings: Settings, pupil: str | None, minute: float, as_json: bool
) -> int:
    """One pupil through concern → School Action → review → Action Plus → EP → statutory."""
    pupil = pupil or f"demo-{uuid.uuid4().hex[:6]}"
    senco, teacher = Actor("senco-1", Role.SENCO), Actor("teacher-1", Role.CLASS_TEACHER)
    iep = IepInput(
        targets=[Target("read 30 high-frequency words", "reads them aloud in two sessions")],
        strategies=["daily phonics in a small group"],
        provision=["TA support 3x20 min/week"],
        responsible=["teacher-1"],
    )

    def say(text: str) -> None:
        if not as_json:
            _out(text)

    async def wait_for(phase: str, what: str) -> JourneyState:
        say(f"   ... waiting for {what} (timers run on the policy's short clock)")
        while True:
            state = await show(client, pupil)
            if state.phase.value == phase:
                return state
            await asyncio.sleep(1)

    say(f"demo pupil {pupil}: one 'minute' = {minute:g}s; watch it in the Web UI too")
    await start_journey(
        client,
        settings,
        StartJourneyInput(
            pupil,
            "demo-school",
            senco.id,
            ["parent-1"],
            teacher,
            "struggles with early reading despite differentiated work",
            Policy.demo(timedelta(seconds=minute)),
        ),
    )
    say("1. concern raised by the class teacher -> monitoring")
    r = await act(
        client,
        pupil,
        "open_school_action",
        OpenSchoolActionInput(
            senco, [Trigger.SA_LITERACY_MATHS], "reading age 18 months behind", iep
        ),
    )
    say(f"2. SENCO opens School Action -> {r.stage_label} ({r.phase})")
    state = await show(client, pupil)
    consultation = state.open_consultations()[-1]
    await reply(
        client,
        pupil,
        "parent_responded",
        ParentRespondedInput(
            f"demo-{pupil}-1", consultation.consultation_id, "parent-1", ParentReply.AGREE
        ),
    )
    say(f"3. parent agrees to {consultation.consultation_id}")
    await wait_for("review_due", "the IEP review date")
    say("4. the review is due")
    progress = [TargetProgress(0, "reads 12 of 30 words", False)]
    r = await act(
        client,
        pupil,
        "record_review",
        RecordReviewInput(
            senco,
            ReviewOutcome.ESCALATE,
            progress,
            "little progress despite the IEP",
            replace(iep, strategies=["precision teaching"]),
            [Trigger.AP_LITERACY_MATHS],
        ),
    )
    say(f"5. review: escalate -> {r.stage_label} ({r.phase})")
    r = await act(
        client,
        pupil,
        "refer",
        ReferInput(
            senco,
            SpecialistKind.EDUCATIONAL_PSYCHOLOGIST,
            "ep-1",
            "what underlies the slow progress in decoding?",
        ),
    )
    say(f"6. referral to the educational psychologist: {r.ref}")
    assert r.ref is not None
    await reply(
        client,
        pupil,
        "assessment_completed",
        AssessmentCompletedInput(
            f"demo-{pupil}-2",
            r.ref,
            Actor("ep-1", Role.SPECIALIST),
            "phonological processing difficulty",
            ["structured literacy programme"],
        ),
    )
    say("7. the educational psychologist reports")
    while not any(ref.completed_at for ref in (await show(client, pupil)).referrals):
        await asyncio.sleep(0.5)
    r = await act(
        client,
        pupil,
        "request_statutory_assessment",
        RequestStatutoryAssessmentInput(
            senco, "needs exceed what the school can provide, per EP report"
        ),
    )
    say(f"8. statutory assessment requested -> {r.stage_label} ({r.phase})")
    state = await show(client, pupil)
    if as_json:
        _out(json.dumps(state, cls=JSONEncoder, indent=2))
    else:
        _out("\n" + _state_text(state) + "\n\nhistory:")
        _out("\n".join(_entry_text(e) for e in await history(client, pupil)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "worker":
        import worker

        worker.main()
        return 0
    configure_logging(settings.log_format)
    if args.command == "up":
        import devserver

        return devserver.up(settings, args.port, args.ui_port, args.api_port)
    if args.command == "bench":
        from bench import cli as bench_cli

        return asyncio.run(bench_cli.run(args, settings))
    try:
        if args.command in api_cli.COMMANDS:
            return api_cli.run(args, parser, settings)
        return asyncio.run(run_command(args, parser, settings))
    except (Refused, NotFound) as err:
        sys.stderr.write(f"refused: {err}\n")
        return 1
    except Unreachable as err:
        sys.stderr.write(f"{err}\n")
        return 3


def cli() -> None:
    """The console entry point. Leaves with os._exit: the interpreter can abort while tearing
    down Temporal's native runtime (temporalio/sdk-python#300), which would turn a clean exit
    status into 134 or 139 for whoever scripts the CLI."""
    try:
        code = main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
