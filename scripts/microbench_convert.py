"""Micro-benchmark of the CPU spent outside the business logic per journey payload.

    .venv/bin/python scripts/microbench_convert.py [--repeat 5] [--number 200]

Prints the best per-call time (microseconds) of: decoding and encoding a large JourneyState
payload (the continue-as-new input of tests/histories/v3_two_year_journey_run1.json, a 2001
journey a school year long, and tests/scenarios.py's ``with_ehc_draft``, a 2014 journey well
into an EHC needs assessment), once with the SDK's stock path (``dataclasses.asdict`` and
``get_type_hints`` on every dataclass: workflows/converter.py before it had its own) and once
with ``DATA_CONVERTER``; then building a ``Journey`` around a state, asking it ``check`` and
firing a trigger; last, a consultation letter built and flattened, as ``EmailMessage`` built it
before (the stock path) and as activities/mail.py builds it now. One process, no server: safe
to run next to a benchmark (one core, seconds).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from stock_converter import stock_bytes, stock_decode
from temporalio.api.common.v1 import Payload

from activities.mail import build_message, render_bodies
from bench import pattern
from domain.commands import PupilJourneyInput, RecordNoteInput, Refused
from domain.journey import Journey
from domain.model import Actor, JourneyState, Notice, Role
from scenarios import with_ehc_draft
from workflows.converter import DATA_CONVERTER

HISTORY = ROOT / "tests" / "histories" / "v3_two_year_journey_run1.json"


def carried_2001() -> JourneyState:
    events = json.loads(HISTORY.read_text())["events"]
    attrs = events[-1]["workflowExecutionContinuedAsNewEventAttributes"]
    data = base64.b64decode(attrs["input"]["payloads"][0]["data"])
    carried = stock_decode(data, PupilJourneyInput).carried
    assert isinstance(carried, JourneyState)
    return carried


def best(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def report(name: str, state: JourneyState, n: int, r: int) -> None:
    converter = DATA_CONVERTER.payload_converter
    data = stock_bytes(state)
    payload = converter.to_payload(state)
    assert isinstance(payload, Payload)
    same = payload.data == data
    print(f"{name}: {len(data)} bytes, timeline {len(state.timeline)}, identical={same}")

    def line(what: str, fn: Callable[[], object]) -> None:
        print(f"  {what:<15}{best(fn, n, r):9.1f} us")

    line("encode stock", lambda: stock_bytes(state))
    line("encode ours", lambda: converter.to_payload(state))
    line("decode stock", lambda: stock_decode(data, JourneyState))
    line("decode ours", lambda: converter.from_payload(payload, JourneyState))
    line("Journey(state)", lambda: Journey(state))
    journey = Journey(state)
    now = state.timeline[-1].at
    note = RecordNoteInput(Actor("teacher-1", Role.CLASS_TEACHER), "progress")
    bad = RecordNoteInput(Actor("ep-1", Role.SPECIALIST), "progress")

    def refused() -> None:
        try:
            journey.check("record_note", bad, now)
        except Refused:
            pass

    line("check ok", lambda: journey.check("record_note", note, now))
    line("check refused", refused)
    fire = journey.rules.record_note  # type: ignore[attr-defined]
    line("trigger", lambda: fire(cmd=note, now=now))


def stock_letter(notice: Notice, when: datetime) -> bytes:
    """activities/mail.py before: ``EmailMessage`` (every header parsed and re-folded)."""
    msg = EmailMessage()
    for name, value in (("Message-ID", "<m@x>"), ("From", "s@x"), ("To", "t@x")):
        msg[name] = value
    msg["Subject"] = notice.subject
    msg["Date"] = format_datetime(when)
    msg["X-Senflow-Journey"] = "pupil-mb"
    msg["X-Senflow-Notice"] = notice.kind
    text, html = render_bodies(notice)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def report_letter(n: int, r: int) -> None:
    when = datetime(2026, 9, 7, 9, tzinfo=UTC)
    journey = Journey.begin(pattern.start("mb-1"), when)
    journey.open_school_action(pattern.open_school_action(), when)
    notice = journey.state.outbox[0]
    print(f"letter: {notice.kind}")
    ours = lambda: build_message(  # noqa: E731
        notice, message_id="<m@x>", sender="s@x", to="t@x", journey="pupil-mb", date=when
    ).as_bytes()
    print(f"  {'letter stock':<15}{best(lambda: stock_letter(notice, when), n, r):9.1f} us")
    print(f"  {'letter ours':<15}{best(ours, n, r):9.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report("2001 carried", carried_2001(), args.number, args.repeat)
    report("2014 ehc draft", with_ehc_draft("p1").state, args.number, args.repeat)
    report_letter(args.number, args.repeat)


if __name__ == "__main__":
    main()
