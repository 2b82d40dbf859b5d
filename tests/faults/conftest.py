"""The fault tier: real subprocesses (dev server, ``senflow worker``), real SMTP and PostgreSQL,
and faults injected from outside. Every process a test starts is stopped by its PID in the
``procs`` fixture's teardown, and the test fails if one was still running by then.

Sizes come from the environment so ``make soak`` runs the same tests bigger; the figures each
test measured are printed at the end of the run and, with ``FAULTS_REPORT=file.json``, saved.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultkit import Processes

#: Figures measured by the tests in this run, by test name (docs/reliability.md quotes them).
FIGURES: dict[str, dict[str, Any]] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this tier so a quick local run can leave it out: ``pytest -m "not faults"``."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()
        for proc in processes.started:
            assert not proc.alive(), f"{proc.name} (pid {proc.pid}) is still running"


@pytest.fixture(scope="module")
def module_procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """``procs`` for a module's shared server and worker."""
    processes = Processes(tmp_path_factory.mktemp("procs"))
    try:
        yield processes
    finally:
        processes.stop_all()
        for proc in processes.started:
            assert not proc.alive(), f"{proc.name} (pid {proc.pid}) is still running"


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Where a test puts what it measured (printed in the summary, saved with FAULTS_REPORT),
    with the machine's load around it: this machine is shared, and timings depend on it."""
    values = FIGURES.setdefault(request.node.name, {})
    values["load average (1 min) before"] = round(os.getloadavg()[0], 2)
    started = time.monotonic()
    yield values
    values["load average (1 min) after"] = round(os.getloadavg()[0], 2)
    values["test seconds"] = round(time.monotonic() - started, 1)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault tier figures")
    for test, values in FIGURES.items():
        terminalreporter.write_line(f"{test}:")
        for name, value in values.items():
            terminalreporter.write_line(f"    {name}: {value}")
    report = os.environ.get("FAULTS_REPORT")
    if report:
        Path(report).write_text(json.dumps(FIGURES, indent=2, default=str) + "\n")
        terminalreporter.write_line(f"figures saved to {report}")
