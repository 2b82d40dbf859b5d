"""One benchmark worker process: ``python -m bench.workerproc --kind senflow|bare ...``.

The senflow worker is ``worker.build_worker`` itself (real activities: letters rendered and
written to an outbox folder, the SQLite read model); the bare worker hosts ``BareJourney``
with no-op activities. Both take their levers from the same ``Settings`` (environment
``SENFLOW_*``), so a comparison runs both sides on identical worker settings.

Each completed activity is appended to ``activities.jsonl`` as
``[workflow_id, activity_type, kind, scheduled, started, finished]`` (epoch seconds): the
benchmark reads it to see when each journey's reminder has run. Prints ``ready`` once polling.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from activities.notices import SendNoticeInput, SendNoticeResult
from activities.records import RecordJourneyInput, RecordJourneyResult
from bench.baseline import BareJourney, bare_notice, bare_record
from settings import Settings, configure_logging, connect
from worker import build_worker, cache_bytecode, worker_options
from workflows.pupil_journey import PupilJourney


class ActivityLog(Interceptor):
    """Remembers when each activity was scheduled, started and finished."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, log: ActivityLog) -> None:
        super().__init__(next)
        self.log = log

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = time.time()
        result = await super().execute_activity(input)
        info = activity.info()
        arg = input.args[0] if input.args else None
        notice = getattr(arg, "notice", None)
        kind = getattr(notice, "kind", None) or getattr(arg, "kind", None) or info.activity_type
        self.log.lines.append(  # the flusher swaps the list: look it up now
            json.dumps(
                [
                    info.workflow_id,
                    info.activity_type,
                    kind,
                    info.scheduled_time.timestamp(),
                    started,
                    time.time(),
                ]
            )
        )
        return result


@activity.defn(name="send_notice")
async def noop_send_notice(input: SendNoticeInput) -> SendNoticeResult:
    return SendNoticeResult(message_id="", path="", rewritten=False)


@activity.defn(name="record_journey")
async def noop_record_journey(input: RecordJourneyInput) -> RecordJourneyResult:
    return RecordJourneyResult(step=input.changes.step)


async def _flush(log: ActivityLog, path: Path, stop: asyncio.Event) -> None:
    with path.open("a") as out:
        while True:
            lines, log.lines = log.lines, []
            if lines:
                out.write("\n".join(lines) + "\n")
                out.flush()
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.2)
            except TimeoutError:
                pass


async def serve(kind: str, settings: Settings, directory: Path) -> None:
    client = await connect(settings)
    log = ActivityLog()
    worker: Worker
    if kind == "senflow":
        worker = build_worker(client, settings, interceptors=[log])
    elif kind == "senflow-noop-activities" and settings.worker_role != "all":
        raise SystemExit("the no-op diagnosis runs in one process")
    elif kind == "senflow-noop-activities":
        # Diagnosis only: the journey with activities that do nothing, to split senflow's cost
        # between its workflow (domain, payloads, commands) and its activities (letters, rows).
        cache_bytecode([PupilJourney])
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[PupilJourney],
            activities=[noop_send_notice, noop_record_journey],
            interceptors=[log],
            graceful_shutdown_timeout=timedelta(seconds=10),
            **worker_options(settings),
        )
    elif kind == "bare":
        cache_bytecode([BareJourney])  # the same lever as build_worker's, for the same reason
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[BareJourney] if settings.worker_role != "activities" else [],
            activities=[bare_notice, bare_record] if settings.worker_role != "workflows" else [],
            interceptors=[log],
            graceful_shutdown_timeout=timedelta(seconds=10),
            **worker_options(settings),
        )
    else:
        raise SystemExit(f"unknown worker kind {kind!r}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        flusher = asyncio.create_task(_flush(log, directory / "activities.jsonl", stop))
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
        await flusher


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workerproc")
    parser.add_argument(
        "--kind", choices=["senflow", "senflow-noop-activities", "bare"], required=True
    )
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--directory", type=Path, required=True)
    args = parser.parse_args()
    base = Settings.from_env()
    settings = dataclasses.replace(
        base,
        temporal_address=args.address,
        task_queue=args.task_queue,
        state_dir=args.directory,
        outbox_dir=args.directory / "outbox",
        database_url=f"sqlite:///{args.directory}/records.db",
        auto_migrate=True,
    )
    configure_logging(settings.log_format)
    asyncio.run(serve(args.kind, settings, args.directory))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # temporalio/sdk-python#300: the interpreter can abort while tearing down


if __name__ == "__main__":
    main()
