"""The auditor's report: text, JSON, and one self-contained printable HTML file (no network)
that opens with the journey drawn as an SVG timeline."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from html import escape
from typing import Any

from audit.compliance import Breach
from audit.trail import Trail
from domain.model import EntryKind, JourneyState, Stage
from workflows.converter import JSONEncoder

STAGE_COLOURS = {
    Stage.MONITORING: "#dfe9f3",
    Stage.SCHOOL_ACTION: "#9cc3e6",
    Stage.SCHOOL_ACTION_PLUS: "#5b9bd5",
    Stage.STATUTORY_ASSESSMENT: "#2e5f8a",
    Stage.SEN_SUPPORT: "#7fb77e",
    Stage.EHC_NEEDS_ASSESSMENT: "#3d8b40",
    Stage.EHC_PLAN: "#1f5c22",
}
OVERDUE = "#d9534f"


def as_json(trail: Trail, breaches: list[Breach]) -> str:
    s = trail.state
    return json.dumps(
        {
            "workflow_id": trail.workflow_id,
            "runs": [r.run_id for r in trail.runs],
            "notes": trail.notes,
            "pupil": s.pupil_id,
            "school": s.school_id,
            "stage": s.stage_label,
            "phase": s.phase.value,
            "timeline": [asdict(e) for e in s.timeline],
            "ieps": [asdict(i) for i in [*s.past_ieps, *([s.iep] if s.iep else [])]],
            "reviews": [asdict(r) for r in s.reviews],
            "consultations": [asdict(c) for c in s.consultations],
            "referrals": [asdict(r) for r in s.referrals],
            "breaches": [asdict(b) for b in breaches],
        },
        cls=JSONEncoder,
        indent=2,
    )


def as_text(trail: Trail, breaches: list[Breach]) -> str:
    s = trail.state
    lines = [
        f"journey {trail.workflow_id}: pupil {s.pupil_id}, school {s.school_id}, "
        f"{len(trail.runs)} run(s); now {s.stage_label} ({s.phase.value})"
    ]
    lines += [f"note: {n}" for n in trail.notes]
    lines.append("")
    for e in s.timeline:
        moved = (
            f" [{e.stage_before.value} -> {e.stage_after.value}]"
            if e.stage_before and e.stage_after
            else ""
        )
        triggers = f" triggers {', '.join(t.value for t in e.triggers)}" if e.triggers else ""
        reason = f" -- {e.reason}" if e.reason else ""
        lines.append(
            f"{e.at:%Y-%m-%d %H:%M} #{e.step:<3} {e.actor.role.value}:{e.actor.id} "
            f"{e.kind.value}: {e.summary}{moved}{triggers}{reason}"
        )
    lines.append("")
    for c in s.consultations:
        answers = ", ".join(f"{r.parent_id} {r.reply.value}" for r in c.responses) or "-"
        lines.append(f"consultation {c.consultation_id} ({c.subject}): {c.status.value}; {answers}")
    for r in s.referrals:
        lines.append(
            f"referral {r.referral_id} {r.kind.value}: requested "
            f"{r.requested_at:%Y-%m-%d}, chased {r.chases}x, {r.status.value}"
            + (f" {r.completed_at:%Y-%m-%d}" if r.completed_at else "")
        )
    lines.append("")
    lines.append(f"compliance: {len(breaches)} breach(es)")
    for b in breaches:
        lines.append(f"  BREACH {b.rule}: {b.detail}")
        lines += [f"    {ev}" for ev in b.evidence]
    return "\n".join(lines)


def spans(state: JourneyState, end: datetime) -> list[tuple[Stage, datetime, datetime]]:
    """(stage, from, to) from the recorded stage decisions."""
    result, stage, since = [], Stage.MONITORING, state.opened_at
    for e in state.timeline:
        if e.kind is EntryKind.DECISION and e.stage_after and e.stage_after is not stage:
            result.append((stage, since, e.at))
            stage, since = e.stage_after, e.at
    if stage is not Stage.CLOSED:
        result.append((stage, since, end))
    return result


def overdue_spans(state: JourneyState, end: datetime) -> list[tuple[datetime, datetime]]:
    result = []
    for flagged in (e for e in state.timeline if e.kind is EntryKind.REVIEW_OVERDUE):
        resolved = next(
            (
                e.at
                for e in state.timeline
                if e.step > flagged.step and e.kind in (EntryKind.REVIEW, EntryKind.DECISION)
            ),
            end,
        )
        result.append((flagged.at, resolved))
    return result


def svg_timeline(state: JourneyState, end: datetime, width: int = 900) -> str:
    start = state.opened_at
    total = max((end - start).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return 40 + (width - 80) * max(0.0, (t - start).total_seconds()) / total

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="150" '
        f'role="img" aria-label="The journey over time">'
    ]
    for stage, a, b in spans(state, end):
        parts.append(
            f'<rect x="{x(a):.1f}" y="30" width="{max(x(b) - x(a), 1):.1f}" '
            f'height="40" fill="{STAGE_COLOURS[stage]}"><title>{stage.value}: '
            f"{a:%Y-%m-%d} to {b:%Y-%m-%d}</title></rect>"
        )
    for a, b in overdue_spans(state, end):
        parts.append(
            f'<rect class="overdue" x="{x(a):.1f}" y="74" '
            f'width="{max(x(b) - x(a), 2):.1f}" height="8" fill="{OVERDUE}">'
            f"<title>review overdue {a:%Y-%m-%d} to {b:%Y-%m-%d}</title></rect>"
        )
    for r in state.reviews:
        parts.append(
            f'<circle class="review" cx="{x(r.held_at):.1f}" cy="50" r="6" '
            f'fill="#fff" stroke="#000"><title>review {r.review_id}: '
            f"{r.outcome.value} ({r.held_at:%Y-%m-%d})</title></circle>"
        )
    for c in state.consultations:
        cx = x(c.opened_at)
        colour = {"answered": "#3c763d", "lapsed": "#a94442"}.get(c.status.value, "#8a6d3b")
        parts.append(
            f'<path class="consultation" d="M{cx:.1f},92 l6,10 l-12,0 z" '
            f'fill="{colour}"><title>consultation {c.consultation_id}: '
            f"{escape(c.subject)} ({c.status.value})</title></path>"
        )
    parts.append(f'<line x1="40" y1="115" x2="{width - 40}" y2="115" stroke="#333"/>')
    parts.append(f'<text x="40" y="135" font-size="12">{start:%d %b %Y}</text>')
    parts.append(
        f'<text x="{width - 40}" y="135" font-size="12" text-anchor="end">{end:%d %b %Y}</text>'
    )
    legend_x = 40
    for stage, colour in STAGE_COLOURS.items():
        parts.append(
            f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="18" font-size="11">{stage.value}</text>'
        )
        legend_x += 150
    parts.append(
        f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{OVERDUE}"/>'
        f'<text x="{legend_x + 16}" y="18" font-size="11">overdue</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def as_html(trail: Trail, breaches: list[Breach], now: datetime) -> str:
    s = trail.state
    end = s.closed_at or max([now, *(e.at for e in s.timeline)])
    e_ = escape

    def row(cells: list[Any]) -> str:
        return "<tr>" + "".join(f"<td>{e_(str(c))}</td>" for c in cells) + "</tr>"

    def table(head: list[str], rows: list[str]) -> str:
        if not rows:
            return "<p><em>none</em></p>"
        return (
            "<table><thead><tr>"
            + "".join(f"<th>{e_(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )

    decisions = [
        row(
            [
                f"{d.at:%Y-%m-%d}",
                f"{d.actor.role.value} {d.actor.id}",
                f"{d.stage_before.value if d.stage_before else ''} → "
                f"{d.stage_after.value if d.stage_after else ''}",
                ", ".join(t.value for t in d.triggers),
                d.reason,
            ]
        )
        for d in s.decisions()
    ]
    ieps = []
    for i in [*s.past_ieps, *([s.iep] if s.iep else [])]:
        targets = "; ".join(f"{t.description} (met when: {t.success_criterion})" for t in i.targets)
        ieps.append(
            row([i.iep_id, i.stage.value, f"{i.agreed_at:%Y-%m-%d}", str(i.review_date), targets])
        )
    reviews = [
        row(
            [
                r.review_id,
                f"{r.held_at:%Y-%m-%d}",
                r.stage.value,
                r.outcome.value,
                "; ".join(
                    f"{p.target_index}: {p.progress}{' (met)' if p.met else ''}" for p in r.progress
                ),
                r.notes,
            ]
        )
        for r in s.reviews
    ]
    consultations = [
        row(
            [
                c.consultation_id,
                f"{c.opened_at:%Y-%m-%d}",
                c.subject,
                f"{c.deadline:%Y-%m-%d}",
                c.status.value,
                "; ".join(
                    f"{r.parent_id}: "
                    + ("no response" if r.reply.value == "no_response" else r.reply.value)
                    for r in c.responses
                )
                or "—",
            ]
        )
        for c in s.consultations
    ]
    chased = {
        r.referral_id: [
            e.at
            for e in s.timeline
            if e.kind is EntryKind.REFERRAL_CHASED and e.ref == r.referral_id
        ]
        for r in s.referrals
    }
    referrals = [
        row(
            [
                r.referral_id,
                r.kind.value,
                f"{r.requested_at:%Y-%m-%d}",
                ", ".join(f"{t:%Y-%m-%d}" for t in chased[r.referral_id]) or "—",
                f"{r.completed_at:%Y-%m-%d}" if r.completed_at else "—",
                r.status.value,
                r.summary,
            ]
        )
        for r in s.referrals
    ]
    rejected = [
        row([f"{e.at:%Y-%m-%d %H:%M}", f"{e.actor.role.value} {e.actor.id}", e.summary, e.reason])
        for e in s.timeline
        if e.kind is EntryKind.REJECTED_MESSAGE
    ]
    everything = [
        row(
            [
                f"{e.at:%Y-%m-%d %H:%M}",
                e.step,
                f"{e.actor.role.value} {e.actor.id}",
                e.kind.value,
                e.summary,
                e.reason,
            ]
        )
        for e in s.timeline
    ]
    findings = (
        "<p class='ok'>No breach found.</p>"
        if not breaches
        else "<ul>"
        + "".join(
            f"<li><strong>{e_(b.rule)}</strong>: {e_(b.detail)}<br><small>"
            + "<br>".join(e_(ev) for ev in b.evidence)
            + "</small></li>"
            for b in breaches
        )
        + "</ul>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>SEN journey {e_(s.pupil_id)}</title>
<style>
body {{ font-family: Arial, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85em; }}
th, td {{ border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }} .ok {{ color: #3c763d; }}
@media print {{ h2 {{ page-break-after: avoid; }} tr {{ page-break-inside: avoid; }} }}
</style></head><body>
<h1>SEN journey of pupil {e_(s.pupil_id)} — school {e_(s.school_id)}</h1>
<p>Now: <strong>{e_(s.stage_label)}</strong> ({e_(s.phase.value)}). Opened
{s.opened_at:%d %B %Y}{
        f", closed {s.closed_at:%d %B %Y} ({s.close_reason.value})"
        if s.closed_at and s.close_reason
        else ""
    }. Recorded in {len(trail.runs)} workflow run(s)
of <code>{e_(trail.workflow_id)}</code>; report made {now:%d %B %Y %H:%M} UTC.</p>
{"".join(f"<p><em>{e_(n)}</em></p>" for n in trail.notes)}
{svg_timeline(s, end)}
<p><small>Bands: the stage over time. Circles: reviews. Triangles: consultations (green
answered, red no response, amber open). Red bars: reviews overdue.</small></p>
<h2>Compliance</h2>{findings}
<h2>Decisions</h2>{table(["date", "who", "stage", "triggers", "why"], decisions)}
<h2>IEPs and targets</h2>{table(["IEP", "stage", "agreed", "review date", "targets"], ieps)}
<h2>Reviews</h2>{table(["review", "held", "stage", "outcome", "progress", "notes"], reviews)}
<h2>Parents consulted</h2>{
        table(["consultation", "opened", "on", "reply by", "status", "responses"], consultations)
    }
<h2>Referrals</h2>{
        table(
            ["referral", "specialist", "requested", "chased", "completed", "status", "summary"],
            referrals,
        )
    }
<h2>Rejected messages</h2>{table(["when", "from", "what", "why"], rejected)}
<h2>Every recorded event</h2>{table(["when", "step", "who", "kind", "what", "reason"], everything)}
</body></html>
"""
