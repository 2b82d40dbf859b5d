"""The words of the SEN Code of Practice 2001 as types.

Enum values are stable API: they appear in the CLI, in search attributes and in recorded
histories, so a value is never renamed (add a new member instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from domain.policy import Policy


class Stage(StrEnum):
    MONITORING = "monitoring"
    SCHOOL_ACTION = "school_action"
    SCHOOL_ACTION_PLUS = "school_action_plus"
    STATUTORY_ASSESSMENT = "statutory_assessment"
    CLOSED = "closed"


#: What a stage is called for a child under compulsory school age.
EARLY_YEARS_LABELS: dict[Stage, str] = {
    Stage.SCHOOL_ACTION: "early_years_action",
    Stage.SCHOOL_ACTION_PLUS: "early_years_action_plus",
}

#: Stages that put a pupil on the SEN register (an IEP exists).
REGISTER_STAGES = (Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT)

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
    machine_state: str = "monitoring__observing"
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
    outbox: list[Notice] = field(default_factory=list)
    close_reason: CloseReason | None = None
    closed_at: datetime | None = None
    runs: int = 1
    birth_year: int | None = None
    birth_month: int | None = None
    year_group: str | None = None
    #: The last step written to the read model (the projection catches up to ``step``).
    projected_step: int = 0

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
