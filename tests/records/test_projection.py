"""Projection: idempotent upserts keyed by workflow id + step; increments add up to the whole."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from temporalio.testing import ActivityEnvironment

from activities.records import Recorder, RecordJourneyInput
from domain.model import JourneyState
from records import models as m
from records import projection
from records.db import downgrade_all, migrate, sessions
from records.projection import project, record_message
from records.sync import Source, verify
from scenarios import T0, at_action_plus_with_referral, at_school_action, started

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


def rows_of(engine: Engine, workflow_id: str) -> dict[str, list[dict]]:
    """Every row one journey has in the read model, without its workflow id."""
    found = {}
    with engine.connect() as conn:
        for t in TABLES:
            if "workflow_id" in t.c:
                rows = conn.execute(select(t).where(t.c.workflow_id == workflow_id)).mappings()
                found[t.name] = sorted(
                    ({k: v for k, v in r.items() if k != "workflow_id"} for r in rows), key=repr
                )
    return found


def as_it_happened(pupil: str) -> list[JourneyState]:
    """The deltas the workflow sends, one per change: started, School Action, then Action
    Plus with a referral (each scenario is the one before it plus more, at fixed times)."""
    deltas: list[JourneyState] = []
    for journey in [
        started(pupil),
        at_school_action(pupil),
        at_action_plus_with_referral(pupil, completed_after=20),
    ]:
        deltas.append(journey.delta_since(deltas[-1].step if deltas else 0))
    return deltas


def test_changes_arriving_newest_first_leave_the_journey_as_the_newest_wrote_it(
    engine: Engine,
) -> None:
    deltas = as_it_happened("p4")
    assert [d.step for d in deltas] == sorted({d.step for d in deltas})  # each one newer
    Session = sessions(engine)
    for delta in deltas:  # in order: the reference
        with Session.begin() as session:
            project(session, "pupil-in-order", delta)
    for delta in reversed(deltas):  # the newest first, then every older one late
        with Session.begin() as session:
            project(session, "pupil-p4", delta)
    in_order, late = rows_of(engine, "pupil-in-order"), rows_of(engine, "pupil-p4")
    [newest] = in_order["journeys"]
    assert newest["last_step"] == deltas[-1].step and newest["stage"] == "school_action_plus"
    assert late["journeys"] == in_order["journeys"]
    assert {t: len(rows) for t, rows in late.items()} == {
        t: len(rows) for t, rows in in_order.items()
    }


def test_a_change_at_the_step_already_written_is_written_again(engine: Engine) -> None:
    state = at_school_action("p8").state
    Session = sessions(engine)
    with Session.begin() as session:
        project(session, "pupil-p8", state)
    state.overdue = not state.overdue  # the same step once more, with a fact that differs
    with Session.begin() as session:
        project(session, "pupil-p8", state)
    [row] = rows_of(engine, "pupil-p8")["journeys"]
    assert row["last_step"] == state.step and row["overdue"] is state.overdue


def raw_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every projected row as the database holds it (no type processing on the way out)."""
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t.name}")))
            for t in TABLES
            if t.name in m.PROJECTED_TABLES
        }


def letter(key: str, message_id: str, **kw: object) -> m.MessageSent:
    return m.MessageSent(
        workflow_id="pupil-p5",
        notice_key=key,
        kind="consultation",
        recipient_role="parent",
        recipient_id="carer-1",
        message_id=message_id,
        sent_at=T0,
        **kw,
    )


def project_everything(engine: Engine) -> None:
    deltas = as_it_happened("p5")
    Session = sessions(engine)
    with Session.begin() as session:  # a rebuild writes whole journeys
        project(session, "pupil-p6", at_action_plus_with_referral("p6", completed_after=20).state)
        project(session, "pupil-p7", at_school_action("p7").state)
    for delta in [*deltas, deltas[-1], deltas[0]]:  # the last one retried, an old one late
        with Session.begin() as session:
            project(session, "pupil-p5", delta)
    with Session.begin() as session:
        record_message(session, letter("k1", "<m1@school.invalid>", channel="smtp"))
        record_message(session, letter("k2", "<m2@school.invalid>"))  # no channel given
    with Session.begin() as session:  # written again, without a channel: it is kept
        record_message(session, letter("k1", "<m3@school.invalid>"))


def test_the_upserts_write_the_rows_session_merge_wrote(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_everything(engine)
    upserted = raw_rows(engine)
    with sessions(engine)() as session:
        letters = session.execute(
            select(m.MessageSent.notice_key, m.MessageSent.message_id, m.MessageSent.channel)
        ).all()
    assert sorted(letters) == [
        ("k1", "<m3@school.invalid>", "smtp"),
        ("k2", "<m2@school.invalid>", "outbox"),
    ]
    with engine.begin() as conn:
        for t in reversed(TABLES):
            if t.name in m.PROJECTED_TABLES:
                conn.execute(t.delete())
    monkeypatch.setattr(projection, "_UPSERTS", {})  # a dialect without ON CONFLICT: merge()
    project_everything(engine)
    assert raw_rows(engine) == upserted
