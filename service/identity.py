"""Which journey a setting means by its pupil reference: the ``journey_refs`` table.

A journey has an opaque id of its own (``journey-<random>``). It belongs to a setting, which
knows the pupil by its own reference; (setting, reference) has at most one open journey,
enforced by a unique index over the open rows. Journeys started before this table existed
are called ``pupil-<reference>`` and have no row: ``service.journeys`` asks Temporal for those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from access.models import JourneyRef

STARTING, OPEN, CLOSED = "starting", "open", "closed"


@dataclass(frozen=True)
class Held:
    """The row that already holds (setting, reference) open."""

    journey_id: str
    status: str
    created_at: datetime


class Taken(Exception):
    def __init__(self, held: Held) -> None:
        super().__init__(held.journey_id)
        self.held = held


def reserve(
    factory: sessionmaker[Session], journey_id: str, setting: str, reference: str, now: datetime
) -> None:
    """Write the row before the workflow starts. ``Taken`` if the setting already has an
    open (or starting) journey for that reference."""
    try:
        with factory.begin() as session:
            session.add(
                JourneyRef(
                    workflow_id=journey_id,
                    setting_id=setting,
                    reference=reference,
                    status=STARTING,
                    created_at=now,
                )
            )
    except IntegrityError:
        held = _open_row(factory, setting, reference)
        if held is None:  # closed between the insert and this read: the caller tries again
            raise Taken(Held("", CLOSED, now)) from None
        raise Taken(held) from None


def _open_row(factory: sessionmaker[Session], setting: str, reference: str) -> Held | None:
    with factory() as session:
        row = session.scalars(
            select(JourneyRef).where(
                JourneyRef.setting_id == setting,
                JourneyRef.reference == reference,
                JourneyRef.status != CLOSED,
            )
        ).first()
        return None if row is None else Held(row.workflow_id, row.status, row.created_at)


def confirm(factory: sessionmaker[Session], journey_id: str) -> None:
    """The workflow started: the row is open."""
    with factory.begin() as session:
        session.execute(
            update(JourneyRef)
            .where(JourneyRef.workflow_id == journey_id, JourneyRef.status == STARTING)
            .values(status=OPEN)
        )


def release(factory: sessionmaker[Session], journey_id: str) -> None:
    """The start failed (or never happened): the reference is free again."""
    with factory.begin() as session:
        session.execute(
            delete(JourneyRef).where(
                JourneyRef.workflow_id == journey_id, JourneyRef.status == STARTING
            )
        )


def mark_closed(factory: sessionmaker[Session], journey_id: str, now: datetime) -> None:
    """The journey's workflow has closed: the setting may start another for the pupil."""
    with factory.begin() as session:
        session.execute(
            update(JourneyRef)
            .where(JourneyRef.workflow_id == journey_id, JourneyRef.status != CLOSED)
            .values(status=CLOSED, closed_at=now)
        )


def find(factory: sessionmaker[Session], setting: str, reference: str) -> str | None:
    """The journey the setting means by the reference: the open one, else the latest."""
    with factory() as session:
        found: str | None = session.scalars(
            select(JourneyRef.workflow_id)
            .where(JourneyRef.setting_id == setting, JourneyRef.reference == reference)
            .order_by(case((JourneyRef.status == CLOSED, 1), else_=0), JourneyRef.created_at.desc())
        ).first()
        return found


@dataclass(frozen=True)
class Place:
    setting: str
    reference: str
    status: str


def place_of(factory: sessionmaker[Session], journey_id: str) -> Place | None:
    """The setting that holds the journey and its reference there; None without a row."""
    with factory() as session:
        row = session.get(JourneyRef, journey_id)
        return None if row is None else Place(row.setting_id, row.reference, row.status)


def references(factory: sessionmaker[Session], journey_ids: list[str]) -> dict[str, str]:
    """journey id → the holding setting's reference, for listing many at once."""
    if not journey_ids:
        return {}
    with factory() as session:
        rows = session.execute(
            select(JourneyRef.workflow_id, JourneyRef.reference).where(
                JourneyRef.workflow_id.in_(journey_ids)
            )
        )
        return {journey: reference for journey, reference in rows}
