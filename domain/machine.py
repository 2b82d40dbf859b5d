"""The pupil's journey as a `transitions` state machine: the single source of legal moves.

``STATES`` are the ``stage__phase`` pairs a journey can be in; ``TRANSITIONS`` is the whole
table of moves between them, each naming the guards (methods of ``domain.guards.Rules``) that
must pass. ``MACHINE`` is built from the table once per process and shared by every journey:
``bind`` gives a model its triggers at the state its journey stored, and the machine keeps no
reference to it.

Pure: no I/O, no clocks.
"""

from __future__ import annotations

import logging
from typing import Any

from transitions import Machine

from domain.model import REGISTER_STAGES, Phase, Stage

# transitions logs every state change at INFO, and again on every replay.
logging.getLogger("transitions").setLevel(logging.WARNING)


def state_name(stage: Stage, phase: Phase) -> str:
    return f"{stage.value}__{phase.value}"


SA, AP, SAS = Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT
SS, EHC, EPL = Stage.SEN_SUPPORT, Stage.EHC_NEEDS_ASSESSMENT, Stage.EHC_PLAN
WAIT_P, ACTIVE, DUE, WAIT_A = (
    Phase.AWAITING_PARENTS,
    Phase.IEP_ACTIVE,
    Phase.REVIEW_DUE,
    Phase.AWAITING_ASSESSMENT,
)

#: Every (stage, phase) a journey can be in.
STAGE_PHASES: dict[Stage, tuple[Phase, ...]] = {
    Stage.MONITORING: (Phase.OBSERVING,),
    SA: (WAIT_P, ACTIVE, DUE),
    AP: (WAIT_P, ACTIVE, DUE, WAIT_A),
    SAS: (WAIT_P, WAIT_A, DUE),
    Stage.CLOSED: (Phase.ENDED,),
    # The 2014 Code: the same phases, so a journey moves across keeping its phase.
    SS: (WAIT_P, ACTIVE, DUE, WAIT_A),
    EHC: (WAIT_P, WAIT_A, DUE),
    EPL: (WAIT_P, ACTIVE, DUE),
}
STATES: dict[str, tuple[Stage, Phase]] = {
    state_name(stage, phase): (stage, phase)
    for stage, phases in STAGE_PHASES.items()
    for phase in phases
}
MONITORING = state_name(Stage.MONITORING, Phase.OBSERVING)
CLOSED = state_name(Stage.CLOSED, Phase.ENDED)
OPEN_STATES = [s for s in STATES if s != CLOSED]


def _all(stage: Stage, *phases: Phase) -> list[str]:
    return [state_name(stage, p) for p in (phases or STAGE_PHASES[stage])]


def _register_states() -> list[str]:
    return [s for st in REGISTER_STAGES for s in _all(st)]


#: The whole table of legal moves. Guards named here are methods of ``domain.guards.Rules``; a
#: guard whose name starts with ``outcome_`` or ``when_`` selects a branch and never refuses by
#: itself.
TRANSITIONS: list[dict[str, Any]] = [
    {
        "trigger": "open_school_action",
        "source": MONITORING,
        "dest": state_name(SA, WAIT_P),
        "conditions": ["under_2001", "by_senco", "with_sa_triggers", "with_evidence", "with_iep"],
    },
    {
        "trigger": "escalate",
        "source": _all(SA),
        "dest": state_name(AP, WAIT_P),
        "conditions": [
            "by_senco",
            "with_ap_triggers",
            "with_evidence",
            "with_iep",
            "after_school_action_review",
        ],
    },
    {
        "trigger": "refer",
        "source": _all(AP, ACTIVE, WAIT_A),
        "dest": state_name(AP, WAIT_A),
        "conditions": ["by_senco", "with_referral"],
    },
    {
        "trigger": "refer",
        "source": _all(AP, WAIT_P, DUE),
        "dest": None,
        "conditions": ["by_senco", "with_referral"],
    },
    {
        "trigger": "request_statutory_assessment",
        "source": _all(AP),
        "dest": state_name(SAS, WAIT_P),
        "conditions": ["under_2001", "by_senco", "with_evidence", "after_specialist_advice"],
    },
    {
        "trigger": "step_down",
        "source": _all(SA),
        "dest": MONITORING,
        "conditions": ["by_senco", "with_reason"],
    },
    {
        "trigger": "step_down",
        "source": _all(AP),
        "dest": state_name(SA, WAIT_P),
        "conditions": ["by_senco", "with_reason", "with_optional_iep"],
    },
    {
        "trigger": "step_down",
        "source": _all(SAS),
        "dest": state_name(AP, WAIT_P),
        "conditions": ["by_senco", "with_reason", "with_optional_iep"],
    },
    {
        "trigger": "close",
        "source": OPEN_STATES,
        "dest": CLOSED,
        "conditions": ["by_senco", "with_close_reason", "with_reason"],
    },
    {
        "trigger": "record_note",
        "source": OPEN_STATES,
        "dest": None,
        "conditions": ["by_school_staff", "with_note"],
    },
    # Reviews: the outcome picks the branch.
    *[
        {
            "trigger": "record_review",
            "source": _all(stage),
            "dest": state_name(stage, WAIT_P),
            "conditions": ["outcome_continue", "by_school_staff", "with_review", "with_iep"],
        }
        for stage in REGISTER_STAGES
    ],
    {
        "trigger": "record_review",
        "source": _all(SA),
        "dest": state_name(AP, WAIT_P),
        "conditions": [
            "outcome_escalate",
            "by_senco",
            "with_review",
            "with_ap_triggers",
            "with_iep",
        ],
    },
    {
        "trigger": "record_review",
        "source": _all(AP),
        "dest": state_name(SAS, WAIT_P),
        "conditions": ["outcome_escalate", "by_senco", "with_review", "after_specialist_advice"],
    },
    {
        "trigger": "record_review",
        "source": _all(SA),
        "dest": MONITORING,
        "conditions": ["outcome_step_down", "by_senco", "with_review"],
    },
    {
        "trigger": "record_review",
        "source": _all(AP),
        "dest": state_name(SA, WAIT_P),
        "conditions": ["outcome_step_down", "by_senco", "with_review", "with_optional_iep"],
    },
    {
        "trigger": "record_review",
        "source": _all(SAS),
        "dest": state_name(AP, WAIT_P),
        "conditions": ["outcome_step_down", "by_senco", "with_review", "with_optional_iep"],
    },
    {
        "trigger": "record_review",
        "source": _register_states(),
        "dest": CLOSED,
        "conditions": ["outcome_close", "by_senco", "with_review", "with_close_reason"],
    },
    # Timers and replies move the phase inside a stage.
    *[
        {
            "trigger": "review_falls_due",
            "source": [s for s in _all(stage) if STATES[s][1] is not DUE],
            "dest": state_name(stage, DUE),
        }
        for stage in REGISTER_STAGES
    ],
    *[
        {
            "trigger": "parents_settled",
            "source": state_name(stage, WAIT_P),
            "dest": state_name(stage, WAIT_A),
            "conditions": ["when_assessment_pending"],
        }
        for stage in (AP, SAS, SS, EHC)
    ],
    *[
        {
            "trigger": "parents_settled",
            "source": state_name(stage, WAIT_P),
            "dest": state_name(stage, ACTIVE),
        }
        for stage in (SA, AP, SS, EPL)
    ],
    *[
        {  # (before the catch-all below: the first passing transition wins)
            "trigger": "complete_assessment",
            "source": state_name(stage, WAIT_A),
            "dest": state_name(stage, ACTIVE),
            "conditions": ["by_assigned_specialist", "when_last_open_referral"],
        }
        for stage in (AP, SS)
    ],
    {
        "trigger": "complete_assessment",
        "source": OPEN_STATES,
        "dest": None,
        "conditions": ["by_assigned_specialist"],
    },
    # -- the 2014 Code ----------------------------------------------------------------------
    {
        "trigger": "open_sen_support",
        "source": MONITORING,
        "dest": state_name(SS, WAIT_P),
        "conditions": ["under_2014", "by_senco", "with_need", "with_evidence", "with_iep"],
    },
    {
        "trigger": "refer",
        "source": _all(SS, ACTIVE, WAIT_A),
        "dest": state_name(SS, WAIT_A),
        "conditions": ["by_senco", "with_referral"],
    },
    {
        "trigger": "refer",
        "source": _all(SS, WAIT_P, DUE) + _all(EHC) + _all(EPL),
        "dest": None,
        "conditions": ["by_senco", "with_referral"],
    },
    {
        "trigger": "record_review",
        "source": _all(SS) + _all(EHC) + _all(EPL),
        "dest": None,
        "conditions": ["outcome_escalate", "escalation_is_an_ehc_request"],
    },
    {
        "trigger": "record_review",
        "source": _all(SS),
        "dest": MONITORING,
        "conditions": ["outcome_step_down", "by_senco", "with_review"],
    },
    {
        "trigger": "record_review",
        "source": _all(EHC) + _all(EPL),
        "dest": state_name(SS, WAIT_P),
        "conditions": ["outcome_step_down", "by_senco", "with_review", "with_optional_iep"],
    },
    {
        "trigger": "step_down",
        "source": _all(SS),
        "dest": MONITORING,
        "conditions": ["by_senco", "with_reason"],
    },
    {
        "trigger": "step_down",
        "source": _all(EHC) + _all(EPL),
        "dest": state_name(SS, WAIT_P),
        "conditions": ["by_senco", "with_reason", "with_optional_iep"],
    },
    {
        "trigger": "request_ehc_assessment",
        "source": _all(SS),
        "dest": state_name(EHC, WAIT_P),
        "conditions": ["under_2014", "by_senco", "with_local_authority", "with_evidence"],
    },
    {
        "trigger": "ehc_decide",
        "source": _all(EHC),
        "dest": None,
        "conditions": ["when_yes", "by_local_authority", "ehc_decision_pending", "with_reason"],
    },
    {
        "trigger": "ehc_decide",
        "source": _all(EHC),
        "dest": state_name(SS, WAIT_P),
        "conditions": ["when_no", "by_local_authority", "ehc_decision_pending", "with_reason"],
    },
    {
        "trigger": "ehc_request_advice",
        "source": _all(EHC),
        "dest": None,
        "conditions": ["by_local_authority", "ehc_assessing", "ehc_before_draft", "with_adviser"],
    },
    {
        "trigger": "ehc_advice_received",
        "source": _all(EHC),
        "dest": None,
        "conditions": ["by_local_authority", "with_open_advice"],
    },
    {
        "trigger": "ehc_draft",
        "source": _all(EHC),
        "dest": None,
        "conditions": [
            "when_yes",
            "by_local_authority",
            "ehc_assessing",
            "ehc_before_draft",
            "with_reason",
            "with_iep",
        ],
    },
    {
        "trigger": "ehc_draft",
        "source": _all(EHC),
        "dest": state_name(SS, WAIT_P),
        "conditions": [
            "when_no",
            "by_local_authority",
            "ehc_assessing",
            "ehc_before_draft",
            "with_reason",
        ],
    },
    {
        "trigger": "ehc_finalise",
        "source": _all(EHC),
        "dest": state_name(EPL, WAIT_P),
        "conditions": [
            "by_local_authority",
            "ehc_draft_issued",
            "after_parent_comments",
            "with_reason",
            "with_optional_iep",
        ],
    },
    {
        "trigger": "pause_ehc_clock",
        "source": _all(EHC),
        "dest": None,
        "conditions": ["by_local_authority", "ehc_clock_running"],
    },
    {
        "trigger": "resume_ehc_clock",
        "source": _all(EHC),
        "dest": None,
        "conditions": ["by_local_authority", "ehc_clock_paused"],
    },
    # Moving a 2001 journey in flight: each stage to its 2014 successor, keeping the phase.
    *[
        {
            "trigger": "move_to_code_2014",
            "source": state_name(old, phase),
            "dest": state_name(new, phase),
            "conditions": [
                "by_admin",
                "to_code_2014",
                "under_2001",
                "with_reason",
                "with_transfer_authority",
            ],
        }
        for old, new in ((SA, SS), (AP, SS), (SAS, EHC))
        for phase in STAGE_PHASES[old]
    ],
    {
        "trigger": "move_to_code_2014",
        "source": MONITORING,
        "dest": None,
        "conditions": ["by_admin", "to_code_2014", "under_2001", "with_reason"],
    },
    {
        "trigger": "move_to_code_2014",
        "source": _all(SS) + _all(EHC) + _all(EPL),
        "dest": None,
        "conditions": ["by_admin", "under_2001"],  # refuses: already moved
    },
]

ACTION_WORDS = {
    "open_school_action": "open School Action",
    "escalate": "escalate to School Action Plus",
    "refer": "refer to a specialist",
    "request_statutory_assessment": "request a statutory assessment",
    "step_down": "step down",
    "close": "close the journey",
    "record_note": "record a progress note",
    "record_review": "record a review",
    "complete_assessment": "complete an assessment",
    "open_sen_support": "open SEN Support",
    "request_ehc_assessment": "request an EHC needs assessment",
    "ehc_decide": "decide whether to assess",
    "ehc_request_advice": "ask for advice",
    "ehc_advice_received": "record advice received",
    "ehc_draft": "issue a draft EHC plan or decide not to issue one",
    "ehc_finalise": "issue the final EHC plan",
    "pause_ehc_clock": "pause the EHC clock",
    "resume_ehc_clock": "resume the EHC clock",
    "move_to_code_2014": "move the journey to the 2014 Code",
}


def build_machine() -> Machine:
    """The machine of ``TRANSITIONS``, with no model and no default state: each model is bound
    at the state its journey stored (``bind``)."""
    return Machine(
        model=None,
        states=list(STATES),
        transitions=TRANSITIONS,
        initial=None,
        auto_transitions=False,
        send_event=True,
        model_attribute="machine_state",
        # Unqueued (the default) is what makes one machine safe to share between journeys and
        # the worker's activation threads: a trigger then reads only the table (states, events,
        # transitions, conditions by name) and keeps its working data in a fresh EventData and
        # on the model. A queued machine would hold one transition queue for all its models.
        queued=False,
    )


#: Built once: constructing the 259 Transition objects of the table for every journey (each
#: workflow run, each state decoded) cost ~0.55 ms; binding a model costs ~0.07 ms.
MACHINE = build_machine()


def bind(model: object, machine_state: str) -> None:
    """Give ``model`` the machine's ``trigger(name, ...)`` and ``may_trigger(name, ...)`` (and a
    ``<trigger>`` and ``may_<trigger>`` method per event), at ``machine_state``.
    ``remove_model`` straight after: the model keeps its methods (partials bound to it), and the
    shared machine keeps no reference to any journey. From several threads this only appends
    to and removes from ``MACHINE.models``, which no trigger reads."""
    MACHINE.add_model(model, initial=machine_state)
    MACHINE.remove_model(model)
