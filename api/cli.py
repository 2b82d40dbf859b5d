"""Operator commands beside the API: `senflow users-bootstrap` (the first admin),
`senflow keys new`, `senflow api` (the API and the web pages)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from crypto.codec import new_key_entry
from records.db import make_engine, sessions
from service import users
from settings import Settings

COMMANDS = ("users-bootstrap", "keys", "api")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "users-bootstrap",
        help="operator: the first admin (refused once an admin exists), with their token",
        description="The operator's step: make the first admin and print their token (shown "
        "once). Refused while any active admin exists: admins add users with `senflow users`.",
        parents=[common],
    )
    p.add_argument("user", help="the admin's opaque id, recorded as the actor")
    p.add_argument("--school", action="append", default=[], required=True, help="repeat")
    p.add_argument("--email", help="where their sign-in links go")

    p = sub.add_parser(
        "keys",
        help="operator: payload encryption keys",
        description="payload encryption keys",
        parents=[common],
    )
    p.add_argument("action", choices=["new"])
    p.add_argument("--id", default=None, help="key id (default: k-YYYYMMDDHHMMSS)")

    p = sub.add_parser(
        "api",
        help="operator: run the HTTP API (uvicorn)",
        description="run the HTTP API (uvicorn)",
        parents=[common],
    )
    p.add_argument("--host", default=None, help="default SENFLOW_API_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default SENFLOW_API_PORT or 8000")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from server import create_app  # the API and the web pages, side by side

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
    token = users.bootstrap_admin(factory, args.user, args.school, args.email)
    if args.json:
        _out(json.dumps({"user": args.user, "token": token}))
    else:
        _out(token)
        sys.stderr.write(f"token for admin {args.user}, shown once: give it to them now\n")
    return 0


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
