"""Each action's form: its fields (rendered with the design system's macros) and how the
submitted values become the action's command. Only parsing: the journey decides what is
legal, and its refusal is shown against the form's deciding field."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from domain.commands import (
    CloseInput,
    EhcAdviceReceivedInput,
    EhcAdviceRequestInput,
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    EscalateInput,
    IepInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    RequestEhcAssessmentInput,
    RequestStatutoryAssessmentInput,
    StepDownInput,
)
from domain.model import (
    CloseReason,
    JourneyState,
    PauseReason,
    ReviewOutcome,
    SenType,
    SpecialistKind,
    Target,
    TargetProgress,
    Trigger,
)
from service.journeys import SIGNED_IN
from web import words

#: A form's body is small; anything bigger is refused before parsing.
MAX_FORM = 64 * 1024


class Values:
    """A submitted (or to-be-shown) form: each name's values, as typed."""

    def __init__(self, data: dict[str, list[str]] | None = None) -> None:
        self.data = data or {}

    @classmethod
    def parse(cls, raw: bytes) -> Values:
        if len(raw) > MAX_FORM:
            return cls()
        return cls(parse_qs(raw.decode("utf-8", "replace"), max_num_fields=400))

    def get(self, name: str) -> str:
        found = self.data.get(name)
        return found[0].strip() if found else ""

    def all(self, name: str) -> list[str]:
        return [v for v in self.data.get(name, []) if v.strip()]


class FormError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text, textarea, radios, checkboxes, select, date
    hint: str = ""
    items: tuple[tuple[str, str], ...] = ()
    #: Shown in a fieldset group (e.g. the plan) with this legend before it.
    group: str = ""


@dataclass(frozen=True)
class Form:
    action: str
    title: str
    button: str
    #: Where the journey's refusal is shown: the field its rules turn on.
    decides: str
    fields: Callable[[JourneyState], list[Field]]
    build: Callable[[Values, JourneyState], Any]
    intro: str = ""
    extra: tuple[str, ...] = field(default=())


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ids(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text) if p]


def _enum(kind: type[Any], value: str, name: str, message: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise FormError(name, message) from None


def _date(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormError(name, "Enter the date as year-month-day, for example 2027-03-15") from None


# -- the plan (IEP), shared by several forms -------------------------------------------------

TARGET_ROWS = 2


def plan_fields(legend: str, plan_2014: bool = False) -> list[Field]:
    found = []
    for i in range(1, TARGET_ROWS + 1):
        found += [
            Field(
                f"target_{i}", f"Target {i}", "textarea", "What the pupil will learn", group=legend
            ),
            Field(
                f"criterion_{i}",
                f"How you will know target {i} is met",
                group=legend,
            ),
        ]
    found += [
        Field("strategies", "Teaching strategies", "textarea", "One a line", group=legend),
        Field("provision", "Provision", "textarea", "One a line, with how often", group=legend),
        Field(
            "responsible",
            "Who is responsible",
            hint="Staff ids, separated by commas",
            group=legend,
        ),
        Field(
            "review_date",
            "Review date (optional)",
            "date",
            "Leave blank for the usual interval",
            group=legend,
        ),
    ]
    if plan_2014:
        found += [
            Field("expected_impact", "Expected impact", "textarea", group=legend),
            Field("pupil_views", "The pupil's views", "textarea", group=legend),
        ]
    return found


def plan(values: Values, required: bool) -> IepInput | None:
    targets = [
        Target(values.get(f"target_{i}"), values.get(f"criterion_{i}"))
        for i in range(1, TARGET_ROWS + 1)
        if values.get(f"target_{i}") or values.get(f"criterion_{i}")
    ]
    strategies, provision = _lines(values.get("strategies")), _lines(values.get("provision"))
    responsible = _ids(values.get("responsible"))
    if not required and not (targets or strategies or provision or responsible):
        return None
    return IepInput(
        targets=targets,
        strategies=strategies,
        provision=provision,
        responsible=responsible,
        review_date=_date(values.get("review_date"), "review_date"),
        expected_impact=values.get("expected_impact"),
        pupil_views=values.get("pupil_views"),
    )


def _triggers(values: Values) -> list[Trigger]:
    return [
        _enum(Trigger, v, "triggers", "Choose the evidence from the list")
        for v in values.all("triggers")
    ]


def _trigger_items(prefix: str) -> tuple[tuple[str, str], ...]:
    return tuple((t.value, words.trigger(t)) for t in Trigger if t.value.startswith(prefix))


# -- the forms ---------------------------------------------------------------------------------


def _note_fields(_: JourneyState) -> list[Field]:
    return [Field("note", "Progress note", "textarea", "What you have seen, with dates")]


def _note(values: Values, _: JourneyState) -> RecordNoteInput:
    return RecordNoteInput(SIGNED_IN, values.get("note"))


def _open_sa_fields(_: JourneyState) -> list[Field]:
    return [
        Field("triggers", "Evidence for School Action", "checkboxes", items=_trigger_items("SA")),
        Field("evidence", "What shows it", "textarea", "Assessments, observations, dates"),
        *plan_fields("The Individual Education Plan (IEP)"),
    ]


def _open_sa(values: Values, _: JourneyState) -> OpenSchoolActionInput:
    iep = plan(values, True)
    assert iep is not None
    return OpenSchoolActionInput(SIGNED_IN, _triggers(values), values.get("evidence"), iep)


def _escalate_fields(_: JourneyState) -> list[Field]:
    return [
        Field(
            "triggers", "Evidence for School Action Plus", "checkboxes", items=_trigger_items("AP")
        ),
        Field("evidence", "What shows it", "textarea"),
        *plan_fields("The new Individual Education Plan (IEP)"),
    ]


def _escalate(values: Values, _: JourneyState) -> EscalateInput:
    iep = plan(values, True)
    assert iep is not None
    return EscalateInput(SIGNED_IN, _triggers(values), values.get("evidence"), iep)


def _review_fields(state: JourneyState) -> list[Field]:
    targets = state.iep.targets if state.iep is not None else []
    progress = [
        Field(
            f"progress_{i}",
            f"Progress on target {i + 1}: {t.description}",
            "textarea",
            f"Met when: {t.success_criterion}",
            group="Progress on each target",
        )
        for i, t in enumerate(targets)
    ]
    met = (
        [
            Field(
                "met",
                "Targets met",
                "checkboxes",
                items=tuple((str(i), f"Target {i + 1} is met") for i in range(len(targets))),
                group="Progress on each target",
            )
        ]
        if targets
        else []
    )
    return [
        Field(
            "outcome",
            "Outcome of the review",
            "radios",
            items=tuple((o.value, words.OUTCOMES[o]) for o in ReviewOutcome),
        ),
        *progress,
        *met,
        Field("notes", "Review notes", "textarea", "What was discussed and decided"),
        Field(
            "triggers",
            "Evidence, if moving up a stage",
            "checkboxes",
            items=_trigger_items("AP"),
        ),
        Field(
            "close_reason",
            "Why the journey closes, if closing",
            "select",
            items=(("", "Not closing"), *((c.value, words.CLOSE_REASONS[c]) for c in CloseReason)),
        ),
        *plan_fields("The new plan, if continuing or moving up"),
    ]


def _review(values: Values, state: JourneyState) -> RecordReviewInput:
    if not values.get("outcome"):
        raise FormError("outcome", "Choose the outcome of the review")
    outcome = _enum(ReviewOutcome, values.get("outcome"), "outcome", "Choose an outcome")
    met = set(values.all("met"))
    count = len(state.iep.targets) if state.iep is not None else 0
    progress = [
        TargetProgress(i, values.get(f"progress_{i}"), str(i) in met)
        for i in range(count)
        if values.get(f"progress_{i}") or str(i) in met
    ]
    close = values.get("close_reason")
    return RecordReviewInput(
        SIGNED_IN,
        outcome,
        progress,
        values.get("notes"),
        plan(values, False),
        _triggers(values),
        _enum(CloseReason, close, "close_reason", "Choose a reason") if close else None,
    )


def _refer_fields(_: JourneyState) -> list[Field]:
    return [
        Field(
            "kind",
            "Kind of specialist",
            "radios",
            items=tuple((k.value, words.SPECIALISTS[k]) for k in SpecialistKind),
        ),
        Field("specialist_id", "The specialist's id", hint="For example ep-7"),
        Field("question", "What you are asking", "textarea"),
    ]


def _refer(values: Values, _: JourneyState) -> ReferInput:
    if not values.get("kind"):
        raise FormError("kind", "Choose the kind of specialist")
    kind = _enum(SpecialistKind, values.get("kind"), "kind", "Choose the kind of specialist")
    return ReferInput(SIGNED_IN, kind, values.get("specialist_id"), values.get("question"))


def _evidence_fields(_: JourneyState) -> list[Field]:
    return [Field("evidence", "Evidence", "textarea")]


def _statutory(values: Values, _: JourneyState) -> RequestStatutoryAssessmentInput:
    return RequestStatutoryAssessmentInput(SIGNED_IN, values.get("evidence"))


def _step_down_fields(_: JourneyState) -> list[Field]:
    return [
        Field("reason", "Why the pupil moves down a stage", "textarea"),
        *plan_fields("The plan at the lower stage (if it has one)"),
    ]


def _step_down(values: Values, _: JourneyState) -> StepDownInput:
    return StepDownInput(SIGNED_IN, values.get("reason"), plan(values, False))


def _close_fields(_: JourneyState) -> list[Field]:
    return [
        Field(
            "close_reason",
            "Why the journey closes",
            "radios",
            items=tuple((c.value, words.CLOSE_REASONS[c]) for c in CloseReason),
        ),
        Field("reason", "Details", "textarea"),
    ]


def _close(values: Values, _: JourneyState) -> CloseInput:
    if not values.get("close_reason"):
        raise FormError("close_reason", "Choose why the journey closes")
    reason = _enum(CloseReason, values.get("close_reason"), "close_reason", "Choose a reason")
    return CloseInput(SIGNED_IN, reason, values.get("reason"))


def _need_items() -> tuple[tuple[str, str], ...]:
    return (("", "Choose a need"), *((t.value, t.value) for t in SenType))


def _sen_support_fields(_: JourneyState) -> list[Field]:
    return [
        Field("primary_need", "Primary need", "select", items=_need_items()),
        Field("secondary_need", "Secondary need (optional)", "select", items=_need_items()),
        Field("evidence", "Evidence", "textarea"),
        *plan_fields("The SEN Support plan", plan_2014=True),
    ]


def _sen_support(values: Values, _: JourneyState) -> OpenSenSupportInput:
    if not values.get("primary_need"):
        raise FormError("primary_need", "Choose the primary need")
    need = _enum(SenType, values.get("primary_need"), "primary_need", "Choose a need")
    second = values.get("secondary_need")
    iep = plan(values, True)
    assert iep is not None
    return OpenSenSupportInput(
        SIGNED_IN,
        need,
        values.get("evidence"),
        iep,
        _enum(SenType, second, "secondary_need", "Choose a need") if second else None,
    )


def _ehc_request_fields(_: JourneyState) -> list[Field]:
    return [
        Field("local_authority_id", "The local authority's id", hint="For example la-7"),
        Field("evidence", "Evidence", "textarea"),
    ]


def _ehc_request(values: Values, _: JourneyState) -> RequestEhcAssessmentInput:
    return RequestEhcAssessmentInput(
        SIGNED_IN, values.get("local_authority_id"), values.get("evidence")
    )


YES_NO = (("yes", "Yes"), ("no", "No"))


def _yes(values: Values, name: str, message: str) -> bool:
    if values.get(name) not in ("yes", "no"):
        raise FormError(name, message)
    return values.get(name) == "yes"


def _ehc_decide_fields(_: JourneyState) -> list[Field]:
    return [
        Field("assess", "Will the authority assess?", "radios", items=YES_NO),
        Field("reason", "Reason", "textarea"),
    ]


def _ehc_decide(values: Values, _: JourneyState) -> EhcDecisionInput:
    return EhcDecisionInput(
        SIGNED_IN, _yes(values, "assess", "Choose yes or no"), values.get("reason")
    )


def _ehc_advice_fields(_: JourneyState) -> list[Field]:
    return [
        Field("adviser_id", "The adviser's id"),
        Field("kind", "Kind of advice", hint="For example educational_psychologist, health"),
    ]


def _ehc_advice(values: Values, _: JourneyState) -> EhcAdviceRequestInput:
    return EhcAdviceRequestInput(SIGNED_IN, values.get("adviser_id"), values.get("kind"))


def _ehc_received_fields(_: JourneyState) -> list[Field]:
    return [Field("advice_id", "The advice request's id", hint="For example advice-5")]


def _ehc_received(values: Values, _: JourneyState) -> EhcAdviceReceivedInput:
    return EhcAdviceReceivedInput(SIGNED_IN, values.get("advice_id"))


def _ehc_draft_fields(_: JourneyState) -> list[Field]:
    return [
        Field("issue", "Issue a draft plan?", "radios", items=YES_NO),
        Field("reason", "Reason", "textarea"),
        *plan_fields("The draft plan", plan_2014=True),
    ]


def _ehc_draft(values: Values, _: JourneyState) -> EhcDraftInput:
    return EhcDraftInput(
        SIGNED_IN,
        _yes(values, "issue", "Choose yes or no"),
        values.get("reason"),
        plan(values, False),
    )


def _reason_fields(_: JourneyState) -> list[Field]:
    return [Field("reason", "Reason", "textarea")]


def _ehc_final(values: Values, _: JourneyState) -> EhcFinalInput:
    return EhcFinalInput(SIGNED_IN, values.get("reason"), None)


def _pause_fields(_: JourneyState) -> list[Field]:
    return [
        Field(
            "reason",
            "Which exception applies",
            "radios",
            items=tuple((p.value, words.PAUSES[p]) for p in PauseReason),
        )
    ]


def _pause(values: Values, _: JourneyState) -> EhcPauseInput:
    if not values.get("reason"):
        raise FormError("reason", "Choose which exception applies")
    return EhcPauseInput(
        SIGNED_IN, _enum(PauseReason, values.get("reason"), "reason", "Choose an exception")
    )


def _resume(values: Values, _: JourneyState) -> EhcResumeInput:
    return EhcResumeInput(SIGNED_IN)


def _none(_: JourneyState) -> list[Field]:
    return []


FORMS: dict[str, Form] = {
    f.action: f
    for f in (
        Form("note", "Add a progress note", "Save the note", "note", _note_fields, _note),
        Form(
            "open-school-action",
            "Open School Action",
            "Open School Action",
            "triggers",
            _open_sa_fields,
            _open_sa,
            "The parents are told and asked whether they agree.",
        ),
        Form("review", "Record a review", "Record the review", "outcome", _review_fields, _review),
        Form(
            "escalate",
            "Move to School Action Plus",
            "Move to School Action Plus",
            "triggers",
            _escalate_fields,
            _escalate,
        ),
        Form("refer", "Refer to a specialist", "Send the referral", "kind", _refer_fields, _refer),
        Form(
            "request-statutory-assessment",
            "Ask the local authority for a statutory assessment",
            "Send the request",
            "evidence",
            _evidence_fields,
            _statutory,
        ),
        Form(
            "step-down",
            "Move down a stage",
            "Move down a stage",
            "reason",
            _step_down_fields,
            _step_down,
        ),
        Form(
            "close", "Close the journey", "Close the journey", "close_reason", _close_fields, _close
        ),
        Form(
            "open-sen-support",
            "Open SEN Support",
            "Open SEN Support",
            "primary_need",
            _sen_support_fields,
            _sen_support,
        ),
        Form(
            "request-ehc-assessment",
            "Ask for an EHC needs assessment",
            "Send the request",
            "local_authority_id",
            _ehc_request_fields,
            _ehc_request,
        ),
        Form(
            "ehc-decide",
            "Decide whether to assess",
            "Record the decision",
            "assess",
            _ehc_decide_fields,
            _ehc_decide,
        ),
        Form(
            "ehc-advice",
            "Ask for advice",
            "Send the request",
            "adviser_id",
            _ehc_advice_fields,
            _ehc_advice,
        ),
        Form(
            "ehc-advice-received",
            "Record advice received",
            "Record it",
            "advice_id",
            _ehc_received_fields,
            _ehc_received,
        ),
        Form(
            "ehc-draft",
            "Issue a draft EHC plan, or decide not to",
            "Record the decision",
            "issue",
            _ehc_draft_fields,
            _ehc_draft,
        ),
        Form(
            "ehc-final",
            "Issue the final EHC plan",
            "Issue the final plan",
            "reason",
            _reason_fields,
            _ehc_final,
        ),
        Form("ehc-pause", "Pause the clock", "Pause the clock", "reason", _pause_fields, _pause),
        Form("ehc-resume", "Resume the clock", "Resume the clock", "_form", _none, _resume),
    )
}
