"""The words of the SEN Codes of Practice (2001, and the 2014 reform) as types.

Enum values are stable API: they appear in the CLI, in search attributes and in recorded
histories, so a value is never renamed (add a new member instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from domain.policy import Policy


class Stage(StrEnum):
    MONITORING = "monitoring"
    SCHOOL_ACTION = "school_action"
    SCHOOL_ACTION_PLUS = "school_action_plus"
    STATUTORY_ASSESSMENT = "statutory_assessment"
    CLOSED = "closed"
    # The 2014 Code: one school-based category, then the EHC needs assessment and plan.
    SEN_SUPPORT = "sen_support"
    EHC_NEEDS_ASSESSMENT = "ehc_needs_assessment"
    EHC_PLAN = "ehc_plan"


#: What a stage is called for a child under compulsory school age.
EARLY_YEARS_LABELS: dict[Stage, str] = {
    Stage.SCHOOL_ACTION: "early_years_action",
    Stage.SCHOOL_ACTION_PLUS: "early_years_action_plus",
}

#: Stages that put a pupil on the SEN register (an IEP exists) under the 2001 Code ...
REGISTER_STAGES_2001 = (Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT)
#: ... and under the 2014 Code (a plan exists: SEN Support plan or EHC plan).
REGISTER_STAGES_2014 = (Stage.SEN_SUPPORT, Stage.EHC_NEEDS_ASSESSMENT, Stage.EHC_PLAN)
REGISTER_STAGES = REGISTER_STAGES_2001 + REGISTER_STAGES_2014

#: School census SEN provision codes. 2001: N none, A School Action, P Action Plus, S statement
#: or statutory assessment. 2014: K SEN Support (an EHC needs assessment is made while the
#: pupil is on SEN Support), E an EHC plan.
CENSUS_CODES: dict[Stage, str] = {
    Stage.MONITORING: "N",
    Stage.SCHOOL_ACTION: "A",
    Stage.SCHOOL_ACTION_PLUS: "P",
    Stage.STATUTORY_ASSESSMENT: "S",
    Stage.SEN_SUPPORT: "K",
    Stage.EHC_NEEDS_ASSESSMENT: "K",
    Stage.EHC_PLAN: "E",
    Stage.CLOSED: "N",
}


class AreaOfNeed(StrEnum):
    """The 2014 Code's four broad areas of need."""

    COMMUNICATION_AND_INTERACTION = "communication_and_interaction"
    COGNITION_AND_LEARNING = "cognition_and_learning"
    SOCIAL_EMOTIONAL_MENTAL_HEALTH = "social_emotional_mental_health"
    SENSORY_AND_OR_PHYSICAL = "sensory_and_or_physical"


class SenType(StrEnum):
    """School census SEN type codes (primary and optional secondary need)."""

    SPLD = "SPLD"  # specific learning difficulty
    MLD = "MLD"  # moderate learning difficulty
    SLD = "SLD"  # severe learning difficulty
    PMLD = "PMLD"  # profound and multiple learning difficulty
    SEMH = "SEMH"  # social, emotional and mental health
    SLCN = "SLCN"  # speech, language and communication needs
    HI = "HI"  # hearing impairment
    VI = "VI"  # visual impairment
    MSI = "MSI"  # multi-sensory impairment
    PD = "PD"  # physical disability
    ASD = "ASD"  # autistic spectrum disorder
    OTH = "OTH"  # other difficulty or disability
    NSA = "NSA"  # SEN support but no specialist assessment of type of need

    @property
    def area(self) -> AreaOfNeed | None:
        return SEN_TYPE_AREAS.get(self)


SEN_TYPE_AREAS: dict[SenType, AreaOfNeed] = {
    **dict.fromkeys(
        (SenType.SPLD, SenType.MLD, SenType.SLD, SenType.PMLD), AreaOfNeed.COGNITION_AND_LEARNING
    ),
    SenType.SEMH: AreaOfNeed.SOCIAL_EMOTIONAL_MENTAL_HEALTH,
    SenType.SLCN: AreaOfNeed.COMMUNICATION_AND_INTERACTION,
    SenType.ASD: AreaOfNeed.COMMUNICATION_AND_INTERACTION,
    **dict.fromkeys(
        (SenType.HI, SenType.VI, SenType.MSI, SenType.PD), AreaOfNeed.SENSORY_AND_OR_PHYSICAL
    ),
}

#: The ladder used by step-downs and escalations.
STAGE_ORDER = (
    Stage.MONITORING,
    Stage.SCHOOL_ACTION,
    Stage.SCHOOL_ACTION_PLUS,
    Stage.STATUTORY_ASSESSMENT,
)


class Phase(StrEnum):
    OBSERVING = "observing"  # monitoring: no IEP yet, not on the register
    AWAITING_PARENTS = "awaiting_parents"  # a stage decision waits for the parents' response
    IEP_ACTIVE = "iep_active"
    REVIEW_DUE = "review_due"
    AWAITING_ASSESSMENT = "awaiting_assessment"  # a specialist (or the LA) is assessing
    ENDED = "ended"


class Trigger(StrEnum):
    SA_PROGRESS = "SA-PROGRESS"
    SA_LITERACY_MATHS = "SA-LITERACY-MATHS"
    SA_EMOTIONAL_BEHAVIOURAL = "SA-EMOTIONAL-BEHAVIOURAL"
    SA_SENSORY_PHYSICAL = "SA-SENSORY-PHYSICAL"
    SA_COMMUNICATION = "SA-COMMUNICATION"
    AP_PROGRESS_LONG = "AP-PROGRESS-LONG"
    AP_BELOW_EXPECTED = "AP-BELOW-EXPECTED"
    AP_LITERACY_MATHS = "AP-LITERACY-MATHS"
    AP_EMOTIONAL_BEHAVIOURAL = "AP-EMOTIONAL-BEHAVIOURAL"
    AP_SENSORY_PHYSICAL = "AP-SENSORY-PHYSICAL"
    AP_COMMUNICATION = "AP-COMMUNICATION"

    @property
    def is_school_action(self) -> bool:
        return self.value.startswith("SA-")

    @property
    def is_action_plus(self) -> bool:
        return self.value.startswith("AP-")


class Role(StrEnum):
    CLASS_TEACHER = "class_teacher"
    SENCO = "senco"
    SPECIALIST = "specialist"
    PARENT = "parent"
    ADMIN = "admin"
    AUDITOR = "auditor"
    SYSTEM = "system"  # timers: the journey itself, never a person
    #: A local authority SEN caseworker who runs the EHC needs assessment (2014 Code).
    LOCAL_AUTHORITY = "local_authority"


class SpecialistKind(StrEnum):
    EDUCATIONAL_PSYCHOLOGIST = "educational_psychologist"
    SPEECH_AND_LANGUAGE = "speech_and_language"
    SPECIALIST_TEACHER = "specialist_teacher"
    OCCUPATIONAL_THERAPY = "occupational_therapy"
    CAMHS = "camhs"
    OTHER = "other"


class ReviewOutcome(StrEnum):
    CONTINUE = "continue"
    ESCALATE = "escalate"
    STEP_DOWN = "step_down"
    CLOSE = "close"


class CloseReason(StrEnum):
    NEEDS_MET = "needs_met"
    LEFT_SCHOOL = "left_school"
    MOVED_SCHOOL = "moved_school"


class ParentReply(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    WANTS_MEETING = "wants_meeting"
    NO_RESPONSE = "no_response"  # recorded by the journey at the deadline, never sent by a parent


class ConsultationStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    LAPSED = "lapsed"  # deadline passed with at least one parent not answering
    WITHDRAWN = "withdrawn"  # the journey closed before every parent answered


class ReferralStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"  # the journey closed before the specialist reported


class EntryKind(StrEnum):
    STARTED = "started"
    DECISION = "decision"
    NOTE = "note"
    REVIEW = "review"
    REVIEW_REMINDER = "review_reminder"
    REVIEW_DUE = "review_due"
    REVIEW_OVERDUE = "review_overdue"
    CONSULTATION_OPENED = "consultation_opened"
    PARENT_REPLY = "parent_reply"
    CONSULTATION_REMINDER = "consultation_reminder"
    CONSULTATION_LAPSED = "consultation_lapsed"
    REFERRAL = "referral"
    REFERRAL_CHASED = "referral_chased"
    ASSESSMENT_COMPLETED = "assessment_completed"
    COMPULSORY_SCHOOL_AGE = "compulsory_school_age"
    REJECTED_MESSAGE = "rejected_message"
    # The EHC needs assessment's statutory clock (2014 Code).
    EHC_MILESTONE = "ehc_milestone"
    EHC_DEADLINE_WARNING = "ehc_deadline_warning"
    EHC_DEADLINE_BREACHED = "ehc_deadline_breached"
    EHC_PARENT_COMMENTS_CLOSED = "ehc_parent_comments_closed"
    EHC_CLOCK_PAUSED = "ehc_clock_paused"
    EHC_CLOCK_RESUMED = "ehc_clock_resumed"


class DeadlineKind(StrEnum):
    """The statutory deadlines of an EHC needs assessment (SEND Regulations 2014)."""

    DECISION_TO_ASSESS = "decision_to_assess"  # 6 weeks from the request
    ADVICE = "advice"  # 6 weeks from asking each professional
    DRAFT_OR_NOT_ISSUE = "draft_or_not_issue"  # 16 weeks: draft plan or decision not to issue
    PARENT_COMMENTS = "parent_comments"  # parents' 15 calendar days on the draft
    FINAL_PLAN = "final_plan"  # 20 weeks from the request


class DeadlineStatus(StrEnum):
    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"  # passed with the step not taken (stays breached if taken later)
    LAPSED = "lapsed"  # parents' window closed without comments: nobody's breach
    CANCELLED = "cancelled"  # the assessment ended before the step was needed


class PauseReason(StrEnum):
    """Exceptions the regulations allow; the time is excluded from the clock."""

    SETTING_CLOSED = "setting_closed"  # the school or college closed (4+ weeks around it)
    CHILD_ABSENT = "child_absent"  # the child absent from the area for 4+ weeks
    EXCEPTIONAL_PERSONAL_CIRCUMSTANCES = "exceptional_personal_circumstances"


class EhcOutcome(StrEnum):
    NOT_ASSESSED = "not_assessed"
    NOT_ISSUED = "not_issued"
    PLAN_ISSUED = "plan_issued"
    WITHDRAWN = "withdrawn"  # the journey left the assessment another way


@dataclass(frozen=True)
class Actor:
    id: str
    role: Role


SYSTEM_ACTOR = Actor(id="senflow", role=Role.SYSTEM)


@dataclass
class Target:
    description: str
    success_criterion: str


@dataclass
class TargetProgress:
    target_index: int
    progress: str
    met: bool = False


@dataclass
class Iep:
    """An Individual Education Plan. ``review_date`` is the calendar date people see."""

    iep_id: str
    targets: list[Target]
    strategies: list[str]
    provision: list[str]
    review_date: date
    responsible: list[str]
    agreed_at: datetime
    stage: Stage
    reminder_sent: bool = False
    overdue_notice_sent: bool = False
    #: "iep" (2001), "sen_support_plan" or "ehc_plan" (2014): the same record, reviewed alike.
    kind: str = "iep"
    #: 2014 plans: the expected impact on progress and the pupil's own views.
    expected_impact: str = ""
    pupil_views: str = ""


@dataclass
class Review:
    review_id: str
    iep_id: str
    stage: Stage
    outcome: ReviewOutcome
    progress: list[TargetProgress]
    notes: str
    held_at: datetime
    actor: Actor


@dataclass
class ParentResponse:
    parent_id: str
    reply: ParentReply
    comments: str
    at: datetime


@dataclass
class Consultation:
    consultation_id: str
    subject: str  # what the parents are consulted on: the action that opened it
    step: int
    parent_ids: list[str]
    opened_at: datetime
    deadline: datetime
    reminder_at: datetime
    status: ConsultationStatus = ConsultationStatus.OPEN
    responses: list[ParentResponse] = field(default_factory=list)
    reminder_sent: bool = False
    decides_phase: bool = False  # a stage decision: the phase waits on it

    def unanswered(self) -> list[str]:
        answered = {r.parent_id for r in self.responses}
        return [p for p in self.parent_ids if p not in answered]


@dataclass
class Referral:
    referral_id: str
    kind: SpecialistKind
    specialist_id: str
    question: str
    requested_at: datetime
    requested_by: Actor
    next_chase_at: datetime
    status: ReferralStatus = ReferralStatus.OPEN
    chases: int = 0
    completed_at: datetime | None = None
    summary: str = ""
    recommendations: list[str] = field(default_factory=list)
    #: The type of need the specialist assessed, when they say (used by the 2014 transfer).
    need: SenType | None = None


@dataclass
class EhcDeadline:
    deadline_id: str
    kind: DeadlineKind
    description: str
    created_at: datetime
    due_at: datetime  # the breach is recorded then; moved by each pause it lived through
    due_on: date  # the last day the step is on time, as people see it
    warn_at: datetime
    status: DeadlineStatus = DeadlineStatus.PENDING
    warned: bool = False
    met_at: datetime | None = None
    breached_at: datetime | None = None
    ref: str | None = None  # the advice giver or the parents' consultation


@dataclass
class EhcPause:
    reason: PauseReason
    started_at: datetime
    actor: Actor
    ended_at: datetime | None = None


@dataclass
class EhcAssessment:
    """A request to the local authority for an EHC needs assessment, with its statutory clock."""

    assessment_id: str
    local_authority_id: str
    requested_at: datetime
    requested_by: Actor
    deadlines: list[EhcDeadline] = field(default_factory=list)
    pauses: list[EhcPause] = field(default_factory=list)
    decided_to_assess: bool | None = None
    draft_issued_at: datetime | None = None
    draft_plan: Iep | None = None  # what the draft proposed: the final plan unless amended
    outcome: EhcOutcome | None = None
    ended_at: datetime | None = None
    #: Set when a 2001 statutory assessment moved to the 2014 timeline (the first request).
    transferred_from: datetime | None = None

    @property
    def open(self) -> bool:
        return self.outcome is None

    def paused(self) -> EhcPause | None:
        return next((p for p in self.pauses if p.ended_at is None), None)

    def paused_for(self, now: datetime) -> timedelta:
        return sum(((p.ended_at or now) - p.started_at for p in self.pauses), timedelta())

    def pending(self) -> list[EhcDeadline]:
        return [d for d in self.deadlines if d.status is DeadlineStatus.PENDING]

    def deadline(self, deadline_id: str) -> EhcDeadline | None:
        return next((d for d in self.deadlines if d.deadline_id == deadline_id), None)


@dataclass
class TimelineEntry:
    """One line of the journey's record: who, when, why, on what evidence."""

    step: int
    at: datetime
    kind: EntryKind
    actor: Actor
    summary: str
    reason: str = ""
    triggers: list[Trigger] = field(default_factory=list)
    stage_before: Stage | None = None
    stage_after: Stage | None = None
    ref: str | None = None  # the IEP, review, consultation or referral it concerns


@dataclass
class Decision:
    """A decision someone took, as shown to auditors (derived from the timeline)."""

    step: int
    at: datetime
    actor: Actor
    action: str
    reason: str
    triggers: list[Trigger]
    stage_before: Stage | None
    stage_after: Stage | None


@dataclass
class Notice:
    """A message the journey owes someone. Activities deliver it; ``key`` makes it idempotent."""

    key: str
    kind: str
    recipient_role: Role
    recipient_id: str
    subject: str
    lines: list[str]
    #: What the letter templates say: what changed and what is due when (JSON values).
    facts: dict[str, Any] = field(default_factory=dict)


#: Where every journey starts (``stage__phase``): the memo a start sets.
INITIAL_MACHINE_STATE = "monitoring__observing"


@dataclass
class JourneyState:
    """The one snapshot a journey carries, across continue-as-new, for years."""

    pupil_id: str
    school_id: str
    policy: Policy
    parent_ids: list[str]
    senco_id: str
    opened_at: datetime
    compulsory_school_age_date: date | None = None
    machine_state: str = INITIAL_MACHINE_STATE
    stage: Stage = Stage.MONITORING
    phase: Phase = Phase.OBSERVING
    stage_label: str = Stage.MONITORING.value
    early_years: bool = False
    iep: Iep | None = None
    past_ieps: list[Iep] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    consultations: list[Consultation] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    review_due_at: datetime | None = None
    next_review_date: date | None = None
    overdue: bool = False
    step: int = 0
    processed_reply_ids: list[str] = field(default_factory=list)
    #: reply id -> digest of the reply it carried: the same id with other content is rejected.
    reply_digests: dict[str, str] = field(default_factory=dict)
    outbox: list[Notice] = field(default_factory=list)
    close_reason: CloseReason | None = None
    closed_at: datetime | None = None
    runs: int = 1
    birth_year: int | None = None
    birth_month: int | None = None
    year_group: str | None = None
    #: The last step written to the read model (the projection catches up to ``step``).
    projected_step: int = 0
    #: 2014 Code: census SEN type of the primary (and optional secondary) need.
    primary_need: SenType | None = None
    secondary_need: SenType | None = None
    #: EHC needs assessments, the last one current while ``open``.
    ehc_assessments: list[EhcAssessment] = field(default_factory=list)

    @property
    def census_code(self) -> str:
        return CENSUS_CODES[self.stage]

    def ehc(self) -> EhcAssessment | None:
        """The EHC needs assessment under way, if any."""
        last = self.ehc_assessments[-1] if self.ehc_assessments else None
        return last if last is not None and last.open else None

    def open_consultations(self) -> list[Consultation]:
        return [c for c in self.consultations if c.status is ConsultationStatus.OPEN]

    def open_referrals(self) -> list[Referral]:
        return [r for r in self.referrals if r.status is ReferralStatus.OPEN]

    def decisions(self) -> list[Decision]:
        return [
            Decision(
                step=e.step,
                at=e.at,
                actor=e.actor,
                action=e.summary,
                reason=e.reason,
                triggers=list(e.triggers),
                stage_before=e.stage_before,
                stage_after=e.stage_after,
            )
            for e in self.timeline
            if e.kind is EntryKind.DECISION
        ]
