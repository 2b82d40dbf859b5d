"""The archive's storage on SQLite and PostgreSQL: compressed, hash-checked on read-back before
it is marked archived, one row per run whatever the number of archivers, and untouched by a
read-model rebuild. Histories are the committed golden ones (a two-run chain)."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from temporalio.client import WorkflowHistory

from archive.blobs import FileBlobStore, blob_store
from archive.models import ArchivedRun, PurgeLogEntry
from archive.store import (
    Archive,
    ArchiveCorrupt,
    ArchiveError,
    MissingPurgeKey,
    Packed,
    pack,
    pupil_ref,
)
from records.db import sessions
from records.sync import rebuild

HISTORIES = Path(__file__).parent.parent / "histories"
WF = "pupil-golden-1"


@functools.cache
def golden() -> tuple[Packed, Packed]:
    """The v3 golden journey's two runs (the first continued as new into the second)."""
    packed = []
    for name in ("v3_two_year_journey_run1", "v3_two_year_journey_run2"):
        history = WorkflowHistory.from_json(WF, (HISTORIES / f"{name}.json").read_text())
        packed.append(pack(WF, history.run_id, history))
    return packed[0], packed[1]


@pytest.fixture(params=["db", "file"])
def archive(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> Archive:
    blobs = FileBlobStore(tmp_path / "objects") if request.param == "file" else None
    return Archive(engine, blobs)


def rows(engine: Engine) -> list[ArchivedRun]:
    with sessions(engine)() as session:
        return list(session.scalars(select(ArchivedRun).order_by(ArchivedRun.started_at)))


def test_a_run_is_stored_compressed_and_reads_back_event_for_event(archive: Archive) -> None:
    first, second = golden()
    assert archive.store(first, "pass-1") == "archived"
    assert archive.store(first, "pass-2") == "already"  # a second pass changes nothing
    [row] = rows(archive.engine)
    assert (row.status, row.next_run_id, row.archived_by) == (
        "continued_as_new",
        second.run_id,
        "pass-1",
    )
    assert row.stored_size < row.size / 4  # gzip: histories are repetitive JSON
    assert row.archived_at is not None and row.sha256 == first.sha256
    original = WorkflowHistory.from_json(
        WF, (HISTORIES / "v3_two_year_journey_run1.json").read_text()
    )
    back = archive.history(WF, first.run_id)
    assert back is not None and list(back.events) == list(original.events)
    assert archive.archived([(WF, first.run_id), (WF, second.run_id)]) == {(WF, first.run_id)}


def test_packing_is_deterministic() -> None:
    # two archivers must produce the same bytes, or they could not agree on a hash
    first = golden()[0]
    history = WorkflowHistory.from_json(WF, gzip.decompress(first.data).decode())
    assert pack(WF, first.run_id, history) == first


def test_a_journey_is_assembled_from_its_archived_runs_in_order(engine: Engine) -> None:
    archive = Archive(engine)
    first, second = golden()
    archive.store(second, "p")  # order of archiving does not matter
    with pytest.raises(ArchiveError, match=f"run {first.run_id} .* neither Temporal nor"):
        archive.latest_chain(WF)  # half a journey is refused, not shown as a whole
    archive.store(first, "p")
    chain = archive.latest_chain(WF)
    assert chain is not None
    assert [run_id for run_id, _ in chain.runs] == [first.run_id, second.run_id]
    assert [len(h.events) for _, h in chain.runs] == [first.events, second.events]
    assert archive.journey_ids() == [WF]
    assert archive.totals()["runs"] == 2 and archive.totals()["journeys"] == 1


@pytest.mark.parametrize("objects", [False, True], ids=["in-db", "in-files"])
def test_two_archivers_at_once_store_each_run_exactly_once(
    engine: Engine, tmp_path: Path, objects: bool
) -> None:
    runs = golden()
    outcomes: list[str] = []
    engines: list[Engine] = []
    barrier = threading.Barrier(4)

    def archiver(name: str) -> None:
        # its own engine (its own connections), as a second process would have
        blobs = FileBlobStore(tmp_path / "objects") if objects else None
        engines.append(_same_database(engine))
        other = Archive(engines[-1], blobs)
        barrier.wait()
        for packed in runs:
            outcomes.append(other.store(packed, name))

    threads = [threading.Thread(target=archiver, args=(f"pass-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for e in engines:
        e.dispose()
    assert sorted(outcomes) == ["already"] * 6 + ["archived"] * 2
    stored = rows(engine)
    assert [r.run_id for r in stored] == [p.run_id for p in runs]
    assert all(r.archived_at is not None for r in stored)
    if objects:
        assert len(list((tmp_path / "objects" / WF).iterdir())) == 2  # one object per run


def _same_database(engine: Engine) -> Engine:
    from records.db import make_engine

    schema = engine.dialect.default_schema_name if engine.dialect.name == "postgresql" else None
    url = engine.url.render_as_string(hide_password=False)
    return make_engine(url, schema=schema)


def test_a_copy_that_does_not_read_back_is_never_marked_archived(archive: Archive) -> None:
    first, _ = golden()
    damaged = dataclasses.replace(first, sha256="0" * 64)  # what was written is not what hashed
    outcome = archive.store(damaged, "pass-1")
    assert outcome.startswith("failed:") and "hashes to" in outcome
    assert rows(archive.engine) == []  # nothing kept, nothing marked: the next pass retries
    assert archive.store(first, "pass-2") == "archived"


def test_damage_after_archiving_is_found_by_verify_and_refused_on_read(archive: Archive) -> None:
    first, _ = golden()
    archive.store(first, "p")
    [row] = rows(archive.engine)
    flipped = bytearray(gzip.decompress(first.data))
    flipped[len(flipped) // 2] ^= 1
    if row.location == "db":
        with sessions(archive.engine).begin() as session:
            session.execute(update(ArchivedRun).values(content=gzip.compress(bytes(flipped))))
    else:
        Path(row.location.removeprefix("file://")).write_bytes(gzip.compress(bytes(flipped)))
    [problem] = archive.check_all()
    assert first.run_id in problem and "hashes to" in problem
    with pytest.raises(ArchiveCorrupt):
        archive.history(WF, first.run_id)


def test_the_file_store_holds_plain_gzip_json_any_tool_can_read(
    engine: Engine, tmp_path: Path
) -> None:
    archive = Archive(engine, blob_store((tmp_path / "objects").as_uri()))
    first, _ = golden()
    archive.store(first, "p")
    [row] = rows(engine)
    assert row.content is None and row.location.startswith("file://")
    document = json.loads(gzip.decompress(Path(row.location.removeprefix("file://")).read_bytes()))
    assert len(document["events"]) == first.events
    assert document["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"


def test_payloads_are_stored_as_temporal_holds_them_never_decoded(engine: Engine) -> None:
    # an encrypting codec's ciphertext must stay ciphertext: bytes that are not even UTF-8
    archive = Archive(engine)
    first, _ = golden()
    history = WorkflowHistory.from_json(WF, gzip.decompress(first.data).decode())
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    payload.metadata["encoding"] = b"binary/encrypted"
    payload.data = bytes(range(256))
    archive.store(pack(WF, first.run_id, history), "p")
    back = archive.history(WF, first.run_id)
    assert back is not None
    stored = back.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert stored.data == bytes(range(256))
    assert stored.metadata["encoding"] == b"binary/encrypted"


def test_a_run_of_a_pupil_purged_meanwhile_is_not_kept(engine: Engine) -> None:
    first, _ = golden()
    with sessions(engine).begin() as session:
        session.add(
            PurgeLogEntry(
                purge_id="00000000-0000-0000-0000-000000000001",
                pupil_ref=pupil_ref("k", "golden-1"),
                actor_id="admin-1",
                actor_role="admin",
                reason="erasure-request",
                started_at=first.started_at + timedelta(days=400),
                archived_runs=0,
                read_model_rows=0,
                temporal_runs=0,
                letters=0,
            )
        )
    with pytest.raises(MissingPurgeKey):  # it cannot tell whose runs were purged
        Archive(engine).store(first, "no-key")
    assert Archive(engine, purge_key="k").store(first, "p") == "purged"
    assert rows(engine) == []
    # a journey the same pupil starts after the purge is archived as usual
    later = dataclasses.replace(first, started_at=first.started_at + timedelta(days=500))
    assert Archive(engine, purge_key="k").store(later, "p") == "archived"


def test_rebuilding_the_read_model_keeps_the_archive(engine: Engine) -> None:
    archive = Archive(engine)
    for packed in golden():
        archive.store(packed, "p")
    assert rebuild(engine, []) == 0  # drops and recreates every read-model table
    with sessions(engine)() as session:
        assert session.scalar(select(func.count()).select_from(ArchivedRun)) == 2
    assert archive.latest_chain(WF) is not None
