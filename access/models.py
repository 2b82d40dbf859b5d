"""Users and their bearer tokens, in the read-model database.

Not part of the read model proper: nothing here comes from Temporal, so these tables have
their own metadata and ``senflow records rebuild`` (which drops and rebuilds the read model's
tables) leaves them alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, MetaData, String
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
