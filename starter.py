"""`senflow`: the command line. Acting and reading commands are a client of the HTTP API, as
the signed-in user (`senflow login`, or SENFLOW_TOKEN); history records the token's owner.
Operator commands (worker, api, up, keys, records, contacts, archive, replay --all, demo,
bench, users bootstrap) run beside the service and reach Temporal or the database directly.

Exit codes: 0 done, 1 refused (the reason on stderr, including "not signed in"), 2 usage
error, 3 the API or Temporal unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from api import cli as api_cli
from archive import cli as archive_cli
from cli import ops, output
from domain.commands import Refused, check_opaque_id
from domain.model import (
    CloseReason,
    ParentReply,
    PauseReason,
    ReviewOutcome,
    Role,
    SenType,
    SpecialistKind,
    Stage,
    Trigger,
)
from domain.policy import CODE_2014
from service.actions import ACTIONS, Action
from service.errors import NotFound, Unreachable
from service.reports import Report
from settings import Settings, configure_logging

Handler = Callable[[argparse.Namespace, "Session"], int]
Body = dict[str, Any]


class NotSignedIn(Exception):
    pass


UsageError = ops.UsageError  # what argparse cannot see: the command's words are off (exit 2)


# -- the signed-in session -------------------------------------------------------------------


def config_dir() -> Path:
    """Where `senflow login` keeps the token: readable by this user only."""
    if os.environ.get("SENFLOW_CONFIG_DIR"):
        return Path(os.environ["SENFLOW_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "senflow"


def credentials_file() -> Path:
    return config_dir() / "credentials.json"


def api_url(settings: Settings) -> str:
    stored = _stored()
    return (os.environ.get("SENFLOW_API_URL") or stored.get("api_url") or "").rstrip(
        "/"
    ) or settings.public_api_url


def _stored() -> dict[str, str]:
    try:
        found: dict[str, str] = json.loads(credentials_file().read_text())
        return found
    except (OSError, ValueError):
        return {}


class Session:
    """The HTTP API as the signed-in user."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token

    def _call(self, method: str, path: str, timeout: float | None = 60.0, **kw: Any) -> Any:
        if not self.token:
            raise NotSignedIn("not signed in: run `senflow login` (or set SENFLOW_TOKEN)")
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with httpx.Client(base_url=self.base_url, timeout=timeout) as http:
                response = http.request(method, f"/v1{path}", headers=headers, **kw)
        except httpx.TransportError as err:
            raise Unreachable(f"the senflow API is unreachable at {self.base_url}: {err}") from None
        return _answer(response)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._call("GET", path, params=clean)

    def post(self, path: str, body: Body | None = None, timeout: float | None = 60.0) -> Any:
        return self._call("POST", path, timeout=timeout, json=body or {})

    def journey_id(self, args: argparse.Namespace) -> str:
        """The journey the command means: --journey, or the pupil reference (and --school)."""
        if getattr(args, "journey", None):
            check_opaque_id(args.journey, "journey id")
            return str(args.journey)
        if not getattr(args, "pupil", None):
            raise UsageError("name the pupil (its reference; --school if you have several)")
        check_opaque_id(args.pupil, "pupil reference")
        if args.school is not None:
            check_opaque_id(args.school, "setting id")
        found = self.get(f"/pupils/{quote(args.pupil, safe='')}/journey", school=args.school)
        return str(found["journey_id"])


def _answer(response: httpx.Response) -> Any:
    if response.status_code == 401:
        raise NotSignedIn(
            "not signed in, or the token was revoked or has expired: run `senflow login`"
        )
    if response.status_code == 404:
        raise NotFound("no such journey")
    if response.status_code == 503:
        raise Unreachable(_detail(response))
    if response.status_code >= 400:
        raise Refused(_detail(response))
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response.text


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(detail, list):  # a 422: where and why
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}" for d in detail
        )
    return str(detail)


# -- parsing helpers ---------------------------------------------------------------------------


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _target(value: str) -> dict[str, str]:
    description, sep, criterion = value.partition("::")
    if not sep or not description.strip() or not criterion.strip():
        raise argparse.ArgumentTypeError(
            "a target is 'what the pupil will do::how we know it is met'"
        )
    return {"description": description.strip(), "success_criterion": criterion.strip()}


def _progress(value: str) -> dict[str, Any]:
    parts = value.split(":", 2)
    try:
        index = int(parts[0])
    except ValueError:
        raise argparse.ArgumentTypeError(
            "progress is 'TARGET_INDEX:what progress was made[:met]'"
        ) from None
    text = parts[1] if len(parts) > 1 else ""
    met = len(parts) > 2 and parts[2].strip().lower() in ("met", "yes", "true")
    return {"target_index": index, "progress": text, "met": met}


def _enum(cls: Any) -> Any:
    def parse(value: str) -> Any:
        try:
            return cls(value).value
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise argparse.ArgumentTypeError(f"{value!r} is not one of: {choices}") from None

    parse.__name__ = cls.__name__
    return parse


def _yes(value: str) -> bool:
    return value == "yes"


def _add_plan(p: argparse.ArgumentParser, required: bool, code_2014: bool = False) -> None:
    g = p.add_argument_group("plan" + ("" if required else " (optional: a new plan)"))
    g.add_argument(
        "--target", type=_target, action="append", default=[], help="'target::success criterion'"
    )
    g.add_argument("--strategy", action="append", default=[], help="teaching strategy (repeat)")
    g.add_argument("--provision", action="append", default=[], help="provision (repeat)")
    g.add_argument("--responsible", action="append", default=[], help="staff id (repeat)")
    g.add_argument("--review-date", type=_date, help="YYYY-MM-DD; default: the policy's interval")
    if code_2014:
        g.add_argument("--expected-impact", default="", help="the expected impact on progress")
        g.add_argument("--pupil-views", default="", help="the pupil's own views")


def _plan(args: argparse.Namespace, required: bool = False) -> Body | None:
    given = args.target or args.strategy or args.provision or args.responsible
    extra = getattr(args, "expected_impact", "") or getattr(args, "pupil_views", "")
    if not (given or extra or required):
        return None
    plan: Body = {
        "targets": args.target,
        "strategies": args.strategy,
        "provision": args.provision,
        "responsible": args.responsible,
        "review_date": args.review_date.isoformat() if args.review_date else None,
    }
    if hasattr(args, "expected_impact"):
        plan["expected_impact"] = args.expected_impact
        plan["pupil_views"] = args.pupil_views
    return plan


# -- each action of the table: its arguments and its request body ------------------------------

#: action name -> (add its arguments, build its body from them)
ActionCli = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], Body]]


def _stage_decision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trigger", type=_enum(Trigger), action="append", default=[])
    p.add_argument("--evidence", default="")
    _add_plan(p, required=True)


def _stage_body(a: argparse.Namespace) -> Body:
    return {"triggers": a.trigger, "evidence": a.evidence, "iep": _plan(a, required=True)}


def _review(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outcome", type=_enum(ReviewOutcome), required=True)
    p.add_argument(
        "--progress", type=_progress, action="append", default=[], help="'INDEX:progress[:met]'"
    )
    p.add_argument("--notes", default="")
    p.add_argument("--trigger", type=_enum(Trigger), action="append", default=[])
    p.add_argument("--close-reason", type=_enum(CloseReason))
    _add_plan(p, required=False)


def _args(*specs: tuple[str, dict[str, Any]]) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        for flag, kw in specs:
            p.add_argument(flag, **kw)

    return add


def _with_plan(
    add: Callable[[argparse.ArgumentParser], None], required: bool, code_2014: bool = True
) -> Callable[[argparse.ArgumentParser], None]:
    def both(p: argparse.ArgumentParser) -> None:
        add(p)
        _add_plan(p, required, code_2014)

    return both


ACTION_CLI: dict[str, ActionCli] = {
    "open-school-action": (_stage_decision, _stage_body),
    "escalate": (_stage_decision, _stage_body),
    "note": (_args(("--note", {"required": True})), lambda a: {"note": a.note}),
    "review": (
        _review,
        lambda a: {
            "outcome": a.outcome,
            "progress": a.progress,
            "notes": a.notes,
            "new_iep": _plan(a),
            "triggers": a.trigger,
            "close_reason": a.close_reason,
        },
    ),
    "refer": (
        _args(
            ("--kind", {"type": _enum(SpecialistKind), "required": True}),
            ("--specialist", {"required": True, "help": "the specialist's id"}),
            ("--question", {"required": True}),
        ),
        lambda a: {"kind": a.kind, "specialist_id": a.specialist, "question": a.question},
    ),
    "request-statutory-assessment": (
        _args(("--evidence", {"default": ""})),
        lambda a: {"evidence": a.evidence},
    ),
    "step-down": (
        _with_plan(_args(("--reason", {"default": ""})), required=False, code_2014=False),
        lambda a: {"reason": a.reason, "iep": _plan(a)},
    ),
    "close": (
        _args(
            ("--close-reason", {"type": _enum(CloseReason), "required": True}),
            ("--reason", {"default": ""}),
        ),
        lambda a: {"close_reason": a.close_reason, "reason": a.reason},
    ),
    "open-sen-support": (
        _with_plan(
            _args(
                ("--need", {"type": _enum(SenType), "required": True, "help": "primary need"}),
                ("--secondary-need", {"type": _enum(SenType)}),
                ("--evidence", {"default": "", "help": "what the assessment found"}),
            ),
            required=True,
        ),
        lambda a: {
            "primary_need": a.need,
            "secondary_need": a.secondary_need,
            "evidence": a.evidence,
            "plan": _plan(a, required=True),
        },
    ),
    "request-ehc-assessment": (
        _args(
            ("--la", {"required": True, "help": "the local authority's id"}),
            ("--evidence", {"default": ""}),
        ),
        lambda a: {"local_authority_id": a.la, "evidence": a.evidence},
    ),
    "ehc-decide": (
        _args(
            ("--assess", {"choices": ["yes", "no"], "required": True}),
            ("--reason", {"default": ""}),
        ),
        lambda a: {"assess": _yes(a.assess), "reason": a.reason},
    ),
    "ehc-advice": (
        _args(
            ("--adviser", {"required": True, "help": "the adviser's id"}),
            ("--kind", {"required": True, "help": "e.g. educational_psychologist, health"}),
        ),
        lambda a: {"adviser_id": a.adviser, "kind": a.kind},
    ),
    "ehc-advice-received": (
        _args(("--advice", {"required": True, "help": "the advice id the request returned"})),
        lambda a: {},
    ),
    "ehc-draft": (
        _with_plan(
            _args(
                ("--issue", {"choices": ["yes", "no"], "required": True}),
                ("--reason", {"default": ""}),
            ),
            required=False,
        ),
        lambda a: {"issue": _yes(a.issue), "reason": a.reason, "plan": _plan(a)},
    ),
    "ehc-final": (
        _with_plan(_args(("--reason", {"default": ""})), required=False),
        lambda a: {"reason": a.reason, "plan": _plan(a)},
    ),
    "ehc-pause": (
        _args(("--reason", {"type": _enum(PauseReason), "required": True})),
        lambda a: {"reason": a.reason},
    ),
    "ehc-resume": (lambda p: None, lambda a: {}),
}


def _action_path(action: Action, args: argparse.Namespace) -> str:
    assert action.path is not None
    return action.path.replace("{advice_id}", quote(getattr(args, "advice", "") or "", safe=""))


def run_action(args: argparse.Namespace, api: Session) -> int:
    action: Action = args.action
    body = ACTION_CLI[action.name][1](args)
    journey_id = api.journey_id(args)
    result = api.post(f"/journeys/{journey_id}/{_action_path(action, args)}", body)
    output.show(
        args,
        result,
        f"{_who(args)}: {result['summary']} -> {result['stage_label']} ({result['phase']}), "
        f"step {result['step']}" + (f", ref {result['ref']}" if result.get("ref") else ""),
    )
    return 0


def _who(args: argparse.Namespace) -> str:
    return f"pupil {args.pupil}" if getattr(args, "pupil", None) else f"journey {args.journey}"


# -- the other client commands -----------------------------------------------------------------


def run_start(args: argparse.Namespace, api: Session) -> int:
    check_opaque_id(args.pupil, "pupil reference")
    check_opaque_id(args.school, "school id")
    check_opaque_id(args.senco, "senco id")
    for parent in args.parent:
        check_opaque_id(parent, "parent id")
    body: Body = {
        "pupil_id": args.pupil,
        "school_id": args.school,
        "senco_id": args.senco,
        "parent_ids": args.parent,
        "concern": args.concern,
        "date_of_birth": args.date_of_birth.isoformat() if args.date_of_birth else None,
        "year_group": args.year_group,
        "policy": args.policy,
    }
    view = api.post("/journeys", body)
    output.show(args, view, output.view_text(view))
    return 0


def run_show(args: argparse.Namespace, api: Session) -> int:
    if args.journey:
        check_opaque_id(args.journey, "journey id")
        view = api.get(f"/journeys/{args.journey}")
    elif args.pupil:
        check_opaque_id(args.pupil, "pupil reference")
        view = api.get(f"/pupils/{args.pupil}", school=args.school)
    else:
        raise UsageError("show PUPIL (--school S when you act for several), or --journey ID")
    output.show(args, view, output.view_text(view))
    return 0


def run_assessment(args: argparse.Namespace, api: Session) -> int:
    journey_id = api.journey_id(args)
    body = {
        "summary": args.summary,
        "recommendations": args.recommendation,
        "reply_id": args.reply_id,
    }
    done = api.post(f"/journeys/{journey_id}/referrals/{args.referral}/assessment", body)
    output.show(args, done, f"assessment for {args.referral} sent (reply {done['reply_id']})")
    return 0


def run_parent_response(args: argparse.Namespace, api: Session) -> int:
    me = api.get("/me")
    journey_id = me.get("journey_id") or api.journey_id(args)
    consultation = args.consultation or me.get("consultation")
    if not consultation:
        raise Refused("name the consultation (--consultation), as your letter does")
    body = {"reply": args.reply, "comments": args.comments, "reply_id": args.reply_id}
    done = api.post(f"/journeys/{journey_id}/consultations/{consultation}/response", body)
    output.show(args, done, f"reply to {consultation} sent (reply {done['reply_id']})")
    return 0


def run_history(args: argparse.Namespace, api: Session) -> int:
    journey_id = api.journey_id(args)
    if args.html:
        html = api.get(f"/journeys/{journey_id}/history", format="html")
        Path(args.html).write_text(html)
    if args.json:
        output.out(json.dumps(api.get(f"/journeys/{journey_id}/history"), indent=2))
    else:
        output.out(api.get(f"/journeys/{journey_id}/history", format="text"))
    return 0


def run_export(args: argparse.Namespace, api: Session) -> int:
    journey_id = api.journey_id(args)
    exported = api.get(f"/journeys/{journey_id}/export")
    Path(args.output).write_text(json.dumps(exported, indent=2))
    runs = exported.get("runs", [exported]) if isinstance(exported, dict) else exported
    output.show(
        args,
        {"file": args.output, "runs": len(runs)},
        f"wrote {len(runs)} run(s) to {args.output}",
    )
    return 0


def run_audit(args: argparse.Namespace, api: Session) -> int:
    if bool(args.pupil or args.journey) == bool(args.all):
        raise UsageError("audit PUPIL (or --journey ID), or audit --all")
    if args.all:
        rows = api.get("/audit")
    else:
        journey_id = api.journey_id(args)
        record = api.get(f"/journeys/{journey_id}/history")
        rows = [
            {
                "journey_id": journey_id,
                "pupil": record["pupil"],
                "school": record["school"],
                "breaches": record["breaches"],
            }
        ]
    lines = []
    for row in rows:
        lines.append(f"{row['school']}/{row['pupil']}: {len(row['breaches'])} breach(es)")
        for b in row["breaches"]:
            lines.append(f"  BREACH {b['rule']}: {b['detail']}")
            lines += [f"    {ev}" for ev in b.get("evidence", [])]
    output.show_json_or(args.json, rows, "\n".join(lines) or "no journeys")
    return 1 if any(r["breaches"] for r in rows) else 0


def run_list(args: argparse.Namespace, api: Session) -> int:
    if args.school is not None:
        check_opaque_id(args.school, "school id")
    rows = api.get(
        "/journeys",
        stage=args.stage,
        school=args.school,
        overdue=True if args.overdue else None,
        include_closed=args.all or None,
    )
    output.show(args, rows, output.list_text(rows))
    return 0


def run_report(args: argparse.Namespace, api: Session) -> int:
    rows = api.get(f"/reports/{args.name}", school=args.school, days=args.days, stage=args.stage)
    if args.json:
        output.out(json.dumps(rows, indent=2))
    elif args.csv:
        output.out(output.as_csv(rows))
    else:
        output.out(output.table(rows))
    return 0


def run_migrate(args: argparse.Namespace, api: Session) -> int:
    body = {
        "to": args.to,
        "schools": args.school,
        "local_authority_id": args.la,
        "reason": args.reason,
        "dry_run": args.dry_run,
        "concurrency": args.concurrency,
    }
    report = api.post("/migrations", body, timeout=None)  # a school's journeys, one by one
    if args.json:
        output.out(json.dumps(report, indent=2))
    else:
        rows = [{"school": school, **counts} for school, counts in report["by_school"].items()]
        title = "DRY RUN — nothing changed" if report["dry_run"] else "migrated to code_2014"
        lines = [title, output.table(rows) if rows else "(no running journeys)"]
        lines += [f"{move}: {n}" for move, n in report["moves"].items()]
        lines += [
            f"refused {o['pupil_id']}: {o['reason']}"
            for o in report["outcomes"]
            if o["result"] == "refused"
        ]
        output.out("\n".join(lines))
    return 1 if any(o["result"] == "refused" for o in report["outcomes"]) else 0


def run_users(args: argparse.Namespace, api: Session) -> int:
    if args.action == "list":
        rows = api.get("/users")
        output.show_json_or(args.json, rows, output.table(rows))
        return 0
    if args.action == "add":
        if args.role is None or not args.user:
            raise UsageError("users add USER --role ROLE [--school S ...] [--email ADDRESS]")
        body = {
            "user_id": args.user,
            "role": args.role,
            "schools": args.school,
            "email": args.email,
        }
        issued = api.post("/users", body)
    elif not args.user:
        raise UsageError(f"users {args.action} USER")
    elif args.action == "token":
        issued = api.post(f"/users/{quote(args.user, safe='')}/tokens")
    else:
        done = api.post(f"/users/{quote(args.user, safe='')}/revocation")
        output.show(args, done, f"revoked {done['tokens_revoked']} token(s) of {args.user}")
        return 0
    if args.json:
        output.out(json.dumps(issued))
    else:
        output.out(issued["token"])
        sys.stderr.write(f"token for {issued['user_id']}, shown once: give it to its owner now\n")
    return 0


def run_referrals(args: argparse.Namespace, api: Session) -> int:
    rows = [
        {
            "setting": r["school_id"],
            "pupil": r["pupil_id"],
            "referral": r["referral_id"],
            "kind": r["kind"],
            "status": r["status"],
            "requested": r["requested_at"][:10],
            "journey": r["workflow_id"],
        }
        for r in api.get("/referrals")
    ]
    output.show_json_or(args.json, rows, output.table(rows))
    return 0


def run_whoami(args: argparse.Namespace, api: Session) -> int:
    me = api.get("/me")
    output.show(
        args,
        me,
        f"{me['actor_id']} ({me['role']}) at {api.base_url}; settings: "
        + (", ".join(me["schools"]) or "-"),
    )
    return 0


def login(args: argparse.Namespace, settings: Settings) -> int:
    """Check a token against the API and keep it (and the API's address) for this user."""
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
    elif sys.stdin.isatty():
        token = getpass.getpass("senflow token: ").strip()
    else:
        token = sys.stdin.readline().strip()
    base = (args.api_url or api_url(settings)).rstrip("/")
    me = Session(base, token).get("/me")
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = credentials_file()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"api_url": base, "token": token}, f)
    path.chmod(0o600)
    output.out(f"signed in as {me['actor_id']} ({me['role']}) at {base}")
    return 0


def logout(args: argparse.Namespace, settings: Settings) -> int:
    credentials_file().unlink(missing_ok=True)
    output.out("signed out")
    return 0


# -- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="senflow",
        description="Durable SEN journeys. Acting and reading commands call the senflow API as "
        "the signed-in user (`senflow login`, or SENFLOW_TOKEN; SENFLOW_API_URL).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client(name: str, help: str, run: Handler, pupil: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        if pupil:
            p.add_argument(
                "pupil", nargs="?", help="the setting's own pupil reference (never a name)"
            )
            p.add_argument("--school", help="the pupil's setting (when you act for several)")
            p.add_argument("--journey", help="the journey's own id, instead of the pupil")
        p.set_defaults(client=run)
        return p

    def operator(name: str, help: str, run: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=f"operator: {help}", description=help, parents=[common])
        p.set_defaults(operator=run)
        return p

    p = client("start", "raise a concern: start a pupil's journey (monitoring)", run_start, False)
    p.add_argument("pupil", help="the setting's own pupil reference (never a name)")
    p.add_argument("--school", required=True)
    p.add_argument("--senco", required=True, help="the SENCO's staff id")
    p.add_argument("--parent", action="append", required=True, help="parent/carer id (repeat)")
    p.add_argument("--concern", required=True)
    p.add_argument(
        "--date-of-birth",
        type=_date,
        help="only the month and year are kept (for reports) and the compulsory school age date",
    )
    p.add_argument("--year-group", help="e.g. R, Y1 ... Y11")
    p.add_argument(
        "--policy",
        choices=["code_2001", "code_2014"],
        help="the Code this journey follows (default: the service's SENFLOW_POLICY)",
    )

    for action in ACTIONS:
        if action.name not in ACTION_CLI:
            continue  # one journey's move to the 2014 Code is `migrate`'s work
        p = client(action.name, action.help, run_action)
        ACTION_CLI[action.name][0](p)
        p.set_defaults(action=action)

    p = client("assessment-completed", "specialist: report a completed assessment", run_assessment)
    p.add_argument("--referral", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--recommendation", action="append", default=[])
    p.add_argument("--reply-id", help="idempotency key (default: a new one)")

    client("referrals", "specialist: the referrals assigned to you", run_referrals, False)

    p = client(
        "parent-response",
        "parent: answer a consultation (sign in with the reply code from the letter)",
        run_parent_response,
    )
    p.add_argument("--consultation", help="default: the one your reply code is for")
    p.add_argument("--reply", type=_enum(ParentReply), required=True)
    p.add_argument("--comments", default="")
    p.add_argument("--reply-id", help="idempotency key (default: a new one)")

    client("show", "where a pupil stands now", run_show)
    p = client("history", "auditors: the journey as Temporal recorded it", run_history)
    p.add_argument("--html", metavar="FILE", help="also write a printable HTML report")
    p = client("export", "auditors: every run's history in Temporal's JSON format", run_export)
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p = client("audit", "auditors: were the rules followed? (exit 1 on any breach)", run_audit)
    p.add_argument("--all", action="store_true", help="every journey of your settings")

    p = client("list", "open journeys of your settings (Temporal visibility)", run_list, False)
    p.add_argument("--stage", type=_enum(Stage))
    p.add_argument("--school")
    p.add_argument("--overdue", action="store_true", help="only overdue reviews")
    p.add_argument("--all", action="store_true", help="include closed journeys")

    p = client("report", "admin reports from the read model", run_report, False)
    p.add_argument("name", choices=[r.value for r in Report], help="which report")
    p.add_argument("--school", help="one school only")
    p.add_argument("--days", type=int, default=14, help="reviews: how far ahead to look")
    p.add_argument("--stage", type=_enum(Stage), help="register: list the pupils at a stage")
    p.add_argument("--csv", action="store_true", help="CSV output")

    p = client(
        "migrate", "admin: move running code_2001 journeys to the 2014 Code", run_migrate, False
    )
    p.add_argument("--to", choices=[CODE_2014], required=True)
    p.add_argument("--school", action="append", default=[], help="only these schools (repeat)")
    p.add_argument("--la", default="", help="the local authority continuing statutory assessments")
    p.add_argument("--reason", default="the SEN Code of Practice 2014 is in force")
    p.add_argument("--dry-run", action="store_true", help="say what would move; change nothing")
    p.add_argument("--concurrency", type=int, default=8, help="journeys moved at once (1-32)")

    p = client("users", "admin: the users of your settings and their tokens", run_users, False)
    p.add_argument("action", choices=["add", "list", "revoke", "token"])
    p.add_argument("user", nargs="?", help="the user's opaque id, recorded as the actor")
    p.add_argument("--role", type=_enum(Role))
    p.add_argument("--school", action="append", default=[], help="a setting they act for")
    p.add_argument("--email", help="where their sign-in links go")

    client("whoami", "who the CLI acts as", run_whoami, False)
    p = sub.add_parser("login", help="keep a token for this user (checked against the API)")
    p.add_argument("--token-file", help="read the token from this file (default: prompt/stdin)")
    p.add_argument("--api-url", help="default SENFLOW_API_URL, else http://127.0.0.1:8000")
    p.set_defaults(local=login)
    p = sub.add_parser("logout", help="forget the kept token")
    p.set_defaults(local=logout)

    # local and operator commands
    p = sub.add_parser("diagram", help="print the journey's state machine as Mermaid")
    p.set_defaults(local=print_diagram)
    p = sub.add_parser(
        "replay", help="replay histories on today's code (exit 1 on any failure)", parents=[common]
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="exports or single-run histories")
    p.add_argument("--all", action="store_true", help="operator: every journey in the namespace")
    p.set_defaults(operator=ops.replay)

    p = operator("contacts", "how to reach parents, specialists and staff", ops.contacts)
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("contact_id", nargs="?", help="the opaque id used in journeys")
    p.add_argument("--contact-role", type=_enum(Role), help="parent, specialist, senco, ...")
    p.add_argument("--name", help="how letters address them")
    p.add_argument("--email")

    p = operator("outbox", "the dev stack's letters (no SMTP server configured)", ops.outbox)
    p.add_argument("--to", help="only letters to this person (their id)")
    p.add_argument("--journey", help="only this journey's letters")
    p.add_argument("--reply-code", action="store_true", help="print the newest letter's code")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a letter")

    p = operator("records", "the read model: migrate, rebuild from Temporal, verify", ops.records)
    p.add_argument("action", choices=["migrate", "rebuild", "verify"])

    p = operator("demo", "drive one scripted pupil of a demo school through the journey", ops.demo)
    p.add_argument("--pupil", default=None, help="default: demo-<random>")
    p.add_argument("--minute", type=float, default=15.0, help="seconds in a policy 'minute'")

    sub.add_parser("worker", help="operator: run the Temporal worker")
    p = sub.add_parser("up", help="operator: dev server, worker and API (what `make run` runs)")
    p.add_argument("--port", type=int, default=7233)
    p.add_argument("--ui-port", type=int, default=8233)
    p.add_argument("--api-port", type=int, default=None, help="default SENFLOW_API_PORT or 8000")
    api_cli.register(sub, common)  # keys, api, users-bootstrap
    archive_cli.register(sub, common)
    try:
        from bench import cli as bench_cli
    except ImportError:  # an image built without the benchmark (Dockerfile)
        return parser
    bench_cli.register(sub)
    return parser


def print_diagram(args: argparse.Namespace, settings: Settings) -> int:
    output.out(diagram())
    return 0


def diagram() -> str:
    from transitions.extensions.diagrams import GraphMachine

    from domain.machine import STATES, TRANSITIONS

    class Model:
        pass

    model = Model()
    GraphMachine(
        model=model,
        states=list(STATES),
        transitions=TRANSITIONS,
        initial=next(iter(STATES)),
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        model_attribute="machine_state",
        title="PupilJourney",
    )
    graph: str = model.get_graph().draw(None)  # type: ignore[attr-defined]
    return graph


# -- entry -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "worker":
        import worker

        worker.main()
        return 0
    configure_logging(settings.log_format)
    if args.command == "up":
        import devserver

        return devserver.up(settings, args.port, args.ui_port, args.api_port)
    if args.command == "bench":
        from bench import cli as bench_cli

        return asyncio.run(bench_cli.run(args, settings))
    try:
        if args.command in api_cli.COMMANDS:
            return api_cli.run(args, parser, settings)
        if args.command == "archive":
            return asyncio.run(archive_cli.run(args, settings))
        if hasattr(args, "local"):
            code: int = args.local(args, settings)
            return code
        if hasattr(args, "operator"):
            code = args.operator(args, settings)
            return code
        token = os.environ.get("SENFLOW_TOKEN") or _stored().get("token")
        code = args.client(args, Session(api_url(settings), token))
        return code
    except UsageError as err:
        sys.stderr.write(f"senflow {args.command}: error: {err}\n")
        return 2
    except (Refused, NotFound, NotSignedIn) as err:
        sys.stderr.write(f"refused: {err}\n")
        return 1
    except Unreachable as err:
        sys.stderr.write(f"{err}\n")
        return 3


def cli() -> None:
    """The console entry point. Leaves with os._exit: the interpreter can abort while tearing
    down Temporal's native runtime (temporalio/sdk-python#300), which would turn a clean exit
    status into 134 or 139 for whoever scripts the CLI."""
    try:
        code = main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
