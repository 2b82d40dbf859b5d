"""Determinism: today's workflow code must replay every history recorded by earlier code.

A failure here means a workflow change altered the commands an old journey produced: gate
it behind ``workflow.patched`` (docs/decisions.md), never regenerate the files to pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import workflow_runner
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    return Replayer(
        workflows=[PupilJourney], data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )


def test_golden_histories_are_committed() -> None:
    assert len(HISTORIES) >= 2, "tests/histories/ must hold the recorded journey's runs"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_history_replays_on_the_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


#: The first workflow's history, and one from a lean run (one marker, a timer re-armed only when
#: the wake-up moves, the memo only on a new machine state): it has fewer commands to catch a
#: divergence by, and must still catch this one; v7 is today's (the memo set by the start).
CAUGHT = ["v1_two_year_journey_run1", "v6_two_year_journey_run1", "v7_two_year_journey_run1"]


@pytest.mark.parametrize("name", CAUGHT)
async def test_a_changed_guard_is_caught_by_replay(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # The safety net must be able to fail: shorten the review interval (as a careless edit
    # of the domain would) and the first run's history must no longer replay.
    from datetime import timedelta

    from domain import journey

    original = journey.Journey._review_due

    def earlier(self: journey.Journey, now, review_date):  # type: ignore[no-untyped-def]
        due, day = original(self, now, review_date)
        return due - timedelta(days=20), day

    monkeypatch.setattr(journey.Journey, "_review_due", earlier)
    path = next(p for p in HISTORIES if p.stem == name)
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
