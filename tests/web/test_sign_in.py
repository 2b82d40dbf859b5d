"""Signing in to the web pages, in-process (no Temporal): one-time emailed links, server-side
sessions, CSRF on every form, idle expiry, sign-out, and revocation ending sessions at once."""

from __future__ import annotations

import email
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access import sessions, store
from access.models import SignInLink, WebSession
from domain.model import Role
from records.db import make_engine, migrate
from records.db import sessions as session_factory
from server import create_app
from settings import Settings

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'records.db'}")
    migrate(engine)
    made = session_factory(engine)
    with made.begin() as s:
        store.add_user(s, "senco-1", Role.SENCO, ["school-1"], NOW, "senco-1@school-1.example.org")
        store.add_user(s, "ep-7", Role.SPECIALIST, [], NOW, "ep-7@specialists.example.org")
    return made


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://testserver",
        follow_redirects=False,
    )


@pytest.fixture
def app(factory: sessionmaker[Session], tmp_path: Path) -> FastAPI:
    settings = Settings(
        outbox_dir=tmp_path / "outbox",
        database_url=f"sqlite:///{tmp_path / 'records.db'}",
        web_url="http://testserver",
    )
    return create_app(settings, factory=factory)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as c:
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the form carries no CSRF token"
    return found.group(1)


def _link_from_outbox(outbox: Path) -> str:
    (letter,) = sorted(outbox.glob("sign-in--*.eml"))
    msg = email.message_from_bytes(letter.read_bytes())
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(r"http://testserver/sign-in/link/\S+", body)
    assert found, body
    return found.group(0).removeprefix("http://testserver")


async def _sign_in(client: httpx.AsyncClient, tmp_path: Path, address: str) -> None:
    form = await client.get("/sign-in")
    sent = await client.post("/sign-in", data={"email": address, "csrf": _csrf(form.text)})
    assert sent.status_code == 303 and sent.headers["location"] == "/sign-in/sent"
    path = _link_from_outbox(tmp_path / "outbox")
    landing = await client.get(path)
    done = await client.post(path, data={"csrf": _csrf(landing.text)})
    assert done.status_code == 303 and done.headers["location"] == "/"


async def test_the_emailed_link_signs_in_once_through_a_post(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    form = await client.get("/sign-in")
    await client.post(
        "/sign-in", data={"email": "senco-1@school-1.example.org", "csrf": _csrf(form.text)}
    )
    path = _link_from_outbox(tmp_path / "outbox")

    landing = await client.get(path)  # what a mail scanner does: signs nobody in
    assert landing.status_code == 200 and "senflow_session" not in landing.headers.get(
        "set-cookie", ""
    )
    done = await client.post(path, data={"csrf": _csrf(landing.text)})
    cookie = done.headers["set-cookie"]
    assert "senflow_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert (await client.get("/")).headers["location"] == "/school"

    async with _client(app) as again:
        landing = await again.get(path)
        reused = await again.post(path, data={"csrf": _csrf(landing.text)})
    assert reused.status_code == 400 and "expired" in reused.text
    assert "senflow_session" not in reused.headers.get("set-cookie", "")


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    form = await client.get("/sign-in")
    sent = await client.post(
        "/sign-in", data={"email": "nobody@example.org", "csrf": _csrf(form.text)}
    )
    assert sent.headers["location"] == "/sign-in/sent"
    assert not (tmp_path / "outbox").exists()


async def test_a_form_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await client.get("/sign-in")
    refused = await client.post("/sign-in", data={"email": "senco-1@school-1.example.org"})
    assert refused.status_code == 400
    assert not (tmp_path / "outbox").exists()
    await _sign_in(client, tmp_path, "senco-1@school-1.example.org")
    assert (await client.post("/sign-out", data={"csrf": "wrong"})).status_code == 400


async def test_signed_out_requests_go_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/school", "/journeys/journey-abc", "/reports", "/audit", "/referrals"):
        answer = await client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/sign-in?next=")


async def test_sign_out_ends_the_session(client: httpx.AsyncClient, tmp_path: Path) -> None:
    await _sign_in(client, tmp_path, "senco-1@school-1.example.org")
    page = await client.get("/accessibility")
    out = await client.post("/sign-out", data={"csrf": _csrf(page.text)})
    assert out.status_code == 303
    assert (await client.get("/school")).status_code == 303


def test_links_are_stored_hashed_short_lived_and_single_use(
    factory: sessionmaker[Session],
) -> None:
    link = sessions.issue_link(factory, "senco-1@school-1.example.org", NOW)
    assert link is not None
    with factory() as s:
        (row,) = s.scalars(select(SignInLink)).all()
    assert link.secret not in row.link_hash and row.link_hash == sessions.digest(link.secret)
    late = NOW + sessions.LINK_LIFETIME + timedelta(seconds=1)
    assert sessions.redeem_link(factory, link.secret, late) is None
    fresh = sessions.issue_link(factory, "senco-1@school-1.example.org", NOW)
    assert fresh is not None
    assert sessions.redeem_link(factory, fresh.secret, NOW) is not None
    assert sessions.redeem_link(factory, fresh.secret, NOW) is None


def test_a_session_ends_when_idle_and_when_its_user_is_revoked(
    factory: sessionmaker[Session],
) -> None:
    link = sessions.issue_link(factory, "senco-1@school-1.example.org", NOW)
    assert link is not None
    opened = sessions.redeem_link(factory, link.secret, NOW)
    assert opened is not None
    with factory() as s:
        assert s.scalars(select(WebSession.session_hash)).one() != opened.secret
    assert sessions.current(factory, opened.secret, NOW + timedelta(minutes=20)) is not None
    idle = NOW + timedelta(minutes=20) + sessions.IDLE + timedelta(seconds=1)
    assert sessions.current(factory, opened.secret, idle) is None

    link = sessions.issue_link(factory, "senco-1@school-1.example.org", NOW)
    assert link is not None
    opened = sessions.redeem_link(factory, link.secret, NOW)
    assert opened is not None
    with factory.begin() as s:
        store.revoke(s, "senco-1", NOW)
    assert sessions.current(factory, opened.secret, NOW) is None
    assert sessions.issue_link(factory, "senco-1@school-1.example.org", NOW) is None


def test_a_form_key_is_claimed_once(factory: sessionmaker[Session]) -> None:
    assert sessions.claim_form(factory, "k1", "s", NOW)
    assert not sessions.claim_form(factory, "k1", "s", NOW)
    sessions.release_form(factory, "k1")
    assert sessions.claim_form(factory, "k1", "s", NOW)


async def test_pages_carry_a_csp_no_referrer_and_no_crown(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in")
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    assert "govuk-logo" not in page.text and "crown" not in page.text.lower()
    css = await client.get("/static/build/senflow.css")
    assert css.status_code == 200 and "GDS Transport" not in css.text


async def test_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" not in docs.text and "/static/build/swagger-ui/" in docs.text
    assert (await client.get("/static/build/swagger-ui/swagger-ui-bundle.js")).status_code == 200


async def test_an_unknown_page_is_the_design_systems_404_and_the_api_keeps_json(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/no-such-page")
    assert page.status_code == 404 and "Page not found" in page.text
    api = await client.get("/v1/no-such-route")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
