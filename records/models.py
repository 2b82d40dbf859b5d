"""The read model: a SQL projection of every journey, for admins' questions across pupils.

Temporal stays the source of truth; every row here can be rebuilt from it
(``senflow records rebuild``). Keys are the workflow id plus the journey's own ids and steps,
so writing the same change twice leaves one row.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = String(80)
Code = String(40)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the read model stores instants in UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Pupil(Base):
    """Opaque id, school, birth month and year only: never a name or a full date of birth.
    The id is the school's own reference, so it is unique only within its school."""

    __tablename__ = "pupils"
    pupil_id: Mapped[str] = mapped_column(Id, primary_key=True)
    school_id: Mapped[str] = mapped_column(Id, primary_key=True, index=True)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    birth_month: Mapped[int | None] = mapped_column(Integer)
    year_group: Mapped[str | None] = mapped_column(Code)


class Journey(Base):
    __tablename__ = "journeys"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    pupil_id: Mapped[str] = mapped_column(Id, index=True)
    school_id: Mapped[str] = mapped_column(Id, index=True)
    policy: Mapped[str] = mapped_column(Code)
    stage: Mapped[str] = mapped_column(Code, index=True)
    stage_label: Mapped[str] = mapped_column(Code)
    phase: Mapped[str] = mapped_column(Code)
    early_years: Mapped[bool] = mapped_column(Boolean)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    close_reason: Mapped[str | None] = mapped_column(Code)
    next_review_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_review_date: Mapped[date | None] = mapped_column(Date)
    overdue: Mapped[bool] = mapped_column(Boolean)
    #: The highest journey step written: replays and retries below it change nothing.
    last_step: Mapped[int] = mapped_column(Integer)


class StageChange(Base):
    __tablename__ = "stage_changes"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_stage: Mapped[str] = mapped_column(Code)
    to_stage: Mapped[str] = mapped_column(Code)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_id: Mapped[str] = mapped_column(Id)
    role: Mapped[str] = mapped_column(Code)
    action: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    triggers: Mapped[list[str]] = mapped_column(JSON)


class Iep(Base):
    __tablename__ = "ieps"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    iep_id: Mapped[str] = mapped_column(Id, primary_key=True)
    stage: Mapped[str] = mapped_column(Code)
    agreed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    review_date: Mapped[date] = mapped_column(Date)
    strategies: Mapped[list[str]] = mapped_column(JSON)
    provision: Mapped[list[str]] = mapped_column(JSON)
    responsible: Mapped[list[str]] = mapped_column(JSON)


class IepTarget(Base):
    __tablename__ = "iep_targets"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    iep_id: Mapped[str] = mapped_column(Id, primary_key=True)
    target_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    success_criterion: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        ForeignKeyConstraint(
            ["workflow_id", "iep_id"], ["ieps.workflow_id", "ieps.iep_id"], ondelete="CASCADE"
        ),
    )


class Review(Base):
    __tablename__ = "reviews"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    review_id: Mapped[str] = mapped_column(Id, primary_key=True)
    iep_id: Mapped[str] = mapped_column(Id)
    stage: Mapped[str] = mapped_column(Code)
    outcome: Mapped[str] = mapped_column(Code)
    held_at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_id: Mapped[str] = mapped_column(Id)
    role: Mapped[str] = mapped_column(Code)
    notes: Mapped[str] = mapped_column(Text)


class ReviewProgress(Base):
    __tablename__ = "review_progress"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    review_id: Mapped[str] = mapped_column(Id, primary_key=True)
    target_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    progress: Mapped[str] = mapped_column(Text)
    met: Mapped[bool] = mapped_column(Boolean)
    __table_args__ = (
        ForeignKeyConstraint(
            ["workflow_id", "review_id"],
            ["reviews.workflow_id", "reviews.review_id"],
            ondelete="CASCADE",
        ),
    )


class Consultation(Base):
    __tablename__ = "consultations"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    consultation_id: Mapped[str] = mapped_column(Id, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deadline: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(Code)
    reminder_sent: Mapped[bool] = mapped_column(Boolean)


class ConsultationResponse(Base):
    __tablename__ = "consultation_responses"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    consultation_id: Mapped[str] = mapped_column(Id, primary_key=True)
    parent_id: Mapped[str] = mapped_column(Id, primary_key=True)
    reply: Mapped[str] = mapped_column(Code)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    __table_args__ = (
        ForeignKeyConstraint(
            ["workflow_id", "consultation_id"],
            ["consultations.workflow_id", "consultations.consultation_id"],
            ondelete="CASCADE",
        ),
    )


class Referral(Base):
    __tablename__ = "referrals"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    referral_id: Mapped[str] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(Code, index=True)
    specialist_id: Mapped[str] = mapped_column(Id)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(Code)
    chases: Mapped[int] = mapped_column(Integer)


class MessageSent(Base):
    __tablename__ = "messages_sent"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    notice_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(Code)
    recipient_role: Mapped[str] = mapped_column(Code)
    recipient_id: Mapped[str] = mapped_column(Id)
    message_id: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    channel: Mapped[str] = mapped_column(Code, server_default="outbox")


class Contact(Base):
    """How to reach a parent, carer, specialist or member of staff, by opaque id.

    Kept here, outside Temporal: names and addresses never enter a workflow history.
    """

    __tablename__ = "contacts"
    contact_id: Mapped[str] = mapped_column(Id, primary_key=True)
    role: Mapped[str] = mapped_column(Code)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))


#: Everything ``records rebuild`` may empty and write again from Temporal's histories. Any
#: other table (contacts, users and tokens, the archive) holds what Temporal never had.
PROJECTED_TABLES = frozenset(
    {
        "pupils",
        "journeys",
        "stage_changes",
        "ieps",
        "iep_targets",
        "reviews",
        "review_progress",
        "consultations",
        "consultation_responses",
        "referrals",
        "messages_sent",
    }
)
