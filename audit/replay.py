"""Prove today's code still reproduces recorded journeys: replay histories with Replayer."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from audit.trail import Run
from worker import workflow_runner
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney


@dataclass
class ReplayOutcome:
    workflow_id: str
    run_id: str
    events: int
    ok: bool
    failure: str = ""  # the non-determinism found: which event, which command


def replayer(data_converter: DataConverter = DATA_CONVERTER) -> Replayer:
    """``data_converter``: with the payload codec when the histories are encrypted (it passes
    unencrypted payloads through, so it replays both)."""
    return Replayer(
        workflows=[PupilJourney], data_converter=data_converter, workflow_runner=workflow_runner()
    )


async def replay_runs(
    runs: list[Run], data_converter: DataConverter = DATA_CONVERTER
) -> list[ReplayOutcome]:
    outcomes = []
    r = replayer(data_converter)
    for run in runs:
        result = await r.replay_workflow(run.history, raise_on_replay_failure=False)
        failure = result.replay_failure
        outcomes.append(
            ReplayOutcome(
                run.history.workflow_id,
                run.run_id,
                len(run.history.events),
                failure is None,
                "" if failure is None else f"{type(failure).__name__}: {failure}",
            )
        )
    return outcomes
