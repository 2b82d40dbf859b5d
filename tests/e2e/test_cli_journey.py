"""End to end, as a person would: `senflow up` (dev server + worker subprocesses) and the
`senflow` CLI as subprocesses, one journey from a concern to School Action Plus."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smtp_sink import free_port

SENFLOW = str(Path(sys.executable).parent / "senflow")
IEP = [
    "--target",
    "read 30 words::reads them in two sessions",
    "--strategy",
    "daily phonics",
    "--provision",
    "TA 3x20 min a week",
    "--responsible",
    "teacher-1",
]
SENCO = ["--actor", "senco-1", "--role", "senco"]


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SENFLOW, *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def json(self, *args: str) -> object:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Path]]:
    state = tmp_path_factory.mktemp("senflow-state")
    port, ui_port, api_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SENFLOW_STATE_DIR": str(state),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "SENFLOW_LOG_FORMAT": "json",
        "SENFLOW_HEARTBEAT_FILE": str(state / "worker.alive"),
    }
    up = subprocess.Popen(
        [
            SENFLOW,
            "up",
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--api-port",
            str(api_port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    cli = Cli(env)
    try:
        deadline = time.monotonic() + 60
        while cli("list").returncode != 0:
            assert up.poll() is None, "senflow up exited early"
            assert time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.5)
        yield cli, state
    finally:
        up.send_signal(signal.SIGINT)
        try:
            output, _ = up.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            output, _ = up.communicate()
        assert up.returncode == 0, output
        assert "stopped." in output
        with socket.socket() as sock:  # the server is gone with it
            assert sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.e2e
def test_a_journey_from_concern_to_action_plus_through_the_cli(service) -> None:
    cli, state_dir = service
    pupil = f"e2e-{os.getpid()}"
    started = cli(
        "start",
        pupil,
        "--school",
        "school-9",
        "--senco",
        "senco-1",
        "--parent",
        "carer-1",
        "--parent",
        "carer-2",
        "--concern",
        "slow reading",
        "--actor",
        "teacher-1",
        "--role",
        "class_teacher",
    )
    assert started.returncode == 0, started.stderr

    refused = cli(
        "escalate",
        pupil,
        *SENCO,
        "--trigger",
        "AP-PROGRESS-LONG",
        "--evidence",
        "no progress",
        *IEP,
    )
    assert refused.returncode == 1
    assert "cannot escalate" in refused.stderr

    opened = cli(
        "open-school-action",
        pupil,
        *SENCO,
        "--trigger",
        "SA-LITERACY-MATHS",
        "--evidence",
        "reading age 18 months behind",
        *IEP,
    )
    assert opened.returncode == 0, opened.stderr

    early = cli(
        "escalate",
        pupil,
        *SENCO,
        "--trigger",
        "AP-PROGRESS-LONG",
        "--evidence",
        "no progress",
        *IEP,
    )
    assert early.returncode == 1 and "completed School Action review" in early.stderr

    reviewed = cli(
        "review",
        pupil,
        *SENCO,
        "--outcome",
        "escalate",
        "--progress",
        "0:reads 10 of 30 words",
        "--notes",
        "little progress despite the IEP",
        "--trigger",
        "AP-LITERACY-MATHS",
        *IEP,
    )
    assert reviewed.returncode == 0, reviewed.stderr

    shown = cli.json("show", pupil)
    assert isinstance(shown, dict)
    assert shown["stage"] == "school_action_plus"
    assert shown["phase"] == "awaiting_parents"
    assert shown["iep"]["stage"] == "school_action_plus"
    assert [r["outcome"] for r in shown["reviews"]] == ["escalate"]
    assert len(shown["consultations"]) == 2

    # the same pupil through Temporal visibility (eventually consistent: poll)
    deadline = time.monotonic() + 15
    while True:
        listed = cli.json("list", "--stage", "school_action_plus", "--school", "school-9")
        assert isinstance(listed, list)
        if [row["pupil_id"] for row in listed] == [pupil]:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)

    # ... and the same pupils in the read model's register report, which verifies clean
    deadline = time.monotonic() + 15
    while True:
        register = cli.json(
            "report", "register", "--stage", "school_action_plus", "--school", "school-9"
        )
        if register == [
            {
                "school": "school-9",
                "stage": "school_action_plus",
                "pupil": pupil,
                "census_code": "P",
            }
        ]:
            break
        assert time.monotonic() < deadline, register
        time.sleep(0.3)
    deadline = time.monotonic() + 15
    while (verified := cli("records", "verify")).returncode != 0:
        assert time.monotonic() < deadline, verified.stdout + verified.stderr
        time.sleep(0.3)
    assert "agrees with Temporal (1 journeys)" in verified.stdout

    history = cli("history", pupil)
    assert history.returncode == 0
    assert "monitoring -> school_action" in history.stdout
    assert "school_action -> school_action_plus" in history.stdout

    # the letters reached the outbox: two parents x two decisions
    deadline = time.monotonic() + 15
    while len(list((state_dir / "outbox").glob(f"pupil-{pupil}--*-consultation-*.eml"))) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.3)

    # the worker's heartbeat (what the compose healthcheck reads) is fresh
    assert time.time() - (state_dir / "worker.alive").stat().st_mtime < 60

    usage = cli("review", pupil, *SENCO, "--outcome", "sideways")
    assert usage.returncode == 2


@pytest.mark.e2e
def test_make_run_sets_the_retention_and_schedules_the_archiver(service) -> None:
    cli, _ = service
    deadline = time.monotonic() + 30
    while (status := cli("archive", "status", "--json")).returncode != 0:
        # the worker creates the schedule as it starts
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(0.5)
    shown = json.loads(status.stdout)
    assert shown["retention"] == 30 * 24 * 3600  # SENFLOW_RETENTION_DAYS' default, in seconds
    assert shown["schedule"]["schedule_id"] == "senflow-archiver"
    assert shown["schedule"]["every"] == 3600 and not shown["schedule"]["paused"]
    assert shown["dangerous"] == [] and shown["problems"] == []
    done = cli("archive", "run")
    assert done.returncode == 0 and "archived" in done.stdout, done.stderr
