"""Auditors: the record read from histories, replay from files, compliance, the HTML report."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import starter
from audit import compliance, report
from audit.trail import Trail, fold, load_histories, trail_from_runs
from domain.model import ConsultationStatus, EntryKind, ReferralStatus, Stage
from scenarios import T0, at_action_plus_with_referral, at_school_action
from workflows.converter import DATA_CONVERTER

HISTORIES = Path(__file__).parent.parent / "histories"
GOLDEN = [HISTORIES / "v3_two_year_journey_run1.json", HISTORIES / "v3_two_year_journey_run2.json"]


async def golden_trail() -> Trail:
    runs = [run for path in GOLDEN for run in load_histories(path.read_text(), path.stem)]
    return await trail_from_runs(DATA_CONVERTER, "pupil-golden-1", runs)


def last_event(trail: Trail) -> datetime:
    return trail.runs[-1].history.events[-1].event_time.ToDatetime(tzinfo=UTC)


async def test_the_record_is_rebuilt_from_the_histories_of_every_run() -> None:
    trail = await golden_trail()
    s = trail.state
    assert len(trail.runs) == 2 and trail.snapshots > 20
    assert s.stage is Stage.STATUTORY_ASSESSMENT
    assert [(d.stage_before, d.stage_after) for d in s.decisions()] == [
        (Stage.MONITORING, Stage.SCHOOL_ACTION),
        (Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS),
        (Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT),
    ]
    statuses = [c.status for c in s.consultations]
    assert ConsultationStatus.ANSWERED in statuses and ConsultationStatus.LAPSED in statuses
    [referral] = s.referrals
    assert referral.status is ReferralStatus.COMPLETED and referral.chases == 1
    assert len(s.reviews) == 3 and len(s.past_ieps) + 1 == 4
    steps = [e.step for e in s.timeline]
    assert steps == sorted(steps) and len(set(steps)) == s.step  # every step, none twice
    rejected = [e for e in s.timeline if e.kind is EntryKind.REJECTED_MESSAGE]
    assert len(rejected) == 2  # the malformed and the late reply recorded in the golden run
    assert compliance.check(s, last_event(trail)) == []


def test_folding_keeps_the_latest_record_of_each_thing() -> None:
    j = at_action_plus_with_referral("p1")
    deltas = [j.delta_since(step) for step in range(0, j.state.step)]
    whole = fold(copy.deepcopy(deltas))
    assert [e.step for e in whole.timeline] == [e.step for e in j.state.timeline]
    assert {c.consultation_id: c.status for c in whole.consultations} == {
        c.consultation_id: c.status for c in j.state.consultations
    }
    assert whole.iep is not None and j.state.iep is not None
    assert whole.iep.iep_id == j.state.iep.iep_id
    assert [i.iep_id for i in whole.past_ieps] == [i.iep_id for i in j.state.past_ieps]


def test_a_decision_without_consultation_is_a_breach() -> None:
    j = at_action_plus_with_referral("p1")
    assert compliance.check(j.state, T0 + timedelta(days=20)) == []
    escalation = next(d for d in j.state.decisions() if d.stage_after is Stage.SCHOOL_ACTION_PLUS)
    j.state.timeline = [
        e
        for e in j.state.timeline
        if not (e.kind is EntryKind.CONSULTATION_OPENED and e.step == escalation.step)
    ]
    [breach] = compliance.check(j.state, T0 + timedelta(days=20))
    assert breach.rule == "parents-consulted"
    assert f"step {escalation.step}" in breach.evidence[0]


def test_a_review_left_overdue_without_notice_is_a_breach() -> None:
    j = at_school_action("p1")
    for _ in range(20):
        wake = j.next_wakeup()
        assert wake is not None
        j.on_time(wake)
        if j.state.overdue:
            break
    later = j.state.timeline[-1].at + timedelta(days=30)
    assert compliance.check(j.state, later) == []
    j.state.timeline = [e for e in j.state.timeline if e.kind is not EntryKind.REVIEW_OVERDUE]
    [breach] = compliance.check(j.state, later)
    assert breach.rule == "overdue-review-flagged" and "no overdue notice" in breach.detail


def test_action_plus_without_a_school_action_review_is_a_breach() -> None:
    j = at_action_plus_with_referral("p1")
    j.state.reviews = []
    for e in j.state.timeline:
        if e.stage_after is Stage.SCHOOL_ACTION_PLUS:
            e.summary = "escalated to School Action Plus"
    rules = [b.rule for b in compliance.check(j.state, T0 + timedelta(days=20))]
    assert rules == ["action-plus-after-review"]


def test_a_referral_not_chased_is_a_breach() -> None:
    j = at_action_plus_with_referral("p1")
    for _ in range(20):
        wake = j.next_wakeup()
        assert wake is not None
        j.on_time(wake)
        if j.state.referrals[0].chases == 1:
            break
    now = j.state.timeline[-1].at + timedelta(days=1)
    assert compliance.check(j.state, now) == []
    j.state.timeline = [e for e in j.state.timeline if e.kind is not EntryKind.REFERRAL_CHASED]
    assert [b.rule for b in compliance.check(j.state, now)] == ["referral-chased"]


async def test_the_html_report_is_one_self_contained_file_opening_with_the_timeline() -> None:
    trail = await golden_trail()
    page = report.as_html(trail, [], last_event(trail))
    assert page.startswith("<!DOCTYPE html>")
    assert page.index("<svg") < page.index("<h2>Compliance</h2>")
    assert not re.search(r"<script|\bsrc=|<link|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    s = trail.state
    assert page.count('class="review"') == len(s.reviews)
    assert page.count('class="consultation"') == len(s.consultations)
    for c in s.consultations:
        assert c.consultation_id in page
    assert "no response" in page and s.referrals[0].referral_id in page


def test_overdue_spans_are_drawn_in_the_warning_colour() -> None:
    j = at_school_action("p1")
    while (wake := j.next_wakeup()) is not None:
        j.on_time(wake)
    assert j.state.overdue
    svg = report.svg_timeline(j.state, j.state.timeline[-1].at + timedelta(days=5))
    assert svg.count('class="overdue"') == 1 and report.OVERDUE in svg


def test_replay_of_files_reports_ok_and_a_tampered_history_fails(tmp_path, capsys) -> None:
    assert starter.main(["replay", *map(str, GOLDEN)]) == 0
    assert "2 replayed, 0 failed" in capsys.readouterr().out
    tampered = json.loads(GOLDEN[0].read_text())
    for event in tampered["events"]:
        attrs = event.get("activityTaskScheduledEventAttributes")
        if attrs and attrs["activityType"]["name"] == "send_notice":
            attrs["activityType"]["name"] = "send_telegram"
            break
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    assert starter.main(["replay", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "send_telegram" in out
