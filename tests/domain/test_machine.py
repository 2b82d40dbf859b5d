"""One transitions machine per process, shared by every journey: built from the table alone,
bound to each journey at its stored state, holding nothing of any journey (the worker runs
workflow activations on four threads)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import timedelta

import pytest

from domain.commands import CloseInput, RecordNoteInput, Refused, StepDownInput
from domain.journey import Journey
from domain.machine import MACHINE, STATES, TRANSITIONS, state_name
from domain.model import CloseReason, Phase, Stage
from scenarios import SENCO, T0, TEACHER, at_action_plus_with_referral, at_school_action, started

DAY = timedelta(days=1)


def test_the_machine_knows_only_the_table() -> None:
    assert not MACHINE.auto_transitions and not MACHINE.has_queue
    assert set(MACHINE.events) == {t["trigger"] for t in TRANSITIONS}
    assert set(MACHINE.states) == set(STATES)
    assert MACHINE.initial is None  # a journey always says where it stands


def test_journeys_share_the_machine_and_it_keeps_none_of_them() -> None:
    a, b = at_school_action("p-a"), started("p-b")
    assert MACHINE.models == []
    assert a.rules.close.func.__self__ is b.rules.close.func.__self__  # type: ignore[attr-defined]
    # each journey's methods act on its own model
    assert a.rules.close.args == (a.rules,) and b.rules.close.args == (b.rules,)  # type: ignore[attr-defined]


def test_a_journey_is_bound_at_the_state_it_stored() -> None:
    j = at_action_plus_with_referral("p-1")
    state = copy.deepcopy(j.state)
    again = Journey(state)
    assert again.rules.machine_state == state.machine_state == j.rules.machine_state
    assert (state.stage, state.phase) == (Stage.SCHOOL_ACTION_PLUS, Phase.AWAITING_PARENTS)
    # two journeys at different stages, asked the same thing at once, answer for themselves
    monitored = started("p-2")
    step_down = StepDownInput(SENCO, "needs met")
    again.check("step_down", step_down, T0 + 20 * DAY)
    with pytest.raises(Refused, match="cannot step down while the journey is at monitoring"):
        monitored.check("step_down", step_down, T0 + 20 * DAY)


def test_a_journey_stored_at_a_state_the_table_does_not_know_is_not_loaded() -> None:
    state = copy.deepcopy(started("p-3").state)
    state.machine_state = state_name(Stage.CLOSED, Phase.IEP_ACTIVE)
    with pytest.raises(ValueError, match="not a registered state"):
        Journey(state)
    assert MACHINE.models == []


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so interleavings actually happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _a_week_of_decisions(i: int) -> tuple[object, ...]:
    """Refusals (whose reasons the guards collect on the model), a note, then closing."""
    j = at_school_action(f"p-{i}") if i % 2 else started(f"p-{i}")
    now = T0 + 20 * DAY
    reasons = []
    for trigger, cmd in (
        ("close", CloseInput(TEACHER, CloseReason.NEEDS_MET, "met")),  # not a SENCO
        ("step_down", StepDownInput(SENCO, "")),  # no reason, or nowhere to step down to
        ("record_note", RecordNoteInput(TEACHER, "")),  # an empty note
    ):
        with pytest.raises(Refused) as err:
            j.check(trigger, cmd, now)
        reasons.append(str(err.value))
    j.record_note(RecordNoteInput(TEACHER, f"note {i}"), now)
    j.close(CloseInput(SENCO, CloseReason.MOVED_SCHOOL, f"moved {i}"), now + DAY)
    timeline = asdict(j.state)["timeline"]
    return j.state.machine_state, tuple(reasons), timeline[-2]["reason"], timeline[-1]["reason"]


@pytest.mark.usefixtures("busy_switching")
def test_journeys_on_the_workers_threads_each_get_their_own_answers() -> None:
    expected = [_a_week_of_decisions(i) for i in range(200)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(_a_week_of_decisions, range(200))) == expected
    assert MACHINE.models == []
    assert {e[0] for e in expected} == {state_name(Stage.CLOSED, Phase.ENDED)}
    assert len({e[1] for e in expected}) == 2  # monitored and School Action pupils differ
