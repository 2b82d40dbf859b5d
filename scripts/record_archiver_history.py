"""Record a JourneyArchiver history for tests/archive/ to replay — on purpose, never from tests.

    .venv/bin/python scripts/record_archiver_history.py v1   # tests/archive/histories/v1_*.json

Two journeys are closed on a fresh dev server, then one archiver pass runs with a batch size
of one, so the history holds the loop's repeat: two activity calls, the first saying "more".
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from temporalio.testing import WorkflowEnvironment

from archive.messages import ArchivePassInput, ArchivePassResult
from archive.workflow import JourneyArchiver
from devserver import find_binary
from domain.commands import CloseInput
from domain.model import CloseReason
from journeys import SENCO, new_pupil, recording_settings, start_cmd
from service import temporal
from worker import build_worker
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney, workflow_id
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTE_KEYS

OUT = ROOT / "tests" / "archive" / "histories"


async def main(prefix: str) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
    )
    settings = recording_settings()
    try:
        async with build_worker(env.client, settings):
            for _ in range(2):
                pupil = new_pupil()
                journey = workflow_id(pupil)
                await temporal.start(env.client, settings, start_cmd(pupil), journey)
                await temporal.execute(
                    env.client,
                    journey,
                    PupilJourney.close,
                    CloseInput(SENCO, CloseReason.NEEDS_MET, "done"),
                )
                await env.client.get_workflow_handle(journey).result()
            where = f"TaskQueue = '{settings.task_queue}'"
            while len([w async for w in env.client.list_workflows(where)]) < 2:
                await asyncio.sleep(0.2)  # visibility is eventually consistent
            handle = await env.client.start_workflow(
                JourneyArchiver.run,
                ArchivePassInput(batch_size=1, where=where),
                id=f"senflow-archiver-{prefix}",
                task_queue=settings.task_queue,
            )
            result: ArchivePassResult = await handle.result()
            assert (result.batches, result.archived) == (2, 2), result
            history = await handle.fetch_history()
            OUT.mkdir(parents=True, exist_ok=True)
            path = OUT / f"{prefix}_archiver_pass.json"
            path.write_text(history.to_json())
            print(f"wrote {path.relative_to(ROOT)} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
