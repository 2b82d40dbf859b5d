"""The pupil's journey as a `transitions` state machine: the single source of legal moves.

``TRANSITIONS`` is the whole table. A ``Journey`` wraps one ``JourneyState`` and rebuilds the
machine from ``state.machine_state``; it never stores the Machine in the state. Every school
action is checked by asking the machine (``may_<trigger>``) with the command, and the guards
record *why* a move is refused so the person asking gets a reason, not just "no".

Pure: no I/O, no clocks. ``now`` comes in as an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Any, cast

from transitions import EventData, Machine

from domain.commands import (
    MAX_TEXT,
    ActionResult,
    AssessmentCompletedInput,
    CloseInput,
    EscalateInput,
    IepInput,
    OpenSchoolActionInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
    StepDownInput,
    check_opaque_id,
)
from domain.model import (
    EARLY_YEARS_LABELS,
    REGISTER_STAGES,
    SYSTEM_ACTOR,
    Actor,
    Consultation,
    ConsultationStatus,
    EntryKind,
    Iep,
    JourneyState,
    Notice,
    ParentReply,
    ParentResponse,
    Phase,
    Referral,
    ReferralStatus,
    Review,
    ReviewOutcome,
    Role,
    Stage,
    TimelineEntry,
    Trigger,
)

# transitions logs every state change at INFO, and again on every replay.
logging.getLogger("transitions").setLevel(logging.WARNING)


def state_name(stage: Stage, phase: Phase) -> str:
    return f"{stage.value}__{phase.value}"


SA, AP, SAS = Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT
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


#: The whole table of legal moves. Guards named here are methods of ``Journey``; a guard whose
#: name starts with ``outcome_`` or ``when_`` selects a branch and never refuses by itself.
TRANSITIONS: list[dict[str, Any]] = [
    {
        "trigger": "open_school_action",
        "source": MONITORING,
        "dest": state_name(SA, WAIT_P),
        "conditions": ["by_senco", "with_sa_triggers", "with_evidence", "with_iep"],
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
        "conditions": ["by_senco", "with_evidence", "after_specialist_advice"],
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
        for stage in (AP, SAS)
    ],
    *[
        {
            "trigger": "parents_settled",
            "source": state_name(stage, WAIT_P),
            "dest": state_name(stage, ACTIVE),
        }
        for stage in (SA, AP)
    ],
    {
        "trigger": "complete_assessment",
        "source": state_name(AP, WAIT_A),
        "dest": state_name(AP, ACTIVE),
        "conditions": ["by_assigned_specialist", "when_last_open_referral"],
    },
    {
        "trigger": "complete_assessment",
        "source": OPEN_STATES,
        "dest": None,
        "conditions": ["by_assigned_specialist"],
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
}


def build_machine(model: object, initial: str) -> Machine:
    return Machine(
        model=model,
        states=list(STATES),
        transitions=TRANSITIONS,
        initial=initial,
        auto_transitions=False,
        send_event=True,
        model_attribute="machine_state",
    )


class _Rules:
    """The machine's model: holds ``machine_state`` and the guards, which say why they refuse."""

    machine_state: str

    def __init__(self, state: JourneyState) -> None:
        self.state = state
        self.reasons: list[str] = []
        build_machine(self, state.machine_state)

    def referral(self, referral_id: str) -> Referral | None:
        return next((r for r in self.state.referrals if r.referral_id == referral_id), None)

    def _refuse(self, reason: str) -> bool:
        self.reasons.append(reason)
        return False

    # guards: each reads the command from the event and says why when it refuses

    @staticmethod
    def _cmd(event: EventData) -> Any:
        return event.kwargs["cmd"]

    def _actor(self, event: EventData) -> Actor:
        actor = getattr(self._cmd(event), "actor", None)
        return actor if isinstance(actor, Actor) else Actor(id="", role=Role.SYSTEM)

    def by_senco(self, event: EventData) -> bool:
        if self._actor(event).role is Role.SENCO:
            return True
        return self._refuse(f"only a SENCO may {ACTION_WORDS[event.event.name]}")

    def by_school_staff(self, event: EventData) -> bool:
        if self._actor(event).role in (Role.SENCO, Role.CLASS_TEACHER):
            return True
        return self._refuse(f"only a SENCO or class teacher may {ACTION_WORDS[event.event.name]}")

    def by_assigned_specialist(self, event: EventData) -> bool:
        cmd: AssessmentCompletedInput = self._cmd(event)
        referral = self.referral(cmd.referral_id)
        if referral is None:
            return self._refuse(f"no referral {cmd.referral_id!r}")
        if referral.status is not ReferralStatus.OPEN:
            return self._refuse(f"referral {cmd.referral_id} is {referral.status.value}")
        if cmd.actor.role is not Role.SPECIALIST or cmd.actor.id != referral.specialist_id:
            return self._refuse(f"referral {cmd.referral_id} is assigned to another specialist")
        if not _text(cmd.summary):
            return self._refuse("an assessment needs a report summary")
        return True

    def _triggers(self, event: EventData, wanted: Callable[[Trigger], bool], code: str) -> bool:
        triggers = getattr(self._cmd(event), "triggers", [])
        if triggers and all(isinstance(t, Trigger) and wanted(t) for t in triggers):
            return True
        return self._refuse(f"cite at least one {code}-* trigger and only {code}-* triggers")

    def with_sa_triggers(self, event: EventData) -> bool:
        return self._triggers(event, lambda t: t.is_school_action, "SA")

    def with_ap_triggers(self, event: EventData) -> bool:
        return self._triggers(event, lambda t: t.is_action_plus, "AP")

    def with_evidence(self, event: EventData) -> bool:
        if _text(getattr(self._cmd(event), "evidence", "")):
            return True
        return self._refuse("give the evidence for the decision")

    def with_reason(self, event: EventData) -> bool:
        if _text(getattr(self._cmd(event), "reason", "")):
            return True
        return self._refuse("give a reason for the decision")

    def with_note(self, event: EventData) -> bool:
        if _text(self._cmd(event).note):
            return True
        return self._refuse("a progress note cannot be empty")

    def with_close_reason(self, event: EventData) -> bool:
        if getattr(self._cmd(event), "close_reason", None) is not None:
            return True
        return self._refuse("say why the journey closes (needs_met, left_school, moved_school)")

    def _iep_input(self, event: EventData) -> IepInput | None:
        cmd = self._cmd(event)
        return cast(IepInput | None, getattr(cmd, "iep", None) or getattr(cmd, "new_iep", None))

    def with_iep(self, event: EventData) -> bool:
        iep = self._iep_input(event)
        if iep is None:
            return self._refuse("an IEP is required: targets, strategies, provision, staff")
        return self._iep_ok(iep, event.kwargs["now"])

    def with_optional_iep(self, event: EventData) -> bool:
        iep = self._iep_input(event)
        return iep is None or self._iep_ok(iep, event.kwargs["now"])

    def _iep_ok(self, iep: IepInput, now: datetime) -> bool:
        if not iep.targets or not all(
            _text(t.description) and _text(t.success_criterion) for t in iep.targets
        ):
            return self._refuse("an IEP needs at least one target, each with a success criterion")
        if not iep.strategies or not all(_text(s) for s in iep.strategies):
            return self._refuse("an IEP needs at least one teaching strategy")
        if not iep.provision or not all(_text(p) for p in iep.provision):
            return self._refuse("an IEP needs the provision to be put in place")
        if not iep.responsible or not all(_text(r) for r in iep.responsible):
            return self._refuse("an IEP needs the staff responsible for it")
        if iep.review_date is not None:
            policy = self.state.policy
            today = policy.local_date(now)
            latest = policy.latest_review_date(today, self.state.early_years)
            if iep.review_date <= today:
                return self._refuse(f"the review date {iep.review_date} is not after today")
            if iep.review_date > latest:
                months = (
                    policy.max_review_months_early_years
                    if self.state.early_years
                    else policy.max_review_months_school_age
                )
                who = "under compulsory school age" if self.state.early_years else "school-age"
                return self._refuse(
                    f"the review date {iep.review_date} is later than {latest}: IEPs for "
                    f"{who} pupils are reviewed at least every {months} months"
                )
        return True

    def after_school_action_review(self, event: EventData) -> bool:
        if any(r.stage is SA for r in self.state.reviews):
            return True
        return self._refuse(
            "School Action Plus needs at least one completed School Action review "
            "(little progress despite an individualised programme)"
        )

    def after_specialist_advice(self, event: EventData) -> bool:
        if any(r.status is ReferralStatus.COMPLETED for r in self.state.referrals):
            return True
        return self._refuse(
            "a statutory assessment request needs a completed specialist assessment"
        )

    def with_referral(self, event: EventData) -> bool:
        cmd: ReferInput = self._cmd(event)
        try:
            check_opaque_id(cmd.specialist_id, "specialist id")
        except Refused as err:
            return self._refuse(str(err))
        if not _text(cmd.question):
            return self._refuse("a referral must ask the specialist a question")
        if any(r.kind is cmd.kind for r in self.state.open_referrals()):
            return self._refuse(f"a {cmd.kind.value} referral is already open")
        return True

    def with_review(self, event: EventData) -> bool:
        cmd: RecordReviewInput = self._cmd(event)
        iep = self.state.iep
        if iep is None:
            return self._refuse("there is no IEP to review")
        indexes = sorted(p.target_index for p in cmd.progress)
        if indexes != list(range(len(iep.targets))):
            return self._refuse(
                f"record progress once for each of the IEP's {len(iep.targets)} target(s) "
                f"(indexes 0..{len(iep.targets) - 1})"
            )
        if not all(_text(p.progress) for p in cmd.progress):
            return self._refuse("describe the progress made on each target")
        return True

    def outcome_continue(self, event: EventData) -> bool:
        return bool(self._cmd(event).outcome is ReviewOutcome.CONTINUE)

    def outcome_escalate(self, event: EventData) -> bool:
        return bool(self._cmd(event).outcome is ReviewOutcome.ESCALATE)

    def outcome_step_down(self, event: EventData) -> bool:
        return bool(self._cmd(event).outcome is ReviewOutcome.STEP_DOWN)

    def outcome_close(self, event: EventData) -> bool:
        return bool(self._cmd(event).outcome is ReviewOutcome.CLOSE)

    def when_assessment_pending(self, event: EventData) -> bool:
        return self.state.stage is SAS or bool(self.state.open_referrals())

    def when_last_open_referral(self, event: EventData) -> bool:
        referral_id = self._cmd(event).referral_id
        return [r.referral_id for r in self.state.open_referrals()] == [referral_id]


#: Behaviour added after journeys were recorded. The workflow switches each on with
#: ``workflow.patched`` so that histories recorded before it replay unchanged.
FEATURE_REVIEW_INVITATIONS = "review-invitations"

#: Entries whose reason and triggers a consultation letter explains.
DECIDING = (EntryKind.DECISION, EntryKind.REVIEW, EntryKind.REFERRAL)

#: How a trigger reads in a letter to parents.
TRIGGER_WORDS: dict[Trigger, str] = {
    Trigger.SA_PROGRESS: "little or no progress even when teaching targets the difficulty",
    Trigger.SA_LITERACY_MATHS: "difficulty developing literacy or mathematics skills",
    Trigger.SA_EMOTIONAL_BEHAVIOURAL: "persistent emotional or behavioural difficulties",
    Trigger.SA_SENSORY_PHYSICAL: "sensory or physical needs, with little progress despite "
    "specialist equipment",
    Trigger.SA_COMMUNICATION: "communication and interaction difficulties",
    Trigger.AP_PROGRESS_LONG: "little or no progress in specific areas over a long period",
    Trigger.AP_BELOW_EXPECTED: "working substantially below children of the same age",
    Trigger.AP_LITERACY_MATHS: "continuing difficulty with literacy and mathematics",
    Trigger.AP_EMOTIONAL_BEHAVIOURAL: "difficulties that substantially interfere with learning "
    "despite an individual behaviour programme",
    Trigger.AP_SENSORY_PHYSICAL: "needs specialist equipment or regular specialist advice",
    Trigger.AP_COMMUNICATION: "communication difficulties that are a substantial barrier to "
    "learning and friendships",
}


class Journey:
    """One pupil's journey: rules, decisions, timers and the notices they owe.

    Each public action first calls ``check`` (read-only, used by update validators) and then
    changes ``self.state``; a refused action raises ``Refused`` and changes nothing.
    """

    def __init__(self, state: JourneyState, features: frozenset[str] = frozenset()) -> None:
        self.state = state
        self.rules = _Rules(state)
        #: Switched on per run by the workflow (``workflow.patched``); never stored.
        self.features = features

    # -- starting -------------------------------------------------------------------------

    @staticmethod
    def begin(cmd: StartJourneyInput, now: datetime) -> Journey:
        check_start(cmd)
        state = JourneyState(
            pupil_id=cmd.pupil_id,
            school_id=cmd.school_id,
            policy=cmd.policy,
            parent_ids=list(cmd.parent_ids),
            senco_id=cmd.senco_id,
            opened_at=now,
            compulsory_school_age_date=cmd.compulsory_school_age_date,
            birth_year=cmd.birth_year,
            birth_month=cmd.birth_month,
            year_group=cmd.year_group,
        )
        state.early_years = (
            cmd.compulsory_school_age_date is not None
            and now < cmd.policy.due_instant(cmd.compulsory_school_age_date)
        )
        journey = Journey(state)
        journey._sync()
        journey._entry(
            now,
            EntryKind.STARTED,
            cmd.actor,
            "concern raised; class teacher monitors and differentiates",
            reason=cmd.concern,
            after=Stage.MONITORING,
        )
        return journey

    # -- asking the machine ---------------------------------------------------------------

    def check(self, trigger: str, cmd: object, now: datetime) -> None:
        """Raise ``Refused`` with every reason the machine gives; change nothing."""
        self.rules.reasons = []
        may = cast(Callable[..., bool], getattr(self.rules, f"may_{trigger}"))
        if may(cmd=cmd, now=now):
            return
        reasons = list(dict.fromkeys(self.rules.reasons))
        if not reasons:
            reasons = [
                f"cannot {ACTION_WORDS.get(trigger, trigger)} while the journey is at "
                f"{self.state.stage.value} ({self.state.phase.value})"
            ]
        raise Refused("; ".join(reasons))

    def _fire(self, trigger: str, cmd: object, now: datetime) -> None:
        self.check(trigger, cmd, now)
        cast(Callable[..., bool], getattr(self.rules, trigger))(cmd=cmd, now=now)
        self._sync()

    # -- school actions -------------------------------------------------------------------

    def open_school_action(self, cmd: OpenSchoolActionInput, now: datetime) -> ActionResult:
        return self._stage_decision(
            "open_school_action", cmd, now, "opened School Action", cmd.evidence, cmd.triggers
        )

    def escalate(self, cmd: EscalateInput, now: datetime) -> ActionResult:
        return self._stage_decision(
            "escalate", cmd, now, "escalated to School Action Plus", cmd.evidence, cmd.triggers
        )

    def request_statutory_assessment(
        self, cmd: RequestStatutoryAssessmentInput, now: datetime
    ) -> ActionResult:
        return self._stage_decision(
            "request_statutory_assessment",
            cmd,
            now,
            "asked the local authority for a statutory assessment",
            cmd.evidence,
            [],
        )

    def step_down(self, cmd: StepDownInput, now: datetime) -> ActionResult:
        return self._stage_decision("step_down", cmd, now, "stepped down", cmd.reason, [])

    def close(self, cmd: CloseInput, now: datetime) -> ActionResult:
        self.check("close", cmd, now)  # refuse before touching anything
        self.state.close_reason = cmd.close_reason
        return self._stage_decision(
            "close", cmd, now, f"closed ({cmd.close_reason.value})", cmd.reason, []
        )

    def record_note(self, cmd: RecordNoteInput, now: datetime) -> ActionResult:
        self._fire("record_note", cmd, now)
        step = self._entry(now, EntryKind.NOTE, cmd.actor, "progress note", reason=cmd.note)
        return self._result(step, "progress note recorded")

    def record_review(self, cmd: RecordReviewInput, now: datetime) -> ActionResult:
        self.check("record_review", cmd, now)  # refuse before touching anything
        iep = self.state.iep
        assert iep is not None  # with_review guarantees it
        before = self.state.stage
        if cmd.outcome is ReviewOutcome.CLOSE:
            self.state.close_reason = cmd.close_reason
        self._fire("record_review", cmd, now)
        step = self._next_step()
        review = Review(
            review_id=f"review-{step}",
            iep_id=iep.iep_id,
            stage=before,
            outcome=cmd.outcome,
            progress=list(cmd.progress),
            notes=cmd.notes,
            held_at=now,
            actor=cmd.actor,
        )
        self.state.reviews.append(review)
        self._record(
            step,
            now,
            EntryKind.REVIEW if self.state.stage is before else EntryKind.DECISION,
            cmd.actor,
            f"review of {iep.iep_id}: {cmd.outcome.value}",
            reason=cmd.notes,
            triggers=list(cmd.triggers),
            before=before,
            after=self.state.stage,
            ref=review.review_id,
        )
        self._after_stage_change(step, now, before, cmd.new_iep, f"review outcome: {cmd.outcome}")
        return self._result(step, f"review recorded: {cmd.outcome.value}", review.review_id)

    def refer(self, cmd: ReferInput, now: datetime) -> ActionResult:
        self._fire("refer", cmd, now)
        step = self._next_step()
        referral = Referral(
            referral_id=f"referral-{step}",
            kind=cmd.kind,
            specialist_id=cmd.specialist_id,
            question=cmd.question,
            requested_at=now,
            requested_by=cmd.actor,
            next_chase_at=now + self.state.policy.referral_chase_interval,
        )
        self.state.referrals.append(referral)
        self._record(
            step,
            now,
            EntryKind.REFERRAL,
            cmd.actor,
            f"referred to {cmd.kind.value} {cmd.specialist_id}",
            reason=cmd.question,
            ref=referral.referral_id,
        )
        self._notify(
            step,
            "referral_request",
            Role.SPECIALIST,
            [cmd.specialist_id],
            f"Assessment requested for pupil {self.state.pupil_id} ({referral.referral_id})",
            [
                f"The school asks for a {cmd.kind.value} assessment.",
                f"Question: {cmd.question}",
                f"Reply with: senflow assessment-completed {self.state.pupil_id} "
                f"--referral {referral.referral_id} --summary ...",
            ],
            {
                "referral_id": referral.referral_id,
                "kind": cmd.kind.value,
                "question": cmd.question,
                "requested_on": self._day(now),
                "chase_after": self._day(referral.next_chase_at),
            },
        )
        self._consult_parents(step, now, f"referral to {cmd.kind.value}", decides_phase=False)
        return self._result(
            step, f"referral {referral.referral_id} requested", referral.referral_id
        )

    # -- replies (signals: never raise out of the workflow, see apply_reply) -----------------

    def complete_assessment(self, cmd: AssessmentCompletedInput, now: datetime) -> ActionResult:
        self._fire("complete_assessment", cmd, now)
        referral = self.referral(cmd.referral_id)
        assert referral is not None
        referral.status = ReferralStatus.COMPLETED
        referral.completed_at = now
        referral.summary = cmd.summary
        referral.recommendations = list(cmd.recommendations)
        step = self._entry(
            now,
            EntryKind.ASSESSMENT_COMPLETED,
            cmd.actor,
            f"{referral.kind.value} assessment completed",
            reason=cmd.summary,
            ref=referral.referral_id,
        )
        self._notify(
            step,
            "assessment_received",
            Role.SENCO,
            [self.state.senco_id],
            f"Assessment received for pupil {self.state.pupil_id} ({referral.referral_id})",
            [f"The {referral.kind.value} assessment is complete."]
            + [f"Recommendation: {r}" for r in referral.recommendations],
            {
                "referral_id": referral.referral_id,
                "kind": referral.kind.value,
                "summary": cmd.summary,
                "recommendations": list(referral.recommendations),
                "waited_days": (now - referral.requested_at).days,
            },
        )
        return self._result(step, "assessment recorded", referral.referral_id)

    def check_parent_reply(self, cmd: ParentRespondedInput) -> Consultation:
        consultation = self.consultation(cmd.consultation_id)
        if consultation is None:
            raise Refused(f"no consultation {cmd.consultation_id!r}")
        if consultation.status is not ConsultationStatus.OPEN:
            raise Refused(f"consultation {cmd.consultation_id} is {consultation.status.value}")
        if cmd.parent_id not in consultation.parent_ids:
            raise Refused(f"{cmd.parent_id!r} was not consulted in {cmd.consultation_id}")
        if cmd.parent_id not in consultation.unanswered():
            raise Refused(f"{cmd.parent_id!r} has already answered {cmd.consultation_id}")
        if cmd.reply is ParentReply.NO_RESPONSE:
            raise Refused("no_response is recorded by the journey, not sent")
        if len(cmd.comments) > MAX_TEXT:
            raise Refused(f"comments are limited to {MAX_TEXT} characters")
        return consultation

    def parent_responded(self, cmd: ParentRespondedInput, now: datetime) -> ActionResult:
        consultation = self.check_parent_reply(cmd)
        consultation.responses.append(
            ParentResponse(parent_id=cmd.parent_id, reply=cmd.reply, comments=cmd.comments, at=now)
        )
        step = self._entry(
            now,
            EntryKind.PARENT_REPLY,
            Actor(id=cmd.parent_id, role=Role.PARENT),
            f"parent replied to {consultation.subject}: {cmd.reply.value}",
            reason=cmd.comments,
            ref=consultation.consultation_id,
        )
        if not consultation.unanswered():
            consultation.status = ConsultationStatus.ANSWERED
            self._settle(consultation, now)
        if cmd.reply is not ParentReply.AGREE:
            self._notify(
                step,
                "parent_reply",
                Role.SENCO,
                [self.state.senco_id],
                f"Parent reply for pupil {self.state.pupil_id}: {cmd.reply.value}",
                [f"On: {consultation.subject} ({consultation.consultation_id})"],
                {
                    "consultation_id": consultation.consultation_id,
                    "subject": consultation.subject,
                    "reply": cmd.reply.value,
                    "parent_id": cmd.parent_id,
                    "comments": cmd.comments,
                },
            )
        return self._result(step, "reply recorded", consultation.consultation_id)

    def reject_message(self, now: datetime, what: str, reason: str, actor: Actor) -> None:
        """A reply that could not be applied: recorded, never fatal."""
        self._entry(
            now,
            EntryKind.REJECTED_MESSAGE,
            actor,
            f"rejected {what}",
            reason=reason[:MAX_TEXT],
        )

    def delta_since(self, step: int) -> JourneyState:
        """What changed after ``step``: new timeline entries and the records they touch.

        The read model upserts what it is given, so a delta may safely include too much
        (open consultations and referrals, the current plan) but never too little.
        """
        s = self.state
        entries = [e for e in s.timeline if e.step > step]
        refs = {e.ref for e in entries}
        if any(e.stage_after is Stage.CLOSED for e in entries):  # closing withdrew the rest
            refs |= {c.consultation_id for c in s.consultations}
            refs |= {r.referral_id for r in s.referrals}
        since = min((e.at for e in entries), default=None)
        return replace(
            s,
            timeline=entries,
            past_ieps=[i for i in s.past_ieps if since is not None and i.agreed_at >= since],
            reviews=[r for r in s.reviews if r.review_id in refs],
            consultations=[
                c
                for c in s.consultations
                if c.consultation_id in refs or c.status is ConsultationStatus.OPEN
            ],
            referrals=[
                r for r in s.referrals if r.referral_id in refs or r.status is ReferralStatus.OPEN
            ],
            outbox=[],
            processed_reply_ids=[],
        )

    def is_open(self) -> bool:
        return self.state.stage is not Stage.CLOSED

    # -- time -----------------------------------------------------------------------------

    def next_wakeup(self) -> datetime | None:
        """The earliest instant something falls due; the workflow sleeps until then."""
        s = self.state
        if s.stage is Stage.CLOSED:
            return None
        candidates: list[datetime] = []
        if s.early_years and s.compulsory_school_age_date is not None:
            candidates.append(s.policy.due_instant(s.compulsory_school_age_date))
        if s.iep is not None and s.review_due_at is not None:
            if not s.iep.reminder_sent:
                candidates.append(s.review_due_at - s.policy.reminder_lead)
            if s.phase is not Phase.REVIEW_DUE:
                candidates.append(s.review_due_at)
            if not s.iep.overdue_notice_sent:
                candidates.append(s.review_due_at + s.policy.overdue_grace)
        for c in s.open_consultations():
            candidates.append(c.deadline if c.reminder_sent else c.reminder_at)
        candidates += [r.next_chase_at for r in s.open_referrals()]
        return min(candidates) if candidates else None

    def on_time(self, now: datetime) -> bool:
        """Apply everything due at ``now``. Returns whether anything changed."""
        before = self.state.step
        s = self.state
        if s.stage is Stage.CLOSED:
            return False
        csa = s.compulsory_school_age_date
        if s.early_years and csa is not None and now >= s.policy.due_instant(csa):
            s.early_years = False
            self._sync()
            self._entry(
                now,
                EntryKind.COMPULSORY_SCHOOL_AGE,
                SYSTEM_ACTOR,
                f"reached compulsory school age on {csa}; stage now reported as {s.stage_label}",
            )
        iep = s.iep
        if iep is not None and s.review_due_at is not None:
            due = s.review_due_at
            if not iep.reminder_sent and now >= due - s.policy.reminder_lead:
                iep.reminder_sent = True
                step = self._entry(
                    now,
                    EntryKind.REVIEW_REMINDER,
                    SYSTEM_ACTOR,
                    f"review of {iep.iep_id} due on {iep.review_date}",
                    ref=iep.iep_id,
                )
                self._notify_staff(
                    step,
                    "review_reminder",
                    iep,
                    f"IEP review due {iep.review_date} for pupil {s.pupil_id}",
                    [f"The review of {iep.iep_id} is due on {iep.review_date}."],
                    self._iep_facts(iep),
                )
                if FEATURE_REVIEW_INVITATIONS in self.features:
                    self._notify(
                        step,
                        "review_invitation",
                        Role.PARENT,
                        list(s.parent_ids),
                        f"Your child's plan will be reviewed on {iep.review_date}",
                        [f"The review of {iep.iep_id} is due on {iep.review_date}."],
                        self._iep_facts(iep),
                    )
            if now >= due and self.rules.may_review_falls_due(cmd=None, now=now):  # type: ignore[attr-defined]
                self.rules.review_falls_due(cmd=None, now=now)  # type: ignore[attr-defined]
                self._sync()
                self._entry(
                    now,
                    EntryKind.REVIEW_DUE,
                    SYSTEM_ACTOR,
                    f"review of {iep.iep_id} is due today",
                    ref=iep.iep_id,
                )
            if not iep.overdue_notice_sent and now >= due + s.policy.overdue_grace:
                iep.overdue_notice_sent = True
                s.overdue = True
                step = self._entry(
                    now,
                    EntryKind.REVIEW_OVERDUE,
                    SYSTEM_ACTOR,
                    f"review of {iep.iep_id} is overdue (was due {iep.review_date})",
                    ref=iep.iep_id,
                )
                self._notify_staff(
                    step,
                    "review_overdue",
                    iep,
                    f"OVERDUE: IEP review for pupil {s.pupil_id}",
                    [
                        f"The review of {iep.iep_id} was due on {iep.review_date} "
                        "and has not been recorded."
                    ],
                    {**self._iep_facts(iep), "grace_days": s.policy.overdue_grace.days},
                )
        for c in s.open_consultations():
            if not c.reminder_sent and now >= c.reminder_at:
                c.reminder_sent = True
                step = self._entry(
                    now,
                    EntryKind.CONSULTATION_REMINDER,
                    SYSTEM_ACTOR,
                    f"reminded parents about {c.subject}",
                    ref=c.consultation_id,
                )
                self._notify(
                    step,
                    "consultation_reminder",
                    Role.PARENT,
                    c.unanswered(),
                    f"Reminder: please reply by {self._day(c.deadline)}",
                    [
                        f"We have not yet heard from you about: {c.subject}.",
                        f"Reply to consultation {c.consultation_id} by {self._day(c.deadline)}.",
                    ],
                    {
                        "consultation_id": c.consultation_id,
                        "subject": c.subject,
                        "opened_on": self._day(c.opened_at),
                        "reply_by": self._day(c.deadline),
                    },
                )
            if now >= c.deadline:
                for parent_id in c.unanswered():
                    c.responses.append(
                        ParentResponse(
                            parent_id=parent_id, reply=ParentReply.NO_RESPONSE, comments="", at=now
                        )
                    )
                c.status = ConsultationStatus.LAPSED
                self._entry(
                    now,
                    EntryKind.CONSULTATION_LAPSED,
                    SYSTEM_ACTOR,
                    f"no response by the deadline to {c.subject}",
                    ref=c.consultation_id,
                )
                self._settle(c, now)
        for r in s.open_referrals():
            if now >= r.next_chase_at:
                r.chases += 1
                r.next_chase_at = r.next_chase_at + s.policy.referral_chase_interval
                step = self._entry(
                    now,
                    EntryKind.REFERRAL_CHASED,
                    SYSTEM_ACTOR,
                    f"chased {r.kind.value} referral (chase {r.chases})",
                    ref=r.referral_id,
                )
                self._notify(
                    step,
                    "referral_chase",
                    Role.SPECIALIST,
                    [r.specialist_id],
                    f"Chase: assessment for pupil {s.pupil_id} ({r.referral_id})",
                    [
                        f"Requested {self._day(r.requested_at)}; not yet received.",
                        f"Question: {r.question}",
                    ],
                    {
                        "referral_id": r.referral_id,
                        "kind": r.kind.value,
                        "question": r.question,
                        "requested_on": self._day(r.requested_at),
                        "chase": r.chases,
                    },
                )
                if r.chases == 2:
                    self._notify(
                        step,
                        "referral_escalated",
                        Role.SENCO,
                        [s.senco_id],
                        f"Referral {r.referral_id} still open after two chases",
                        [
                            f"The {r.kind.value} referral requested "
                            f"{self._day(r.requested_at)} has not been answered."
                        ],
                        {
                            "referral_id": r.referral_id,
                            "kind": r.kind.value,
                            "specialist_id": r.specialist_id,
                            "requested_on": self._day(r.requested_at),
                            "chase": r.chases,
                        },
                    )
        return self.state.step != before

    # -- helpers --------------------------------------------------------------------------

    def referral(self, referral_id: str) -> Referral | None:
        return self.rules.referral(referral_id)

    def consultation(self, consultation_id: str) -> Consultation | None:
        return next(
            (c for c in self.state.consultations if c.consultation_id == consultation_id), None
        )

    def _stage_decision(
        self,
        trigger: str,
        cmd: Any,
        now: datetime,
        summary: str,
        reason: str,
        triggers: list[Trigger],
    ) -> ActionResult:
        before = self.state.stage
        self._fire(trigger, cmd, now)
        step = self._next_step()
        self._record(
            step,
            now,
            EntryKind.DECISION,
            cmd.actor,
            summary,
            reason=reason,
            triggers=list(triggers),
            before=before,
            after=self.state.stage,
        )
        self._after_stage_change(step, now, before, getattr(cmd, "iep", None), summary)
        return self._result(step, summary)

    def _after_stage_change(
        self, step: int, now: datetime, before: Stage, iep: IepInput | None, subject: str
    ) -> None:
        s = self.state
        if iep is not None:
            self._agree_iep(step, now, iep)
        if s.stage is Stage.MONITORING:
            self._retire_iep()
        if s.stage is Stage.CLOSED:
            self._retire_iep()
            s.closed_at = now
            for r in s.open_referrals():
                r.status = ReferralStatus.WITHDRAWN
            for c in s.open_consultations():
                c.status = ConsultationStatus.WITHDRAWN
                c.decides_phase = False
            # Nothing is left to decide: parents are told, not consulted.
            self._notify(
                step,
                "closure",
                Role.PARENT,
                list(s.parent_ids),
                f"Your child's SEN support has ended: {subject}",
                [
                    f"Decision: {subject}.",
                    f"No reply is needed. Contact the SENCO, {s.senco_id}, with any questions.",
                ],
                {
                    "decision": subject,
                    "decided_on": self._day(now),
                    "close_reason": s.close_reason.value if s.close_reason else "",
                },
            )
            return
        elif s.iep is not None and s.review_due_at is not None and s.review_due_at <= now:
            self._reschedule_review(now)  # reviewed without a new plan: next review from today
        self._consult_parents(step, now, subject, decides_phase=s.phase is WAIT_P)

    def _agree_iep(self, step: int, now: datetime, spec: IepInput) -> None:
        s = self.state
        due, review_date = self._review_due(now, spec.review_date)
        if s.iep is not None:
            s.past_ieps.append(s.iep)
        s.iep = Iep(
            iep_id=f"iep-{step}",
            targets=list(spec.targets),
            strategies=list(spec.strategies),
            provision=list(spec.provision),
            review_date=review_date,
            responsible=list(spec.responsible),
            agreed_at=now,
            stage=s.stage,
        )
        s.review_due_at = due
        s.next_review_date = review_date
        s.overdue = False

    def _reschedule_review(self, now: datetime) -> None:
        s = self.state
        assert s.iep is not None
        s.review_due_at, s.iep.review_date = self._review_due(now, None)
        s.next_review_date = s.iep.review_date
        s.iep.reminder_sent = s.iep.overdue_notice_sent = False
        s.overdue = False

    def _review_due(self, now: datetime, review_date: date | None) -> tuple[datetime, date]:
        s = self.state
        policy = s.policy
        if review_date is not None:
            return policy.due_instant(review_date), review_date
        if policy.short_clock:
            due = now + policy.review_interval
            return due, policy.local_date(due)
        review_date = min(
            policy.local_date(now + policy.review_interval),
            policy.latest_review_date(policy.local_date(now), s.early_years),
        )
        return policy.due_instant(review_date), review_date

    def _retire_iep(self) -> None:
        s = self.state
        if s.iep is not None:
            s.past_ieps.append(s.iep)
        s.iep = None
        s.review_due_at = None
        s.next_review_date = None
        s.overdue = False

    def _consult_parents(self, step: int, now: datetime, subject: str, decides_phase: bool) -> None:
        s = self.state
        # A newer stage decision supersedes the phase hold of an older one (it stays open).
        if decides_phase:
            for c in s.open_consultations():
                c.decides_phase = False
        consultation = Consultation(
            consultation_id=f"consultation-{step}",
            subject=subject,
            step=step,
            parent_ids=list(s.parent_ids),
            opened_at=now,
            deadline=now + s.policy.consultation_deadline,
            reminder_at=now + s.policy.consultation_reminder_after,
            decides_phase=decides_phase,
        )
        s.consultations.append(consultation)
        self._entry(
            now,
            EntryKind.CONSULTATION_OPENED,
            SYSTEM_ACTOR,
            f"parents consulted on {subject}",
            ref=consultation.consultation_id,
            bump=False,
            step=step,
        )
        lines = [f"Decision: {subject}.", f"Stage: {s.stage_label}."]
        if s.iep is not None and s.stage is not Stage.CLOSED:
            lines.append(f"Plan {s.iep.iep_id}, next review on {s.iep.review_date}.")
            lines += [
                f"Target: {t.description} (success: {t.success_criterion})" for t in s.iep.targets
            ]
        lines.append(
            f"Please reply to consultation {consultation.consultation_id} "
            f"by {self._day(consultation.deadline)} (agree, disagree or ask to meet)."
        )
        decided = next((e for e in s.timeline if e.step == step and e.kind in DECIDING), None)
        facts: dict[str, Any] = {
            "consultation_id": consultation.consultation_id,
            "decision": subject,
            "reason": decided.reason if decided else "",
            "needs": [TRIGGER_WORDS[t] for t in decided.triggers] if decided else [],
            "trigger_codes": [t.value for t in decided.triggers] if decided else [],
            "decided_by": decided.actor.role.value if decided else "",
            "decided_on": self._day(now),
            "reply_by": self._day(consultation.deadline),
        }
        if s.iep is not None:
            facts.update(self._iep_facts(s.iep))
        self._notify(
            step,
            "consultation",
            Role.PARENT,
            consultation.parent_ids,
            f"Your child's SEN support: {subject}",
            lines,
            facts,
        )

    def _settle(self, consultation: Consultation, now: datetime) -> None:
        if consultation.decides_phase:
            consultation.decides_phase = False
            if self.rules.may_parents_settled(cmd=None, now=now):  # type: ignore[attr-defined]
                self.rules.parents_settled(cmd=None, now=now)  # type: ignore[attr-defined]
                self._sync()

    def _notify_staff(
        self,
        step: int,
        kind: str,
        iep: Iep,
        subject: str,
        lines: list[str],
        facts: dict[str, Any],
    ) -> None:
        staff = list(dict.fromkeys([self.state.senco_id, *iep.responsible]))
        self._notify(step, kind, Role.SENCO, staff, subject, lines, facts)

    def _notify(
        self,
        step: int,
        kind: str,
        role: Role,
        recipients: list[str],
        subject: str,
        lines: list[str],
        facts: dict[str, Any] | None = None,
    ) -> None:
        """Queue a message. ``lines`` is the plain summary; ``facts`` feed the letter templates
        (what changed, what is due when), with the pupil's reference and who to contact."""
        s = self.state
        common = {
            "pupil_ref": s.pupil_id,
            "school": s.school_id,
            "senco": s.senco_id,
            "stage": s.stage_label,
        }
        for recipient in recipients:
            s.outbox.append(
                Notice(
                    key=f"{step}-{kind}-{recipient}",
                    kind=kind,
                    recipient_role=role,
                    recipient_id=recipient,
                    subject=subject,
                    lines=list(lines),
                    facts={**common, **(facts or {})},
                )
            )

    def _iep_facts(self, iep: Iep) -> dict[str, Any]:
        return {
            "iep_id": iep.iep_id,
            "review_date": iep.review_date.isoformat(),
            "targets": [
                {"description": t.description, "criterion": t.success_criterion}
                for t in iep.targets
            ],
            "strategies": list(iep.strategies),
            "provision": list(iep.provision),
            "responsible": list(iep.responsible),
        }

    def _day(self, instant: datetime) -> str:
        policy = self.state.policy
        if policy.short_clock:
            return instant.astimezone(policy.zone()).strftime("%Y-%m-%d %H:%M")
        return policy.local_date(instant).isoformat()

    def _next_step(self) -> int:
        self.state.step += 1
        return self.state.step

    def _entry(
        self,
        now: datetime,
        kind: EntryKind,
        actor: Actor,
        summary: str,
        *,
        reason: str = "",
        after: Stage | None = None,
        ref: str | None = None,
        bump: bool = True,
        step: int | None = None,
    ) -> int:
        step = self._next_step() if bump or step is None else step
        self._record(step, now, kind, actor, summary, reason=reason, after=after, ref=ref)
        return step

    def _record(
        self,
        step: int,
        now: datetime,
        kind: EntryKind,
        actor: Actor,
        summary: str,
        *,
        reason: str = "",
        triggers: list[Trigger] | None = None,
        before: Stage | None = None,
        after: Stage | None = None,
        ref: str | None = None,
    ) -> None:
        self.state.timeline.append(
            TimelineEntry(
                step=step,
                at=now,
                kind=kind,
                actor=actor,
                summary=summary,
                reason=reason,
                triggers=list(triggers or []),
                stage_before=before,
                stage_after=after,
                ref=ref,
            )
        )

    def _sync(self) -> None:
        s = self.state
        s.machine_state = self.rules.machine_state
        s.stage, s.phase = STATES[s.machine_state]
        label = EARLY_YEARS_LABELS.get(s.stage) if s.early_years else None
        s.stage_label = label or s.stage.value

    def _result(self, step: int, summary: str, ref: str | None = None) -> ActionResult:
        s = self.state
        return ActionResult(
            step=step,
            stage=s.stage,
            stage_label=s.stage_label,
            phase=s.phase.value,
            summary=summary,
            ref=ref,
        )


def check_start(cmd: StartJourneyInput) -> None:
    check_opaque_id(cmd.pupil_id, "pupil id")
    check_opaque_id(cmd.school_id, "school id")
    check_opaque_id(cmd.senco_id, "SENCO id")
    if not cmd.parent_ids:
        raise Refused("at least one parent or carer must be consulted")
    for parent_id in cmd.parent_ids:
        check_opaque_id(parent_id, "parent id")
    if cmd.actor.role not in (Role.SENCO, Role.CLASS_TEACHER):
        raise Refused("only a SENCO or class teacher may raise a concern")
    if not _text(cmd.concern):
        raise Refused("describe the concern")


def _text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_TEXT
