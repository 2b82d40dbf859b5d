"""Writing a journey (or what changed in it) into the read model.

Every write is an upsert keyed by workflow id + the journey's own ids and steps, so a retried
activity, a replayed workflow or a rebuild writes the same rows again and adds none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.model import EntryKind, JourneyState
from domain.model import Iep as IepRecord
from records import models as m


def project(session: Session, workflow_id: str, state: JourneyState) -> None:
    """Upsert ``state`` (a full snapshot or a ``Journey.delta_since`` delta) for one journey."""
    _upsert(
        session,
        m.Pupil(
            pupil_id=state.pupil_id,
            school_id=state.school_id,
            birth_year=state.birth_year,
            birth_month=state.birth_month,
            year_group=state.year_group,
        ),
    )
    journey = session.get(m.Journey, workflow_id)
    if journey is None or journey.last_step <= state.step:  # never regress to an older change
        _upsert(
            session,
            m.Journey(
                workflow_id=workflow_id,
                pupil_id=state.pupil_id,
                school_id=state.school_id,
                policy=state.policy.name,
                stage=state.stage.value,
                stage_label=state.stage_label,
                phase=state.phase.value,
                early_years=state.early_years,
                opened_at=state.opened_at,
                closed_at=state.closed_at,
                close_reason=state.close_reason.value if state.close_reason else None,
                next_review_at=state.review_due_at,
                next_review_date=state.next_review_date,
                overdue=state.overdue,
                last_step=state.step,
            ),
        )
    for entry in state.timeline:
        if entry.kind is EntryKind.DECISION and entry.stage_before is not None:
            _upsert(
                session,
                m.StageChange(
                    workflow_id=workflow_id,
                    step=entry.step,
                    from_stage=entry.stage_before.value,
                    to_stage=(entry.stage_after or entry.stage_before).value,
                    at=entry.at,
                    actor_id=entry.actor.id,
                    role=entry.actor.role.value,
                    action=entry.summary,
                    reason=entry.reason,
                    triggers=[t.value for t in entry.triggers],
                ),
            )
    for iep in [*state.past_ieps, *([state.iep] if state.iep else [])]:
        _project_iep(session, workflow_id, iep)
    for review in state.reviews:
        _upsert(
            session,
            m.Review(
                workflow_id=workflow_id,
                review_id=review.review_id,
                iep_id=review.iep_id,
                stage=review.stage.value,
                outcome=review.outcome.value,
                held_at=review.held_at,
                actor_id=review.actor.id,
                role=review.actor.role.value,
                notes=review.notes,
            ),
        )
        for p in review.progress:
            _upsert(
                session,
                m.ReviewProgress(
                    workflow_id=workflow_id,
                    review_id=review.review_id,
                    target_index=p.target_index,
                    progress=p.progress,
                    met=p.met,
                ),
            )
    for c in state.consultations:
        _upsert(
            session,
            m.Consultation(
                workflow_id=workflow_id,
                consultation_id=c.consultation_id,
                subject=c.subject,
                opened_at=c.opened_at,
                deadline=c.deadline,
                status=c.status.value,
                reminder_sent=c.reminder_sent,
            ),
        )
        for r in c.responses:
            _upsert(
                session,
                m.ConsultationResponse(
                    workflow_id=workflow_id,
                    consultation_id=c.consultation_id,
                    parent_id=r.parent_id,
                    reply=r.reply.value,
                    at=r.at,
                ),
            )
    for ref in state.referrals:
        _upsert(
            session,
            m.Referral(
                workflow_id=workflow_id,
                referral_id=ref.referral_id,
                kind=ref.kind.value,
                specialist_id=ref.specialist_id,
                requested_at=ref.requested_at,
                completed_at=ref.completed_at,
                status=ref.status.value,
                chases=ref.chases,
            ),
        )


def _project_iep(session: Session, workflow_id: str, iep: IepRecord) -> None:
    _upsert(
        session,
        m.Iep(
            workflow_id=workflow_id,
            iep_id=iep.iep_id,
            stage=iep.stage.value,
            agreed_at=iep.agreed_at,
            review_date=iep.review_date,
            strategies=list(iep.strategies),
            provision=list(iep.provision),
            responsible=list(iep.responsible),
        ),
    )
    for index, target in enumerate(iep.targets):
        _upsert(
            session,
            m.IepTarget(
                workflow_id=workflow_id,
                iep_id=iep.iep_id,
                target_index=index,
                description=target.description,
                success_criterion=target.success_criterion,
            ),
        )


def record_message(session: Session, row: m.MessageSent) -> None:
    _upsert(session, row)


def _upsert(session: Session, row: Any) -> None:
    # merge() selects by primary key, then inserts or updates: portable across SQLite and
    # PostgreSQL, and one journey's projection is written by one activity at a time.
    session.merge(row)


def count_rows(session: Session, model: type[m.Base]) -> int:
    return len(session.execute(select(model)).all())
