"""The composition root: settings, logging, client, activities and the Temporal worker."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.mail import SmtpMailer
from activities.notices import Notifier
from activities.records import Recorder
from activities.reply_codes import ReplyCodes
from archive.archiver import Archiver
from archive.blobs import blob_store
from archive.schedule import ensure_schedule
from archive.store import Archive
from archive.workflow import JourneyArchiver
from domain.commands import Refused
from records.db import make_engine, migrate, sessions
from settings import Settings, configure_logging, connect
from workflows.pupil_journey import PupilJourney

log = structlog.get_logger("senflow.worker")

#: Pure modules shared with the sandbox instead of re-imported per workflow run (DESIGN.md:
#: faster and smaller), and the logger the activities module imports.
PASSTHROUGH = ("domain", "transitions", "structlog")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_worker(client: Client, settings: Settings) -> Worker:
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        migrate(engine)
    recorder = Recorder(sessions(engine))
    smtp = SmtpMailer(settings.smtp) if settings.smtp is not None else None
    reply_codes = (
        ReplyCodes(sessions(engine), settings.token_secret, settings.public_api_url)
        if settings.token_secret is not None
        else None
    )
    notifier = Notifier(
        settings.outbox_dir, settings.mail_domain, settings.mail_sender, recorder, smtp, reply_codes
    )
    archiver = Archiver(
        client, Archive(engine, blob_store(settings.archive_url), settings.purge_key)
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[PupilJourney, JourneyArchiver],
        activities=[notifier.send_notice, recorder.record_journey, archiver.archive_closed_runs],
        workflow_runner=workflow_runner(),
        workflow_task_poller_behavior=PollerBehaviorAutoscaling(),
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings)
    worker = build_worker(client, settings)
    if settings.ensure_archive_schedule:
        try:
            log.info("archive_schedule", result=await ensure_schedule(client, settings))
        except Refused as err:  # journeys must run on; `senflow archive status` shows it too
            log.error("archive_schedule_refused", reason=str(err))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker_started",
        task_queue=settings.task_queue,
        namespace=settings.namespace,
        address=settings.temporal_address,
    )
    async with worker:
        beat = asyncio.create_task(_heartbeat(settings.heartbeat_file, stop))
        await stop.wait()
        log.info("worker_stopping")
        beat.cancel()
    log.info("worker_stopped")


async def _heartbeat(path: Path | None, stop: asyncio.Event) -> None:
    """Touch a file while the worker's event loop runs: what the compose healthcheck reads."""
    if path is None:
        return
    while not stop.is_set():
        path.touch()
        await asyncio.sleep(15)


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
