"""What people ask a journey to do: one dataclass per action, reply and start.

The same classes are the Temporal update/signal payloads, so field names are stable API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date

from domain.model import (
    Actor,
    CloseReason,
    JourneyState,
    ParentReply,
    PauseReason,
    ReviewOutcome,
    SenType,
    SpecialistKind,
    Stage,
    Target,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy

#: Opaque references only: a school's pupil reference, never a name or UPN.
OPAQUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TEXT = 4000
#: The most items any list in a command may hold (targets, strategies, recommendations ...).
MAX_ITEMS = 50


class Refused(Exception):
    """A school action the rules do not allow. The message is shown to the person who asked."""


def check_opaque_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not OPAQUE_ID.match(value):
        raise Refused(
            f"{what} must be an opaque reference (letters, digits, '.', '_' or '-', "
            "at most 64 characters, never a name)"
        )


def check_input(cmd: object) -> None:
    """Limits every command must keep, whatever the action: text at most ``MAX_TEXT``
    characters, lists at most ``MAX_ITEMS`` long, and the actor an opaque reference (a name
    typed as an actor id would enter history). Says which field is wrong."""
    actor = cmd.get("actor") if isinstance(cmd, dict) else getattr(cmd, "actor", None)
    if isinstance(actor, dict) and isinstance(actor.get("id"), str):
        check_opaque_id(actor["id"], "the actor's id")
    elif is_dataclass(actor) and isinstance(getattr(actor, "id", None), str):
        check_opaque_id(actor.id, "the actor's id")  # type: ignore[union-attr]
    # anything else is not an actor at all: the payload fails to decode, with that reason
    _check_limits(cmd, type(cmd).__name__ if not isinstance(cmd, dict) else "request")


def _check_limits(value: object, where: str) -> None:
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise Refused(f"{where} is {len(value)} characters; the limit is {MAX_TEXT}")
    elif isinstance(value, list | tuple):
        if len(value) > MAX_ITEMS:
            raise Refused(f"{where} has {len(value)} items; the limit is {MAX_ITEMS}")
        for i, item in enumerate(value):
            _check_limits(item, f"{where}[{i}]")
    elif isinstance(value, dict):  # a raw payload from a client without the dataclasses
        for key, item in list(value.items())[: MAX_ITEMS + 1]:
            _check_limits(item, f"{where}.{key}" if _plain(key) else where)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            _check_limits(getattr(value, f.name), f"{where}.{f.name}")


def _plain(key: object) -> bool:
    return isinstance(key, str) and key.isidentifier() and len(key) <= 64


@dataclass
class IepInput:
    targets: list[Target]
    strategies: list[str]
    provision: list[str]
    responsible: list[str]
    review_date: date | None = None  # None: the policy's interval from today
    #: 2014 plans (SEN Support plan, EHC plan): targets are the agreed outcomes, provision the
    #: interventions; these two are required as well.
    expected_impact: str = ""
    pupil_views: str = ""


@dataclass
class StartJourneyInput:
    pupil_id: str
    school_id: str
    senco_id: str
    parent_ids: list[str]
    actor: Actor
    concern: str
    policy: Policy = field(default_factory=Policy)
    #: Computed by the caller from the date of birth, which never enters Temporal.
    compulsory_school_age_date: date | None = None
    #: For the identification-by-birth-month report: month and year only, never the day.
    birth_year: int | None = None
    birth_month: int | None = None
    year_group: str | None = None


@dataclass
class PupilJourneyInput:
    start: StartJourneyInput
    carried: JourneyState | None = None  # set by continue-as-new


@dataclass
class OpenSchoolActionInput:
    actor: Actor
    triggers: list[Trigger]
    evidence: str
    iep: IepInput


@dataclass
class RecordNoteInput:
    actor: Actor
    note: str


@dataclass
class RecordReviewInput:
    actor: Actor
    outcome: ReviewOutcome
    progress: list[TargetProgress]
    notes: str
    new_iep: IepInput | None = None
    triggers: list[Trigger] = field(default_factory=list)
    close_reason: CloseReason | None = None


@dataclass
class EscalateInput:
    actor: Actor
    triggers: list[Trigger]
    evidence: str
    iep: IepInput


@dataclass
class ReferInput:
    actor: Actor
    kind: SpecialistKind
    specialist_id: str
    question: str


@dataclass
class RequestStatutoryAssessmentInput:
    actor: Actor
    evidence: str


@dataclass
class StepDownInput:
    actor: Actor
    reason: str
    iep: IepInput | None = None


@dataclass
class CloseInput:
    actor: Actor
    close_reason: CloseReason
    reason: str


@dataclass
class AssessmentCompletedInput:
    reply_id: str
    referral_id: str
    actor: Actor
    summary: str
    recommendations: list[str] = field(default_factory=list)
    #: The census type of need the assessment found, if the specialist records one.
    need: SenType | None = None


@dataclass
class ParentRespondedInput:
    reply_id: str
    consultation_id: str
    parent_id: str
    reply: ParentReply
    comments: str = ""


# -- the 2014 Code ------------------------------------------------------------------------


@dataclass
class OpenSenSupportInput:
    """Assess (the evidence and the need), plan (the plan), then do and review."""

    actor: Actor
    primary_need: SenType
    evidence: str
    plan: IepInput
    secondary_need: SenType | None = None


@dataclass
class RequestEhcAssessmentInput:
    actor: Actor
    local_authority_id: str
    evidence: str


@dataclass
class EhcDecisionInput:
    """The authority decides whether to assess (within 6 weeks of the request)."""

    actor: Actor
    assess: bool
    reason: str


@dataclass
class EhcAdviceRequestInput:
    """The authority asks a professional for advice (who has 6 weeks to give it)."""

    actor: Actor
    adviser_id: str
    kind: str  # educational_psychologist, health, social_care, ... (a SpecialistKind or other)


@dataclass
class EhcAdviceReceivedInput:
    actor: Actor
    advice_id: str


@dataclass
class EhcDraftInput:
    """A draft plan (parents then have 15 days to comment) or a decision not to issue one."""

    actor: Actor
    issue: bool
    reason: str
    plan: IepInput | None = None


@dataclass
class EhcFinalInput:
    """The final EHC plan; without ``plan`` the draft becomes final unchanged."""

    actor: Actor
    reason: str
    plan: IepInput | None = None


@dataclass
class EhcPauseInput:
    actor: Actor
    reason: PauseReason


@dataclass
class EhcResumeInput:
    actor: Actor


@dataclass
class MigrateInput:
    """Move a running code_2001 journey to the 2014 Code (an admin's decision)."""

    actor: Actor
    reason: str
    to: str = "code_2014"
    #: Needed for a journey in statutory assessment: the authority that continues it.
    local_authority_id: str = ""


@dataclass
class ActionResult:
    step: int
    stage: Stage
    stage_label: str
    phase: str
    summary: str
    ref: str | None = None
