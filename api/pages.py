"""Two small HTML pages for people without an API client: a parent's reply form (the code
from their letter), and the codec sign-in that lets an auditor read histories in the UI."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from access.policy import Forbidden, Permission, require
from api import schemas as s
from api.codec_server import COOKIE
from api.deps import Unauthenticated, authenticate
from domain.commands import Refused
from domain.model import Role
from service import journeys
from service.context import Services
from service.errors import NotFound

MAX_FORM = 16_384
_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: Arial, sans-serif; max-width: 40em; line-height: 1.4">
<h1 style="font-size: 1.3em">{title}</h1>{body}</body></html>"""
_REPLY_FORM = """<form method="post" action="/reply">
<p><label>Reply code (from your letter)<br><input name="code" size="70" required></label></p>
<p>Your answer:<br>
<label><input type="radio" name="reply" value="agree" required> I agree</label><br>
<label><input type="radio" name="reply" value="disagree"> I disagree</label><br>
<label><input type="radio" name="reply" value="wants_meeting"> I would like to meet</label></p>
<p><label>Anything you want to tell the school (optional)<br>
<textarea name="comments" rows="5" cols="60" maxlength="4000"></textarea></label></p>
<p><button type="submit">Send my reply</button></p></form>"""
_LOGIN_FORM = """<form method="post" action="/codec/login">
<p><label>Your senflow token (auditors)<br><input name="token" size="70" required
type="password"></label></p><p><button type="submit">Sign in</button></p></form>
<p>Then, in the Temporal Web UI, open the codec settings (top right), choose "Use my browser
setting", enter <code>{endpoint}</code>, tick "Include cross-origin credentials" and Apply.</p>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status)


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_FORM:
        return {}
    parsed = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    return {k: v[0] for k, v in parsed.items() if v}


def router(services: Services) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    @r.get("/reply")
    async def reply_form() -> HTMLResponse:
        return page("Reply to the school", _REPLY_FORM)

    @r.post("/reply")
    async def reply_post(request: Request) -> HTMLResponse:
        form = await _form(request)
        try:
            principal = authenticate(services, request, form.get("code", ""))
            if principal.role is not Role.PARENT or principal.consultation is None:
                raise Forbidden("that is not a reply code")
            body = s.ConsultationResponseRequest.model_validate(
                {"reply": form.get("reply", ""), "comments": form.get("comments", "")}
            )
            journey_id, consultation_id = principal.consultation
            await journeys.respond(
                services,
                principal,
                journey_id,
                consultation_id,
                body.reply,
                body.comments,
                body.reply_id,
            )
        except Unauthenticated:
            return page(
                "Reply to the school",
                "<p>That reply code is not valid (or has expired).</p>" + _REPLY_FORM,
                401,
            )
        except ValidationError:
            return page("Reply to the school", "<p>Please choose an answer.</p>" + _REPLY_FORM, 422)
        except (Forbidden, Refused, NotFound) as err:
            return page("Reply to the school", f"<p>{escape(str(err))}</p>", 409)
        return page("Thank you", "<p>Your reply has been sent to the school.</p>")

    @r.get("/codec/login")
    async def login_form() -> HTMLResponse:
        endpoint = f"{services.settings.public_api_url}/codec"
        return page("Read histories in the Temporal Web UI", _LOGIN_FORM.format(endpoint=endpoint))

    @r.post("/codec/login")
    async def login(request: Request) -> HTMLResponse:
        form = await _form(request)
        token = form.get("token", "").strip()
        try:
            principal = authenticate(services, request, token)
            require(principal, Permission.CODEC)
        except (Unauthenticated, Forbidden):
            endpoint = f"{services.settings.public_api_url}/codec"
            return page(
                "Read histories in the Temporal Web UI",
                "<p>Only an auditor's valid token can decode histories.</p>"
                + _LOGIN_FORM.format(endpoint=endpoint),
                401,
            )
        response = page(
            "Signed in",
            f"<p>Signed in as {escape(principal.actor_id)}. The Temporal Web UI can now decode "
            "payloads through this server (with cross-origin credentials included).</p>",
        )
        # Same site as the UI on localhost (ports do not make a site), so Lax is sent with
        # the UI's credentialed fetches; HttpOnly keeps it from page scripts.
        response.set_cookie(
            COOKIE, token, max_age=8 * 3600, httponly=True, samesite="lax", path="/codec"
        )
        return response

    @r.post("/codec/logout")
    async def logout() -> HTMLResponse:
        response = page("Signed out", "<p>Signed out.</p>")
        response.delete_cookie(COOKIE, path="/codec")
        return response

    return r
