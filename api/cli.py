"""`senflow users add|list|revoke|token`, `senflow keys new`, `senflow api`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from access import store
from access.policy import USER_ROLES
from crypto.codec import new_key_entry
from domain.model import Role
from records.db import make_engine, sessions
from settings import Settings

COMMANDS = ("users", "keys", "api")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "users",
        help="API users and their bearer tokens (a token is shown once)",
        description="API users and their bearer tokens. A token is shown once, when issued; "
        "only its scrypt hash is stored. `users add [USER] --role ROLE --school S ...` with ROLE "
        f"one of {', '.join(r.value for r in USER_ROLES)} (parents get a reply code in each "
        "consultation letter instead).",
        parents=[common],
    )
    p.add_argument("action", choices=["add", "list", "revoke", "token"])
    p.add_argument(
        "user",
        nargs="?",
        help="the user's opaque id, recorded as the actor (add: default <role>-<random>)",
    )
    p.add_argument(
        "--school",
        action="append",
        default=[],
        help="a school they act for (repeat; an admin: each school of their local authority)",
    )

    p = sub.add_parser(
        "keys",
        help="payload encryption keys",
        description="payload encryption keys",
        parents=[common],
    )
    p.add_argument("action", choices=["new"])
    p.add_argument("--id", default=None, help="key id (default: k-YYYYMMDDHHMMSS)")

    p = sub.add_parser(
        "api",
        help="run the HTTP API (uvicorn)",
        description="run the HTTP API (uvicorn)",
        parents=[common],
    )
    p.add_argument("--host", default=None, help="default SENFLOW_API_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default SENFLOW_API_PORT or 8000")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    app = create_app(settings)
    # No uvicorn access log: ours logs route templates and opaque ids, never query strings.
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        access_log=False,
        log_level="warning",
    )
    return 0


def run(args: argparse.Namespace, parser: argparse.ArgumentParser, settings: Settings) -> int:
    if args.command == "keys":
        kid = args.id or f"k-{datetime.now(UTC):%Y%m%d%H%M%S}"
        _out(new_key_entry(kid))
        sys.stderr.write(
            "put it first in SENFLOW_KEYS (comma-separated) or the key file; keep the old keys "
            "after it so older histories still decrypt\n"
        )
        return 0
    if args.command == "api":
        return serve(args, settings)
    factory = sessions(make_engine(settings.database_url))
    now = datetime.now(UTC)
    if args.action == "list":
        with factory() as session:
            rows = store.list_users(session)
        _out(json.dumps(rows, default=str, indent=2) if args.json else _table(rows))
        return 0
    if args.action == "add":
        if args.role is None:
            parser.error("users add [USER] --role ROLE [--school S ...]")
        role = Role(args.role)
        args.user = args.user or f"{role.value.replace('_', '-')}-{os.urandom(3).hex()}"
        with factory.begin() as session:
            token = store.add_user(session, args.user, role, args.school, now)
    elif not args.user:
        parser.error(f"users {args.action} USER")
    elif args.action == "token":
        with factory.begin() as session:
            token = store.new_token_for(session, args.user, now)
    else:
        with factory.begin() as session:
            count = store.revoke(session, args.user, now)
        _out(f"revoked {count} token(s) of {args.user}")
        return 0
    if args.json:
        _out(json.dumps({"user": args.user, "token": token}))
    else:
        _out(token)
        sys.stderr.write(f"token for {args.user}, shown once: give it to its owner now\n")
    return 0


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no users)"
    columns = list(rows[0])
    cells = [["-" if r[c] is None else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
