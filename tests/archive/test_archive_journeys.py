"""Issue 10 against a real dev server: a journey closed, archived by two archivers at once,
deleted from Temporal, and still read, replayed and audited — the same, byte for byte — from
the archive alone; then purged. And a scheduled pass that empties the dangerous set."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from access.models import ApiToken
from access.policy import Principal
from archive import cli as archive_cli
from archive.archiver import archive_pass, closed_runs
from archive.messages import ArchivePassInput, ArchivePassResult
from archive.models import ArchivedRun, PurgeLogEntry
from archive.schedule import describe_schedule, ensure_schedule
from archive.status import archive_status, pass_failure
from archive.store import Archive, archive_reader
from archive.workflow import JourneyArchiver
from archive_helpers import eventually
from audit import report as audit_report
from audit.replay import replay_runs
from audit.trail import fetch_runs
from devserver import set_retention
from domain.commands import CloseInput, OpenSchoolActionInput, RecordNoteInput, Refused
from domain.model import CloseReason, Role, Trigger
from journeys import SENCO, TEACHER, iep, new_pupil, start_cmd
from records import models as m
from records.db import make_engine, sessions
from records.sync import read_journeys, rebuild, verify
from service import audit, temporal
from service.context import Services
from service.errors import NotFound
from settings import configure_logging
from worker import build_worker
from workflows.pupil_journey import PupilJourney, workflow_id

ADMIN = ["--actor", "admin-1", "--role", "admin"]


def _archive_parser() -> argparse.ArgumentParser:
    """The operator's `senflow archive ...` commands, as the CLI registers them."""
    parser = argparse.ArgumentParser(prog="senflow")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true")
    archive_cli.register(parser.add_subparsers(dest="command", required=True), common)
    return parser


async def cli(arc, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """An operator's `senflow archive ARGV` in this process, as the CLI would run it."""
    configure_logging("json")  # as the CLI does: logs to stderr, the output to stdout
    capsys.readouterr()
    args = _archive_parser().parse_args(list(argv))
    try:
        code = await archive_cli.run(args, arc.settings)
    except Refused as err:
        code = 1
        print(f"refused: {err}")  # noqa: T201 - what the CLI shows on stderr
    return code, capsys.readouterr().out


#: An auditor of the tests' school, as the API would authenticate one.
AUDITOR = Principal("aud-1", Role.AUDITOR, frozenset({"school-1"}), "t-aud-1")


async def read_as_auditor(arc, journey_id: str) -> tuple[str, str, list[object], str]:
    """What an auditor reads of a journey (the history as text and as JSON, its breaches,
    the export), through the application layer the API and the CLI use."""
    svc = Services(arc.settings, arc.client)
    found = await audit.record(svc, AUDITOR, journey_id)
    exported = await audit.export(svc, AUDITOR, journey_id)
    return (
        audit_report.as_text(found.trail, found.breaches),
        audit_report.as_json(found.trail, found.breaches),
        [vars(b) for b in found.breaches],
        exported,
    )


async def closed_journey(arc, notes: int) -> tuple[str, list[str]]:
    """A journey with a School Action decision and ``notes`` notes, closed; its run ids."""
    pupil = new_pupil()
    await temporal.start(arc.client, arc.settings, start_cmd(pupil), workflow_id(pupil))
    await temporal.execute(
        arc.client,
        workflow_id(pupil),
        PupilJourney.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
    )
    for i in range(notes):
        await temporal.execute(
            arc.client,
            workflow_id(pupil),
            PupilJourney.record_note,
            RecordNoteInput(TEACHER, f"week {i}: a note"),
        )
    await temporal.execute(
        arc.client,
        workflow_id(pupil),
        PupilJourney.close,
        CloseInput(SENCO, CloseReason.LEFT_SCHOOL, "moved away"),
    )
    handle = arc.client.get_workflow_handle(workflow_id(pupil))
    await handle.result()  # follows continue-as-new to the end
    runs = [r.run_id for r in await fetch_runs(arc.client, handle.id)]
    await eventually(  # visibility is eventually consistent
        lambda: _listed(arc, handle.id, len(runs))
    )
    return pupil, runs


async def _listed(arc, workflow_id: str, count: int) -> bool:
    runs = await closed_runs(arc.client, arc.where)
    return sum(r.workflow_id == workflow_id for r in runs) == count


async def deleted_from_temporal(client: Client, workflow_id: str, run_ids: list[str]) -> None:
    for run_id in run_ids:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            )
        )

    async def gone() -> bool:
        for run_id in run_ids:
            try:
                await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
                return False
            except RPCError as err:
                assert err.status is RPCStatusCode.NOT_FOUND
        return True

    await eventually(gone, timeout=60, every=0.25)


async def test_a_closed_journey_reads_the_same_from_the_archive_alone_then_is_purged(
    arc, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pupil, run_ids = await closed_journey(arc, notes=40)
    wf = f"pupil-{pupil}"
    assert len(run_ids) >= 2  # it continued as new: archived run by run

    async def auditors(tag: str) -> dict[str, object]:
        seen: dict[str, object] = {}
        text, as_json, breaches, exported = await read_as_auditor(arc, wf)
        seen.update(history=text, history_json=as_json, audit=breaches, export=exported)
        # what `senflow replay --all` replays: every run of every journey, archive included
        archive = archive_reader(arc.settings.database_url, arc.settings.archive_url)
        runs = await temporal.runs(arc.client, wf, archive)
        assert wf in await temporal.all_journey_ids(arc.client, archive)
        outcomes = await replay_runs(runs, arc.client.data_converter)
        seen["replay --all"] = [(o.run_id, o.ok, o.failure) for o in outcomes]
        return seen

    before = await auditors("before")
    assert "school_action" in before["history"]  # type: ignore[operator]
    assert len(before["replay --all"]) == len(run_ids)  # type: ignore[arg-type]
    assert all(ok for _, ok, _ in before["replay --all"])  # type: ignore[attr-defined]

    sent_before = len(
        (await read_journeys(arc.client, where=arc.where))[0].messages
    )  # letters, as the read model rebuilds them from the histories of every run

    # two archivers at once, each with its own connections
    url = arc.settings.database_url
    first, second = Archive(make_engine(url)), Archive(make_engine(url))
    results = await asyncio.gather(
        archive_pass(arc.client, first, "pass-a", where=arc.where),
        archive_pass(arc.client, second, "pass-b", where=arc.where),
    )
    assert sum(r.archived for r in results) == len(run_ids)
    assert sum(r.lost + r.failed for r in results) == 0
    with sessions(first.engine)() as session:
        stored = list(session.scalars(select(ArchivedRun)))
    assert sorted(r.run_id for r in stored) == sorted(run_ids)
    assert all(r.archived_at is not None for r in stored)
    assert (await archive_pass(arc.client, first, "pass-c", where=arc.where)).archived == 0

    code, out = await cli(arc, capsys, "archive", "status", "--json")
    waiting = [p for p in json.loads(out)["pending"] if p["workflow_id"] == wf]
    assert waiting == []  # (the namespace may hold other tests' journeys)

    # a long journey: its early runs' retention ends first, the last run is still in Temporal
    await deleted_from_temporal(arc.client, wf, run_ids[:-1])
    assert await auditors("mixed") == before
    sources = await read_journeys(arc.client, where=arc.where, archive=first)
    assert [len(source.messages) for source in sources] == [sent_before]

    await deleted_from_temporal(arc.client, wf, run_ids[-1:])
    after = await auditors("after")
    assert after == before  # history, audit, export and replay: from the archive alone

    # the read model verifies, and rebuilds, with the journey in the archive only
    sources = await read_journeys(arc.client, where=arc.where, archive=first)
    assert [source.workflow_id for source in sources] == [wf]
    with sessions(first.engine)() as session:
        assert verify(session, sources) == []
        sent = session.scalar(select(func.count()).select_from(m.MessageSent))
    assert sent == len(sources[0].messages) == sent_before > 0  # the letters of every run
    assert rebuild(first.engine, sources) == 1
    with sessions(first.engine)() as session:
        assert verify(session, sources) == []
        assert session.scalar(select(func.count()).select_from(m.MessageSent)) == sent

    # purge: refused while a journey is open, and for anyone but an admin
    other = new_pupil()
    await temporal.start(arc.client, arc.settings, start_cmd(other), workflow_id(other))
    arc.open.append(workflow_id(other))
    code, out = await cli(
        arc, capsys, "archive", "purge", other, "--reason", "erasure-request", *ADMIN
    )
    assert code == 1 and "open journey" in out
    code, out = await cli(
        arc, capsys, "archive", "purge", pupil, "--reason", "erasure-request",
        "--actor", "aud-1", "--role", "auditor",
    )  # fmt: skip
    assert code == 1 and "only an admin" in out
    letters = list(arc.settings.outbox_dir.glob(f"{wf}--*.eml"))
    assert letters
    with sessions(make_engine(url)).begin() as session:  # a parent's reply code for the journey
        session.add(
            ApiToken(
                token_id="t-purge-1",
                role="parent",
                actor_id="parent-a",
                schools=[],
                secret_hash="x",
                created_at=datetime.now(UTC),
                workflow_id=wf,
                consultation_id="consultation-2",
            )
        )

    code, out = await cli(
        arc, capsys, "archive", "purge", pupil, "--reason", "retention-ended", *ADMIN, "--json"
    )
    assert code == 0, out
    purged = json.loads(out)
    assert purged["archived_runs"] == len(run_ids) and purged["letters"] == len(letters)
    assert purged["read_model_rows"] > 0
    engine = make_engine(url)
    with sessions(engine)() as session:
        for table in m.Base.metadata.sorted_tables:
            for column in ("workflow_id", "pupil_id"):
                if column in table.c:
                    assert (
                        session.execute(select(table).where(table.c[column].in_([wf, pupil]))).all()
                        == []
                    ), table.name
        assert session.scalars(select(ArchivedRun)).all() == []
        assert session.get(ApiToken, "t-purge-1") is None
        [entry] = session.scalars(select(PurgeLogEntry)).all()
        logged = json.dumps([str(getattr(entry, c.key)) for c in PurgeLogEntry.__table__.c])
    assert pupil not in logged and "admin-1" in logged and "retention-ended" in logged
    assert not list(arc.settings.outbox_dir.glob(f"{wf}--*.eml"))
    with pytest.raises(NotFound):  # nothing left anywhere
        await read_as_auditor(arc, wf)
    code, out = await cli(arc, capsys, "archive", "purge-log", "--pupil", pupil, "--json")
    assert [e["purge_id"] for e in json.loads(out)] == [entry.purge_id]
    code, out = await cli(arc, capsys, "archive", "purge-log", "--pupil", other, "--json")
    assert json.loads(out) == []
    for e in (first.engine, second.engine, engine):
        e.dispose()


async def test_a_scheduled_pass_leaves_the_dangerous_set_empty(
    arc, capsys: pytest.CaptureFixture[str]
) -> None:
    address = arc.client.service_client.config.target_host
    await asyncio.to_thread(set_retention, address, arc.client.namespace, arc.settings.retention)
    pupil, [run_id] = await closed_journey(arc, notes=0)
    archive = Archive(make_engine(arc.settings.database_url))
    schedule_id = f"archiver-{arc.settings.task_queue}"

    # no schedule: every closed run not yet archived is in danger
    status = await archive_status(arc.client, archive, arc.settings, schedule_id, arc.where)
    assert status.retention == timedelta(days=30)
    assert [(d.workflow_id, d.run_id) for d in status.dangerous] == [(f"pupil-{pupil}", run_id)]
    assert any("no archiver schedule" in p for p in status.problems)

    pass_input = ArchivePassInput(where=arc.where)
    assert await ensure_schedule(arc.client, arc.settings, schedule_id, pass_input) == "created"
    handle = arc.client.get_schedule_handle(schedule_id)
    await handle.pause(note="an operator's pause")
    await eventually(lambda: _paused(arc, schedule_id))
    created = (await handle.describe()).info.last_updated_at
    # idempotent: a second run updates the same schedule, and keeps the operator's pause
    assert await ensure_schedule(arc.client, arc.settings, schedule_id, pass_input) == "updated"
    described = await eventually(lambda: _updated_since(handle, created))
    assert described.schedule.state.paused
    view = await describe_schedule(arc.client, schedule_id)
    assert view is not None and view.paused and view.every == arc.settings.archive_every
    status = await archive_status(arc.client, archive, arc.settings, schedule_id, arc.where)
    assert status.dangerous and any("paused" in p for p in status.problems)
    await handle.unpause()
    # the scheduler applies updates and pauses from separate queues: wait for this one
    await eventually(lambda: _unpaused(arc, schedule_id))

    await handle.trigger()  # the next scheduled pass, now
    view = await eventually(lambda: _started(arc, schedule_id))
    assert view.last_workflow_id.startswith(schedule_id)
    result = await arc.client.get_workflow_handle(
        view.last_workflow_id, result_type=ArchivePassResult
    ).result()
    assert (result.archived, result.lost, result.failed) == (1, 0, 0)

    status = await archive_status(arc.client, archive, arc.settings, schedule_id, arc.where)
    assert status.dangerous == [] and status.pending == [] and status.problems == []
    assert status.archived_runs == status.closed_runs == 1
    await handle.delete()
    archive.engine.dispose()

    # the CLI creates the real one, idempotently
    for expected in ("created", "updated"):
        code, out = await cli(arc, capsys, "archive", "schedule", "--json")
        assert code == 0 and json.loads(out)["result"] == expected
    await arc.client.get_schedule_handle("senflow-archiver").delete()


async def _paused(arc, schedule_id: str) -> bool:
    view = await describe_schedule(arc.client, schedule_id)
    return view is not None and view.paused


async def _unpaused(arc, schedule_id: str) -> bool:
    return not await _paused(arc, schedule_id)


async def _updated_since(handle, when):  # type: ignore[no-untyped-def]
    described = await handle.describe()
    return described if described.info.last_updated_at != when else None


async def _started(arc, schedule_id: str):  # type: ignore[no-untyped-def]
    view = await describe_schedule(arc.client, schedule_id)
    return view if view is not None and view.last_workflow_id else None


async def test_an_archiver_without_the_purge_key_fails_loudly_once_purges_exist(arc) -> None:
    # it cannot tell a purged pupil's runs from others: it stops, and status says why
    await closed_journey(arc, notes=0)
    engine = make_engine(arc.settings.database_url)
    with sessions(engine).begin() as session:
        session.add(
            PurgeLogEntry(
                purge_id="00000000-0000-0000-0000-00000000000a",
                pupil_ref="0" * 64,
                actor_id="admin-1",
                actor_role="admin",
                reason="erasure-request",
                started_at=datetime.now(UTC),
                archived_runs=0,
                read_model_rows=0,
                temporal_runs=0,
                letters=0,
            )
        )
    keyless = replace(arc.settings, task_queue=f"{arc.settings.task_queue}-keyless", purge_key=None)
    async with build_worker(arc.client, keyless):
        handle = await arc.client.start_workflow(
            JourneyArchiver.run,
            ArchivePassInput(where=arc.where),
            id=f"archiver-{keyless.task_queue}",
            task_queue=keyless.task_queue,
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    failure = await pass_failure(arc.client, handle.id)
    assert failure is not None and "needs SENFLOW_PURGE_KEY" in failure
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1]  # not retried: only a person can fix it
    with sessions(engine)() as session:
        assert session.scalars(select(ArchivedRun)).all() == []  # nothing archived blindly
    engine.dispose()
