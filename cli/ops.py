"""Operator commands: they run beside the service, with its settings, and reach Temporal or
the database directly (replay, contacts, records, demo). Everything a person does as a user
goes through the API instead (``starter.py``)."""

from __future__ import annotations

import argparse
import asyncio
import email
import re
import sys
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from access.policy import Principal
from archive.store import archive_reader
from audit import trail as trail_module
from cli import output
from domain.commands import (
    IepInput,
    OpenSchoolActionInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestStatutoryAssessmentInput,
    check_opaque_id,
)
from domain.model import (
    ParentReply,
    ReviewOutcome,
    Role,
    SpecialistKind,
    Target,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy
from records import sync
from records.db import make_engine, migrate, sessions
from service import journeys, temporal
from service.actions import BY_NAME
from service.context import Services
from service.errors import Unreachable
from service.journeys import SIGNED_IN
from settings import Settings, connect


class UsageError(Exception):
    """The command's words are off (exit 2), where argparse cannot tell."""


async def _client(settings: Settings) -> Any:
    try:
        return await connect(settings)
    except RuntimeError as err:
        raise Unreachable(
            f"Temporal is unreachable at {settings.temporal_address}: {err}"
        ) from None


def replay(args: argparse.Namespace, settings: Settings) -> int:
    """Files replay without a server; --all reads every journey from Temporal and the archive."""
    return asyncio.run(_replay(args, settings))


async def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from audit.replay import replay_runs

    runs: list[trail_module.Run] = []
    for name in args.files:
        runs += trail_module.load_histories(Path(name).read_text(), Path(name).stem)
    converter = settings.data_converter()  # encrypted histories need the keys
    if args.all:
        client = await _client(settings)
        converter = client.data_converter
        archive = archive_reader(settings.database_url, settings.archive_url)
        for journey_id in await temporal.all_journey_ids(client, archive):
            runs += await temporal.runs(client, journey_id, archive)
    if not runs:
        raise Refused("nothing to replay: give FILE... or --all")
    outcomes = await replay_runs(runs, converter)
    rows = [vars(o) for o in outcomes]
    text = "\n".join(
        f"{'ok  ' if o.ok else 'FAIL'} {o.workflow_id} run {o.run_id} ({o.events} events)"
        + (f"\n     {o.failure}" if o.failure else "")
        for o in outcomes
    )
    failed = sum(not o.ok for o in outcomes)
    output.show_json_or(
        args.json, rows, f"{text}\n{len(outcomes) - failed} replayed, {failed} failed"
    )
    return 1 if failed else 0


def contacts(args: argparse.Namespace, settings: Settings) -> int:
    """Addresses are kept outside Temporal, in the records database, by the operator."""
    from access.store import check_email
    from records.models import Contact

    factory = sessions(make_engine(settings.database_url))
    if args.action == "add":
        if not args.contact_id or args.contact_role is None or not args.name:
            raise UsageError("contacts add ID --contact-role ROLE --name NAME [--email ADDRESS]")
        check_opaque_id(args.contact_id, "contact id")
        email = check_email(args.email) if args.email else None
        with factory.begin() as session:
            session.merge(
                Contact(
                    contact_id=args.contact_id,
                    role=args.contact_role,
                    display_name=args.name,
                    email=email,
                )
            )
        output.out(f"contact {args.contact_id} saved")
        return 0
    with factory() as session:
        rows = [
            {"contact": c.contact_id, "role": c.role, "name": c.display_name, "email": c.email}
            for c in session.scalars(select(Contact))
        ]
    output.show_json_or(args.json, rows, output.table(rows))
    return 0


def records(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "migrate":
        migrate(make_engine(settings.database_url))
        output.out(f"read model at head ({_safe_url(settings.database_url)})")
        return 0
    return asyncio.run(_records_sync(settings, args.action, args.json))


async def _records_sync(settings: Settings, action: str, as_json: bool) -> int:
    client = await _client(settings)
    engine = make_engine(settings.database_url)
    progress = None if as_json or not sys.stderr.isatty() else _RichProgress()
    try:
        archive = archive_reader(settings.database_url, settings.archive_url)
        sources = await sync.read_journeys(client, progress, archive=archive)
        if action == "rebuild":
            started = time.monotonic()
            written = sync.rebuild(engine, sources, progress)
            elapsed = time.monotonic() - started
            summary = {"journeys": written, "seconds": round(elapsed, 2)}
            output.show_json_or(as_json, summary, f"rebuilt {written} journeys in {elapsed:.1f}s")
            return 0
        with sessions(engine)() as session:
            diffs = sync.verify(session, sources)
    finally:
        if progress is not None:
            progress.close()
    rows = [vars(d) for d in diffs]
    agree = f"the read model agrees with Temporal ({len(sources)} journeys)"
    output.show_json_or(as_json, rows, output.table(rows) if rows else agree)
    return 1 if diffs else 0


class _RichProgress:
    """A progress bar on a terminal for long commands; never used with --json."""

    def __init__(self) -> None:
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        self._task: Any = None

    def __call__(self, what: str, total: int) -> None:
        if what:
            self._task = self._bar.add_task(what, total=total)
        elif self._task is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        self._bar.stop()


def _safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- the demo ----------------------------------------------------------------------------------

DEMO_SCHOOL = "demo-school"


def _staff(actor_id: str, role: Role) -> Principal:
    """A demo school's member of staff, as the operator's demo acts for them."""
    return Principal(actor_id, role, frozenset({DEMO_SCHOOL}), token_id="operator-demo")


def demo(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_demo(settings, args.pupil, args.minute, args.json))


async def _demo(settings: Settings, pupil: str | None, minute: float, as_json: bool) -> int:
    """One pupil of the demo school through concern → School Action → review → Action Plus →
    EP → statutory assessment, through the application layer, on a clock of minutes."""
    svc = Services(settings, await _client(settings))
    pupil = pupil or f"demo-{uuid.uuid4().hex[:6]}"
    senco, teacher = _staff("senco-1", Role.SENCO), _staff("teacher-1", Role.CLASS_TEACHER)
    iep = IepInput(
        targets=[Target("read 30 high-frequency words", "reads them aloud in two sessions")],
        strategies=["daily phonics in a small group"],
        provision=["TA support 3x20 min/week"],
        responsible=["teacher-1"],
    )

    def say(text: str) -> None:
        if not as_json:
            output.out(text)

    say(f"demo pupil {pupil}: one 'minute' = {minute:g}s; watch it in the Web UI too")
    opened = await journeys.start(
        svc,
        teacher,
        school=DEMO_SCHOOL,
        reference=pupil,
        senco_id=senco.actor_id,
        parent_ids=["parent-1"],
        concern="struggles with early reading despite differentiated work",
        policy=Policy.demo(timedelta(seconds=minute)),
    )
    jid = opened.journey_id
    say(f"1. concern raised by the class teacher -> monitoring (journey {jid})")
    r = await journeys.act(
        svc,
        senco,
        jid,
        BY_NAME["open-school-action"],
        OpenSchoolActionInput(SIGNED_IN, [Trigger.SA_LITERACY_MATHS], "reading age behind", iep),
    )
    say(f"2. SENCO opens School Action -> {r.stage_label} ({r.phase})")
    state = await journeys.show(svc, senco, jid)
    consultation = state.open_consultations()[-1].consultation_id
    parent = Principal(
        "parent-1", Role.PARENT, frozenset({DEMO_SCHOOL}), "operator-demo", (jid, consultation)
    )
    await journeys.respond(svc, parent, jid, consultation, ParentReply.AGREE)
    say(f"3. parent agrees to {consultation}")
    say("   ... waiting for the IEP review date (timers run on the policy's short clock)")
    while (await journeys.show(svc, senco, jid)).phase.value != "review_due":
        await asyncio.sleep(1)
    say("4. the review is due")
    r = await journeys.act(
        svc,
        senco,
        jid,
        BY_NAME["review"],
        RecordReviewInput(
            SIGNED_IN,
            ReviewOutcome.ESCALATE,
            [TargetProgress(0, "reads 12 of 30 words", False)],
            "little progress despite the IEP",
            replace(iep, strategies=["precision teaching"]),
            [Trigger.AP_LITERACY_MATHS],
        ),
    )
    say(f"5. review: escalate -> {r.stage_label} ({r.phase})")
    r = await journeys.act(
        svc,
        senco,
        jid,
        BY_NAME["refer"],
        ReferInput(
            SIGNED_IN,
            SpecialistKind.EDUCATIONAL_PSYCHOLOGIST,
            "ep-1",
            "what underlies the slow progress in decoding?",
        ),
    )
    assert r.ref is not None
    say(f"6. referral to the educational psychologist: {r.ref}")
    ep = Principal("ep-1", Role.SPECIALIST, frozenset(), "operator-demo")
    await journeys.complete_assessment(
        svc,
        ep,
        jid,
        r.ref,
        "phonological processing difficulty",
        ["structured literacy programme"],
    )
    say("7. the educational psychologist reports")
    while not any(ref.completed_at for ref in (await journeys.show(svc, senco, jid)).referrals):
        await asyncio.sleep(0.5)
    r = await journeys.act(
        svc,
        senco,
        jid,
        BY_NAME["request-statutory-assessment"],
        RequestStatutoryAssessmentInput(SIGNED_IN, "needs exceed what the school can provide"),
    )
    say(f"8. statutory assessment requested -> {r.stage_label} ({r.phase})")
    state = await journeys.show(svc, senco, jid)
    output.show_json_or(
        as_json,
        {"journey_id": jid, "pupil": pupil, "stage": state.stage.value, "step": state.step},
        f"\njourney {jid}: {state.stage_label} ({state.phase.value}), {state.step} steps",
    )
    return 0


# -- the dev stack's outbox --------------------------------------------------------------------

REPLY_CODE = re.compile(r"sf\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}")


def outbox(args: argparse.Namespace, settings: Settings) -> int:
    """The letters the outbox holds (where letters go when no SMTP server is configured), newest
    last; ``--reply-code`` prints the reply code in the newest matching letter, as a parent
    would read it there."""
    deadline = time.monotonic() + args.wait
    while True:
        letters = _letters(settings.outbox_dir, args.to, args.journey)
        if args.reply_code:
            codes = [c for letter in letters for c in REPLY_CODE.findall(letter["text"])]
            if codes:
                output.out(codes[-1])
                return 0
        elif letters or time.monotonic() >= deadline:
            rows = [{k: v for k, v in letter.items() if k != "text"} for letter in letters]
            output.show_json_or(args.json, rows, output.table(rows))
            return 0
        if time.monotonic() >= deadline:
            raise Refused("no such letter in the outbox (yet)")
        time.sleep(0.5)


def _letters(folder: Path, to: str | None, journey: str | None) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes())
        if to is not None and to not in str(message["To"]):
            continue
        if journey is not None and message["X-Senflow-Journey"] != journey:
            continue
        part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), None)
        payload = part.get_payload(decode=True) if part is not None else b""
        found.append(
            {
                "to": str(message["To"]),
                "subject": str(message["Subject"]),
                "journey": str(message["X-Senflow-Journey"]),
                "file": path.name,
                "text": payload.decode("utf-8", "replace") if isinstance(payload, bytes) else "",
            }
        )
    return found
