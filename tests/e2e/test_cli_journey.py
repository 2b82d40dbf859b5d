"""End to end, as a person would: `senflow up` (dev server, worker and API subprocesses, the
demo users it makes) and the `senflow` CLI as subprocesses acting as those users: one journey
from a concern to School Action Plus, two schools' pupils of the same reference, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import senflow_up

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


class Cli:
    """`senflow` as a subprocess, signed in as one of the demo users `senflow up` made (their
    tokens are in <state>/tokens/), or as no one."""

    def __init__(
        self, env: dict[str, str], state: Path, user: str | None = None, token: str = ""
    ) -> None:
        self.env, self.state, self.user, self.token = env, state, user, token

    def as_(self, user: str | None) -> Cli:
        return Cli(self.env, self.state, user)

    def with_token(self, token: str) -> Cli:
        return Cli(self.env, self.state, None, token)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        env.pop("SENFLOW_TOKEN", None)
        if self.user is not None:
            env["SENFLOW_TOKEN"] = (self.state / "tokens" / self.user).read_text().strip()
        elif self.token:
            env["SENFLOW_TOKEN"] = self.token
        return subprocess.run(
            [SENFLOW, *args],
            cwd=self.state.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def json(self, *args: str) -> object:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Path]]:
    with senflow_up(tmp_path_factory.mktemp("checkout")) as (env, state):
        yield Cli(env, state), state


@pytest.mark.e2e
def test_a_journey_from_concern_to_action_plus_through_the_cli(service) -> None:
    cli, state_dir = service
    teacher, senco = cli.as_("teacher-1"), cli.as_("senco-1")
    pupil = f"e2e-{os.getpid()}"
    started = teacher(
        "start",
        pupil,
        "--school",
        "school-1",
        "--senco",
        "senco-1",
        "--parent",
        "carer-1",
        "--parent",
        "carer-2",
        "--concern",
        "slow reading",
    )
    assert started.returncode == 0, started.stderr

    refused = senco(
        "escalate",
        pupil,
        "--trigger",
        "AP-PROGRESS-LONG",
        "--evidence",
        "no progress",
        *IEP,
    )
    assert refused.returncode == 1
    assert "cannot escalate" in refused.stderr

    opened = senco(
        "open-school-action",
        pupil,
        "--trigger",
        "SA-LITERACY-MATHS",
        "--evidence",
        "reading age 18 months behind",
        *IEP,
    )
    assert opened.returncode == 0, opened.stderr

    early = senco(
        "escalate",
        pupil,
        "--trigger",
        "AP-PROGRESS-LONG",
        "--evidence",
        "no progress",
        *IEP,
    )
    assert early.returncode == 1 and "completed School Action review" in early.stderr

    reviewed = senco(
        "review",
        pupil,
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

    shown = senco.json("show", pupil)
    assert isinstance(shown, dict)
    assert shown["stage"] == "school_action_plus"
    assert shown["phase"] == "awaiting_parents"
    assert shown["iep"]["stage"] == "school_action_plus"
    assert [r["outcome"] for r in shown["reviews"]] == ["escalate"]
    assert len(shown["consultations"]) == 2

    # the same pupil through Temporal visibility (eventually consistent: poll)
    deadline = time.monotonic() + 15
    while True:
        listed = senco.json("list", "--stage", "school_action_plus", "--school", "school-1")
        assert isinstance(listed, list)
        if [row["pupil"] for row in listed] == [pupil]:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)

    # ... and the same pupils in the read model's register report, which verifies clean
    deadline = time.monotonic() + 15
    while True:
        register = cli.as_("admin-1").json(
            "report", "register", "--stage", "school_action_plus", "--school", "school-1"
        )
        if register == [
            {
                "school": "school-1",
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
    assert "agrees with Temporal" in verified.stdout

    history = cli.as_("auditor-1")("history", pupil, "--school", "school-1")
    assert history.returncode == 0
    assert "monitoring -> school_action" in history.stdout
    assert "school_action -> school_action_plus" in history.stdout

    # the letters reached the outbox: two parents x two decisions
    deadline = time.monotonic() + 15
    journey = shown["journey_id"]
    assert journey.startswith("journey-") and pupil not in journey
    while len(list((state_dir / "outbox").glob(f"{journey}--*-consultation-*.eml"))) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.3)

    # the worker's heartbeat (what the compose healthcheck reads) is fresh
    assert time.time() - (state_dir / "worker.alive").stat().st_mtime < 60

    usage = senco("review", pupil, "--outcome", "sideways")
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


def _events(cli: Cli, journey: str, scratch: Path) -> int:
    """How many events Temporal holds for the journey (the auditor's export)."""
    out = scratch / f"{journey}.json"
    done = cli.as_("auditor-1")("export", "--journey", journey, "-o", str(out))
    assert done.returncode == 0, done.stderr
    exported = json.loads(out.read_text())
    return sum(len(run["history"]["events"]) for run in exported["runs"])


@pytest.mark.e2e
def test_two_schools_each_have_a_p1_and_a_third_cannot_tell_them_from_nobody(
    service: tuple[Cli, Path], tmp_path: Path
) -> None:
    cli, _ = service
    ref = f"p1-{os.getpid()}"
    one, two, three = cli.as_("senco-1"), cli.as_("senco-2"), cli.as_("senco-3")
    for who, school in ((one, "school-1"), (two, "school-2")):
        done = who(
            "start", ref, "--school", school, "--senco", who.user or "", "--parent", "carer-1",
            "--concern", "speech unclear to peers",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    mine, theirs = one.json("show", ref), two.json("show", ref)
    assert isinstance(mine, dict) and isinstance(theirs, dict)
    assert (mine["school_id"], theirs["school_id"]) == ("school-1", "school-2")
    assert mine["journey_id"] != theirs["journey_id"]

    missing = three("show", "nobody")
    assert missing.returncode == 1 and missing.stderr == "refused: no such journey\n"
    for attempt in (
        three("show", ref),
        three("show", ref, "--school", "school-1"),
        three("show", "--journey", mine["journey_id"]),
        three("show", "--journey", theirs["journey_id"]),
        two("show", ref, "--school", "school-1"),
    ):
        assert (attempt.returncode, attempt.stderr) == (missing.returncode, missing.stderr)

    # acting on another school's pupil, with no token, or with a revoked token: refused,
    # and Temporal's history of the journey does not grow
    before = _events(cli, mine["journey_id"], tmp_path)
    note = ("note", "--journey", mine["journey_id"], "--note", "a note")
    other = two(*note)
    assert other.returncode == 1 and other.stderr == missing.stderr
    nobody = cli.as_(None)(*note)
    assert nobody.returncode == 1 and "not signed in" in nobody.stderr
    issued = cli.as_("admin-1").json(
        "users", "add", f"ta-{os.getpid()}", "--role", "class_teacher", "--school", "school-1"
    )
    assert isinstance(issued, dict)
    assistant = cli.with_token(issued["token"])
    assert assistant("show", ref).returncode == 0  # the new token works ...
    revoked = cli.as_("admin-1")("users", "revoke", issued["user_id"])
    assert revoked.returncode == 0, revoked.stderr
    gone = assistant(*note)  # ... and stops working once revoked
    assert gone.returncode == 1 and "revoked" in gone.stderr
    assert _events(cli, mine["journey_id"], tmp_path) == before
    assert one.json("show", ref) == mine  # nothing changed either in what the SENCO sees
