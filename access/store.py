"""Issuing, checking and revoking tokens. Secrets are shown once and stored as scrypt hashes."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access.models import ApiToken, ApiUser
from access.policy import SCHOOL_ROLES, USER_ROLES, Principal
from crypto import tokens
from domain.commands import Refused, check_opaque_id
from domain.model import Role


def add_user(
    session: Session,
    user_id: str,
    role: Role,
    schools: list[str],
    now: datetime,
    email: str | None = None,
) -> str:
    """A new user and their first token (returned: the only time it is seen in clear)."""
    check_opaque_id(user_id, "user id")
    email = check_email(email) if email is not None else None
    if email is not None and session.scalars(select(ApiUser).where(ApiUser.email == email)).first():
        raise Refused("another user already has that email address")
    if role not in USER_ROLES:
        raise Refused(
            f"role {role.value} cannot be a user "
            "(parents get a single-purpose token in each consultation letter)"
        )
    for school in schools:
        check_opaque_id(school, "school id")
    if role in SCHOOL_ROLES and not schools:
        raise Refused(f"a {role.value} acts for at least one school: give --school")
    if role not in SCHOOL_ROLES and schools:
        raise Refused(f"a {role.value} is not tied to schools; leave out --school")
    if session.get(ApiUser, user_id) is not None:
        raise Refused(f"user {user_id} already exists (use `senflow users token` for a new token)")
    session.add(
        ApiUser(
            user_id=user_id,
            role=role.value,
            schools=sorted(set(schools)),
            email=email,
            created_at=now,
        )
    )
    session.flush()
    return new_token_for(session, user_id, now)


_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def check_email(address: str) -> str:
    """A plain address (local@domain.tld), no display name, no line breaks; lower-cased
    domain. Refused otherwise, before it reaches a letter's headers."""
    address = address.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise Refused("that is not an email address (name@example.org)")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def active_admins(session: Session) -> int:
    return len(
        session.scalars(
            select(ApiUser.user_id).where(
                ApiUser.role == Role.ADMIN.value, ApiUser.revoked_at.is_(None)
            )
        ).all()
    )


def new_token_for(session: Session, user_id: str, now: datetime) -> str:
    user = session.get(ApiUser, user_id)
    if user is None or user.revoked_at is not None:
        raise Refused(f"no active user {user_id}")
    token = tokens.new_token()
    session.add(
        ApiToken(
            token_id=token.token_id,
            user_id=user.user_id,
            role=user.role,
            actor_id=user.user_id,
            schools=list(user.schools),
            secret_hash=tokens.hash_secret(token.secret),
            created_at=now,
        )
    )
    return str(token)


def revoke(session: Session, who: str, now: datetime) -> int:
    """Revoke a user (all their tokens) or one token by its id. Returns tokens revoked."""
    user = session.get(ApiUser, who)
    if user is not None:
        user.revoked_at = user.revoked_at or now
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == who)).all()
    else:
        row = session.get(ApiToken, who)
        if row is None:
            raise Refused(f"no user or token {who}")
        rows = [row]
    count = 0
    for row in rows:
        if row.revoked_at is None:
            row.revoked_at = now
            count += 1
    return count


def list_users(session: Session) -> list[dict[str, Any]]:
    rows = []
    for user in session.scalars(select(ApiUser).order_by(ApiUser.user_id)):
        live = session.scalars(
            select(ApiToken.token_id).where(
                ApiToken.user_id == user.user_id, ApiToken.revoked_at.is_(None)
            )
        ).all()
        rows.append(
            {
                "user": user.user_id,
                "role": user.role,
                "schools": ",".join(user.schools) or "-",
                "email": user.email,
                "tokens": ",".join(live) or "-",
                "revoked": user.revoked_at,
            }
        )
    return rows


def issue_parent_token(
    factory: sessionmaker[Session],
    key: bytes,
    *,
    workflow_id: str,
    school_id: str,
    consultation_id: str,
    parent_id: str,
    expires_at: datetime,
) -> str:
    """A parent's reply code for one consultation, derived from ``key``: the same letter
    (or its reminder, or a retried activity) always carries the same code, stored once."""
    token = tokens.derived_token(key, f"consultation|{workflow_id}|{consultation_id}|{parent_id}")
    with factory.begin() as session:
        if session.get(ApiToken, token.token_id) is None:
            session.add(
                ApiToken(
                    token_id=token.token_id,
                    user_id=None,
                    role=Role.PARENT.value,
                    actor_id=parent_id,
                    schools=[school_id],
                    secret_hash=tokens.hash_secret(token.secret),
                    created_at=datetime.now(UTC),
                    expires_at=expires_at,
                    workflow_id=workflow_id,
                    consultation_id=consultation_id,
                )
            )
    return str(token)


@dataclass
class _Verified:
    fingerprint: str
    until: float


class Authenticator:
    """Bearer token → ``Principal``. Every call reads the token row (so a revocation or an
    expiry takes effect at once); the scrypt check is remembered for a minute per token."""

    CACHE_SECONDS = 60.0

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._verified: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def authenticate(self, text: str, now: datetime | None = None) -> Principal | None:
        token = tokens.parse(text)
        if token is None:
            return None
        now = now or datetime.now(UTC)
        with self.factory() as session:
            row = session.get(ApiToken, token.token_id)
            if row is None or row.revoked_at is not None:
                return None
            if row.expires_at is not None and row.expires_at <= now:
                return None
            if row.user_id is not None:
                user = session.get(ApiUser, row.user_id)
                if user is None or user.revoked_at is not None:
                    return None
            if not self._secret_matches(token, row.secret_hash):
                return None
            consultation = (
                (row.workflow_id, row.consultation_id)
                if row.workflow_id is not None and row.consultation_id is not None
                else None
            )
            return Principal(
                actor_id=row.actor_id,
                role=Role(row.role),
                schools=frozenset(row.schools),
                token_id=row.token_id,
                consultation=consultation,
            )

    def _secret_matches(self, token: tokens.Token, stored: str) -> bool:
        fingerprint = hashlib.sha256(f"{stored}|{token.secret}".encode()).hexdigest()
        with self._lock:
            hit = self._verified.get(token.token_id)
            if hit is not None and hit.fingerprint == fingerprint and hit.until > time.monotonic():
                return True
        if not tokens.verify_secret(token.secret, stored):
            return False
        with self._lock:
            self._verified[token.token_id] = _Verified(
                fingerprint, time.monotonic() + self.CACHE_SECONDS
            )
        return True
