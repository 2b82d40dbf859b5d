"""The data converter: our encoder must write exactly the bytes the SDK's stock path wrote.

Every payload of every committed history, and rich 2001 and 2014 states built with the domain,
are encoded twice: with ``DATA_CONVERTER`` and with the encoder this module had before (the
SDK's ``AdvancedJSONEncoder``, whose ``dataclasses.asdict`` deep-copies, plus dates and
durations).
"""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import AdvancedJSONEncoder

from activities.notices import Notifier
from activities.records import Recorder
from domain.commands import AssessmentCompletedInput, ParentRespondedInput, PupilJourneyInput
from domain.model import JourneyState
from domain.policy import Policy
from scenarios import at_action_plus_with_referral, with_ehc_draft
from workflows.converter import DATA_CONVERTER, JSONEncoder
from workflows.pupil_journey import PupilJourney

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))
CONVERTER = DATA_CONVERTER.payload_converter
JSON = {"encoding": b"json/plain"}


class StockEncoder(AdvancedJSONEncoder):
    """workflows/converter.py's encoder before: the SDK's ``asdict`` plus dates and durations."""

    def default(self, o: Any) -> Any:
        if isinstance(o, timedelta):
            return o.total_seconds()
        if isinstance(o, date) and not isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


def stock_bytes(value: object) -> bytes:
    """What JSONPlainPayloadConverter wrote with the stock encoder."""
    return json.dumps(value, cls=StockEncoder, separators=(",", ":"), sort_keys=True).encode()


def our_bytes(value: object) -> bytes:
    payload = CONVERTER.to_payload(value)
    assert isinstance(payload, Payload) and payload.metadata["encoding"] == b"json/plain"
    return payload.data


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


def history_payloads() -> Iterator[tuple[str, Any, bytes]]:
    """(where, type hint, JSON bytes) for each typed payload of each committed history."""
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
                yield where, hint, base64.b64decode(payload["data"])


PAYLOADS = list(history_payloads())


def decoded(hint: Any, data: bytes) -> Any:
    try:
        return CONVERTER.from_payload(Payload(metadata=JSON, data=data), hint)
    except TypeError:
        return None  # a malformed reply the recorded journey rejected


def test_the_histories_give_payloads_of_every_kind() -> None:
    kinds = {hint for _, hint, _ in PAYLOADS}
    assert len(PAYLOADS) > 300
    assert {PupilJourneyInput, ParentRespondedInput, *ACTIVITIES.values()} <= kinds
    assert len(kinds) >= 15, kinds  # the update inputs too


@pytest.mark.parametrize(
    "hint", sorted({h for _, h, _ in PAYLOADS}, key=str), ids=lambda h: h.__name__
)
def test_each_recorded_payload_encodes_exactly_as_the_sdk_did(hint: Any) -> None:
    for where, _, data in (p for p in PAYLOADS if p[1] is hint):
        value = decoded(hint, data)
        if value is None:
            continue
        assert our_bytes(value) == stock_bytes(value), where
        # and the CLI's --json (field order, no sort) is unchanged too
        assert json.dumps(value, cls=JSONEncoder, indent=2) == json.dumps(
            value, cls=StockEncoder, indent=2
        ), where


def carried_2001() -> JourneyState:
    """The state a two-school-year 2001 journey carried across continue-as-new."""
    data = next(d for w, _, d in PAYLOADS if w == "v3_two_year_journey_run2#1")
    carried = decoded(PupilJourneyInput, data).carried
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
    assert CONVERTER.from_payload(Payload(metadata=JSON, data=data), JourneyState) == state


@dataclass(frozen=True)
class Leaf:
    name: str
    when: date = date(2026, 9, 7)


@dataclass
class Corners:
    leaves: list[Leaf]
    by_name: dict[str, Leaf]
    pair: tuple[Leaf, timedelta]
    maybe: Leaf | None = None
    late: int = field(default=0, init=False)
    UNUSED: typing.ClassVar[int] = 1


def test_init_false_fields_nested_containers_and_the_cli_output_are_unchanged() -> None:
    value = Corners([Leaf("a")], {"b": Leaf("b")}, (Leaf("c"), timedelta(seconds=1.5)))
    value.late = 5
    assert our_bytes(value) == stock_bytes(value)
    assert b'"late":5' in our_bytes(value) and b"UNUSED" not in our_bytes(value)
    assert json.dumps(value, cls=JSONEncoder, indent=2) == json.dumps(
        value, cls=StockEncoder, indent=2
    )
