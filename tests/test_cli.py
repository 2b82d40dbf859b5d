"""The CLI without a server: usage errors, the diagram, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

import starter
from domain.machine import STATES, TRANSITIONS
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


def test_an_action_without_an_actor_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENFLOW_ACTOR", raising=False)
    monkeypatch.delenv("SENFLOW_ROLE", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    with pytest.raises(SystemExit) as exit_:
        starter.main(["note", "p1", "--note", "x"])
    assert exit_.value.code == 2  # usage is checked before the (unreachable) server


def test_an_unreachable_server_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert starter.main(["show", "p1"]) == 3
    assert "unreachable" in capsys.readouterr().err


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


def test_a_migration_must_be_run_by_an_admin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    with pytest.raises(SystemExit) as exit_:
        starter.main(["migrate", "--to", "code_2014", "--actor", "senco-1", "--role", "senco"])
    assert exit_.value.code == 2 and "admin" in capsys.readouterr().err


def test_the_default_code_comes_from_the_environment() -> None:
    from settings import Settings

    assert Settings.from_env({"SENFLOW_POLICY": "code_2014"}).policy == "code_2014"
    assert Settings.from_env({}).policy == "code_2001"
    with pytest.raises(ValueError, match="SENFLOW_POLICY"):
        Settings.from_env({"SENFLOW_POLICY": "code_1994"})
