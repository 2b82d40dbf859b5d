"""The archiver workflow must keep replaying the passes it recorded (scripts/
record_archiver_history.py): a change to it goes behind ``workflow.patched`` like any other."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from archive.messages import ArchiveBatchInput, ArchivePassInput, ArchivePassResult
from archive.workflow import JourneyArchiver
from workflows.converter import DATA_CONVERTER

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*_archiver_pass.json"))


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


async def replay(workflow_class: type, path: Path) -> Exception | None:
    # Imported here: the sandbox re-imports this module for the workflow defined below, and the
    # worker module pulls in native extensions (cryptography) that cannot be imported twice.
    from worker import workflow_runner

    replayer = Replayer(
        workflows=[workflow_class], data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history(path), raise_on_replay_failure=False)
    return result.replay_failure


def test_a_recorded_pass_is_committed_and_repeats_its_activity() -> None:
    assert HISTORIES, "record one: scripts/record_archiver_history.py"
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history(HISTORIES[0]).events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert activities == ["archive_closed_runs", "archive_closed_runs"]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_pass_replays_on_the_current_code(path: Path) -> None:
    assert await replay(JourneyArchiver, path) is None


@workflow.defn(name="JourneyArchiver")
class OneBatchOnly:
    """A careless edit: one batch per pass, whatever is left."""

    @workflow.run
    async def run(self, input: ArchivePassInput) -> ArchivePassResult:
        await workflow.execute_activity(
            "archive_closed_runs",
            ArchiveBatchInput(workflow.info().workflow_id, input.batch_size, input.where),
            start_to_close_timeout=timedelta(minutes=30),
        )
        return ArchivePassResult(batches=1)


async def test_replay_catches_a_changed_archiver() -> None:
    assert await replay(OneBatchOnly, HISTORIES[0]) is not None
