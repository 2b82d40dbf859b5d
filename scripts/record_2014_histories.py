"""Record journeys under the 2014 Code as golden histories — on purpose, never from tests.

    .venv/bin/python scripts/record_2014_histories.py v5   # tests/histories/v5_code_2014_*.json

Two journeys on the time-skipping server with today's code: one started under code_2014 that
runs an EHC needs assessment through a pause, a missed deadline and a final plan; one started
under code_2001 at School Action and moved to the 2014 Code in flight.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from domain.commands import (
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    IepInput,
    MigrateInput,
    OpenSenSupportInput,
    RequestEhcAssessmentInput,
)
from domain.model import Actor, PauseReason, Role, SenType, Target
from domain.policy import Policy
from journeys import (
    SENCO,
    agree_all,
    at_school_action,
    recording_settings,
    start_cmd,
    time_skipping_server,
)
from service import temporal
from worker import build_worker
from workflows.pupil_journey import PupilJourney, workflow_id

OUT = ROOT / "tests" / "histories"
LA = Actor("la-7", Role.LOCAL_AUTHORITY)
WEEK = timedelta(weeks=1)


def plan() -> IepInput:
    return IepInput(
        [Target("use a picture board", "unprompted 3x a day")],
        ["visual timetable"],
        ["SALT 1x30 minutes a week"],
        ["teacher-1"],
        expected_impact="fewer incidents at transitions",
        pupil_views="likes the picture board",
    )


async def main(prefix: str) -> None:
    env = await time_skipping_server()
    settings = recording_settings()
    client = env.client
    try:
        async with build_worker(client, settings):
            code_2014, moved = workflow_id("golden-2014"), workflow_id("golden-moved")
            await temporal.start(
                client, settings, start_cmd("golden-2014", policy=Policy.code_2014()), code_2014
            )
            act = temporal.execute
            await act(
                client,
                code_2014,
                PupilJourney.open_sen_support,
                OpenSenSupportInput(SENCO, SenType.SLCN, "language screen", plan()),
            )
            await agree_all(client, "golden-2014")
            await act(
                client,
                code_2014,
                PupilJourney.request_ehc_assessment,
                RequestEhcAssessmentInput(SENCO, "la-7", "little progress"),
            )
            await agree_all(client, "golden-2014")
            await at_school_action(client, settings, "golden-moved")
            await env.sleep(5 * WEEK)
            await act(
                client, code_2014, PupilJourney.ehc_decide, EhcDecisionInput(LA, True, "assess")
            )
            await act(
                client,
                code_2014,
                PupilJourney.pause_ehc_clock,
                EhcPauseInput(LA, PauseReason.CHILD_ABSENT),
            )
            await act(
                client,
                moved,
                PupilJourney.move_to_code_2014,
                MigrateInput(Actor("admin-1", Role.ADMIN), "the 2014 Code is in force"),
            )
            await env.sleep(4 * WEEK)
            await act(client, code_2014, PupilJourney.resume_ehc_clock, EhcResumeInput(LA))
            await env.sleep(11 * WEEK + timedelta(days=3))  # the draft deadline is missed
            await act(
                client, code_2014, PupilJourney.ehc_draft, EhcDraftInput(LA, True, "d", plan())
            )
            await agree_all(client, "golden-2014")
            await act(client, code_2014, PupilJourney.ehc_finalise, EhcFinalInput(LA, "final"))
            for journey, label in ((code_2014, "ehc_assessment"), (moved, "moved")):
                state = await temporal.state(client, journey)
                for _ in range(200):
                    if not state.outbox and state.projected_step >= state.step:
                        break
                    await asyncio.sleep(0.05)
                    state = await temporal.state(client, journey)
                history = await client.get_workflow_handle(journey).fetch_history()
                path = OUT / f"{prefix}_code_2014_{label}.json"
                path.write_text(history.to_json())
                print(
                    f"wrote {path.relative_to(ROOT)}: {state.machine_state}, "
                    f"{len(history.events)} events"
                )
                await client.get_workflow_handle(journey).terminate("recorded")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
