"""Projection activities: write each accepted change into the read model, idempotently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from domain.model import JourneyState
from records import models
from records.projection import project, record_message

log = structlog.get_logger("senflow.activities")


@dataclass
class RecordJourneyInput:
    workflow_id: str
    #: A delta (``Journey.delta_since``): new timeline entries and the records they touch.
    changes: JourneyState


@dataclass
class RecordJourneyResult:
    step: int


class Recorder:
    """Activities that need the read-model database; built in ``worker.py``."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    @activity.defn(name="record_journey")
    async def record_journey(self, input: RecordJourneyInput) -> RecordJourneyResult:
        await asyncio.to_thread(self._write, input)
        log.info(
            "journey_recorded",
            workflow_id=input.workflow_id,
            step=input.changes.step,
            entries=len(input.changes.timeline),
            attempt=activity.info().attempt,
        )
        return RecordJourneyResult(step=input.changes.step)

    def _write(self, input: RecordJourneyInput) -> None:
        with self.session_factory.begin() as session:
            project(session, input.workflow_id, input.changes)

    def record_message(self, row: models.MessageSent) -> None:
        with self.session_factory.begin() as session:
            record_message(session, row)

    def delivery_context(
        self, workflow_id: str, notice_key: str, contact_id: str
    ) -> tuple[models.MessageSent | None, models.Contact | None]:
        """The ledger entry for a notice, else its recipient's contact. One session, so a
        letter costs one connection checkout and one thread hop before it is sent, not two."""
        with self.session_factory() as session:
            sent = session.get(models.MessageSent, (workflow_id, notice_key))
            if sent is not None:
                return sent, None  # delivered already: nothing else is needed
            return None, session.get(models.Contact, contact_id)

    def message_sent(self, workflow_id: str, notice_key: str) -> models.MessageSent | None:
        with self.session_factory() as session:
            return session.get(models.MessageSent, (workflow_id, notice_key))
