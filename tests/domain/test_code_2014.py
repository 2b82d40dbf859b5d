"""The 2014 Code: SEN Support, the EHC needs assessment's statutory clock, and moving 2001
journeys in flight. Pure domain, fixed instants; time passes as the workflow passes it (every
wake-up the journey asks for, in order)."""

from __future__ import annotations

import copy
from dataclasses import asdict
from datetime import date, datetime, timedelta

import pytest

from domain.commands import (
    AssessmentCompletedInput,
    EhcAdviceReceivedInput,
    EhcAdviceRequestInput,
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    IepInput,
    MigrateInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
    ParentRespondedInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestEhcAssessmentInput,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
)
from domain.journey import Journey
from domain.model import (
    Actor,
    AreaOfNeed,
    ConsultationStatus,
    DeadlineStatus,
    EhcOutcome,
    EntryKind,
    ParentReply,
    PauseReason,
    Phase,
    ReviewOutcome,
    Role,
    SenType,
    SpecialistKind,
    Stage,
    Target,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy
from scenarios import SENCO, T0, TEACHER, at_action_plus_with_referral, at_school_action

DAY, WEEK = timedelta(days=1), timedelta(weeks=1)
LA = Actor("la-7", Role.LOCAL_AUTHORITY)
ADMIN = Actor("admin-1", Role.ADMIN)
EP = Actor("ep-1", Role.SPECIALIST)
PARENTS = ["carer-1", "carer-2"]


def plan(review_date: date | None = None) -> IepInput:
    return IepInput(
        [Target("read 30 words", "in two sessions")],
        ["phonics"],
        ["TA 3x20 minutes a week"],
        ["teacher-1"],
        review_date,
        expected_impact="reading age up six months by the review",
        pupil_views="likes reading with the TA; finds big groups noisy",
    )


def started_2014() -> Journey:
    return Journey.begin(
        StartJourneyInput(
            "p1", "s1", SENCO.id, list(PARENTS), TEACHER, "slow reading", Policy.code_2014()
        ),
        T0,
    )


def refused(journey: Journey, action, cmd, now: datetime) -> str:  # type: ignore[no-untyped-def]
    before = copy.deepcopy(asdict(journey.state))
    with pytest.raises(Refused) as err:
        action(cmd, now)
    assert asdict(journey.state) == before
    return str(err.value)


def advance(journey: Journey, until: datetime) -> None:
    """Fire every wake-up the journey asks for up to ``until``, as the workflow's timer does."""
    while (wakeup := journey.next_wakeup()) is not None and wakeup <= until:
        journey.on_time(wakeup)


def agree_all(journey: Journey, now: datetime) -> None:
    for c in journey.state.open_consultations():
        for parent in c.unanswered():
            journey.parent_responded(
                ParentRespondedInput(
                    f"r-{c.consultation_id}-{parent}", c.consultation_id, parent, ParentReply.AGREE
                ),
                now,
            )


def on_sen_support() -> Journey:
    j = started_2014()
    j.open_sen_support(
        OpenSenSupportInput(SENCO, SenType.SPLD, "phonics screening: 12/40", plan()), T0 + DAY
    )
    agree_all(j, T0 + 2 * DAY)
    return j


REQUESTED = T0 + 30 * DAY


def requested() -> Journey:
    j = on_sen_support()
    j.request_ehc_assessment(
        RequestEhcAssessmentInput(SENCO, "la-7", "little progress over three cycles"), REQUESTED
    )
    agree_all(j, REQUESTED + DAY)
    return j


def deadline(j: Journey, deadline_id: str):  # type: ignore[no-untyped-def]
    ehc = j.state.ehc_assessments[-1]
    found = ehc.deadline(deadline_id)
    assert found is not None, [d.deadline_id for d in ehc.deadlines]
    return found


# -- SEN Support ---------------------------------------------------------------------------------


def test_a_2014_journey_opens_sen_support_with_the_need_and_a_plan() -> None:
    j = on_sen_support()
    s = j.state
    assert (s.stage, s.phase, s.census_code) == (Stage.SEN_SUPPORT, Phase.IEP_ACTIVE, "K")
    assert s.primary_need is SenType.SPLD and SenType.SPLD.area is AreaOfNeed.COGNITION_AND_LEARNING
    assert s.iep is not None and s.iep.kind == "sen_support_plan"
    assert s.iep.pupil_views.startswith("likes reading")
    decision = s.decisions()[-1]
    assert (decision.stage_before, decision.stage_after) == (Stage.MONITORING, Stage.SEN_SUPPORT)
    assert s.consultations[0].status is ConsultationStatus.ANSWERED  # parents consulted


def test_sen_support_needs_a_need_evidence_and_a_whole_plan() -> None:
    j = started_2014()
    now = T0 + DAY
    no_impact = plan()
    no_impact.expected_impact = ""
    no_views = plan()
    no_views.pupil_views = " "
    assert "expected impact" in refused(
        j, j.open_sen_support, OpenSenSupportInput(SENCO, SenType.SPLD, "e", no_impact), now
    )
    assert "pupil's own views" in refused(
        j, j.open_sen_support, OpenSenSupportInput(SENCO, SenType.SPLD, "e", no_views), now
    )
    assert "evidence" in refused(
        j, j.open_sen_support, OpenSenSupportInput(SENCO, SenType.SPLD, " ", plan()), now
    )
    assert "census SEN type" in refused(
        j,
        j.open_sen_support,
        OpenSenSupportInput(SENCO, "dyslexia", "e", plan()),
        now,  # type: ignore[arg-type]
    )
    assert "secondary need" in refused(
        j,
        j.open_sen_support,
        OpenSenSupportInput(SENCO, SenType.SPLD, "e", plan(), SenType.SPLD),
        now,
    )
    assert "only a SENCO" in refused(
        j, j.open_sen_support, OpenSenSupportInput(TEACHER, SenType.SPLD, "e", plan()), now
    )


def test_parents_meet_the_school_termly_so_plans_are_reviewed_within_four_months() -> None:
    j = started_2014()
    now = T0 + DAY  # 8 Sept 2026
    reason = refused(
        j,
        j.open_sen_support,
        OpenSenSupportInput(SENCO, SenType.MLD, "e", plan(date(2027, 2, 1))),
        now,
    )
    assert "three times a year" in reason
    j.open_sen_support(OpenSenSupportInput(SENCO, SenType.MLD, "e", plan(date(2027, 1, 8))), now)
    assert j.state.next_review_date == date(2027, 1, 8)


def test_the_2001_stages_are_refused_under_2014_and_the_2014_ones_under_2001() -> None:
    j = started_2014()
    reason = refused(
        j,
        j.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", plan()),
        T0 + DAY,
    )
    assert "2014 Code" in reason
    old = Journey.begin(
        StartJourneyInput("p2", "s1", SENCO.id, list(PARENTS), TEACHER, "slow reading"), T0
    )
    assert "senflow migrate" in refused(
        old,
        old.open_sen_support,
        OpenSenSupportInput(SENCO, SenType.SPLD, "e", plan()),
        T0 + 3 * DAY,
    )


def test_a_sen_support_review_starts_the_next_cycle_and_never_escalates() -> None:
    j = on_sen_support()
    now = T0 + 60 * DAY
    assert "EHC needs assessment" in refused(
        j,
        j.record_review,
        RecordReviewInput(SENCO, ReviewOutcome.ESCALATE, [TargetProgress(0, "little")], "n"),
        now,
    )
    first = j.state.iep
    j.record_review(
        RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, [TargetProgress(0, "some")], "n", plan()),
        now,
    )
    assert j.state.iep is not None and j.state.iep is not first
    assert j.state.past_ieps[-1] is first and j.state.phase is Phase.AWAITING_PARENTS


# -- the EHC needs assessment ---------------------------------------------------------------------


def test_an_ehc_request_starts_the_statutory_clock() -> None:
    j = requested()
    s = j.state
    assert (s.stage, s.phase, s.census_code) == (
        Stage.EHC_NEEDS_ASSESSMENT,
        Phase.AWAITING_ASSESSMENT,
        "K",
    )
    ehc = s.ehc()
    assert ehc is not None and ehc.local_authority_id == "la-7"
    # 7 Oct 2026 + 6 / 16 / 20 weeks
    assert {d.deadline_id: d.due_on for d in ehc.deadlines} == {
        "decision": date(2026, 11, 18),
        "draft": date(2027, 1, 27),
        "final": date(2027, 2, 24),
    }
    assert any(n.kind == "ehc_request" and n.recipient_id == "la-7" for n in s.outbox)


def test_only_the_authority_takes_the_assessment_steps_in_order() -> None:
    j = requested()
    now = REQUESTED + 2 * WEEK
    assert "only the local authority" in refused(
        j, j.ehc_decide, EhcDecisionInput(SENCO, True, "r"), now
    )
    assert "not yet decided to assess" in refused(
        j, j.ehc_draft, EhcDraftInput(LA, True, "r", plan()), now
    )
    assert "draft plan first" in refused(j, j.ehc_finalise, EhcFinalInput(LA, "r"), now)
    j.ehc_decide(EhcDecisionInput(LA, True, "evidence of need"), now)
    assert "already decided" in refused(j, j.ehc_decide, EhcDecisionInput(LA, True, "r"), now)


def test_every_deadline_met_ends_in_an_ehc_plan_with_an_annual_review() -> None:
    j = requested()
    advance(j, REQUESTED + 5 * WEEK)
    j.ehc_decide(EhcDecisionInput(LA, True, "evidence of need"), REQUESTED + 5 * WEEK)
    advice = j.ehc_request_advice(
        EhcAdviceRequestInput(LA, "ep-1", "educational_psychologist"), REQUESTED + 5 * WEEK
    )
    assert advice.ref is not None
    advance(j, REQUESTED + 10 * WEEK)
    j.ehc_advice_received(EhcAdviceReceivedInput(LA, advice.ref), REQUESTED + 10 * WEEK)
    advance(j, REQUESTED + 14 * WEEK)
    draft_at = REQUESTED + 14 * WEEK
    j.ehc_draft(EhcDraftInput(LA, True, "draft agreed at panel", plan()), draft_at)
    assert "15 calendar days" in refused(
        j, j.ehc_finalise, EhcFinalInput(LA, "final"), draft_at + 3 * DAY
    )
    agree_all(j, draft_at + 5 * DAY)  # parents comment within their 15 days
    advance(j, REQUESTED + 18 * WEEK)
    j.ehc_finalise(EhcFinalInput(LA, "final plan issued"), REQUESTED + 18 * WEEK)
    s = j.state
    assert (s.stage, s.census_code) == (Stage.EHC_PLAN, "E")
    ehc = s.ehc_assessments[-1]
    assert ehc.outcome is EhcOutcome.PLAN_ISSUED and s.ehc() is None
    assert {d.deadline_id: d.status for d in ehc.deadlines} == {
        "decision": DeadlineStatus.MET,
        "draft": DeadlineStatus.MET,
        "final": DeadlineStatus.MET,
        advice.ref: DeadlineStatus.MET,
        "parent-comments": DeadlineStatus.MET,
    }
    assert not [e for e in s.timeline if e.kind is EntryKind.EHC_DEADLINE_BREACHED]
    assert s.iep is not None and s.iep.kind == "ehc_plan"
    assert s.iep.review_date == date(2028, 2, 10)  # 12 months after 10 Feb 2027
    assert j.next_wakeup() is not None and j.next_wakeup() < datetime(2028, 3, 1, tzinfo=T0.tzinfo)


def test_a_missed_deadline_is_warned_then_recorded_as_breached_and_stays_breached() -> None:
    j = requested()
    advance(j, REQUESTED + 6 * WEEK - DAY)
    warning = [e for e in j.state.timeline if e.kind is EntryKind.EHC_DEADLINE_WARNING]
    assert [e.ref for e in warning] == ["decision"]
    assert deadline(j, "decision").status is DeadlineStatus.PENDING
    advance(j, REQUESTED + 6 * WEEK + 2 * DAY)
    breach = [e for e in j.state.timeline if e.kind is EntryKind.EHC_DEADLINE_BREACHED]
    assert [e.ref for e in breach] == ["decision"]
    assert breach[0].at.date() == date(2026, 11, 19)  # the morning after the due day
    alerted = {(n.kind, n.recipient_id) for n in j.state.outbox}
    assert {("ehc_deadline_breached", "la-7"), ("ehc_deadline_breached", SENCO.id)} <= alerted
    j.ehc_decide(EhcDecisionInput(LA, True, "late"), REQUESTED + 7 * WEEK)
    late = deadline(j, "decision")
    assert late.status is DeadlineStatus.BREACHED and late.met_at == REQUESTED + 7 * WEEK


def test_a_step_on_the_due_day_is_on_time() -> None:
    j = requested()
    due_day_afternoon = datetime(2026, 11, 18, 16, 0, tzinfo=T0.tzinfo)
    advance(j, due_day_afternoon)
    j.ehc_decide(EhcDecisionInput(LA, True, "on the last day"), due_day_afternoon)
    advance(j, REQUESTED + 7 * WEEK)
    assert deadline(j, "decision").status is DeadlineStatus.MET


def test_a_pause_the_regulations_allow_is_excluded_from_the_clock() -> None:
    j = requested()
    paused_at = REQUESTED + 2 * WEEK
    j.pause_ehc_clock(EhcPauseInput(LA, PauseReason.CHILD_ABSENT), paused_at)
    assert "already paused" in refused(
        j, j.pause_ehc_clock, EhcPauseInput(LA, PauseReason.SETTING_CLOSED), paused_at + DAY
    )
    advance(j, paused_at + 5 * WEEK)  # the old decision deadline passes while paused
    assert deadline(j, "decision").status is DeadlineStatus.PENDING
    assert not [e for e in j.state.timeline if e.kind is EntryKind.EHC_DEADLINE_BREACHED]
    j.resume_ehc_clock(EhcResumeInput(LA), paused_at + 5 * WEEK)
    assert deadline(j, "decision").due_on == date(2026, 11, 18) + timedelta(days=35)
    assert deadline(j, "final").due_on == date(2027, 2, 24) + timedelta(days=35)
    advance(j, REQUESTED + 11 * WEEK - 2 * DAY)  # 6 weeks of running clock + 5 paused
    assert deadline(j, "decision").status is DeadlineStatus.PENDING
    advance(j, REQUESTED + 11 * WEEK + 2 * DAY)
    assert deadline(j, "decision").status is DeadlineStatus.BREACHED
    kinds = [e.kind for e in j.state.timeline]
    assert EntryKind.EHC_CLOCK_PAUSED in kinds and EntryKind.EHC_CLOCK_RESUMED in kinds
    assert j.state.ehc_assessments[-1].paused_for(REQUESTED + 11 * WEEK) == 5 * WEEK


def test_a_decision_not_to_assess_returns_the_pupil_to_sen_support() -> None:
    j = requested()
    j.ehc_decide(EhcDecisionInput(LA, False, "needs met from SEN Support"), REQUESTED + 3 * WEEK)
    s = j.state
    assert s.stage is Stage.SEN_SUPPORT and s.ehc() is None
    ehc = s.ehc_assessments[-1]
    assert ehc.outcome is EhcOutcome.NOT_ASSESSED and ehc.ended_at is not None
    assert deadline(j, "decision").status is DeadlineStatus.MET
    assert deadline(j, "final").status is DeadlineStatus.CANCELLED
    assert j.next_wakeup() is not None  # the SEN Support plan's review is still on the clock
    advance(j, REQUESTED + 30 * WEEK)
    assert not [e for e in s.timeline if e.kind is EntryKind.EHC_DEADLINE_BREACHED]


def test_a_draft_not_commented_on_lapses_without_a_breach() -> None:
    j = requested()
    j.ehc_decide(EhcDecisionInput(LA, True, "assess"), REQUESTED + WEEK)
    draft_at = REQUESTED + 10 * WEEK
    j.ehc_draft(EhcDraftInput(LA, True, "draft", plan()), draft_at)
    advance(j, draft_at + 16 * DAY)
    window = deadline(j, "parent-comments")
    assert window.status is DeadlineStatus.LAPSED
    j.ehc_finalise(EhcFinalInput(LA, "final"), draft_at + 17 * DAY)
    assert j.state.stage is Stage.EHC_PLAN


# -- moving 2001 journeys in flight --------------------------------------------------------------


def test_school_action_moves_to_sen_support_keeping_the_plan_and_its_review_date() -> None:
    j = at_school_action("p1")
    agree_all(j, T0 + 2 * DAY)
    iep_before = copy.deepcopy(j.state.iep)
    due_before = j.state.review_due_at
    now = T0 + 20 * DAY
    result = j.move_to_code_2014(MigrateInput(ADMIN, "the 2014 Code is in force"), now)
    s = j.state
    assert (s.stage, s.phase, s.policy.name) == (Stage.SEN_SUPPORT, Phase.IEP_ACTIVE, "code_2014")
    assert s.primary_need is SenType.NSA  # no specialist has assessed the need
    assert s.iep is not None and iep_before is not None
    assert (s.iep.iep_id, s.iep.review_date, s.review_due_at) == (
        iep_before.iep_id,
        iep_before.review_date,
        due_before,
    )
    assert s.iep.kind == "sen_support_plan"
    decision = s.decisions()[-1]
    assert decision.actor == ADMIN and decision.step == result.step
    assert (decision.stage_before, decision.stage_after) == (
        Stage.SCHOOL_ACTION,
        Stage.SEN_SUPPORT,
    )
    letters = [n for n in s.outbox if n.kind == "code_2014_transfer"]
    assert sorted(n.recipient_id for n in letters) == PARENTS


def test_action_plus_awaiting_an_ep_keeps_waiting_and_takes_the_assessed_need() -> None:
    waiting = at_action_plus_with_referral("p1")
    agree_all(waiting, T0 + 13 * DAY)
    assert waiting.state.phase is Phase.AWAITING_ASSESSMENT
    waiting.move_to_code_2014(MigrateInput(ADMIN, "2014 Code"), T0 + 20 * DAY)
    assert (waiting.state.stage, waiting.state.phase) == (
        Stage.SEN_SUPPORT,
        Phase.AWAITING_ASSESSMENT,
    )
    referral = waiting.state.open_referrals()[0]
    waiting.complete_assessment(
        AssessmentCompletedInput(
            "rep-1", referral.referral_id, Actor("ep-1", Role.SPECIALIST), "s"
        ),
        T0 + 30 * DAY,
    )
    assert waiting.state.phase is Phase.IEP_ACTIVE

    assessed = at_action_plus_with_referral("p2")
    referral = assessed.state.open_referrals()[0]
    assessed.complete_assessment(
        AssessmentCompletedInput(
            "rep-2", referral.referral_id, Actor("ep-1", Role.SPECIALIST), "s", need=SenType.SLCN
        ),
        T0 + 15 * DAY,
    )
    assessed.move_to_code_2014(MigrateInput(ADMIN, "2014 Code"), T0 + 20 * DAY)
    assert assessed.state.primary_need is SenType.SLCN


def test_a_statutory_assessment_continues_on_the_ehc_timeline() -> None:
    j = at_action_plus_with_referral("p1", completed_after=3)
    j.request_statutory_assessment(
        RequestStatutoryAssessmentInput(SENCO, "needs exceed provision"), T0 + 16 * DAY
    )
    now = T0 + 20 * DAY
    assert "local authority's id" in refused(
        j, j.move_to_code_2014, MigrateInput(ADMIN, "2014 Code"), now
    )
    j.move_to_code_2014(MigrateInput(ADMIN, "2014 Code", local_authority_id="la-7"), now)
    s = j.state
    assert s.stage is Stage.EHC_NEEDS_ASSESSMENT
    ehc = s.ehc()
    assert ehc is not None and ehc.transferred_from == T0 + 16 * DAY
    assert deadline(j, "final").due_on == s.policy.local_date(now + 20 * WEEK)


def test_moving_is_for_admins_and_happens_once() -> None:
    j = at_school_action("p1")
    now = T0 + 20 * DAY
    assert "only an admin" in refused(j, j.move_to_code_2014, MigrateInput(SENCO, "2014 Code"), now)
    j.move_to_code_2014(MigrateInput(ADMIN, "2014 Code"), now)
    assert "already follows the 2014 Code" in refused(
        j, j.move_to_code_2014, MigrateInput(ADMIN, "2014 Code"), now + DAY
    )


def test_a_monitored_pupil_moves_to_the_new_code_without_a_letter() -> None:
    j = Journey.begin(
        StartJourneyInput("p1", "s1", SENCO.id, list(PARENTS), TEACHER, "slow reading"), T0
    )
    j.move_to_code_2014(MigrateInput(ADMIN, "2014 Code"), T0 + DAY)
    assert (j.state.stage, j.state.policy.name) == (Stage.MONITORING, "code_2014")
    assert not j.state.outbox and j.state.decisions()[-1].actor == ADMIN
    j.open_sen_support(OpenSenSupportInput(SENCO, SenType.SEMH, "e", plan()), T0 + 2 * DAY)
    assert j.state.stage is Stage.SEN_SUPPORT


def test_a_referral_under_sen_support() -> None:
    j = on_sen_support()
    j.refer(
        ReferInput(SENCO, SpecialistKind.SPEECH_AND_LANGUAGE, "salt-1", "expressive language?"),
        T0 + 10 * DAY,
    )
    assert j.state.phase is Phase.AWAITING_ASSESSMENT


# -- what auditors see ------------------------------------------------------------------------


def test_the_audit_lists_each_missed_ehc_deadline_and_accepts_the_transfer_letter() -> None:
    from audit import compliance, report

    j = requested()
    advance(j, REQUESTED + 7 * WEEK)
    j.ehc_decide(EhcDecisionInput(LA, True, "late"), REQUESTED + 7 * WEEK)
    breaches = compliance.check(j.state, REQUESTED + 8 * WEEK)
    assert [(b.rule, b.evidence != []) for b in breaches] == [("ehc-statutory-deadline", True)]
    assert "decision whether to assess was due 2026-11-18 (met late on 2026-11-25)" in (
        breaches[0].detail
    )

    moved = at_school_action("p9")
    moved.move_to_code_2014(MigrateInput(ADMIN, "2014 Code"), T0 + 20 * DAY)
    assert compliance.check(moved.state, T0 + 21 * DAY) == []
    assert set(report.STAGE_COLOURS) == set(Stage) - {Stage.CLOSED}


def test_a_2014_state_survives_continue_as_new_through_the_data_converter() -> None:
    """Continue-as-new carries the whole state as a payload: every 2014 field must round-trip."""
    from domain.model import JourneyState
    from workflows.converter import DATA_CONVERTER

    j = requested()
    j.ehc_decide(EhcDecisionInput(LA, True, "assess"), REQUESTED + WEEK)
    j.pause_ehc_clock(
        EhcPauseInput(LA, PauseReason.EXCEPTIONAL_PERSONAL_CIRCUMSTANCES), REQUESTED + 2 * WEEK
    )
    j.resume_ehc_clock(EhcResumeInput(LA), REQUESTED + 3 * WEEK)
    j.ehc_draft(EhcDraftInput(LA, True, "draft", plan()), REQUESTED + 4 * WEEK)
    converter = DATA_CONVERTER.payload_converter
    back = converter.from_payload(converter.to_payload(j.state), JourneyState)
    assert back == j.state
    ehc = back.ehc()
    assert ehc is not None and ehc.draft_plan is not None and ehc.pauses[0].ended_at is not None
    assert back.primary_need is SenType.SPLD and back.policy.is_2014
