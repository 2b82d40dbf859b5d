"""What the API accepts and returns. Requests never carry an actor: the actor is the
authenticated caller. Domain dataclasses are reused for responses so the API and the CLI's
--json say the same things."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.commands import (
    MAX_TEXT,
    OPAQUE_ID,
    IepInput,
)
from domain.model import (
    CloseReason,
    Consultation,
    Iep,
    ParentReply,
    PauseReason,
    Phase,
    Referral,
    Review,
    ReviewOutcome,
    Role,
    SenType,
    SpecialistKind,
    Stage,
    Target,
    TargetProgress,
    Trigger,
)

OpaqueId = Annotated[str, Field(pattern=OPAQUE_ID.pattern, max_length=64)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Short = Annotated[str, Field(max_length=500)]
MAX_ITEMS = 50


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartJourneyRequest(Body):
    pupil_id: OpaqueId = Field(description="the school's opaque pupil reference, never a name")
    school_id: OpaqueId
    senco_id: OpaqueId
    parent_ids: Annotated[list[OpaqueId], Field(min_length=1, max_length=10)]
    concern: Text
    date_of_birth: date | None = Field(
        default=None,
        description="only month and year are kept, and the compulsory school age date",
    )
    year_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,4}$")] | None = None
    policy: Literal["code_2001", "code_2014", "demo"] | None = Field(
        default=None,
        description="the Code the journey follows (default: the service's SENFLOW_POLICY); "
        "demo: that Code on a clock of minutes",
    )
    minute_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0, description="with the demo policy: seconds in a policy 'minute'"
    )


class TargetBody(Body):
    description: Short
    success_criterion: Short


class IepBody(Body):
    targets: Annotated[list[TargetBody], Field(max_length=MAX_ITEMS)] = []
    strategies: Annotated[list[Short], Field(max_length=MAX_ITEMS)] = []
    provision: Annotated[list[Short], Field(max_length=MAX_ITEMS)] = []
    responsible: Annotated[list[OpaqueId], Field(max_length=MAX_ITEMS)] = []
    review_date: date | None = None
    #: 2014 plans (SEN Support and EHC plans) need both.
    expected_impact: Text = ""
    pupil_views: Text = ""

    def to_domain(self) -> IepInput:
        return IepInput(
            targets=[Target(t.description, t.success_criterion) for t in self.targets],
            strategies=list(self.strategies),
            provision=list(self.provision),
            responsible=list(self.responsible),
            review_date=self.review_date,
            expected_impact=self.expected_impact,
            pupil_views=self.pupil_views,
        )


class StageDecisionRequest(Body):
    """Open School Action (SA-* triggers) or escalate to Action Plus (AP-* triggers)."""

    triggers: Annotated[list[Trigger], Field(max_length=len(Trigger))] = []
    evidence: Text = ""
    iep: IepBody


class NoteRequest(Body):
    note: Text


class ProgressBody(Body):
    target_index: Annotated[int, Field(ge=0, le=MAX_ITEMS)]
    progress: Short
    met: bool = False

    def to_domain(self) -> TargetProgress:
        return TargetProgress(self.target_index, self.progress, self.met)


class ReviewRequest(Body):
    outcome: ReviewOutcome
    progress: Annotated[list[ProgressBody], Field(max_length=MAX_ITEMS)] = []
    notes: Text = ""
    new_iep: IepBody | None = None
    triggers: Annotated[list[Trigger], Field(max_length=len(Trigger))] = []
    close_reason: CloseReason | None = None


class ReferRequest(Body):
    kind: SpecialistKind
    specialist_id: OpaqueId
    question: Text


class StatutoryAssessmentRequest(Body):
    evidence: Text = ""


class StepDownRequest(Body):
    reason: Text = ""
    iep: IepBody | None = None


class CloseRequest(Body):
    close_reason: CloseReason
    reason: Text = ""


class AssessmentRequest(Body):
    summary: Text
    recommendations: Annotated[list[Short], Field(max_length=MAX_ITEMS)] = []
    reply_id: OpaqueId | None = Field(default=None, description="idempotency key")


class ConsultationResponseRequest(Body):
    reply: Literal[ParentReply.AGREE, ParentReply.DISAGREE, ParentReply.WANTS_MEETING]
    comments: Text = ""
    reply_id: OpaqueId | None = Field(default=None, description="idempotency key")


class Accepted(BaseModel):
    """A reply handed to the journey. It is recorded, or recorded as rejected, in the
    timeline (replies are signals: the journey never fails on one)."""

    accepted: bool
    reply_id: str


class JourneyView(BaseModel):
    journey_id: str = Field(description="the journey's own opaque id: address it by this")
    pupil_id: str = Field(description="the setting's own reference for the pupil")
    school_id: str
    senco_id: str
    parent_ids: list[str]
    stage: Stage
    stage_label: str
    phase: Phase
    early_years: bool
    opened_at: datetime
    closed_at: datetime | None
    close_reason: CloseReason | None
    next_review_date: date | None
    review_due_at: datetime | None
    overdue: bool
    iep: Iep | None
    reviews: list[Review]
    consultations: list[Consultation]
    referrals: list[Referral]
    step: int
    runs: int


class JourneyRef(BaseModel):
    journey_id: str


class JourneyListingView(BaseModel):
    journey_id: str
    pupil: str
    school: str | None
    stage: str | None
    next_review: datetime | None
    overdue: bool | None
    status: str


class ReferralView(BaseModel):
    workflow_id: str
    pupil_id: str
    school_id: str
    referral_id: str
    kind: str
    status: str
    requested_at: datetime
    completed_at: datetime | None


class Me(BaseModel):
    actor_id: str
    role: Role
    schools: list[str]
    consultation: str | None = None
    journey_id: str | None = Field(default=None, description="a parent's code: its journey")


class UserRequest(Body):
    user_id: OpaqueId
    role: Role
    schools: Annotated[list[OpaqueId], Field(max_length=200)] = []
    email: Annotated[str, Field(max_length=254)] | None = None


class Issued(BaseModel):
    """A token, shown this once."""

    user_id: str
    token: str


class Revoked(BaseModel):
    user_id: str
    tokens_revoked: int


class Problem(BaseModel):
    detail: str


class PayloadJson(BaseModel):
    """Temporal's JSON form of a payload: base64 metadata values and data."""

    metadata: dict[str, str] = {}
    data: str = ""


class PayloadsJson(BaseModel):
    payloads: list[PayloadJson]


Rows = list[dict[str, Any]]


# -- the 2014 Code ---------------------------------------------------------------------------


class SenSupportRequest(Body):
    primary_need: SenType
    secondary_need: SenType | None = None
    evidence: Text
    plan: IepBody


class EhcAssessmentRequest(Body):
    local_authority_id: OpaqueId
    evidence: Text


class EhcDecisionRequest(Body):
    assess: bool
    reason: Text


class EhcAdviceRequest(Body):
    adviser_id: OpaqueId
    kind: OpaqueId = Field(description="e.g. educational_psychologist, health, social_care")


class EhcDraftRequest(Body):
    issue: bool
    reason: Text
    plan: IepBody | None = None


class EhcFinalRequest(Body):
    reason: Text
    plan: IepBody | None = Field(default=None, description="omit: the draft becomes final")


class EhcPauseRequest(Body):
    reason: PauseReason


class MigrationRequest(Body):
    to: Literal["code_2014"]
    schools: Annotated[list[OpaqueId], Field(max_length=200)] = Field(
        default=[], description="empty: every school the admin reaches"
    )
    local_authority_id: Annotated[str, Field(pattern=r"^$|" + OPAQUE_ID.pattern, max_length=64)] = (
        ""
    )
    reason: Text = "the SEN Code of Practice 2014 is in force"
    dry_run: bool = False
    concurrency: Annotated[int, Field(ge=1, le=32)] = Field(
        default=8, description="journeys moved at once"
    )


class MigrationOutcome(Body):
    pupil_id: str
    school_id: str
    stage_before: str
    stage_after: str
    result: str
    reason: str = ""


class MigrationResult(Body):
    dry_run: bool
    totals: dict[str, int]
    by_school: dict[str, dict[str, int]]
    moves: dict[str, int]
    outcomes: list[MigrationOutcome]
