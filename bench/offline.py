"""Scenarios that need no load on a dev server: replay, the ten-year footprint, the read model."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from bench import pattern
from bench.baseline import BareJourney
from bench.stats import rate
from devserver import SEARCH_ATTRIBUTES, find_binary
from domain.commands import (
    AssessmentCompletedInput,
    ParentRespondedInput,
    RecordReviewInput,
    ReferInput,
)
from domain.journey import Journey
from domain.model import (
    Actor,
    JourneyState,
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Stage,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy
from records.db import make_engine, migrate, sessions
from records.projection import project
from service import temporal
from settings import Settings
from worker import build_worker, workflow_runner
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney, workflow_id

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "histories"

#: Temporal's hard limits for one run's history (the server terminates a run past them).
HISTORY_EVENT_LIMIT = 51_200
HISTORY_BYTES_LIMIT = 50 * 1024 * 1024
#: ... and for one payload (a continue-as-new input, a query result).
BLOB_LIMIT = 2 * 1024 * 1024


# -- replay -----------------------------------------------------------------------------------


async def _replay(
    workflows: list[type], histories: list[WorkflowHistory], rounds: int, sandbox: str
) -> dict[str, Any]:
    replayer = Replayer(
        workflows=workflows, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner(sandbox)
    )
    failures = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for history in histories:
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            failures += result.replay_failure is not None
    seconds = time.perf_counter() - t0
    count = rounds * len(histories)
    events = rounds * sum(len(h.events) for h in histories)
    return {
        "histories": count,
        "failures": failures,
        "seconds": round(seconds, 2),
        "histories_per_s": rate(count, seconds),
        "events_per_s": rate(events, seconds),
    }


def golden_histories() -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(path.stem, path.read_text())
        for path in sorted(GOLDEN.glob("*.json"))
    ]


async def replay(
    rounds: int, sandbox: str, pattern_histories: dict[str, list[WorkflowHistory]]
) -> dict[str, Any]:
    """Histories per second through ``Replayer``: the recorded two-year journeys (senflow only:
    the baseline has no such journey), and the benchmark's own journeys on both sides."""
    out: dict[str, Any] = {"sandbox": sandbox}
    golden = golden_histories()
    out["two_year_journeys"] = {
        "files": len(golden),
        "events_per_history": round(sum(len(h.events) for h in golden) / max(len(golden), 1)),
        **await _replay([PupilJourney], golden, rounds, sandbox),
    }
    sides: dict[str, list[type]] = {"baseline": [BareJourney], "senflow": [PupilJourney]}
    for side, histories in pattern_histories.items():
        if histories:
            out[f"pattern_{side}"] = await _replay(sides[side], histories, rounds, sandbox)
    return out


# -- the ten-year journey ---------------------------------------------------------------------


async def ten_year_footprint(years: int, directory: Path) -> dict[str, Any]:
    """A pupil on SEN support for ``years`` years on the time-skipping server with the Code's
    policy: a review every 13 weeks (a new plan each time, both parents answering), three
    progress notes between reviews, Action Plus from the third review, an educational
    psychologist's referral a year: each run's history, and the whole chain's, against
    Temporal's limits."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    try:
        return await _ten_years(env, years, directory)
    finally:
        await env.shutdown()


async def _ten_years(env: WorkflowEnvironment, years: int, directory: Path) -> dict[str, Any]:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{kind.upper()}")
                for name, kind in SEARCH_ATTRIBUTES.items()
            },
        )
    )
    client = env.client
    settings = Settings(
        task_queue=f"bench-ten-years-{uuid.uuid4().hex[:6]}",
        outbox_dir=directory / "outbox",
        database_url=f"sqlite:///{directory}/records.db",
        auto_migrate=True,
    )
    directory.mkdir(parents=True, exist_ok=True)
    pupil = f"ten-years-{uuid.uuid4().hex[:6]}"
    journey = workflow_id(pupil)
    ep = Actor("ep-1", Role.SPECIALIST)
    t0 = time.perf_counter()
    messages = 0
    async with build_worker(client, settings):
        await temporal.start(client, settings, pattern.start(pupil, Policy()), journey)
        await temporal.execute(
            client, journey, PupilJourney.open_school_action, pattern.open_school_action()
        )
        messages += 2
        term = 0
        until = await _now(env) + timedelta(days=365 * years + years // 4)
        while await _now(env) < until:
            state = await temporal.state(client, journey)
            for c in state.open_consultations():
                for parent in c.unanswered():
                    await temporal.signal(
                        client,
                        journey,
                        PupilJourney.parent_responded,
                        ParentRespondedInput(
                            f"r-{uuid.uuid4().hex[:10]}",
                            c.consultation_id,
                            parent,
                            ParentReply.AGREE,
                        ),
                    )
                    messages += 1
            for i in range(3):  # notes across the term
                await env.sleep(timedelta(weeks=3))
                await temporal.execute(client, journey, PupilJourney.record_note, pattern.note(i))
                messages += 1
            state = await temporal.state(client, journey)
            assert state.review_due_at is not None
            await env.sleep(
                max(state.review_due_at - await _now(env), timedelta(0)) + timedelta(hours=1)
            )
            term += 1
            outcome, triggers, new_iep = ReviewOutcome.CONTINUE, [], True
            if term == 3 and state.stage is Stage.SCHOOL_ACTION:
                outcome, triggers = ReviewOutcome.ESCALATE, [Trigger.AP_LITERACY_MATHS]
            await temporal.execute(
                client,
                journey,
                PupilJourney.record_review,
                RecordReviewInput(
                    pattern.SENCO,
                    outcome,
                    [TargetProgress(0, f"term {term}: some progress")],
                    f"review for term {term}",
                    pattern.open_school_action().iep if new_iep else None,
                    triggers,
                ),
            )
            messages += 1
            state = await temporal.state(client, journey)
            if state.stage is Stage.SCHOOL_ACTION_PLUS and term % 4 == 1:  # a referral a year
                result = await temporal.execute(
                    client,
                    journey,
                    PupilJourney.refer,
                    ReferInput(
                        pattern.SENCO,
                        SpecialistKind.EDUCATIONAL_PSYCHOLOGIST,
                        ep.id,
                        "what would help now?",
                    ),
                )
                await env.sleep(timedelta(weeks=5))
                assert result.ref is not None
                await temporal.signal(
                    client,
                    journey,
                    PupilJourney.assessment_completed,
                    AssessmentCompletedInput(
                        f"ep-{uuid.uuid4().hex[:10]}", result.ref, ep, "report", ["a programme"]
                    ),
                )
                messages += 2
        handle = client.get_workflow_handle(journey)
        for _ in range(600):  # let the last letters and records finish before terminating
            state = await temporal.state(client, journey)
            if not state.outbox and state.projected_step >= state.step:
                break
            await asyncio.sleep(0.05)
        await handle.terminate("benchmark finished")
        runs = await _chain(client, journey)
    seconds = time.perf_counter() - t0
    sizes = [_size(h) for h in runs]
    events = [len(h.events) for h in runs]
    worst = max(range(len(runs)), key=lambda i: events[i])
    return {
        "school_years": years,
        "reviews": term,
        "messages_sent": messages,
        "runs": len(runs),
        "continue_as_new": "at each new school year (1 September, 08:00 London) and when "
        "Temporal suggests it",
        "events_per_run": events,
        "bytes_per_run": sizes,
        "largest_run_events": events[worst],
        "largest_run_bytes": max(sizes),
        "largest_run_share_of_event_limit": round(events[worst] / HISTORY_EVENT_LIMIT, 4),
        "largest_run_share_of_size_limit": round(max(sizes) / HISTORY_BYTES_LIMIT, 4),
        # the state carried into the last run: one payload, under Temporal's 2 MB blob limit
        "carried_state_bytes_last_run": _input_bytes(runs[-1]),
        "blob_limit_bytes": BLOB_LIMIT,
        "whole_chain_events": sum(events),
        "whole_chain_bytes": sum(sizes),
        "whole_chain_share_of_event_limit": round(sum(events) / HISTORY_EVENT_LIMIT, 4),
        "seconds": round(seconds, 1),
    }


async def _now(env: WorkflowEnvironment) -> datetime:
    return await env.get_current_time()


def _input_bytes(history: WorkflowHistory) -> int:
    started = history.events[0].workflow_execution_started_event_attributes
    return sum(p.ByteSize() for p in started.input.payloads)


def _size(history: WorkflowHistory) -> int:
    """Bytes as the server counts them: the events' protobuf encoding."""
    return sum(e.ByteSize() for e in history.events)


async def _chain(client: Client, wf_id: str) -> list[WorkflowHistory]:
    handle = client.get_workflow_handle(wf_id)
    run_id = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
    runs = []
    while run_id:
        history = await client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
        runs.append(history)
        last = history.events[-1]
        run_id = ""
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


# -- the read model ---------------------------------------------------------------------------


def _deltas(journeys: int) -> list[tuple[str, JourneyState]]:
    """What ``record_journey`` receives for the benchmark's journey, built with the pure domain:
    one delta per accepted change (start, open, notes, reply, close)."""
    now = datetime(2026, 9, 7, 9, tzinfo=UTC)
    out: list[tuple[str, JourneyState]] = []
    for j in range(journeys):
        wf_id = workflow_id(pattern.pupil_id("records", j))
        journey = Journey.begin(pattern.start(wf_id.removeprefix("pupil-")), now)
        deltas = [journey.delta_since(0)]
        for name, cmd in pattern.updates(5):
            if name == "close":
                consultation = journey.state.open_consultations()[0].consultation_id
                journey.parent_responded(pattern.parent_reply(consultation, f"r{j}"), now)
                deltas.append(journey.delta_since(deltas[-1].step))
            getattr(journey, name)(cmd, now)
            deltas.append(journey.delta_since(deltas[-1].step))
            now += timedelta(minutes=1)
        out += [(wf_id, d) for d in deltas]
    return out


def _write_all(url: str, deltas: list[tuple[str, JourneyState]], schema: str | None) -> float:
    engine = make_engine(url, schema=schema)
    try:
        migrate(engine)
        factory = sessions(engine)
        t0 = time.perf_counter()
        for wf_id, delta in deltas:
            with factory.begin() as session:
                project(session, wf_id, delta)
        return time.perf_counter() - t0
    finally:
        engine.dispose()


async def records(journeys: int, directory: Path, pg_url: str) -> dict[str, Any]:
    """Projection writes per second (one ``record_journey`` transaction each), one writer."""
    deltas = _deltas(journeys)
    out: dict[str, Any] = {"writes": len(deltas), "journeys": journeys}
    directory.mkdir(parents=True, exist_ok=True)
    seconds = await asyncio.to_thread(
        _write_all, f"sqlite:///{directory}/records-bench.db", deltas, None
    )
    out["sqlite"] = {"seconds": round(seconds, 2), "writes_per_s": rate(len(deltas), seconds)}
    schema = f"senflow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as err:  # no PostgreSQL here: say so, measure nothing
        out["postgresql"] = {"skipped": f"PostgreSQL unreachable: {type(err).__name__}"}
        admin.dispose()
        return out
    try:
        seconds = await asyncio.to_thread(_write_all, pg_url, deltas, schema)
        out["postgresql"] = {
            "seconds": round(seconds, 2),
            "writes_per_s": rate(len(deltas), seconds),
        }
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return out
