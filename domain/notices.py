"""The notices a journey owes: who is told what, in which words, with which facts.

Each function queues one kind of notice on ``state.outbox`` (one ``Notice`` per recipient, keyed
on the step that owes it, so a retried delivery never sends it twice). ``lines`` are the plain
summary; ``facts`` feed the letter templates. The journey decides *when* a notice is owed; this
module only words it.

Pure: no I/O, no clocks. Instants come in as arguments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from domain.commands import ParentRespondedInput
from domain.model import (
    Consultation,
    EhcAssessment,
    EhcDeadline,
    EntryKind,
    Iep,
    JourneyState,
    Notice,
    Referral,
    Role,
    Stage,
    Trigger,
)
from domain.policy import Policy

#: Entries whose reason and triggers a consultation letter explains.
DECIDING = (EntryKind.DECISION, EntryKind.REVIEW, EntryKind.REFERRAL)

#: How a trigger reads in a letter to parents.
TRIGGER_WORDS: dict[Trigger, str] = {
    Trigger.SA_PROGRESS: "little or no progress even when teaching targets the difficulty",
    Trigger.SA_LITERACY_MATHS: "difficulty developing literacy or mathematics skills",
    Trigger.SA_EMOTIONAL_BEHAVIOURAL: "persistent emotional or behavioural difficulties",
    Trigger.SA_SENSORY_PHYSICAL: "sensory or physical needs, with little progress despite "
    "specialist equipment",
    Trigger.SA_COMMUNICATION: "communication and interaction difficulties",
    Trigger.AP_PROGRESS_LONG: "little or no progress in specific areas over a long period",
    Trigger.AP_BELOW_EXPECTED: "working substantially below children of the same age",
    Trigger.AP_LITERACY_MATHS: "continuing difficulty with literacy and mathematics",
    Trigger.AP_EMOTIONAL_BEHAVIOURAL: "difficulties that substantially interfere with learning "
    "despite an individual behaviour programme",
    Trigger.AP_SENSORY_PHYSICAL: "needs specialist equipment or regular specialist advice",
    Trigger.AP_COMMUNICATION: "communication difficulties that are a substantial barrier to "
    "learning and friendships",
}


# -- queueing -------------------------------------------------------------------------------


def queue(
    s: JourneyState,
    step: int,
    kind: str,
    role: Role,
    recipients: list[str],
    subject: str,
    lines: list[str],
    facts: dict[str, Any] | None = None,
) -> None:
    """Queue a message. ``lines`` is the plain summary; ``facts`` feed the letter templates
    (what changed, what is due when), with the pupil's reference and who to contact."""
    common = {
        "pupil_ref": s.pupil_id,
        "school": s.school_id,
        "senco": s.senco_id,
        "stage": s.stage_label,
    }
    for recipient in recipients:
        s.outbox.append(
            Notice(
                key=f"{step}-{kind}-{recipient}",
                kind=kind,
                recipient_role=role,
                recipient_id=recipient,
                subject=subject,
                lines=list(lines),
                facts={**common, **(facts or {})},
            )
        )


def queue_to_staff(
    s: JourneyState,
    step: int,
    kind: str,
    iep: Iep,
    subject: str,
    lines: list[str],
    facts: dict[str, Any],
) -> None:
    """To the SENCO and the staff responsible for the plan, each once."""
    staff = list(dict.fromkeys([s.senco_id, *iep.responsible]))
    queue(s, step, kind, Role.SENCO, staff, subject, lines, facts)


def iep_facts(iep: Iep) -> dict[str, Any]:
    return {
        "iep_id": iep.iep_id,
        "review_date": iep.review_date.isoformat(),
        "targets": [
            {"description": t.description, "criterion": t.success_criterion} for t in iep.targets
        ],
        "strategies": list(iep.strategies),
        "provision": list(iep.provision),
        "responsible": list(iep.responsible),
    }


def day(policy: Policy, instant: datetime) -> str:
    """An instant as people read it: the local date (and time, on the demo's short clock)."""
    if policy.short_clock:
        return instant.astimezone(policy.zone()).strftime("%Y-%m-%d %H:%M")
    return policy.local_date(instant).isoformat()


# -- decisions and parents ----------------------------------------------------------------


def consultation_letter(s: JourneyState, step: int, consultation: Consultation) -> None:
    """Parents consulted on a decision: what was decided and why, the plan, and when to reply."""
    subject, now = consultation.subject, consultation.opened_at
    lines = [f"Decision: {subject}.", f"Stage: {s.stage_label}."]
    if s.iep is not None and s.stage is not Stage.CLOSED:
        lines.append(f"Plan {s.iep.iep_id}, next review on {s.iep.review_date}.")
        lines += [
            f"Target: {t.description} (success: {t.success_criterion})" for t in s.iep.targets
        ]
    lines.append(
        f"Please reply to consultation {consultation.consultation_id} "
        f"by {day(s.policy, consultation.deadline)} (agree, disagree or ask to meet)."
    )
    decided = next((e for e in s.timeline if e.step == step and e.kind in DECIDING), None)
    facts: dict[str, Any] = {
        "consultation_id": consultation.consultation_id,
        "decision": subject,
        "reason": decided.reason if decided else "",
        "needs": [TRIGGER_WORDS[t] for t in decided.triggers] if decided else [],
        "trigger_codes": [t.value for t in decided.triggers] if decided else [],
        "decided_by": decided.actor.role.value if decided else "",
        "decided_on": day(s.policy, now),
        "reply_by": day(s.policy, consultation.deadline),
    }
    if s.iep is not None:
        facts.update(iep_facts(s.iep))
    queue(
        s,
        step,
        "consultation",
        Role.PARENT,
        consultation.parent_ids,
        f"Your child's SEN support: {subject}",
        lines,
        facts,
    )


def consultation_reminder(s: JourneyState, step: int, c: Consultation) -> None:
    """To the parents who have not yet replied."""
    queue(
        s,
        step,
        "consultation_reminder",
        Role.PARENT,
        c.unanswered(),
        f"Reminder: please reply by {day(s.policy, c.deadline)}",
        [
            f"We have not yet heard from you about: {c.subject}.",
            f"Reply to consultation {c.consultation_id} by {day(s.policy, c.deadline)}.",
        ],
        {
            "consultation_id": c.consultation_id,
            "subject": c.subject,
            "opened_on": day(s.policy, c.opened_at),
            "reply_by": day(s.policy, c.deadline),
        },
    )


def parent_reply(
    s: JourneyState, step: int, consultation: Consultation, cmd: ParentRespondedInput
) -> None:
    """The SENCO told of a parent's reply that was not simply agreement."""
    queue(
        s,
        step,
        "parent_reply",
        Role.SENCO,
        [s.senco_id],
        f"Parent reply for pupil {s.pupil_id}: {cmd.reply.value}",
        [f"On: {consultation.subject} ({consultation.consultation_id})"],
        {
            "consultation_id": consultation.consultation_id,
            "subject": consultation.subject,
            "reply": cmd.reply.value,
            "parent_id": cmd.parent_id,
            "comments": cmd.comments,
        },
    )


def closure(s: JourneyState, step: int, subject: str, now: datetime) -> None:
    """Nothing is left to decide: parents are told, not consulted."""
    queue(
        s,
        step,
        "closure",
        Role.PARENT,
        list(s.parent_ids),
        f"Your child's SEN support has ended: {subject}",
        [
            f"Decision: {subject}.",
            f"No reply is needed. Contact the SENCO, {s.senco_id}, with any questions.",
        ],
        {
            "decision": subject,
            "decided_on": day(s.policy, now),
            "close_reason": s.close_reason.value if s.close_reason else "",
        },
    )


def code_2014_transfer(
    s: JourneyState, step: int, summary: str, label_before: str, now: datetime
) -> None:
    """Parents told how their child's support reads under the 2014 Code."""
    facts: dict[str, Any] = {
        "decision": summary,
        "decided_on": day(s.policy, now),
        "stage_before": label_before,
        "stage_after": s.stage_label,
        "census_code": s.census_code,
        "primary_need": s.primary_need.value if s.primary_need else "",
    }
    lines = [
        "The SEN Code of Practice 2014 replaces School Action and School Action Plus "
        "with one category, SEN Support.",
        f"Your child's support moves from {label_before} to {s.stage_label}.",
    ]
    if s.iep is not None:
        lines.append(f"The current plan continues; its review stays on {s.iep.review_date}.")
        facts.update(iep_facts(s.iep))
    if s.stage is Stage.EHC_NEEDS_ASSESSMENT:
        lines.append(
            "The statutory assessment continues as an EHC needs assessment, on the new "
            "20-week timeline."
        )
    queue(
        s,
        step,
        "code_2014_transfer",
        Role.PARENT,
        list(s.parent_ids),
        "Your child's SEN support under the new Code of Practice",
        lines,
        facts,
    )


# -- reviews ----------------------------------------------------------------------------------


def review_reminder(s: JourneyState, step: int, iep: Iep) -> None:
    queue_to_staff(
        s,
        step,
        "review_reminder",
        iep,
        f"IEP review due {iep.review_date} for pupil {s.pupil_id}",
        [f"The review of {iep.iep_id} is due on {iep.review_date}."],
        iep_facts(iep),
    )


def review_invitation(s: JourneyState, step: int, iep: Iep) -> None:
    queue(
        s,
        step,
        "review_invitation",
        Role.PARENT,
        list(s.parent_ids),
        f"Your child's plan will be reviewed on {iep.review_date}",
        [f"The review of {iep.iep_id} is due on {iep.review_date}."],
        iep_facts(iep),
    )


def review_overdue(s: JourneyState, step: int, iep: Iep) -> None:
    queue_to_staff(
        s,
        step,
        "review_overdue",
        iep,
        f"OVERDUE: IEP review for pupil {s.pupil_id}",
        [f"The review of {iep.iep_id} was due on {iep.review_date} and has not been recorded."],
        {**iep_facts(iep), "grace_days": s.policy.overdue_grace.days},
    )


# -- referrals --------------------------------------------------------------------------------


def referral_request(s: JourneyState, step: int, referral: Referral) -> None:
    """The specialist asked for an assessment, and told how to reply."""
    queue(
        s,
        step,
        "referral_request",
        Role.SPECIALIST,
        [referral.specialist_id],
        f"Assessment requested for pupil {s.pupil_id} ({referral.referral_id})",
        [
            f"The school asks for a {referral.kind.value} assessment.",
            f"Question: {referral.question}",
            f"Reply with: senflow assessment-completed {s.pupil_id} "
            f"--referral {referral.referral_id} --summary ...",
        ],
        {
            "referral_id": referral.referral_id,
            "kind": referral.kind.value,
            "question": referral.question,
            "requested_on": day(s.policy, referral.requested_at),
            "chase_after": day(s.policy, referral.next_chase_at),
        },
    )


def referral_chase(s: JourneyState, step: int, r: Referral) -> None:
    queue(
        s,
        step,
        "referral_chase",
        Role.SPECIALIST,
        [r.specialist_id],
        f"Chase: assessment for pupil {s.pupil_id} ({r.referral_id})",
        [
            f"Requested {day(s.policy, r.requested_at)}; not yet received.",
            f"Question: {r.question}",
        ],
        {
            "referral_id": r.referral_id,
            "kind": r.kind.value,
            "question": r.question,
            "requested_on": day(s.policy, r.requested_at),
            "chase": r.chases,
        },
    )


def referral_escalated(s: JourneyState, step: int, r: Referral) -> None:
    """The SENCO told that a referral is still unanswered after being chased."""
    queue(
        s,
        step,
        "referral_escalated",
        Role.SENCO,
        [s.senco_id],
        f"Referral {r.referral_id} still open after two chases",
        [
            f"The {r.kind.value} referral requested "
            f"{day(s.policy, r.requested_at)} has not been answered."
        ],
        {
            "referral_id": r.referral_id,
            "kind": r.kind.value,
            "specialist_id": r.specialist_id,
            "requested_on": day(s.policy, r.requested_at),
            "chase": r.chases,
        },
    )


def assessment_received(s: JourneyState, step: int, referral: Referral, now: datetime) -> None:
    """The SENCO told that a specialist's assessment came in, with its recommendations."""
    queue(
        s,
        step,
        "assessment_received",
        Role.SENCO,
        [s.senco_id],
        f"Assessment received for pupil {s.pupil_id} ({referral.referral_id})",
        [f"The {referral.kind.value} assessment is complete."]
        + [f"Recommendation: {r}" for r in referral.recommendations],
        {
            "referral_id": referral.referral_id,
            "kind": referral.kind.value,
            "summary": referral.summary,
            "recommendations": list(referral.recommendations),
            "waited_days": (now - referral.requested_at).days,
        },
    )


# -- the EHC needs assessment -----------------------------------------------------------------


def ehc_request(s: JourneyState, step: int, ehc: EhcAssessment, kind: str, subject: str) -> None:
    """The local authority told of an assessment it now runs, with its statutory deadlines."""
    queue(
        s,
        step,
        kind,
        Role.LOCAL_AUTHORITY,
        [ehc.local_authority_id],
        f"{subject}: pupil {s.pupil_id} ({ehc.assessment_id})",
        [f"Decide whether to assess by {d.due_on}." for d in ehc.deadlines[:1]]
        + [f"Final plan due by {d.due_on}." for d in ehc.deadlines if d.deadline_id == "final"],
        {
            "assessment_id": ehc.assessment_id,
            "deadlines": {d.deadline_id: d.due_on.isoformat() for d in ehc.deadlines},
        },
    )


def ehc_milestone(s: JourneyState, step: int, summary: str, now: datetime) -> None:
    """Parents told of a step the local authority took."""
    queue(
        s,
        step,
        "ehc_milestone",
        Role.PARENT,
        list(s.parent_ids),
        f"EHC needs assessment: {summary}",
        [f"On {day(s.policy, now)} {summary}."],
        {"decision": summary, "decided_on": day(s.policy, now)},
    )


def ehc_advice_request(
    s: JourneyState, step: int, advice_id: str, adviser_id: str, kind: str, due_on: date
) -> None:
    queue(
        s,
        step,
        "ehc_advice_request",
        Role.SPECIALIST,
        [adviser_id],
        f"Advice requested for an EHC needs assessment ({advice_id})",
        [f"Please give your {kind} advice by {due_on}."],
        {"advice_id": advice_id, "kind": kind, "due_on": due_on.isoformat()},
    )


def ehc_deadline_alert(
    s: JourneyState, step: int, ehc: EhcAssessment, d: EhcDeadline, kind: str, what: str
) -> None:
    """The local authority, then the SENCO, told that a statutory deadline is near or missed."""
    facts = {
        "assessment_id": ehc.assessment_id,
        "deadline": d.kind.value,
        "description": d.description,
        "due_on": d.due_on.isoformat(),
    }
    subject = f"EHC needs assessment {what}: {d.description} (pupil {s.pupil_id})"
    lines = [f"{d.description}: due {d.due_on}."]
    queue(s, step, kind, Role.LOCAL_AUTHORITY, [ehc.local_authority_id], subject, lines, facts)
    queue(s, step, kind, Role.SENCO, [s.senco_id], subject, lines, facts)
