"""The HTTP API: every role's actions as resources, on the CLI's application functions.

Status codes: 401 no or bad token, 403 not yours, 404 unknown pupil, 409 refused by the
journey's rules (the domain's reason), 422 malformed request, 503 Temporal unreachable.
Log lines carry opaque ids, routes and status codes only: never a request body or an error
message (which may quote what a person typed).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

import starter
from access.policy import Forbidden, Permission, Principal, require
from access.store import Authenticator
from api import schemas as s
from api.codec_server import BadPayload
from api.codec_server import router as codec_router
from api.pages import router as pages_router
from audit import compliance
from audit import report as audit_report
from audit import trail as trail_module
from crypto.codec import UnknownKey
from domain.commands import (
    OPAQUE_ID,
    ActionResult,
    AssessmentCompletedInput,
    CloseInput,
    EhcAdviceReceivedInput,
    EhcAdviceRequestInput,
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    EscalateInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestEhcAssessmentInput,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
    StepDownInput,
)
from domain.model import (
    Actor,
    ConsultationStatus,
    JourneyState,
    ReferralStatus,
    Role,
    Stage,
    TimelineEntry,
)
from domain.policy import Policy
from records import models as m
from records import reports
from records.db import make_engine, sessions
from reform import clock, migration
from settings import Settings, connect
from workflows.pupil_journey import workflow_id

log = structlog.get_logger("senflow.api")

PupilId = Annotated[str, Path(pattern=OPAQUE_ID.pattern, max_length=64)]
RefId = Annotated[str, Path(pattern=OPAQUE_ID.pattern, max_length=64)]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.Problem, "description": text}
    for code, text in {
        401: "no valid bearer token",
        403: "not yours to see or change",
        404: "no journey for that pupil",
        409: "refused by the journey's rules (the reason is in detail)",
        503: "Temporal is unreachable",
    }.items()
}


class Report(StrEnum):
    REGISTER = "register"
    REVIEWS = "reviews"
    REFERRALS = "referrals"
    STAGES = "stages"
    BIRTH_MONTHS = "birth-months"
    STATUTORY_CLOCK = "statutory-clock"  # asked of the journeys, not the read model


class Services:
    """What the routes need: settings, a Temporal client (connected on first use, so the API
    starts and answers 503 while Temporal is down), the database and the authenticator."""

    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        factory: sessionmaker[Session] | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._lock = asyncio.Lock()
        self.factory = factory or sessions(make_engine(settings.database_url))
        self.authenticator = Authenticator(self.factory)

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await connect(self.settings)
                    except RuntimeError:
                        raise starter.Unreachable("Temporal is unreachable") from None
        return self._client


def create_app(
    settings: Settings,
    client: Client | None = None,
    factory: sessionmaker[Session] | None = None,
) -> FastAPI:
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
    )
    app.state.services = services
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

    app.include_router(_router(services))
    app.include_router(codec_router(services))
    app.include_router(pages_router(services))
    return app


# -- errors and logging -----------------------------------------------------------------------


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class Unauthenticated(Exception):
    pass


def _install_error_handlers(app: FastAPI) -> None:
    async def refused(_: Request, err: Exception) -> Response:
        return _problem(409, str(err))

    async def not_found(_: Request, err: Exception) -> Response:
        return _problem(404, "no journey for that pupil")

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
    app.add_exception_handler(starter.NotFound, not_found)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(Unauthenticated, unauthenticated)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(BadPayload, bad_payload)
    app.add_exception_handler(UnknownKey, undecryptable)
    for kind in (starter.Unreachable, RPCError, WorkflowQueryFailedError):
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


# -- authentication ---------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="a token from `senflow users add`")


def authenticate(services: Services, request: Request, token: str | None) -> Principal:
    principal = services.authenticator.authenticate(token) if token else None
    if principal is None:
        raise Unauthenticated()
    request.state.principal = principal
    return principal


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    services: Services = request.app.state.services
    return authenticate(services, request, credentials.credentials if credentials else None)


Caller = Annotated[Principal, Depends(caller)]


# -- the routes -------------------------------------------------------------------------------


def _router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=PROBLEMS)

    async def journey(principal: Principal, pupil_id: str, permission: Permission) -> JourneyState:
        """The journey, once the caller may act on it: role first (no Temporal call for a
        role that may never do this), then the pupil's school."""
        require(principal, permission)
        state = await starter.show(await services.client(), pupil_id)
        require(principal, permission, state.school_id)
        return state

    async def act(
        principal: Principal, pupil_id: str, permission: Permission, update: str, cmd: object
    ) -> ActionResult:
        await journey(principal, pupil_id, permission)
        return await starter.act(await services.client(), pupil_id, update, cmd)

    def actor(principal: Principal) -> Actor:
        return Actor(principal.actor_id, principal.role)

    @router.get("/me", response_model=s.Me, tags=["me"])
    async def me(principal: Caller) -> s.Me:
        return s.Me(
            actor_id=principal.actor_id,
            role=principal.role,
            schools=sorted(principal.schools),
            consultation=principal.consultation[1] if principal.consultation else None,
        )

    @router.post("/journeys", status_code=201, response_model=s.JourneyView, tags=["journeys"])
    async def start(body: s.StartJourneyRequest, principal: Caller) -> Any:
        require(principal, Permission.START, body.school_id)
        code = services.settings.policy if body.policy in (None, "demo") else body.policy
        minute = _seconds(body.minute_seconds) if body.policy == "demo" else None
        policy = Policy.named(code, minute)
        cmd = starter.with_date_of_birth(
            StartJourneyInput(
                pupil_id=body.pupil_id,
                school_id=body.school_id,
                senco_id=body.senco_id,
                parent_ids=list(body.parent_ids),
                actor=actor(principal),
                concern=body.concern,
                policy=policy,
                year_group=body.year_group,
            ),
            body.date_of_birth,
            date.today(),
        )
        state = await starter.start_journey(await services.client(), services.settings, cmd)
        return _view(state)

    @router.get("/journeys", response_model=list[s.JourneyListingView], tags=["journeys"])
    async def list_journeys(
        principal: Caller,
        stage: Stage | None = None,
        school: Annotated[str | None, Query(pattern=OPAQUE_ID.pattern, max_length=64)] = None,
        overdue: bool | None = None,
        include_closed: bool = False,
    ) -> Any:
        require(principal, Permission.READ_JOURNEY, school)
        client = await services.client()
        rows: list[starter.JourneyListing] = []
        for one in [school] if school else sorted(principal.schools):
            rows += await starter.list_journeys(
                client, stage.value if stage else None, one, overdue, include_closed
            )
        return sorted(rows, key=lambda r: r.pupil_id)

    @router.get("/journeys/{pupil_id}", response_model=s.JourneyView, tags=["journeys"])
    async def show(pupil_id: PupilId, principal: Caller) -> Any:
        return _view(await journey(principal, pupil_id, Permission.READ_JOURNEY))

    @router.get(
        "/journeys/{pupil_id}/timeline", response_model=list[TimelineEntry], tags=["journeys"]
    )
    async def timeline(pupil_id: PupilId, principal: Caller) -> Any:
        await journey(principal, pupil_id, Permission.READ_JOURNEY)
        return await starter.history(await services.client(), pupil_id)

    # School actions: validated updates. A refused one is a 409 with the journey's reason.

    @router.post(
        "/journeys/{pupil_id}/school-action", response_model=ActionResult, tags=["actions"]
    )
    async def open_school_action(
        pupil_id: PupilId, body: s.StageDecisionRequest, principal: Caller
    ) -> Any:
        cmd = OpenSchoolActionInput(
            actor(principal), list(body.triggers), body.evidence, body.iep.to_domain()
        )
        return await act(principal, pupil_id, Permission.ACT_SENCO, "open_school_action", cmd)

    @router.post("/journeys/{pupil_id}/notes", response_model=ActionResult, tags=["actions"])
    async def record_note(pupil_id: PupilId, body: s.NoteRequest, principal: Caller) -> Any:
        cmd = RecordNoteInput(actor(principal), body.note)
        return await act(principal, pupil_id, Permission.ACT_STAFF, "record_note", cmd)

    @router.post("/journeys/{pupil_id}/reviews", response_model=ActionResult, tags=["actions"])
    async def record_review(pupil_id: PupilId, body: s.ReviewRequest, principal: Caller) -> Any:
        cmd = RecordReviewInput(
            actor(principal),
            body.outcome,
            [p.to_domain() for p in body.progress],
            body.notes,
            body.new_iep.to_domain() if body.new_iep else None,
            list(body.triggers),
            body.close_reason,
        )
        return await act(principal, pupil_id, Permission.ACT_STAFF, "record_review", cmd)

    @router.post("/journeys/{pupil_id}/escalation", response_model=ActionResult, tags=["actions"])
    async def escalate(pupil_id: PupilId, body: s.StageDecisionRequest, principal: Caller) -> Any:
        cmd = EscalateInput(
            actor(principal), list(body.triggers), body.evidence, body.iep.to_domain()
        )
        return await act(principal, pupil_id, Permission.ACT_SENCO, "escalate", cmd)

    @router.post("/journeys/{pupil_id}/referrals", response_model=ActionResult, tags=["actions"])
    async def refer(pupil_id: PupilId, body: s.ReferRequest, principal: Caller) -> Any:
        cmd = ReferInput(actor(principal), body.kind, body.specialist_id, body.question)
        return await act(principal, pupil_id, Permission.ACT_SENCO, "refer", cmd)

    @router.post(
        "/journeys/{pupil_id}/statutory-assessment-request",
        response_model=ActionResult,
        tags=["actions"],
    )
    async def request_statutory_assessment(
        pupil_id: PupilId, body: s.StatutoryAssessmentRequest, principal: Caller
    ) -> Any:
        cmd = RequestStatutoryAssessmentInput(actor(principal), body.evidence)
        return await act(
            principal, pupil_id, Permission.ACT_SENCO, "request_statutory_assessment", cmd
        )

    @router.post("/journeys/{pupil_id}/step-down", response_model=ActionResult, tags=["actions"])
    async def step_down(pupil_id: PupilId, body: s.StepDownRequest, principal: Caller) -> Any:
        cmd = StepDownInput(
            actor(principal), body.reason, body.iep.to_domain() if body.iep else None
        )
        return await act(principal, pupil_id, Permission.ACT_SENCO, "step_down", cmd)

    @router.post("/journeys/{pupil_id}/closure", response_model=ActionResult, tags=["actions"])
    async def close(pupil_id: PupilId, body: s.CloseRequest, principal: Caller) -> Any:
        cmd = CloseInput(actor(principal), body.close_reason, body.reason)
        return await act(principal, pupil_id, Permission.ACT_SENCO, "close", cmd)

    # Replies from outside the school: signals. Checked here so the caller hears a refusal;
    # the journey checks again and records anything it cannot apply as rejected.

    @router.post(
        "/journeys/{pupil_id}/referrals/{referral_id}/assessment",
        status_code=202,
        response_model=s.Accepted,
        tags=["replies"],
    )
    async def complete_assessment(
        pupil_id: PupilId, referral_id: RefId, body: s.AssessmentRequest, principal: Caller
    ) -> Any:
        require(principal, Permission.COMPLETE_REFERRAL)
        state = await starter.show(await services.client(), pupil_id)
        referral = next((r for r in state.referrals if r.referral_id == referral_id), None)
        if referral is None or referral.specialist_id != principal.actor_id:
            raise Forbidden("that referral is not assigned to you")
        if referral.status is not ReferralStatus.OPEN:
            raise Refused(f"referral {referral_id} is {referral.status.value}")
        reply_id = body.reply_id or f"api-{uuid.uuid4().hex[:16]}"
        cmd = AssessmentCompletedInput(
            reply_id,
            referral_id,
            Actor(principal.actor_id, Role.SPECIALIST),
            body.summary,
            list(body.recommendations),
        )
        await starter.reply(await services.client(), pupil_id, "assessment_completed", cmd)
        return s.Accepted(accepted=True, reply_id=reply_id)

    @router.post(
        "/journeys/{pupil_id}/consultations/{consultation_id}/response",
        status_code=202,
        response_model=s.Accepted,
        tags=["replies"],
    )
    async def respond(
        pupil_id: PupilId,
        consultation_id: RefId,
        body: s.ConsultationResponseRequest,
        principal: Caller,
    ) -> Any:
        return await parent_reply(services, principal, pupil_id, consultation_id, body)

    @router.get("/referrals", response_model=list[s.ReferralView], tags=["replies"])
    async def my_referrals(principal: Caller) -> Any:
        """A specialist's referrals (from the read model)."""
        require(principal, Permission.COMPLETE_REFERRAL)
        return await asyncio.to_thread(_referrals_of, services.factory, principal.actor_id)

    # Auditors: the record as Temporal's histories hold it, and the raw export.

    @router.get("/journeys/{pupil_id}/history", tags=["audit"])
    async def audit_history(pupil_id: PupilId, principal: Caller) -> Any:
        require(principal, Permission.READ_HISTORY)
        trail = await starter._trail(await services.client(), pupil_id)
        require(principal, Permission.READ_HISTORY, trail.state.school_id)
        breaches = compliance.check(trail.state, datetime.now(UTC))
        return json.loads(audit_report.as_json(trail, breaches))

    @router.get("/journeys/{pupil_id}/export", tags=["audit"])
    async def export(pupil_id: PupilId, principal: Caller) -> Any:
        """Every run's history in Temporal's JSON format (payloads as stored: encrypted
        when keys are configured, so the file replays only with the keys)."""
        require(principal, Permission.READ_HISTORY)
        trail = await starter._trail(await services.client(), pupil_id)
        require(principal, Permission.READ_HISTORY, trail.state.school_id)
        return json.loads(trail_module.export_json(trail, workflow_id(pupil_id)))

    # Admins: the read model's reports, for their local authority's schools only.

    @router.get("/reports/{name}", response_model=s.Rows, tags=["reports"])
    async def report(
        name: Report,
        principal: Caller,
        school: Annotated[str | None, Query(pattern=OPAQUE_ID.pattern, max_length=64)] = None,
        days: Annotated[int, Query(ge=0, le=3660)] = 14,
    ) -> Any:
        require(principal, Permission.REPORTS, school)
        schools = [school] if school else sorted(principal.schools)
        if name is Report.STATUTORY_CLOCK:
            client, now = await services.client(), datetime.now(UTC)
            return [r for one in schools for r in await clock.statutory_clock(client, now, one)]
        return await asyncio.to_thread(_report, services.factory, name, schools, days)

    # -- the 2014 Code ------------------------------------------------------------------------

    @router.post("/journeys/{pupil_id}/sen-support", response_model=ActionResult, tags=["2014"])
    async def open_sen_support(
        pupil_id: PupilId, body: s.SenSupportRequest, principal: Caller
    ) -> Any:
        cmd = OpenSenSupportInput(
            actor(principal),
            body.primary_need,
            body.evidence,
            body.plan.to_domain(),
            body.secondary_need,
        )
        return await act(principal, pupil_id, Permission.ACT_SENCO, "open_sen_support", cmd)

    @router.post(
        "/journeys/{pupil_id}/ehc-assessment-request", response_model=ActionResult, tags=["2014"]
    )
    async def request_ehc_assessment(
        pupil_id: PupilId, body: s.EhcAssessmentRequest, principal: Caller
    ) -> Any:
        cmd = RequestEhcAssessmentInput(actor(principal), body.local_authority_id, body.evidence)
        return await act(principal, pupil_id, Permission.ACT_SENCO, "request_ehc_assessment", cmd)

    async def la_step(principal: Principal, pupil_id: str, update: str, cmd: object) -> Any:
        return await act(principal, pupil_id, Permission.ACT_LOCAL_AUTHORITY, update, cmd)

    @router.post("/journeys/{pupil_id}/ehc/decision", response_model=ActionResult, tags=["2014"])
    async def ehc_decide(pupil_id: PupilId, body: s.EhcDecisionRequest, principal: Caller) -> Any:
        cmd = EhcDecisionInput(actor(principal), body.assess, body.reason)
        return await la_step(principal, pupil_id, "ehc_decide", cmd)

    @router.post("/journeys/{pupil_id}/ehc/advice", response_model=ActionResult, tags=["2014"])
    async def ehc_request_advice(
        pupil_id: PupilId, body: s.EhcAdviceRequest, principal: Caller
    ) -> Any:
        cmd = EhcAdviceRequestInput(actor(principal), body.adviser_id, body.kind)
        return await la_step(principal, pupil_id, "ehc_request_advice", cmd)

    @router.post(
        "/journeys/{pupil_id}/ehc/advice/{advice_id}/received",
        response_model=ActionResult,
        tags=["2014"],
    )
    async def ehc_advice_received(pupil_id: PupilId, advice_id: PupilId, principal: Caller) -> Any:
        cmd = EhcAdviceReceivedInput(actor(principal), advice_id)
        return await la_step(principal, pupil_id, "ehc_advice_received", cmd)

    @router.post("/journeys/{pupil_id}/ehc/draft", response_model=ActionResult, tags=["2014"])
    async def ehc_draft(pupil_id: PupilId, body: s.EhcDraftRequest, principal: Caller) -> Any:
        plan = body.plan.to_domain() if body.plan else None
        cmd = EhcDraftInput(actor(principal), body.issue, body.reason, plan)
        return await la_step(principal, pupil_id, "ehc_draft", cmd)

    @router.post("/journeys/{pupil_id}/ehc/final", response_model=ActionResult, tags=["2014"])
    async def ehc_finalise(pupil_id: PupilId, body: s.EhcFinalRequest, principal: Caller) -> Any:
        plan = body.plan.to_domain() if body.plan else None
        cmd = EhcFinalInput(actor(principal), body.reason, plan)
        return await la_step(principal, pupil_id, "ehc_finalise", cmd)

    @router.post("/journeys/{pupil_id}/ehc/pause", response_model=ActionResult, tags=["2014"])
    async def pause_ehc_clock(pupil_id: PupilId, body: s.EhcPauseRequest, principal: Caller) -> Any:
        cmd = EhcPauseInput(actor(principal), body.reason)
        return await la_step(principal, pupil_id, "pause_ehc_clock", cmd)

    @router.post("/journeys/{pupil_id}/ehc/resume", response_model=ActionResult, tags=["2014"])
    async def resume_ehc_clock(pupil_id: PupilId, principal: Caller) -> Any:
        return await la_step(
            principal, pupil_id, "resume_ehc_clock", EhcResumeInput(actor(principal))
        )

    @router.post("/migrations", response_model=s.MigrationResult, tags=["2014"])
    async def migrate(body: s.MigrationRequest, principal: Caller) -> Any:
        """Move the admin's schools' running code_2001 journeys to the 2014 Code."""
        require(principal, Permission.MIGRATE)
        for school in body.schools:
            require(principal, Permission.MIGRATE, school)
        result = await migration.migrate(
            await services.client(),
            actor(principal),
            body.reason,
            schools=body.schools or sorted(principal.schools),
            local_authority_id=body.local_authority_id,
            dry_run=body.dry_run,
        )
        return s.MigrationResult(
            dry_run=result.dry_run,
            totals=result.totals(),
            by_school=result.by_school(),
            moves=result.moves(),
            outcomes=[s.MigrationOutcome(**o.__dict__) for o in result.outcomes],
        )

    return router


async def parent_reply(
    services: Services,
    principal: Principal,
    pupil_id: str,
    consultation_id: str,
    body: s.ConsultationResponseRequest,
) -> s.Accepted:
    """A parent's answer: only with the token from that consultation's letter."""
    require(principal, Permission.RESPOND_CONSULTATION)
    if principal.consultation != (workflow_id(pupil_id), consultation_id):
        raise Forbidden("your reply code is for another consultation")
    state = await starter.show(await services.client(), pupil_id)
    consultation = next(
        (c for c in state.consultations if c.consultation_id == consultation_id), None
    )
    if consultation is None or consultation.status is not ConsultationStatus.OPEN:
        raise Refused(f"consultation {consultation_id} is no longer open")
    if principal.actor_id not in consultation.unanswered():
        raise Refused(f"you have already answered consultation {consultation_id}")
    reply_id = body.reply_id or f"api-{uuid.uuid4().hex[:16]}"
    cmd = ParentRespondedInput(
        reply_id, consultation_id, principal.actor_id, body.reply, body.comments
    )
    await starter.reply(await services.client(), pupil_id, "parent_responded", cmd)
    return s.Accepted(accepted=True, reply_id=reply_id)


def _view(state: JourneyState) -> s.JourneyView:
    return s.JourneyView(
        pupil_id=state.pupil_id,
        school_id=state.school_id,
        senco_id=state.senco_id,
        parent_ids=state.parent_ids,
        stage=state.stage,
        stage_label=state.stage_label,
        phase=state.phase,
        early_years=state.early_years,
        opened_at=state.opened_at,
        closed_at=state.closed_at,
        close_reason=state.close_reason,
        next_review_date=state.next_review_date,
        review_due_at=state.review_due_at,
        overdue=state.overdue,
        iep=state.iep,
        consultations=state.consultations,
        referrals=state.referrals,
        step=state.step,
        runs=state.runs,
    )


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


def _referrals_of(factory: sessionmaker[Session], specialist_id: str) -> list[s.ReferralView]:
    query = (
        select(m.Referral, m.Journey)
        .join(m.Journey, m.Journey.workflow_id == m.Referral.workflow_id)
        .where(m.Referral.specialist_id == specialist_id)
        .order_by(m.Referral.requested_at)
    )
    with factory() as session:
        return [
            s.ReferralView(
                workflow_id=r.workflow_id,
                pupil_id=j.pupil_id,
                school_id=j.school_id,
                referral_id=r.referral_id,
                kind=r.kind,
                status=r.status,
                requested_at=r.requested_at,
                completed_at=r.completed_at,
            )
            for r, j in session.execute(query)
        ]


def _report(
    factory: sessionmaker[Session], name: Report, schools: list[str], days: int
) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    with factory() as session:
        if name is Report.REFERRALS:
            return reports.referral_waits(session, now, schools)
        if name is Report.BIRTH_MONTHS:
            # Per school only: the "ALL" rows would count other authorities' pupils.
            return [
                r for r in reports.identification_by_birth_month(session) if r["school"] in schools
            ]
        for school in schools:
            if name is Report.REGISTER:
                found = reports.register(session, school)
            elif name is Report.REVIEWS:
                found = reports.reviews(session, now, days, school)
            else:
                found = [
                    {"school": school, **r} for r in reports.time_in_stage(session, now, school)
                ]
            rows += found
    return rows
