"""The composition root: settings, logging, client, activities and the Temporal worker."""

from __future__ import annotations

import asyncio
import compileall
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import (
    FixedSizeSlotSupplier,
    Interceptor,
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    ResourceBasedSlotConfig,
    ResourceBasedSlotSupplier,
    ResourceBasedTunerConfig,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerTuner,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
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


def workflow_runner(sandbox: str = "passthrough") -> WorkflowRunner:
    """``passthrough`` (the default), ``sandboxed`` (the SDK's default sandbox, every module
    re-imported per run) or ``unsandboxed`` (no sandbox: no determinism guard-rails). Both
    sandboxed runners look up payload contexts directly (``DirectContextRunner``)."""
    if sandbox == "passthrough":
        return DirectContextRunner(
            SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
            )
        )
    if sandbox == "sandboxed":
        return DirectContextRunner(SandboxedWorkflowRunner())
    if sandbox == "unsandboxed":
        return UnsandboxedWorkflowRunner()
    raise ValueError(f"unknown workflow sandbox {sandbox!r}")


class DirectContextRunner(WorkflowRunner):
    """A sandboxed runner whose instances answer the worker's payload-context questions
    without entering the sandbox.

    For every payload of every activation and completion (three passes each way in SDK 1.35:
    references, external storage, codec), the worker asks the workflow instance which
    serialization context applies. The sandbox's instance answers by ``exec``-ing a two-line
    string inside the sandbox (compiled afresh each time, with its importer applied), only to
    call the in-sandbox object's method of the same name, which reads the run's info and
    pending activities and builds a ``temporalio.converter`` context (a module the sandbox
    always passes through). py-spy put that at 18 % of a benchmark worker's samples, on both
    sides (docs/performance.md). This asks the in-sandbox object directly: same method, same
    objects, same answer (tests/workflows/test_direct_context.py compares the two on every
    call of a journey). Workflow code still runs only inside the sandbox (``activate``). If
    the SDK's sandbox ever stops holding that object where this looks, the instance answers
    as the SDK does.
    """

    def __init__(self, inner: SandboxedWorkflowRunner) -> None:
        self.inner = inner

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = self.inner.create_instance(det)
        in_sandbox = getattr(instance, "globals_and_locals", {}).get("__temporal_in_sandbox")
        if in_sandbox is None or not hasattr(in_sandbox, "get_serialization_context"):
            return instance  # not the sandbox this was written against: the SDK's own path
        return _DirectContext(instance, in_sandbox)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _DirectContext(WorkflowInstance):
    def __init__(self, instance: WorkflowInstance, in_sandbox: Any) -> None:
        self.instance = instance
        self.in_sandbox = in_sandbox

    def activate(self, act: Any) -> Any:
        return self.instance.activate(act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self.in_sandbox.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self.in_sandbox.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self.instance.get_info()

    def get_thread_id(self) -> int | None:
        return self.instance.get_thread_id()


def cache_bytecode(workflows: Sequence[type]) -> None:
    """Write the bytecode cache of each workflow's module, when it is missing or stale.

    The sandbox imports a workflow's module afresh for every run it starts (each journey, and
    each one evicted from the cache and replayed). With ``PYTHONDONTWRITEBYTECODE`` set (this
    machine's environment, and the Dockerfile's) nothing writes that cache, so every run
    compiles the module from source: 3.1 ms for ``workflows/pupil_journey.py`` here, once per
    journey started. ``pip install`` writes it for an installed package; an editable install
    (``make install``) is served from the source tree, which is where this writes it. A tree
    that cannot be written only costs the compile, as before.
    """
    for cls in workflows:
        path = getattr(sys.modules[cls.__module__], "__file__", None)
        if path is None or not path.endswith(".py"):
            continue
        try:
            ok = compileall.compile_file(path, quiet=2)
        except OSError:
            ok = False
        if not ok:
            log.info("bytecode_cache_not_written", module=cls.__module__)


def poller_behavior(value: str) -> PollerBehavior:
    """``autoscaling``, or a number: at most that many pollers."""
    if value == "autoscaling":
        return PollerBehaviorAutoscaling()
    return PollerBehaviorSimpleMaximum(maximum=int(value))


def worker_options(settings: Settings) -> dict[str, Any]:
    """The performance levers every worker built from ``settings`` shares (the benchmark's
    baseline worker too, so both sides of a comparison run on the same settings)."""
    options: dict[str, Any] = {
        "workflow_runner": workflow_runner(settings.workflow_sandbox),
        "max_cached_workflows": settings.max_cached_workflows,
        "workflow_task_poller_behavior": poller_behavior(settings.workflow_pollers),
        "activity_task_poller_behavior": poller_behavior(settings.activity_pollers),
    }
    if settings.activity_cpu_target is None:
        options["max_concurrent_workflow_tasks"] = settings.max_concurrent_workflow_tasks
        options["max_concurrent_activities"] = settings.max_concurrent_activities
    else:  # a tuner replaces both counts (the SDK takes one or the other)
        options["tuner"] = activity_cpu_tuner(settings, settings.activity_cpu_target)
    return options


#: The SDK's default slot counts, kept where a tuner replaces them.
SDK_DEFAULT_SLOTS = 100
#: Resource-based activity slots: always a few, and no pause between handing out more (the
#: SDK's 50 ms default would cap a worker at ~20 new activities a second beyond the minimum).
ACTIVITY_MIN_SLOTS = 2


def activity_cpu_tuner(settings: Settings, cpu_target: float) -> WorkerTuner:
    """Fixed workflow task slots; activity slots handed out only while the machine's CPU is
    below ``cpu_target`` (letters wait, journeys' workflow tasks do not)."""
    return WorkerTuner.create_composite(
        workflow_supplier=FixedSizeSlotSupplier(
            settings.max_concurrent_workflow_tasks or SDK_DEFAULT_SLOTS
        ),
        activity_supplier=ResourceBasedSlotSupplier(
            ResourceBasedSlotConfig(
                minimum_slots=ACTIVITY_MIN_SLOTS,
                maximum_slots=settings.max_concurrent_activities or SDK_DEFAULT_SLOTS,
                ramp_throttle=timedelta(0),
            ),
            ResourceBasedTunerConfig(target_memory_usage=0.9, target_cpu_usage=cpu_target),
        ),
        local_activity_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
        nexus_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
    )


def build_worker(
    client: Client, settings: Settings, interceptors: Sequence[Interceptor] = ()
) -> Worker:
    if settings.worker_role not in ("all", "workflows", "activities"):
        raise ValueError(f"unknown worker role {settings.worker_role!r}")
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        migrate(engine)
    recorder = Recorder(sessions(engine))
    smtp = SmtpMailer(settings.smtp) if settings.smtp is not None else None
    reply_codes = (
        ReplyCodes(sessions(engine), settings.token_secret, settings.public_web_url)
        if settings.token_secret is not None
        else None
    )
    notifier = Notifier(
        settings.outbox_dir, settings.mail_domain, settings.mail_sender, recorder, smtp, reply_codes
    )
    cache_bytecode([PupilJourney, JourneyArchiver])
    archiver = Archiver(
        client, Archive(engine, blob_store(settings.archive_url), settings.purge_key)
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        # A worker may run only journeys or only their activities (SENFLOW_WORKER_ROLE), so
        # letters and read-model writes can have processes of their own.
        workflows=[PupilJourney, JourneyArchiver] if settings.worker_role != "activities" else [],
        activities=[notifier.send_notice, recorder.record_journey, archiver.archive_closed_runs]
        if settings.worker_role != "workflows"
        else [],
        interceptors=interceptors,
        graceful_shutdown_timeout=timedelta(seconds=10),
        **worker_options(settings),
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
