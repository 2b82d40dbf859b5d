"""Moving a mixed population of running 2001 journeys to the 2014 Code on the dev server:
a dry run, a run killed half-way (SIGKILL of the API process running it for the admin's
`senflow migrate`), the resumed run, then a run that
changes nothing. Every journey lands in the right place, with one decision by the admin and
one letter per parent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from access import store
from domain.model import Actor, EntryKind, JourneyState, Role, SenType, Stage
from journeys import (
    PARENTS,
    at_school_action,
    awaiting_assessment,
    in_statutory_assessment,
    start_cmd,
    until_delivered,
)
from records import reports
from records.db import make_engine, sessions
from reform import migration
from service import temporal
from smtp_sink import free_port
from workflows.pupil_journey import workflow_id

ADMIN = Actor("admin-1", Role.ADMIN)
SENFLOW = str(Path(sys.executable).parent / "senflow")
EXPECTED = {
    "monitoring": ("monitoring", "code_2014"),
    "sa": ("sen_support", "code_2014"),
    "ap": ("sen_support", "code_2014"),
    "sas": ("ehc_needs_assessment", "code_2014"),
}


async def serving(url: str, api: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert api.poll() is None, "the API exited before it served"
        try:
            async with httpx.AsyncClient() as http:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("the API did not serve")


async def population(dev, schools: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """pupil -> kind, for two schools."""
    client, settings = dev.client, dev.settings
    kinds: dict[str, str] = {}
    for school in schools:
        tag = school[-1]
        pupil = f"mon-{tag}"
        await temporal.start(
            client, settings, start_cmd(pupil, school_id=school), workflow_id(pupil)
        )
        kinds[f"mon-{tag}"] = "monitoring"
        for i in range(2):
            await at_school_action(client, settings, f"sa{i}-{tag}", school)
            kinds[f"sa{i}-{tag}"] = "sa"
        await awaiting_assessment(client, settings, f"ap-{tag}", school)
        kinds[f"ap-{tag}"] = "ap"
        await in_statutory_assessment(client, settings, f"sas-{tag}", school)
        kinds[f"sas-{tag}"] = "sas"
    return kinds


async def states(client, pupils) -> dict[str, JourneyState]:  # type: ignore[no-untyped-def]
    return {p: await until_delivered(client, p) for p in pupils}


async def history_lengths(client, pupils) -> dict[str, int]:  # type: ignore[no-untyped-def]
    lengths = {}
    for p in pupils:
        history = await client.get_workflow_handle(workflow_id(p)).fetch_history()
        lengths[p] = len(history.events)
    return lengths


async def listed(client, schools: list[str], count: int) -> None:  # type: ignore[no-untyped-def]
    """Visibility is eventually consistent: wait until every journey is listed."""
    for _ in range(100):
        found = [j for s in schools for j in await temporal.listing(client, school=s)]
        if len(found) == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} journeys listed")


def register(dev, schools: list[str]) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    with Session(make_engine(dev.settings.database_url)) as session:
        rows = [r for s in schools for r in reports.register(session, s)]
    return {(r["stage"], r["census_code"]): r["pupils"] for r in rows if r["school"] == schools[0]}


async def test_a_mixed_population_moves_once_even_when_killed_half_way(dev) -> None:  # type: ignore[no-untyped-def]
    client = dev.client
    run = uuid.uuid4().hex[:6]
    schools = [f"mig-{run}-a", f"mig-{run}-b"]
    kinds = await population(dev, schools)
    pupils = sorted(kinds)
    await listed(client, schools, len(pupils))
    before = await states(client, pupils)
    for _ in range(100):  # the read model catches up with every journey
        if all(s.projected_step >= s.step for s in (await states(client, pupils)).values()):
            break
        await asyncio.sleep(0.1)
    assert register(dev, schools) == {
        ("monitoring", "N"): 1,
        ("school_action", "A"): 2,
        ("school_action_plus", "P"): 1,
        ("statutory_assessment", "S"): 1,
    }

    # 1. Dry run: what would happen, including the refusal a missing authority id meets.
    dry = await migration.migrate(client, ADMIN, "2014 Code", schools=schools, dry_run=True)
    assert dry.totals() == {"refused": 2, "would_move": 8}
    assert {o.pupil_id for o in dry.outcomes if o.result == "refused"} == {"sas-a", "sas-b"}
    dry = await migration.migrate(
        client, ADMIN, "2014 Code", schools=schools, dry_run=True, local_authority_id="la-7"
    )
    assert dry.by_school() == {schools[0]: {"would_move": 5}, schools[1]: {"would_move": 5}}
    assert dry.moves() == {
        "monitoring -> monitoring": 2,
        "school_action -> sen_support": 4,
        "school_action_plus -> sen_support": 2,
        "statutory_assessment -> ehc_needs_assessment": 2,
    }
    assert all(s.policy.name == "code_2001" for s in (await states(client, pupils)).values())

    # 2. The admin's `senflow migrate`, one journey at a time, run by the API, which is
    # killed after three moves (the process doing the work, as a crash would).
    target = client.service_client.config.target_host
    with sessions(make_engine(dev.settings.database_url)).begin() as session:
        token = store.add_user(session, ADMIN.id, Role.ADMIN, schools, datetime.now(UTC))
    port = free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": target,
        "SENFLOW_LOG_FORMAT": "json",
        "SENFLOW_DATABASE_URL": dev.settings.database_url,
        "SENFLOW_API_URL": f"http://127.0.0.1:{port}",
        "SENFLOW_TOKEN": token,
    }
    api = subprocess.Popen(
        [SENFLOW, "api", "--port", str(port)],
        env=env,
        stderr=subprocess.STDOUT,
        stdout=subprocess.PIPE,
    )
    args = [SENFLOW, "migrate", "--to", "code_2014", "--la", "la-7", "--concurrency", "1"]
    args += [a for s in schools for a in ("--school", s)]
    cli = None
    moved_lines = 0
    try:
        assert api.stdout is not None
        await serving(f"http://127.0.0.1:{port}", api)
        cli = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        while moved_lines < 3:
            line = await asyncio.to_thread(api.stdout.readline)
            assert line, "the API ended before it was killed"
            assert cli.poll() is None, "the migration ended before it was killed"
            moved_lines += b'"migration_outcome"' in line and b'"result": "moved"' in line
        os.kill(api.pid, signal.SIGKILL)
        assert cli.wait(timeout=60) == 3  # the CLI says the API is gone, not a traceback
    finally:
        for proc in (api, cli):
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                proc.wait(timeout=30)
        for stream in (api.stdout, cli.stderr if cli else None):
            if stream is not None:
                stream.close()
    half = await states(client, pupils)
    done = sorted(p for p, s in half.items() if s.policy.name == "code_2014")
    assert 3 <= len(done) < len(pupils), done

    # 3. Resumed: the rest move, the moved ones are counted, not moved again.
    resumed = await migration.migrate(
        client, ADMIN, "2014 Code", schools=schools, local_authority_id="la-7"
    )
    assert resumed.totals() == {"already": len(done), "moved": len(pupils) - len(done)}

    # 4. Every journey in the right place, decided once by the admin, parents told once.
    after = await states(client, pupils)
    for pupil, kind in kinds.items():
        s = after[pupil]
        assert (s.stage.value, s.policy.name) == EXPECTED[kind], pupil
        moves = [e for e in s.timeline if e.kind is EntryKind.DECISION and e.actor == ADMIN]
        assert len(moves) == 1, (pupil, moves)
        assert moves[0].stage_before is before[pupil].stage
        letters = sorted(p.name for p in dev.outbox.glob(f"*pupil-{pupil}*code_2014_transfer*"))
        assert len(letters) == (0 if kind == "monitoring" else len(PARENTS)), (pupil, letters)
        if kind == "sa":  # the IEP carried over as the first SEN Support plan, date kept
            old_iep, new_iep = before[pupil].iep, s.iep
            assert old_iep is not None and new_iep is not None
            assert (new_iep.iep_id, new_iep.review_date) == (old_iep.iep_id, old_iep.review_date)
            assert new_iep.kind == "sen_support_plan" and s.primary_need is SenType.NSA
        if kind == "ap":
            assert s.phase.value == "awaiting_assessment" and s.open_referrals()
        if kind == "sas":
            ehc = s.ehc()
            assert ehc is not None and ehc.local_authority_id == "la-7"
            assert ehc.transferred_from is not None

    # 5. Again: nothing changes, not even a history event.
    settled = await history_lengths(client, pupils)
    again = await migration.migrate(
        client, ADMIN, "2014 Code", schools=schools, local_authority_id="la-7"
    )
    assert again.totals() == {"already": len(pupils)}
    assert await history_lengths(client, pupils) == settled

    for _ in range(100):
        if all(s.projected_step >= s.step for s in (await states(client, pupils)).values()):
            break
        await asyncio.sleep(0.1)
    assert register(dev, schools) == {
        ("monitoring", "N"): 1,
        ("sen_support", "K"): 3,
        ("ehc_needs_assessment", "K"): 1,
    }
    assert Stage.EHC_NEEDS_ASSESSMENT.value in {
        j.stage for j in await temporal.listing(client, school=schools[0])
    }
