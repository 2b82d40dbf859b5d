"""The web pages for each role: server-rendered GOV.UK Design System pages over the application
layer (``service``), the way the HTTP API is one adapter over it and this is another.

Each route reads the form, calls one use case with the signed-in ``Principal`` and renders the
answer. Lists come from the read model; one journey from the application layer; which actions
a page offers is asked of the journey's machine (``service.actions.offered``). A refusal shows
the journey's own reason in an error summary linked to the form's deciding field.
"""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from access import sessions
from access.policy import Forbidden, Permission, Principal
from activities.mail import build_message, deliver
from audit import report as audit_report
from domain.commands import Refused
from domain.model import JourneyState, Notice, ParentReply, Role
from domain.policy import LONDON
from records.caseload import Entry
from service import audit, caseload, journeys
from service.actions import BY_NAME, offered
from service.context import Services
from service.errors import NotFound, Unreachable
from service.reports import Report, report
from web import words
from web.forms import FORMS, Field, FormError, Values
from web.render import STATIC, cell, link, page_headers, render

COOKIE = "senflow_session"
PRE_COOKIE = "senflow_pre"  # signed-out forms' CSRF token (double submit)
LONDON_TZ = ZoneInfo(LONDON)

HOME_OF: dict[Role, str] = {
    Role.SENCO: "/school",
    Role.CLASS_TEACHER: "/school",
    Role.SPECIALIST: "/referrals",
    Role.ADMIN: "/reports",
    Role.AUDITOR: "/audit",
    Role.LOCAL_AUTHORITY: "/ehc",
    Role.PARENT: "/consultation/answer",
}


def install(app: FastAPI, services: Services) -> None:
    """Add the pages and their assets to the HTTP app (the composition root calls this)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router(services))
    app.add_exception_handler(StarletteHTTPException, not_found_page)


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(LONDON_TZ).strftime("%-d %B %Y, %H:%M")


def day(value: Any) -> str:
    return value.strftime("%-d %B %Y") if value is not None else ""


class Page:
    """One request's view of who is signed in, and how to answer it."""

    def __init__(self, request: Request, services: Services) -> None:
        self.request = request
        self.svc = services
        self.current: sessions.Current | None = None
        self.pre: str | None = None

    @property
    def principal(self) -> Principal | None:
        return self.current.principal if self.current else None

    async def load(self) -> Page:
        secret = self.request.cookies.get(COOKIE, "")
        if secret:
            self.current = await asyncio.to_thread(
                sessions.current, self.svc.factory, secret, datetime.now(UTC)
            )
        if self.current is not None:
            self.request.state.principal = self.current.principal  # the access log's actor
        return self

    def csrf(self) -> str:
        if self.current is not None:
            return self.current.csrf
        if self.pre is None:
            self.pre = self.request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
        return self.pre

    def csrf_ok(self, values: Values) -> bool:
        sent = values.get("csrf")
        expected = self.current.csrf if self.current else self.request.cookies.get(PRE_COOKIE, "")
        return bool(sent and expected) and secrets.compare_digest(sent, expected)

    def show(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        response = render(
            template,
            path=self.request.url.path,
            principal=self.principal,
            csrf=self.csrf(),
            status=status,
            **context,
        )
        if self.current is None and self.pre and self.request.cookies.get(PRE_COOKIE) != self.pre:
            response.set_cookie(
                PRE_COOKIE, self.pre, httponly=True, samesite="lax", secure=self.secure
            )
        return response

    def message(self, title: str, *paragraphs: str, status: int = 200, **more: Any) -> Response:
        return self.show("message.html", status, title=title, paragraphs=paragraphs, **more)

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https"

    def to_sign_in(self) -> Response:
        target = self.request.url.path
        return RedirectResponse(f"/sign-in?next={quote(target)}", status_code=303)

    def not_found(self) -> Response:
        return self.message(
            "Page not found",
            "If you typed the web address, check it is correct.",
            "If you followed a link to a pupil, they may not be one of your pupils.",
            status=404,
        )

    def refused_csrf(self) -> Response:
        return self.message(
            "Your form has expired",
            "Go back, reload the page and try again.",
            status=400,
        )


async def _form(request: Request) -> Values:
    return Values.parse(await request.body())


Handler = Callable[[Page], Awaitable[Response]]


def router(svc: Services) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    async def guarded(request: Request, handler: Handler, signed_in: bool = True) -> Response:
        """Load the session, send the signed-out to sign in, and turn the application
        layer's failures into pages: another setting's pupil is the same 404 as a missing one."""
        page = await Page(request, svc).load()
        if signed_in and page.current is None:
            return page.to_sign_in()
        try:
            return await handler(page)
        except NotFound:
            return page.not_found()
        except Forbidden as err:
            return page.message("You cannot do this", str(err), status=403)
        except Unreachable:
            return page.message(
                "Sorry, there is a problem with the service",
                "Try again in a few minutes.",
                status=503,
            )

    # -- signing in ----------------------------------------------------------------------

    @r.get("/")
    async def home(request: Request) -> Response:
        async def go(page: Page) -> Response:
            assert page.principal is not None
            return RedirectResponse(HOME_OF.get(page.principal.role, "/sign-in"), 303)

        return await guarded(request, go)

    @r.get("/sign-in")
    async def sign_in_form(request: Request) -> Response:
        page = await Page(request, svc).load()
        return page.show("sign_in.html", title="Sign in", email="")

    @r.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        page = await Page(request, svc).load()
        values = await _form(request)
        if not page.csrf_ok(values):
            return page.refused_csrf()
        email = values.get("email")
        if not email or "@" not in email:
            return page.show(
                "sign_in.html",
                400,
                title="Sign in",
                email=email,
                errors=[("email", "Enter your email address, like name@school.example.org")],
            )
        link_ = await asyncio.to_thread(sessions.issue_link, svc.factory, email, datetime.now(UTC))
        if link_ is not None:
            await _email_link(svc, link_)
        return RedirectResponse("/sign-in/sent", 303)

    @r.get("/sign-in/sent")
    async def sign_in_sent(request: Request) -> Response:
        page = await Page(request, svc).load()
        minutes = int(sessions.LINK_LIFETIME.total_seconds() // 60)
        return page.message(
            "Check your email",
            "If that address belongs to a senflow user, we have sent it a link to sign in.",
            f"The link works once, for {minutes} minutes.",
        )

    @r.get("/sign-in/link/{secret}")
    async def sign_in_link(request: Request, secret: str) -> Response:
        # A mail scanner may open the link: only the button's POST uses it.
        page = await Page(request, svc).load()
        return page.show(
            "sign_in_link.html", title="Sign in", action=f"/sign-in/link/{quote(secret)}"
        )

    @r.post("/sign-in/link/{secret}")
    async def sign_in_redeem(request: Request, secret: str) -> Response:
        page = await Page(request, svc).load()
        if not page.csrf_ok(await _form(request)):
            return page.refused_csrf()
        opened = await asyncio.to_thread(
            sessions.redeem_link, svc.factory, secret, datetime.now(UTC)
        )
        if opened is None:
            return page.message(
                "That sign-in link has expired",
                "Each link works once, for a few minutes.",
                status=400,
                link=("/sign-in", "Get a new link"),
            )
        response = RedirectResponse("/", 303)
        _set_session(response, opened.secret, page.secure)
        response.delete_cookie(PRE_COOKIE)
        return response

    @r.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        page = await Page(request, svc).load()
        if page.current is not None:
            if not page.csrf_ok(await _form(request)):
                return page.refused_csrf()
            secret = request.cookies.get(COOKIE, "")
            await asyncio.to_thread(sessions.end, svc.factory, secret, datetime.now(UTC))
        response = RedirectResponse("/sign-in/out", 303)
        response.delete_cookie(COOKIE)
        return response

    @r.get("/sign-in/out")
    async def signed_out(request: Request) -> Response:
        page = await Page(request, svc).load()
        return page.message("You have signed out", link=("/sign-in", "Sign in again"))

    @r.get("/accessibility")
    async def accessibility(request: Request) -> Response:
        page = await Page(request, svc).load()
        return page.show("accessibility.html", title="Accessibility statement")

    # -- school staff ----------------------------------------------------------------------

    @r.get("/school")
    async def school(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            q = request.query_params
            try:
                number = max(1, int(q.get("page", "1")))
            except ValueError:
                number = 1
            search = q.get("q", "")[:80]
            found = await caseload.home(svc, p, search=search, page=number)
            today = caseload.today()
            return page.show(
                "school.html",
                title="Pupils" if p.role is not Role.SENCO else "Your SEN register",
                home=found,
                search=search,
                show_senco=p.role is Role.SENCO,
                review_tables=[
                    ("Overdue", [_review_row(e) for e in found.overdue]),
                    ("Due within 14 days", [_review_row(e) for e in found.due_soon]),
                    ("Upcoming", [_review_row(e) for e in found.upcoming]),
                ],
                consultation_rows=[
                    [
                        cell(link(f"/journeys/{c.journey_id}", c.pupil)),
                        cell(c.subject),
                        cell(when(c.deadline)),
                        cell("Yes" if c.reminder_sent else "No"),
                    ]
                    for c in found.consultations
                ],
                referral_rows=[
                    [
                        cell(link(f"/journeys/{w.journey_id}", w.pupil)),
                        cell(f"{words.SPECIALISTS.get(w.kind, w.kind)} ({w.specialist_id})"),  # type: ignore[call-overload]
                        cell(day(w.requested_at.astimezone(LONDON_TZ))),
                        {
                            "text": str((today - w.requested_at.astimezone(LONDON_TZ).date()).days),
                            "format": "numeric",
                        },
                    ]
                    for w in found.referrals
                ],
                count_rows=[
                    [cell(words.stage(s)), cell(code), {"text": str(n), "format": "numeric"}]
                    for s, code, n in found.counts
                ],
                register_rows=[
                    [
                        cell(link(f"/journeys/{e.journey_id}", e.pupil)),
                        cell(words.stage(e.stage_label)),
                        cell(e.census_code),
                        cell(day(e.next_review_date) + (" (overdue)" if e.overdue else "")),
                    ]
                    for e in found.register
                ],
                pagination=_pagination(found.page, found.pages, search),
            )

        return await guarded(request, go)

    @r.get("/concerns/new")
    async def concern_form(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            if not p.may(Permission.START):
                raise Forbidden(f"a {words.role(p.role).lower()} cannot raise a concern here")
            return _concern_page(page, Values(_concern_defaults(p)), [])

        return await guarded(request, go)

    @r.post("/concerns/new")
    async def concern(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None and page.current is not None
            values = await _form(request)
            if not page.csrf_ok(values):
                return page.refused_csrf()
            key = values.get("form_key")
            if not await _claim(svc, key, page.current):
                return RedirectResponse("/school?done=concern", 303)
            school_id = values.get("school") or (sorted(p.schools)[0] if p.schools else "")
            try:
                opened = await journeys.start(
                    svc,
                    p,
                    school=school_id,
                    reference=values.get("reference"),
                    senco_id=values.get("senco_id"),
                    parent_ids=[x for x in values.get("parent_ids").replace(",", " ").split()],
                    concern=values.get("concern"),
                    year_group=values.get("year_group") or None,
                )
            except Refused as err:
                await asyncio.to_thread(sessions.release_form, svc.factory, key)
                return _concern_page(page, values, [("reference", str(err))], key, 409)
            return RedirectResponse(f"/journeys/{opened.journey_id}?done=concern", 303)

        return await guarded(request, go)

    @r.get("/journeys/{journey_id}")
    async def pupil(request: Request, journey_id: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            state = await journeys.show(svc, p, journey_id)
            timeline = await journeys.timeline(svc, p, journey_id)
            done = request.query_params.get("done", "")
            banner = _done_words(done)
            return page.show(
                "pupil.html",
                title=f"Pupil {state.pupil_id}",
                banner=banner,
                back="/school" if p.role is not Role.LOCAL_AUTHORITY else "/ehc",
                **_pupil_context(journey_id, state, timeline, p),
            )

        return await guarded(request, go)

    @r.get("/journeys/{journey_id}/act/{name}")
    async def action_form(request: Request, journey_id: str, name: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            state, form = await _offered_form(svc, p, journey_id, name)
            return _action_page(page, journey_id, state, form.action, Values(), [])

        return await guarded(request, go)

    @r.post("/journeys/{journey_id}/act/{name}")
    async def act(request: Request, journey_id: str, name: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None and page.current is not None
            values = await _form(request)
            if not page.csrf_ok(values):
                return page.refused_csrf()
            state, form = await _offered_form(svc, p, journey_id, name)
            key = values.get("form_key")
            if not await _claim(svc, key, page.current):
                # sent twice (a double click, a resend): the first one acted; show its result
                return RedirectResponse(f"/journeys/{journey_id}?done=again", 303)
            try:
                cmd = form.build(values, state)
                await journeys.act(svc, p, journey_id, BY_NAME[name], cmd)
            except FormError as err:
                await asyncio.to_thread(sessions.release_form, svc.factory, key)
                return _action_page(
                    page, journey_id, state, name, values, [(err.field, err.message)], key, 400
                )
            except Refused as err:
                await asyncio.to_thread(sessions.release_form, svc.factory, key)
                return _action_page(
                    page, journey_id, state, name, values, [(form.decides, str(err))], key, 409
                )
            except BaseException:
                await asyncio.to_thread(sessions.release_form, svc.factory, key)
                raise
            return RedirectResponse(f"/journeys/{journey_id}?done={quote(name)}", 303)

        return await guarded(request, go)

    # -- specialists ---------------------------------------------------------------------

    @r.get("/referrals")
    async def referrals(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            rows = await caseload.referrals_to_me(svc, p)
            today = caseload.today()
            table = [
                [
                    cell(
                        link(
                            f"/journeys/{w.journey_id}/referrals/{w.referral_id}/assessment",
                            f"{w.pupil} ({w.school})",
                        )
                        if w.status == "open"
                        else f"{w.pupil} ({w.school})"
                    ),
                    cell(words.SPECIALISTS.get(w.kind, w.kind)),  # type: ignore[call-overload]
                    cell(day(w.requested_at.astimezone(LONDON_TZ))),
                    {
                        "text": str((today - w.requested_at.astimezone(LONDON_TZ).date()).days),
                        "format": "numeric",
                    },
                    cell("Waiting for your report" if w.status == "open" else w.status),
                ]
                for w in rows
            ]
            return page.show(
                "list.html",
                title="Referrals to you",
                banner=_done_words(request.query_params.get("done", "")),
                paragraphs=["Open a referral to send your assessment back to the school."],
                tables=[
                    {
                        "heading": "",
                        "head": [
                            {"text": "Pupil"},
                            {"text": "Kind"},
                            {"text": "Referred on"},
                            {"text": "Days waited", "format": "numeric"},
                            {"text": "Status"},
                        ],
                        "rows": table,
                        "empty": "No referrals have been made to you.",
                        "links": [],
                    }
                ],
            )

        return await guarded(request, go)

    @r.get("/journeys/{journey_id}/referrals/{referral_id}/assessment")
    async def assessment_form(request: Request, journey_id: str, referral_id: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            return await _assessment_page(svc, page, journey_id, referral_id, Values(), [])

        return await guarded(request, go)

    @r.post("/journeys/{journey_id}/referrals/{referral_id}/assessment")
    async def assessment(request: Request, journey_id: str, referral_id: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            values = await _form(request)
            if not page.csrf_ok(values):
                return page.refused_csrf()
            assert page.current is not None
            key = values.get("form_key")
            if not await _claim(svc, key, page.current):
                return RedirectResponse("/referrals?done=assessment", 303)  # sent twice
            try:
                # the form's key is also the reply's id: the journey applies a reply once
                await journeys.complete_assessment(
                    svc,
                    p,
                    journey_id,
                    referral_id,
                    values.get("summary"),
                    [line.strip() for line in values.get("recommendations").splitlines()],
                    reply_id=values.get("form_key") or None,
                )
            except Refused as err:
                await asyncio.to_thread(sessions.release_form, svc.factory, key)
                return await _assessment_page(
                    svc, page, journey_id, referral_id, values, [("summary", str(err))], 409
                )
            return RedirectResponse("/referrals?done=assessment", 303)

        return await guarded(request, go)

    # -- parents ---------------------------------------------------------------------------

    @r.get("/consultation")
    async def consultation_code(request: Request) -> Response:
        page = await Page(request, svc).load()
        return page.show("consultation_code.html", title="Answer the school")

    @r.post("/consultation")
    async def consultation_exchange(request: Request) -> Response:
        page = await Page(request, svc).load()
        values = await _form(request)
        if not page.csrf_ok(values):
            return page.refused_csrf()
        principal = await asyncio.to_thread(svc.authenticator.authenticate, values.get("code"))
        if principal is None or principal.consultation is None:
            return page.show(
                "consultation_code.html",
                400,
                title="Answer the school",
                errors=[("code", "That code is not right, or it has expired. Check your letter.")],
            )
        opened = await asyncio.to_thread(
            sessions.open_parent_session, svc.factory, principal, datetime.now(UTC), None
        )
        response = RedirectResponse("/consultation/answer", 303)
        _set_session(response, opened.secret, page.secure)
        response.delete_cookie(PRE_COOKIE)
        return response

    @r.get("/consultation/answer")
    async def consultation_answer(request: Request) -> Response:
        async def go(page: Page) -> Response:
            return await _answer_page(svc, page, Values(), [])

        return await guarded(request, go)

    @r.post("/consultation/answer")
    async def consultation_reply(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None and page.current is not None
            if p.consultation is None:
                raise Forbidden("this page is for parents answering a letter")
            values = await _form(request)
            if not page.csrf_ok(values):
                return page.refused_csrf()
            reply = values.get("reply")
            key = values.get("form_key")
            if reply in ("agree", "disagree", "wants_meeting") and not await _claim(
                svc, key, page.current
            ):
                return await _answer_page(svc, page, Values(), [], thanks=reply)  # sent twice
            if reply not in ("agree", "disagree", "wants_meeting"):
                return await _answer_page(
                    svc, page, values, [("reply", "Choose your answer")], status=400
                )
            try:
                await journeys.respond(
                    svc,
                    p,
                    p.consultation[0],
                    p.consultation[1],
                    ParentReply(reply),
                    values.get("comments"),
                    reply_id=values.get("form_key") or None,  # sent twice, applied once
                )
            except Refused as err:
                await asyncio.to_thread(sessions.release_form, svc.factory, key)
                return await _answer_page(svc, page, values, [("reply", str(err))], status=409)
            return await _answer_page(svc, page, Values(), [], thanks=reply)

        return await guarded(request, go)

    # -- admins, auditors, local authorities ---------------------------------------------

    @r.get("/reports")
    async def reports(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            if not p.may(Permission.REPORTS):
                raise Forbidden("only admins and local authorities read the reports")
            rows = [
                [cell(link(f"/reports/{name}", text)), cell(link(f"/reports/{name}.csv", "CSV"))]
                for name, text in words.REPORTS.items()
            ]
            return page.show(
                "list.html",
                title="Reports",
                paragraphs=[f"For {', '.join(sorted(p.schools))}."],
                tables=[
                    {
                        "heading": "",
                        "head": [{"text": "Report"}, {"text": "Download"}],
                        "rows": rows,
                        "links": [],
                    }
                ],
            )

        return await guarded(request, go)

    @r.get("/reports/{name}")
    async def one_report(request: Request, name: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            as_csv = name.endswith(".csv")
            try:
                which = Report(name.removesuffix(".csv"))
            except ValueError:
                raise NotFound("no such report") from None
            rows = await report(svc, p, which)
            if as_csv:
                return _csv(rows, f"{which.value}.csv")
            head = list(rows[0]) if rows else []
            return page.show(
                "list.html",
                title=words.REPORTS[which.value],
                back="/reports",
                paragraphs=[],
                tables=[
                    {
                        "heading": "",
                        "head": [{"text": h.replace("_", " ")} for h in head],
                        "rows": [[cell(r.get(h)) for h in head] for r in rows],
                        "links": [(f"/reports/{which.value}.csv", "Download as CSV", True)],
                        "empty": "Nothing to report.",
                    }
                ],
            )

        return await guarded(request, go)

    @r.get("/audit")
    async def audit_page(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            if not p.may(Permission.READ_HISTORY):
                raise Forbidden("only auditors read histories")
            q = request.query_params
            values = Values({k: [q[k]] for k in ("pupil", "school") if q.get(k)})
            found, errors = None, []
            if values.get("pupil"):
                try:
                    found = await journeys.locate(
                        svc, p, values.get("pupil"), values.get("school") or None
                    )
                except (NotFound, Refused) as err:
                    msg = "No such pupil in your settings" if isinstance(err, NotFound) else err
                    errors = [("pupil", str(msg))]
            return page.show(
                "audit.html",
                400 if errors else 200,
                title="Pupils' histories",
                values=values,
                journey_id=found,
                schools=", ".join(sorted(p.schools)),
                errors=errors,
            )

        return await guarded(request, go)

    @r.get("/audit/journeys/{journey_id}/{what}")
    async def audit_download(request: Request, journey_id: str, what: str) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            if what == "export.json":
                body = await audit.export(svc, p, journey_id)
                return _download(body, "application/json", f"{journey_id}-export.json")
            found = await audit.record(svc, p, journey_id)
            if what == "history.html":
                html = audit_report.as_html(found.trail, found.breaches, datetime.now(UTC))
                return _download(html, "text/html", f"{journey_id}-history.html")
            if what == "history.txt":
                text = audit_report.as_text(found.trail, found.breaches)
                return _download(text, "text/plain", f"{journey_id}-history.txt")
            raise NotFound("no such download")

        return await guarded(request, go)

    @r.get("/ehc")
    async def ehc(request: Request) -> Response:
        async def go(page: Page) -> Response:
            p = page.principal
            assert p is not None
            rows = await caseload.ehc_caseload(svc, p)
            return page.show(
                "list.html",
                title="EHC caseload",
                paragraphs=["Open a pupil to take the authority's next step."],
                tables=[
                    {
                        "heading": "",
                        "head": [{"text": "Pupil"}, {"text": "Setting"}, {"text": "Stage"}],
                        "rows": [
                            [
                                cell(link(f"/journeys/{e.journey_id}", e.pupil)),
                                cell(e.school),
                                cell(f"{words.stage(e.stage)}: {words.phase(e.phase)}"),
                            ]
                            for e in rows
                        ],
                        "empty": "No pupil of your settings is in a statutory process.",
                        "links": [],
                    }
                ],
            )

        return await guarded(request, go)

    return r


async def not_found_page(request: Request, exc: Exception) -> Response:
    """Unknown pages get the design system's 404 page; the API keeps its JSON answer."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and not request.url.path.startswith(API_PATHS):
        return Page(request, request.app.state.services).not_found()
    return await http_exception_handler(request, exc)


API_PATHS = ("/v1/", "/codec", "/openapi", "/docs", "/static/", "/healthz", "/reply")


# -- helpers -----------------------------------------------------------------------------------


def _set_session(response: Response, secret: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
        max_age=int(sessions.LONGEST.total_seconds()),
    )


async def _claim(svc: Services, key: str, current: sessions.Current) -> bool:
    return await asyncio.to_thread(
        sessions.claim_form, svc.factory, key, current.session_hash, datetime.now(UTC)
    )


async def _email_link(svc: Services, link_: sessions.Link) -> None:
    settings = svc.settings
    url = f"{settings.public_web_url}/sign-in/link/{link_.secret}"
    notice = Notice(
        key=f"sign-in-{secrets.token_hex(8)}",
        kind="sign_in",
        recipient_role=Role.SYSTEM,
        recipient_id=link_.user_id,
        subject="Sign in to senflow",
        lines=[f"Sign in: {url}"],
        facts={"link": url, "minutes": int(sessions.LINK_LIFETIME.total_seconds() // 60)},
    )
    now = datetime.now(UTC)
    msg = build_message(
        notice,
        message_id=f"<{notice.key}@{settings.mail_domain}>",
        sender=settings.mail_sender,
        to=link_.email,
        journey="none",
        date=now,
    )
    name = f"sign-in--{link_.user_id}--{now:%Y%m%dT%H%M%S%f}.eml"
    await deliver(msg, settings.smtp, settings.outbox_dir, name)


def _done_words(done: str) -> str:
    if done == "again":
        return "That form was already sent: it was acted on once."
    if done == "concern":
        return "The concern is raised. The pupil is at monitoring."
    if done == "assessment":
        return "Your assessment has been sent to the school."
    form = FORMS.get(done)
    return f"Saved: {form.title.lower()}." if form else ""


def _review_row(e: Entry) -> list[dict[str, Any]]:
    return [
        cell(link(f"/journeys/{e.journey_id}", e.pupil)),
        cell(words.stage(e.stage_label)),
        cell(day(e.next_review_date)),
    ]


def _pagination(number: int, pages: int, search: str) -> dict[str, Any] | None:
    if pages <= 1:
        return None
    q = f"&q={quote(search)}" if search else ""
    found: dict[str, Any] = {
        "items": [
            {"number": n, "href": f"/school?page={n}{q}#register", "current": n == number}
            for n in range(1, pages + 1)
        ]
    }
    if number > 1:
        found["previous"] = {"href": f"/school?page={number - 1}{q}#register"}
    if number < pages:
        found["next"] = {"href": f"/school?page={number + 1}{q}#register"}
    return found


def _concern_defaults(p: Principal) -> dict[str, list[str]]:
    return {"senco_id": [p.actor_id]} if p.role is Role.SENCO else {}


def _concern_fields(p: Principal) -> list[Field]:
    fields = [
        Field("reference", "The pupil's reference", hint="Your school's own reference, not a name"),
        Field("concern", "What concerns you", "textarea", "What you have seen, in plain words"),
        Field("senco_id", "The SENCO's id", hint="For example senco-1"),
        Field("parent_ids", "Parents' or carers' ids", hint="Separate them with commas"),
        Field("year_group", "Year group (optional)", hint="For example Y3 or R"),
    ]
    if len(p.schools) > 1:
        items = tuple((s, s) for s in sorted(p.schools))
        fields.insert(0, Field("school", "Setting", "radios", items=items))
    return fields


def _concern_page(
    page: Page,
    values: Values,
    errors: list[tuple[str, str]],
    key: str | None = None,
    status: int = 200,
) -> Response:
    assert page.principal is not None
    return page.show(
        "concern.html",
        status,
        title="Raise a concern",
        back="/school",
        field_list=_concern_fields(page.principal),
        values=values,
        form_key=key or secrets.token_urlsafe(24),
        errors=errors,
    )


async def _offered_form(
    svc: Services, p: Principal, journey_id: str, name: str
) -> tuple[JourneyState, Any]:
    """The journey and the form, when the action is one this person is offered now."""
    form = FORMS.get(name)
    if form is None:
        raise NotFound("no such action")
    state = await journeys.show(svc, p, journey_id)
    if name not in {a.name for a in offered(p, state, datetime.now(UTC))}:
        raise Forbidden(f"you cannot {form.title.lower()} for this pupil now")
    return state, form


def _action_page(
    page: Page,
    journey_id: str,
    state: JourneyState,
    name: str,
    values: Values,
    errors: list[tuple[str, str]],
    key: str | None = None,
    status: int = 200,
) -> Response:
    form = FORMS[name]
    return page.show(
        "action.html",
        status,
        title=form.title,
        back=f"/journeys/{journey_id}",
        form=form,
        state=state,
        stage_words=words.stage(state.stage_label),
        field_list=form.fields(state),
        values=values,
        form_key=key or secrets.token_urlsafe(24),
        post_to=f"/journeys/{journey_id}/act/{name}",
        errors=errors,
    )


def _pupil_context(
    journey_id: str, state: JourneyState, timeline: list[Any], p: Principal
) -> dict[str, Any]:
    def row(key: str, value: object) -> dict[str, Any]:
        return {"key": {"text": key}, "value": cell(value)}

    standing = f"{words.stage(state.stage_label)}: {words.phase(state.phase.value)}."
    if state.overdue:
        standing += " The review is overdue."
    summary = [
        row("Stage", f"{words.stage(state.stage_label)} (census code {state.census_code})"),
        row("Code of Practice", "2014 Code" if state.policy.is_2014 else "2001 Code"),
        row("Next review", day(state.next_review_date) or "None set"),
        row("Journey opened", when(state.opened_at)),
        row("SENCO", state.senco_id),
        row("Parents or carers", ", ".join(state.parent_ids)),
        row("Journey id", journey_id),
    ]
    iep = state.iep
    targets = [[cell(t.description), cell(t.success_criterion)] for t in iep.targets] if iep else []
    plan_rows = (
        [
            row("Teaching strategies", "; ".join(iep.strategies)),
            row("Provision", "; ".join(iep.provision)),
            row("Responsible", ", ".join(iep.responsible)),
            row("Review date", day(iep.review_date)),
        ]
        if iep
        else []
    )
    consultations = [
        [
            cell(c.subject),
            cell(when(c.deadline)),
            cell(c.status.value),
            cell(
                "; ".join(f"{r.parent_id}: {words.REPLIES.get(r.reply.value)}" for r in c.responses)
                or "None yet"
            ),
        ]
        for c in state.consultations
    ]
    referrals = [
        [
            cell(r.referral_id),
            cell(f"{words.SPECIALISTS.get(r.kind, r.kind.value)} ({r.specialist_id})"),
            cell(r.status.value),
            cell(r.summary or ""),
        ]
        for r in state.referrals
    ]
    rows = [
        [
            cell(when(e.at)),
            cell(f"{e.actor.id} ({words.role(e.actor.role)})"),
            cell(e.summary),
            cell(e.reason + (f" [{', '.join(t.value for t in e.triggers)}]" if e.triggers else "")),
        ]
        for e in reversed(timeline)
    ]
    actions = [
        {"name": a.name, "title": FORMS[a.name].title}
        for a in offered(p, state, datetime.now(UTC))
        if a.name in FORMS
    ]
    return {
        "journey_id": journey_id,
        "state": state,
        "stage_words": words.stage(state.stage_label),
        "standing": standing,
        "summary": summary,
        "targets": targets,
        "plan_rows": plan_rows,
        "consultations": consultations,
        "referrals": referrals,
        "timeline": rows,
        "actions": actions,
    }


async def _assessment_page(
    svc: Services,
    page: Page,
    journey_id: str,
    referral_id: str,
    values: Values,
    errors: list[tuple[str, str]],
    status: int = 200,
) -> Response:
    p = page.principal
    assert p is not None
    mine = [
        w
        for w in await caseload.referrals_to_me(svc, p)
        if w.journey_id == journey_id and w.referral_id == referral_id
    ]
    if not mine:
        raise NotFound("no such referral for you")
    w = mine[0]
    return page.show(
        "action.html",
        status,
        title="Send your assessment",
        back="/referrals",
        form={
            "title": f"Assessment for {w.pupil} ({w.school})",
            "button": "Send the assessment",
            "intro": f"Referral {w.referral_id}, made on {day(w.requested_at)}.",
        },
        state={"pupil_id": w.pupil},
        stage_words=words.SPECIALISTS.get(w.kind, w.kind),  # type: ignore[call-overload]
        field_list=[
            Field("summary", "Summary of your assessment", "textarea"),
            Field("recommendations", "Recommendations", "textarea", "One a line"),
        ],
        values=values,
        form_key=values.get("form_key") or f"assess-{secrets.token_hex(8)}",
        post_to=f"/journeys/{journey_id}/referrals/{referral_id}/assessment",
        errors=errors,
    )


async def _answer_page(
    svc: Services,
    page: Page,
    values: Values,
    errors: list[tuple[str, str]],
    status: int = 200,
    thanks: str | None = None,
) -> Response:
    p = page.principal
    assert p is not None
    if p.role is not Role.PARENT:
        raise Forbidden("this page is for parents answering a letter")
    view = await journeys.consultation(svc, p)
    answered = view.answered.value if view.answered else thanks
    return page.show(
        "consultation_answer.html",
        status,
        title="Your answer to the school",
        view=view,
        thanks=thanks is not None,
        answered_words=words.REPLIES.get(answered or "", ""),
        stage_words=words.stage(view.stage_label),
        deadline=day(view.deadline.astimezone(LONDON_TZ)),  # letters give the day
        field_list=[
            Field(
                "reply",
                "Your answer",
                "radios",
                items=(
                    ("agree", "I agree"),
                    ("disagree", "I disagree"),
                    ("wants_meeting", "I would like to meet to talk about it"),
                ),
            ),
            Field("comments", "Anything you want to tell the school (optional)", "textarea"),
        ],
        values=values,
        form_key=values.get("form_key") or f"reply-{secrets.token_hex(8)}",
        errors=errors,
    )


def _csv(rows: list[dict[str, Any]], filename: str) -> Response:
    out = io.StringIO()
    head = list(rows[0]) if rows else []
    writer = csv.DictWriter(out, fieldnames=head)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_safe(v) for k, v in r.items()})
    return _download(out.getvalue(), "text/csv", filename)


def _csv_safe(value: object) -> object:
    # A cell starting with = + - @ would be a formula in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _download(body: str, media: str, filename: str) -> Response:
    headers = page_headers(secrets.token_urlsafe(8))
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(content=body, media_type=f"{media}; charset=utf-8", headers=headers)
