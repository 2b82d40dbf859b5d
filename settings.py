"""One frozen settings object read from the environment, and the things built from it."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from temporalio.client import Client

from activities.mail import SmtpSettings
from workflows.converter import DATA_CONVERTER


@dataclass(frozen=True)
class Settings:
    temporal_address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "senflow"
    state_dir: Path = Path(".senflow")
    outbox_dir: Path = Path(".senflow/outbox")
    database_url: str = "sqlite:///.senflow/records.db"
    log_format: str = "auto"  # auto: console on a TTY, JSON lines otherwise
    auto_migrate: bool = False  # run `alembic upgrade head` when the worker starts
    heartbeat_file: Path | None = None  # touched every 15 s by a live worker (healthchecks)
    mail_domain: str = "senflow.invalid"
    mail_sender: str = "senco-office@senflow.invalid"
    #: SMTP; with no host, messages go to the outbox folder instead.
    smtp: SmtpSettings | None = None
    #: Worker levers (docs/performance.md has the measured figures behind each default).
    #: sandboxed | passthrough (domain, transitions, structlog shared) | unsandboxed
    workflow_sandbox: str = "passthrough"
    #: Journeys kept in the worker's cache; one evicted replays its history on its next task.
    max_cached_workflows: int = 1000
    #: "autoscaling", or a number: the fixed maximum of pollers.
    workflow_pollers: str = "autoscaling"
    activity_pollers: str = "5"
    max_concurrent_workflow_tasks: int | None = None  # None: the SDK's default
    max_concurrent_activities: int | None = None
    #: all | workflows | activities: what this worker process polls for.
    worker_role: str = "all"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        state_dir = Path(env.get("SENFLOW_STATE_DIR", ".senflow"))
        return cls(
            temporal_address=env.get("TEMPORAL_ADDRESS", cls.temporal_address),
            namespace=env.get("TEMPORAL_NAMESPACE", cls.namespace),
            task_queue=env.get("SENFLOW_TASK_QUEUE", cls.task_queue),
            state_dir=state_dir,
            outbox_dir=Path(env.get("SENFLOW_OUTBOX_DIR", str(state_dir / "outbox"))),
            database_url=env.get("SENFLOW_DATABASE_URL", f"sqlite:///{state_dir}/records.db"),
            log_format=env.get("SENFLOW_LOG_FORMAT", cls.log_format),
            auto_migrate=env.get("SENFLOW_AUTO_MIGRATE", "0") == "1",
            heartbeat_file=Path(env["SENFLOW_HEARTBEAT_FILE"])
            if env.get("SENFLOW_HEARTBEAT_FILE")
            else None,
            mail_domain=env.get("SENFLOW_MAIL_DOMAIN", cls.mail_domain),
            mail_sender=env.get("SENFLOW_MAIL_SENDER", cls.mail_sender),
            smtp=_smtp_from_env(env),
            workflow_sandbox=env.get("SENFLOW_WORKFLOW_SANDBOX", cls.workflow_sandbox),
            max_cached_workflows=int(
                env.get("SENFLOW_MAX_CACHED_WORKFLOWS", str(cls.max_cached_workflows))
            ),
            workflow_pollers=env.get("SENFLOW_WORKFLOW_POLLERS", cls.workflow_pollers),
            activity_pollers=env.get("SENFLOW_ACTIVITY_POLLERS", cls.activity_pollers),
            max_concurrent_workflow_tasks=_optional_int(env, "SENFLOW_MAX_WORKFLOW_TASKS"),
            max_concurrent_activities=_optional_int(env, "SENFLOW_MAX_ACTIVITIES"),
            worker_role=env.get("SENFLOW_WORKER_ROLE", cls.worker_role),
        )


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    return int(value) if value else None


def _smtp_from_env(env: Mapping[str, str]) -> SmtpSettings | None:
    host = env.get("SENFLOW_SMTP_HOST")
    if not host:
        return None
    user = env.get("SENFLOW_SMTP_USER") or None
    password = env.get("SENFLOW_SMTP_PASSWORD")
    if user and not password:  # no default for a secret
        raise ValueError("SENFLOW_SMTP_USER is set but SENFLOW_SMTP_PASSWORD is not")
    tls = env.get("SENFLOW_SMTP_TLS", "0") == "1"
    return SmtpSettings(
        host=host,
        port=int(env.get("SENFLOW_SMTP_PORT", "465" if tls else "587")),
        starttls=env.get("SENFLOW_SMTP_STARTTLS", "1") == "1",
        tls=tls,
        user=user,
        password=password,
    )


async def connect(settings: Settings) -> Client:
    """A client with senflow's data converter: every client must use it, or dates break."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=DATA_CONVERTER,
    )


def configure_logging(log_format: str = "auto", level: int = logging.INFO) -> None:
    """structlog for activities, worker and CLI: JSON lines unless a person is watching."""
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Look sys.stderr up at each call: it may be replaced (pytest's capture, daemons).
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
