"""Bad input at volume: malformed and hostile input for every update, every signal and the CLI
commands — wrong types, unknown enum values, huge strings, dates in the wrong order, the wrong
pupil, the wrong role, replies to closed consultations, reused reply ids.

Each must get a clear refusal: an update is refused with a reason and leaves no event in the
history (dev server, so no speculative-task noise); a signal is recorded in the journey's
timeline as rejected, with a reason; a CLI command exits 1 (refused) or 2 (usage) with the
reason on stderr. No workflow task may fail. The table runs against FAULTS_BAD_INPUT_COPIES
(3) copies of each journey at once.

The defects this tier found are tests of their own at the end: each was a strict xfail until
the code was fixed (docs/decisions.md, input limits) and now passes.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

import starter
from access import store
from devserver import find_binary
from domain.commands import (
    CloseInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    Refused,
)
from domain.model import (
    CloseReason,
    EntryKind,
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Trigger,
)
from domain.policy import Policy
from faultkit import (
    DevServer,
    Processes,
    WorkerConfig,
    drained,
    env_int,
    history_facts,
    start_worker,
    until,
)
from journeys import SENCO, TEACHER, iep, progress, start_cmd
from records.db import make_engine, sessions
from service import temporal
from service.errors import NotFound
from settings import Settings
from smtp_sink import free_port
from workflows.pupil_journey import PupilJourney, workflow_id

Ids = dict[str, str]
Payload = Callable[[Ids], Any]

SENCO_J = {"id": "senco-1", "role": "senco"}
TEACHER_J = {"id": "teacher-1", "role": "class_teacher"}
HUGE = "x" * 1_000_000  # far beyond the 4,000-character limit, well within Temporal's 2 MB
LONG = "y" * 4001


def actor(role: str, id: str = "someone-1") -> dict[str, str]:
    return {"id": id, "role": role}


def plan(**changes: Any) -> dict[str, Any]:
    good: dict[str, Any] = {
        "targets": [{"description": "read 30 words", "success_criterion": "in two sessions"}],
        "strategies": ["daily phonics"],
        "provision": ["TA 3x20 min"],
        "responsible": ["teacher-1"],
    }
    return good | changes


def open_sa(**changes: Any) -> dict[str, Any]:
    good = {
        "actor": SENCO_J,
        "triggers": ["SA-LITERACY-MATHS"],
        "evidence": "reading age 18 months behind",
        "iep": plan(),
    }
    return good | changes


def review(**changes: Any) -> dict[str, Any]:
    good = {
        "actor": SENCO_J,
        "outcome": "continue",
        "progress": [
            {"target_index": 0, "progress": "some"},
            {"target_index": 1, "progress": "some"},
        ],
        "notes": "review notes",
        "new_iep": plan(),
        "triggers": [],
    }
    return good | changes


def refer(**changes: Any) -> dict[str, Any]:
    good = {
        "actor": SENCO_J,
        "kind": "speech_and_language",
        "specialist_id": "slt-3",
        "question": "what would help?",
    }
    return good | changes


def as_role(role: str) -> Payload:
    return lambda ids: open_sa(actor=actor(role))


def today() -> date:
    return Policy().local_date(datetime.now(UTC))


@dataclass
class Case:
    target: str  # which prepared journey: monitoring, school_action, action_plus, lapsed, ...
    message: Any  # the update or signal: the journey's handler, e.g. PupilJourney.refer
    payload: Payload
    refusal: str  # a regular expression the reason must match
    name: str = ""


MALFORMED = "Failed decoding arguments"
NOT_OPEN = "no such journey"  # the CLI's words: another school's pupil is answered the same
NO_SUCH = "no such journey"  # service.temporal's

#: Every update, refused. Reasons are the domain's words (or the SDK's, for a payload that is
#: not the update's dataclass at all).
UPDATES: list[Case] = [
    # wrong types and shapes
    Case("monitoring", PupilJourney.open_school_action, lambda i: "a string", MALFORMED),
    Case("monitoring", PupilJourney.open_school_action, lambda i: {}, MALFORMED),
    Case("monitoring", PupilJourney.open_school_action, lambda i: [1, 2], MALFORMED),
    Case("monitoring", PupilJourney.open_school_action, lambda i: 42, MALFORMED),
    Case("monitoring", PupilJourney.open_school_action, lambda i: None, "only a SENCO"),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(triggers="SA-PROGRESS"),
        MALFORMED,
    ),
    Case("monitoring", PupilJourney.open_school_action, lambda i: open_sa(evidence=42), MALFORMED),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(targets=["read"])),
        MALFORMED,
    ),
    Case(
        "monitoring",
        PupilJourney.record_note,
        lambda i: {"actor": "teacher-1", "note": "n"},
        MALFORMED,
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(progress="all fine"),
        MALFORMED,
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(progress=[{"target_index": "zero", "progress": "p"}]),
        MALFORMED,
    ),
    # unknown enum values
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(actor=actor("headteacher")),
        MALFORMED,
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(triggers=["SA-MAGIC"]),
        MALFORMED,
    ),
    Case(
        "school_action", PupilJourney.record_review, lambda i: review(outcome="sideways"), MALFORMED
    ),
    Case("action_plus", PupilJourney.refer, lambda i: refer(kind="astrologer"), MALFORMED),
    Case(
        "school_action",
        PupilJourney.close,
        lambda i: {"actor": SENCO_J, "close_reason": "bored", "reason": "r"},
        MALFORMED,
    ),
    # missing, empty and over-long text
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(triggers=[]),
        "cite at least one SA-",
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(evidence="   "),
        "give the evidence",
    ),
    Case(
        "monitoring", PupilJourney.open_school_action, lambda i: open_sa(evidence=LONG), "evidence"
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(targets=[])),
        "at least one target",
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(strategies=[HUGE])),
        r"strategies\[0\] is 1000000 characters; the limit is 4000",
    ),
    Case(
        "monitoring",
        PupilJourney.record_note,
        lambda i: {"actor": TEACHER_J, "note": ""},
        "cannot be empty",
    ),
    Case(
        "monitoring", PupilJourney.record_note, lambda i: {"actor": TEACHER_J, "note": HUGE}, "note"
    ),
    Case(
        "school_action",
        PupilJourney.step_down,
        lambda i: {"actor": SENCO_J, "reason": ""},
        "give a reason",
    ),
    Case(
        "school_action",
        PupilJourney.close,
        lambda i: {"actor": SENCO_J, "close_reason": "needs_met", "reason": LONG},
        "reason",
    ),
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(question=""),
        "must ask the specialist a question",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(progress=[{"target_index": 0, "progress": "p"}]),
        "record progress once for each",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(
            progress=[{"target_index": 0, "progress": "p"}, {"target_index": 0, "progress": "p"}]
        ),
        "record progress once for each",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(
            progress=[{"target_index": 0, "progress": " "}, {"target_index": 1, "progress": "p"}]
        ),
        "describe the progress",
    ),
    # dates in the wrong order
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(review_date=(today() - timedelta(days=1)).isoformat())),
        "is not after today",
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(review_date=today().isoformat())),
        "is not after today",
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(review_date=(today() + timedelta(days=400)).isoformat())),
        "at least every 6 months",
    ),
    Case(
        "monitoring",
        PupilJourney.open_school_action,
        lambda i: open_sa(iep=plan(review_date="2027-02-30")),
        MALFORMED,
    ),
    # the wrong role
    *[
        Case("monitoring", PupilJourney.open_school_action, as_role(role), "only a SENCO")
        for role in ("class_teacher", "parent", "specialist", "admin", "auditor", "system")
    ],
    Case(
        "monitoring",
        PupilJourney.record_note,
        lambda i: {"actor": actor("parent"), "note": "hi"},
        "only a SENCO or class teacher",
    ),
    Case(
        "monitoring",
        PupilJourney.record_note,
        lambda i: {"actor": actor("auditor"), "note": "hi"},
        "only a SENCO or class teacher",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(actor=actor("parent")),
        "only a SENCO or class teacher",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(outcome="escalate", actor=TEACHER_J, triggers=["AP-PROGRESS-LONG"]),
        "only a SENCO",
    ),
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(actor=actor("specialist", "slt-3")),
        "only a SENCO",
    ),
    Case(
        "school_action",
        PupilJourney.close,
        lambda i: {"actor": TEACHER_J, "close_reason": "needs_met", "reason": "r"},
        "only a SENCO",
    ),
    # the rules: evidence, order of stages
    Case(
        "monitoring",
        PupilJourney.escalate,
        lambda i: open_sa(triggers=["AP-PROGRESS-LONG"]),
        "cannot escalate",
    ),
    Case("monitoring", PupilJourney.refer, lambda i: refer(), "cannot refer"),
    Case(
        "monitoring",
        PupilJourney.request_statutory_assessment,
        lambda i: {"actor": SENCO_J, "evidence": "e"},
        "cannot request",
    ),
    Case(
        "monitoring",
        PupilJourney.step_down,
        lambda i: {"actor": SENCO_J, "reason": "r"},
        "cannot step down",
    ),
    Case("monitoring", PupilJourney.record_review, lambda i: review(), "cannot record a review"),
    Case(
        "school_action",
        PupilJourney.open_school_action,
        lambda i: open_sa(),
        "cannot open School Action",
    ),
    Case(
        "school_action",
        PupilJourney.escalate,
        lambda i: open_sa(triggers=["AP-PROGRESS-LONG"]),
        "completed School Action review",
    ),
    Case("school_action", PupilJourney.refer, lambda i: refer(), "cannot refer"),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(outcome="escalate", triggers=["SA-PROGRESS"]),
        "cite at least one AP-",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(outcome="escalate", triggers=["AP-PROGRESS-LONG"], new_iep=None),
        "an IEP is required",
    ),
    Case(
        "school_action",
        PupilJourney.record_review,
        lambda i: review(outcome="close"),
        "say why the journey closes",
    ),
    Case(
        "action_plus",
        PupilJourney.request_statutory_assessment,
        lambda i: {"actor": SENCO_J, "evidence": "e"},
        "needs a completed specialist assessment",
    ),
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(kind="educational_psychologist"),
        "referral is already open",
    ),
    Case(
        "action_plus",
        PupilJourney.escalate,
        lambda i: open_sa(triggers=["AP-PROGRESS-LONG"]),
        "cannot escalate",
    ),
    Case(
        "action_plus",
        PupilJourney.step_down,
        lambda i: {"actor": SENCO_J, "reason": "better", "iep": plan(targets=[])},
        "at least one target",
    ),
    # hostile references
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(specialist_id="'; DROP TABLE pupils;--"),
        "opaque reference",
    ),
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(specialist_id="slt-3\r\nBcc: all@example.com"),
        "opaque reference",
    ),
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(specialist_id="../../etc/passwd"),
        "opaque reference",
    ),
    Case(
        "action_plus",
        PupilJourney.refer,
        lambda i: refer(specialist_id="s" * 65),
        "opaque reference",
    ),
    # the wrong pupil
    Case(
        "closed", PupilJourney.record_note, lambda i: {"actor": TEACHER_J, "note": "late"}, NO_SUCH
    ),
    Case("nobody", PupilJourney.record_note, lambda i: {"actor": TEACHER_J, "note": "hi"}, NO_SUCH),
    Case(
        "../../etc/passwd",
        PupilJourney.record_note,
        lambda i: {"actor": TEACHER_J, "note": "hi"},
        "journey id must be an opaque",
    ),
    Case(
        "Jane Smith",
        PupilJourney.record_note,
        lambda i: {"actor": TEACHER_J, "note": "hi"},
        "journey id must be an opaque",
    ),
]


def reply(**changes: Any) -> Payload:
    def build(ids: Ids) -> dict[str, Any]:
        good = {
            "reply_id": f"r-{uuid.uuid4().hex[:10]}",
            "consultation_id": ids["open"],
            "parent_id": "parent-a",
            "reply": "agree",
            "comments": "",
        }
        return good | {k: v.format(**ids) if isinstance(v, str) else v for k, v in changes.items()}

    return build


def report(**changes: Any) -> Payload:
    def build(ids: Ids) -> dict[str, Any]:
        good = {
            "reply_id": f"a-{uuid.uuid4().hex[:10]}",
            "referral_id": ids.get("referral", "referral-1"),
            "actor": {"id": "ep-7", "role": "specialist"},
            "summary": "report",
            "recommendations": ["a plan"],
        }
        return good | {k: v.format(**ids) if isinstance(v, str) else v for k, v in changes.items()}

    return build


#: Every signal, rejected and recorded so: the reason is the rejected entry's reason.
SIGNALS: list[Case] = [
    Case(
        "school_action",
        PupilJourney.parent_responded,
        lambda i: "not an object",
        "malformed message",
    ),
    Case("school_action", PupilJourney.parent_responded, lambda i: {}, "malformed message"),
    Case("school_action", PupilJourney.parent_responded, lambda i: [1, 2, 3], "malformed message"),
    Case("school_action", PupilJourney.parent_responded, reply(reply="maybe"), "malformed message"),
    Case("school_action", PupilJourney.parent_responded, reply(comments=7), "malformed message"),
    Case(
        "school_action",
        PupilJourney.parent_responded,
        reply(reply="no_response"),
        "recorded by the journey",
    ),
    Case(
        "school_action",
        PupilJourney.parent_responded,
        reply(consultation_id="consultation-999"),
        "no consultation",
    ),
    Case(
        "school_action",
        PupilJourney.parent_responded,
        reply(parent_id="stranger-1"),
        "was not consulted",
    ),
    Case(
        "school_action",
        PupilJourney.parent_responded,
        reply(comments=LONG),
        "comments is 4001 characters; the limit is 4000",
    ),
    Case("school_action", PupilJourney.parent_responded, reply(comments=HUGE), "the limit is 4000"),
    Case(
        "school_action",
        PupilJourney.parent_responded,
        reply(reply_id="../x"),
        "reply id must be an opaque",
    ),
    Case(
        "school_action",
        PupilJourney.parent_responded,
        reply(reply_id=""),
        "reply id must be an opaque",
    ),
    Case("school_action", PupilJourney.assessment_completed, report(), "no referral"),
    Case(
        "action_plus",
        PupilJourney.parent_responded,
        reply(consultation_id="{answered}"),
        "is answered",
    ),
    Case(
        "action_plus",
        PupilJourney.assessment_completed,
        report(actor={"id": "ep-8", "role": "specialist"}),
        "assigned to another specialist",
    ),
    Case(
        "action_plus",
        PupilJourney.assessment_completed,
        report(actor={"id": "ep-7", "role": "parent"}),
        "assigned to another specialist",
    ),
    Case(
        "action_plus",
        PupilJourney.assessment_completed,
        report(referral_id="referral-999"),
        "no referral",
    ),
    Case(
        "action_plus",
        PupilJourney.assessment_completed,
        report(summary=""),
        "needs a report summary",
    ),
    Case(
        "action_plus",
        PupilJourney.assessment_completed,
        report(recommendations=7),
        "malformed message",
    ),
    Case("lapsed", PupilJourney.parent_responded, reply(consultation_id="{lapsed}"), "is lapsed"),
]


@dataclass
class Prepared:
    pupil: str
    ids: Ids


@dataclass
class World:
    client: Client
    settings: Settings
    config: WorkerConfig
    copies: list[dict[str, Prepared]]


async def prepare(client: Client, settings: Settings, tag: str) -> dict[str, Prepared]:
    """One journey at each place the table needs: just started, School Action with parents
    still to answer, Action Plus with an open referral and an answered consultation, a lapsed
    consultation, a closed journey."""
    p = {
        k: f"bad-{tag}-{k.replace('_', '')}"
        for k in ("monitoring", "school_action", "action_plus", "lapsed", "closed")
    }
    opened = OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep())
    for key in ("monitoring", "school_action", "action_plus", "closed"):
        await temporal.start(client, settings, start_cmd(p[key]), workflow_id(p[key]))
    await temporal.start(
        client,
        settings,
        start_cmd(p["lapsed"], policy=Policy.demo(timedelta(seconds=0.3))),
        workflow_id(p["lapsed"]),
    )
    for key in ("school_action", "action_plus", "lapsed"):
        await temporal.execute(client, workflow_id(p[key]), PupilJourney.open_school_action, opened)
    ap = await temporal.state(client, workflow_id(p["action_plus"]))
    answered = ap.consultations[0].consultation_id
    for parent in ap.parent_ids:
        await temporal.signal(
            client,
            workflow_id(p["action_plus"]),
            PupilJourney.parent_responded,
            ParentRespondedInput(f"ok-{tag}-{parent}", answered, parent, ParentReply.AGREE),
        )
    await temporal.execute(
        client,
        workflow_id(p["action_plus"]),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO,
            ReviewOutcome.ESCALATE,
            progress(),
            "little",
            iep("plus"),
            [Trigger.AP_COMMUNICATION],
        ),
    )
    referral = await temporal.execute(
        client,
        workflow_id(p["action_plus"]),
        PupilJourney.refer,
        ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, "ep-7", "why?"),
    )
    await temporal.execute(
        client,
        workflow_id(p["closed"]),
        PupilJourney.close,
        CloseInput(SENCO, CloseReason.LEFT_SCHOOL, "moved"),
    )
    sa = await temporal.state(client, workflow_id(p["school_action"]))
    lapsed_state = await temporal.state(client, workflow_id(p["lapsed"]))
    lapsed = lapsed_state.consultations[0].consultation_id

    async def has_lapsed() -> bool:
        state = await temporal.state(client, workflow_id(p["lapsed"]))
        return not state.open_consultations() or state.consultations[0].status.value == "lapsed"

    await until(has_lapsed, 30, "the short-clock consultation to lapse")
    ids = {
        "open": sa.consultations[0].consultation_id,
        "answered": answered,
        "lapsed": lapsed,
        "referral": referral.ref or "",
    }
    prepared = {k: Prepared(v, ids) for k, v in p.items()}
    prepared["nobody"] = Prepared(f"nobody-{tag}", ids)
    prepared["../../etc/passwd"] = Prepared("../../etc/passwd", ids)
    prepared["Jane Smith"] = Prepared("Jane Smith", ids)
    return prepared


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    module_procs: Processes, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    procs, tmp_path = module_procs, tmp_path_factory.mktemp("hostile")
    server = DevServer(procs, tmp_path / "temporal.db")
    await server.start()
    config = WorkerConfig(
        server.address,
        f"tq-{uuid.uuid4().hex[:8]}",
        f"sqlite:///{tmp_path}/records.db",
        tmp_path / "outbox",
    )
    await start_worker(procs, config)
    client = await server.client()
    settings = config.settings()
    n = env_int("FAULTS_BAD_INPUT_COPIES", 3)
    copies = list(await asyncio.gather(*(prepare(client, settings, str(k)) for k in range(n))))
    yield World(client, settings, config, copies)


async def fresh_school_action(world: World) -> tuple[str, str]:
    """A new journey at School Action; returns it and its open consultation."""
    pupil = f"fresh-{uuid.uuid4().hex[:8]}"
    await temporal.start(world.client, world.settings, start_cmd(pupil), workflow_id(pupil))
    result = await temporal.execute(
        world.client,
        workflow_id(pupil),
        PupilJourney.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
    )
    return pupil, f"consultation-{result.step}"


async def event_count(client: Client, pupil: str) -> int:
    return len((await client.get_workflow_handle(workflow_id(pupil)).fetch_history()).events)


async def settled(client: Client, pupils: list[str]) -> None:
    async def check() -> bool:
        return all([await drained(client, p) for p in pupils])

    await until(check, 60, "the prepared journeys to settle")


async def test_every_update_refuses_bad_input_with_a_reason_and_leaves_no_event(
    world: World, figures: dict[str, Any]
) -> None:
    client = world.client
    running = [
        c[k].pupil for c in world.copies for k in ("monitoring", "school_action", "action_plus")
    ]
    await settled(client, running)
    before = {p: await event_count(client, p) for p in running}

    async def one_copy(copy: dict[str, Prepared]) -> list[str]:
        wrong = []
        for case in UPDATES:
            target = copy[case.target]
            try:
                result = await temporal.execute(
                    client, workflow_id(target.pupil), case.message, case.payload(target.ids)
                )
            except (Refused, NotFound) as err:
                if not re.search(case.refusal, str(err)):
                    wrong.append(f"{case.message.__name__} on {case.target}: {err!s:.200}")
                continue
            wrong.append(f"{case.message.__name__} on {case.target} was ACCEPTED: {result.summary}")
        return wrong

    results = await asyncio.gather(*(one_copy(c) for c in world.copies))
    assert [w for ws in results for w in ws] == []
    after = {p: await event_count(client, p) for p in running}
    assert after == before  # a refused update leaves nothing in the history
    facts = [await history_facts(client, f"pupil-{p}") for p in running]
    assert sum(f.failed_workflow_tasks for f in facts) == 0
    figures["refused updates (cases x copies)"] = len(UPDATES) * len(world.copies)
    figures["events added by refused updates"] = sum(after.values()) - sum(before.values())


async def test_every_bad_reply_is_recorded_as_rejected_with_a_reason(
    world: World, figures: dict[str, Any]
) -> None:
    client = world.client
    targets = ("school_action", "action_plus", "lapsed")
    pupils = [c[k].pupil for c in world.copies for k in targets]
    before = {p: await temporal.state(client, workflow_id(p)) for p in pupils}

    async def one_copy(copy: dict[str, Prepared]) -> None:
        for case in SIGNALS:
            target = copy[case.target]
            # Raw signals, as any client could send them: the CLI's and API's own checks
            # refuse much of this before it leaves; the journey must cope with the rest.
            handle = client.get_workflow_handle(workflow_id(target.pupil))
            await handle.signal(case.message, case.payload(target.ids))

    await asyncio.gather(*(one_copy(c) for c in world.copies))
    wrong = []
    for copy in world.copies:
        for key in targets:
            pupil = copy[key].pupil
            expected = [c for c in SIGNALS if c.target == key]

            async def all_recorded(pupil: str = pupil, n: int = len(expected)) -> bool:
                state = await temporal.state(client, workflow_id(pupil))
                return len([e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]) >= n

            await until(all_recorded, 30, f"{pupil} to record every rejected reply")
            state = await temporal.state(client, workflow_id(pupil))
            rejected = [e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]
            assert len(rejected) == len(expected)  # one entry each, none lost, none extra
            for case, entry in zip(expected, rejected, strict=True):
                if not re.search(case.refusal, entry.reason):
                    wrong.append(f"{case.message.__name__} on {key}: {entry.reason[:200]}")
                assert len(entry.reason) <= 4000
            # nothing else moved: same stage, phase, consultations, referrals
            old = before[pupil]
            assert (state.stage, state.phase) == (old.stage, old.phase)
            assert state.consultations == old.consultations
            assert state.referrals == old.referrals
    assert wrong == []
    facts = [await history_facts(client, f"pupil-{p}") for p in pupils]
    assert sum(f.failed_workflow_tasks for f in facts) == 0
    figures["rejected replies recorded (cases x copies)"] = len(SIGNALS) * len(world.copies)


async def test_a_reply_delivered_twice_is_applied_once_and_closed_journeys_refuse_replies(
    world: World,
) -> None:
    client = world.client
    copy = world.copies[0]
    pupil, consultation = await fresh_school_action(world)
    same = ParentRespondedInput("twice-1", consultation, "parent-b", ParentReply.DISAGREE, "no")
    await asyncio.gather(
        *(
            temporal.signal(client, workflow_id(pupil), PupilJourney.parent_responded, same)
            for _ in range(5)
        )
    )

    async def applied() -> bool:
        state = await temporal.state(client, workflow_id(pupil))
        return any(e.kind is EntryKind.PARENT_REPLY for e in state.timeline)

    await until(applied, 30, "the reply to be applied")
    await asyncio.sleep(0.5)
    state = await temporal.state(client, workflow_id(pupil))
    assert len([e for e in state.timeline if e.kind is EntryKind.PARENT_REPLY]) == 1
    senco_notices = [e for e in state.timeline if e.kind is EntryKind.PARENT_REPLY]
    assert senco_notices[0].actor.id == "parent-b"

    for target in ("closed", "nobody"):
        with pytest.raises(NotFound, match=NO_SUCH):
            await temporal.signal(
                client, workflow_id(copy[target].pupil), PupilJourney.parent_responded, same
            )
    with pytest.raises(Refused, match="journey id must be an opaque"):
        await temporal.signal(client, workflow_id("a/b"), PupilJourney.parent_responded, same)


@dataclass
class CliCase:
    argv: list[str]
    status: int
    stderr: str
    #: who the CLI is signed in as (their token in SENFLOW_TOKEN); None: nobody
    user: str | None = "senco-1"


IEP_ARGS = ["--target", "t::c", "--strategy", "s", "--provision", "p", "--responsible", "teacher-1"]
TEACHER_USER = "teacher-1"


def cli_cases(p: dict[str, Prepared]) -> list[CliCase]:
    mon, sa, ap = p["monitoring"].pupil, p["school_action"].pupil, p["action_plus"].pupil
    start = ["start", "new-1", "--school", "school-1", "--senco", "senco-1", "--parent", "parent-a"]
    return [
        CliCase([*start, "--concern", ""], 1, "describe the concern", TEACHER_USER),
        CliCase([*start, "--concern", "c"], 1, "a specialist may not start a journey", "ep-7"),
        CliCase([*start, "--concern", "c"], 1, "not signed in", None),
        CliCase(
            [*start[:1], "../x", *start[2:], "--concern", "c"], 1, "opaque reference", TEACHER_USER
        ),
        CliCase(
            [*start, "--parent", "Jane Smith", "--concern", "c"],
            1,
            "parent id must be an opaque",
            TEACHER_USER,
        ),
        CliCase(
            [*start, "--concern", "c", "--date-of-birth", "2019-02-30"],
            2,
            "not a date",
            TEACHER_USER,
        ),
        CliCase(
            [*start, "--concern", "c", "--actor", "t", "--role", "headteacher"],
            2,
            "unrecognized arguments",
            TEACHER_USER,
        ),
        CliCase(
            [*start, "--concern", "c", "--policy", "lenient"], 2, "invalid choice", TEACHER_USER
        ),
        CliCase(["start", "x", "--concern", "c"], 2, "required"),
        CliCase(["open-school-action", mon, "--trigger", "SA-MAGIC"], 2, "not one of"),
        CliCase(["open-school-action", mon, "--target", "no criterion"], 2, "target is"),
        CliCase(["open-school-action", mon, "--trigger", "SA-PROGRESS"], 1, "not signed in", None),
        CliCase(
            ["open-school-action", mon, "--trigger", "SA-PROGRESS", "--evidence", "e"],
            1,
            "an IEP needs at least one target",
        ),
        CliCase(
            [
                "open-school-action",
                mon,
                "--trigger",
                "AP-PROGRESS-LONG",
                "--evidence",
                "e",
                *IEP_ARGS,
            ],
            1,
            "cite at least one SA-",
        ),
        CliCase(
            [
                "open-school-action",
                mon,
                "--trigger",
                "SA-PROGRESS",
                "--evidence",
                "e",
                *IEP_ARGS,
                "--review-date",
                "2020-01-01",
            ],
            1,
            "is not after today",
        ),
        CliCase(
            [
                "open-school-action",
                "nobody-x",
                "--trigger",
                "SA-PROGRESS",
                "--evidence",
                "e",
                *IEP_ARGS,
            ],
            1,
            NOT_OPEN,
        ),
        # a specialist knows a pupil only through a referral to them: no such journey for them
        CliCase(["note", mon, "--school", "school-1", "--note", "n"], 1, NOT_OPEN, "ep-7"),
        CliCase(["note", mon, "--note", "n"], 1, "an? auditor may not record notes", "auditor-1"),
        CliCase(["review", sa, "--outcome", "sideways"], 2, "not one of"),
        CliCase(
            ["review", sa, "--outcome", "continue", "--progress", "zero:fine"],
            2,
            "progress is",
        ),
        CliCase(
            ["review", sa, "--outcome", "continue", "--progress", "0:fine"],
            1,
            "record progress once for each",
        ),
        CliCase(
            [
                "review",
                sa,
                "--outcome",
                "close",
                "--progress",
                "0:a",
                "--progress",
                "1:b",
            ],
            1,
            "say why the journey closes",
        ),
        CliCase(
            ["escalate", sa, "--trigger", "AP-PROGRESS-LONG", "--evidence", "e", *IEP_ARGS],
            1,
            "may not take this decision \\(a SENCO's\\)",
            TEACHER_USER,
        ),
        CliCase(
            [
                "refer",
                ap,
                "--kind",
                "astrologer",
                "--specialist",
                "x",
                "--question",
                "q",
            ],
            2,
            "not one of",
        ),
        CliCase(
            [
                "refer",
                ap,
                "--kind",
                "camhs",
                "--specialist",
                "Dr Who",
                "--question",
                "q",
            ],
            1,
            "specialist_id: String should match pattern",
        ),
        CliCase(
            ["refer", sa, "--kind", "camhs", "--specialist", "c-1", "--question", "q"],
            1,
            "cannot refer",
        ),
        CliCase(
            ["request-statutory-assessment", ap, "--evidence", "e"],
            1,
            "completed specialist assessment",
        ),
        CliCase(["step-down", mon, "--reason", "r"], 1, "cannot step down"),
        CliCase(["close", sa, "--close-reason", "bored"], 2, "not one of"),
        CliCase(["close", sa, "--close-reason", "needs_met"], 1, "give a reason"),
        CliCase(
            [
                "parent-response",
                sa,
                "--consultation",
                "c",
                "--reply",
                "maybe",
            ],
            2,
            "not one of",
        ),
        CliCase(
            [
                "parent-response",
                "../x",
                "--consultation",
                "c",
                "--reply",
                "agree",
            ],
            1,
            "opaque reference",
        ),
        CliCase(
            [
                "assessment-completed",
                "nobody-x",
                "--school",
                "school-1",
                "--referral",
                "r",
                "--summary",
                "s",
            ],
            1,
            NOT_OPEN,
            "ep-7",
        ),
        CliCase(["show", "nobody-x"], 1, NOT_OPEN),
        CliCase(["show", "a;b"], 1, "opaque reference"),
        CliCase(["history", "a b"], 1, "opaque reference"),
        CliCase(["export", "../x", "-o", "/dev/null"], 1, "opaque reference"),
        CliCase(["audit"], 2, "audit PUPIL"),
        CliCase(["replay"], 1, "nothing to replay"),
        CliCase(["list", "--stage", "nowhere"], 2, "not one of"),
        CliCase(["list", "--school", "x' OR '1'='1"], 1, "school id must be an opaque"),
        CliCase(["report", "everything"], 2, "invalid choice"),
        CliCase(
            ["contacts", "add", "../x", "--contact-role", "parent", "--name", "n"],
            1,
            "contact id must be an opaque",
        ),
        CliCase(["contacts", "add", "c-1", "--name", "n"], 2, "contacts add ID"),
        CliCase(["records", "frobnicate"], 2, "invalid choice"),
        CliCase(["frobnicate"], 2, "invalid choice"),
    ]


#: The CLI's users here: (role, settings). The prepared journeys are at school-1.
CLI_USERS = {
    "senco-1": (Role.SENCO, ["school-1"]),
    "teacher-1": (Role.CLASS_TEACHER, ["school-1"]),
    "ep-7": (Role.SPECIALIST, []),
    "auditor-1": (Role.AUDITOR, ["school-1"]),
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cli_api(
    world: World, module_procs: Processes
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """`senflow api` beside the world's worker, and a token for each of the CLI's users."""
    factory = sessions(make_engine(world.config.database_url))
    tokens = {}
    with factory.begin() as session:
        for user, (role, schools) in CLI_USERS.items():
            tokens[user] = store.add_user(session, user, role, schools, datetime.now(UTC))
    port = free_port()
    env = {**world.config.env(), "SENFLOW_API_PORT": str(port)}
    proc = module_procs.start("api", [find_binary("senflow"), "api", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"

    async def serving() -> bool:
        if not proc.alive():
            raise AssertionError(f"the API exited:\n{proc.output()[-3000:]}")
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{url}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await until(serving, 60, "the API to serve")
    yield url, tokens


async def test_every_cli_command_refuses_bad_input_with_a_reason_and_the_right_exit_status(
    world: World,
    cli_api: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    figures: dict[str, Any],
    tmp_path: Path,
) -> None:
    url, tokens = cli_api
    for name, value in world.config.env().items():
        if name.startswith(("SENFLOW_", "TEMPORAL_")):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENFLOW_API_URL", url)
    monkeypatch.setenv("SENFLOW_CONFIG_DIR", str(tmp_path / "config"))
    cases = cli_cases(world.copies[0])
    before = {
        p: await event_count(world.client, p)
        for p in (world.copies[0][k].pupil for k in ("monitoring", "school_action", "action_plus"))
    }
    wrong = []
    for case in cases:
        if case.user is None:
            monkeypatch.delenv("SENFLOW_TOKEN", raising=False)
        else:
            monkeypatch.setenv("SENFLOW_TOKEN", tokens[case.user])
        try:
            status = await asyncio.to_thread(starter.main, case.argv)
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 2
        err = capsys.readouterr().err
        if status != case.status or not re.search(case.stderr, err):
            wrong.append(f"{' '.join(case.argv)[:80]} -> {status}: {err.strip()[-200:]}")
    assert wrong == [], "\n".join(wrong)
    after = {p: await event_count(world.client, p) for p in before}
    assert after == before
    figures["CLI invocations refused (exit 1 or 2, reason on stderr)"] = len(cases)


# -- defects this tier found, fixed (each was a strict xfail until its fix landed) ----------


async def test_over_long_text_is_refused_as_too_long_not_as_missing(world: World) -> None:
    pupil = world.copies[0]["monitoring"].pupil
    with pytest.raises(Refused, match="4000"):
        await temporal.execute(
            world.client,
            workflow_id(pupil),
            PupilJourney.record_note,
            RecordNoteInput(TEACHER, LONG),
        )


async def test_an_actor_id_that_is_not_an_opaque_reference_is_refused(world: World) -> None:
    pupil = world.copies[0]["monitoring"].pupil
    note = {"actor": {"id": "Mrs Jane Smith", "role": "class_teacher"}, "note": "n"}
    with pytest.raises(Refused, match="opaque"):
        await temporal.execute(world.client, workflow_id(pupil), PupilJourney.record_note, note)


async def test_a_review_with_a_megabyte_of_notes_is_refused(world: World) -> None:
    pupil = world.copies[0]["school_action"].pupil
    with pytest.raises(Refused):
        await temporal.execute(
            world.client,
            workflow_id(pupil),
            PupilJourney.record_review,
            review(notes=HUGE, actor=TEACHER_J),
        )


async def test_a_reply_reusing_another_replys_id_is_recorded_as_rejected(world: World) -> None:
    pupil, consultation = await fresh_school_action(world)
    first = ParentRespondedInput("reused-1", consultation, "parent-a", ParentReply.AGREE)
    second = ParentRespondedInput("reused-1", consultation, "parent-b", ParentReply.DISAGREE)
    await temporal.signal(world.client, workflow_id(pupil), PupilJourney.parent_responded, first)
    await temporal.signal(world.client, workflow_id(pupil), PupilJourney.parent_responded, second)
    await asyncio.sleep(1)
    state = await temporal.state(world.client, workflow_id(pupil))
    heard = [e.actor.id for e in state.timeline if e.kind is EntryKind.PARENT_REPLY]
    rejected = [e for e in state.timeline if e.kind is EntryKind.REJECTED_MESSAGE]
    assert "parent-b" in heard or any("reused-1" in e.reason for e in rejected)


async def test_a_date_of_birth_in_the_future_is_refused(
    world: World,
    cli_api: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, tokens = cli_api
    for name, value in world.config.env().items():
        if name.startswith(("SENFLOW_", "TEMPORAL_")):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENFLOW_API_URL", url)
    monkeypatch.setenv("SENFLOW_TOKEN", tokens["teacher-1"])
    argv = [
        "start",
        f"future-{uuid.uuid4().hex[:6]}",
        "--school",
        "school-1",
        "--senco",
        "senco-1",
        "--parent",
        "parent-a",
        "--concern",
        "c",
        "--date-of-birth",
        (date.today() + timedelta(days=400)).isoformat(),
    ]
    assert await asyncio.to_thread(starter.main, argv) == 1
    assert "date of birth is in the future" in capsys.readouterr().err


async def test_an_update_over_the_payload_limit_is_refused_without_failing_a_workflow_task(
    world: World,
) -> None:
    client = world.client
    pupil = f"oversize-{uuid.uuid4().hex[:6]}"
    await temporal.start(client, world.settings, start_cmd(pupil), workflow_id(pupil))
    handle = client.get_workflow_handle(workflow_id(pupil))
    oversized = RecordNoteInput(TEACHER, "z" * 3_000_000)  # Temporal refuses payloads > 2 MB
    sending = asyncio.create_task(
        temporal.execute(client, workflow_id(pupil), PupilJourney.record_note, oversized)
    )
    try:
        await asyncio.sleep(3)  # a worker answers an update in milliseconds
        history = await handle.fetch_history()
        failed = [
            e.workflow_task_failed_event_attributes.failure.message
            for e in history.events
            if e.event_type is EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        ]
        assert failed == []
        with pytest.raises(Refused):  # and the caller is told why
            await asyncio.wait_for(sending, 10)
    finally:
        sending.cancel()
        await handle.terminate("test finished")


async def test_a_signal_over_the_payload_limit_is_refused_by_the_server_and_changes_nothing(
    world: World,
) -> None:
    copy = world.copies[0]
    pupil, ids = copy["school_action"].pupil, copy["school_action"].ids
    before = await event_count(world.client, pupil)
    oversized = reply(comments="z" * 3_000_000)(ids)
    with pytest.raises(Refused, match="limit"):  # the CLI's and API's function refuses it
        await temporal.signal(
            world.client, workflow_id(pupil), PupilJourney.parent_responded, oversized
        )
    handle = world.client.get_workflow_handle(workflow_id(pupil))
    raw: Any = PupilJourney.parent_responded  # declared over a RawValue: it takes any payload
    with pytest.raises(RPCError, match="size exceeds limit"):  # and so does the server
        await handle.signal(raw, oversized)
    assert await event_count(world.client, pupil) == before
