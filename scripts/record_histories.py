"""Regenerate the golden histories in tests/histories/ — on purpose, never from the tests.

    .venv/bin/python scripts/record_histories.py v2    # writes tests/histories/v2_*.json

Runs the scripted two-school-year journey on the time-skipping server with the current
workflow code and writes every run of its chain (continue-as-new) as Temporal JSON history.
Commit the files only when a change is meant to be the new baseline; old files must keep
replaying (see docs/decisions.md on versioning).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from temporalio.api.enums.v1 import (
    EventType,
)

from journeys import PARENTS, recording_settings, time_skipping_server, two_year_journey
from service import temporal
from worker import build_worker
from workflows.pupil_journey import PupilJourney

OUT = ROOT / "tests" / "histories"


async def main(prefix: str) -> None:
    env = await time_skipping_server()
    settings = recording_settings()
    try:
        async with build_worker(env.client, settings):
            run = await two_year_journey(env, env.client, settings, "golden-1")
            handle = env.client.get_workflow_handle(run.handle.id)
            # a malformed reply and an out-of-place one, so replay covers rejections too
            reply = PupilJourney.parent_responded  # takes raw payloads: it records bad ones
            await temporal.signal(env.client, handle.id, reply, {"nonsense": True})
            await temporal.signal(
                env.client,
                handle.id,
                reply,
                {
                    "reply_id": "late-1",
                    "consultation_id": run.unanswered_consultation,
                    "parent_id": PARENTS[0],
                    "reply": "agree",
                },
            )
            await handle.query(PupilJourney.state)
            run_id = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
            index = 1
            while run_id:
                history = await env.client.get_workflow_handle(
                    handle.id, run_id=run_id
                ).fetch_history()
                last = history.events[-1]
                if last.event_type is not EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                    await handle.terminate("recorded")
                    history = await env.client.get_workflow_handle(
                        handle.id, run_id=run_id
                    ).fetch_history()
                path = OUT / f"{prefix}_two_year_journey_run{index}.json"
                path.write_text(history.to_json())
                print(f"wrote {path.relative_to(ROOT)} ({len(history.events)} events)")
                attrs = last.workflow_execution_continued_as_new_event_attributes
                run_id = attrs.new_execution_run_id if attrs.new_execution_run_id else ""
                index += 1
    finally:
        await env.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
