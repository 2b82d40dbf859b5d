"""Load: many journeys driven concurrently through a term on the dev server with one worker
(``senflow worker``): the start-of-term flood (concerns raised, School Action opened, parents
answering), reviews falling due together, escalations, referrals, specialists' reports,
statutory assessment requests, closures. Reports throughput, action latency and timer
lateness, and counts failed workflow tasks from every history: there must be none.

Sizes: FAULTS_LOAD_JOURNEYS (30; ``make soak`` runs 1,000), FAULTS_LOAD_MINUTE (1.5 seconds
in the demo policy's "minute": a review falls due 3 minutes after the plan is agreed).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.commands import (
    ActionResult,
    AssessmentCompletedInput,
    CloseInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    PupilJourneyInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    RequestStatutoryAssessmentInput,
)
from domain.model import (
    Actor,
    CloseReason,
    EntryKind,
    JourneyState,
    ParentReply,
    Phase,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Stage,
    Trigger,
)
from domain.policy import Policy
from faultkit import (
    DevServer,
    Processes,
    WorkerConfig,
    drained,
    env_float,
    env_int,
    final_state,
    history_facts,
    percentile,
    start_worker,
    until,
)
from journeys import SENCO, TEACHER, iep, progress, start_cmd
from settings import Settings
from workflows.pupil_journey import PupilJourney, workflow_id

EP = Actor("ep-7", Role.SPECIALIST)


#: RPC failures a well-behaved client retries under load: the server or the worker was too busy
#: to answer in time. Retries are safe here because every update carries an id chosen by the
#: caller (the server keeps one outcome per id), every reply a reply id (the journey applies
#: each once) and a repeated start is refused, not doubled.
RETRYABLE = (
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,  # "h2 protocol error", "Timeout expired" from the transport
)


@dataclass
class Load:
    client: Client
    settings: Settings
    policy: Policy
    minute: float
    rng: random.Random
    #: Requests in flight at once, like the connection pool of the service in front of it.
    gate: asyncio.Semaphore
    action_latency: list[float] = field(default_factory=list)
    flood_done: list[float] = field(default_factory=list)  # when each journey's opening ended
    signal_latency: list[float] = field(default_factory=list)
    retried: Counter[str] = field(default_factory=Counter)

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(12):
            try:
                async with self.gate:
                    return await call()
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                pass
            except RPCError as err:
                # "Workflow Task in failed state": the journey's task failed (e.g. the SDK's
                # deadlock detector on a starved CPU) and is being retried; the update was not
                # admitted, so sending it again with the same id is safe. Counted, and the
                # failed task itself fails the test below.
                if err.status not in RETRYABLE and "failed state" not in err.message:
                    raise
            except WorkflowQueryFailedError as err:
                if "timeout" not in str(err).lower():
                    raise
            self.retried[what] += 1
            await asyncio.sleep(min(2**attempt, 10) * self.rng.uniform(0.5, 1.0))
        raise AssertionError(f"{what} still failing after 12 attempts")

    async def start(self, pupil: str) -> None:
        started = time.monotonic()
        first = True

        async def call() -> None:
            nonlocal first
            try:
                await self.client.start_workflow(
                    PupilJourney.run,
                    PupilJourneyInput(start=start_cmd(pupil, policy=self.policy)),
                    id=workflow_id(pupil),
                    task_queue=self.settings.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                )
            except WorkflowAlreadyStartedError:
                if first:
                    raise
            finally:
                first = False  # a retry of a start whose answer was lost finds it started

        await self._call("start", call)
        self.action_latency.append(time.monotonic() - started)

    async def act(self, pupil: str, update: Any, cmd: object) -> ActionResult:
        """``update`` is the journey's handler, e.g. ``PupilJourney.record_note``."""
        started = time.monotonic()
        handle = self.client.get_workflow_handle(workflow_id(pupil))
        name = update.__name__
        update_id = f"{name}-{uuid.uuid4().hex[:12]}"  # the same id on every retry
        result: ActionResult = await self._call(
            name,
            lambda: handle.execute_update(update, cmd, result_type=ActionResult, id=update_id),
        )
        self.action_latency.append(time.monotonic() - started)
        return result

    async def reply(self, pupil: str, signal: Any, cmd: object) -> None:
        """``signal`` is the journey's handler, e.g. ``PupilJourney.parent_responded``."""
        started = time.monotonic()
        handle = self.client.get_workflow_handle(workflow_id(pupil))
        await self._call(signal.__name__, lambda: handle.signal(signal, cmd))
        self.signal_latency.append(time.monotonic() - started)

    async def phase(self, pupil: str) -> Phase:
        handle = self.client.get_workflow_handle(workflow_id(pupil))
        state: JourneyState = await self._call("query", lambda: handle.query(PupilJourney.state))
        return state.phase

    async def later(self, minutes: float) -> None:
        await asyncio.sleep(minutes * self.minute)


def expected_end(i: int) -> Stage:
    if i % 5 == 0:
        return Stage.CLOSED
    if i % 3 == 0:
        return Stage.SCHOOL_ACTION
    return Stage.STATUTORY_ASSESSMENT if i % 2 == 0 else Stage.SCHOOL_ACTION_PLUS


async def term(load: Load, pupil: str, i: int) -> None:
    """One pupil's term. Every school action must be accepted."""
    await load.start(pupil)
    opened = await load.act(
        pupil,
        PupilJourney.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_LITERACY_MATHS], "reading age behind", iep()),
    )
    review_due = time.monotonic() + 3 * load.minute  # the plan's review: 3 "minutes" on
    first = f"consultation-{opened.step}"
    await load.reply(
        pupil,
        PupilJourney.parent_responded,
        ParentRespondedInput(f"{pupil}-a1", first, "parent-a", ParentReply.AGREE),
    )
    if i % 2 == 0:  # the other half of the parents never answer: the consultation lapses
        await load.reply(
            pupil,
            PupilJourney.parent_responded,
            ParentRespondedInput(f"{pupil}-b1", first, "parent-b", ParentReply.WANTS_MEETING),
        )
    load.flood_done.append(time.monotonic())
    await load.later(load.rng.uniform(0, 2))
    await load.act(
        pupil, PupilJourney.record_note, RecordNoteInput(TEACHER, "reads 14 of 30 words")
    )

    # everyone's review falls due within the same few seconds: wait for it (no polling storm:
    # sleep until it is due, then ask)
    await asyncio.sleep(max(0.0, review_due - time.monotonic()) + load.rng.uniform(0, 0.3))
    deadline = time.monotonic() + 12 * load.minute + 120
    while await load.phase(pupil) is not Phase.REVIEW_DUE:
        assert time.monotonic() < deadline, f"{pupil}: the review never fell due"
        await asyncio.sleep(load.minute / 4 + load.rng.uniform(0, 1))
    if i % 3 == 0:
        await load.act(
            pupil,
            PupilJourney.record_review,
            RecordReviewInput(TEACHER, ReviewOutcome.CONTINUE, progress(), "steady", iep("t2")),
        )
    else:
        await load.act(
            pupil,
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
        referred = await load.act(
            pupil,
            PupilJourney.refer,
            ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, EP.id, "why?"),
        )
        await load.later(load.rng.uniform(0.5, 3))  # some are chased first
        await load.reply(
            pupil,
            PupilJourney.assessment_completed,
            AssessmentCompletedInput(f"{pupil}-ep", referred.ref or "", EP, "report", ["plan"]),
        )
        if i % 2 == 0:
            await load.act(
                pupil,
                PupilJourney.request_statutory_assessment,
                RequestStatutoryAssessmentInput(SENCO, "needs exceed provision"),
            )
    if i % 5 == 0:
        await load.act(
            pupil, PupilJourney.close, CloseInput(SENCO, CloseReason.NEEDS_MET, "caught up")
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc), for the figures."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def test_a_term_of_journeys_on_one_worker_fails_no_workflow_task(
    procs: Processes, tmp_path: Path, figures: dict[str, Any]
) -> None:
    journeys = env_int("FAULTS_LOAD_JOURNEYS", 30)
    minute = env_float("FAULTS_LOAD_MINUTE", 1.5)
    server = DevServer(procs, tmp_path / "temporal.db")
    await server.start()
    config = WorkerConfig(
        server.address,
        f"tq-{uuid.uuid4().hex[:8]}",
        f"sqlite:///{tmp_path}/records.db",
        tmp_path / "outbox",
    )
    worker = await start_worker(procs, config)
    client = await server.client()
    concurrency = env_int("FAULTS_LOAD_CONCURRENCY", 64)
    load = Load(
        client,
        config.settings(),
        Policy.demo(timedelta(seconds=minute)),
        minute,
        random.Random(env_int("FAULTS_SEED", 7)),
        asyncio.Semaphore(concurrency),
    )
    pupils = [f"load-{i}" for i in range(journeys)]

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(term(load, p, i) for i, p in enumerate(pupils)), return_exceptions=True
    )
    driven = time.monotonic() - started
    figures["driving time, seconds"] = round(driven, 1)
    # Problems are collected and reported in a few lines at the end, after the figures: with a
    # thousand journeys, pytest's rendering of a failed assert can itself break.
    problems = [f"{p}: {o!r:.300}" for p, o in zip(pupils, outcomes, strict=True) if o is not None]
    ran = [p for p, o in zip(pupils, outcomes, strict=True) if o is None]

    async def all_drained() -> bool:
        for p in ran:
            if not await drained(client, p):
                return False
        return True

    await until(all_drained, 120 + journeys * 0.2, "every letter and projection", every=1)
    settled = time.monotonic() - started
    figures["all letters sent and changes recorded after, seconds"] = round(settled, 1)

    lateness: list[float] = []
    for i, p in enumerate(pupils):
        if p not in ran:
            continue
        state = await final_state(client, p)
        if state.stage is not expected_end(i):
            problems.append(f"{p} ended at {state.stage.value}, not {expected_end(i).value}")
            continue
        # on the short clock a plan's review falls due one interval after it was agreed
        first_plan = state.past_ieps[0]
        due = [
            e
            for e in state.timeline
            if e.kind is EntryKind.REVIEW_DUE and e.ref == first_plan.iep_id
        ]
        if len(due) != 1 or state.reviews[0].held_at < due[0].at:
            problems.append(f"{p}: its first review fell due {len(due)} times")
            continue
        planned = first_plan.agreed_at + load.policy.review_interval
        lateness.append((due[0].at - planned).total_seconds())
    checked = time.monotonic()
    facts = [await history_facts(client, f"pupil-{p}") for p in pupils]
    figures["histories read in, seconds"] = round(time.monotonic() - checked, 1)
    failed = sum(f.failed_workflow_tasks for f in facts)
    for f in facts:
        if f.failed_workflow_tasks:
            problems.append(f"{f.workflow_id}: failed workflow task: {f.failure_messages[0]:.160}")

    actions = len(load.action_latency)
    flood = max(load.flood_done) - started  # every concern raised, plan made, parents heard
    flood_ops = 2 * journeys + journeys + (journeys + 1) // 2
    figures |= {
        "start-of-term flood: starts, plans and replies": flood_ops,
        "start-of-term flood: seconds, per second": f"{flood:.1f}, {flood_ops / flood:.1f}",
        "journeys": journeys,
        "policy minute, seconds (review due 3 minutes after the plan)": minute,
        "school actions (starts + updates)": actions,
        "replies (signals)": len(load.signal_latency),
        "driving time, seconds": round(driven, 1),
        "whole term, actions + replies per second (paced by the timers)": round(
            (actions + len(load.signal_latency)) / driven, 1
        ),
        "action latency p50 / p99 / max, ms": " / ".join(
            f"{1000 * v:.0f}"
            for v in (
                percentile(load.action_latency, 50),
                percentile(load.action_latency, 99),
                max(load.action_latency),
            )
        ),
        "reply latency p99, ms": round(1000 * percentile(load.signal_latency, 99)),
        "review timers: fired late by p50 / p99 / max, seconds": " / ".join(
            f"{v:.2f}"
            for v in (percentile(lateness, 50), percentile(lateness, 99), max(lateness or [0]))
        ),
        "all letters sent and changes recorded after, seconds": round(settled, 1),
        "history events": sum(f.events for f in facts),
        "failed workflow tasks (from histories)": failed,
        "timed-out workflow tasks": sum(f.timed_out_workflow_tasks for f in facts),
        "worker CPU seconds / peak RSS MiB": (
            f"{cpu_seconds(worker.pid):.1f} / {peak_rss_mib(worker.pid):.0f}"
        ),
        "requests in flight at most (FAULTS_LOAD_CONCURRENCY)": concurrency,
        "requests retried after a timeout, by kind": dict(load.retried),
        "finished at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if problems:
        pytest.fail(f"{len(problems)} problem(s):\n" + "\n".join(problems[:10]), pytrace=False)
