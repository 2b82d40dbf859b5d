"""The Code's rules, one test each, no server. A refusal is checked twice: the reason given,
and that the journey's state did not change."""

from __future__ import annotations

import copy
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import pytest

from domain.commands import (
    AssessmentCompletedInput,
    CloseInput,
    EscalateInput,
    IepInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
    StepDownInput,
)
from domain.journey import Journey, check_start
from domain.model import (
    Actor,
    CloseReason,
    ConsultationStatus,
    EntryKind,
    ParentReply,
    Phase,
    ReferralStatus,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Stage,
    Target,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy, add_months, compulsory_school_age_date
from scenarios import SENCO, T0, TEACHER, at_action_plus_with_referral, at_school_action, iep

EP = Actor("ep-1", Role.SPECIALIST)
DAY = timedelta(days=1)


def refused(journey: Journey, action, cmd, now: datetime = T0 + 20 * DAY) -> str:
    """Run an action expected to be refused; return the reason and prove nothing changed."""
    before = copy.deepcopy(asdict(journey.state))
    with pytest.raises(Refused) as err:
        action(cmd, now)
    assert asdict(journey.state) == before
    return str(err.value)


def started(**kw: object) -> Journey:
    return Journey.begin(
        StartJourneyInput(
            "p1", "s1", SENCO.id, ["carer-1", "carer-2"], TEACHER, "slow reading", **kw
        ),  # type: ignore[arg-type]
        T0,
    )


def progress(n: int = 1) -> list[TargetProgress]:
    return [TargetProgress(i, "some") for i in range(n)]


def reviewed_at_school_action() -> Journey:
    j = at_school_action("p1")
    j.record_review(
        RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, progress(), "ok", iep()), T0 + 10 * DAY
    )
    return j


# -- entering School Action --------------------------------------------------------------------


def test_opening_school_action_needs_a_school_action_trigger() -> None:
    j = started()
    reason = refused(
        j,
        j.open_school_action,
        OpenSchoolActionInput(SENCO, [Trigger.AP_PROGRESS_LONG], "evidence", iep()),
    )
    assert "SA-*" in reason
    assert "SA-*" in refused(
        j, j.open_school_action, OpenSchoolActionInput(SENCO, [], "evidence", iep())
    )


def test_opening_school_action_needs_evidence() -> None:
    j = started()
    assert "evidence" in refused(
        j, j.open_school_action, OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "   ", iep())
    )


def test_opening_school_action_needs_a_complete_iep() -> None:
    j = started()
    for broken, words in [
        (IepInput([], ["s"], ["p"], ["t"]), "target"),
        (IepInput([Target("read", "")], ["s"], ["p"], ["t"]), "success criterion"),
        (IepInput([Target("read", "c")], [], ["p"], ["t"]), "strategy"),
        (IepInput([Target("read", "c")], ["s"], [], ["t"]), "provision"),
        (IepInput([Target("read", "c")], ["s"], ["p"], []), "responsible"),
    ]:
        assert words in refused(
            j,
            j.open_school_action,
            OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", broken),
        )


def test_only_a_senco_opens_school_action() -> None:
    j = started()
    for actor in [
        TEACHER,
        Actor("x", Role.PARENT),
        Actor("x", Role.ADMIN),
        Actor("x", Role.AUDITOR),
        EP,
    ]:
        assert "only a SENCO" in refused(
            j, j.open_school_action, OpenSchoolActionInput(actor, [Trigger.SA_PROGRESS], "e", iep())
        )


def test_opening_school_action_agrees_an_iep_and_consults_every_parent() -> None:
    j = at_school_action("p1")
    s = j.state
    assert (s.stage, s.phase) == (Stage.SCHOOL_ACTION, Phase.AWAITING_PARENTS)
    assert s.iep is not None and s.iep.stage is Stage.SCHOOL_ACTION
    assert s.next_review_date == date(2026, 12, 8)  # 13 weeks after the decision on 8 Sept
    [consultation] = s.consultations
    assert consultation.parent_ids == ["carer-1", "carer-2"]
    letters = [n for n in s.outbox if n.kind == "consultation"]
    assert sorted(n.recipient_id for n in letters) == ["carer-1", "carer-2"]


# -- School Action Plus ---------------------------------------------------------------------------


def test_escalating_without_a_completed_review_is_refused() -> None:
    j = at_school_action("p1")
    reason = refused(
        j, j.escalate, EscalateInput(SENCO, [Trigger.AP_PROGRESS_LONG], "no progress", iep())
    )
    assert "completed School Action review" in reason


def test_escalating_after_a_review_needs_action_plus_triggers_and_a_new_iep() -> None:
    j = reviewed_at_school_action()
    assert "AP-*" in refused(
        j, j.escalate, EscalateInput(SENCO, [Trigger.SA_PROGRESS], "no progress", iep())
    )
    old_iep = j.state.iep
    j.escalate(
        EscalateInput(SENCO, [Trigger.AP_BELOW_EXPECTED], "no progress", iep()), T0 + 20 * DAY
    )
    assert j.state.stage is Stage.SCHOOL_ACTION_PLUS
    assert j.state.iep is not old_iep and j.state.iep is not None
    assert j.state.iep.stage is Stage.SCHOOL_ACTION_PLUS


def test_a_review_with_outcome_escalate_is_itself_the_completed_review() -> None:
    j = at_school_action("p1")
    j.record_review(
        RecordReviewInput(
            SENCO, ReviewOutcome.ESCALATE, progress(), "little", iep(), [Trigger.AP_LITERACY_MATHS]
        ),
        T0 + 10 * DAY,
    )
    assert j.state.stage is Stage.SCHOOL_ACTION_PLUS
    assert [r.stage for r in j.state.reviews] == [Stage.SCHOOL_ACTION]
    assert j.state.decisions()[-1].triggers == [Trigger.AP_LITERACY_MATHS]


# -- referrals and statutory assessment -------------------------------------------------------


def test_referrals_are_only_made_from_action_plus() -> None:
    j = at_school_action("p1")
    reason = refused(j, j.refer, ReferInput(SENCO, SpecialistKind.CAMHS, "c1", "why?"))
    assert "cannot refer" in reason


def test_a_second_open_referral_of_the_same_kind_is_refused() -> None:
    j = at_action_plus_with_referral("p1")
    assert "already open" in refused(
        j, j.refer, ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, "ep-2", "again?")
    )
    j.refer(
        ReferInput(SENCO, SpecialistKind.SPEECH_AND_LANGUAGE, "salt-1", "speech?"), T0 + 20 * DAY
    )
    assert len(j.state.open_referrals()) == 2


def test_only_the_assigned_specialist_completes_a_referral() -> None:
    j = at_action_plus_with_referral("p1")
    ref = j.state.referrals[0].referral_id
    for actor in [Actor("ep-2", Role.SPECIALIST), Actor("ep-1", Role.SENCO)]:
        assert "another specialist" in refused(
            j, j.complete_assessment, AssessmentCompletedInput("r", ref, actor, "x")
        )
    assert "no referral" in refused(
        j, j.complete_assessment, AssessmentCompletedInput("r", "referral-99", EP, "x")
    )


def test_completing_the_last_open_referral_ends_awaiting_assessment() -> None:
    j = at_action_plus_with_referral("p1")
    # the escalation's consultation settles, so the referral holds the phase
    for c in j.state.open_consultations():
        for parent in c.unanswered():
            j.parent_responded(
                ParentRespondedInput(
                    f"r{c.step}{parent}", c.consultation_id, parent, ParentReply.AGREE
                ),
                T0 + 13 * DAY,
            )
    assert j.state.phase is Phase.AWAITING_ASSESSMENT
    ref = j.state.referrals[0].referral_id
    j.complete_assessment(AssessmentCompletedInput("r", ref, EP, "report", ["plan"]), T0 + 30 * DAY)
    assert j.state.phase is Phase.IEP_ACTIVE
    assert j.state.referrals[0].status is ReferralStatus.COMPLETED
    assert "completed" in refused(
        j, j.complete_assessment, AssessmentCompletedInput("r2", ref, EP, "again")
    )


def test_a_statutory_assessment_request_needs_a_completed_specialist_assessment() -> None:
    j = at_action_plus_with_referral("p1")
    cmd = RequestStatutoryAssessmentInput(SENCO, "needs exceed provision")
    assert "specialist assessment" in refused(j, j.request_statutory_assessment, cmd)
    ref = j.state.referrals[0].referral_id
    j.complete_assessment(AssessmentCompletedInput("r", ref, EP, "report"), T0 + 30 * DAY)
    j.request_statutory_assessment(cmd, T0 + 31 * DAY)
    assert j.state.stage is Stage.STATUTORY_ASSESSMENT
    assert j.state.iep is not None  # the plan continues while the LA decides


# -- reviews ----------------------------------------------------------------------------------


def test_a_continue_review_needs_a_new_iep_and_keeps_the_stage() -> None:
    j = at_school_action("p1")
    cmd = RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, progress(), "ok")
    assert "IEP is required" in refused(j, j.record_review, cmd)
    first = j.state.iep
    j.record_review(
        RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, progress(), "ok", iep()), T0 + 10 * DAY
    )
    assert j.state.stage is Stage.SCHOOL_ACTION and j.state.iep is not first
    assert first in j.state.past_ieps


def test_a_review_records_progress_once_for_each_target() -> None:
    j = at_school_action("p1")
    for bad in (
        [],
        [TargetProgress(0, "x"), TargetProgress(0, "y")],
        [TargetProgress(1, "x")],
        [TargetProgress(0, " ")],
    ):
        reason = refused(
            j, j.record_review, RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, bad, "n", iep())
        )
        assert "progress" in reason


def test_stepping_down_from_school_action_leaves_the_register_and_retires_the_iep() -> None:
    j = at_school_action("p1")
    j.record_review(
        RecordReviewInput(SENCO, ReviewOutcome.STEP_DOWN, progress(), "targets met"), T0 + 10 * DAY
    )
    assert (j.state.stage, j.state.iep, j.state.next_review_date) == (Stage.MONITORING, None, None)
    assert len(j.state.past_ieps) == 1


def test_stepping_down_from_action_plus_returns_to_school_action() -> None:
    j = at_action_plus_with_referral("p1")
    j.step_down(StepDownInput(SENCO, "good progress"), T0 + 30 * DAY)
    assert j.state.stage is Stage.SCHOOL_ACTION and j.state.iep is not None


def test_a_review_can_close_the_journey_with_a_reason() -> None:
    j = at_school_action("p1")
    cmd = RecordReviewInput(SENCO, ReviewOutcome.CLOSE, progress(), "needs met")
    assert "why the journey closes" in refused(j, j.record_review, cmd)
    cmd.close_reason = CloseReason.NEEDS_MET
    j.record_review(cmd, T0 + 10 * DAY)
    assert (j.state.stage, j.state.close_reason) == (Stage.CLOSED, CloseReason.NEEDS_MET)


def test_a_class_teacher_records_notes_and_continue_reviews_but_moves_no_stage() -> None:
    j = at_school_action("p1")
    j.record_note(RecordNoteInput(TEACHER, "reads 10 words"), T0 + 3 * DAY)
    j.record_review(
        RecordReviewInput(TEACHER, ReviewOutcome.CONTINUE, progress(), "ok", iep()), T0 + 10 * DAY
    )
    for outcome in (ReviewOutcome.STEP_DOWN, ReviewOutcome.CLOSE):
        cmd = RecordReviewInput(
            TEACHER, outcome, progress(), "x", close_reason=CloseReason.NEEDS_MET
        )
        assert "only a SENCO" in refused(j, j.record_review, cmd)
    assert "only a SENCO" in refused(j, j.close, CloseInput(TEACHER, CloseReason.NEEDS_MET, "x"))
    assert "only a SENCO or class teacher" in refused(
        j, j.record_note, RecordNoteInput(Actor("a", Role.AUDITOR), "peek")
    )


# -- the review clock -------------------------------------------------------------------------


def test_an_iep_review_date_more_than_six_months_ahead_is_refused() -> None:
    j = started()
    late = iep()
    late.review_date = add_months(date(2026, 9, 7), 6) + DAY
    assert "every 6 months" in refused(
        j, j.open_school_action, OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", late), T0
    )
    late.review_date = add_months(date(2026, 9, 7), 6)
    j.open_school_action(OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", late), T0)


def test_under_compulsory_school_age_reviews_are_at_most_four_months_apart() -> None:
    j = started(compulsory_school_age_date=date(2027, 3, 31))
    assert j.state.early_years
    late = iep()
    late.review_date = date(2027, 1, 8)
    assert "every 4 months" in refused(
        j, j.open_school_action, OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", late), T0
    )


def test_a_review_date_not_after_today_is_refused() -> None:
    j = started()
    today = iep()
    today.review_date = date(2026, 9, 7)
    assert "not after today" in refused(
        j, j.open_school_action, OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", today), T0
    )


def run_until(j: Journey, kind: EntryKind) -> datetime:
    for _ in range(50):
        wake = j.next_wakeup()
        assert wake is not None
        j.on_time(wake)
        if any(e.kind is kind for e in j.state.timeline):
            return wake
    raise AssertionError(kind)


def test_reminder_then_due_then_overdue_each_at_its_time() -> None:
    j = at_school_action("p1")
    due = j.state.review_due_at
    assert due == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)  # 08:00 London = 08:00 UTC in winter
    assert run_until(j, EntryKind.REVIEW_REMINDER) == due - timedelta(days=14)
    assert run_until(j, EntryKind.REVIEW_DUE) == due and j.state.phase is Phase.REVIEW_DUE
    assert not j.state.overdue
    assert run_until(j, EntryKind.REVIEW_OVERDUE) == due + timedelta(days=7)
    assert j.state.overdue
    staff = sorted(n.recipient_id for n in j.state.outbox if n.kind == "review_overdue")
    assert staff == ["senco-1", "teacher-1"]
    j.record_review(
        RecordReviewInput(SENCO, ReviewOutcome.CONTINUE, progress(), "late", iep()),
        due + timedelta(days=8),
    )
    assert not j.state.overdue and j.state.review_due_at is not None
    assert j.state.review_due_at > due + timedelta(days=80)


def test_a_review_date_in_summer_time_fires_at_eight_in_the_morning_london_time() -> None:
    j = started()
    summer = iep()
    summer.review_date = date(2027, 3, 30)  # British Summer Time began on 28 March 2027
    j.open_school_action(
        OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", summer), T0 + 100 * DAY
    )
    assert j.state.review_due_at == datetime(2027, 3, 30, 7, 0, tzinfo=UTC)


def test_an_unanswered_consultation_gets_one_reminder_then_no_response_is_recorded() -> None:
    j = at_school_action("p1")
    [c] = j.state.consultations
    j.parent_responded(
        ParentRespondedInput("r1", c.consultation_id, "carer-1", ParentReply.AGREE), T0 + 2 * DAY
    )
    run_until(j, EntryKind.CONSULTATION_REMINDER)
    reminders = [n.recipient_id for n in j.state.outbox if n.kind == "consultation_reminder"]
    assert reminders == ["carer-2"]  # only the parent who has not answered
    run_until(j, EntryKind.CONSULTATION_LAPSED)
    assert c.status is ConsultationStatus.LAPSED
    assert {r.parent_id: r.reply for r in c.responses} == {
        "carer-1": ParentReply.AGREE,
        "carer-2": ParentReply.NO_RESPONSE,
    }
    assert j.state.phase is Phase.IEP_ACTIVE


def test_both_parents_answering_settles_the_decision() -> None:
    j = at_school_action("p1")
    [c] = j.state.consultations
    for parent in ("carer-1", "carer-2"):
        j.parent_responded(
            ParentRespondedInput(f"r-{parent}", c.consultation_id, parent, ParentReply.AGREE),
            T0 + 2 * DAY,
        )
    assert c.status is ConsultationStatus.ANSWERED and j.state.phase is Phase.IEP_ACTIVE


def test_a_referral_is_chased_and_the_senco_told_after_the_second_chase() -> None:
    j = at_action_plus_with_referral("p1")
    chased = run_until(j, EntryKind.REFERRAL_CHASED)
    assert chased == j.state.referrals[0].requested_at + timedelta(weeks=6)
    assert not [n for n in j.state.outbox if n.kind == "referral_escalated"]
    for _ in range(10):
        if j.state.referrals[0].chases == 2:
            break
        wake = j.next_wakeup()
        assert wake is not None
        j.on_time(wake)
    assert [n.recipient_id for n in j.state.outbox if n.kind == "referral_escalated"] == ["senco-1"]


def test_notice_keys_are_unique() -> None:
    j = at_action_plus_with_referral("p1")
    for _ in range(30):
        wake = j.next_wakeup()
        if wake is None:
            break
        j.on_time(wake)
    keys = [n.key for n in j.state.outbox]
    assert len(keys) == len(set(keys))


# -- compulsory school age --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "reaches"),
    [
        (date(2021, 12, 31), date(2026, 12, 31)),  # fifth birthday on a prescribed day
        (date(2022, 1, 1), date(2027, 3, 31)),
        (date(2022, 3, 31), date(2027, 3, 31)),
        (date(2022, 4, 1), date(2027, 8, 31)),
        (date(2022, 8, 31), date(2027, 8, 31)),
        (date(2022, 9, 1), date(2027, 12, 31)),
        (date(2020, 2, 29), date(2025, 3, 31)),  # leap-day child: five on 1 March 2025
    ],
)
def test_compulsory_school_age_is_the_next_prescribed_day_on_or_after_the_fifth_birthday(
    born: date, reaches: date
) -> None:
    assert compulsory_school_age_date(born) == reaches


def test_the_early_years_label_changes_on_that_date_without_any_action() -> None:
    j = started(compulsory_school_age_date=date(2026, 12, 31))
    j.open_school_action(OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "e", iep()), T0 + DAY)
    assert j.state.stage_label == "early_years_action"
    steps = j.state.step
    wake = run_until(j, EntryKind.COMPULSORY_SCHOOL_AGE)
    assert wake == Policy().due_instant(date(2026, 12, 31))
    assert (j.state.stage, j.state.stage_label) == (Stage.SCHOOL_ACTION, "school_action")
    assert not j.state.early_years and j.state.step > steps


# -- replies and closure ----------------------------------------------------------------------


def test_bad_parent_replies_are_refused() -> None:
    j = at_school_action("p1")
    cid = j.state.consultations[0].consultation_id
    cases = [
        (
            ParentRespondedInput("r", "consultation-99", "carer-1", ParentReply.AGREE),
            "no consultation",
        ),
        (ParentRespondedInput("r", cid, "stranger", ParentReply.AGREE), "was not consulted"),
        (ParentRespondedInput("r", cid, "carer-1", ParentReply.NO_RESPONSE), "recorded by"),
    ]
    for cmd, words in cases:
        before = copy.deepcopy(asdict(j.state))
        with pytest.raises(Refused, match=words):
            j.parent_responded(cmd, T0 + 2 * DAY)
        assert asdict(j.state) == before
    j.parent_responded(ParentRespondedInput("r", cid, "carer-1", ParentReply.AGREE), T0 + 2 * DAY)
    with pytest.raises(Refused, match="already answered"):
        j.parent_responded(
            ParentRespondedInput("r2", cid, "carer-1", ParentReply.DISAGREE), T0 + 3 * DAY
        )


def test_closing_withdraws_what_is_open_and_then_refuses_everything() -> None:
    j = at_action_plus_with_referral("p1")
    j.close(CloseInput(SENCO, CloseReason.LEFT_SCHOOL, "moved abroad"), T0 + 40 * DAY)
    s = j.state
    assert (s.stage, s.phase, s.iep) == (Stage.CLOSED, Phase.ENDED, None)
    assert {r.status for r in s.referrals} == {ReferralStatus.WITHDRAWN}
    assert not s.open_consultations()
    assert sorted(n.recipient_id for n in s.outbox if n.kind == "closure") == ["carer-1", "carer-2"]
    assert j.next_wakeup() is None
    assert "cannot" in refused(j, j.record_note, RecordNoteInput(SENCO, "late"))
    assert "cannot" in refused(j, j.step_down, StepDownInput(SENCO, "x"))


def test_a_start_with_bad_references_or_no_parent_is_refused() -> None:
    good = StartJourneyInput("p1", "s1", "senco-1", ["carer-1"], TEACHER, "concern")
    check_start(good)
    for field, value, words in [
        ("pupil_id", "Jane Smith", "opaque"),
        ("pupil_id", "", "opaque"),
        ("parent_ids", [], "parent"),
        ("concern", "", "concern"),
        ("actor", Actor("x", Role.PARENT), "SENCO or class teacher"),
    ]:
        bad = copy.deepcopy(good)
        setattr(bad, field, value)
        with pytest.raises(Refused, match=words):
            check_start(bad)
