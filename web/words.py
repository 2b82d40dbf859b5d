"""What the pages call things: stages, phases, roles and codes in words. Presentation only:
no rule lives here (which action is legal is the journey's to say)."""

from __future__ import annotations

from domain.model import (
    CloseReason,
    PauseReason,
    ReviewOutcome,
    Role,
    SenType,
    SpecialistKind,
    Trigger,
)
from domain.notices import TRIGGER_WORDS

STAGES = {
    "monitoring": "Monitoring (not on the SEN register)",
    "school_action": "School Action",
    "early_years_action": "Early Years Action",
    "school_action_plus": "School Action Plus",
    "early_years_action_plus": "Early Years Action Plus",
    "statutory_assessment": "Statutory assessment requested",
    "sen_support": "SEN Support",
    "ehc_needs_assessment": "EHC needs assessment",
    "ehc_plan": "EHC plan",
    "closed": "Closed",
}
PHASES = {
    "observing": "the class teacher is watching progress and adapting teaching",
    "awaiting_parents": "waiting for the parents' answer to the decision",
    "iep_active": "the plan is in place",
    "review_due": "the plan's review is due",
    "awaiting_assessment": "waiting for a specialist's assessment",
    "ended": "the journey has ended",
}
ROLES = {
    Role.SENCO: "SENCO",
    Role.CLASS_TEACHER: "Class teacher",
    Role.SPECIALIST: "Specialist",
    Role.PARENT: "Parent or carer",
    Role.LOCAL_AUTHORITY: "Local authority",
    Role.ADMIN: "Admin",
    Role.AUDITOR: "Auditor",
    Role.SYSTEM: "senflow",
}
OUTCOMES = {
    ReviewOutcome.CONTINUE: "Continue at this stage with a new plan",
    ReviewOutcome.ESCALATE: "Move up a stage (School Action Plus)",
    ReviewOutcome.STEP_DOWN: "Move down a stage",
    ReviewOutcome.CLOSE: "Close the journey",
}
CLOSE_REASONS = {
    CloseReason.NEEDS_MET: "Needs are met",
    CloseReason.LEFT_SCHOOL: "Pupil left the school",
    CloseReason.MOVED_SCHOOL: "Pupil moved to another school",
}
SPECIALISTS = {
    SpecialistKind.EDUCATIONAL_PSYCHOLOGIST: "Educational psychologist",
    SpecialistKind.SPEECH_AND_LANGUAGE: "Speech and language therapist",
    SpecialistKind.SPECIALIST_TEACHER: "Specialist teacher",
    SpecialistKind.OCCUPATIONAL_THERAPY: "Occupational therapist",
    SpecialistKind.CAMHS: "Child and adolescent mental health services (CAMHS)",
    SpecialistKind.OTHER: "Other",
}
PAUSES = {
    PauseReason.SETTING_CLOSED: "The school or college was closed",
    PauseReason.CHILD_ABSENT: "The child was away from the area for 4 weeks or more",
    PauseReason.EXCEPTIONAL_PERSONAL_CIRCUMSTANCES: "Exceptional personal circumstances",
}
NEEDS = {t: t.value for t in SenType}
REPLIES = {
    "agree": "I agree",
    "disagree": "I disagree",
    "wants_meeting": "I would like to meet",
    "no_response": "No answer by the deadline",
}
REPORTS = {
    "register": "SEN register by stage",
    "reviews": "Reviews overdue and due",
    "referrals": "Waiting times for specialists",
    "stages": "Time spent in each stage",
    "birth-months": "Identification by birth month",
    "statutory-clock": "EHC statutory clock",
}


def trigger(t: Trigger) -> str:
    return f"{t.value}: {TRIGGER_WORDS.get(t, t.value)}"


def stage(value: str | None) -> str:
    return STAGES.get(value or "", value or "")


def phase(value: str | None) -> str:
    return PHASES.get(value or "", value or "")


def role(value: Role | str) -> str:
    try:
        return ROLES[Role(value)]
    except ValueError:
        return str(value)
