"""Journeys built with the pure domain at fixed times, for read-model tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.commands import (
    AssessmentCompletedInput,
    IepInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordReviewInput,
    ReferInput,
    StartJourneyInput,
)
from domain.journey import Journey
from domain.model import (
    Actor,
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Target,
    TargetProgress,
    Trigger,
)

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
