"""``senflow archive ...``: schedule, run, status, list, verify, purge, purge-log.

Wired into starter.py by ``register`` (the parser) and ``run`` (the command); exit codes as
for every senflow command: 0 done, 1 refused or a problem found, 3 Temporal unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from archive.archiver import archive_pass
from archive.purge import PurgeReason, purge, purge_log
from archive.schedule import SCHEDULE_ID, describe_schedule, ensure_schedule
from archive.status import archive_status, human
from archive.store import Archive, open_archive
from domain.commands import Refused
from domain.model import Actor, Role
from domain.policy import LONDON
from settings import Settings, connect
from workflows.converter import JSONEncoder


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    help = "closed journeys' histories kept after Temporal's retention"
    p = sub.add_parser("archive", help=help, description=help)
    actions = p.add_subparsers(dest="archive_action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help, description=help, parents=[common]
        )
        return parser

    action("schedule", "create or update the archiver's Temporal Schedule (idempotent)")
    a = action("run", "one archiving pass now, in this process")
    a.add_argument("--batch-size", type=int, default=100)
    action("status", "retention, schedule, and the dangerous set (exit 1 unless all is well)")
    a = action("list", "a pupil's archived runs")
    a.add_argument("pupil", help="the school's opaque pupil reference")
    action("verify", "read every archived run back and check its SHA-256 (exit 1 on damage)")
    a = action("purge", "admin: erase a closed journey's archive, read-model rows and letters")
    a.add_argument("pupil", help="the school's opaque pupil reference")
    a.add_argument("--reason", required=True, choices=[r.value for r in PurgeReason])
    a.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for Temporal's deletion"
    )
    a = action("purge-log", "who purged what and when (no pupil ids)")
    a.add_argument("--pupil", help="only this pupil's purges (needs SENFLOW_PURGE_KEY)")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    archive = open_archive(settings.database_url, settings.archive_url, settings.purge_key)
    what = args.archive_action
    if what == "purge-log":
        rows = [_log_row(e) for e in purge_log(archive, args.pupil, settings.purge_key)]
        _print(args.json, rows, _table(rows))
        return 0
    if what in ("list", "verify"):
        return _offline(args, archive)
    if what == "purge":
        _need_actor(args)
    try:
        client = await connect(settings)
    except RuntimeError as err:
        sys.stderr.write(f"Temporal is unreachable at {settings.temporal_address}: {err}\n")
        return 3
    if what == "schedule":
        outcome = await ensure_schedule(client, settings)
        view = await describe_schedule(client)
        _print(
            args.json,
            {"schedule": SCHEDULE_ID, "result": outcome, "view": view},
            f"schedule {SCHEDULE_ID} {outcome}: every {human(settings.archive_every)}"
            + (f", next run {_local(view.next_runs[0])}" if view and view.next_runs else ""),
        )
        return 0
    if not archive.available():
        raise Refused("the archive's tables are missing: run `senflow records migrate` first")
    if what == "run":
        result = await archive_pass(
            client, archive, f"cli-{uuid.uuid4().hex[:12]}", batch_size=args.batch_size
        )
        text = (
            f"archived {result.archived} run(s); {result.already} already archived by another "
            f"pass; {result.purged} purged meanwhile; {result.lost} lost; {result.failed} failed"
        )
        _print(args.json, result, "\n".join([text, *result.problems]))
        return 1 if result.lost or result.failed else 0
    if what == "status":
        status = await archive_status(client, archive, settings)
        _print(args.json, status, _status_text(status))
        return 1 if status.problems else 0
    if what == "purge":
        actor = _need_actor(args)
        done = await purge(
            client,
            archive,
            args.pupil,
            actor,
            PurgeReason(args.reason),
            settings.purge_key,
            settings.outbox_dir,
            args.wait,
        )
        _print(
            args.json,
            done,
            f"purged pupil {args.pupil} (log {done.purge_id}): {done.archived_runs} archived "
            f"run(s), {done.read_model_rows} read-model row(s), {done.letters} letter(s), "
            f"{done.temporal_runs} run(s) deleted from Temporal"
            + (f" ({done.temporal_pending} still being deleted)" if done.temporal_pending else ""),
        )
        return 0
    raise AssertionError(what)


def _offline(args: argparse.Namespace, archive: Archive) -> int:
    if not archive.available():
        raise Refused("the archive's tables are missing: run `senflow records migrate` first")
    if args.archive_action == "list":
        rows = [
            {
                "run_id": r.run_id,
                "journey": r.first_run_id,
                "status": r.status,
                "started": r.started_at,
                "closed": r.closed_at,
                "events": r.events,
                "bytes": r.size,
                "stored": r.stored_size,
                "sha256": r.sha256,
                "archived": r.archived_at,
            }
            for r in archive.runs_of(f"pupil-{args.pupil}")
        ]
        _print(args.json, rows, _table(rows))
        return 0
    problems = archive.check_all()
    totals = archive.totals()
    _print(
        args.json,
        {"checked": totals["runs"], "problems": problems},
        "\n".join(problems + [f"{totals['runs']} archived run(s) checked, {len(problems)} bad"]),
    )
    return 1 if problems else 0


def _need_actor(args: argparse.Namespace) -> Actor:
    if not args.actor or args.role is None:
        raise Refused("say who you are: --actor ID --role admin (or SENFLOW_ACTOR/SENFLOW_ROLE)")
    role = args.role if isinstance(args.role, Role) else Role(args.role)
    return Actor(args.actor, role)


def _status_text(s: Any) -> str:
    lines = [
        f"namespace      {s.namespace}: Temporal keeps closed runs {human(s.retention)}",
        (
            f"schedule       {s.schedule.schedule_id} every {human(s.schedule.every)}"
            + (" (PAUSED)" if s.schedule.paused else "")
            + (f", next {_local(s.schedule.next_runs[0])}" if s.schedule.next_runs else "")
            + (f", last {_local(s.schedule.last_run)}" if s.schedule.last_run else "")
            if s.schedule
            else "schedule       none"
        ),
        f"in Temporal    {s.closed_runs} closed run(s), {s.archived_runs} archived, "
        f"{len(s.pending)} waiting",
        f"archive        {s.archive['runs']} run(s) of {s.archive['journeys']} journey(s), "
        f"{s.archive['bytes']} bytes as {s.archive['stored_bytes']} stored",
        f"dangerous      {len(s.dangerous)}",
    ]
    lines += [
        f"  {p.workflow_id} run {p.run_id}: closed {_local(p.closed_at)}, "
        f"Temporal may delete it from {_local(p.deleted_from)}"
        for p in s.dangerous
    ]
    lines += [f"PROBLEM: {p}" for p in s.problems] + [f"note: {n}" for n in s.notes]
    return "\n".join(lines)


def _log_row(e: Any) -> dict[str, Any]:
    return {
        "purge_id": e.purge_id,
        "pupil_ref": e.pupil_ref[:16],
        "by": f"{e.actor_role}:{e.actor_id}",
        "reason": e.reason,
        "at": e.started_at,
        "finished": e.finished_at,
        "archived_runs": e.archived_runs,
        "read_model_rows": e.read_model_rows,
        "temporal_runs": e.temporal_runs,
        "letters": e.letters,
    }


def _local(instant: datetime) -> str:
    return f"{instant.astimezone(ZoneInfo(LONDON)):%Y-%m-%d %H:%M}"


def _print(as_json: bool, value: Any, text: str) -> None:
    if as_json:
        if hasattr(value, "__dataclass_fields__"):
            value = asdict(value)
        text = json.dumps(value, cls=JSONEncoder, indent=2)
    sys.stdout.write(text + "\n")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    cells = [
        [_local(v) if isinstance(v, datetime) else "-" if v is None else str(v) for v in r.values()]
        for r in rows
    ]
    columns = list(rows[0])
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)
