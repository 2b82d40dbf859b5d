"""Tokens: stored hashed, shown once, revocable; a parent's reply code issued once per letter
however often the letter activity runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import ActivityEnvironment

from access import store
from access.models import ApiToken
from activities.notices import Notifier, SendNoticeInput
from activities.reply_codes import ReplyCodes
from domain.commands import Refused
from domain.model import Notice, Role
from records.db import make_engine, migrate, sessions
from smtp_sink import free_port

SENFLOW = str(Path(sys.executable).parent / "senflow")
JOURNEY = "journey-5e1f0c2a9b7d4e6f8a3b1c0d2e4f6a8b"  # a reply code is bound to a journey id


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path}/records.db")
    migrate(engine)
    yield sessions(engine)
    engine.dispose()


def test_users_add_prints_a_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    """The operator makes the first admin; the admin adds, lists and revokes users with the
    CLI, a client of `senflow api`. Every token is printed once and stored as a hash."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "SENFLOW_TOKEN"},
        "SENFLOW_STATE_DIR": str(tmp_path),
        "SENFLOW_CONFIG_DIR": str(tmp_path / "config"),  # no one's stored sign-in
        "SENFLOW_API_PORT": str(port),
        "SENFLOW_API_URL": f"http://127.0.0.1:{port}",
    }

    def run(*a: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SENFLOW, *a],
            env={**env, "SENFLOW_TOKEN": token} if token else env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("records", "migrate").returncode == 0
    booted = run("users-bootstrap", "admin-7", "--school", "S1")
    assert booted.returncode == 0, booted.stderr
    admin = booted.stdout.strip()
    assert admin.startswith("sf.") and "shown once" in booted.stderr
    again = run("users-bootstrap", "admin-8", "--school", "S1")
    assert again.returncode == 1 and "already exists" in again.stderr

    log = tmp_path / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen([SENFLOW, "api"], env=env, stdout=out, stderr=out)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert api.poll() is None, log.read_text()
            time.sleep(0.1)
        added = run("users", "add", "senco-7", "--role", "senco", "--school", "S1", token=admin)
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip()
        assert token.startswith("sf.") and "shown once" in added.stderr
        db = (tmp_path / "records.db").read_bytes()
        for secret in (admin.split(".")[2], token.split(".")[2]):
            assert secret.encode() not in db
        listed = run("users", "list", token=admin)
        assert "senco-7" in listed.stdout and token.split(".")[2] not in listed.stdout
        refused = run("users", "add", "p-1", "--role", "parent", token=admin)
        assert refused.returncode == 1 and "consultation letter" in refused.stderr
        assert run("whoami", token=token).returncode == 0
        assert run("users", "revoke", "senco-7", token=admin).returncode == 0
        assert run("whoami", token=token).returncode == 1
    finally:
        api.terminate()
        api.wait(30)
    factory = sessions(make_engine(f"sqlite:///{tmp_path}/records.db"))
    assert store.Authenticator(factory).authenticate(token) is None
    assert store.Authenticator(factory).authenticate(admin) is not None


def test_authentication_checks_secret_expiry_and_revocation(
    factory: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    with factory.begin() as session:
        token = store.add_user(session, "t-1", Role.CLASS_TEACHER, ["S1"], now)
        with pytest.raises(Refused):
            store.add_user(session, "a-1", Role.ADMIN, [], now)  # an admin needs schools
    auth = store.Authenticator(factory)
    principal = auth.authenticate(token)
    assert principal is not None and principal.actor_id == "t-1"
    assert principal.schools == frozenset({"S1"}) and principal.role is Role.CLASS_TEACHER
    assert auth.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    with factory.begin() as session:
        row = session.get(ApiToken, token.split(".")[1])
        assert row is not None and token.split(".")[2] not in row.secret_hash
        row.expires_at = now - timedelta(seconds=1)
    assert auth.authenticate(token) is None  # expired, even with the check cached


async def test_a_retried_letter_carries_the_same_reply_code_issued_once(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    codes = ReplyCodes(factory, b"k" * 40, "http://api.example")
    notifier = Notifier(tmp_path / "outbox", "x.invalid", "s@x.invalid", None, None, codes)
    notice = Notice(
        key="3-consultation-carer-1",
        kind="consultation",
        recipient_role=Role.PARENT,
        recipient_id="carer-1",
        subject="Your child's SEN support",
        lines=["Decision: School Action."],
        facts={
            "consultation_id": "consultation-3",
            "reply_by": "2030-01-20",
            "school": "S1",
            "pupil_ref": "p1",
            "senco": "senco-1",
            "stage": "school_action",
            "decision": "School Action",
            "decided_on": "2030-01-06",
            "reason": "",
            "needs": [],
            "targets": [],
        },
    )
    env = ActivityEnvironment()
    letters = []
    for _ in range(3):  # the first attempt and two retries
        result = await env.run(notifier.send_notice, SendNoticeInput(JOURNEY, notice))
        letters.append(Path(result.path).read_text())
    found = {c for letter in letters for c in re.findall(r"sf\.[0-9a-f]{16}\.[\w-]{43}", letter)}
    assert len(found) == 1, found  # the same code in every attempt's letter (text and HTML)
    with factory() as session:
        rows = session.scalars(select(ApiToken)).all()
    assert len(rows) == 1 and rows[0].consultation_id == "consultation-3"
    assert rows[0].expires_at == datetime(2030, 1, 21, 0, 0, tzinfo=UTC)  # end of the day, London
    [code] = found
    principal = store.Authenticator(factory).authenticate(code)
    assert principal is not None and principal.consultation == (JOURNEY, "consultation-3")
    assert principal.actor_id == "carer-1" and principal.role is Role.PARENT
