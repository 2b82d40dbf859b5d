"""The CLI's output: tables, CSV, JSON and the texts people read (London times)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.policy import LONDON


def out(text: str) -> None:
    print(text)  # noqa: T201 - the CLI's own output


def show(args: Any, value: Any, text: str) -> None:
    out(json.dumps(value, indent=2, default=str) if args.json else text)


def show_json_or(as_json: bool, value: Any, text: str) -> None:
    out(json.dumps(value, indent=2, default=str) if as_json else text)


def table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def as_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{local(value):%Y-%m-%d %H:%M}"
    return str(value)


def local(instant: datetime) -> datetime:
    """Times people read are London times."""
    return instant.astimezone(ZoneInfo(LONDON))


def when(text: str | None) -> str:
    if not text:
        return "-"
    return f"{local(datetime.fromisoformat(text)):%Y-%m-%d %H:%M}"


def view_text(v: dict[str, Any]) -> str:
    lines = [
        f"pupil        {v['pupil_id']} (setting {v['school_id']}, journey {v['journey_id']})",
        f"stage        {v['stage_label']}" + (" (early years)" if v["early_years"] else ""),
        f"phase        {v['phase']}",
        f"next review  {v['next_review_date'] or '-'}" + ("  OVERDUE" if v["overdue"] else ""),
    ]
    iep = v.get("iep")
    if iep:
        lines.append(
            f"plan         {iep['iep_id']}, agreed {iep['agreed_at'][:10]}, "
            f"responsible: {', '.join(iep['responsible'])}"
        )
        lines += [
            f"  target {i}: {t['description']} (success: {t['success_criterion']})"
            for i, t in enumerate(iep["targets"])
        ]
    for c in v["consultations"]:
        if c["status"] != "open":
            continue
        answered = {r["parent_id"] for r in c.get("responses", [])}
        waiting = [p for p in c["parent_ids"] if p not in answered]
        lines.append(
            f"consultation {c['consultation_id']} on {c['subject']}: awaiting "
            f"{', '.join(waiting)} until {when(c['deadline'])}"
        )
    for r in v["referrals"]:
        if r["status"] != "open":
            continue
        lines.append(
            f"referral     {r['referral_id']}: {r['kind']} ({r['specialist_id']}), "
            f"requested {r['requested_at'][:10]}, chased {r['chases']}x"
        )
    if v.get("close_reason"):
        lines.append(f"closed       {v['close_reason']}")
    return "\n".join(lines)


def list_text(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "no journeys match"
    header = f"{'pupil':<16} {'setting':<10} {'stage':<22} {'next review':<17} overdue"
    body = [
        f"{r['pupil']:<16} {r['school'] or '-':<10} {r['stage'] or '-':<22} "
        f"{when(r['next_review']):<17} {'yes' if r['overdue'] else 'no'}"
        + ("" if r["status"] == "running" else f" ({r['status']})")
        for r in rows
    ]
    return "\n".join([header, *body])
