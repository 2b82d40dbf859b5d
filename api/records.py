"""Routes beyond one journey's actions: who am I, users, reports, a specialist's referrals,
auditors' histories, and moving journeys to the 2014 Code."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access.policy import Permission, require
from api import schemas as s
from api.deps import Caller, JourneyId, RefId, SvcDep
from audit import report as audit_report
from domain.commands import OPAQUE_ID
from domain.model import Stage
from records import models as m
from reform import migration
from service import audit, users
from service.journeys import actor_of
from service.reports import Report, report

SettingId = Annotated[str, Query(pattern=OPAQUE_ID.pattern, max_length=64)]
log = structlog.get_logger("senflow.api")


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/me", response_model=s.Me, tags=["me"])
    async def me(principal: Caller) -> s.Me:
        return s.Me(
            actor_id=principal.actor_id,
            role=principal.role,
            schools=sorted(principal.schools),
            consultation=principal.consultation[1] if principal.consultation else None,
            journey_id=principal.consultation[0] if principal.consultation else None,
        )

    # -- users: an admin's, for their own settings ----------------------------------------

    @r.post("/users", status_code=201, response_model=s.Issued, tags=["users"])
    async def add_user(body: s.UserRequest, principal: Caller, svc: SvcDep) -> Any:
        token = await users.add(
            svc, principal, body.user_id, body.role, list(body.schools), body.email
        )
        return s.Issued(user_id=body.user_id, token=token)

    @r.get("/users", response_model=s.Rows, tags=["users"])
    async def list_users(principal: Caller, svc: SvcDep) -> Any:
        return await users.listing(svc, principal)

    @r.post("/users/{user_id}/revocation", response_model=s.Revoked, tags=["users"])
    async def revoke(user_id: RefId, principal: Caller, svc: SvcDep) -> Any:
        count = await users.revoke(svc, principal, user_id)
        return s.Revoked(user_id=user_id, tokens_revoked=count)

    @r.post("/users/{user_id}/tokens", status_code=201, response_model=s.Issued, tags=["users"])
    async def new_token(user_id: RefId, principal: Caller, svc: SvcDep) -> Any:
        return s.Issued(user_id=user_id, token=await users.new_token(svc, principal, user_id))

    # -- reports -----------------------------------------------------------------------------

    @r.get("/reports/{name}", response_model=s.Rows, tags=["reports"])
    async def read_report(
        name: Report,
        principal: Caller,
        svc: SvcDep,
        school: SettingId | None = None,
        days: Annotated[int, Query(ge=0, le=3660)] = 14,
        stage: Stage | None = None,
    ) -> Any:
        return await report(svc, principal, name, school=school, days=days, stage=stage)

    @r.get("/referrals", response_model=list[s.ReferralView], tags=["replies"])
    async def my_referrals(principal: Caller, svc: SvcDep) -> Any:
        """A specialist's referrals (from the read model)."""
        require(principal, Permission.COMPLETE_REFERRAL)
        return await asyncio.to_thread(_referrals_of, svc.factory, principal.actor_id)

    # -- auditors: the record as Temporal's histories hold it --------------------------------

    @r.get("/journeys/{journey_id}/history", tags=["audit"], response_model=None)
    async def history(
        journey_id: JourneyId,
        principal: Caller,
        svc: SvcDep,
        format: Annotated[str, Query(pattern="^(json|html|text)$")] = "json",
    ) -> Any:
        found = await audit.record(svc, principal, journey_id)
        if format == "text":
            return PlainTextResponse(audit_report.as_text(found.trail, found.breaches))
        if format == "html":
            return HTMLResponse(
                audit_report.as_html(found.trail, found.breaches, datetime.now(UTC))
            )
        return json.loads(audit_report.as_json(found.trail, found.breaches))

    @r.get("/journeys/{journey_id}/export", tags=["audit"])
    async def export(journey_id: JourneyId, principal: Caller, svc: SvcDep) -> Any:
        """Every run's history in Temporal's JSON format (payloads as stored: encrypted
        when keys are configured, so the file replays only with the keys)."""
        return json.loads(await audit.export(svc, principal, journey_id))

    @r.get("/audit", tags=["audit"])
    async def audit_all(principal: Caller, svc: SvcDep) -> Any:
        """Breaches of every journey of the auditor's settings."""
        return [
            {
                "journey_id": found.trail.workflow_id,
                "pupil": found.trail.state.pupil_id,
                "school": found.trail.state.school_id,
                "breaches": [vars(b) for b in found.breaches],
            }
            for found in await audit.audit_all(svc, principal)
        ]

    # -- the 2014 Code -----------------------------------------------------------------------

    @r.post("/migrations", response_model=s.MigrationResult, tags=["2014"])
    async def migrate(body: s.MigrationRequest, principal: Caller, svc: SvcDep) -> Any:
        """Move the admin's schools' running code_2001 journeys to the 2014 Code."""
        require(principal, Permission.MIGRATE)
        for school in body.schools:
            require(principal, Permission.MIGRATE, school)

        def progress(o: migration.Outcome) -> None:
            # one line a journey, so an operator can follow a long run (no reasons: they
            # may quote what a person typed)
            log.info(
                "migration_outcome",
                school=o.school_id,
                result=o.result,
                stage_before=o.stage_before,
                stage_after=o.stage_after,
                by=principal.actor_id,
            )

        result = await migration.migrate(
            await svc.client(),
            actor_of(principal),
            body.reason,
            schools=body.schools or sorted(principal.schools),
            local_authority_id=body.local_authority_id,
            dry_run=body.dry_run,
            concurrency=body.concurrency,
            progress=progress,
        )
        return s.MigrationResult(
            dry_run=result.dry_run,
            totals=result.totals(),
            by_school=result.by_school(),
            moves=result.moves(),
            outcomes=[s.MigrationOutcome(**o.__dict__) for o in result.outcomes],
        )

    return r


def _referrals_of(factory: sessionmaker[Session], specialist_id: str) -> list[s.ReferralView]:
    query = (
        select(m.Referral, m.Journey)
        .join(m.Journey, m.Journey.workflow_id == m.Referral.workflow_id)
        .where(m.Referral.specialist_id == specialist_id)
        .order_by(m.Referral.requested_at)
    )
    with factory() as session:
        return [
            s.ReferralView(
                workflow_id=r.workflow_id,
                pupil_id=j.pupil_id,
                school_id=j.school_id,
                referral_id=r.referral_id,
                kind=r.kind,
                status=r.status,
                requested_at=r.requested_at,
                completed_at=r.completed_at,
            )
            for r, j in session.execute(query)
        ]
