"""Web sign-in: one-time links, server-side sessions and forms' submission keys.

Secrets (a link's, a session's) are 256 random bits shown once; only their SHA-256 is stored
(a slow hash adds nothing to a secret that cannot be guessed). Every request reads the
session's row and its user's: signing out, idle expiry or revoking the user ends it at once.
No HTTP here: the web adapter sets the cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from access.models import ApiToken, ApiUser, FormUse, SignInLink, WebSession
from access.policy import Principal
from access.store import check_email
from domain.commands import Refused
from domain.model import Role

#: How long an emailed link works, and how long a session lasts idle and at most.
LINK_LIFETIME = timedelta(minutes=15)
IDLE = timedelta(minutes=30)
LONGEST = timedelta(hours=10)
#: A parent's session (from a letter's code) is for answering, not for browsing.
PARENT_LONGEST = timedelta(minutes=30)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    user_id: str
    email: str
    secret: str  # goes in the emailed URL only


def issue_link(factory: sessionmaker[Session], email: str, now: datetime) -> Link | None:
    """A sign-in link for the active user with that address; None for anyone else (the page
    says the same either way, so nobody learns who has an account)."""
    try:
        address = check_email(email)
    except Refused:
        return None
    secret = secrets.token_urlsafe(32)
    with factory.begin() as session:
        user = session.scalars(select(ApiUser).where(ApiUser.email == address)).first()
        if user is None or user.revoked_at is not None or user.email is None:
            return None
        session.add(
            SignInLink(
                link_hash=digest(secret),
                user_id=user.user_id,
                created_at=now,
                expires_at=now + LINK_LIFETIME,
            )
        )
        return Link(user.user_id, user.email, secret)


@dataclass(frozen=True)
class Opened:
    """A new session: the cookie's secret and the CSRF token its forms carry."""

    secret: str
    csrf: str


def redeem_link(factory: sessionmaker[Session], secret: str, now: datetime) -> Opened | None:
    """Use a link once: a session for its user, or None when the link is unknown, used,
    expired, or its user revoked."""
    with factory.begin() as session:
        claimed = session.execute(
            update(SignInLink)
            .where(
                SignInLink.link_hash == digest(secret),
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > now,
            )
            .values(used_at=now)
        )
        if getattr(claimed, "rowcount", 0) != 1:  # single use, even for two racing requests
            return None
        link = session.get(SignInLink, digest(secret))
        user = session.get(ApiUser, link.user_id) if link is not None else None
        if user is None or user.revoked_at is not None:
            return None
        return _open(session, now, now + LONGEST, user_id=user.user_id)


def open_parent_session(
    factory: sessionmaker[Session], principal: Principal, now: datetime, until: datetime | None
) -> Opened:
    """A short session for a parent whose letter's code was just checked."""
    if principal.role is not Role.PARENT or principal.consultation is None:
        raise ValueError("only a parent's reply code opens a parent's session")
    ends = now + PARENT_LONGEST
    with factory.begin() as session:
        return _open(session, now, min(ends, until) if until else ends, token_id=principal.token_id)


def _open(
    session: Session,
    now: datetime,
    expires: datetime,
    user_id: str | None = None,
    token_id: str | None = None,
) -> Opened:
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        WebSession(
            session_hash=digest(secret),
            user_id=user_id,
            token_id=token_id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    return Opened(secret, csrf)


@dataclass(frozen=True)
class Current:
    """The signed-in session: who, and the CSRF token its forms must carry."""

    principal: Principal
    csrf: str
    session_hash: str


def current(factory: sessionmaker[Session], secret: str, now: datetime) -> Current | None:
    """The session a cookie names, if it is live; touches it (idle expiry runs from here)."""
    if not secret or len(secret) > 100:
        return None
    key = digest(secret)
    with factory.begin() as session:
        row = session.get(WebSession, key)
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return None
        if now - row.last_seen_at > IDLE:
            row.ended_at = now
            return None
        principal = _principal(session, row, now)
        if principal is None:
            row.ended_at = now
            return None
        row.last_seen_at = now
        return Current(principal, row.csrf_token, key)


def _principal(session: Session, row: WebSession, now: datetime) -> Principal | None:
    if row.user_id is not None:
        user = session.get(ApiUser, row.user_id)
        if user is None or user.revoked_at is not None:
            return None
        return Principal(
            actor_id=user.user_id,
            role=Role(user.role),
            schools=frozenset(user.schools),
            token_id=f"web-{row.session_hash[:10]}",
        )
    token = session.get(ApiToken, row.token_id) if row.token_id else None
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.workflow_id is None or token.consultation_id is None:
        return None
    return Principal(
        actor_id=token.actor_id,
        role=Role(token.role),
        schools=frozenset(token.schools),
        token_id=token.token_id,
        consultation=(token.workflow_id, token.consultation_id),
    )


def end(factory: sessionmaker[Session], secret: str, now: datetime) -> None:
    with factory.begin() as session:
        session.execute(
            update(WebSession)
            .where(WebSession.session_hash == digest(secret), WebSession.ended_at.is_(None))
            .values(ended_at=now)
        )


def end_user_sessions(factory: sessionmaker[Session], user_id: str, now: datetime) -> int:
    """Every live session of a user (their revocation also ends them on the next request)."""
    with factory.begin() as session:
        done = session.execute(
            update(WebSession)
            .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
            .values(ended_at=now)
        )
        return int(getattr(done, "rowcount", 0) or 0)


def claim_form(
    factory: sessionmaker[Session], form_key: str, session_hash: str, now: datetime
) -> bool:
    """True for a form's first submission, False for any later one."""
    if not form_key or len(form_key) > 64:
        return False
    try:
        with factory.begin() as session:
            session.add(FormUse(form_key=form_key, session_hash=session_hash, used_at=now))
    except IntegrityError:
        return False
    return True


def release_form(factory: sessionmaker[Session], form_key: str) -> None:
    """A refused or failed submission frees its key: the person corrects it and sends again."""
    with factory.begin() as session:
        row = session.get(FormUse, form_key)
        if row is not None:
            session.delete(row)
