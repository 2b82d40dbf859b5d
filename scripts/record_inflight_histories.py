"""Record code_2001 journeys left *in flight* as golden histories — on purpose, never from tests.

    .venv/bin/python scripts/record_inflight_histories.py v4   # tests/histories/v4_inflight_*.json

The 2014 reform moves running journeys to new rules, so the suite must replay journeys that
were still running when the code changed: one mid-review (School Action, review due), one
awaiting a specialist (Action Plus, EP referral open and chased), one in statutory
assessment, one still being monitored. Each history is fetched while the journey runs.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from temporalio.client import Client

from journeys import (
    at_school_action,
    awaiting_assessment,
    in_statutory_assessment,
    recording_settings,
    start_cmd,
    time_skipping_server,
    until_delivered,
)
from service import temporal
from worker import build_worker
from workflows.pupil_journey import workflow_id

OUT = ROOT / "tests" / "histories"


async def main(prefix: str) -> None:
    env = await time_skipping_server()
    settings = recording_settings()
    client = env.client
    try:
        async with build_worker(client, settings):
            await temporal.start(
                client,
                settings,
                start_cmd("inflight-monitoring"),
                workflow_id("inflight-monitoring"),
            )
            await at_school_action(client, settings, "inflight-review-due")
            await awaiting_assessment(client, settings, "inflight-awaiting-ep")
            await in_statutory_assessment(client, settings, "inflight-statutory")
            await save(client, prefix, "awaiting-ep", "awaiting_ep")
            await env.sleep(timedelta(weeks=13, days=2))  # reviews fall due, the EP is chased
            for name in ("monitoring", "review-due", "awaiting-ep", "statutory"):
                await save(client, prefix, name, name.replace("-", "_") + "_after_13_weeks")
            for name in ("monitoring", "review-due", "awaiting-ep", "statutory"):
                await client.get_workflow_handle(workflow_id(f"inflight-{name}")).terminate(
                    "recorded"
                )
    finally:
        await env.shutdown()


async def save(client: Client, prefix: str, name: str, label: str) -> None:
    """Write the running journey's history once its notices and projection have caught up."""
    pupil = f"inflight-{name}"
    state = await until_delivered(client, pupil)
    for _ in range(100):  # and the read model has caught up
        if state.projected_step >= state.step:
            break
        await asyncio.sleep(0.05)
        state = await temporal.state(client, workflow_id(pupil))
    history = await client.get_workflow_handle(workflow_id(pupil)).fetch_history()
    path = OUT / f"{prefix}_inflight_{label}.json"
    path.write_text(history.to_json())
    print(f"wrote {path.relative_to(ROOT)}: {state.machine_state}, {len(history.events)} events")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
