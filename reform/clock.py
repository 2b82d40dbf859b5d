"""The statutory clock report: every EHC needs assessment, weeks elapsed, next deadline, breaches.

Read from the journeys themselves (a query per journey), so the report is exactly what each
journey's durable timers will act on: the clock excludes paused time as the workflow does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import Client

from domain.model import DeadlineStatus, EhcAssessment, JourneyState
from service import temporal
from service.errors import NotFound

Row = dict[str, Any]


def clock_rows(state: JourneyState, now: datetime) -> list[Row]:
    return [_row(state, ehc, now) for ehc in state.ehc_assessments]


def _row(state: JourneyState, ehc: EhcAssessment, now: datetime) -> Row:
    policy = state.policy
    end = ehc.ended_at or now
    running = (end - ehc.requested_at) - ehc.paused_for(end)
    pending = sorted(ehc.pending(), key=lambda d: d.due_at)
    upcoming = pending[0] if pending and ehc.open else None
    pause = ehc.paused()
    return {
        "school": state.school_id,
        "pupil": state.pupil_id,
        "assessment": ehc.assessment_id,
        "local_authority": ehc.local_authority_id,
        "requested_on": policy.local_date(ehc.requested_at).isoformat(),
        "weeks_elapsed": round(running / timedelta(weeks=1), 1),
        "status": "paused" if pause else (ehc.outcome.value if ehc.outcome else "open"),
        "pause_reason": pause.reason.value if pause else "",
        "next_deadline": upcoming.kind.value if upcoming else "",
        "next_due_on": upcoming.due_on.isoformat() if upcoming else "",
        "breaches": ", ".join(
            d.deadline_id for d in ehc.deadlines if d.status is DeadlineStatus.BREACHED
        ),
        "transferred_from_2001": ehc.transferred_from is not None,
    }


async def statutory_clock(
    client: Client, now: datetime, school: str | None = None, concurrency: int = 8
) -> list[Row]:
    """One row per EHC needs assessment of every running journey (optionally one school)."""
    listings = await temporal.listing(client, school=school)
    gate = asyncio.Semaphore(concurrency)

    async def rows_of(journey_id: str) -> list[Row]:
        async with gate:
            try:
                state = await temporal.state(client, journey_id)
            except NotFound:
                return []
        return clock_rows(state, now)

    found = await asyncio.gather(*(rows_of(listing.journey_id) for listing in listings))
    return sorted(
        (row for rows in found for row in rows),
        key=lambda r: (r["school"], r["pupil"], r["assessment"]),
    )
