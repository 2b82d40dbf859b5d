"""The admin reports, one dispatch for every front end: read-model reports, and the statutory
clock (asked of the journeys themselves). Always within the caller's settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from access.policy import Permission, Principal, require
from domain.model import Stage
from records import reports
from reform import clock
from service.context import Services

Row = dict[str, Any]


class Report(StrEnum):
    REGISTER = "register"
    REVIEWS = "reviews"
    REFERRALS = "referrals"
    STAGES = "stages"
    BIRTH_MONTHS = "birth-months"
    STATUTORY_CLOCK = "statutory-clock"  # asked of the journeys, not the read model


async def report(
    svc: Services,
    principal: Principal,
    name: Report,
    *,
    school: str | None = None,
    days: int = 14,
    stage: Stage | None = None,
) -> list[Row]:
    """``register`` with a ``stage`` lists the pupils at that stage instead of counting."""
    require(principal, Permission.REPORTS, school)
    schools = [school] if school else sorted(principal.schools)
    now = datetime.now(UTC)
    if name is Report.STATUTORY_CLOCK:
        client = await svc.client()
        return [r for one in schools for r in await clock.statutory_clock(client, now, one)]
    return await asyncio.to_thread(_read_model, svc.factory, name, schools, days, stage, now)


def _read_model(
    factory: sessionmaker[Session],
    name: Report,
    schools: list[str],
    days: int,
    stage: Stage | None,
    now: datetime,
) -> list[Row]:
    rows: list[Row] = []
    with factory() as session:
        if name is Report.REFERRALS:
            return reports.referral_waits(session, now, schools)
        if name is Report.BIRTH_MONTHS:
            # Per school only: the "ALL" rows would count other authorities' pupils.
            return [
                r for r in reports.identification_by_birth_month(session) if r["school"] in schools
            ]
        for school in schools:
            if name is Report.REGISTER and stage is not None:
                rows += [
                    {
                        "school": one,
                        "stage": stage.value,
                        "pupil": pupil,
                        "census_code": reports.CENSUS_CODES.get(stage.value, "?"),
                    }
                    for one, pupil in reports.register_pupils(session, stage.value, school)
                ]
            elif name is Report.REGISTER:
                rows += reports.register(session, school)
            elif name is Report.REVIEWS:
                rows += reports.reviews(session, now, days, school)
            else:
                rows += [
                    {"school": school, **r} for r in reports.time_in_stage(session, now, school)
                ]
    return rows
