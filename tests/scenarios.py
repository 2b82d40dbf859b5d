"""Journeys built with the pure domain at fixed times, for read-model tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.commands import (
    AssessmentCompletedInput,
    EhcAdviceReceivedInput,
    EhcAdviceRequestInput,
    EhcDecisionInput,
    EhcDraftInput,
    EhcPauseInput,
    EhcResumeInput,
    IepInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
    ParentRespondedInput,
    RecordReviewInput,
    ReferInput,
    RequestEhcAssessmentInput,
    StartJourneyInput,
)
from domain.journey import Journey
from domain.model import (
    Actor,
    ParentReply,
    PauseReason,
    ReviewOutcome,
    Role,
    SenType,
    SpecialistKind,
    Target,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy

T0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
SENCO = Actor("senco-1", Role.SENCO)
TEACHER = Actor("teacher-1", Role.CLASS_TEACHER)


def iep() -> IepInput:
    return IepInput(
        [Target("read 30 words", "in two sessions")], ["phonics"], ["TA 3x20"], ["teacher-1"]
    )


def started(
    pupil: str, school: str = "s1", birth_month: int | None = 9, at: datetime = T0
) -> Journey:
    return Journey.begin(
        StartJourneyInput(
            pupil,
            school,
            SENCO.id,
            ["carer-1", "carer-2"],
            TEACHER,
            "slow reading",
            birth_year=2019,
            birth_month=birth_month,
        ),
        at,
    )


def at_school_action(pupil: str, **kw: object) -> Journey:
    j = started(pupil, **kw)  # type: ignore[arg-type]
    j.open_school_action(
        OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "evidence", iep()),
        T0 + timedelta(days=1),
    )
    return j


def at_action_plus_with_referral(
    pupil: str, completed_after: int | None = None, **kw: object
) -> Journey:
    j = at_school_action(pupil, **kw)
    j.record_review(
        RecordReviewInput(
            SENCO,
            ReviewOutcome.ESCALATE,
            [TargetProgress(0, "little")],
            "little progress",
            iep(),
            [Trigger.AP_LITERACY_MATHS],
        ),
        T0 + timedelta(days=11),
    )
    result = j.refer(
        ReferInput(SENCO, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, "ep-1", "why?"),
        T0 + timedelta(days=12),
    )
    assert result.ref is not None
    if completed_after is not None:
        j.complete_assessment(
            AssessmentCompletedInput(
                f"r-{pupil}", result.ref, Actor("ep-1", Role.SPECIALIST), "report", ["plan"]
            ),
            T0 + timedelta(days=12 + completed_after),
        )
    first = j.state.consultations[0].consultation_id
    j.parent_responded(
        ParentRespondedInput(f"p-{pupil}", first, "carer-1", ParentReply.AGREE),
        T0 + timedelta(days=2),
    )
    return j


def agree_all(j: Journey, now: datetime) -> None:
    for c in j.state.open_consultations():
        for parent in c.unanswered():
            j.parent_responded(
                ParentRespondedInput(
                    f"r-{c.consultation_id}-{parent}", c.consultation_id, parent, ParentReply.AGREE
                ),
                now,
            )


def advance(j: Journey, until: datetime) -> None:
    """Fire every wake-up the journey asks for up to ``until``, as the workflow's timer does."""
    while (wakeup := j.next_wakeup()) is not None and wakeup <= until:
        j.on_time(wakeup)


def with_ehc_draft(pupil: str) -> Journey:
    """A 2014 journey well into an EHC needs assessment: SEN Support with a primary and a
    secondary need, the request, the decision to assess, a pause and resumption of the clock,
    advice asked for and received, warnings on the way, and a draft plan out to the parents."""
    la = Actor("la-7", Role.LOCAL_AUTHORITY)
    plan = IepInput(
        [Target("read 30 words", "in two sessions"), Target("write a sentence", "5+ words")],
        ["phonics"],
        ["TA 3x20 minutes a week"],
        ["teacher-1"],
        expected_impact="reading age up six months by the review",
        pupil_views="likes reading with the TA; finds big groups noisy",
    )
    j = Journey.begin(
        StartJourneyInput(
            pupil,
            "s1",
            SENCO.id,
            ["carer-1", "carer-2"],
            TEACHER,
            "slow reading",
            Policy.code_2014(),
            compulsory_school_age_date=date(2027, 9, 1),
            birth_year=2022,
            birth_month=5,
            year_group="Reception",
        ),
        T0,
    )
    j.open_sen_support(
        OpenSenSupportInput(SENCO, SenType.SPLD, "screening: 12/40", plan, SenType.SLCN),
        T0 + timedelta(days=1),
    )
    agree_all(j, T0 + timedelta(days=2))
    asked = T0 + timedelta(days=30)
    j.request_ehc_assessment(RequestEhcAssessmentInput(SENCO, "la-7", "little progress"), asked)
    agree_all(j, asked + timedelta(days=1))
    week = timedelta(weeks=1)
    j.ehc_decide(EhcDecisionInput(la, True, "evidence of need"), asked + week)
    j.pause_ehc_clock(EhcPauseInput(la, PauseReason.CHILD_ABSENT), asked + 2 * week)
    j.resume_ehc_clock(EhcResumeInput(la), asked + 3 * week)
    advice = j.ehc_request_advice(
        EhcAdviceRequestInput(la, "ep-1", "educational_psychologist"), asked + 3 * week
    )
    assert advice.ref is not None
    advance(j, asked + 8 * week)
    j.ehc_advice_received(EhcAdviceReceivedInput(la, advice.ref), asked + 8 * week)
    advance(j, asked + 14 * week)
    j.ehc_draft(EhcDraftInput(la, True, "draft agreed at panel", plan), asked + 14 * week)
    return j
