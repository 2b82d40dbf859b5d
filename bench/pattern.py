"""The benchmark's journey: the commands both sides are sent, and what they cost in notices.

The same message pattern runs on senflow (``PupilJourney``) and on the bare baseline
(``BareJourney``): one start, K validated updates (open School Action, K-2 progress notes,
close), Q queries, one signal (a parent's reply), then the journey completes. The storm's
journeys are opened with a short-clock policy whose review falls due at a chosen instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.commands import (
    CloseInput,
    IepInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordNoteInput,
    StartJourneyInput,
)
from domain.journey import FEATURE_REVIEW_INVITATIONS, Journey
from domain.model import Actor, CloseReason, ParentReply, Role, Target, Trigger
from domain.policy import Policy

SENCO = Actor("senco-1", Role.SENCO)
TEACHER = Actor("teacher-1", Role.CLASS_TEACHER)
PARENTS = ["parent-a", "parent-b"]
#: Every feature a journey started today runs with (the worker's patches are all on).
FEATURES = frozenset({FEATURE_REVIEW_INVITATIONS})


def pupil_id(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}"


def storm_policy(review_in: timedelta) -> Policy:
    """A short clock (review interval under a day: a duration, not a calendar date) whose review
    falls due ``review_in`` after the plan is agreed, reminder at the due instant, and nothing
    else (consultation reminders, overdue notices) falling due during the benchmark."""
    return Policy(
        review_interval=max(review_in, timedelta(seconds=1)),
        reminder_lead=timedelta(0),
        overdue_grace=timedelta(hours=12),
        consultation_deadline=timedelta(hours=12),
        consultation_reminder_after=timedelta(hours=6),
        referral_chase_interval=timedelta(hours=12),
    )


def start(pupil: str, policy: Policy | None = None) -> StartJourneyInput:
    return StartJourneyInput(
        pupil_id=pupil,
        school_id="school-1",
        senco_id=SENCO.id,
        parent_ids=list(PARENTS),
        actor=TEACHER,
        concern="slow progress in reading despite differentiation",
        policy=policy or Policy(),
    )


def open_school_action() -> OpenSchoolActionInput:
    return OpenSchoolActionInput(
        SENCO,
        [Trigger.SA_LITERACY_MATHS],
        "reading age 18 months behind",
        IepInput(
            targets=[Target("read 30 high-frequency words", "reads them in two sessions")],
            strategies=["daily phonics in a small group"],
            provision=["TA support 3x20 minutes a week"],
            responsible=[TEACHER.id],
        ),
    )


def note(index: int) -> RecordNoteInput:
    return RecordNoteInput(TEACHER, f"progress note {index}: reads more words this week")


def close() -> CloseInput:
    return CloseInput(SENCO, CloseReason.NEEDS_MET, "targets met; monitoring ends")


def parent_reply(consultation_id: str, reply_id: str) -> ParentRespondedInput:
    return ParentRespondedInput(reply_id, consultation_id, PARENTS[0], ParentReply.AGREE)


def updates(k: int) -> list[tuple[str, object]]:
    """The K updates in order: open School Action, K-2 notes, close (K >= 2)."""
    if k < 2:
        raise ValueError("K must be at least 2 (open School Action ... close)")
    notes = [("record_note", note(i)) for i in range(k - 2)]
    return [("open_school_action", open_school_action()), *notes, ("close", close())]


@dataclass(frozen=True)
class Shape:
    """Notices the real journey queues per message kind: the baseline queues as many."""

    notices: dict[str, int]


def shape(k: int) -> Shape:
    """Run the pattern through the pure domain (no Temporal) and count the notices queued by
    each message, so the baseline mirrors whatever the domain does today."""
    now = datetime(2026, 9, 7, 9, tzinfo=UTC)
    counts: dict[str, int] = {}

    def count(kind: str, before: int, journey: Journey) -> None:
        counts[kind] = max(counts.get(kind, 0), len(journey.state.outbox) - before)

    journey = Journey.begin(start("shape-1", storm_policy(timedelta(minutes=5))), now)
    journey.features = FEATURES
    count("start", 0, journey)
    for name, cmd in updates(k):
        before = len(journey.state.outbox)
        if name == "close":
            # the signal comes before the close in the pattern
            consultation = journey.state.open_consultations()[0].consultation_id
            journey.parent_responded(parent_reply(consultation, "shape-reply"), now)
            count("signal", before, journey)
            before = len(journey.state.outbox)
        getattr(journey, name)(cmd, now)
        count(name, before, journey)
    _count_review(counts, now)
    return Shape(counts)


def _count_review(counts: dict[str, int], now: datetime) -> None:
    """The storm's journey: opened, then its review falls due (reminder + invitations)."""
    journey = Journey.begin(start("shape-2", storm_policy(timedelta(minutes=5))), now)
    journey.features = FEATURES
    journey.open_school_action(open_school_action(), now)
    before = len(journey.state.outbox)
    due = journey.state.review_due_at
    assert due is not None
    journey.on_time(due)
    counts["review_due"] = len(journey.state.outbox) - before
