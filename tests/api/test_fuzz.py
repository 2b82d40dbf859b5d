"""schemathesis against the OpenAPI document: random valid and invalid requests to every
operation, a bounded number each. No server error, every response as documented.

The API and a worker run in a thread of their own (their own event loop, their own Temporal
client), as they would in their own process, because schemathesis calls them synchronously."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from access import store
from api.app import create_app
from apistack import key_ring
from domain.model import Role
from records.db import make_engine, migrate, sessions
from settings import Settings
from smtp_sink import free_port
from worker import build_worker

EXAMPLES = int(os.environ.get("SENFLOW_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class Served:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token


@pytest.fixture(scope="module")
def served(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    school = f"fuzz-{uuid.uuid4().hex[:6]}"
    settings_ = Settings(
        task_queue=f"tq-fuzz-{uuid.uuid4()}",
        outbox_dir=tmp / "outbox",
        database_url=f"sqlite:///{tmp}/records.db",
        payload_keys=key_ring("k1"),
        token_secret=b"fuzz-token-secret-0123456789abcdef0123",
    )
    engine = make_engine(settings_.database_url)
    migrate(engine)
    with sessions(engine).begin() as session:
        token = store.add_user(session, "senco-fuzz", Role.SENCO, [school], datetime.now(UTC))
    engine.dispose()
    port = free_port()
    target = dev_env.client.service_client.config.target_host
    ready, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        client = await Client.connect(target, data_converter=settings_.data_converter())
        app = create_app(settings_, client=client)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                           access_log=False, lifespan="off")
        )  # fmt: skip
        async with build_worker(client, settings_):
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.05)
            ready.set()
            await asyncio.to_thread(stop.wait)
            server.should_exit = True
            await serving
            # The journeys the fuzzer managed to start: terminate them with the worker up.
            async for wf in client.list_workflows(f"SenSchool = '{school}'"):
                await client.get_workflow_handle(wf.id).terminate("fuzz finished")

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as err:  # surfaced by the fixture, not lost in the thread
            failure.append(err)
            ready.set()

    thread = threading.Thread(target=run, name="senflow-api-under-fuzz", daemon=True)
    thread.start()
    assert ready.wait(60), "the API did not start"
    assert not failure, failure
    yield Served(f"http://127.0.0.1:{port}", token)
    stop.set()
    thread.join(60)
    assert not failure, failure


def test_no_server_error_and_every_response_as_documented(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    headers = {"Authorization": f"Bearer {served.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    calls: dict[str, int] = {}

    def fuzzer(operation: Any) -> Any:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests on every run: a failure here reproduces
            database=None,
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS)
            calls[operation.label] = calls.get(operation.label, 0) + 1

        return fuzz

    for operation in operations:
        fuzzer(operation)()
    assert set(calls) == {op.label for op in operations}  # every operation was exercised
    assert sum(calls.values()) >= 3 * len(operations), calls
    sys.stderr.write(f"schemathesis: {sum(calls.values())} requests over {len(calls)} operations\n")
