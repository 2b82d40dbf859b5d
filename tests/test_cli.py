"""The CLI without a server: usage errors, no token, no way to name oneself, the diagram,
settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import starter
from domain.machine import STATES, TRANSITIONS
from service.actions import ACTIONS
from settings import Settings


def test_the_diagram_is_drawn_from_the_transition_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert starter.main(["diagram"]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.lstrip().startswith("---")
    assert "stateDiagram-v2" in mermaid
    for state in STATES:
        assert state in mermaid
    for trigger in {t["trigger"] for t in TRANSITIONS}:
        assert trigger in mermaid


@pytest.mark.parametrize(
    "argv",
    [
        ["open-school-action", "p1", "--trigger", "SA-NOPE"],
        ["review", "p1", "--outcome", "sideways"],
        ["start", "p1"],
        ["open-school-action", "p1", "--target", "no criterion"],
        ["frobnicate"],
        ["open-sen-support", "p1", "--need", "DYSLEXIA"],
        ["ehc-pause", "p1", "--reason", "holiday"],
        ["ehc-decide", "p1", "--assess", "maybe"],
        ["migrate", "--to", "code_2030"],
        ["migrate"],
        ["start", "p1", "--policy", "code_1994"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        starter.main(argv)
    assert exit_.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.fixture
def nobody_signed_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SENFLOW_TOKEN", raising=False)
    monkeypatch.setenv("SENFLOW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SENFLOW_API_URL", "http://127.0.0.1:1")


@pytest.mark.usefixtures("nobody_signed_in")
def test_an_action_with_no_token_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert starter.main(["note", "p1", "--note", "x"]) == 1  # port 1 would have been exit 3
    assert "not signed in" in capsys.readouterr().err


@pytest.mark.usefixtures("nobody_signed_in")
def test_nobody_can_say_who_they_are_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        starter.main(["note", "p1", "--note", "x", "--actor", "senco-1", "--role", "senco"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --actor" in capsys.readouterr().err


@pytest.mark.usefixtures("nobody_signed_in")
def test_an_unreachable_api_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENFLOW_TOKEN", "sf.0123456789abcdef.secret")
    assert starter.main(["show", "p1"]) == 3
    assert "unreachable" in capsys.readouterr().err


def test_every_action_of_the_table_is_a_command_with_its_help() -> None:
    parser = starter.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for action in ACTIONS:
        if action.path is None:
            continue  # moving one journey to the 2014 Code is `migrate`'s work
        assert commands[action.name].description == action.help


def test_settings_come_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "SENFLOW_STATE_DIR": "/var/senflow",
            "TEMPORAL_ADDRESS": "t:7233",
            "SENFLOW_TASK_QUEUE": "q",
        }
    )
    assert (s.temporal_address, s.task_queue) == ("t:7233", "q")
    assert s.outbox_dir == Path("/var/senflow/outbox")
    assert s.database_url == "sqlite:////var/senflow/records.db"


def test_the_default_code_comes_from_the_environment() -> None:
    from settings import Settings

    assert Settings.from_env({"SENFLOW_POLICY": "code_2014"}).policy == "code_2014"
    assert Settings.from_env({}).policy == "code_2001"
    with pytest.raises(ValueError, match="SENFLOW_POLICY"):
        Settings.from_env({"SENFLOW_POLICY": "code_1994"})
