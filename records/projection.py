"""Writing a journey (or what changed in it) into the read model.

Every write is an upsert keyed by workflow id + the journey's own ids and steps, so a retried
activity, a replayed workflow or a rebuild writes the same rows again and adds none.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from domain.model import EntryKind, JourneyState
from domain.model import Iep as IepRecord
from records import models as m

Row = dict[str, Any]

#: Dialects with INSERT ... ON CONFLICT DO UPDATE: one statement writes or rewrites a row with
#: no SELECT before it. Any other dialect falls back to Session.merge (a SELECT per row).
_UPSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}

_MODEL_OF: dict[Table, type[m.Base]] = {
    mapper.local_table: mapper.class_  # type: ignore[misc]
    for mapper in m.Base.registry.mappers
}
#: Parents before children: foreign keys are enforced (PRAGMA foreign_keys=ON on SQLite), and
#: with Core statements nothing orders the writes for us as the ORM's unit of work did.
_PARENT_FIRST: tuple[type[m.Base], ...] = tuple(
    _MODEL_OF[table] for table in m.Base.metadata.sorted_tables if table in _MODEL_OF
)
_JOURNEYS: Table = m.Journey.__table__  # type: ignore[assignment]


class _Rows:
    """The rows of one ``project()`` call, per model, keyed by primary key: a row written
    twice in one call is written once, with its last values, as merge() would have left it."""

    def __init__(self) -> None:
        self.by_model: dict[type[m.Base], dict[tuple[Any, ...], Row]] = {}

    def add(self, model: type[m.Base], **row: Any) -> None:
        table: Table = model.__table__  # type: ignore[assignment]
        key = tuple(row[c.key] for c in table.primary_key.columns)
        self.by_model.setdefault(model, {})[key] = row


def project(session: Session, workflow_id: str, state: JourneyState) -> None:
    """Upsert ``state`` (a full snapshot or a ``Journey.delta_since`` delta) for one journey."""
    rows = _Rows()
    rows.add(
        m.Pupil,
        pupil_id=state.pupil_id,
        school_id=state.school_id,
        birth_year=state.birth_year,
        birth_month=state.birth_month,
        year_group=state.year_group,
    )
    rows.add(
        m.Journey,
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
    )
    for entry in state.timeline:
        if entry.kind is EntryKind.DECISION and entry.stage_before is not None:
            rows.add(
                m.StageChange,
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
            )
    for iep in [*state.past_ieps, *([state.iep] if state.iep else [])]:
        _project_iep(rows, workflow_id, iep)
    for review in state.reviews:
        rows.add(
            m.Review,
            workflow_id=workflow_id,
            review_id=review.review_id,
            iep_id=review.iep_id,
            stage=review.stage.value,
            outcome=review.outcome.value,
            held_at=review.held_at,
            actor_id=review.actor.id,
            role=review.actor.role.value,
            notes=review.notes,
        )
        for p in review.progress:
            rows.add(
                m.ReviewProgress,
                workflow_id=workflow_id,
                review_id=review.review_id,
                target_index=p.target_index,
                progress=p.progress,
                met=p.met,
            )
    for c in state.consultations:
        rows.add(
            m.Consultation,
            workflow_id=workflow_id,
            consultation_id=c.consultation_id,
            subject=c.subject,
            opened_at=c.opened_at,
            deadline=c.deadline,
            status=c.status.value,
            reminder_sent=c.reminder_sent,
        )
        for r in c.responses:
            rows.add(
                m.ConsultationResponse,
                workflow_id=workflow_id,
                consultation_id=c.consultation_id,
                parent_id=r.parent_id,
                reply=r.reply.value,
                at=r.at,
            )
    for ref in state.referrals:
        rows.add(
            m.Referral,
            workflow_id=workflow_id,
            referral_id=ref.referral_id,
            kind=ref.kind.value,
            specialist_id=ref.specialist_id,
            requested_at=ref.requested_at,
            completed_at=ref.completed_at,
            status=ref.status.value,
            chases=ref.chases,
        )
    _write(session, rows)


def _project_iep(rows: _Rows, workflow_id: str, iep: IepRecord) -> None:
    rows.add(
        m.Iep,
        workflow_id=workflow_id,
        iep_id=iep.iep_id,
        stage=iep.stage.value,
        agreed_at=iep.agreed_at,
        review_date=iep.review_date,
        strategies=list(iep.strategies),
        provision=list(iep.provision),
        responsible=list(iep.responsible),
    )
    for index, target in enumerate(iep.targets):
        rows.add(
            m.IepTarget,
            workflow_id=workflow_id,
            iep_id=iep.iep_id,
            target_index=index,
            description=target.description,
            success_criterion=target.success_criterion,
        )


def record_message(session: Session, row: m.MessageSent) -> None:
    upsert = _UPSERTS.get(session.get_bind().dialect.name)
    if upsert is None:
        session.merge(row)
        return
    # Only the columns the object was given a value for, as the ORM's INSERT would: an unset
    # channel gets the server default on a new row and is left as it was on an existing one.
    state = inspect(row)
    values = {
        attr.columns[0].key: state.dict[attr.key]
        for attr in state.mapper.column_attrs
        if state.dict.get(attr.key) is not None
    }
    table: Table = m.MessageSent.__table__  # type: ignore[assignment]
    session.execute(_upsert_statement(upsert, table, tuple(values)), values)


def _write(session: Session, rows: _Rows) -> None:
    upsert = _UPSERTS.get(session.get_bind().dialect.name)
    for model in _PARENT_FIRST:
        found = rows.by_model.get(model)
        if not found:
            continue
        table: Table = model.__table__  # type: ignore[assignment]
        if upsert is not None:
            # One executemany per table: the whole delta in a statement per table touched.
            session.execute(
                _upsert_statement(upsert, table, tuple(table.columns.keys())), [*found.values()]
            )
            continue
        for row in found.values():
            if table is _JOURNEYS:
                journey = session.get(m.Journey, row["workflow_id"])
                if journey is not None and journey.last_step > row["last_step"]:
                    continue  # never regress to an older change
            session.merge(model(**row))


@lru_cache(maxsize=64)
def _upsert_statement(
    upsert: Callable[[Table], Any], table: Table, columns: tuple[str, ...]
) -> Any:
    """INSERT ``columns`` of ``table``; on a primary-key conflict, overwrite those of them
    that are not part of the key. Built once per shape: the statement is immutable."""
    stmt = upsert(table)
    key = [c.key for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=key,
        set_={name: stmt.excluded[name] for name in columns if name not in key},
        # A late or replayed older change must not regress the journey: the row is only
        # rewritten by a change at least as new as the one it holds (no SELECT to find out).
        where=(table.c.last_step <= stmt.excluded.last_step) if table is _JOURNEYS else None,
    )


def count_rows(session: Session, model: type[m.Base]) -> int:
    return len(session.execute(select(model)).all())
