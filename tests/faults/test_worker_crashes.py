"""Worker crashes: ``senflow worker`` is SIGKILLed again and again while a scripted set of
journeys is driven, and a new worker started each time. Each journey must end exactly as the
same script ends without faults, every letter must reach the mail server, and none twice
unless no ledger could have known.

Where the kills land (chosen in turn, then at random times):

- ``mid-letter``: while the mail server is receiving a letter (it then answers 451);
- ``after-ledger``: after the mail server accepted a letter *and* the delivery ledger recorded
  it, but before Temporal heard the activity finish (the worker's link to Temporal is frozen
  from the moment the letter arrives, so its reply cannot escape) — the retry must find the
  ledger and send nothing;
- ``random``: whenever the dice say (mid-activity, mid-workflow-task, between tasks).

A kill between a school action's acceptance and completion — the worker has the update's
workflow task and has run the handler, but its answer never reaches Temporal — is the last
test here: the action is applied once, but the history written by the next worker does not
replay (an SDK defect, found by this tier; strict xfail until fixed). The other kills can
land there too (a random one, or one while the link is frozen): a journey wedged that way is
checked apart, every other journey must still prove everything, and the test then reports
the known defect as an xfail rather than a pass.

Sizes: FAULTS_CRASH_JOURNEYS (16), FAULTS_KILLS (20), FAULTS_STAGGER (1.5 s between
journeys' starts), FAULTS_SEED; ``make soak`` raises them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError
from temporalio.worker import Replayer

from domain.commands import (
    ActionResult,
    AssessmentCompletedInput,
    CloseInput,
    EscalateInput,
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
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Trigger,
)
from faultkit import (
    Delivery,
    DevServer,
    MailSink,
    Proc,
    Processes,
    TcpProxy,
    WorkerConfig,
    drained,
    env_float,
    env_int,
    expected_message_ids,
    final_state,
    history_facts,
    install_ledger_audit,
    ledger_first_written,
    ledger_has,
    normalised,
    prepare_records,
    start_worker,
    until,
)
from journeys import SENCO, TEACHER, iep, progress, start_cmd
from records.db import make_engine, sessions
from records.sync import read_journeys, verify
from service import temporal
from settings import Settings
from worker import workflow_runner
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney, workflow_id

EP = Actor("ep-7", Role.SPECIALIST)
#: Where the kills land, in turn. Kills while the worker holds a school action's workflow task
#: have a test of their own (the last one here): they can write a history that does not
#: replay, an SDK defect.
MODES = ("mid-letter", "after-ledger", "random")


@dataclass
class Kill:
    number: int
    mode: str
    worker_pid: int
    at: float
    updates_in_flight: int
    detail: str = ""


class Chaos:
    """Kills the worker at the moments ``MODES`` name and starts a new one each time."""

    def __init__(
        self,
        procs: Processes,
        config: WorkerConfig,
        link: TcpProxy,
        sink: MailSink,
        records_file: Path,
        rng: random.Random,
    ) -> None:
        self.procs, self.config, self.link, self.sink = procs, config, link, sink
        self.records_file = records_file
        self.rng = rng
        self.worker: Proc | None = None
        self.kills: list[Kill] = []
        self.updates_in_flight = 0
        self._armed: str | None = None
        self._lock = threading.Lock()

    # -- called by the mail server (in its own thread) ---------------------------------------

    def on_letter(self, delivery: Delivery) -> str | None:
        if not delivery.journey.startswith("pupil-crash-"):
            return None
        with self._lock:
            mode = self._armed
            if mode not in ("mid-letter", "after-ledger"):
                return None
            self._armed = None
            worker = self.worker
        assert worker is not None
        if mode == "mid-letter":
            self._kill(worker, mode, delivery.message_id)
            return "451 4.3.0 try again later"  # not accepted: it must come again, once
        self.link.frozen = True  # before the 250: the activity's completion cannot escape
        threading.Thread(
            target=self._kill_once_ledgered, args=(worker, delivery.message_id), daemon=True
        ).start()
        return None

    def _kill_once_ledgered(self, worker: Proc, mid: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ledger_has(self.records_file, mid):
                self._kill(worker, "after-ledger", mid)
                return
            time.sleep(0.002)
        self._kill(worker, "after-ledger", f"{mid} (no ledger row within 10s)")

    def _kill(self, worker: Proc, mode: str, detail: str) -> None:
        if worker.popen.poll() is not None:
            return
        os.kill(worker.pid, signal.SIGKILL)
        with self._lock:
            self.kills.append(
                Kill(
                    len(self.kills) + 1,
                    mode,
                    worker.pid,
                    time.time(),
                    self.updates_in_flight,
                    detail,
                )
            )

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, kills_wanted: int) -> None:
        modes = itertools.cycle(MODES)
        self.sink.hook = self.on_letter
        try:
            while len(self.kills) < kills_wanted:
                self.worker = await start_worker(self.procs, self.config)
                mode = next(modes)
                if mode == "random":
                    await asyncio.sleep(self.rng.uniform(0.1, 0.8))
                    self._kill(self.worker, "random", "")
                else:
                    with self._lock:
                        self._armed = mode
                    waited = time.monotonic()
                    while self.worker.alive() and time.monotonic() - waited < 2:
                        await asyncio.sleep(0.01)
                    with self._lock:
                        fell_through = self._armed == mode
                        self._armed = None
                    if fell_through:  # no letter came along: kill now instead
                        self._kill(self.worker, "random", f"(no {mode} moment within 2s)")
                await until(self._dead, 15, "the killed worker to die", every=0.005)
                self.link.reset()  # with whatever bytes it was holding back
                self.link.frozen = False
        finally:
            self.sink.hook = None
            self.link.frozen = False
        self.worker = await start_worker(self.procs, self.config)  # the survivor

    async def _dead(self) -> bool:
        assert self.worker is not None
        return not self.worker.alive()


@dataclass
class Driver:
    """Drives one pupil's script through the client and records what each step returned."""

    client: Client
    settings: Settings
    pupil: str
    chaos: Chaos | None
    rng: random.Random
    outcomes: list[tuple[Any, ...]] = field(default_factory=list)
    update_retries: int = 0
    not_ready: int = 0  # actions refused with "Workflow Task in failed state", then retried
    error: BaseException | None = None  # how the script stopped, if it did not finish

    @property
    def journey(self) -> str:
        return workflow_id(self.pupil)

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.2))

    async def start(self) -> None:
        try:
            await temporal.start(self.client, self.settings, start_cmd(self.pupil), self.journey)
        except RPCError:
            # Started; only the state query that follows found no live worker (one was just
            # killed). The journey must exist all the same.
            await self.client.get_workflow_handle(self.journey).describe()
        self.outcomes.append(("started",))

    async def act(self, update: Any, cmd: object) -> ActionResult | None:
        """An update (``PupilJourney.<update>``) with an id chosen here, so a retry after a
        timeout is the same update (the server keeps one outcome per id) and never a second
        decision."""
        await self.pause()
        name = update.__name__
        update_id = f"{name}-{uuid.uuid4().hex[:12]}"
        handle = self.client.get_workflow_handle(self.journey)
        if self.chaos is not None:
            self.chaos.updates_in_flight += 1
        try:
            while True:
                try:
                    result: ActionResult = await handle.execute_update(
                        update, cmd, result_type=ActionResult, id=update_id
                    )
                    break
                except WorkflowUpdateRPCTimeoutOrCancelledError:
                    self.update_retries += 1
                except RPCError as err:
                    # "Workflow Task in failed state": the journey's task died with a worker
                    # and is being retried; the update was not admitted. Try again shortly —
                    # unless the journey is wedged by the known defect (it would never pass).
                    if "failed state" not in err.message:
                        raise
                    if await wedged_by_the_known_defect(self.client, self.pupil):
                        raise
                    self.not_ready += 1
                    await asyncio.sleep(1)
        except WorkflowUpdateFailedError as err:
            self.outcomes.append((name, "refused", temporal.cause_message(err)))
            return None
        finally:
            if self.chaos is not None:
                self.chaos.updates_in_flight -= 1
        self.outcomes.append(
            (name, "done", result.step, result.stage.value, result.phase, result.ref)
        )
        return result

    async def reply(self, signal: Any, cmd: object) -> None:
        """A reply (``PupilJourney.<signal>``)."""
        await self.pause()
        await temporal.signal(self.client, self.journey, signal, cmd)
        self.outcomes.append((signal.__name__, "sent"))


async def script(d: Driver, i: int) -> None:
    """A school year for pupil ``i``: concern, School Action, parents' replies (one delivered
    twice, one late), a review, then either a new plan or Action Plus with a referral, the
    specialist's report and a statutory assessment request; some close."""
    p = d.pupil
    await d.start()
    await d.act(PupilJourney.record_note, RecordNoteInput(TEACHER, "reads 12 of 30 words"))
    await d.act(  # refused: no School Action review yet
        PupilJourney.escalate,
        EscalateInput(SENCO, [Trigger.AP_PROGRESS_LONG], "no progress", iep()),
    )
    opened = await d.act(
        PupilJourney.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_LITERACY_MATHS], "reading age 18m behind", iep()),
    )
    assert opened is not None, d.outcomes
    first = f"consultation-{opened.step}"
    agree = ParentRespondedInput(f"{p}-r1", first, "parent-a", ParentReply.AGREE)
    await d.reply(PupilJourney.parent_responded, agree)
    await d.reply(PupilJourney.parent_responded, agree)  # the same reply delivered twice
    other = ParentReply.DISAGREE if i % 2 else ParentReply.WANTS_MEETING
    await d.reply(
        PupilJourney.parent_responded,
        ParentRespondedInput(f"{p}-r2", first, "parent-b", other, "we would like to talk"),
    )
    if i % 4 == 0:
        await d.act(
            PupilJourney.record_review,
            RecordReviewInput(TEACHER, ReviewOutcome.CONTINUE, progress(), "steady", iep("t2")),
        )
        await d.act(PupilJourney.record_note, RecordNoteInput(SENCO, "new plan started"))
    else:
        await d.act(
            PupilJourney.record_review,
            RecordReviewInput(
                SENCO,
                ReviewOutcome.ESCALATE,
                progress("little"),
                "little progress despite the IEP",
                iep("plus"),
                [Trigger.AP_LITERACY_MATHS],
            ),
        )
        referred = await d.act(
            PupilJourney.refer,
            ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, EP.id, "why so slow?"),
        )
        assert referred is not None and referred.ref is not None, d.outcomes
        await d.reply(
            PupilJourney.assessment_completed,
            AssessmentCompletedInput(
                f"{p}-ep", referred.ref, EP, "phonological difficulty", ["structured literacy"]
            ),
        )
        await d.act(
            PupilJourney.request_statutory_assessment,
            RequestStatutoryAssessmentInput(SENCO, "needs exceed school provision"),
        )
    # a late reply to a consultation already answered: recorded as rejected
    await d.reply(
        PupilJourney.parent_responded,
        ParentRespondedInput(f"{p}-r3", first, "parent-a", ParentReply.DISAGREE),
    )
    if i % 3 == 0:
        await d.act(PupilJourney.close, CloseInput(SENCO, CloseReason.MOVED_SCHOOL, "family moved"))


async def drive_all(
    client: Client,
    settings: Settings,
    pupils: list[str],
    chaos: Chaos | None,
    seed: int,
    stagger: float = 0.0,
) -> list[Driver]:
    """Every pupil's script at once; with ``stagger``, pupil i starts i*stagger seconds in, so
    fresh work keeps arriving while the kills go on."""
    drivers = [
        Driver(client, settings, pupil, chaos, random.Random(seed + i))
        for i, pupil in enumerate(pupils)
    ]

    async def one(i: int, d: Driver) -> None:
        await asyncio.sleep(i * stagger)
        try:
            await script(d, i)
        except Exception as err:  # judged by the caller: only a wedged journey may stop
            d.error = err

    await asyncio.gather(*(one(i, d) for i, d in enumerate(drivers)))
    return drivers


async def settle(client: Client, pupils: list[str], timeout: float) -> None:
    for pupil in pupils:

        async def done(pupil: str = pupil) -> bool:
            return await drained(client, pupil)

        await until(done, timeout, f"{pupil} to deliver and record everything", every=0.25)


async def wedged_by_the_known_defect(client: Client, pupil: str) -> bool:
    """A journey whose workflow tasks fail replay (TMPRL1100) after a kill landed while the
    worker held one of its school actions: the SDK defect the last test here pins down."""
    facts = await history_facts(client, f"pupil-{pupil}")
    return any("TMPRL1100" in m for m in facts.failure_messages)


async def settle_unless_wedged(client: Client, pupils: list[str], timeout: float) -> set[str]:
    """Wait for each journey to deliver and record everything; return those that cannot,
    because the known defect wedged them (anything else still times out and fails)."""
    wedged: set[str] = set()
    for pupil in pupils:

        async def done(pupil: str = pupil) -> bool:
            if await drained(client, pupil):
                return True
            if await wedged_by_the_known_defect(client, pupil):
                wedged.add(pupil)
                return True
            return False

        await until(done, timeout, f"{pupil} to deliver and record everything", every=0.5)
    return wedged


async def with_deadline(what: str, seconds: float, work: Awaitable[Any]) -> Any:
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        raise AssertionError(f"{what} took longer than {seconds:.0f}s") from None


async def test_journeys_survive_repeated_worker_kills_with_nothing_lost_or_doubled(
    procs: Processes, tmp_path: Path, figures: dict[str, Any]
) -> None:
    journeys = env_int("FAULTS_CRASH_JOURNEYS", 16)
    kills_wanted = env_int("FAULTS_KILLS", 20)
    stagger = env_float("FAULTS_STAGGER", 1.5)
    seed = env_int("FAULTS_SEED", random.randrange(1_000_000))
    rng = random.Random(seed)
    figures["seed (FAULTS_SEED to repeat)"] = seed

    server = DevServer(procs, tmp_path / "temporal.db")
    await server.start()
    client = await server.client()
    sink = MailSink()
    sink.start()
    records_file = tmp_path / "records.db"
    url = f"sqlite:///{records_file}"
    prepare_records(url)
    install_ledger_audit(records_file)
    link = TcpProxy(server.port)  # the crashing workers reach Temporal only through this
    await link.start()
    run = Run(client, sink, records_file, url)
    try:
        # 1. the script without faults, on its own task queue and worker, alongside ...
        base_config = WorkerConfig(
            server.address, f"base-{uuid.uuid4().hex[:8]}", url, tmp_path / "outbox", sink.port
        )
        await start_worker(procs, base_config)
        run.base = [f"base-{i}" for i in range(journeys)]
        started = time.monotonic()
        fault_free = asyncio.create_task(
            drive_all(client, base_config.settings(), run.base, None, seed)
        )

        # 2. ... the same script while the other worker is killed again and again
        config = WorkerConfig(
            link.address, f"crash-{uuid.uuid4().hex[:8]}", url, tmp_path / "outbox", sink.port
        )
        run.chaos = Chaos(procs, config, link, sink, records_file, rng)
        run.crashed = [f"crash-{i}" for i in range(journeys)]
        driving = asyncio.create_task(
            drive_all(client, config.settings(), run.crashed, run.chaos, seed, stagger)
        )
        await with_deadline("the kills", 60 + 6 * kills_wanted, run.chaos.run(kills_wanted))
        figures["kills done after, seconds"] = round(time.monotonic() - started, 1)
        figures["kills"] = [f"{k.mode} {k.detail}".strip() for k in run.chaos.kills]
        run.baseline = await with_deadline("the fault-free run", 120, fault_free)
        await settle(client, run.base, 60)
        run.drivers = await with_deadline("the scripts after the last kill", 180, driving)
        figures["scripts done after, seconds"] = round(time.monotonic() - started, 1)
        run.wedged = await settle_unless_wedged(client, run.crashed, 150)
        for d in run.drivers:
            if d.error is not None and d.pupil not in run.wedged:
                raise d.error
        figures["run with kills, seconds"] = round(time.monotonic() - started, 1)
        figures |= await run.check(kills_wanted)
        figures["workers started"] = sum(1 for p in procs.started if p.name == "worker")
    finally:
        sink.hook = None
        await link.close()
        sink.stop()
    if run.wedged:
        # Everything else above was checked on the other journeys and held.
        pytest.xfail(
            f"{len(run.wedged)} journey(s) wedged by the known SDK defect (a kill while the "
            f"worker held a school action): {sorted(run.wedged)}"
        )


@dataclass
class Run:
    """One run of the scripts with and without kills, and what it must prove."""

    client: Client
    sink: MailSink
    records_file: Path
    url: str
    base: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)
    baseline: list[Driver] = field(default_factory=list)
    drivers: list[Driver] = field(default_factory=list)
    chaos: Chaos | None = None
    wedged: set[str] = field(default_factory=set)  # by the known defect: checked apart

    @property
    def wedged_ids(self) -> set[str]:
        return {f"pupil-{p}" for p in self.wedged}

    async def check(self, kills_wanted: int) -> dict[str, Any]:
        client, chaos = self.client, self.chaos
        assert chaos is not None
        # every journey ends as the fault-free run of its script ends
        actions = 0
        for i, (b, c) in enumerate(zip(self.baseline, self.drivers, strict=True)):
            if c.pupil in self.wedged:
                continue
            assert c.outcomes == b.outcomes, f"journey {i}: what the school was told differs"
            b_state = await final_state(client, b.pupil)
            c_state = await final_state(client, c.pupil)
            assert normalised(c_state.timeline, c.pupil) == normalised(b_state.timeline, b.pupil), (
                f"journey {i}: the timeline differs from the fault-free run"
            )
            assert (c_state.stage, c_state.phase) == (b_state.stage, b_state.phase)
            actions += len(c.outcomes)

        # histories: no workflow task failed, each update accepted once, each letter asked once
        pairs = [(b, c) for b, c in zip(self.base, self.crashed, strict=True)]
        healthy = [(b, c) for b, c in pairs if c not in self.wedged]
        base_facts = [await history_facts(client, f"pupil-{b}") for b, _ in healthy]
        crash_facts = [await history_facts(client, f"pupil-{c}") for _, c in healthy]
        for pupil in self.wedged:  # they failed replay, and only that way
            facts = await history_facts(client, f"pupil-{pupil}")
            assert all("TMPRL1100" in m for m in facts.failure_messages), facts.failure_messages
        for facts in [*base_facts, *crash_facts]:
            assert facts.failed_workflow_tasks == 0, (facts.workflow_id, facts.failure_messages)
            assert set(facts.updates_accepted.values()) <= {1}, facts.updates_accepted
            keys = Counter(n.notice.key for n in facts.notices)
            assert set(keys.values()) == {1}, f"{facts.workflow_id} queued a letter twice"
        for b_f, c_f in zip(base_facts, crash_facts, strict=True):
            assert sorted(n.notice.key for n in c_f.notices) == sorted(
                n.notice.key for n in b_f.notices
            )

        # the mail server: every letter arrived; a second copy only where no ledger could know
        expected = {mid for f in crash_facts for mid in expected_message_ids(f)}
        arrived = self.sink.by_message_id()
        counted = {f"pupil-{c}" for _, c in healthy}
        crashed = {mid for mid, ds in arrived.items() if ds[0].journey in counted}
        assert crashed == expected, (
            f"lost: {sorted(expected - crashed)}; unexpected: {sorted(crashed - expected)}"
        )
        first_ledgered = ledger_first_written(self.records_file)
        duplicates = {
            mid: ds for mid, ds in arrived.items() if len(ds) > 1 and ds[0].journey in counted
        }
        for mid, copies in duplicates.items():
            # Legitimate only if the ledger was first written *after* the second copy arrived:
            # the worker died between the server's 250 and its ledger write (decision 29).
            assert mid in first_ledgered, f"{mid} arrived but the ledger never recorded it"
            assert first_ledgered[mid] > copies[1].at, (
                f"{mid} was sent again although the ledger had recorded it "
                f"{copies[1].at - first_ledgered[mid]:.3f}s before the second copy"
            )
        saved_by_ledger = sum(
            1 for f in crash_facts for r in f.notice_results if r.rewritten and not r.path
        )

        # the read model agrees with Temporal, whatever the kills interrupted
        engine = make_engine(self.url)
        try:
            with sessions(engine)() as session:
                where = " AND ".join(f"WorkflowId != 'pupil-{p}'" for p in self.wedged) or None
                diffs = verify(session, await read_journeys(client, where=where))
                assert [d for d in diffs if d.workflow_id not in self.wedged_ids] == []
        finally:
            engine.dispose()

        by_mode = Counter(k.mode for k in chaos.kills)
        ledgered = [
            k for k in chaos.kills if k.mode == "after-ledger" and "no ledger" not in k.detail
        ]
        assert len(chaos.kills) >= kills_wanted
        assert ledgered and by_mode["mid-letter"] and by_mode["random"], by_mode
        assert saved_by_ledger >= len(ledgered)  # each such retry found the ledger: no resend
        return {
            "journeys": len(self.crashed),
            "journeys wedged by the known SDK defect (checked apart)": len(self.wedged),
            "worker kills (SIGKILL)": len(chaos.kills),
            "kills by moment": dict(by_mode),
            "kills after the ledger write, before Temporal heard": len(ledgered),
            "kills with a school action in flight": sum(
                k.updates_in_flight > 0 for k in chaos.kills
            ),
            "actions and replies checked against the fault-free run": actions,
            "letters expected = letters arrived (distinct Message-IDs)": len(expected),
            "second copies (worker died between SMTP 250 and ledger write)": len(duplicates),
            "retries that found the ledger and sent nothing": saved_by_ledger,
            "workflow tasks timed out (a killed worker held them)": sum(
                f.timed_out_workflow_tasks for f in crash_facts
            ),
            "activity attempts retried": sum(f.activity_retries for f in crash_facts),
            "failed workflow tasks": sum(f.failed_workflow_tasks for f in crash_facts),
            "client update retries (same update id)": sum(d.update_retries for d in self.drivers),
            "actions refused 'Workflow Task in failed state' after a kill, then retried": sum(
                d.not_ready for d in self.drivers
            ),
        }


class ReplayDiverged(AssertionError):
    """A history the workers wrote does not replay on the same code."""


@pytest.mark.xfail(
    strict=True,
    raises=ReplayDiverged,
    reason="SDK defect (temporalio 1.35.0): when a worker dies holding a school action's "
    "workflow task, the next worker applies it in an activation grouped differently from "
    "replay, so the history it writes fails replay with TMPRL1100 and the journey's tasks "
    "fail from the next cold start on; see docs/reliability.md",
)
async def test_a_school_action_lost_with_its_worker_leaves_a_replayable_history(
    procs: Processes, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """Kill the worker between accepting and completing a school action: it has the update's
    workflow task and has run the handler, but its answer is held back (the link frozen) and
    dies with it. The next worker must apply each action once — and write a history that
    replays. It does not when the journey's last two workflow tasks before the lost one
    issued no command (a letter and a projection ending separately), which the slow mail
    server arranges for every journey here."""
    journeys = env_int("FAULTS_MID_UPDATE_JOURNEYS", 3)
    server = DevServer(procs, tmp_path / "temporal.db")
    await server.start()
    client = await server.client()
    link = TcpProxy(server.port)
    await link.start()
    sink = MailSink()
    sink.delay = 0.5
    sink.start()
    url = f"sqlite:///{tmp_path}/records.db"
    prepare_records(url)
    config = WorkerConfig(
        link.address, f"tq-{uuid.uuid4().hex[:8]}", url, tmp_path / "outbox", sink.port
    )
    pupils = [f"held-{i}" for i in range(journeys)]
    try:
        worker = await start_worker(procs, config)

        async def set_up(pupil: str) -> None:
            # A shorter workflow task timeout than the 10 s default only shortens the wait for
            # the lost task to be given to the next worker; the path is the same.
            await client.start_workflow(
                PupilJourney.run,
                PupilJourneyInput(start=start_cmd(pupil)),
                id=workflow_id(pupil),
                task_queue=config.task_queue,
                task_timeout=timedelta(seconds=2),
            )
            opened = await temporal.execute(
                client,
                workflow_id(pupil),
                PupilJourney.open_school_action,
                OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
            )
            consultation = f"consultation-{opened.step}"
            agree = ParentRespondedInput(f"{pupil}-a", consultation, "parent-a", ParentReply.AGREE)
            await temporal.signal(client, workflow_id(pupil), PupilJourney.parent_responded, agree)
            await settle(client, [pupil], 30)
            # The last change before the lost action: one letter (to the SENCO) and one
            # projection at once; the slow mail server makes them end in two workflow tasks
            # that issue no command. That is the shape after which the next worker diverges.
            disagree = ParentRespondedInput(
                f"{pupil}-b", consultation, "parent-b", ParentReply.DISAGREE
            )
            await temporal.signal(
                client, workflow_id(pupil), PupilJourney.parent_responded, disagree
            )
            await settle(client, [pupil], 30)

        await asyncio.gather(*(set_up(p) for p in pupils))

        link.frozen = True  # whatever the worker answers from now on stays here
        review = RecordReviewInput(TEACHER, ReviewOutcome.CONTINUE, progress(), "ok", iep("t2"))
        actions = [
            asyncio.create_task(
                temporal.execute(client, workflow_id(p), PupilJourney.record_review, review)
            )
            for p in pupils
        ]
        await asyncio.sleep(0.5)  # the worker has the tasks and has run the handlers
        worker.kill()
        link.reset()
        link.frozen = False
        await start_worker(procs, config)
        results = await with_deadline("the held actions", 60, asyncio.gather(*actions))
        await settle(client, pupils, 60)

        replayer = Replayer(
            workflows=[PupilJourney],
            data_converter=DATA_CONVERTER,
            workflow_runner=workflow_runner(),
        )
        diverged = []
        for pupil, result in zip(pupils, results, strict=True):
            # applied once, as the school was told
            state = await temporal.state(client, workflow_id(pupil))
            assert [r.review_id for r in state.reviews] == [f"review-{result.step}"]
            facts = await history_facts(client, f"pupil-{pupil}")
            assert facts.timed_out_workflow_tasks >= 1  # the task really was lost with a worker
            assert set(facts.updates_accepted.values()) == {1}
            history = await client.get_workflow_handle(workflow_id(pupil)).fetch_history()
            replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if replayed.replay_failure is not None:
                diverged.append(f"{pupil}: {str(replayed.replay_failure)[:200]}")
        figures["journeys whose history does not replay"] = f"{len(diverged)} of {journeys}"
        if diverged:
            raise ReplayDiverged("\n".join(diverged))
    finally:
        await link.close()
        sink.stop()
