"""Were the rules followed? Checks derived from a journey's recorded history, each breach with
the timeline entries that show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.model import DeadlineStatus, EntryKind, JourneyState, Role, Stage, TimelineEntry

#: Timers fire when a worker gets to them; a little lateness is not a breach.
TOLERANCE = timedelta(hours=1)


@dataclass
class Breach:
    rule: str
    detail: str
    evidence: list[str] = field(default_factory=list)  # "step N at TIME: summary"


def check(state: JourneyState, now: datetime) -> list[Breach]:
    return [
        *parents_consulted_on_every_decision(state),
        *overdue_reviews_were_flagged(state, now),
        *action_plus_only_after_a_school_action_review(state),
        *referrals_chased_on_time(state, now),
        *ehc_statutory_deadlines_met(state),
    ]


def _cite(e: TimelineEntry) -> str:
    return f"step {e.step} at {e.at:%Y-%m-%d %H:%M} UTC: {e.summary}"


def parents_consulted_on_every_decision(state: JourneyState) -> list[Breach]:
    consulted = {e.step for e in state.timeline if e.kind is EntryKind.CONSULTATION_OPENED}
    breaches = []
    for e in state.timeline:
        changes_stage = e.stage_before is not None and e.stage_after is not None
        # Moving to the 2014 Code is an admin's transfer: parents are told by letter.
        transfer = e.actor.role is Role.ADMIN
        if (
            e.kind is EntryKind.DECISION
            and changes_stage
            and e.stage_after is not Stage.CLOSED
            and not transfer
        ):
            if e.step not in consulted:
                breaches.append(
                    Breach(
                        "parents-consulted",
                        f"{e.stage_before} -> {e.stage_after} was decided without "
                        "consulting parents",
                        [_cite(e)],
                    )
                )
    return breaches


def overdue_reviews_were_flagged(state: JourneyState, now: datetime) -> list[Breach]:
    """A review still unrecorded a grace period after it fell due must have been flagged."""
    grace = state.policy.overdue_grace
    breaches = []
    for due in (e for e in state.timeline if e.kind is EntryKind.REVIEW_DUE):
        iep_id = due.ref
        # a review, or any decision that replaced the plan, resolves it
        reviewed = next(
            (
                e
                for e in state.timeline
                if e.step > due.step and e.kind in (EntryKind.REVIEW, EntryKind.DECISION)
            ),
            None,
        )
        deadline = due.at + grace + TOLERANCE
        if reviewed is not None and reviewed.at <= due.at + grace:
            continue
        if now < deadline and reviewed is None:
            continue  # not overdue yet
        flagged = next(
            (e for e in state.timeline if e.kind is EntryKind.REVIEW_OVERDUE and e.ref == iep_id),
            None,
        )
        if flagged is None or flagged.at > deadline:
            evidence = [_cite(due)] + ([_cite(flagged)] if flagged else [])
            if reviewed is not None:
                evidence.append(_cite(reviewed))
            breaches.append(
                Breach(
                    "overdue-review-flagged",
                    f"the review of {iep_id} went past its date by more than {grace.days} days "
                    + ("and was flagged late" if flagged else "with no overdue notice"),
                    evidence,
                )
            )
    return breaches


def action_plus_only_after_a_school_action_review(state: JourneyState) -> list[Breach]:
    breaches = []
    for e in state.timeline:
        if e.kind is not EntryKind.DECISION or e.stage_after is not Stage.SCHOOL_ACTION_PLUS:
            continue
        if e.stage_before is not Stage.SCHOOL_ACTION:
            continue  # a step down from statutory assessment, not an escalation
        by_review = e.summary.startswith("review of")
        earlier = [r for r in state.reviews if r.stage is Stage.SCHOOL_ACTION and r.held_at <= e.at]
        if not by_review and not earlier:
            breaches.append(
                Breach(
                    "action-plus-after-review",
                    "School Action Plus was entered with no completed School Action review",
                    [_cite(e)],
                )
            )
    return breaches


def referrals_chased_on_time(state: JourneyState, now: datetime) -> list[Breach]:
    interval = state.policy.referral_chase_interval
    breaches = []
    for r in state.referrals:
        chases = sorted(
            (
                e
                for e in state.timeline
                if e.kind is EntryKind.REFERRAL_CHASED and e.ref == r.referral_id
            ),
            key=lambda e: e.at,
        )
        end = r.completed_at or (now if r.status.value == "open" else None)
        if end is None:  # withdrawn: chased until the journey closed
            closed = next((e.at for e in state.timeline if e.stage_after is Stage.CLOSED), now)
            end = closed
        expected = 1
        while r.requested_at + expected * interval + TOLERANCE < end:
            due = r.requested_at + expected * interval
            chase = chases[expected - 1] if len(chases) >= expected else None
            if chase is None or chase.at > due + TOLERANCE:
                breaches.append(
                    Breach(
                        "referral-chased",
                        f"{r.referral_id} ({r.kind.value}) was not chased by {due:%Y-%m-%d %H:%M}"
                        + (f" (chased {chase.at:%Y-%m-%d %H:%M})" if chase else ""),
                        [_cite(c) for c in chases] or [f"requested {r.requested_at:%Y-%m-%d}"],
                    )
                )
                break
            expected += 1
    return breaches


def ehc_statutory_deadlines_met(state: JourneyState) -> list[Breach]:
    """Every EHC needs assessment deadline the authority missed (pauses already excluded)."""
    breaches = []
    for ehc in state.ehc_assessments:
        for d in ehc.deadlines:
            if d.status is not DeadlineStatus.BREACHED:
                continue
            late = f"met late on {d.met_at:%Y-%m-%d}" if d.met_at else "still not met"
            evidence = [
                _cite(e)
                for e in state.timeline
                if e.kind is EntryKind.EHC_DEADLINE_BREACHED and e.ref == d.deadline_id
            ]
            breaches.append(
                Breach(
                    "ehc-statutory-deadline",
                    f"{ehc.assessment_id}: {d.description} was due {d.due_on} ({late})",
                    evidence,
                )
            )
    return breaches
