"""The scenarios: each side on a fresh dev server and a fresh worker process.

A phase = one dev server (its own SQLite file) + one worker process (senflow or bare) + a
client in this process. Both sides of a comparison get identical phases, one after the other,
so neither inherits the other's database or cache.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

from bench import pattern, profile
from bench.drivers import BareDriver, Driver, SenflowDriver, StormCheck, Timings
from bench.procs import DevServer, WorkerProcess, cpu_seconds, rss_kib
from bench.stats import latency, percentile, rate
from workflows.converter import DATA_CONVERTER


@dataclass
class Options:
    journeys: int = 100  # N
    concurrency: int = 20  # C
    updates: int = 5  # K
    queries: int = 3  # Q
    storm: int = 500  # M
    storm_window: float = 20.0  # seconds over which the M reviews fall due
    storm_setup_rate: float = 40.0  # journeys/s started (and opened) before the storm
    storm_lead: float = 10.0  # seconds between the end of the setup and the first due review
    storm_timeout: float = 300.0
    replay_rounds: int = 5
    replay_histories: int = 20
    years: int = 10
    records_journeys: int = 150
    pg_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    hold: int = 0
    baseline: str = "mirrored"  # mirrored | bare | visibility
    wal: bool = True
    #: Worker levers, as SENFLOW_* environment for both sides' worker processes.
    worker_env: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[str, ...] = ("messages", "storm", "replay", "footprint", "records")
    out_dir: Path = Path(".senflow/bench")
    profile: bool = False  # py-spy each side's worker during the messages scenario
    #: "senflow-noop-activities" to split senflow's cost (diagnosis; not the product)
    senflow_worker: str = "senflow"
    #: activities in a second worker process (both sides), workflows in the first
    activity_worker: bool = False
    progress: Callable[[str], None] = lambda _: None


@dataclass
class Phase:
    server: DevServer
    worker: WorkerProcess  # the workflows (and, unless split, the activities)
    client: Client
    driver: Driver
    activity_worker: WorkerProcess | None = None

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the server, the worker process(es) and this client."""
        assert self.server.proc is not None
        workers = [self.worker, *([self.activity_worker] if self.activity_worker else [])]
        return {
            "server": cpu_seconds(self.server.proc.pid),
            "worker": sum(cpu_seconds(w.pid) for w in workers),
            "client": time.process_time(),
        }

    @property
    def events_file(self) -> Path:
        return (self.activity_worker or self.worker).events_file

    def rss(self) -> dict[str, int]:
        """The workflow worker's RSS, plus the activity worker's (``total_kib``)."""
        rss = self.worker.rss()
        extra = self.activity_worker.rss()["rss_kib"] if self.activity_worker else 0
        return {**rss, "total_kib": rss["rss_kib"] + extra}


SIDES = ("baseline", "senflow")


@asynccontextmanager
async def phase(
    opts: Options, side: str, scenario: str, env: dict[str, str] | None = None
) -> AsyncIterator[Phase]:
    directory = opts.out_dir / f"{scenario}-{side}"
    shutil.rmtree(directory, ignore_errors=True)  # nothing from an earlier run in this folder
    server = DevServer(directory / "server", wal=opts.wal).start()
    worker: WorkerProcess | None = None
    activity_worker: WorkerProcess | None = None
    try:
        task_queue = f"bench-{scenario}-{side}"
        kind = opts.senflow_worker if side == "senflow" else "bare"
        env = {**opts.worker_env, **(env or {})}
        if opts.activity_worker:
            activity_worker = WorkerProcess(
                kind,
                server.address,
                task_queue,
                directory / "activities",
                {**env, "SENFLOW_WORKER_ROLE": "activities"},
            ).start()
            env["SENFLOW_WORKER_ROLE"] = "workflows"
        worker = WorkerProcess(kind, server.address, task_queue, directory / "worker", env).start()
        client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
        run_id = uuid.uuid4().hex[:6]
        driver: Driver
        if side == "senflow":
            driver = SenflowDriver(client, task_queue, run_id)
        else:
            notices = pattern.shape(opts.updates).notices
            driver = BareDriver(
                client,
                task_queue,
                run_id,
                notices,
                mirror=opts.baseline in ("mirrored", "visibility"),
                publish=opts.baseline == "visibility",
            )
        spy = None
        if opts.profile and scenario == "messages":
            spy = profile.start(worker.pid, opts.out_dir / f"profile-{side}.raw")
        try:
            yield Phase(server, worker, client, driver, activity_worker)
        finally:
            if spy is not None:
                profile.finish(spy)
                raw = opts.out_dir / f"profile-{side}.raw"
                if raw.exists():
                    (opts.out_dir / f"profile-{side}.txt").write_text(profile.summary(raw))
    finally:
        for process in (worker, activity_worker):
            if process is not None:
                process.stop()
        server.stop()


async def _within(call: Awaitable[None], seconds: float) -> None:
    """Like ``asyncio.wait_for``, without waiting for the cancelled call to finish: an RPC to
    a stalled worker may not notice its cancellation for minutes."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer within {seconds:g} s")
    task.result()


async def _bounded(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[int, list[str]]:
    """Run ``one(i)`` for every i with at most ``concurrency`` in flight; (done, errors)."""
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    done = 0

    async def guarded(i: int) -> None:
        nonlocal done
        async with sem:
            try:
                await one(i)
                done += 1
            except Exception as err:  # counted and reported, never hidden
                errors.append(f"{type(err).__name__}: {err}"[:300])

    await asyncio.gather(*(guarded(i) for i in range(count)))
    return done, errors


# -- messages ---------------------------------------------------------------------------------


async def messages(opts: Options, side: str) -> tuple[dict[str, Any], list[WorkflowHistory]]:
    """N journeys at concurrency C: start, K updates, Q queries, a signal, complete."""
    async with phase(opts, side, "messages") as ph:
        d = ph.driver
        await d.journey(d.pupil("w", 0), opts.updates, opts.queries, Timings())  # warm-up
        t = Timings()
        cpu0 = ph.cpu()
        t0 = time.perf_counter()
        done, errors = await _bounded(
            opts.journeys,
            opts.concurrency,
            lambda i: d.journey(d.pupil("m", i), opts.updates, opts.queries, t),
        )
        seconds = time.perf_counter() - t0
        cpu = {k: v - cpu0[k] for k, v in ph.cpu().items()}
        rss = ph.rss()
        histories = []
        for i in range(min(opts.replay_histories, opts.journeys)):
            handle = ph.client.get_workflow_handle(d.workflow_id(d.pupil("m", i)))
            histories.append(await handle.fetch_history())
    events = [len(h.events) for h in histories]
    sizes = [len(h.to_json()) for h in histories]
    result = {
        "journeys": opts.journeys,
        "completed": done,
        "failed": len(errors),
        "errors": errors[:5],
        "seconds": round(seconds, 2),
        "journeys_per_s": rate(done, seconds),
        "updates": len(t.updates),
        "updates_per_s": rate(len(t.updates), seconds),
        "update_latency": latency(t.updates, 50, 95, 99),
        "queries": len(t.queries),
        "query_latency": latency(t.queries, 50, 99),
        "history_events_per_journey": round(sum(events) / len(events), 1) if events else None,
        "history_bytes_per_journey": round(sum(sizes) / len(sizes)) if sizes else None,
        "worker_rss_kib": rss["rss_kib"],
        "worker_peak_rss_kib": rss["peak_kib"],
        "workers_rss_kib": rss["total_kib"],
        # Where the machine's two cores went: with all three busy, a journey's total CPU is
        # what bounds journeys/s (docs/performance.md).
        "cpu_ms_per_journey": {
            **{k: round(1000 * v / max(done, 1), 1) for k, v in cpu.items()},
            "total": round(1000 * sum(cpu.values()) / max(done, 1), 1),
        },
        "cores_busy": round(sum(cpu.values()) / seconds, 2) if seconds else None,
    }
    return result, histories


# -- the term-start storm ---------------------------------------------------------------------


class ActivityTail:
    """Reads the worker's activities.jsonl as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.rows: list[list[Any]] = []

    def read(self) -> list[list[Any]]:
        if not self.path.exists():
            return []
        with self.path.open() as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete.encode())
        new = [json.loads(line) for line in complete.splitlines() if line]
        self.rows += new
        return new


async def storm(opts: Options, side: str) -> dict[str, Any]:
    """M journeys whose reviews fall due within ``storm_window`` seconds: how long until every
    one has reached review_due and its reminder has run, and how late the timers fired."""
    m = opts.storm
    async with phase(opts, side, "storm") as ph:
        d = ph.driver
        tail = ActivityTail(ph.events_file)
        rss_idle = ph.worker.rss()
        # Calibrate: how fast can this side set journeys up right now (the machine is shared)?
        # Throwaway journeys whose reviews are a day away, timed until their letters and
        # records are done too; the storm's setup is then paced below that sustained rate, so
        # it ends before the first review falls due.
        probe = min(60, m)
        t0 = time.time()
        far = datetime.now(UTC) + timedelta(days=1)
        await _bounded(probe, 20, lambda i: d.storm_setup(d.pupil("c", i), far))
        quiet_since, seen = time.time(), -1
        while time.time() - quiet_since < 1.0 and time.time() - t0 < 60:
            if len(tail.read()) or seen < 0:
                quiet_since, seen = time.time(), len(tail.rows)
            await asyncio.sleep(0.1)
        sustained = probe / max(quiet_since - t0, 0.001)
        pace = min(opts.storm_setup_rate, 0.8 * sustained)
        begin = time.time()
        first_due = begin + m / pace + opts.storm_lead
        spacing = opts.storm_window / m
        prefix = d.workflow_id(d.pupil("s", 0))[:-6]  # this storm's journeys only

        async def setup(i: int) -> None:
            wait = begin + i / pace - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            due = datetime.fromtimestamp(first_due + i * spacing, UTC)
            await d.storm_setup(d.pupil("s", i), due)

        set_up, errors = await _bounded(m, max(opts.concurrency, 50), setup)
        setup_end = time.time()
        while time.time() < first_due - 0.5:  # let the setup's letters and records finish
            await asyncio.sleep(0.2)
        rss_cached = ph.worker.rss()
        cpu0, cpu_t0 = ph.cpu(), time.time()
        deadline = first_due + opts.storm_window + opts.storm_timeout
        reminders: dict[str, list[Any]] = {}
        while time.time() < deadline:
            tail.read()
            reminders = {}
            for row in tail.rows:
                if row[2] == "review_reminder" and row[0].startswith(prefix):
                    reminders.setdefault(row[0], row)
            if len(reminders) >= set_up:
                break
            await asyncio.sleep(0.2)
        storm_cpu = {k: v - cpu0[k] for k, v in ph.cpu().items()}
        storm_seconds = time.time() - cpu_t0
        # setup work (the opening letters) still running once reviews fell due
        late_setup = sum(
            1
            for r in tail.rows
            if r[4] >= first_due and r[2] in ("consultation", "open_school_action")
        )
        checks: dict[str, StormCheck] = {}

        async def check(i: int) -> None:
            pupil = d.pupil("s", i)
            # a stalled worker must not hang the benchmark: such a journey counts as an error
            checks[d.workflow_id(pupil)] = await _checked(d.storm_check(pupil), 15)

        checked, check_errors = await _bounded(m, 50, check)
    dues = [c.due_at for c in checks.values()]
    lags = [reminders[w][3] - c.due_at for w, c in checks.items() if w in reminders]
    delivered = [reminders[w][5] - c.due_at for w, c in checks.items() if w in reminders]
    storm_start = min(dues) if dues else first_due
    last_done = max((r[5] for r in reminders.values()), default=storm_start)
    drain = last_done - storm_start
    # the probe's journeys are open and cached too
    cached = min(m + probe, int(opts.worker_env.get("SENFLOW_MAX_CACHED_WORKFLOWS", "1000")))
    return {
        "journeys": m,
        "set_up": set_up,
        "setup_errors": errors[:5],
        "setup_journeys_per_s": round(pace, 1),
        "setup_seconds": round(setup_end - begin, 1),
        "setup_overran_first_due": setup_end > first_due,
        "setup_activities_during_storm": late_setup,
        "due_span_s": round(max(dues) - min(dues), 1) if dues else None,
        "reached_review_due": sum(1 for c in checks.values() if c.reached),
        "reminders_run": len(reminders),
        "check_errors": check_errors[:5],
        "drain_s": round(drain, 1),
        "drain_journeys_per_s": rate(len(reminders), drain),
        "timer_lag_p50_s": _round(percentile(lags, 50)),
        "timer_lag_p99_s": _round(percentile(lags, 99)),
        "timer_lag_max_s": _round(max(lags) if lags else None),
        "reminder_done_p99_s": _round(percentile(delivered, 99)),
        # from just before the first review fell due until the last reminder had run
        "cpu_s": {k: round(v, 1) for k, v in storm_cpu.items()},
        "cores_busy": round(sum(storm_cpu.values()) / storm_seconds, 2),
        "worker_rss_idle_kib": rss_idle["rss_kib"],
        "worker_rss_cached_kib": rss_cached["rss_kib"],
        "cached_journeys": cached,
        "worker_kib_per_cached_journey": round(
            (rss_cached["rss_kib"] - rss_idle["rss_kib"]) / cached, 1
        ),
    }


async def _checked(call: Awaitable[StormCheck], seconds: float) -> StormCheck:
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer within {seconds:g} s")
    return task.result()


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# -- 20,000 journeys held open by one worker --------------------------------------------------


async def hold(opts: Options) -> dict[str, Any]:
    """N journeys at rest (School Action, a term from their review) served by one senflow
    worker with the configured cache (``--max-cached``; journeys beyond it are evicted and
    replayed when their next timer or message comes): its memory, and the server's."""
    n = opts.hold
    async with phase(opts, "senflow", "hold") as ph:
        d = ph.driver
        assert isinstance(d, SenflowDriver)
        rss_idle = ph.worker.rss()
        t0 = time.perf_counter()
        # A stalled worker (measured: see docs/performance.md) must not hang the benchmark:
        # after one set-up waits 60 s, the rest are not tried and the stall is reported.
        stalled: list[int] = []

        async def one(i: int) -> None:
            if stalled:
                raise RuntimeError("not tried: the worker had stalled")
            try:
                await _within(d.hold_setup(d.pupil("h", i)), 60)
            except TimeoutError:
                stalled.append(i)
                raise

        done, errors = await _bounded(n, 50, one)
        seconds = time.perf_counter() - t0
        await asyncio.sleep(5)  # the last letters and records
        rss = ph.worker.rss()
        assert ph.server.proc is not None
        server = rss_kib(ph.server.proc.pid)
        running = (await ph.client.count_workflows('ExecutionStatus="Running"')).count
    return {
        "journeys": n,
        "opened": done,
        "errors": errors[:5],
        "stalled": bool(stalled),
        "setup_seconds": round(seconds, 1),
        "setup_journeys_per_s": rate(done, seconds),
        "running_in_visibility": running,
        "worker_rss_idle_kib": rss_idle["rss_kib"],
        "worker_rss_kib": rss["rss_kib"],
        "worker_peak_rss_kib": rss["peak_kib"],
        "max_cached_workflows": int(opts.worker_env["SENFLOW_MAX_CACHED_WORKFLOWS"]),
        "worker_kib_per_journey": round((rss["rss_kib"] - rss_idle["rss_kib"]) / max(done, 1), 1),
        "server_rss_kib": server["rss_kib"],
    }
