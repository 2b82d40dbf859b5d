"""Admin reports over the read model. Each returns plain rows (dicts) for table, JSON or CSV."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.model import CENSUS_CODES as DOMAIN_CENSUS_CODES
from domain.model import REGISTER_STAGES
from records import models as m

#: School census SEN provision codes by stage: N/A/P/S under the 2001 Code (S: statement or
#: statutory assessment), N/K/E under the 2014 Code (see domain.model.CENSUS_CODES).
CENSUS_CODES = {stage.value: code for stage, code in DOMAIN_CENSUS_CODES.items()}
REGISTER = tuple(stage.value for stage in REGISTER_STAGES)
MONTHS = ("Sep", "Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug")

Row = dict[str, Any]


def register(session: Session, school: str | None = None) -> list[Row]:
    """Open journeys by school and stage, with the census provision code."""
    query = (
        select(m.Journey.school_id, m.Journey.stage, func.count())
        .where(m.Journey.closed_at.is_(None))
        .group_by(m.Journey.school_id, m.Journey.stage)
        .order_by(m.Journey.school_id, m.Journey.stage)
    )
    if school is not None:
        query = query.where(m.Journey.school_id == school)
    return [
        {"school": s, "stage": stage, "census_code": CENSUS_CODES.get(stage, "?"), "pupils": n}
        for s, stage, n in session.execute(query)
    ]


def register_pupils(
    session: Session, stage: str, school: str | None = None
) -> list[tuple[str, str]]:
    """(school, pupil) for every open journey at ``stage``."""
    query = select(m.Journey.school_id, m.Journey.pupil_id).where(
        m.Journey.closed_at.is_(None), m.Journey.stage == stage
    )
    if school is not None:
        query = query.where(m.Journey.school_id == school)
    return sorted((s, p) for s, p in session.execute(query))


def reviews(
    session: Session, now: datetime, days: int = 14, school: str | None = None
) -> list[Row]:
    """Overdue reviews, reviews due now, and those due in the next ``days`` days."""
    horizon = now + timedelta(days=days)
    query = select(m.Journey).where(
        m.Journey.closed_at.is_(None), m.Journey.next_review_at.is_not(None)
    )
    if school is not None:
        query = query.where(m.Journey.school_id == school)
    rows = []
    for j in session.scalars(query):
        assert j.next_review_at is not None
        if j.overdue:
            status = "overdue"
        elif j.next_review_at <= now:
            status = "due"
        elif j.next_review_at <= horizon:
            status = "upcoming"
        else:
            continue
        rows.append(
            {
                "pupil": j.pupil_id,
                "school": j.school_id,
                "stage": j.stage,
                "review_date": j.next_review_date.isoformat() if j.next_review_date else None,
                "status": status,
                "days_until": (j.next_review_at - now).days,
            }
        )
    order = {"overdue": 0, "due": 1, "upcoming": 2}
    return sorted(rows, key=lambda r: (order[r["status"]], r["days_until"], r["pupil"]))


def referral_waits(
    session: Session, now: datetime, schools: Collection[str] | None = None
) -> list[Row]:
    """Waiting times by specialist kind: completed (median, 90th percentile) and still open.
    ``schools``: only referrals of those schools' pupils (an admin's local authority)."""
    waits: dict[str, list[float]] = defaultdict(list)
    open_waits: dict[str, list[float]] = defaultdict(list)
    query = select(m.Referral)
    if schools is not None:
        query = query.join(m.Journey, m.Journey.workflow_id == m.Referral.workflow_id).where(
            m.Journey.school_id.in_(list(schools))
        )
    for r in session.scalars(query):
        if r.completed_at is not None:
            waits[r.kind].append(_days(r.completed_at - r.requested_at))
        elif r.status == "open":
            open_waits[r.kind].append(_days(now - r.requested_at))
    return [
        {
            "kind": kind,
            "completed": len(waits[kind]),
            "median_days": _round(percentile(waits[kind], 50)),
            "p90_days": _round(percentile(waits[kind], 90)),
            "open": len(open_waits[kind]),
            "longest_open_days": _round(max(open_waits[kind], default=None)),
        }
        for kind in sorted(set(waits) | set(open_waits))
    ]


def time_in_stage(session: Session, now: datetime, school: str | None = None) -> list[Row]:
    """How long journeys spend in each stage (finished spells and spells still running)."""
    spells: dict[str, list[float]] = defaultdict(list)
    changes: dict[str, list[m.StageChange]] = defaultdict(list)
    for c in session.scalars(select(m.StageChange).order_by(m.StageChange.step)):
        changes[c.workflow_id].append(c)
    query = select(m.Journey)
    if school is not None:
        query = query.where(m.Journey.school_id == school)
    for j in session.scalars(query):
        stage, since = "monitoring", j.opened_at
        for c in changes[j.workflow_id]:
            spells[stage].append(_days(c.at - since))
            stage, since = c.to_stage, c.at
        if stage != "closed":
            spells[stage].append(_days((j.closed_at or now) - since))
    return [
        {
            "stage": stage,
            "spells": len(spells[stage]),
            "median_days": _round(percentile(spells[stage], 50)),
            "mean_days": _round(sum(spells[stage]) / len(spells[stage])),
            "longest_days": _round(max(spells[stage])),
        }
        for stage in ("monitoring", *REGISTER)
        if spells[stage]
    ]


def identification_by_birth_month(session: Session) -> list[Row]:
    """Pupils ever placed at School Action or above, by birth month in the school year
    (September = 1 … August = 12), per school and overall, among pupils with a journey."""
    # (school, pupil): a pupil reference is the school's own, so only the pair is unique
    pupil = (m.Journey.school_id, m.Journey.pupil_id)
    ever = {
        (school, ref)
        for school, ref in session.execute(
            select(*pupil)
            .join(m.StageChange, m.StageChange.workflow_id == m.Journey.workflow_id)
            .where(m.StageChange.to_stage.in_(REGISTER))
        )
    }
    ever |= {
        (school, ref)
        for school, ref in session.execute(select(*pupil).where(m.Journey.stage.in_(REGISTER)))
    }
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for p in session.scalars(select(m.Pupil).where(m.Pupil.birth_month.is_not(None))):
        assert p.birth_month is not None
        month = school_year_month(p.birth_month)
        for school in (p.school_id, "ALL"):
            counts[(school, month)][0] += 1
            counts[(school, month)][1] += (p.school_id, p.pupil_id) in ever
    return [
        {
            "school": school,
            "month": month,
            "month_name": MONTHS[month - 1],
            "pupils": total,
            "identified": identified,
            "rate": round(identified / total, 3) if total else None,
        }
        for (school, month), (total, identified) in sorted(
            counts.items(), key=lambda kv: (kv[0][0] == "ALL", kv[0][0], kv[0][1])
        )
    ]


def school_year_month(calendar_month: int) -> int:
    """September is month 1 of the school year, August month 12."""
    return (calendar_month - 9) % 12 + 1


def percentile(values: Iterable[float], pct: float) -> float | None:
    """Nearest-rank percentile (the value a person can point at in the data)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
