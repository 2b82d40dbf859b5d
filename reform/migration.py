"""Moving running code_2001 journeys to the 2014 Code, in flight: ``senflow migrate``.

Idempotent and resumable by construction: the journey itself is the record of whether it has
moved (its policy), every move is one update with a stable update id, and a journey already on
code_2014 is counted, never moved again. Killing a run half-way leaves every journey either
moved or not; running it again finishes the rest.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.commands import MigrateInput, Refused
from domain.journey import Journey
from domain.model import Actor, Stage
from domain.policy import CODE_2014
from service import temporal
from service.errors import NotFound
from workflows.pupil_journey import PupilJourney

#: Where each 2001 stage lands (the phase is kept).
SUCCESSOR = {
    Stage.MONITORING: Stage.MONITORING,
    Stage.SCHOOL_ACTION: Stage.SEN_SUPPORT,
    Stage.SCHOOL_ACTION_PLUS: Stage.SEN_SUPPORT,
    Stage.STATUTORY_ASSESSMENT: Stage.EHC_NEEDS_ASSESSMENT,
}


@dataclass
class Outcome:
    pupil_id: str
    school_id: str
    stage_before: str
    stage_after: str
    result: str  # moved | would_move | already | refused | gone
    reason: str = ""


@dataclass
class MigrationReport:
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    def by_school(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for o in self.outcomes:
            counts[o.school_id][o.result] += 1
        return {school: dict(sorted(c.items())) for school, c in sorted(counts.items())}

    def moves(self) -> dict[str, int]:
        """How many journeys went (or would go) from each stage to which."""
        return dict(
            sorted(
                Counter(
                    f"{o.stage_before} -> {o.stage_after}"
                    for o in self.outcomes
                    if o.result in ("moved", "would_move")
                ).items()
            )
        )

    def totals(self) -> dict[str, int]:
        return dict(sorted(Counter(o.result for o in self.outcomes).items()))


def update_id(pupil_id: str) -> str:
    """One id per journey: a retried or repeated move is the same update to Temporal."""
    return f"move_to_{CODE_2014}-{pupil_id}"


async def migrate(
    client: Client,
    actor: Actor,
    reason: str,
    *,
    schools: Sequence[str] = (),
    local_authority_id: str = "",
    dry_run: bool = False,
    concurrency: int = 8,
    progress: Callable[[Outcome], None] | None = None,
) -> MigrationReport:
    report = MigrationReport(dry_run=dry_run)
    listings = []
    targets: list[str | None] = [*schools] or [None]
    for school in targets:
        listings += await temporal.listing(client, school=school)
    gate = asyncio.Semaphore(concurrency)

    async def one(journey_id: str) -> None:
        async with gate:
            outcome = await _move(client, journey_id, actor, reason, local_authority_id, dry_run)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)

    await asyncio.gather(*(one(listing.journey_id) for listing in listings))
    report.outcomes.sort(key=lambda o: (o.school_id, o.pupil_id))
    return report


async def _move(
    client: Client,
    journey_id: str,
    actor: Actor,
    reason: str,
    local_authority_id: str,
    dry_run: bool,
) -> Outcome:
    try:
        state = await temporal.state(client, journey_id)
    except NotFound:  # no state, so no pupil to name: the journey id says which it was
        return Outcome("?", "?", "?", "?", "gone", f"{journey_id} closed while the run listed it")
    pupil_id = state.pupil_id
    before = state.stage.value
    if state.policy.name == CODE_2014:
        return Outcome(pupil_id, state.school_id, before, before, "already")
    after = SUCCESSOR.get(state.stage, state.stage).value
    cmd = MigrateInput(actor, reason, CODE_2014, local_authority_id)
    if dry_run:  # the same rules the workflow applies, asked of the state it reports
        try:
            Journey(state).check("move_to_code_2014", cmd, datetime.now(UTC))
        except Refused as err:
            return Outcome(pupil_id, state.school_id, before, before, "refused", str(err))
        return Outcome(pupil_id, state.school_id, before, after, "would_move")
    handle = client.get_workflow_handle_for(PupilJourney.run, journey_id)
    try:
        result = await handle.execute_update(
            PupilJourney.move_to_code_2014, cmd, id=update_id(pupil_id)
        )
    except WorkflowUpdateFailedError as err:
        return Outcome(
            pupil_id, state.school_id, before, before, "refused", temporal.cause_message(err)
        )
    except RPCError as err:
        raise temporal.translate(err) from None
    return Outcome(pupil_id, state.school_id, before, result.stage.value, "moved")
