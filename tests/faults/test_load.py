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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

import starter
from domain.commands import (
    AssessmentCompletedInput,
    CloseInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    RequestStatutoryAssessmentInput,
)
from domain.model import (
    Actor,
    CloseReason,
    EntryKind,
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

EP = Actor("ep-7", Role.SPECIALIST)


@dataclass
class Load:
    client: Client
    settings: Settings
    policy: Policy
    minute: float
    rng: random.Random
    action_latency: list[float] = field(default_factory=list)
    flood_done: list[float] = field(default_factory=list)  # when each journey's opening ended
    signal_latency: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def act(self, pupil: str, update: str, cmd: object) -> Any:
        started = time.monotonic()
        result = await starter.act(self.client, pupil, update, cmd)
        self.action_latency.append(time.monotonic() - started)
        return result

    async def reply(self, pupil: str, signal: str, cmd: object) -> None:
        started = time.monotonic()
        await starter.reply(self.client, pupil, signal, cmd)
        self.signal_latency.append(time.monotonic() - started)

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
    c = load.client
    started = time.monotonic()
    await starter.start_journey(c, load.settings, start_cmd(pupil, policy=load.policy))
    load.action_latency.append(time.monotonic() - started)
    opened = await load.act(
        pupil,
        "open_school_action",
        OpenSchoolActionInput(SENCO, [Trigger.SA_LITERACY_MATHS], "reading age behind", iep()),
    )
    first = f"consultation-{opened.step}"
    await load.reply(
        pupil,
        "parent_responded",
        ParentRespondedInput(f"{pupil}-a1", first, "parent-a", ParentReply.AGREE),
    )
    if i % 2 == 0:  # the other half of the parents never answer: the consultation lapses
        await load.reply(
            pupil,
            "parent_responded",
            ParentRespondedInput(f"{pupil}-b1", first, "parent-b", ParentReply.WANTS_MEETING),
        )
    load.flood_done.append(time.monotonic())
    await load.later(load.rng.uniform(0, 2))
    await load.act(pupil, "record_note", RecordNoteInput(TEACHER, "reads 14 of 30 words"))

    # the review falls due (everyone's within seconds of each other): wait for it
    deadline = time.monotonic() + 12 * load.minute + 60
    await load.later(1.2)
    while (await starter.show(c, pupil)).phase is not Phase.REVIEW_DUE:
        assert time.monotonic() < deadline, f"{pupil}: the review never fell due"
        await asyncio.sleep(load.minute / 2 + load.rng.uniform(0, 0.5))
    if i % 3 == 0:
        await load.act(
            pupil,
            "record_review",
            RecordReviewInput(TEACHER, ReviewOutcome.CONTINUE, progress(), "steady", iep("t2")),
        )
    else:
        await load.act(
            pupil,
            "record_review",
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
            "refer",
            ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, EP.id, "why?"),
        )
        await load.later(load.rng.uniform(0.5, 3))  # some are chased first
        await load.reply(
            pupil,
            "assessment_completed",
            AssessmentCompletedInput(f"{pupil}-ep", referred.ref, EP, "report", ["a plan"]),
        )
        if i % 2 == 0:
            await load.act(
                pupil,
                "request_statutory_assessment",
                RequestStatutoryAssessmentInput(SENCO, "needs exceed provision"),
            )
    if i % 5 == 0:
        await load.act(pupil, "close", CloseInput(SENCO, CloseReason.NEEDS_MET, "caught up"))


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
    load = Load(
        client,
        config.settings(),
        Policy.demo(timedelta(seconds=minute)),
        minute,
        random.Random(env_int("FAULTS_SEED", 7)),
    )
    pupils = [f"load-{i}" for i in range(journeys)]

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(term(load, p, i) for i, p in enumerate(pupils)), return_exceptions=True
    )
    driven = time.monotonic() - started
    figures["driving time, seconds"] = round(driven, 1)
    failures = [f"{p}: {o!r}" for p, o in zip(pupils, outcomes, strict=True) if o is not None]
    assert failures == [], failures[:5]

    async def all_drained() -> bool:
        for p in pupils:
            if not await drained(client, p):
                return False
        return True

    await until(all_drained, 120 + journeys * 0.2, "every letter and projection", every=1)
    settled = time.monotonic() - started
    figures["all letters sent and changes recorded after, seconds"] = round(settled, 1)

    lateness: list[float] = []
    for i, p in enumerate(pupils):
        state = await final_state(client, p)
        assert state.stage is expected_end(i), (p, state.stage)
        # on the short clock a plan's review falls due one interval after it was agreed
        first_plan = state.past_ieps[0]
        due = [
            e
            for e in state.timeline
            if e.kind is EntryKind.REVIEW_DUE and e.ref == first_plan.iep_id
        ]
        assert len(due) == 1, p
        review = state.reviews[0]
        planned = first_plan.agreed_at + load.policy.review_interval
        lateness.append((due[0].at - planned).total_seconds())
        assert review.held_at >= due[0].at
    checked = time.monotonic()
    facts = [await history_facts(client, f"pupil-{p}") for p in pupils]
    figures["histories read in, seconds"] = round(time.monotonic() - checked, 1)
    failed = sum(f.failed_workflow_tasks for f in facts)
    assert failed == 0, [f.failure_messages for f in facts if f.failed_workflow_tasks][:3]

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
            f"{v:.2f}" for v in (percentile(lateness, 50), percentile(lateness, 99), max(lateness))
        ),
        "all letters sent and changes recorded after, seconds": round(settled, 1),
        "history events": sum(f.events for f in facts),
        "failed workflow tasks (from histories)": failed,
        "timed-out workflow tasks": sum(f.timed_out_workflow_tasks for f in facts),
        "worker CPU seconds / peak RSS MiB": (
            f"{cpu_seconds(worker.pid):.1f} / {peak_rss_mib(worker.pid):.0f}"
        ),
        "finished at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
