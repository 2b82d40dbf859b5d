"""Tokens: stored hashed, shown once, revocable; a parent's reply code issued once per letter
however often the letter activity runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from access import store
from access.models import ApiToken
from activities.notices import Notifier, SendNoticeInput
from activities.reply_codes import ReplyCodes
from domain.commands import Refused
from domain.model import Notice, Role
from records.db import make_engine, migrate, sessions

SENFLOW = str(Path(sys.executable).parent / "senflow")


@pytest.fixture
def factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/records.db")
    migrate(engine)
    yield sessions(engine)
    engine.dispose()


def test_users_add_prints_a_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    env = {**os.environ, "SENFLOW_STATE_DIR": str(tmp_path)}
    run = lambda *a: subprocess.run(  # noqa: E731
        [SENFLOW, *a], env=env, capture_output=True, text=True, timeout=60
    )
    assert run("records", "migrate").returncode == 0
    added = run("users", "add", "senco-7", "--role", "senco", "--school", "S1")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("sf.") and "shown once" in added.stderr
    secret = token.split(".")[2]
    assert secret.encode() not in (tmp_path / "records.db").read_bytes()
    listed = run("users", "list")
    assert "senco-7" in listed.stdout and secret not in listed.stdout
    refused = run("users", "add", "p-1", "--role", "parent")
    assert refused.returncode == 1 and "consultation letter" in refused.stderr
    assert run("users", "revoke", "senco-7").returncode == 0
    factory = sessions(make_engine(f"sqlite:///{tmp_path}/records.db"))
    assert store.Authenticator(factory).authenticate(token) is None


def test_authentication_checks_secret_expiry_and_revocation(factory) -> None:  # type: ignore[no-untyped-def]
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
    factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
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
        result = await env.run(notifier.send_notice, SendNoticeInput("pupil-p1", notice))
        letters.append(Path(result.path).read_text())
    codes = {c for letter in letters for c in re.findall(r"sf\.[0-9a-f]{16}\.[\w-]{43}", letter)}
    assert len(codes) == 1, codes  # the same code in every attempt's letter (text and HTML)
    with factory() as session:
        rows = session.scalars(select(ApiToken)).all()
    assert len(rows) == 1 and rows[0].consultation_id == "consultation-3"
    assert rows[0].expires_at == datetime(2030, 1, 21, 0, 0, tzinfo=UTC)  # end of the day, London
    [code] = codes
    principal = store.Authenticator(factory).authenticate(code)
    assert principal is not None and principal.consultation == ("pupil-p1", "consultation-3")
    assert principal.actor_id == "carer-1" and principal.role is Role.PARENT
