"""The worker's runner answers payload-context questions without entering the sandbox
(``worker.DirectContextRunner``); every answer must be the one the sandbox itself gives."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment

import worker
from domain.commands import CloseInput, RecordNoteInput
from domain.model import CloseReason, ConsultationStatus, ParentReply, Stage
from journeys import (
    PARENTS,
    SENCO,
    new_pupil,
    parent_reply,
    start_cmd,
    until_delivered,
    worker_settings,
)
from service import temporal
from tests.workflows.test_journey_behaviour import open_started
from workflows.pupil_journey import PupilJourney, workflow_id


class _Compared(worker._DirectContext):
    """Asks both: the in-sandbox object directly (what the worker uses) and the sandbox's own
    instance (the SDK's path), and keeps every pair."""

    pairs: list[tuple[Any, Any]] = []
    stores: list[tuple[Any, Any]] = []

    def get_serialization_context(self, command_info: Any) -> Any:
        direct = super().get_serialization_context(command_info)
        _Compared.pairs.append((direct, self.instance.get_serialization_context(command_info)))
        return direct

    def get_external_store_context(self, command_info: Any) -> Any:
        direct = super().get_external_store_context(command_info)
        _Compared.stores.append((direct, self.instance.get_external_store_context(command_info)))
        return direct


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> type[_Compared]:
    _Compared.pairs, _Compared.stores = [], []
    assert isinstance(worker.workflow_runner(), worker.DirectContextRunner)
    monkeypatch.setattr(worker, "_DirectContext", _Compared)  # what its instances are built as
    return _Compared


async def test_every_context_is_the_one_the_sandbox_gives(
    ts_env: WorkflowEnvironment, tmp_path: Path, compared: type[_Compared]
) -> None:
    settings = worker_settings(tmp_path)
    client = Client(**ts_env.client.config())
    pupil = new_pupil()
    async with worker.build_worker(client, settings):
        await temporal.start(client, settings, start_cmd(pupil), workflow_id(pupil))
        # letters and read-model rows: activities of both kinds
        await open_started(SimpleNamespace(client=client), pupil)
        await temporal.execute(
            client, workflow_id(pupil), PupilJourney.record_note, RecordNoteInput(SENCO, "a note")
        )
        state = await until_delivered(client, pupil)
        open_ = [c for c in state.consultations if c.status is ConsultationStatus.OPEN]
        await parent_reply(client, pupil, open_[0].consultation_id, PARENTS[0], ParentReply.AGREE)
        await temporal.execute(
            client,
            workflow_id(pupil),
            PupilJourney.close,
            CloseInput(SENCO, CloseReason.NEEDS_MET, "met"),
        )
        handle = client.get_workflow_handle_for(PupilJourney.run, workflow_id(pupil))
        assert (await handle.result()).stage is Stage.CLOSED

    pairs, stores = compared.pairs, compared.stores
    assert pairs and stores  # the worker did ask, through this runner's instances
    assert [d for d, s in pairs if d != s] == []
    assert [d for d, s in stores if d != s] == []
    kinds = {type(d) for d, _ in pairs}
    # a payload of the run itself and one of an activity it scheduled, both answered
    assert WorkflowSerializationContext in kinds
    assert ActivitySerializationContext in kinds
    activities = {d.activity_type for d, _ in pairs if isinstance(d, ActivitySerializationContext)}
    assert {"send_notice", "record_journey"} <= activities


def test_an_unknown_sandbox_instance_is_left_to_the_sdk() -> None:
    class Opaque:  # an instance without the sandbox's globals: only the SDK can answer
        def get_serialization_context(self, command_info: Any) -> Any:
            return "the sdk's answer"

    class Inner:
        def create_instance(self, det: Any) -> Opaque:
            return Opaque()

    runner = worker.DirectContextRunner(Inner())  # type: ignore[arg-type]
    instance = runner.create_instance(None)  # type: ignore[arg-type]
    assert isinstance(instance, Opaque)
    assert instance.get_serialization_context(None) == "the sdk's answer"
