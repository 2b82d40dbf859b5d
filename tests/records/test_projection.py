"""Projection: idempotent upserts keyed by workflow id + step; increments add up to the whole."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select
from temporalio.testing import ActivityEnvironment

from activities.records import Recorder, RecordJourneyInput
from records import models as m
from records.db import downgrade_all, migrate, sessions
from records.projection import project
from records.sync import Source, verify
from scenarios import T0, at_action_plus_with_referral

TABLES = [t for t in m.Base.metadata.sorted_tables]  # every table of the read model


def counts(engine: Engine) -> dict[str, int]:
    with sessions(engine)() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def test_migrations_create_and_remove_every_table(engine: Engine) -> None:
    assert counts(engine) == {t.name: 0 for t in TABLES}
    downgrade_all(engine)
    with engine.connect() as conn:
        names = set(engine.dialect.get_table_names(conn))
    assert not names & {t.name for t in TABLES}
    migrate(engine)
    assert set(counts(engine)) == {t.name for t in TABLES}


async def test_a_retried_record_activity_adds_no_row(engine: Engine) -> None:
    journey = at_action_plus_with_referral("p1", completed_after=20)
    recorder = Recorder(sessions(engine))
    env = ActivityEnvironment()
    change = RecordJourneyInput("pupil-p1", journey.delta_since(0))
    await env.run(recorder.record_journey, change)
    once = counts(engine)
    await env.run(recorder.record_journey, change)  # the retry after a lost acknowledgement
    await env.run(recorder.record_journey, change)
    assert counts(engine) == once
    assert once["stage_changes"] == 2 and once["reviews"] == 1 and once["referrals"] == 1
    assert once["ieps"] == 2 and once["consultation_responses"] == 1


def test_recording_each_change_as_it_happens_equals_recording_the_whole(engine: Engine) -> None:
    journey = at_action_plus_with_referral("p2")
    # replay the journey's steps as deltas, the way the workflow sends them
    Session = sessions(engine)
    for step in range(0, journey.state.step):
        with Session.begin() as session:
            delta = journey.delta_since(step)
            project(session, "pupil-p2", delta)
    incremental = counts(engine)
    with Session() as session:
        assert verify(session, [Source("pupil-p2", journey.state)]) == []
    with Session.begin() as session:
        project(session, "pupil-p2", journey.state)
    assert counts(engine) == incremental


def test_an_older_change_arriving_late_does_not_regress_the_journey(engine: Engine) -> None:
    journey = at_action_plus_with_referral("p3")
    early = journey.delta_since(0)
    early_stage = "school_action"
    Session = sessions(engine)
    with Session.begin() as session:
        project(session, "pupil-p3", journey.state)
    early.step = 2
    early.stage = type(journey.state.stage)(early_stage)
    with Session.begin() as session:
        project(session, "pupil-p3", early)
    with Session() as session:
        row = session.get(m.Journey, "pupil-p3")
        assert row is not None and row.stage == "school_action_plus"
        assert row.opened_at == T0 and row.next_review_at is not None
        assert row.next_review_at > T0 + timedelta(days=11)
