"""Users and their bearer tokens, in the read-model database.

Not part of the read model proper: nothing here comes from Temporal, so these tables have
their own metadata and ``senflow records rebuild`` (which drops and rebuilds the read model's
tables) leaves them alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from records.models import NAMING_CONVENTION, Code, Id, UtcDateTime


class AccessBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiUser(AccessBase):
    """A person who signs in to the API: their opaque id is the actor recorded in history."""

    __tablename__ = "api_users"
    user_id: Mapped[str] = mapped_column(Id, primary_key=True)
    role: Mapped[str] = mapped_column(Code)
    #: The schools they act for (an admin's: their local authority's schools).
    schools: Mapped[list[str]] = mapped_column(JSON)
    #: Where their sign-in links go (the web app signs people in by it).
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ApiToken(AccessBase):
    """A bearer token: a user's, or a parent's single-purpose one for one consultation."""

    __tablename__ = "api_tokens"
    token_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(
        Id, ForeignKey("api_users.user_id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(Code)
    actor_id: Mapped[str] = mapped_column(Id)
    schools: Mapped[list[str]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: A parent's token answers one consultation of one journey, nothing else.
    workflow_id: Mapped[str | None] = mapped_column(Id)
    consultation_id: Mapped[str | None] = mapped_column(Id)


class JourneyRef(AccessBase):
    """Which setting knows a journey by which of its own pupil references.

    Written before the journey's workflow starts (and removed again if the start fails), so
    the unique index over open journeys is what stops one setting opening two journeys for
    one pupil. Two settings may each use the same reference. Not projected from Temporal:
    ``records rebuild`` keeps it; a purge deletes it with the journey's other rows.
    """

    __tablename__ = "journey_refs"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)  # the journey id
    setting_id: Mapped[str] = mapped_column(Id)
    reference: Mapped[str] = mapped_column(Id)
    #: starting (row written, workflow not yet confirmed), open, closed
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index(
            "uq_journey_refs_open",
            "setting_id",
            "reference",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )


class SignInLink(AccessBase):
    """A one-time sign-in link emailed to a user. Only a hash of its secret is kept; it works
    once, for minutes."""

    __tablename__ = "web_sign_in_links"
    link_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        Id, ForeignKey("api_users.user_id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WebSession(AccessBase):
    """A signed-in browser: the cookie holds a secret, this row its hash. A user's session
    ends when the user is revoked (checked on every request); a parent's when their letter's
    code is revoked or expires."""

    __tablename__ = "web_sessions"
    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: A staff user's id; None for a parent (who signs in with a letter's code).
    user_id: Mapped[str | None] = mapped_column(
        Id, ForeignKey("api_users.user_id", ondelete="CASCADE"), index=True
    )
    #: A parent's session: the reply code's token row (its revocation ends the session).
    token_id: Mapped[str | None] = mapped_column(String(16))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class FormUse(AccessBase):
    """Each rendered form carries a key; the first submission claims it, so a form sent twice
    (a double click, a resend) acts once."""

    __tablename__ = "web_form_uses"
    form_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime] = mapped_column(UtcDateTime())
