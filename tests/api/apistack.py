"""The API tier's stack: the real dev server, a worker and a client *with* the payload codec,
the FastAPI app in-process (httpx over ASGI), users for two schools and every role."""

from __future__ import annotations

import asyncio
import email
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from access import store
from api.app import create_app
from crypto.codec import KeyRing, new_key_entry
from domain.model import JourneyState, Role
from records.db import make_engine, migrate, sessions
from settings import Settings
from worker import build_worker
from workflows.pupil_journey import PupilJourney

TOKEN_SECRET = b"test-token-secret-0123456789abcdef-0123456789"

#: The users of the tests: (user id, role, schools).
USERS: dict[str, tuple[Role, list[str]]] = {
    "senco-s1": (Role.SENCO, ["s1"]),
    "teacher-s1": (Role.CLASS_TEACHER, ["s1"]),
    "senco-s2": (Role.SENCO, ["s2"]),
    "ep-1": (Role.SPECIALIST, []),
    "ep-2": (Role.SPECIALIST, []),
    "admin-la1": (Role.ADMIN, ["s1", "s3"]),
    "admin-la2": (Role.ADMIN, ["s2"]),
    "auditor-s1": (Role.AUDITOR, ["s1"]),
    "la-s1": (Role.LOCAL_AUTHORITY, ["s1"]),
    "senco-s3": (Role.SENCO, ["s3"]),
    "auditor-s2": (Role.AUDITOR, ["s2"]),
    "la-s2": (Role.LOCAL_AUTHORITY, ["s2"]),
}


def key_ring(*ids: str) -> KeyRing:
    return KeyRing.parse(",".join(new_key_entry(kid) for kid in ids))


#: One key ring for every stack of the session, as a deployment has one: the dev server is
#: shared, and an auditor's ``/v1/audit`` reads every journey of their settings on it.
KEYS = key_ring("k2", "k1")


@dataclass(frozen=True)
class AtActionPlus:
    """A journey at School Action Plus with a referral to ep-1."""

    journey_id: str
    referral_id: str


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: Client  # with the codec, like every senflow process
    settings: Settings
    http: httpx.AsyncClient
    tokens: dict[str, str]
    outbox: Path
    school: str
    #: The journey ids started through the API (terminated when the test ends).
    started: list[str] = field(default_factory=list)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def start(
        self,
        pupil: str,
        *,
        user: str = "teacher-s1",
        school: str = "s1",
        senco: str = "senco-s1",
        parents: tuple[str, ...] = ("carer-1", "carer-2"),
        concern: str = "slow reading",
        **extra: Any,
    ) -> str:
        """Raise a concern through the API; returns the new journey's own id."""
        body = {
            "pupil_id": pupil,
            "school_id": school,
            "senco_id": senco,
            "parent_ids": list(parents),
            "concern": concern,
            **extra,
        }
        r = await self.http.post("/v1/journeys", json=body, headers=self.auth(user))
        assert r.status_code == 201, r.text
        view = r.json()
        journey_id: str = view["journey_id"]
        assert (view["pupil_id"], view["school_id"]) == (pupil, school), view
        assert journey_id.startswith("journey-") and pupil not in journey_id
        self.started.append(journey_id)
        return journey_id

    async def state(self, journey_id: str) -> JourneyState:
        handle = self.client.get_workflow_handle(journey_id)
        return await handle.query(PupilJourney.state)

    async def events(self, journey_id: str) -> int:
        """How many events the journey's history holds (all runs but the latest are closed)."""
        history = await self.client.get_workflow_handle(journey_id).fetch_history()
        return len(history.events)

    def reply_code(self, journey_id: str, consultation: str, parent: str) -> str:
        """The reply code printed in that parent's letter (read from the outbox, as a
        parent would read their letter)."""
        for path in sorted(self.outbox.glob(f"{journey_id}--*consultation-{parent}.eml")):
            msg = email.message_from_bytes(path.read_bytes())
            text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
            body = text.get_payload(decode=True).decode()  # type: ignore[union-attr]
            if f"consultation {consultation}" in body:
                found = re.search(r"sf\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}", body)
                assert found, body
                return found.group(0)
        raise AssertionError(f"no letter for {parent} about {consultation}")

    async def until_letters_sent(self, journey_id: str) -> None:
        for _ in range(400):
            state = await self.state(journey_id)
            if not state.outbox and state.projected_step >= state.step:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("letters still queued")


async def make_stack(env: WorkflowEnvironment, tmp: Path) -> AsyncIterator[Stack]:
    settings = Settings(
        task_queue=f"tq-api-{uuid.uuid4()}",
        outbox_dir=tmp / "outbox",
        database_url=f"sqlite:///{tmp}/records.db",
        auto_migrate=True,
        payload_keys=KEYS,
        token_secret=TOKEN_SECRET,
        api_url="http://testserver",
    )
    engine = make_engine(settings.database_url)
    migrate(engine)
    factory = sessions(engine)
    tokens = {}
    with factory.begin() as session:
        for user, (role, schools) in USERS.items():
            tokens[user] = store.add_user(session, user, role, schools, datetime.now(UTC))
    config = env.client.config()
    config["data_converter"] = settings.data_converter()
    client = Client(**config)
    app = create_app(settings, client=client)
    transport = httpx.ASGITransport(app=app)
    stack_started: list[str] = []
    async with (
        build_worker(client, settings),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        stack = Stack(env, client, settings, http, tokens, settings.outbox_dir, "s1")
        yield stack
        stack_started = stack.started
        for journey_id in set(stack_started):
            handle = client.get_workflow_handle(journey_id)
            try:
                await stack.until_letters_sent(journey_id)
            except (AssertionError, RPCError):
                pass
            try:
                await handle.terminate("test finished")
            except RPCError:
                pass
    engine.dispose()


IEP: dict[str, Any] = {
    "targets": [{"description": "read 30 words", "success_criterion": "in two sessions"}],
    "strategies": ["daily phonics"],
    "provision": ["TA 3x20 min"],
    "responsible": ["teacher-s1"],
}


async def journey_at_action_plus(
    stack: Stack, pupil: str, concern: str = "slow reading"
) -> AtActionPlus:
    """Started by the class teacher, School Action, escalated at review, referred to ep-1:
    every step through the API, by the journey's own id."""
    h = stack.http
    journey_id = await stack.start(pupil, concern=concern)
    r = await h.post(
        f"/v1/journeys/{journey_id}/school-action",
        json={"triggers": ["SA-LITERACY-MATHS"], "evidence": "reading age behind", "iep": IEP},
        headers=stack.auth("senco-s1"),
    )
    assert r.status_code == 200, r.text
    r = await h.post(
        f"/v1/journeys/{journey_id}/reviews",
        json={
            "outcome": "escalate",
            "progress": [{"target_index": 0, "progress": "little"}],
            "notes": "little progress",
            "new_iep": IEP,
            "triggers": ["AP-LITERACY-MATHS"],
        },
        headers=stack.auth("senco-s1"),
    )
    assert r.status_code == 200, r.text
    r = await h.post(
        f"/v1/journeys/{journey_id}/referrals",
        json={"kind": "educational_psychologist", "specialist_id": "ep-1", "question": "why?"},
        headers=stack.auth("senco-s1"),
    )
    assert r.status_code == 200, r.text
    ref = r.json()["ref"]
    assert isinstance(ref, str)
    return AtActionPlus(journey_id, ref)
