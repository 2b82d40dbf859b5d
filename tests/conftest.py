"""Shared fixtures: real Temporal servers from PyPI packages, never downloaded at run time."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from devserver import SQLITE_PRAGMAS, find_binary
from domain.model import JourneyState
from journeys import time_skipping_server
from settings import Settings
from worker import build_worker
from workflows.converter import DATA_CONVERTER
from workflows.pupil_journey import PupilJourney
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTE_KEYS


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Iterator[None]:
    # temporalio/sdk-python#300: the interpreter can abort at exit (PyGILState_Release) after
    # the suite has passed. Leave with pytest's own status before that teardown can run.
    status = yield
    sys.stdout.flush()  # os._exit skips the interpreter's own flush: keep pytest's summary
    sys.stderr.flush()
    os._exit(int(status))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: a 61-day timer passes in well under a second."""
    env = await time_skipping_server()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (visibility, continue-as-new suggestions), suggesting CAN early."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=60",
            *[arg for p in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", p)],
        ],
    )
    yield env
    await env.shutdown()


@dataclass
class Running:
    env: WorkflowEnvironment
    client: Client
    settings: Settings
    outbox: Path
    started: list[str] = field(default_factory=list)


class _RecordStarts(Interceptor):
    """Remembers every workflow a test starts, so teardown can terminate them."""

    def __init__(self, started: list[str]) -> None:
        self.started = started

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        started = self.started

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                started.append(input.id)
                return await super().start_workflow(input)

        return Outbound(next)


async def _running(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(
        task_queue=f"tq-{uuid.uuid4()}",
        outbox_dir=tmp_path / "outbox",
        database_url=f"sqlite:///{tmp_path}/records.db",
        auto_migrate=True,
    )
    started: list[str] = []
    config = env.client.config()
    config["interceptors"] = [_RecordStarts(started)]
    client = Client(**config)
    async with build_worker(client, settings):
        yield Running(env, client, settings, settings.outbox_dir, started)
        # Terminate while the worker still runs: journeys (or activities) left behind without
        # a worker hold up the time-skipping server's clock for every later test.
        # An activity still in flight when its journey is terminated holds the clock too
        # (measured), so let each journey deliver its notices and record its changes first.
        for workflow_id in set(started):
            handle = client.get_workflow_handle(workflow_id)
            try:
                for _ in range(600):  # up to 30 s on a loaded machine
                    state = await handle.query(PupilJourney.state, result_type=JourneyState)
                    if not state.outbox and state.projected_step >= state.step:
                        break
                    await asyncio.sleep(0.05)
                await handle.terminate("test finished")
            except (RPCError, WorkflowQueryFailedError):
                pass  # already closed


@pytest_asyncio.fixture(loop_scope="session")
async def ts(ts_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Running]:
    """A worker on its own task queue against the time-skipping server."""
    async for running in _running(ts_env, tmp_path):
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def dev(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Running]:
    """A worker on its own task queue against the real dev server."""
    async for running in _running(dev_env, tmp_path):
        yield running
