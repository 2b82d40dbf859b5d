"""The client side of each scenario, once for senflow and once for the bare baseline.

Both drivers send the same messages in the same order; senflow's go through the journey's
Temporal calls (``service.temporal.execute``, ``signal``, ``state``), messages named by reference.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from bench import pattern
from bench.baseline import BareInput, BareJourney, BareState, BareUpdate
from domain.commands import PupilJourneyInput, StartJourneyInput
from domain.model import EntryKind, Phase
from domain.policy import Policy
from service import temporal
from workflows.pupil_journey import PupilJourney, workflow_id

#: The pattern's updates, as the journey's own handlers (the baseline takes their names).
UPDATES: dict[str, Any] = {
    "open_school_action": PupilJourney.open_school_action,
    "record_note": PupilJourney.record_note,
    "close": PupilJourney.close,
}


@dataclass
class Timings:
    updates: list[float] = field(default_factory=list)
    queries: list[float] = field(default_factory=list)


@dataclass
class StormCheck:
    reached: bool  # the journey is in review_due (senflow) / its timer fired (bare)
    due_at: float  # epoch seconds


class Driver:
    """One side of the comparison."""

    name = ""

    def __init__(self, client: Client, task_queue: str, run_id: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.run_id = run_id

    def pupil(self, scenario: str, index: int) -> str:
        return pattern.pupil_id(f"{self.run_id}{scenario}", index)

    def workflow_id(self, pupil: str) -> str:
        raise NotImplementedError

    async def journey(self, pupil: str, k: int, q: int, t: Timings) -> None:
        raise NotImplementedError

    async def storm_setup(self, pupil: str, due_at: datetime) -> None:
        raise NotImplementedError

    async def storm_check(self, pupil: str) -> StormCheck:
        raise NotImplementedError


class SenflowDriver(Driver):
    name = "senflow"

    def workflow_id(self, pupil: str) -> str:
        return workflow_id(pupil)

    async def _start(self, cmd: StartJourneyInput) -> WorkflowHandle[PupilJourney, object]:
        # What temporal.start sends, without the state query it adds after starting.
        return await self.client.start_workflow(
            PupilJourney.run,
            PupilJourneyInput(start=cmd),
            id=workflow_id(cmd.pupil_id),
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=temporal.initial_search_attributes(cmd),
            memo=temporal.initial_memo(),
        )

    async def journey(self, pupil: str, k: int, q: int, t: Timings) -> None:
        handle = await self._start(pattern.start(pupil))
        steps = pattern.updates(k)
        for name, cmd in steps[:-1]:
            t0 = time.perf_counter()
            await temporal.execute(self.client, self.workflow_id(pupil), UPDATES[name], cmd)
            t.updates.append(time.perf_counter() - t0)
        consultation = ""
        for _ in range(q):
            t0 = time.perf_counter()
            state = await temporal.state(self.client, self.workflow_id(pupil))
            t.queries.append(time.perf_counter() - t0)
            consultation = state.open_consultations()[0].consultation_id
        if not consultation:  # Q = 0: the signal still needs the consultation's id
            state = await temporal.state(self.client, self.workflow_id(pupil))
            consultation = state.open_consultations()[0].consultation_id
        await temporal.signal(
            self.client,
            self.workflow_id(pupil),
            PupilJourney.parent_responded,
            pattern.parent_reply(consultation, f"r-{uuid.uuid4().hex[:12]}"),
        )
        name, cmd = steps[-1]
        t0 = time.perf_counter()
        await temporal.execute(self.client, self.workflow_id(pupil), UPDATES[name], cmd)
        t.updates.append(time.perf_counter() - t0)
        await handle.result()

    async def storm_setup(self, pupil: str, due_at: datetime) -> None:
        # The plan is agreed a moment after the start: aim the review at ``due_at``.
        review_in = due_at - datetime.now(UTC)
        await self._start(pattern.start(pupil, pattern.storm_policy(review_in)))
        await temporal.execute(
            self.client,
            self.workflow_id(pupil),
            PupilJourney.open_school_action,
            pattern.open_school_action(),
        )

    async def storm_check(self, pupil: str) -> StormCheck:
        state = await temporal.state(self.client, self.workflow_id(pupil))
        assert state.review_due_at is not None
        reached = state.phase is Phase.REVIEW_DUE and any(
            e.kind is EntryKind.REVIEW_DUE for e in state.timeline
        )
        return StormCheck(reached, state.review_due_at.timestamp())

    async def hold_setup(self, pupil: str) -> None:
        """A journey at rest: School Action, sleeping until a review a term away."""
        await self._start(pattern.start(pupil, Policy()))
        await temporal.execute(
            self.client,
            self.workflow_id(pupil),
            PupilJourney.open_school_action,
            pattern.open_school_action(),
        )


class BareDriver(Driver):
    name = "baseline"

    def __init__(
        self,
        client: Client,
        task_queue: str,
        run_id: str,
        notices: dict[str, int],
        mirror: bool,
        publish: bool = False,
    ) -> None:
        super().__init__(client, task_queue, run_id)
        self.notices = notices
        self.mirror = mirror
        self.publish = publish
        self._due: dict[str, datetime] = {}

    def workflow_id(self, pupil: str) -> str:
        return f"bare-{pupil}"

    async def _start(
        self, pupil: str, due_at: datetime | None = None
    ) -> WorkflowHandle[BareJourney, object]:
        return await self.client.start_workflow(
            BareJourney.run,
            BareInput(dict(self.notices), self.mirror, due_at, self.publish),
            id=self.workflow_id(pupil),
            task_queue=self.task_queue,
            # what senflow's start carries (visibility baseline only)
            search_attributes=(
                temporal.initial_search_attributes(pattern.start(pupil)) if self.publish else None
            ),
            memo=temporal.initial_memo() if self.publish else None,
        )

    async def _act(self, handle: WorkflowHandle[BareJourney, object], name: str) -> None:
        update = BareJourney.finish if name == "close" else BareJourney.act
        await handle.execute_update(
            update, BareUpdate(name, "some text"), id=f"{name}-{uuid.uuid4()}"
        )

    async def journey(self, pupil: str, k: int, q: int, t: Timings) -> None:
        handle = await self._start(pupil)
        steps = pattern.updates(k)
        for name, _ in steps[:-1]:
            t0 = time.perf_counter()
            await self._act(handle, name)
            t.updates.append(time.perf_counter() - t0)
        for _ in range(q):
            t0 = time.perf_counter()
            await handle.query(BareJourney.state)
            t.queries.append(time.perf_counter() - t0)
        await handle.signal(BareJourney.reply, BareUpdate("signal", f"r-{uuid.uuid4().hex[:12]}"))
        t0 = time.perf_counter()
        await self._act(handle, steps[-1][0])
        t.updates.append(time.perf_counter() - t0)
        await handle.result()

    async def storm_setup(self, pupil: str, due_at: datetime) -> None:
        # Due instants are exact here; senflow's land a few ms after the aim (measured, not
        # assumed: its lag is taken from the journey's own review_due_at).
        self._due[pupil] = due_at
        handle = await self._start(pupil, due_at)
        await self._act(handle, "open_school_action")

    async def storm_check(self, pupil: str) -> StormCheck:
        handle = self.client.get_workflow_handle_for(BareJourney.run, self.workflow_id(pupil))
        state: BareState = await handle.query(BareJourney.state)
        return StormCheck(state.review_due, self._due[pupil].timestamp())
