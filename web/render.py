"""Templates: the design system's Jinja macros (govuk-frontend-jinja) under our pages, with
autoescaping on, and the headers every page carries (a nonce-based CSP, no referrer)."""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    StrictUndefined,
    Undefined,
    select_autoescape,
)
from markupsafe import Markup, escape

from access.policy import Principal
from domain.model import Role
from web import words

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@cache
def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        # Everything typed by a person is escaped wherever it appears, HTML or attribute.
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=Undefined,  # the design system's macros test for options they were not given
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["items_for"] = _items_for
    env.filters["options_for"] = _options_for
    return env


def _items_for(items: tuple[tuple[str, str], ...], chosen: list[str]) -> list[dict[str, Any]]:
    return [{"value": v, "text": t, "checked": v in chosen} for v, t in items]


def _options_for(items: tuple[tuple[str, str], ...], chosen: str) -> list[dict[str, Any]]:
    return [{"value": v, "text": t, "selected": v == chosen} for v, t in items]


NAV: dict[Role, list[tuple[str, str]]] = {
    Role.SENCO: [("/school", "Pupils"), ("/concerns/new", "Raise a concern")],
    Role.CLASS_TEACHER: [("/school", "Pupils"), ("/concerns/new", "Raise a concern")],
    Role.SPECIALIST: [("/referrals", "My referrals")],
    Role.ADMIN: [("/reports", "Reports"), ("/school", "Pupils")],
    Role.AUDITOR: [("/audit", "Histories"), ("/school", "Pupils")],
    Role.LOCAL_AUTHORITY: [("/ehc", "EHC caseload"), ("/reports", "Reports")],
    Role.PARENT: [("/consultation/answer", "Your answer")],
}


def nav(principal: Principal | None, path: str) -> list[dict[str, Any]]:
    if principal is None:
        return [{"href": "/sign-in", "text": "Sign in", "active": path.startswith("/sign-in")}]
    return [
        {"href": href, "text": text, "active": path == href}
        for href, text in NAV.get(principal.role, [])
    ]


def render(
    template: str,
    *,
    path: str,
    principal: Principal | None,
    csrf: str,
    status: int = 200,
    errors: list[tuple[str, str]] | None = None,
    **context: Any,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    errors = errors or []
    html = (
        environment()
        .get_template(template)
        .render(
            nonce=nonce,
            me=principal,
            me_words=(
                f"Signed in as {principal.actor_id} ({words.role(principal.role)})"
                if principal
                else ""
            ),
            csrf=csrf,
            nav=nav(principal, path),
            errors=[{"text": message, "href": f"#f-{name}"} for name, message in errors],
            errors_by={name: message for name, message in reversed(errors)},
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers=page_headers(nonce))


def page_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def link(href: str, text: str) -> Markup:
    return Markup('<a class="govuk-link" href="{}">{}</a>').format(href, text)


def cell(value: object) -> dict[str, Any]:
    if isinstance(value, Markup):
        return {"html": value}
    return {"text": "" if value is None else str(value)}


def esc(value: object) -> Markup:
    return escape(value)


def strict() -> type[Undefined]:
    return StrictUndefined
