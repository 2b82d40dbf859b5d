"""Routes for journeys: start, find, read, each action of ``service.actions``, and replies.

Each route parses its body, calls one use case of ``service`` with the caller, and presents
the answer; no rule is decided here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import schemas as s
from api.deps import Caller, JourneyId, RefId, SvcDep
from domain.commands import (
    OPAQUE_ID,
    ActionResult,
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
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    RequestEhcAssessmentInput,
    RequestStatutoryAssessmentInput,
    StepDownInput,
)
from domain.model import JourneyState, Stage, TimelineEntry
from domain.policy import Policy
from service import journeys
from service.actions import BY_NAME, Action
from service.journeys import SIGNED_IN

SettingId = Annotated[str, Query(pattern=OPAQUE_ID.pattern, max_length=64)]


def path(action: Action) -> str:
    assert action.path is not None
    return f"/journeys/{{journey_id}}/{action.path}"


def router() -> APIRouter:
    r = APIRouter()
    a = BY_NAME

    @r.post("/journeys", status_code=201, response_model=s.JourneyView, tags=["journeys"])
    async def start(body: s.StartJourneyRequest, principal: Caller, svc: SvcDep) -> Any:
        code = svc.settings.policy if body.policy in (None, "demo") else body.policy
        minute = timedelta(seconds=body.minute_seconds) if body.policy == "demo" else None
        opened = await journeys.start(
            svc,
            principal,
            school=body.school_id,
            reference=body.pupil_id,
            senco_id=body.senco_id,
            parent_ids=list(body.parent_ids),
            concern=body.concern,
            policy=Policy.named(code, minute),
            date_of_birth=body.date_of_birth,
            year_group=body.year_group,
        )
        return view(opened.journey_id, opened.state)

    @r.get("/journeys", response_model=list[s.JourneyListingView], tags=["journeys"])
    async def list_journeys(
        principal: Caller,
        svc: SvcDep,
        stage: Stage | None = None,
        school: SettingId | None = None,
        overdue: bool | None = None,
        include_closed: bool = False,
    ) -> Any:
        return await journeys.listing(
            svc,
            principal,
            stage=stage,
            school=school,
            overdue=overdue,
            include_closed=include_closed,
        )

    @r.get("/pupils/{reference}", response_model=s.JourneyView, tags=["journeys"])
    async def find(
        reference: RefId, principal: Caller, svc: SvcDep, school: SettingId | None = None
    ) -> Any:
        """A setting's pupil: its open journey (else its latest). Name the setting when you
        act for several."""
        found = await journeys.find(svc, principal, reference, school)
        return view(found.journey_id, found.state)

    @r.get("/pupils/{reference}/journey", response_model=s.JourneyRef, tags=["journeys"])
    async def find_id(
        reference: RefId, principal: Caller, svc: SvcDep, school: SettingId | None = None
    ) -> Any:
        """Only the journey id a setting's pupil reference means for you (a specialist finds
        the pupils referred to them this way)."""
        return s.JourneyRef(journey_id=await journeys.locate(svc, principal, reference, school))

    @r.get("/journeys/{journey_id}", response_model=s.JourneyView, tags=["journeys"])
    async def show(journey_id: JourneyId, principal: Caller, svc: SvcDep) -> Any:
        return view(journey_id, await journeys.show(svc, principal, journey_id))

    @r.get("/journeys/{journey_id}/timeline", response_model=list[TimelineEntry], tags=["journeys"])
    async def timeline(journey_id: JourneyId, principal: Caller, svc: SvcDep) -> Any:
        return await journeys.timeline(svc, principal, journey_id)

    # School and local-authority actions: validated updates; a refusal is a 409 with the
    # journey's reason. The actor recorded is the caller (SIGNED_IN stands for them).

    async def act(svc: SvcDep, principal: Caller, journey_id: str, name: str, cmd: Any) -> Any:
        return await journeys.act(svc, principal, journey_id, a[name], cmd)

    @r.post(path(a["open-school-action"]), response_model=ActionResult, tags=["actions"])
    async def open_school_action(
        journey_id: JourneyId, body: s.StageDecisionRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = OpenSchoolActionInput(
            SIGNED_IN, list(body.triggers), body.evidence, body.iep.to_domain()
        )
        return await act(svc, principal, journey_id, "open-school-action", cmd)

    @r.post(path(a["note"]), response_model=ActionResult, tags=["actions"])
    async def record_note(
        journey_id: JourneyId, body: s.NoteRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        return await act(svc, principal, journey_id, "note", RecordNoteInput(SIGNED_IN, body.note))

    @r.post(path(a["review"]), response_model=ActionResult, tags=["actions"])
    async def record_review(
        journey_id: JourneyId, body: s.ReviewRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = RecordReviewInput(
            SIGNED_IN,
            body.outcome,
            [p.to_domain() for p in body.progress],
            body.notes,
            body.new_iep.to_domain() if body.new_iep else None,
            list(body.triggers),
            body.close_reason,
        )
        return await act(svc, principal, journey_id, "review", cmd)

    @r.post(path(a["escalate"]), response_model=ActionResult, tags=["actions"])
    async def escalate(
        journey_id: JourneyId, body: s.StageDecisionRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = EscalateInput(SIGNED_IN, list(body.triggers), body.evidence, body.iep.to_domain())
        return await act(svc, principal, journey_id, "escalate", cmd)

    @r.post(path(a["refer"]), response_model=ActionResult, tags=["actions"])
    async def refer(
        journey_id: JourneyId, body: s.ReferRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = ReferInput(SIGNED_IN, body.kind, body.specialist_id, body.question)
        return await act(svc, principal, journey_id, "refer", cmd)

    @r.post(path(a["request-statutory-assessment"]), response_model=ActionResult, tags=["actions"])
    async def request_statutory_assessment(
        journey_id: JourneyId, body: s.StatutoryAssessmentRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = RequestStatutoryAssessmentInput(SIGNED_IN, body.evidence)
        return await act(svc, principal, journey_id, "request-statutory-assessment", cmd)

    @r.post(path(a["step-down"]), response_model=ActionResult, tags=["actions"])
    async def step_down(
        journey_id: JourneyId, body: s.StepDownRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = StepDownInput(SIGNED_IN, body.reason, body.iep.to_domain() if body.iep else None)
        return await act(svc, principal, journey_id, "step-down", cmd)

    @r.post(path(a["close"]), response_model=ActionResult, tags=["actions"])
    async def close(
        journey_id: JourneyId, body: s.CloseRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = CloseInput(SIGNED_IN, body.close_reason, body.reason)
        return await act(svc, principal, journey_id, "close", cmd)

    @r.post(path(a["open-sen-support"]), response_model=ActionResult, tags=["2014"])
    async def open_sen_support(
        journey_id: JourneyId, body: s.SenSupportRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = OpenSenSupportInput(
            SIGNED_IN,
            body.primary_need,
            body.evidence,
            body.plan.to_domain(),
            body.secondary_need,
        )
        return await act(svc, principal, journey_id, "open-sen-support", cmd)

    @r.post(path(a["request-ehc-assessment"]), response_model=ActionResult, tags=["2014"])
    async def request_ehc_assessment(
        journey_id: JourneyId, body: s.EhcAssessmentRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = RequestEhcAssessmentInput(SIGNED_IN, body.local_authority_id, body.evidence)
        return await act(svc, principal, journey_id, "request-ehc-assessment", cmd)

    @r.post(path(a["ehc-decide"]), response_model=ActionResult, tags=["2014"])
    async def ehc_decide(
        journey_id: JourneyId, body: s.EhcDecisionRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = EhcDecisionInput(SIGNED_IN, body.assess, body.reason)
        return await act(svc, principal, journey_id, "ehc-decide", cmd)

    @r.post(path(a["ehc-advice"]), response_model=ActionResult, tags=["2014"])
    async def ehc_request_advice(
        journey_id: JourneyId, body: s.EhcAdviceRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = EhcAdviceRequestInput(SIGNED_IN, body.adviser_id, body.kind)
        return await act(svc, principal, journey_id, "ehc-advice", cmd)

    @r.post(path(a["ehc-advice-received"]), response_model=ActionResult, tags=["2014"])
    async def ehc_advice_received(
        journey_id: JourneyId, advice_id: RefId, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = EhcAdviceReceivedInput(SIGNED_IN, advice_id)
        return await act(svc, principal, journey_id, "ehc-advice-received", cmd)

    @r.post(path(a["ehc-draft"]), response_model=ActionResult, tags=["2014"])
    async def ehc_draft(
        journey_id: JourneyId, body: s.EhcDraftRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        plan = body.plan.to_domain() if body.plan else None
        cmd = EhcDraftInput(SIGNED_IN, body.issue, body.reason, plan)
        return await act(svc, principal, journey_id, "ehc-draft", cmd)

    @r.post(path(a["ehc-final"]), response_model=ActionResult, tags=["2014"])
    async def ehc_finalise(
        journey_id: JourneyId, body: s.EhcFinalRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        plan = body.plan.to_domain() if body.plan else None
        cmd = EhcFinalInput(SIGNED_IN, body.reason, plan)
        return await act(svc, principal, journey_id, "ehc-final", cmd)

    @r.post(path(a["ehc-pause"]), response_model=ActionResult, tags=["2014"])
    async def pause_ehc_clock(
        journey_id: JourneyId, body: s.EhcPauseRequest, principal: Caller, svc: SvcDep
    ) -> Any:
        cmd = EhcPauseInput(SIGNED_IN, body.reason)
        return await act(svc, principal, journey_id, "ehc-pause", cmd)

    @r.post(path(a["ehc-resume"]), response_model=ActionResult, tags=["2014"])
    async def resume_ehc_clock(journey_id: JourneyId, principal: Caller, svc: SvcDep) -> Any:
        return await act(svc, principal, journey_id, "ehc-resume", EhcResumeInput(SIGNED_IN))

    # Replies from outside the school: signals, checked first against the journey's own
    # rules so the caller hears a refusal; the journey records anything it cannot apply.

    @r.post(
        "/journeys/{journey_id}/referrals/{referral_id}/assessment",
        status_code=202,
        response_model=s.Accepted,
        tags=["replies"],
    )
    async def complete_assessment(
        journey_id: JourneyId,
        referral_id: RefId,
        body: s.AssessmentRequest,
        principal: Caller,
        svc: SvcDep,
    ) -> Any:
        reply_id = await journeys.complete_assessment(
            svc,
            principal,
            journey_id,
            referral_id,
            body.summary,
            list(body.recommendations),
            reply_id=body.reply_id,
        )
        return s.Accepted(accepted=True, reply_id=reply_id)

    @r.post(
        "/journeys/{journey_id}/consultations/{consultation_id}/response",
        status_code=202,
        response_model=s.Accepted,
        tags=["replies"],
    )
    async def respond(
        journey_id: JourneyId,
        consultation_id: RefId,
        body: s.ConsultationResponseRequest,
        principal: Caller,
        svc: SvcDep,
    ) -> Any:
        reply_id = await journeys.respond(
            svc,
            principal,
            journey_id,
            consultation_id,
            body.reply,
            body.comments,
            body.reply_id,
        )
        return s.Accepted(accepted=True, reply_id=reply_id)

    return r


def view(journey_id: str, state: JourneyState) -> s.JourneyView:
    return s.JourneyView(
        journey_id=journey_id,
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
        reviews=state.reviews,
        consultations=state.consultations,
        referrals=state.referrals,
        step=state.step,
        runs=state.runs,
    )
