"""Worker levers from the environment: resource-based activity slots (a CPU target)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import WorkerTuner

import worker
from journeys import new_pupil, start_cmd, until_delivered, worker_settings
from service import temporal
from settings import Settings
from tests.workflows.test_journey_behaviour import open_started
from workflows.pupil_journey import workflow_id


def test_fixed_slots_unless_a_cpu_target_is_set() -> None:
    fixed = worker.worker_options(Settings.from_env({"SENFLOW_MAX_ACTIVITIES": "7"}))
    assert fixed["max_concurrent_activities"] == 7 and "tuner" not in fixed

    env = {"SENFLOW_ACTIVITY_CPU_TARGET": "0.8", "SENFLOW_MAX_ACTIVITIES": "40"}
    settings = Settings.from_env(env)
    assert settings.activity_cpu_target == 0.8
    tuned = worker.worker_options(settings)
    # the SDK refuses a tuner beside slot counts, so the counts are not passed at all
    assert isinstance(tuned["tuner"], WorkerTuner)
    assert "max_concurrent_activities" not in tuned
    assert "max_concurrent_workflow_tasks" not in tuned


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_a_cpu_target_outside_0_to_1_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="share of the machine's CPU"):
        Settings.from_env({"SENFLOW_ACTIVITY_CPU_TARGET": value})


async def test_a_worker_with_resource_based_activity_slots_delivers(
    ts_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = worker_settings(tmp_path)
    settings = dataclasses.replace(settings, activity_cpu_target=0.8)
    client = Client(**ts_env.client.config())
    pupil = new_pupil()
    async with worker.build_worker(client, settings):
        await temporal.start(client, settings, start_cmd(pupil), workflow_id(pupil))
        await open_started(SimpleNamespace(client=client), pupil)
        state = await until_delivered(client, pupil)
    assert state.projected_step == state.step and not state.outbox
    assert len(list(settings.outbox_dir.glob("*consultation*"))) == 2  # both parents' letters
