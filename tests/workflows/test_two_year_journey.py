"""The whole journey on the Code's own clock, two school years in well under a minute."""

from __future__ import annotations

from email import message_from_bytes, policy

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from domain.model import (
    ConsultationStatus,
    EntryKind,
    ParentReply,
    Phase,
    ReferralStatus,
    Role,
    Stage,
)
from journeys import PARENTS, new_pupil, two_year_journey, until_delivered


async def test_a_two_year_journey_reaches_statutory_assessment_with_nothing_lost(ts) -> None:
    pupil = new_pupil()
    run = await two_year_journey(ts.env, ts.client, ts.settings, pupil)
    state = await until_delivered(ts.client, pupil)

    assert state.stage is Stage.STATUTORY_ASSESSMENT
    assert state.phase is Phase.AWAITING_PARENTS
    # one consultation answered by both parents, one left to lapse as "no response"
    answered = next(
        c for c in state.consultations if c.consultation_id == run.answered_consultation
    )
    assert answered.status is ConsultationStatus.ANSWERED
    assert {r.reply for r in answered.responses} == {ParentReply.AGREE}
    lapsed = next(
        c for c in state.consultations if c.consultation_id == run.unanswered_consultation
    )
    assert lapsed.status is ConsultationStatus.LAPSED
    assert sorted(r.parent_id for r in lapsed.responses) == sorted(PARENTS)
    assert {r.reply for r in lapsed.responses} == {ParentReply.NO_RESPONSE}
    assert lapsed.reminder_sent
    # the referral was chased and then completed by the EP
    referral = next(r for r in state.referrals if r.referral_id == run.referral_id)
    assert referral.status is ReferralStatus.COMPLETED
    assert referral.chases == 1
    # the stage decisions, in order, with who and which triggers
    decisions = state.decisions()
    assert [(d.stage_before, d.stage_after) for d in decisions] == [
        (Stage.MONITORING, Stage.SCHOOL_ACTION),
        (Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS),
        (Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT),
    ]
    assert all(d.actor.role is Role.SENCO for d in decisions)
    assert [t.value for t in decisions[0].triggers] == ["SA-LITERACY-MATHS", "SA-PROGRESS"]
    assert [t.value for t in decisions[1].triggers] == ["AP-LITERACY-MATHS"]
    kinds = [e.kind for e in state.timeline]
    assert kinds.count(EntryKind.REVIEW) + kinds.count(EntryKind.DECISION) >= 5
    assert kinds.count(EntryKind.REVIEW_REMINDER) >= 3
    assert EntryKind.REFERRAL_CHASED in kinds and EntryKind.ASSESSMENT_COMPLETED in kinds
    assert len(state.reviews) == 3

    # a school year went by: the journey continued as new, carrying everything
    assert state.runs >= 2
    description = await run.handle.describe()
    assert description.status is WorkflowExecutionStatus.RUNNING
    first_run = ts.client.get_workflow_handle(
        run.handle.id, run_id=description.raw_description.workflow_execution_info.first_run_id
    )
    first_history = await first_run.fetch_history()
    assert (
        first_history.events[-1].event_type
        is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    )

    # letters: one file per message, each parent consulted on every decision
    letters = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted(ts.outbox.glob("*.eml"))
    ]
    consultations = [m for m in letters if m["X-Senflow-Notice"] == "consultation"]
    assert len(consultations) == len(PARENTS) * len(state.consultations)
    assert len({m["Message-ID"] for m in letters}) == len(letters)
    for c in state.consultations:
        for parent in PARENTS:
            assert any(
                m["To"].startswith(f"parent.{parent}@")
                and c.consultation_id in m.get_body(preferencelist=("plain",)).get_content()
                for m in consultations
            ), (c.consultation_id, parent)
