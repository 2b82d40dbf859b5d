"""Admin reports, each checked against a count made independently of the SQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from domain.commands import CloseInput
from domain.model import CloseReason
from records import reports
from records.db import sessions
from records.projection import project
from scenarios import SENCO, T0, at_action_plus_with_referral, at_school_action, started


def load(engine: Engine, journeys: dict) -> None:
    with sessions(engine).begin() as session:
        for pupil, journey in journeys.items():
            project(session, f"pupil-{pupil}", journey.state)


def population() -> dict:
    closed = at_school_action("c1", school="s2", birth_month=1)
    closed.close(CloseInput(SENCO, CloseReason.NEEDS_MET, "targets met"), T0 + timedelta(days=30))
    return {
        "m1": started("m1", school="s1", birth_month=9),
        "m2": started("m2", school="s2", birth_month=8),
        "a1": at_school_action("a1", school="s1", birth_month=8),
        "a2": at_school_action("a2", school="s1", birth_month=9),
        "a3": at_school_action("a3", school="s2", birth_month=8),
        "p1": at_action_plus_with_referral("p1", school="s1", completed_after=10, birth_month=8),
        "p2": at_action_plus_with_referral("p2", school="s2", completed_after=30, birth_month=12),
        "p3": at_action_plus_with_referral("p3", school="s2", birth_month=8),
        "c1": closed,
    }


def test_the_register_counts_open_journeys_by_school_and_stage_with_census_codes(
    engine: Engine,
) -> None:
    journeys = population()
    load(engine, journeys)
    expected: dict[tuple[str, str], int] = {}
    for j in journeys.values():
        if j.state.closed_at is None:
            key = (j.state.school_id, j.state.stage.value)
            expected[key] = expected.get(key, 0) + 1
    with sessions(engine)() as session:
        rows = reports.register(session)
        only_s2 = reports.register(session, "s2")
        plus = reports.register_pupils(session, "school_action_plus")
    assert {(r["school"], r["stage"]): r["pupils"] for r in rows} == expected
    assert {r["stage"]: r["census_code"] for r in rows} == {
        "monitoring": "N",
        "school_action": "A",
        "school_action_plus": "P",
    }
    assert {r["school"] for r in only_s2} == {"s2"}
    assert plus == [("s1", "p1"), ("s2", "p2"), ("s2", "p3")]


def test_reviews_report_lists_overdue_due_and_upcoming(engine: Engine) -> None:
    journeys = population()
    load(engine, journeys)
    review_at = journeys["a1"].state.review_due_at
    assert review_at is not None
    with sessions(engine)() as session:
        well_before = reports.reviews(session, review_at - timedelta(days=30))
        just_before = reports.reviews(session, review_at - timedelta(days=3))
    assert well_before == []
    upcoming = {r["pupil"] for r in just_before if r["status"] == "upcoming"}
    expected = {
        p
        for p, j in journeys.items()
        if j.state.review_due_at
        and j.state.closed_at is None
        and j.state.review_due_at <= review_at - timedelta(days=3) + timedelta(days=14)
    }
    assert upcoming == expected and "a1" in upcoming

    # after the grace period the domain flags it overdue; the projection carries the flag
    a1 = journeys["a1"]
    while a1.state.overdue is False:
        wake = a1.next_wakeup()
        assert wake is not None
        a1.on_time(wake)
    load(engine, {"a1": a1})
    with sessions(engine)() as session:
        rows = reports.reviews(session, review_at + timedelta(days=8))
    assert rows[0]["pupil"] == "a1" and rows[0]["status"] == "overdue"


def test_referral_waits_give_median_p90_and_longest_open(engine: Engine) -> None:
    load(engine, population())
    now = T0 + timedelta(days=52)  # referrals were made on day 12
    with sessions(engine)() as session:
        [row] = reports.referral_waits(session, now)
    assert row["kind"] == "educational_psychologist"
    assert (row["completed"], row["open"]) == (2, 1)
    assert row["median_days"] == 10.0  # nearest rank of [10, 30]
    assert row["p90_days"] == 30.0
    assert row["longest_open_days"] == 40.0


def test_time_in_stage_adds_up_each_spell(engine: Engine) -> None:
    journeys = {"a1": at_school_action("a1"), "p1": at_action_plus_with_referral("p1")}
    load(engine, journeys)
    now = T0 + timedelta(days=21)
    with sessions(engine)() as session:
        rows = {r["stage"]: r for r in reports.time_in_stage(session, now)}
    # both spent 1 day in monitoring; a1 20 days at School Action (still there), p1 10 days
    assert rows["monitoring"]["spells"] == 2 and rows["monitoring"]["median_days"] == 1.0
    assert rows["school_action"]["longest_days"] == 20.0
    assert rows["school_action"]["median_days"] == 10.0
    assert rows["school_action_plus"]["spells"] == 1
    assert rows["school_action_plus"]["median_days"] == 10.0


def test_identification_by_birth_month_counts_pupils_ever_on_the_register(
    engine: Engine,
) -> None:
    journeys = population()
    load(engine, journeys)
    with sessions(engine)() as session:
        rows = reports.identification_by_birth_month(session)
    overall = {r["month"]: r for r in rows if r["school"] == "ALL"}
    # August-born (school-year month 12): m2 (monitoring only), a1, a3, p1, p3 → 4 of 5
    assert (overall[12]["pupils"], overall[12]["identified"], overall[12]["rate"]) == (5, 4, 0.8)
    # September-born (month 1): m1 (monitoring), a2 → 1 of 2
    assert (overall[1]["pupils"], overall[1]["identified"]) == (2, 1)
    # January-born c1 was on the register before the journey closed: still counted
    assert (overall[5]["pupils"], overall[5]["identified"]) == (1, 1)
    assert overall[4]["month_name"] == "Dec"
    per_school = sum(r["pupils"] for r in rows if r["school"] != "ALL")
    assert per_school == sum(r["pupils"] for r in overall.values()) == len(journeys)
