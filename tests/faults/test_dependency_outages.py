"""Dependency outages: the read-model database (PostgreSQL, reached through a proxy the test
cuts) and the mail server are unavailable for a while. Activities retry with backoff, school
actions keep being accepted, and when the dependency returns the projection and the letters
catch up, exactly once.

Sizes: FAULTS_OUTAGE_JOURNEYS (6), FAULTS_OUTAGE_SECONDS (4: long enough to see the second
retry wait twice as long as the first).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from temporalio.client import Client

from domain.commands import (
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
)
from domain.model import ParentReply, ReviewOutcome, SpecialistKind, Trigger
from faultkit import (
    DevServer,
    MailSink,
    Processes,
    TcpProxy,
    WorkerConfig,
    drained,
    env_float,
    env_int,
    expected_message_ids,
    history_facts,
    percentile,
    prepare_records,
    start_worker,
    until,
)
from journeys import SENCO, TEACHER, iep, progress, start_cmd
from records import models as m
from records.db import make_engine, sessions
from records.sync import read_journeys, verify
from service import temporal
from workflows.pupil_journey import PupilJourney, workflow_id

PG_URL = os.environ.get("SENFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Stack:
    """Dev server, a throwaway PostgreSQL database behind a proxy, an SMTP sink, one worker."""

    client: Client
    config: WorkerConfig
    db_proxy: TcpProxy
    direct_url: str  # the test reads the database directly, never through the proxy
    sink: MailSink
    pupils: list[str] = field(default_factory=list)


@asynccontextmanager
async def stack(procs: Processes, tmp_path: Path) -> AsyncIterator[Stack]:
    server = DevServer(procs, tmp_path / "temporal.db")
    await server.start()
    database = f"senflow_faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    pg = admin.url
    direct_url = pg.set(database=database).render_as_string(hide_password=False)
    db_proxy = TcpProxy(pg.port or 5432, pg.host or "127.0.0.1")
    await db_proxy.start()
    proxied_url = pg.set(database=database, port=db_proxy.port).render_as_string(
        hide_password=False
    )
    prepare_records(direct_url)
    sink = MailSink()
    sink.start()
    config = WorkerConfig(
        server.address, f"tq-{uuid.uuid4().hex[:8]}", proxied_url, tmp_path / "outbox", sink.port
    )
    try:
        await start_worker(procs, config)
        yield Stack(await server.client(), config, db_proxy, direct_url, sink)
    finally:
        sink.stop()
        await db_proxy.close()
        for proc in reversed(procs.started):  # the worker holds connections to the database
            await proc.terminate()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


async def open_journeys(s: Stack, n: int) -> None:
    s.pupils = [f"o-{uuid.uuid4().hex[:6]}-{i}" for i in range(n)]

    async def one(pupil: str) -> None:
        await temporal.start(s.client, s.config.settings(), start_cmd(pupil), workflow_id(pupil))
        await temporal.execute(
            s.client,
            workflow_id(pupil),
            PupilJourney.open_school_action,
            OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
        )

    await asyncio.gather(*(one(p) for p in s.pupils))
    await until(lambda: all_drained(s), 30, "the journeys to settle")


async def all_drained(s: Stack) -> bool:
    return all([await drained(s.client, p) for p in s.pupils])


async def school_actions(s: Stack, latencies: list[float]) -> int:
    """A school's day while something is down: notes, a review escalating to Action Plus, a
    referral, the parents' replies. Every one must be accepted. Returns how many."""
    done = 0

    async def timed(update: Any, cmd: object) -> None:
        nonlocal done
        start = time.monotonic()
        await temporal.execute(s.client, workflow_id(pupil), update, cmd)
        latencies.append(time.monotonic() - start)
        done += 1

    for pupil in s.pupils:
        await timed(PupilJourney.record_note, RecordNoteInput(TEACHER, "reads 20 of 30 words"))
        await timed(
            PupilJourney.record_review,
            RecordReviewInput(
                SENCO,
                ReviewOutcome.ESCALATE,
                progress("little"),
                "little progress",
                iep("plus"),
                [Trigger.AP_LITERACY_MATHS],
            ),
        )
        await timed(
            PupilJourney.refer,
            ReferInput(SENCO, SpecialistKind.SPECIALIST_TEACHER, "slt-3", "what would help?"),
        )
        state = await temporal.state(s.client, workflow_id(pupil))
        for parent in state.parent_ids:
            await temporal.signal(
                s.client,
                workflow_id(pupil),
                PupilJourney.parent_responded,
                ParentRespondedInput(
                    f"{pupil}-{parent}",
                    state.consultations[-1].consultation_id,
                    parent,
                    ParentReply.AGREE,
                ),
            )
            done += 1
    return done


@dataclass
class RetrySample:
    activity: str
    attempt: int
    backoff: float  # seconds between the failed attempt and the next one
    failure: str


async def watch_retries(s: Stack, samples: list[RetrySample], stop: asyncio.Event) -> None:
    """What Temporal says about the activities waiting on the dependency, while it is down."""
    while not stop.is_set():
        for pupil in s.pupils:
            described = await s.client.get_workflow_handle(workflow_id(pupil)).describe()
            for p in described.raw_description.pending_activities:
                if p.attempt < 2 or not p.HasField("next_attempt_schedule_time"):
                    continue
                backoff = (
                    p.next_attempt_schedule_time.ToDatetime()
                    - p.last_attempt_complete_time.ToDatetime()
                ).total_seconds()
                samples.append(
                    RetrySample(p.activity_type.name, p.attempt, backoff, p.last_failure.message)
                )
        await asyncio.sleep(0.5)


async def caught_up_exactly_once(s: Stack, timeout: float) -> dict[str, Any]:
    """Everything projected and delivered; the read model agrees with Temporal; each letter
    reached the mail server once; no workflow task failed."""
    started = time.monotonic()
    await until(lambda: all_drained(s), timeout, "the projection and the letters to catch up")
    caught_up = time.monotonic() - started
    facts = [await history_facts(s.client, f"pupil-{p}") for p in s.pupils]
    assert sum(f.failed_workflow_tasks for f in facts) == 0
    expected = sorted(mid for f in facts for mid in expected_message_ids(f))
    arrived = s.sink.by_message_id()
    assert sorted(arrived) == expected
    assert all(len(copies) == 1 for copies in arrived.values()), {
        mid: len(c) for mid, c in arrived.items() if len(c) > 1
    }
    engine = make_engine(s.direct_url)
    try:
        with sessions(engine)() as session:
            assert verify(session, await read_journeys(s.client)) == []
            ledger = session.scalar(select(func.count()).select_from(m.MessageSent))
            assert ledger == len(expected)
    finally:
        engine.dispose()
    return {
        "caught up within, seconds after it returned": round(caught_up, 1),
        "letters (each arrived once)": len(expected),
        "activity attempts retried": sum(f.activity_retries for f in facts),
    }


async def outage_with_actions(
    s: Stack, down: float, latencies: list[float], samples: list[RetrySample]
) -> int:
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_retries(s, samples, stop))
    started = time.monotonic()
    actions = await school_actions(s, latencies)
    await asyncio.sleep(max(0.0, down - (time.monotonic() - started)))
    stop.set()
    await watcher
    return actions


def check_backoff(samples: list[RetrySample], activities: set[str]) -> dict[str, Any]:
    """Retries happened for these activities, each wait at least the policy's 2 s, growing."""
    seen = {a.activity for a in samples}
    assert activities <= seen, (activities, seen)
    by_attempt: dict[int, float] = {}
    for sample in samples:
        assert sample.backoff >= 1.9, sample
        by_attempt[sample.attempt] = max(by_attempt.get(sample.attempt, 0), sample.backoff)
    waits = [by_attempt[a] for a in sorted(by_attempt)]
    assert waits == sorted(waits), f"backoff did not grow: {by_attempt}"
    assert max(by_attempt) >= 3, by_attempt  # failed at least twice while it was down
    return {
        "highest attempt seen while down": max(by_attempt),
        "backoff by attempt, seconds": {a: round(w, 1) for a, w in sorted(by_attempt.items())},
        "last failure as Temporal recorded it": {
            sample.activity: sample.failure[:120] for sample in samples
        },
    }


async def test_a_database_outage_delays_the_projection_and_letters_but_loses_nothing(
    procs: Processes, tmp_path: Path, figures: dict[str, Any]
) -> None:
    down = env_float("FAULTS_OUTAGE_SECONDS", 4.0)
    async with stack(procs, tmp_path) as s:
        await open_journeys(s, env_int("FAULTS_OUTAGE_JOURNEYS", 6))
        latencies: list[float] = []
        samples: list[RetrySample] = []

        await s.db_proxy.cut()  # PostgreSQL stops accepting connections (and drops them)
        cut_at = time.monotonic()
        actions = await outage_with_actions(s, down, latencies, samples)
        # nothing reached the read model or the mail server meanwhile
        states = [await temporal.state(s.client, workflow_id(p)) for p in s.pupils]
        assert all(st.projected_step < st.step for st in states)
        await s.db_proxy.restore()
        outage = time.monotonic() - cut_at

        figures |= check_backoff(samples, {"record_journey", "send_notice"})
        figures |= await caught_up_exactly_once(s, 60 + 2 * down)
    figures |= {
        "outage, seconds": round(outage, 1),
        "school actions and replies accepted during it": actions,
        "action latency during it, p50 / max, seconds": (
            f"{percentile(latencies, 50):.3f} / {max(latencies):.3f}"
        ),
    }


async def test_a_mail_outage_holds_the_letters_until_the_server_returns_then_sends_each_once(
    procs: Processes, tmp_path: Path, figures: dict[str, Any]
) -> None:
    down = env_float("FAULTS_OUTAGE_SECONDS", 4.0)
    async with stack(procs, tmp_path) as s:
        await open_journeys(s, env_int("FAULTS_OUTAGE_JOURNEYS", 6))
        before = len(s.sink.deliveries)
        latencies: list[float] = []
        samples: list[RetrySample] = []

        s.sink.stop()  # connection refused from now on
        stopped_at = time.monotonic()
        actions = await outage_with_actions(s, down, latencies, samples)
        states = [await temporal.state(s.client, workflow_id(p)) for p in s.pupils]
        assert all(st.outbox for st in states)  # letters wait in each journey, in order
        assert len(s.sink.deliveries) == before
        s.sink.start()
        outage = time.monotonic() - stopped_at

        figures |= check_backoff(samples, {"send_notice"})
        figures |= await caught_up_exactly_once(s, 60 + 2 * down)
    figures |= {
        "outage, seconds": round(outage, 1),
        "school actions and replies accepted during it": actions,
        "action latency during it, p50 / max, seconds": (
            f"{percentile(latencies, 50):.3f} / {max(latencies):.3f}"
        ),
    }
