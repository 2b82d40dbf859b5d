"""Every school and local-authority action, once: its name, the workflow update it runs, the
update's input type, who may attempt it and who usually does.

The CLI's commands, the API's routes and the web forms are built around this table; a test
fails if a ``PupilJourney`` update has no row or a row names no update. Whether an allowed
person's action is legal *now* is the journey's rule (the update's validator), never this.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.workflow import UpdateMethodMultiParam
from transitions.core import EventData

from access.policy import Permission, Principal
from domain.commands import (
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
    MigrateInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    RequestEhcAssessmentInput,
    RequestStatutoryAssessmentInput,
    StepDownInput,
)
from domain.journey import Journey
from domain.machine import MACHINE
from domain.model import JourneyState, Role
from workflows.pupil_journey import PupilJourney


@dataclass(frozen=True)
class Action:
    #: The CLI command.
    name: str
    update: UpdateMethodMultiParam[Any, ActionResult]
    input: type[Any]
    permission: Permission
    #: Who usually takes it (the web app's wording, the CLI's help).
    role: Role
    help: str
    #: The API's route under /v1/journeys/{journey_id}/ (None: not one journey's route).
    path: str | None

    @property
    def update_name(self) -> str:
        name: str = getattr(self.update, "__name__")  # noqa: B009 - the protocol omits it
        return name


_S, _T, _LA = Role.SENCO, Role.CLASS_TEACHER, Role.LOCAL_AUTHORITY
ACT_SENCO, ACT_STAFF, ACT_LA = (
    Permission.ACT_SENCO,
    Permission.ACT_STAFF,
    Permission.ACT_LOCAL_AUTHORITY,
)

ACTIONS: tuple[Action, ...] = (
    Action(
        "open-school-action",
        PupilJourney.open_school_action,
        OpenSchoolActionInput,
        ACT_SENCO,
        _S,
        "SENCO: move to School Action with an IEP",
        "school-action",
    ),
    Action(
        "note",
        PupilJourney.record_note,
        RecordNoteInput,
        ACT_STAFF,
        _T,
        "class teacher / SENCO: record a progress note",
        "notes",
    ),
    Action(
        "review",
        PupilJourney.record_review,
        RecordReviewInput,
        ACT_STAFF,
        _S,
        "record an IEP review and its outcome",
        "reviews",
    ),
    Action(
        "escalate",
        PupilJourney.escalate,
        EscalateInput,
        ACT_SENCO,
        _S,
        "SENCO: move to School Action Plus with a new IEP",
        "escalation",
    ),
    Action(
        "refer",
        PupilJourney.refer,
        ReferInput,
        ACT_SENCO,
        _S,
        "SENCO: refer to a specialist (from School Action Plus)",
        "referrals",
    ),
    Action(
        "request-statutory-assessment",
        PupilJourney.request_statutory_assessment,
        RequestStatutoryAssessmentInput,
        ACT_SENCO,
        _S,
        "SENCO: ask the local authority to assess",
        "statutory-assessment-request",
    ),
    Action(
        "step-down",
        PupilJourney.step_down,
        StepDownInput,
        ACT_SENCO,
        _S,
        "SENCO: move one stage down",
        "step-down",
    ),
    Action(
        "close",
        PupilJourney.close,
        CloseInput,
        ACT_SENCO,
        _S,
        "SENCO: close the journey",
        "closure",
    ),
    Action(
        "open-sen-support",
        PupilJourney.open_sen_support,
        OpenSenSupportInput,
        ACT_SENCO,
        _S,
        "SENCO (2014 Code): assess, plan, do, review — open SEN Support",
        "sen-support",
    ),
    Action(
        "request-ehc-assessment",
        PupilJourney.request_ehc_assessment,
        RequestEhcAssessmentInput,
        ACT_SENCO,
        _S,
        "SENCO: ask the local authority for an EHC needs assessment",
        "ehc-assessment-request",
    ),
    Action(
        "ehc-decide",
        PupilJourney.ehc_decide,
        EhcDecisionInput,
        ACT_LA,
        _LA,
        "local authority: decide whether to assess (6 weeks)",
        "ehc/decision",
    ),
    Action(
        "ehc-advice",
        PupilJourney.ehc_request_advice,
        EhcAdviceRequestInput,
        ACT_LA,
        _LA,
        "local authority: ask a professional for advice (6 weeks)",
        "ehc/advice",
    ),
    Action(
        "ehc-advice-received",
        PupilJourney.ehc_advice_received,
        EhcAdviceReceivedInput,
        ACT_LA,
        _LA,
        "local authority: record advice received",
        "ehc/advice/{advice_id}/received",
    ),
    Action(
        "ehc-draft",
        PupilJourney.ehc_draft,
        EhcDraftInput,
        ACT_LA,
        _LA,
        "local authority: issue the draft plan, or decide not to (16 weeks)",
        "ehc/draft",
    ),
    Action(
        "ehc-final",
        PupilJourney.ehc_finalise,
        EhcFinalInput,
        ACT_LA,
        _LA,
        "local authority: issue the final EHC plan (20 weeks)",
        "ehc/final",
    ),
    Action(
        "ehc-pause",
        PupilJourney.pause_ehc_clock,
        EhcPauseInput,
        ACT_LA,
        _LA,
        "local authority: pause the clock for an exception the law allows",
        "ehc/pause",
    ),
    Action(
        "ehc-resume",
        PupilJourney.resume_ehc_clock,
        EhcResumeInput,
        ACT_LA,
        _LA,
        "local authority: resume the clock",
        "ehc/resume",
    ),
    Action(
        "move-to-code-2014",
        PupilJourney.move_to_code_2014,
        MigrateInput,
        Permission.MIGRATE,
        Role.ADMIN,
        "admin: move this journey to the 2014 Code (migrate moves a school's at once)",
        None,
    ),
)

BY_NAME: dict[str, Action] = {a.name: a for a in ACTIONS}


def named(name: str) -> Action:
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError(f"no action {name!r}") from None


def of_update(update: Any) -> Action:
    """The row for a workflow update method."""
    return next(a for a in ACTIONS if a.update_name == update.__name__)


#: Guards that read only the journey (the Code it follows), never the command: asking them
#: over the state tells which of the machine's moves could ever be taken from here.
STATE_GUARDS = ("under_2001", "under_2014")


def offered(principal: Principal, state: JourneyState, now: datetime) -> list[Action]:
    """The actions a front end offers this person now: their role may take them, and the
    journey's machine has a move for them from where it stands (under the Code it follows).
    Whether the filled-in action is legal is still the journey's to say when it is sent."""
    journey = Journey(copy.deepcopy(state))
    here = state.machine_state
    available = set(MACHINE.get_triggers(here))
    found = []
    for action in ACTIONS:
        name = action.update_name
        if name not in available or not principal.may(action.permission):
            continue
        if action.permission is Permission.MIGRATE:
            continue  # a whole school's move, offered on the admin's pages, not per pupil
        moves = MACHINE.get_transitions(trigger=name, source=here)
        event = EventData(
            MACHINE.get_state(here), MACHINE.events[name], MACHINE, journey.rules, (), {"now": now}
        )
        if any(
            all(
                getattr(journey.rules, c.func)(event)
                for c in move.conditions
                if isinstance(c.func, str) and c.func in STATE_GUARDS
            )
            for move in moves
        ):
            found.append(action)
    return found
