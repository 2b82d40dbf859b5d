"""The data converter: our dataclass path must give exactly what the SDK's stock path gives.

Every payload of every committed history, and rich 2001 and 2014 states built with the domain,
are decoded and encoded twice: with ``DATA_CONVERTER`` and with the SDK's stock path (its
``value_to_type`` with only our date types, and the encoder this module had before, whose
``dataclasses.asdict`` deep-copies). Results are compared by ``repr`` as well as ``==`` because
a ``StrEnum`` equals its string and a wrong type would otherwise pass; failures are compared by
exception type and message down the ``__cause__`` chain, because the workflow writes the type
of a malformed reply's error into the journey's timeline (workflows/pupil_journey.py
``_decode``).
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import json
import typing
import weakref
from collections.abc import Callable, Iterator
from dataclasses import InitVar, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from stock_converter import STOCK_CONVERTERS, StockEncoder, stock_bytes
from temporalio.api.common.v1 import Payload
from temporalio.converter import value_to_type

from activities.notices import Notifier
from activities.records import Recorder
from domain.commands import (
    AssessmentCompletedInput,
    ParentRespondedInput,
    PupilJourneyInput,
)
from domain.model import JourneyState, Stage
from domain.policy import Policy
from scenarios import at_action_plus_with_referral, with_ehc_draft
from workflows.converter import DATA_CONVERTER, TYPE_CONVERTERS, JSONEncoder
from workflows.pupil_journey import PupilJourney

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))
CONVERTER = DATA_CONVERTER.payload_converter


def our_bytes(value: object) -> bytes:
    payload = CONVERTER.to_payload(value)
    assert isinstance(payload, Payload) and payload.metadata["encoding"] == b"json/plain"
    return payload.data


def outcome(decode: Callable[[], object]) -> tuple[str, object]:
    try:
        return "value", repr(decode())
    except Exception as err:
        chain: list[tuple[str, str]] = []
        cause: BaseException | None = err
        while cause is not None:
            chain.append((type(cause).__name__, str(cause)))
            cause = cause.__cause__
        return "error", chain


def both(hint: Any, value: Any) -> tuple[tuple[str, object], tuple[str, object]]:
    return (
        outcome(lambda: value_to_type(hint, value, STOCK_CONVERTERS)),
        outcome(lambda: value_to_type(hint, value, TYPE_CONVERTERS)),
    )


# -- every payload the committed histories hold ------------------------------------------------


def _first_argument(fn: Any) -> Any:
    return next(hint for name, hint in typing.get_type_hints(fn).items() if name != "return")


#: Signals take a RawValue and the workflow decodes it (workflows/pupil_journey.py ``_decode``).
SIGNALS = {
    "parent_responded": ParentRespondedInput,
    "assessment_completed": AssessmentCompletedInput,
}
ACTIVITIES = {
    "send_notice": _first_argument(Notifier.send_notice),
    "record_journey": _first_argument(Recorder.record_journey),
}


def history_payloads() -> Iterator[tuple[str, Any, Any]]:
    """(where, type hint, JSON value) for each typed payload of each committed history."""
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            where = f"{path.stem}#{event['eventId']}"
            attrs = next(v for k, v in event.items() if k.endswith("Attributes"))
            hint: Any = None
            payloads = attrs.get("input", {}).get("payloads", [])
            if "workflowExecutionStartedEventAttributes" in event or (
                "workflowExecutionContinuedAsNewEventAttributes" in event
            ):
                hint = PupilJourneyInput
            elif "workflowExecutionSignaledEventAttributes" in event:
                hint = SIGNALS[attrs["signalName"]]
            elif "activityTaskScheduledEventAttributes" in event:
                hint = ACTIVITIES[attrs["activityType"]["name"]]
            elif "workflowExecutionUpdateAcceptedEventAttributes" in event:
                request = attrs["acceptedRequest"]["input"]
                hint = _first_argument(getattr(PupilJourney, request["name"]))
                payloads = request.get("args", {}).get("payloads", [])
            for payload in payloads[:1] if hint is not None else []:
                assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
                yield where, hint, json.loads(base64.b64decode(payload["data"]))


PAYLOADS = list(history_payloads())


def test_the_histories_give_payloads_of_every_kind() -> None:
    kinds = {hint for _, hint, _ in PAYLOADS}
    assert len(PAYLOADS) > 300
    assert any(both(h, v)[0][0] == "error" for _, h, v in PAYLOADS)  # a malformed reply
    assert {PupilJourneyInput, ParentRespondedInput, *ACTIVITIES.values()} <= kinds
    assert len(kinds) >= 15, kinds  # the update inputs too


@pytest.mark.parametrize(
    "hint", sorted({h for _, h, _ in PAYLOADS}, key=str), ids=lambda h: h.__name__
)
def test_each_recorded_payload_decodes_and_encodes_exactly_as_the_sdk_does(hint: Any) -> None:
    for where, _, value in (p for p in PAYLOADS if p[1] is hint):
        stock, ours = both(hint, value)
        assert ours == stock, where
        if stock[0] == "error":
            continue  # a malformed reply the recorded journey rejected
        decoded = value_to_type(hint, value, TYPE_CONVERTERS)
        assert our_bytes(decoded) == stock_bytes(decoded), where
        # and the CLI's --json (field order, no sort) is unchanged too
        assert json.dumps(decoded, cls=JSONEncoder, indent=2) == json.dumps(
            decoded, cls=StockEncoder, indent=2
        ), where


# -- rich states built with the domain -----------------------------------------------------------


def carried_2001() -> JourneyState:
    """The state a two-school-year 2001 journey carried across continue-as-new."""
    value = next(v for w, _, v in PAYLOADS if w == "v3_two_year_journey_run2#1")
    carried = value_to_type(PupilJourneyInput, value, STOCK_CONVERTERS).carried
    assert isinstance(carried, JourneyState) and carried.referrals and carried.reviews
    return carried


def action_plus_on_a_demo_policy() -> JourneyState:
    j = at_action_plus_with_referral("p-demo", completed_after=3)
    j.state.policy = Policy.demo(timedelta(seconds=1.5))  # fractional-second durations
    j.state.reply_digests = {"r-1": "abc"}
    return j.state


STATES = {
    "2001 carried": carried_2001,
    "2001 action plus, demo policy": action_plus_on_a_demo_policy,
    "2014 ehc draft": lambda: with_ehc_draft("p-ehc").state,
}


@pytest.mark.parametrize("make", STATES.values(), ids=STATES.keys())
def test_a_rich_state_round_trips_and_encodes_byte_for_byte(
    make: Callable[[], JourneyState],
) -> None:
    state = make()
    data = our_bytes(state)
    assert data == stock_bytes(state)
    back = CONVERTER.from_payload(
        Payload(metadata={"encoding": b"json/plain"}, data=data), JourneyState
    )
    assert back == state
    stock, ours = both(JourneyState, json.loads(data))
    assert ours == stock == ("value", repr(back))


def test_the_2014_state_keeps_its_ehc_assessment_and_needs() -> None:
    state = with_ehc_draft("p-ehc").state
    back = CONVERTER.from_payload(CONVERTER.to_payload(state), JourneyState)
    ehc = back.ehc()
    assert ehc is not None and ehc.draft_plan is not None and ehc.pauses[0].ended_at is not None
    assert isinstance(ehc.deadlines[0].due_on, date) and not isinstance(
        ehc.deadlines[0].due_on, datetime
    )
    assert back.policy.is_2014 and isinstance(back.policy.ehc_advice, timedelta)
    assert (back.primary_need, back.secondary_need) == ("SPLD", "SLCN")
    assert type(back.secondary_need).__name__ == "SenType"
    assert isinstance(back.compulsory_school_age_date, date) and back.early_years


# -- malformed payloads still fail, with the SDK's errors -----------------------------------------


def _reply(**changes: Any) -> dict[str, Any]:
    reply = {"reply_id": "r1", "consultation_id": "c1", "parent_id": "parent-a", "reply": "agree"}
    return {k: v for k, v in {**reply, **changes}.items() if v is not ...}


def _state(**changes: Any) -> dict[str, Any]:
    value = json.loads(our_bytes(with_ehc_draft("p-bad").state))
    for path, new in changes.items():
        target = value
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if new is ...:
            del target[last]
        else:
            target[last] = new
    return value


MALFORMED: dict[str, tuple[Any, Any]] = {
    "reply not an object": (ParentRespondedInput, "not even an object"),
    "reply a list": (ParentRespondedInput, [1, 2, 3]),
    "reply empty": (ParentRespondedInput, {}),
    "reply missing its consultation": (ParentRespondedInput, _reply(consultation_id=...)),
    "reply with an unknown answer": (ParentRespondedInput, _reply(reply="maybe")),
    "reply with a number for text": (ParentRespondedInput, _reply(comments=7)),
    "reply with a null id": (ParentRespondedInput, _reply(reply_id=None)),
    "report with a number for a list": (
        AssessmentCompletedInput,
        {
            "reply_id": "r",
            "referral_id": "x",
            "actor": {"id": "ep", "role": "specialist"},
            "summary": "s",
            "recommendations": 7,
        },
    ),
    "report with a bad actor": (
        AssessmentCompletedInput,
        {"reply_id": "r", "referral_id": "x", "actor": {"id": "ep"}, "summary": "s"},
    ),
    "state missing a required field": (JourneyState, _state(opened_at=...)),
    "state with a bad stage": (JourneyState, _state(stage=5)),
    "state with an unknown stage": (JourneyState, _state(stage="nowhere")),
    "state with a bad date": (JourneyState, _state(next_review_date="soon")),
    "state with a text duration": (JourneyState, _state(policy__review_interval="13 weeks")),
    "state with a bad timeline entry": (JourneyState, _state(timeline__3__kind="gossip")),
    "state with a timeline entry missing its actor": (JourneyState, _state(timeline__0__actor=...)),
    "state with a bad optional plan": (JourneyState, _state(iep="none")),
    "state with a deep bad deadline": (
        JourneyState,
        _state(ehc_assessments__0__deadlines__1__due_on=20270101),
    ),
    "state with facts not an object": (JourneyState, _state(outbox__0__facts=[1])),
}


@pytest.mark.parametrize("hint,value", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_payload_raises_as_the_sdk_does(hint: Any, value: Any) -> None:
    stock, ours = both(hint, value)
    assert stock[0] == "error"
    assert ours == stock
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())
    with pytest.raises((TypeError, ValueError)):
        CONVERTER.from_payload(payload, hint)


def test_unknown_keys_are_ignored_as_the_sdk_does() -> None:
    stock, ours = both(ParentRespondedInput, _reply(extra="ignored", comments="fine"))
    assert stock[0] == "value" and ours == stock


# -- the corners of the SDK's dataclass semantics -------------------------------------------------


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Leaf:
    name: str
    colour: Colour = Colour.RED


@dataclass
class Other:
    count: int


@dataclass
class Corners:
    leaf: Leaf
    either: Other | Leaf
    maybe: Leaf | None = None
    leaves: list[Leaf] = field(default_factory=list)
    by_name: dict[str, Leaf] = field(default_factory=dict)
    pair: tuple[int, Colour] = (0, Colour.RED)
    tags: set[str] = field(default_factory=set)
    anything: Any = None
    when: datetime | None = None
    on: date | None = None
    late: int = field(default=0, init=False)
    start: InitVar[int] = 0
    UNUSED: typing.ClassVar[int] = 1

    def __post_init__(self, start: int) -> None:
        self.late = start


CORNERS: dict[str, Any] = {
    "everything": {
        "leaf": {"name": "a", "colour": "blue"},
        "either": {"name": "b"},
        "maybe": {"name": "c"},
        "leaves": [{"name": "d"}, {"name": "e", "colour": "blue"}],
        "by_name": {"f": {"name": "f"}},
        "pair": [3, "blue"],
        "tags": ["x"],
        "anything": {"raw": [1]},
        "when": "2026-09-07T09:00:00+00:00",
        "on": "2026-09-07",
        "late": 5,
        "unknown": 1,
    },
    "the first union member": {"leaf": {"name": "a"}, "either": {"count": 2}},
    "init false left out": {"leaf": {"name": "a"}, "either": {"count": 2}, "start": 9},
    "missing required": {"either": {"count": 2}},
    "init false wrong type": {"leaf": {"name": "a"}, "either": {"count": 2}, "late": "x"},
    "no union member fits": {"leaf": {"name": "a"}, "either": {"size": 2}},
    "a list item wrong": {"leaf": {"name": "a"}, "either": {"count": 2}, "leaves": [{}, 3]},
    "a list given text": {"leaf": {"name": "a"}, "either": {"count": 2}, "leaves": "ab"},
    "a list given a number": {"leaf": {"name": "a"}, "either": {"count": 2}, "leaves": 3},
    "an enum given a number": {"leaf": {"name": "a", "colour": 1}, "either": {"count": 2}},
    "a tuple too long": {"leaf": {"name": "a"}, "either": {"count": 2}, "pair": [1, "red", 2]},
    "a frozen leaf with extra keys": {"leaf": {"name": "a", "x": 1}, "either": {"count": 2}},
    "a bad datetime": {"leaf": {"name": "a"}, "either": {"count": 2}, "when": "noon"},
}


@pytest.mark.parametrize("value", CORNERS.values(), ids=CORNERS.keys())
def test_the_sdk_dataclass_semantics_are_kept(value: Any) -> None:
    stock, ours = both(Corners, value)
    assert ours == stock
    if stock[0] == "value":
        decoded = value_to_type(Corners, value, TYPE_CONVERTERS)
        assert our_bytes(decoded) == stock_bytes(decoded)
        assert json.dumps(decoded, cls=JSONEncoder, indent=2) == json.dumps(
            decoded, cls=StockEncoder, indent=2
        )


def test_init_false_fields_are_set_after_construction_and_encoded() -> None:
    value = {"leaf": {"name": "a"}, "either": {"count": 2}, "start": 9, "late": 5}
    decoded = value_to_type(Corners, value, TYPE_CONVERTERS)
    assert decoded.late == 5  # __post_init__ set 0 from the default start; the payload wins
    assert b'"late":5' in our_bytes(decoded) and b"UNUSED" not in our_bytes(decoded)


@pytest.mark.parametrize(
    "hint,value",
    [
        (list[Stage], ["monitoring", "closed"]),
        (list[Stage], ["monitoring", 3]),
        (list[Stage | None], [None, "closed"]),
        (list[list[int]], [[1], [2.5]]),
        (list[Any], [1, "a"]),
        (Stage, "school_action"),
        (Stage, "nowhere"),
        (Stage, None),
        (Stage | None, None),
        (dict[str, list[Leaf]], {"a": [{"name": "x"}]}),
        (Policy, {"review_interval": 60.5, "name": "code_2014"}),
    ],
    ids=str,
)
def test_lists_enums_and_nested_hints_convert_as_the_sdk_does(hint: Any, value: Any) -> None:
    stock, ours = both(hint, value)
    assert ours == stock


def test_classes_cached_by_the_converter_can_still_be_collected() -> None:
    """Under the full sandbox every run re-imports the domain: its classes must not pile up."""

    def decode_a_fresh_class() -> weakref.ref[type]:
        fresh = dataclasses.make_dataclass("Fresh", [("name", str), ("leaf", Leaf)])
        value = value_to_type(fresh, {"name": "n", "leaf": {"name": "l"}}, TYPE_CONVERTERS)
        assert value.leaf == Leaf("l")
        return weakref.ref(fresh)

    ref = decode_a_fresh_class()
    gc.collect()
    assert ref() is None
