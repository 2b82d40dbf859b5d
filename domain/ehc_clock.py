"""The statutory clock of an EHC needs assessment (the 2014 Code).

The periods are the policy's (``Policy.ehc_*``, from SEND Regulations 2014 regs 5, 8, 10 and
13): the decision whether to assess (6 weeks), each adviser's advice (6 weeks), a draft plan or
a decision not to issue one (16 weeks), parents' comments on the draft (15 days) and the final
plan (20 weeks). Each is an ``EhcDeadline`` on the ``EhcAssessment``: warned ahead, then met,
lapsed or breached. A pause the regulations allow moves every deadline set before it by its
length.

On the Code's clock a deadline is a calendar date: met if the step is taken any time on the due
day, breached the next school morning. On a short (demo) clock it is an instant.

Pure: no I/O, no clocks. ``now`` comes in as an argument.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from domain.model import (
    DeadlineKind,
    DeadlineStatus,
    EhcAssessment,
    EhcDeadline,
    EhcOutcome,
    EhcPause,
)
from domain.policy import Policy


def start(ehc: EhcAssessment, policy: Policy, now: datetime) -> None:
    """The deadlines every assessment has from the request: decision, draft, final plan."""
    for deadline_id, kind, description, duration in (
        (
            "decision",
            DeadlineKind.DECISION_TO_ASSESS,
            "decision whether to assess",
            policy.ehc_decision_to_assess,
        ),
        (
            "draft",
            DeadlineKind.DRAFT_OR_NOT_ISSUE,
            "draft plan or decision not to issue",
            policy.ehc_draft_or_not_issue,
        ),
        ("final", DeadlineKind.FINAL_PLAN, "final EHC plan", policy.ehc_final_plan),
    ):
        add_deadline(ehc, policy, now, deadline_id, kind, description, duration)


def add_deadline(
    ehc: EhcAssessment,
    policy: Policy,
    now: datetime,
    deadline_id: str,
    kind: DeadlineKind,
    description: str,
    duration: timedelta,
    ref: str | None = None,
) -> EhcDeadline:
    """A deadline ``duration`` after ``now``. On the Code's clock it is met if the step is
    taken any time on the due day; the breach is recorded the next school morning."""
    if policy.short_clock:
        due_at = now + duration
    else:
        due_at = policy.due_instant(policy.local_date(now + duration) + timedelta(days=1))
    warn_at = due_at - policy.ehc_warning_lead
    deadline = EhcDeadline(
        deadline_id=deadline_id,
        kind=kind,
        description=description,
        created_at=now,
        due_at=due_at,
        due_on=due_on(policy, due_at),
        warn_at=warn_at,
        warned=warn_at <= now,
        ref=ref,
    )
    ehc.deadlines.append(deadline)
    return deadline


def due_on(policy: Policy, due_at: datetime) -> date:
    """The last day the step is on time, for a deadline that falls due at ``due_at``."""
    if policy.short_clock:
        return policy.local_date(due_at)
    return policy.local_date(due_at) - timedelta(days=1)


def meet(ehc: EhcAssessment, deadline_id: str, now: datetime) -> None:
    deadline = ehc.deadline(deadline_id)
    if deadline is not None and deadline.met_at is None:
        deadline.met_at = now  # a breached deadline stays breached: met late
        if deadline.status is DeadlineStatus.PENDING:
            deadline.status = DeadlineStatus.MET


def end(ehc: EhcAssessment, now: datetime) -> None:
    """The assessment is over (the journey left the stage): what is still pending is cancelled."""
    if ehc.outcome is None:
        ehc.outcome = EhcOutcome.WITHDRAWN
    ehc.ended_at = now
    pause = ehc.paused()
    if pause is not None:
        pause.ended_at = now
    for d in ehc.pending():
        d.status = DeadlineStatus.CANCELLED


def move_after_pause(
    ehc: EhcAssessment, policy: Policy, pause: EhcPause, now: datetime
) -> timedelta:
    """Move every pending deadline set before ``pause`` by the pause's length (whole days on
    the Code's clock) and return that length."""
    length = now - pause.started_at
    if not policy.short_clock:  # deadlines stay on whole days
        length = timedelta(days=-(-length // timedelta(days=1)))
    for d in ehc.pending():
        if d.created_at > pause.started_at:
            continue
        if policy.short_clock:
            d.due_at += length
        else:  # by calendar days, so the breach stays at 08:00 local across a clock change
            d.due_on += length
            d.due_at = policy.due_instant(d.due_on + timedelta(days=1))
        d.warn_at = d.due_at - policy.ehc_warning_lead
        d.due_on = due_on(policy, d.due_at)
    return length


def span(policy: Policy, length: timedelta) -> str:
    if policy.short_clock:
        return f"{int(length.total_seconds())} s"
    return f"{length.days} days"


def wakeups(ehc: EhcAssessment | None) -> list[datetime]:
    """When the open assessment next needs attention: none while its clock is paused."""
    if ehc is None or ehc.paused() is not None:
        return []
    return [d.due_at if d.warned else d.warn_at for d in ehc.pending()]
