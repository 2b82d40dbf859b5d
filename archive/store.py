"""The archive: closed runs' histories kept in the records database (or an object store)
long after Temporal's retention has deleted them.

A run is stored as Temporal's own JSON history (what ``senflow export`` and
``temporal workflow show -o json`` write), gzip-compressed, with the SHA-256 of the JSON.
Payloads are stored exactly as Temporal holds them: if a payload codec encrypts them, the
archive holds ciphertext too — nothing here decodes a payload.

Safe with any number of archivers at once: a run's row is inserted only if absent (the
primary key decides), read back and hash-checked, and only then marked archived with a
conditional update that exactly one pass wins.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import Engine, Table, delete, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from archive.blobs import BlobStore, blob_store
from archive.models import ArchivedRun, PurgeLogEntry
from domain.commands import Refused
from records.db import make_engine, sessions

#: The event that closes a run, and the status the archive records for it.
CLOSE_EVENTS: dict[int, str] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
}


class ArchiveError(Refused):
    """The archive cannot give what was asked, for a reason a person must look at (the CLI
    shows it and exits 1, as for any refusal)."""


class ArchiveCorrupt(ArchiveError):
    """Stored bytes no longer match their SHA-256."""


class MissingPurgeKey(ArchiveError):
    """The purge log has entries but this process was not given SENFLOW_PURGE_KEY."""


_NEED_KEY = (
    "the purge log is not empty: the archiver needs SENFLOW_PURGE_KEY to tell a purged "
    "pupil's runs from others"
)


@dataclass(frozen=True)
class Packed:
    """One closed run, ready to store."""

    workflow_id: str
    run_id: str
    first_run_id: str
    next_run_id: str | None
    status: str
    started_at: datetime
    closed_at: datetime
    events: int
    size: int
    sha256: str
    data: bytes  # gzip of the history JSON


def canonical_json(history: WorkflowHistory) -> bytes:
    """Temporal's JSON for a history, with sorted keys and no spaces: protobuf prints map
    fields in fill order, which differs between processes, so two archivers would otherwise
    store (and hash) the same history differently (measured)."""
    return json.dumps(
        json.loads(history.to_json()), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def pack(workflow_id: str, run_id: str, history: WorkflowHistory) -> Packed:
    """A closed run's history as archive bytes. Deterministic: the same history always packs
    to the same bytes (canonical JSON; gzip without a timestamp)."""
    events = history.events
    if not events or events[-1].event_type not in CLOSE_EVENTS:
        raise ValueError(f"{workflow_id} run {run_id} has not closed")
    started = events[0].workflow_execution_started_event_attributes
    last = events[-1]
    next_run = (
        last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        if last.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        else None
    )
    raw = canonical_json(history)
    return Packed(
        workflow_id=workflow_id,
        run_id=run_id,
        first_run_id=started.first_execution_run_id or run_id,
        next_run_id=next_run,
        status=CLOSE_EVENTS[last.event_type],
        started_at=events[0].event_time.ToDatetime(tzinfo=UTC),
        closed_at=last.event_time.ToDatetime(tzinfo=UTC),
        events=len(events),
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        data=gzip.compress(raw, mtime=0),
    )


def unpack(workflow_id: str, data: bytes, sha256: str) -> WorkflowHistory:
    raw = gzip.decompress(data)
    found = hashlib.sha256(raw).hexdigest()
    if found != sha256:
        raise ArchiveCorrupt(f"{workflow_id}: stored history hashes to {found}, not {sha256}")
    return WorkflowHistory.from_json(workflow_id, raw.decode())


def pupil_ref(key: str, pupil_id: str) -> str:
    """The purge log's opaque reference for a pupil: HMAC-SHA256, hex."""
    return hmac.new(key.encode(), pupil_id.encode(), hashlib.sha256).hexdigest()


@dataclass
class Chain:
    """One journey's runs in the archive, oldest first."""

    workflow_id: str
    first_run_id: str
    runs: list[tuple[str, WorkflowHistory]]


class Archive:
    """Archived runs in the records database; bytes there or in ``blobs``."""

    def __init__(
        self, engine: Engine, blobs: BlobStore | None = None, purge_key: str | None = None
    ) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = sessions(engine)
        self.blobs = blobs
        self.purge_key = purge_key

    def available(self) -> bool:
        """False until ``senflow records migrate`` has created the archive's tables."""
        return inspect(self.engine).has_table(ArchivedRun.__tablename__)

    # -- writing ---------------------------------------------------------------------------

    def archived(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (workflow id, run id) are archived (read back and verified)."""
        wanted = set(keys)
        by_workflow: dict[str, set[str]] = {}
        for wf, run in wanted:
            by_workflow.setdefault(wf, set()).add(run)
        found: set[tuple[str, str]] = set()
        ids = sorted(by_workflow)
        with self.sessions() as session:
            for i in range(0, len(ids), 500):
                rows = session.execute(
                    select(ArchivedRun.workflow_id, ArchivedRun.run_id).where(
                        ArchivedRun.workflow_id.in_(ids[i : i + 500]),
                        ArchivedRun.archived_at.is_not(None),
                    )
                )
                found |= {(wf, run) for wf, run in rows if (wf, run) in wanted}
        return found

    def store(self, packed: Packed, pass_id: str) -> str:
        """Insert if absent, read back, check the hash, then mark archived. Returns
        ``archived`` (this call marked it), ``already`` (another pass did), ``purged`` (the
        pupil was erased meanwhile; nothing kept) or ``failed: ...`` (nothing marked; the
        next pass tries again)."""
        wf, run = packed.workflow_id, packed.run_id
        self._purged(wf, packed.started_at)  # without the key, refuse before writing anything
        # the hash in the object's name: a copy written by another archiver can never
        # overwrite one already verified, even if it serialised the history differently
        key = f"{wf}/{run}.{packed.sha256[:16]}.json.gz"
        location = "db" if self.blobs is None else self.blobs.put(key, packed.data)
        with self.sessions.begin() as session:
            _insert_if_absent(
                session,
                {
                    "workflow_id": wf,
                    "run_id": run,
                    "first_run_id": packed.first_run_id,
                    "next_run_id": packed.next_run_id,
                    "status": packed.status,
                    "started_at": packed.started_at,
                    "closed_at": packed.closed_at,
                    "events": packed.events,
                    "size": packed.size,
                    "stored_size": len(packed.data),
                    "sha256": packed.sha256,
                    "location": location,
                    "content": packed.data if self.blobs is None else None,
                    "written_at": datetime.now(UTC),
                },
            )
        # A purge that committed its log entry before this check deletes nothing we wrote
        # after it; so look now, after our insert, and undo our own write (docs/decisions.md).
        try:
            purged = self._purged(wf, packed.started_at)
        except MissingPurgeKey:  # the first purge happened while we wrote
            purged = True
        if purged:
            self._discard(wf, run, only_unarchived=False)
            if self.blobs is not None:
                self.blobs.delete(key)
            if self.purge_key is None:
                raise MissingPurgeKey(_NEED_KEY)
            return "purged"
        try:
            stored_location = self._read_back(wf, run, packed.events)
        except (ArchiveError, OSError, ValueError) as err:
            self._discard(wf, run, only_unarchived=True)
            return f"failed: {err}"
        if self.blobs is not None and stored_location != location:
            self.blobs.delete(key)  # another archiver's copy is the one on record
        with self.sessions.begin() as session:
            marked = session.execute(
                update(ArchivedRun)
                .where(
                    ArchivedRun.workflow_id == wf,
                    ArchivedRun.run_id == run,
                    ArchivedRun.archived_at.is_(None),
                )
                .values(archived_at=datetime.now(UTC), archived_by=pass_id)
            )
        if _rowcount(marked) == 1:
            return "archived"
        if self.archived([(wf, run)]):
            return "already"
        return "failed: the row was discarded by another pass before it was marked"

    def _read_back(self, wf: str, run: str, events: int) -> str:
        """Read the row on record back (ours, or another archiver's) and check its bytes
        against its own hash. Returns where its bytes are."""
        with self.sessions() as session:
            row = session.get(ArchivedRun, (wf, run))
            if row is None:
                raise ArchiveError(f"{wf} run {run}: the row vanished before it was verified")
            history = unpack(wf, self._bytes(row), row.sha256)
            if len(history.events) != events or row.events != events:
                raise ArchiveCorrupt(f"{wf} run {run}: {len(history.events)} events read back")
            return row.location

    def _discard(self, wf: str, run: str, only_unarchived: bool) -> None:
        """Delete the run's row (only while unmarked, unless told) and the object it names."""
        with self.sessions.begin() as session:
            query = delete(ArchivedRun).where(
                ArchivedRun.workflow_id == wf, ArchivedRun.run_id == run
            )
            if only_unarchived:
                query = query.where(ArchivedRun.archived_at.is_(None))
            gone = session.execute(query.returning(ArchivedRun.location)).scalars().all()
        for location in gone:
            if location.startswith("file:"):
                Path(unquote(urlparse(location).path)).unlink(missing_ok=True)

    def _purged(self, wf: str, started_at: datetime) -> bool:
        with self.sessions() as session:
            if session.scalar(select(func.count()).select_from(PurgeLogEntry)) == 0:
                return False
            if self.purge_key is None:
                raise MissingPurgeKey(_NEED_KEY)
            ref = pupil_ref(self.purge_key, wf.removeprefix("pupil-"))
            later = session.scalar(
                select(func.count())
                .select_from(PurgeLogEntry)
                .where(PurgeLogEntry.pupil_ref == ref, PurgeLogEntry.started_at > started_at)
            )
            return bool(later)

    # -- reading ---------------------------------------------------------------------------

    def _bytes(self, row: ArchivedRun) -> bytes:
        if row.location == "db":
            if row.content is None:
                raise ArchiveCorrupt(f"{row.workflow_id} run {row.run_id}: no content stored")
            return row.content
        if row.location.startswith("file:"):
            # where this run was written, even if SENFLOW_ARCHIVE_URL has changed since
            return Path(unquote(urlparse(row.location).path)).read_bytes()
        if self.blobs is None:
            raise ArchiveError(f"{row.location}: no object store configured to read it from")
        return self.blobs.get(row.location)

    def history(self, workflow_id: str, run_id: str) -> WorkflowHistory | None:
        """An archived run's history, hash-checked; None when it is not archived."""
        with self.sessions() as session:
            row = session.get(ArchivedRun, (workflow_id, run_id))
            if row is None or row.archived_at is None:
                return None
            return unpack(workflow_id, self._bytes(row), row.sha256)

    def latest_chain(self, workflow_id: str) -> Chain | None:
        """The latest journey under this workflow id, every run of it, oldest first."""
        with self.sessions() as session:
            rows = list(
                session.scalars(
                    select(ArchivedRun).where(
                        ArchivedRun.workflow_id == workflow_id,
                        ArchivedRun.archived_at.is_not(None),
                    )
                )
            )
        if not rows:
            return None
        latest = max(rows, key=lambda r: r.started_at)
        by_run = {r.run_id: r for r in rows if r.first_run_id == latest.first_run_id}
        runs: list[tuple[str, WorkflowHistory]] = []
        run_id: str | None = latest.first_run_id
        while run_id is not None:
            row = by_run.get(run_id)
            if row is None:
                raise ArchiveError(
                    f"{workflow_id}: run {run_id} of this journey is in neither Temporal "
                    "nor the archive"
                )
            runs.append((run_id, unpack(workflow_id, self._bytes(row), row.sha256)))
            run_id = row.next_run_id
        return Chain(workflow_id, latest.first_run_id, runs)

    def latest_runs(self, workflow_id: str) -> list[tuple[str, WorkflowHistory]] | None:
        chain = self.latest_chain(workflow_id)
        return None if chain is None else chain.runs

    def journey_ids(self) -> list[str]:
        with self.sessions() as session:
            return sorted(
                session.scalars(
                    select(ArchivedRun.workflow_id)
                    .where(ArchivedRun.archived_at.is_not(None))
                    .distinct()
                )
            )

    def runs_of(self, workflow_id: str) -> list[ArchivedRun]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ArchivedRun)
                    .where(ArchivedRun.workflow_id == workflow_id)
                    .order_by(ArchivedRun.started_at)
                )
            )

    def totals(self) -> dict[str, int]:
        with self.sessions() as session:
            runs, journeys, size, stored = session.execute(
                select(
                    func.count(),
                    func.count(func.distinct(ArchivedRun.first_run_id)),
                    func.coalesce(func.sum(ArchivedRun.size), 0),
                    func.coalesce(func.sum(ArchivedRun.stored_size), 0),
                ).where(ArchivedRun.archived_at.is_not(None))
            ).one()
        return {"runs": runs, "journeys": journeys, "bytes": int(size), "stored_bytes": int(stored)}

    def check_all(self) -> list[str]:
        """Fixity: read every archived run back and check its hash. Returns the problems."""
        problems = []
        with self.sessions() as session:
            keys = session.execute(
                select(ArchivedRun.workflow_id, ArchivedRun.run_id).where(
                    ArchivedRun.archived_at.is_not(None)
                )
            ).all()
        for wf, run in keys:
            try:
                self.history(wf, run)
            except (ArchiveError, OSError, ValueError) as err:
                problems.append(f"{wf} run {run}: {err}")
        return problems


def _insert_if_absent(session: Session, values: dict[str, Any]) -> bool:
    table = ArchivedRun.__table__
    assert isinstance(table, Table)
    keys = ["workflow_id", "run_id"]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = (
            postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
    else:  # any other database: the primary key still refuses the second insert
        try:
            with session.begin_nested():
                session.execute(table.insert().values(values))
            return True
        except IntegrityError:
            return False
    return _rowcount(session.execute(stmt)) == 1


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def open_archive(database_url: str, archive_url: str, purge_key: str | None) -> Archive:
    return Archive(make_engine(database_url), blob_store(archive_url), purge_key)


def archive_reader(database_url: str, archive_url: str) -> Archive | None:
    """The archive for auditors' reads, or None when there is none yet (no database file,
    or not migrated) — never creating one as a side effect of a read."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return None
    archive = Archive(make_engine(database_url), blob_store(archive_url))
    return archive if archive.available() else None
