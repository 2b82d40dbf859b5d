from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from worker import build_worker


@dataclass
class Running:
    env: WorkflowEnvironment
    client: Client
    settings: Settings
    outbox: Path


async def _running(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Running]:
    settings = Settings(task_queue=f"tq-{uuid.uuid4()}", outbox_dir=tmp_path / "outbox")
    async with build_worker(env.client, settings):
        yield Running(env, env.client, settings, settings.outbox_dir)


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
