"""Builders and the scripted two-school-year journey, shared by tests and scripts/."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devserver import SEARCH_ATTRIBUTES, find_binary
from domain.commands import (
    AssessmentCompletedInput,
    IepInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordReviewInput,
    ReferInput,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
)
from domain.model import (
    Actor,
    JourneyState,
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Target,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy
from service import temporal
from settings import Settings
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney, workflow_id

SENCO = Actor("senco-1", Role.SENCO)
TEACHER = Actor("teacher-1", Role.CLASS_TEACHER)
EP = Actor("ep-7", Role.SPECIALIST)
PARENTS = ["parent-a", "parent-b"]


def iep(label: str = "reading") -> IepInput:
    return IepInput(
        targets=[
            Target(f"{label}: read 30 high-frequency words", "reads them in two sessions"),
            Target(f"{label}: write a simple sentence", "capital, full stop, 5+ words"),
        ],
        strategies=["daily phonics in a small group"],
        provision=["TA support 3x20 minutes a week"],
        responsible=["teacher-1"],
    )


def progress(text: str = "some progress") -> list[TargetProgress]:
    return [TargetProgress(0, text), TargetProgress(1, text)]


def start_cmd(pupil_id: str, policy: Policy | None = None, **kw: object) -> StartJourneyInput:
    return StartJourneyInput(
        pupil_id=pupil_id,
        school_id=str(kw.pop("school_id", "school-1")),
        senco_id=SENCO.id,
        parent_ids=list(PARENTS),
        actor=TEACHER,
        concern="slow progress in reading despite differentiation",
        policy=policy or Policy(),
        **kw,  # type: ignore[arg-type]
    )


def recording_settings() -> Settings:
    """Settings for a script that records golden histories: its own task queue, a scratch
    outbox and read model that nobody keeps."""
    return worker_settings(Path(tempfile.mkdtemp(prefix="senflow-record-")), "record")


def worker_settings(scratch: Path, queue: str = "tq") -> Settings:
    """A worker of its own: its own task queue, outbox and read model under ``scratch``."""
    return Settings(
        task_queue=f"{queue}-{uuid.uuid4()}",
        outbox_dir=scratch / "outbox",
        database_url=f"sqlite:///{scratch}/records.db",
        auto_migrate=True,
    )


def new_pupil() -> str:
    return f"p{uuid.uuid4().hex[:10]}"


async def time_skipping_server() -> WorkflowEnvironment:
    """The time-skipping test server, told about senflow's search attributes: it knows none
    until told, and a workflow upserting an unknown one stalls its task."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{kind.upper()}")
                for name, kind in SEARCH_ATTRIBUTES.items()
            },
        )
    )
    return env


async def state_of(client: Client, pupil_id: str) -> JourneyState:
    return await temporal.state(client, workflow_id(pupil_id))


async def until_delivered(client: Client, pupil_id: str) -> JourneyState:
    """The state once every queued notice has been delivered (activities run async)."""
    for _ in range(200):
        state = await state_of(client, pupil_id)
        if not state.outbox:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"notices still queued for {pupil_id}: {state.outbox}")


async def parent_reply(
    client: Client, pupil_id: str, consultation_id: str, parent_id: str, answer: ParentReply
) -> None:
    await temporal.signal(
        client,
        workflow_id(pupil_id),
        PupilJourney.parent_responded,
        ParentRespondedInput(f"r-{uuid.uuid4().hex[:8]}", consultation_id, parent_id, answer),
    )


@dataclass
class JourneyRun:
    pupil_id: str
    handle: WorkflowHandle[object, object]
    answered_consultation: str
    unanswered_consultation: str
    referral_id: str


async def two_year_journey(
    env: WorkflowEnvironment, client: Client, settings: Settings, pupil_id: str
) -> JourneyRun:
    """Concern → School Action → two reviews → Action Plus → EP referral → assessment →
    review → statutory assessment request, across two school years, on the Code's clock."""
    await temporal.start(client, settings, start_cmd(pupil_id), workflow_id(pupil_id))
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.open_school_action,
        OpenSchoolActionInput(
            SENCO,
            [Trigger.SA_LITERACY_MATHS, Trigger.SA_PROGRESS],
            "reading age 18 months behind",
            iep(),
        ),
    )
    state = await state_of(client, pupil_id)
    answered = state.open_consultations()[0].consultation_id
    for parent in PARENTS:
        await parent_reply(client, pupil_id, answered, parent, ParentReply.AGREE)

    await env.sleep(timedelta(weeks=13, days=2))  # first review falls due (termly)
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO,
            ReviewOutcome.CONTINUE,
            progress("a little"),
            "keep going with a new plan",
            iep("term 2"),
        ),
    )
    state = await state_of(client, pupil_id)
    unanswered = state.open_consultations()[-1].consultation_id  # nobody answers this one

    await env.sleep(timedelta(weeks=13, days=2))  # second review
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO,
            ReviewOutcome.ESCALATE,
            progress("little"),
            "little progress despite the IEP",
            iep("action plus"),
            [Trigger.AP_LITERACY_MATHS],
        ),
    )
    result = await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.refer,
        ReferInput(
            SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, EP.id, "why is decoding so slow?"
        ),
    )
    assert result.ref is not None
    referral_id = result.ref

    await env.sleep(timedelta(weeks=7))  # chased once before the report arrives
    await temporal.signal(
        client,
        workflow_id(pupil_id),
        PupilJourney.assessment_completed,
        AssessmentCompletedInput(
            "ep-report-1",
            referral_id,
            EP,
            "phonological processing difficulty",
            ["structured literacy programme"],
        ),
    )

    await env.sleep(timedelta(weeks=10))  # into the next school year: review at Action Plus
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO, ReviewOutcome.CONTINUE, progress("slow"), "EP programme started", iep("year 2")
        ),
    )
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.request_statutory_assessment,
        RequestStatutoryAssessmentInput(SENCO, "needs exceed school provision"),
    )
    return JourneyRun(
        pupil_id,
        client.get_workflow_handle(workflow_id(pupil_id)),
        answered,
        unanswered,
        referral_id,
    )


# -- a mixed population of code_2001 journeys, left in flight (migration, recorded histories) --


async def agree_all(client: Client, pupil_id: str) -> None:
    """Every parent agrees to every open consultation."""
    state = await state_of(client, pupil_id)
    for consultation in state.open_consultations():
        for parent in consultation.unanswered():
            await parent_reply(
                client, pupil_id, consultation.consultation_id, parent, ParentReply.AGREE
            )


async def at_school_action(
    client: Client, settings: Settings, pupil_id: str, school_id: str = "school-1"
) -> None:
    """School Action with the plan agreed: ``school_action`` / ``iep_active``."""
    await temporal.start(
        client, settings, start_cmd(pupil_id, school_id=school_id), workflow_id(pupil_id)
    )
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.open_school_action,
        OpenSchoolActionInput(
            SENCO, [Trigger.SA_LITERACY_MATHS], "reading age 18 months behind", iep()
        ),
    )
    await agree_all(client, pupil_id)


async def awaiting_assessment(
    client: Client, settings: Settings, pupil_id: str, school_id: str = "school-1"
) -> str:
    """Action Plus with an EP referral open: ``school_action_plus`` / ``awaiting_assessment``.
    Returns the referral id."""
    await at_school_action(client, settings, pupil_id, school_id)
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO,
            ReviewOutcome.ESCALATE,
            progress("little"),
            "little progress despite the IEP",
            iep("action plus"),
            [Trigger.AP_LITERACY_MATHS],
        ),
    )
    await agree_all(client, pupil_id)
    result = await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.refer,
        ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, EP.id, "why is decoding slow?"),
    )
    assert result.ref is not None
    await agree_all(client, pupil_id)
    return result.ref


async def in_statutory_assessment(
    client: Client, settings: Settings, pupil_id: str, school_id: str = "school-1"
) -> None:
    """A statutory assessment requested after the EP's report: ``statutory_assessment``."""
    referral_id = await awaiting_assessment(client, settings, pupil_id, school_id)
    await temporal.signal(
        client,
        workflow_id(pupil_id),
        PupilJourney.assessment_completed,
        AssessmentCompletedInput(
            f"report-{pupil_id}", referral_id, EP, "phonological processing difficulty"
        ),
    )
    await temporal.execute(
        client,
        workflow_id(pupil_id),
        PupilJourney.request_statutory_assessment,
        RequestStatutoryAssessmentInput(SENCO, "needs exceed school provision"),
    )
    await agree_all(client, pupil_id)
