"""``senflow`` commands for the 2014 Code: SEN Support, the EHC needs assessment, ``migrate``
and the statutory clock report. Wired into starter.py; the same application functions
(``starter.act``, ``reform.migration.migrate``) serve every front end."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

import starter
from domain.commands import (
    EhcAdviceReceivedInput,
    EhcAdviceRequestInput,
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    IepInput,
    OpenSenSupportInput,
    RequestEhcAssessmentInput,
)
from domain.model import Actor, PauseReason, Role, SenType
from domain.policy import CODE_2014
from reform import clock, migration
from settings import Settings
from workflows.converter import JSONEncoder

#: CLI command -> workflow update.
ACTIONS: dict[str, str] = {
    "open-sen-support": "open_sen_support",
    "request-ehc-assessment": "request_ehc_assessment",
    "ehc-decide": "ehc_decide",
    "ehc-advice": "ehc_request_advice",
    "ehc-advice-received": "ehc_advice_received",
    "ehc-draft": "ehc_draft",
    "ehc-final": "ehc_finalise",
    "ehc-pause": "pause_ehc_clock",
    "ehc-resume": "resume_ehc_clock",
}
#: Commands that talk to Temporal but are not a single pupil's action.
COMMANDS = ("migrate",)


def register(cmd: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the 2014 commands through starter's ``cmd(name, help, pupil=True)`` factory."""
    p = cmd("open-sen-support", "SENCO (2014 Code): assess, plan, do, review — open SEN Support")
    p.add_argument("--need", type=starter._enum(SenType), required=True, help="primary need")
    p.add_argument("--secondary-need", type=starter._enum(SenType))
    p.add_argument("--evidence", default="", help="what the assessment found")
    _add_plan(p, required=True)

    p = cmd("request-ehc-assessment", "SENCO: ask the local authority for an EHC needs assessment")
    p.add_argument("--la", required=True, help="the local authority's id")
    p.add_argument("--evidence", default="")

    p = cmd("ehc-decide", "local authority: decide whether to assess (6 weeks)")
    p.add_argument("--assess", choices=["yes", "no"], required=True)
    p.add_argument("--reason", default="")

    p = cmd("ehc-advice", "local authority: ask a professional for advice (6 weeks)")
    p.add_argument("--adviser", required=True, help="the adviser's id")
    p.add_argument("--kind", required=True, help="e.g. educational_psychologist, health")

    p = cmd("ehc-advice-received", "local authority: record advice received")
    p.add_argument("--advice", required=True, help="the advice id the request returned")

    p = cmd("ehc-draft", "local authority: issue the draft plan, or decide not to (16 weeks)")
    p.add_argument("--issue", choices=["yes", "no"], required=True)
    p.add_argument("--reason", default="")
    _add_plan(p, required=False)

    p = cmd("ehc-final", "local authority: issue the final EHC plan (20 weeks)")
    p.add_argument("--reason", default="")
    _add_plan(p, required=False)

    p = cmd("ehc-pause", "local authority: pause the clock for an exception the law allows")
    p.add_argument("--reason", type=starter._enum(PauseReason), required=True)

    cmd("ehc-resume", "local authority: resume the clock")

    p = cmd("migrate", "admin: move running code_2001 journeys to the 2014 Code", pupil=False)
    p.add_argument("--to", choices=[CODE_2014], required=True)
    p.add_argument("--school", action="append", default=[], help="only these schools (repeat)")
    p.add_argument("--la", default="", help="the local authority continuing statutory assessments")
    p.add_argument("--reason", default="the SEN Code of Practice 2014 is in force")
    p.add_argument("--dry-run", action="store_true", help="say what would move; change nothing")
    p.add_argument("--concurrency", type=int, default=8)


def _add_plan(p: argparse.ArgumentParser, required: bool) -> None:
    starter._add_iep(p, required)
    g = p.add_argument_group("2014 plan")
    g.add_argument("--expected-impact", default="", help="the expected impact on progress")
    g.add_argument("--pupil-views", default="", help="the pupil's own views")


def _plan(args: argparse.Namespace, required: bool) -> IepInput | None:
    plan = starter._iep(args) if not required else starter._required_iep(args)
    if plan is not None:
        plan.expected_impact = args.expected_impact
        plan.pupil_views = args.pupil_views
    return plan


def command(args: argparse.Namespace, actor: Actor) -> object:
    c = args.command
    if c == "open-sen-support":
        plan = _plan(args, required=True)
        assert plan is not None
        return OpenSenSupportInput(actor, args.need, args.evidence, plan, args.secondary_need)
    if c == "request-ehc-assessment":
        return RequestEhcAssessmentInput(actor, args.la, args.evidence)
    if c == "ehc-decide":
        return EhcDecisionInput(actor, args.assess == "yes", args.reason)
    if c == "ehc-advice":
        return EhcAdviceRequestInput(actor, args.adviser, args.kind)
    if c == "ehc-advice-received":
        return EhcAdviceReceivedInput(actor, args.advice)
    if c == "ehc-draft":
        return EhcDraftInput(actor, args.issue == "yes", args.reason, _plan(args, False))
    if c == "ehc-final":
        return EhcFinalInput(actor, args.reason, _plan(args, False))
    if c == "ehc-pause":
        return EhcPauseInput(actor, args.reason)
    if c == "ehc-resume":
        return EhcResumeInput(actor)
    raise AssertionError(c)


def default_role(command: str) -> Role | None:
    if command.startswith("ehc-"):
        return Role.LOCAL_AUTHORITY
    return Role.ADMIN if command == "migrate" else None


def check_actor(command: str, actor: Actor, parser: argparse.ArgumentParser) -> None:
    if command == "migrate" and actor.role is not Role.ADMIN:
        parser.error("migrate is an admin's decision: --role admin")


async def run(
    client: Client, args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings
) -> int:
    """``migrate``: counts per school, then every journey's outcome with --json."""
    actor = starter._actor(args, parser, Role.ADMIN)
    check_actor("migrate", actor, parser)

    def progress(o: migration.Outcome) -> None:
        if not args.json:
            sys.stderr.write(f"{o.pupil_id}: {o.result} {o.stage_before} -> {o.stage_after}\n")
            sys.stderr.flush()

    report = await migration.migrate(
        client,
        actor,
        args.reason,
        schools=args.school,
        local_authority_id=args.la,
        dry_run=args.dry_run,
        concurrency=args.concurrency,
        progress=progress,
    )
    if args.json:
        starter._out(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "totals": report.totals(),
                    "by_school": report.by_school(),
                    "moves": report.moves(),
                    "outcomes": report.outcomes,
                },
                cls=JSONEncoder,
                indent=2,
            )
        )
    else:
        rows: list[dict[str, Any]] = [
            {"school": school, **counts} for school, counts in report.by_school().items()
        ]
        title = "DRY RUN — nothing changed" if report.dry_run else "migrated to code_2014"
        lines = [title, starter._table(rows) if rows else "(no running journeys)"]
        lines += [f"{move}: {n}" for move, n in report.moves().items()]
        lines += [
            f"refused {o.pupil_id}: {o.reason}" for o in report.outcomes if o.result == "refused"
        ]
        starter._out("\n".join(lines))
    return 1 if any(o.result == "refused" for o in report.outcomes) else 0


async def statutory_clock_report(client: Client, args: argparse.Namespace) -> int:
    rows = await clock.statutory_clock(client, datetime.now(UTC), args.school)
    if args.json:
        starter._out(json.dumps(rows, cls=JSONEncoder, indent=2))
    elif args.csv:
        starter._out(starter._csv(rows))
    else:
        starter._out(starter._table(rows) if rows else "(no EHC needs assessments)")
    return 0
