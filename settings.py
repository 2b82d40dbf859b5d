"""One frozen settings object read from the environment, and the things built from it."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.converter import DataConverter

from activities.mail import SmtpSettings
from crypto.codec import KeyRing, data_converter


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
    #: The archive: how long Temporal keeps a closed run, how often the archiver runs,
    #: where archived histories go ("db": the records database; or file:///a/folder), and the
    #: key that turns a purged pupil's id into the opaque reference kept in the purge log.
    retention: timedelta = timedelta(days=30)
    archive_every: timedelta = timedelta(hours=1)
    archive_url: str = "db"
    ensure_archive_schedule: bool = False  # create/update the archiver's schedule at start
    purge_key: str | None = None
    #: Payload encryption keys (newest first); None: payloads in clear (tests, old setups).
    payload_keys: KeyRing | None = None
    #: Derives parents' reply codes in consultation letters; None: letters carry no code.
    token_secret: bytes | None = field(default=None, repr=False)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: Where people reach the API (printed in letters); defaults to http://api_host:api_port.
    api_url: str = ""
    #: Where people open the web pages: the base of emailed sign-in links and of the link in
    #: each consultation letter (SENFLOW_WEB_URL); defaults to the API's address, which serves
    #: the pages too.
    web_url: str = ""
    #: Browser origins allowed to call the codec endpoints (the Temporal Web UI's).
    ui_origins: tuple[str, ...] = ("http://localhost:8233", "http://127.0.0.1:8233")

    def data_converter(self) -> DataConverter:
        return data_converter(self.payload_keys)

    @property
    def public_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def public_web_url(self) -> str:
        return self.web_url or self.public_api_url

    #: The Code a new journey follows unless its start says otherwise (code_2001, code_2014).
    policy: str = "code_2001"
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
    #: A machine CPU share (0-1): above it the worker takes no further activities until its
    #: workflow tasks have the CPU back (the SDK's resource-based activity slots, at most
    #: ``max_concurrent_activities``). None: a fixed number of activity slots.
    activity_cpu_target: float | None = None
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
            policy=_policy_from_env(env),
            payload_keys=KeyRing.from_env(env, state_dir / KEY_FILE),
            token_secret=_token_secret(env, state_dir / TOKEN_SECRET_FILE),
            api_host=env.get("SENFLOW_API_HOST", cls.api_host),
            api_port=int(env.get("SENFLOW_API_PORT", str(cls.api_port))),
            api_url=env.get("SENFLOW_API_URL", cls.api_url).rstrip("/"),
            web_url=env.get("SENFLOW_WEB_URL", cls.web_url).rstrip("/"),
            ui_origins=tuple(
                o.strip().rstrip("/")
                for o in env.get("SENFLOW_UI_ORIGINS", ",".join(cls.ui_origins)).split(",")
                if o.strip()
            ),
            retention=timedelta(days=float(env.get("SENFLOW_RETENTION_DAYS", "30"))),
            archive_every=timedelta(minutes=float(env.get("SENFLOW_ARCHIVE_EVERY_MINUTES", "60"))),
            archive_url=env.get("SENFLOW_ARCHIVE_URL", cls.archive_url),
            ensure_archive_schedule=env.get("SENFLOW_ARCHIVE_SCHEDULE", "0") == "1",
            purge_key=env.get("SENFLOW_PURGE_KEY") or None,
            workflow_sandbox=env.get("SENFLOW_WORKFLOW_SANDBOX", cls.workflow_sandbox),
            max_cached_workflows=int(
                env.get("SENFLOW_MAX_CACHED_WORKFLOWS", str(cls.max_cached_workflows))
            ),
            workflow_pollers=env.get("SENFLOW_WORKFLOW_POLLERS", cls.workflow_pollers),
            activity_pollers=env.get("SENFLOW_ACTIVITY_POLLERS", cls.activity_pollers),
            max_concurrent_workflow_tasks=_optional_int(env, "SENFLOW_MAX_WORKFLOW_TASKS"),
            max_concurrent_activities=_optional_int(env, "SENFLOW_MAX_ACTIVITIES"),
            activity_cpu_target=_optional_share(env, "SENFLOW_ACTIVITY_CPU_TARGET"),
            worker_role=env.get("SENFLOW_WORKER_ROLE", cls.worker_role),
        )


#: Written by `senflow up` on first start (mode 0600) and found by every command run with the
#: same state directory; production sets SENFLOW_KEYS/SENFLOW_KEY_FILE and a token secret.
KEY_FILE = "payload-keys"
TOKEN_SECRET_FILE = "token-secret"


def _token_secret(env: Mapping[str, str], default_file: Path) -> bytes | None:
    if env.get("SENFLOW_TOKEN_SECRET"):
        secret = env["SENFLOW_TOKEN_SECRET"].encode()
    elif env.get("SENFLOW_TOKEN_SECRET_FILE"):
        secret = Path(env["SENFLOW_TOKEN_SECRET_FILE"]).read_bytes().strip()
    elif default_file.exists():
        secret = default_file.read_bytes().strip()
    else:
        return None
    if len(secret) < 32:
        raise ValueError("the token secret must be at least 32 characters")
    return secret


def _policy_from_env(env: Mapping[str, str]) -> str:
    name = env.get("SENFLOW_POLICY", "code_2001")
    if name not in ("code_2001", "code_2014"):
        raise ValueError(f"SENFLOW_POLICY must be code_2001 or code_2014, not {name!r}")
    return name


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    return int(value) if value else None


def _optional_share(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(name)
    if not value:
        return None
    share = float(value)
    if not 0 < share <= 1:
        raise ValueError(f"{name} is a share of the machine's CPU, above 0 and at most 1")
    return share


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
    """A client with senflow's data converter: every client must use it, or dates break
    (and, with keys configured, payloads would go to Temporal unencrypted)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=settings.data_converter(),
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
