"""The read model's lists for staff pages: a setting's register (searchable, a page at a time),
its reviews, consultations awaiting parents, referrals waiting, a specialist's referrals and
an authority's EHC caseload. One query per list: never a question to each journey."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records import models as m
from records.reports import CENSUS_CODES

#: Stages that put a pupil on the SEN register (both Codes).
REGISTER_ORDER = (
    "school_action",
    "school_action_plus",
    "statutory_assessment",
    "sen_support",
    "ehc_needs_assessment",
    "ehc_plan",
)
EHC_STAGES = ("ehc_needs_assessment", "ehc_plan", "statutory_assessment")


@dataclass(frozen=True)
class Entry:
    journey_id: str
    pupil: str
    school: str
    stage: str
    stage_label: str
    phase: str
    census_code: str
    next_review_date: date | None
    next_review_at: datetime | None
    overdue: bool


def _entry(j: m.Journey) -> Entry:
    return Entry(
        journey_id=j.workflow_id,
        pupil=j.pupil_id,
        school=j.school_id,
        stage=j.stage,
        stage_label=j.stage_label,
        phase=j.phase,
        census_code=CENSUS_CODES.get(j.stage, "?"),
        next_review_date=j.next_review_date,
        next_review_at=j.next_review_at,
        overdue=j.overdue,
    )


def register(
    session: Session,
    schools: Collection[str],
    *,
    search: str = "",
    stage: str | None = None,
    offset: int = 0,
    limit: int = 25,
) -> tuple[list[Entry], int]:
    """Open journeys of ``schools`` (monitoring included), by stage then pupil; the total."""
    query = select(m.Journey).where(
        m.Journey.closed_at.is_(None), m.Journey.school_id.in_(list(schools))
    )
    if search:
        query = query.where(m.Journey.pupil_id.contains(search, autoescape=True))
    if stage:
        query = query.where(m.Journey.stage == stage)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(m.Journey.stage, m.Journey.pupil_id).offset(offset).limit(limit)
    )
    return [_entry(j) for j in rows], total


def counts_by_stage(session: Session, schools: Collection[str]) -> list[tuple[str, str, int]]:
    """(stage, census code, pupils) of the open journeys."""
    query = (
        select(m.Journey.stage, func.count())
        .where(m.Journey.closed_at.is_(None), m.Journey.school_id.in_(list(schools)))
        .group_by(m.Journey.stage)
    )
    found = dict(session.execute(query).tuples().all())
    order = ["monitoring", *REGISTER_ORDER]
    return [
        (stage, CENSUS_CODES.get(stage, "?"), int(found[stage]))
        for stage in sorted(found, key=lambda s: order.index(s) if s in order else 99)
    ]


def with_reviews(session: Session, schools: Collection[str]) -> list[Entry]:
    """Open journeys with a review date, soonest (and overdue) first."""
    query = (
        select(m.Journey)
        .where(
            m.Journey.closed_at.is_(None),
            m.Journey.school_id.in_(list(schools)),
            m.Journey.next_review_at.is_not(None),
        )
        .order_by(m.Journey.next_review_at)
    )
    return [_entry(j) for j in session.scalars(query)]


@dataclass(frozen=True)
class Awaiting:
    journey_id: str
    pupil: str
    consultation_id: str
    subject: str
    deadline: datetime
    reminder_sent: bool


def consultations_awaiting(session: Session, schools: Collection[str]) -> list[Awaiting]:
    query = (
        select(m.Consultation, m.Journey.pupil_id)
        .join(m.Journey, m.Journey.workflow_id == m.Consultation.workflow_id)
        .where(m.Consultation.status == "open", m.Journey.school_id.in_(list(schools)))
        .order_by(m.Consultation.deadline)
    )
    return [
        Awaiting(c.workflow_id, pupil, c.consultation_id, c.subject, c.deadline, c.reminder_sent)
        for c, pupil in session.execute(query).tuples()
    ]


@dataclass(frozen=True)
class Waiting:
    journey_id: str
    pupil: str
    school: str
    referral_id: str
    kind: str
    specialist_id: str
    requested_at: datetime
    status: str
    chases: int
    completed_at: datetime | None


def referrals(
    session: Session,
    *,
    schools: Collection[str] | None = None,
    specialist_id: str | None = None,
    open_only: bool = True,
) -> list[Waiting]:
    """Referrals of the settings' pupils, or those made to one specialist; oldest first."""
    query = select(m.Referral, m.Journey.pupil_id, m.Journey.school_id).join(
        m.Journey, m.Journey.workflow_id == m.Referral.workflow_id
    )
    if schools is not None:
        query = query.where(m.Journey.school_id.in_(list(schools)))
    if specialist_id is not None:
        query = query.where(m.Referral.specialist_id == specialist_id)
    if open_only:
        query = query.where(m.Referral.status == "open")
    return [
        Waiting(
            r.workflow_id,
            pupil,
            school,
            r.referral_id,
            r.kind,
            r.specialist_id,
            r.requested_at,
            r.status,
            r.chases,
            r.completed_at,
        )
        for r, pupil, school in session.execute(query.order_by(m.Referral.requested_at)).tuples()
    ]


def ehc_caseload(session: Session, schools: Collection[str]) -> list[Entry]:
    """Open journeys at a statutory stage (an EHC needs assessment or plan)."""
    query = (
        select(m.Journey)
        .where(
            m.Journey.closed_at.is_(None),
            m.Journey.school_id.in_(list(schools)),
            m.Journey.stage.in_(EHC_STAGES),
        )
        .order_by(m.Journey.school_id, m.Journey.pupil_id)
    )
    return [_entry(j) for j in session.scalars(query)]
