"""A dev server of the archive tests' own: Temporal deletes a closed run only after its
history queues' next ack (every 30 s by default; 10–35 s per deletion measured here), so this
one acks every second; and the namespace holds only these tests' journeys, so "every closed
run in the namespace" is something a test can count."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from devserver import SQLITE_PRAGMAS, find_binary
from settings import Settings
from worker import build_worker
from workflows.converter import DATA_CONVERTER
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTE_KEYS

FAST_ACKS = [
    f'history.{queue}ProcessorUpdateAckInterval="1s"' for queue in ("transfer", "visibility")
]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def archive_env() -> AsyncIterator[WorkflowEnvironment]:
    args = []
    for value in [*FAST_ACKS, "limit.historyCount.suggestContinueAsNew=60"]:
        args += ["--dynamic-config-value", value]
    for pragma in SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
        dev_server_extra_args=args,
    )
    yield env
    await env.shutdown()


@dataclass
class Archiving:
    env: WorkflowEnvironment
    client: Client
    settings: Settings
    where: str  # this test's journeys only
    open: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(loop_scope="session")
async def arc(archive_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Archiving]:
    """A worker (journeys and the archiver) on its own task queue, its own records DB."""
    address = archive_env.client.service_client.config.target_host
    settings = Settings(
        temporal_address=address,
        task_queue=f"tq-{uuid.uuid4()}",
        state_dir=tmp_path,
        outbox_dir=tmp_path / "outbox",
        database_url=f"sqlite:///{tmp_path}/records.db",
        auto_migrate=True,
        purge_key="test-purge-key",
    )
    client = archive_env.client
    running = Archiving(archive_env, client, settings, f"TaskQueue = '{settings.task_queue}'")
    async with build_worker(client, settings):
        yield running
        for workflow_id in running.open:  # leave nothing running for the next test
            try:
                await client.get_workflow_handle(workflow_id).terminate("test finished")
            except RPCError:
                pass
