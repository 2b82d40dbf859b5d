"""The archive's tables, in the records database but outside the read model's metadata.

They have their own ``MetaData`` on purpose: ``senflow records rebuild`` drops and recreates
every read-model table (``records.models.Base``) — it must never drop the archive, which
holds the only copy of histories Temporal has already deleted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from records.models import NAMING_CONVENTION, Code, Id, UtcDateTime


class ArchiveBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ArchivedRun(ArchiveBase):
    """One run's full event history, as Temporal's JSON, gzip-compressed.

    The primary key is what makes two archivers safe at once: a run is inserted only if
    absent, and marked archived (``archived_at``) only after it was read back and its
    SHA-256 matched.
    """

    __tablename__ = "archived_runs"
    workflow_id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(Id, primary_key=True)
    #: The journey this run belongs to: the first run of its continue-as-new chain.
    first_run_id: Mapped[str] = mapped_column(Id, index=True)
    #: The run it continued as, when it continued as new.
    next_run_id: Mapped[str | None] = mapped_column(Id)
    status: Mapped[str] = mapped_column(Code)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    events: Mapped[int] = mapped_column(Integer)
    #: Bytes of the history JSON, and of what is stored (gzip).
    size: Mapped[int] = mapped_column(Integer)
    stored_size: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the history JSON (before compression), hex.
    sha256: Mapped[str] = mapped_column(String(64))
    #: "db" (``content`` holds the bytes) or the object's URL (file:///...).
    location: Mapped[str] = mapped_column(String(1000))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    written_at: Mapped[datetime] = mapped_column(UtcDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: The pass that verified it: the archiver workflow's id, or cli-<uuid>.
    archived_by: Mapped[str | None] = mapped_column(String(200))


class PurgeLogEntry(ArchiveBase):
    """Who erased a pupil's records, when and why — and nothing that identifies the pupil.

    ``pupil_ref`` is HMAC-SHA256(SENFLOW_PURGE_KEY, pupil id): whoever holds the key can
    answer "was this pupil purged?"; the log alone names no one.
    """

    __tablename__ = "purge_log"
    purge_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pupil_ref: Mapped[str] = mapped_column(String(64), index=True)
    actor_id: Mapped[str] = mapped_column(Id)
    actor_role: Mapped[str] = mapped_column(Code)
    reason: Mapped[str] = mapped_column(Code)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    archived_runs: Mapped[int] = mapped_column(Integer, default=0)
    read_model_rows: Mapped[int] = mapped_column(Integer, default=0)
    temporal_runs: Mapped[int] = mapped_column(Integer, default=0)
    letters: Mapped[int] = mapped_column(Integer, default=0)
