"""The read model against Temporal (dev server): projected live, verified, rebuilt."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from domain.commands import CloseInput, OpenSchoolActionInput, RecordReviewInput, ReferInput
from domain.model import CloseReason, ReviewOutcome, SpecialistKind, Trigger
from journeys import SENCO, iep, new_pupil, progress, start_cmd, state_of
from records import models as m
from records.db import make_engine, sessions
from records.sync import read_journeys, rebuild, verify
from service import temporal
from workflows.pupil_journey import PupilJourney, workflow_id


def dump(engine) -> dict[str, list[tuple]]:
    """Every row of every read-model table."""
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(row) for row in conn.execute(select(t)))
            for t in m.Base.metadata.sorted_tables
        }


async def settled(dev, pupils: list[str]) -> None:
    """Every change projected and every notice delivered."""
    for pupil in pupils:
        for _ in range(200):
            s = await state_of(dev.client, pupil)
            if s.projected_step == s.step and not s.outbox:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{pupil} never caught up")


async def test_verify_finds_a_corrupted_row_and_rebuild_restores_it(dev) -> None:
    pupils = [new_pupil() for _ in range(3)]
    for i, pupil in enumerate(pupils):
        await temporal.start(
            dev.client,
            dev.settings,
            start_cmd(pupil, school_id=f"school-{i % 2}"),
            workflow_id(pupil),
        )
        await temporal.execute(
            dev.client,
            workflow_id(pupil),
            PupilJourney.open_school_action,
            OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
        )
    await temporal.execute(
        dev.client,
        workflow_id(pupils[1]),
        PupilJourney.record_review,
        RecordReviewInput(
            SENCO,
            ReviewOutcome.ESCALATE,
            progress(),
            "no progress",
            iep(),
            [Trigger.AP_LITERACY_MATHS],
        ),
    )
    await temporal.execute(
        dev.client,
        workflow_id(pupils[1]),
        PupilJourney.refer,
        ReferInput(SENCO, SpecialistKind.SPEECH_AND_LANGUAGE, "salt-1", "expressive language?"),
    )
    await temporal.execute(
        dev.client,
        workflow_id(pupils[2]),
        PupilJourney.close,
        CloseInput(SENCO, CloseReason.LEFT_SCHOOL, "family moved abroad"),
    )
    await settled(dev, pupils[:2])

    where = f"TaskQueue = '{dev.settings.task_queue}'"
    sources = []
    for _ in range(100):  # visibility is eventually consistent
        sources = await read_journeys(dev.client, where=where)
        if len(sources) == 3 and any(s.state.closed_at for s in sources):
            break
        await asyncio.sleep(0.1)
    assert sorted(s.state.pupil_id for s in sources) == sorted(pupils)

    engine = make_engine(dev.settings.database_url)
    with sessions(engine)() as session:
        assert verify(session, sources) == []
    live = dump(engine)
    assert len(live["journeys"]) == 3 and len(live["referrals"]) == 1
    assert len(live["messages_sent"]) == sum(len(s.messages) for s in sources) > 0

    with sessions(engine).begin() as session:
        session.execute(
            update(m.Journey)
            .where(m.Journey.pupil_id == pupils[0])
            .values(stage="statutory_assessment")
        )
        session.execute(update(m.Referral).values(status="completed"))
    with sessions(engine)() as session:
        found = {(d.workflow_id, d.what) for d in verify(session, sources)}
    assert found == {(f"pupil-{pupils[0]}", "stage"), (f"pupil-{pupils[1]}", "referrals")}

    with sessions(engine).begin() as session:  # known only to the read model
        session.add(m.Contact(contact_id="parent-a", role="parent", display_name="A"))
    assert rebuild(engine, sources) == 3
    with sessions(engine)() as session:
        assert verify(session, sources) == []
        assert session.get(m.Contact, "parent-a") is not None  # a rebuild keeps the contacts
    rebuilt = dump(engine)
    rebuilt.pop("contacts", None)
    live.pop("contacts", None)
    assert rebuilt == live
