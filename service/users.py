"""Users: an admin adds, lists and revokes the users of their own settings; the operator makes
the first admin. Every change is logged with who made it (never a token)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from access import sessions, store
from access.models import ApiUser
from access.policy import SCHOOL_ROLES, Forbidden, Permission, Principal, require
from domain.commands import Refused
from domain.model import Role
from service.context import Services
from service.errors import NotFound

log = structlog.get_logger("senflow.users")


async def add(
    svc: Services,
    principal: Principal,
    user_id: str,
    role: Role,
    schools: list[str],
    email: str | None = None,
) -> str:
    """A new user of the admin's settings and their first token (shown once)."""
    require(principal, Permission.MANAGE_USERS)
    for school in schools:
        if not principal.reaches(school):
            raise Forbidden("you may add users only to your own settings")

    def write() -> str:
        with svc.factory.begin() as session:
            return store.add_user(session, user_id, role, schools, datetime.now(UTC), email)

    token = await asyncio.to_thread(write)
    log.info("user_added", user=user_id, role=role.value, by=principal.actor_id)
    return token


async def listing(svc: Services, principal: Principal) -> list[dict[str, Any]]:
    """The users who act for one of the admin's settings, and specialists (who have none)."""
    require(principal, Permission.MANAGE_USERS)

    def read() -> list[dict[str, Any]]:
        with svc.factory() as session:
            rows = store.list_users(session)
        return [r for r in rows if _visible(r, principal)]

    return await asyncio.to_thread(read)


def _visible(row: dict[str, Any], principal: Principal) -> bool:
    schools = [s for s in str(row["schools"]).split(",") if s and s != "-"]
    return not schools or any(principal.reaches(s) for s in schools)


async def revoke(svc: Services, principal: Principal, user_id: str) -> int:
    require(principal, Permission.MANAGE_USERS)

    def write() -> int:
        with svc.factory.begin() as session:
            _own_user(session, principal, user_id)
            return store.revoke(session, user_id, datetime.now(UTC))

    count = await asyncio.to_thread(write)
    # Every request reads the user's row, so their web sessions end now anyway; mark them too.
    await asyncio.to_thread(sessions.end_user_sessions, svc.factory, user_id, datetime.now(UTC))
    log.info("user_revoked", user=user_id, tokens=count, by=principal.actor_id)
    return count


async def new_token(svc: Services, principal: Principal, user_id: str) -> str:
    require(principal, Permission.MANAGE_USERS)

    def write() -> str:
        with svc.factory.begin() as session:
            _own_user(session, principal, user_id)
            return store.new_token_for(session, user_id, datetime.now(UTC))

    token = await asyncio.to_thread(write)
    log.info("token_issued", user=user_id, by=principal.actor_id)
    return token


def _own_user(session: Session, principal: Principal, user_id: str) -> ApiUser:
    user = session.get(ApiUser, user_id)
    if user is None:
        raise NotFound("no such user")
    if Role(user.role) in SCHOOL_ROLES and not any(principal.reaches(s) for s in user.schools):
        raise NotFound("no such user")
    return user


def bootstrap_admin(
    factory: sessionmaker[Session], user_id: str, schools: list[str], email: str | None
) -> str:
    """The operator's step: the first admin, while there is no active admin at all. After
    that, admins are added by an admin."""
    with factory.begin() as session:
        if store.active_admins(session):
            raise Refused(
                "an admin already exists: ask an admin to add users (`senflow users add`)"
            )
        token = store.add_user(session, user_id, Role.ADMIN, schools, datetime.now(UTC), email)
    log.warning("admin_bootstrapped", user=user_id, by="operator")
    return token
