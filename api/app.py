"""The HTTP API: every role's actions as resources, over the application layer (``service``).

Status codes: 401 no or bad token, 403 never yours to do (by role), 404 no such journey
(another setting's is answered the same), 409 refused by the
journey's rules (the domain's reason), 422 malformed request, 503 Temporal unreachable.
Log lines carry opaque ids, routes and status codes only: never a request body or an error
message (which may quote what a person typed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from access.policy import Forbidden, Principal
from api import journeys, records
from api.codec_server import BadPayload
from api.codec_server import router as codec_router
from api.deps import PROBLEMS, Unauthenticated
from api.pages import router as pages_router
from crypto.codec import UnknownKey
from domain.commands import Refused
from service.context import Services
from service.errors import NotFound, Unreachable
from settings import Settings

log = structlog.get_logger("senflow.api")


def create_app(
    settings: Settings,
    client: Client | None = None,
    factory: sessionmaker[Session] | None = None,
    docs_assets: str | None = None,
) -> FastAPI:
    """``docs_assets``: where Swagger UI's files are served (the web app serves them from
    npm's swagger-ui-dist), so /docs works offline; None: FastAPI's default (a CDN)."""
    services = Services(settings, client, factory)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="senflow",
        version="1",
        description="Durable SEN journeys: one Temporal workflow per pupil. Every request "
        "needs `Authorization: Bearer <token>` (`senflow users add`; parents: the reply code "
        "in their consultation letter).",
        lifespan=lifespan,
        docs_url=None if docs_assets else "/docs",
    )
    app.state.services = services
    if docs_assets:
        _local_docs(app, docs_assets)
    app.add_middleware(
        CORSMiddleware,  # the Temporal Web UI calls the codec endpoints from its own origin
        allow_origins=list(settings.ui_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    _install_error_handlers(app)
    app.middleware("http")(_access_log)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        return {"ok": True}  # the process serves; Temporal's health is each request's 503

    app.include_router(journeys.router(), prefix="/v1", responses=PROBLEMS)
    app.include_router(records.router(), prefix="/v1", responses=PROBLEMS)
    app.include_router(codec_router(services))
    app.include_router(pages_router(services))
    return app


def _local_docs(app: FastAPI, assets: str) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="senflow API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )


# -- errors and logging -----------------------------------------------------------------------


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    async def refused(_: Request, err: Exception) -> Response:
        return _problem(409, str(err))

    async def not_found(_: Request, err: Exception) -> Response:
        # The service words it the same for another setting's journey (or user) as for a
        # missing one; "no such user" is not "no such journey".
        return _problem(404, str(err))

    async def forbidden(_: Request, err: Exception) -> Response:
        return _problem(403, str(err))

    async def unauthenticated(_: Request, err: Exception) -> Response:
        return _problem(401, "a valid bearer token is needed", {"WWW-Authenticate": "Bearer"})

    async def unavailable(_: Request, err: Exception) -> Response:
        log.warning("temporal_unavailable", error=type(err).__name__)
        return _problem(503, "Temporal is unreachable; try again shortly")

    async def bad_payload(_: Request, err: Exception) -> Response:
        detail = [{"loc": ["body", "payloads"], "msg": str(err), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    async def undecryptable(_: Request, err: Exception) -> Response:
        log.warning("payload_not_decryptable")
        return _problem(503, "a payload is encrypted with a key this server does not hold")

    async def invalid(_: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        # Say where and why, never echo the input back (it may be a pupil's name).
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in err.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(Unauthenticated, unauthenticated)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(BadPayload, bad_payload)
    app.add_exception_handler(UnknownKey, undecryptable)
    for kind in (Unreachable, RPCError, WorkflowQueryFailedError):
        app.add_exception_handler(kind, unavailable)


async def _access_log(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.monotonic()
    response = await call_next(request)
    route = request.scope.get("route")
    principal: Principal | None = getattr(request.state, "principal", None)
    log.info(
        "http_request",
        method=request.method,
        route=getattr(route, "path", "unmatched"),  # the template: /v1/journeys/{pupil_id}
        status=response.status_code,
        actor=principal.actor_id if principal else None,
        role=principal.role.value if principal else None,
        ms=round((time.monotonic() - started) * 1000, 1),
    )
    return response
