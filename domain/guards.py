"""The guards of the journey's machine: the rules a school action must meet, and why it fails.

``Rules`` is the machine's model (``domain.machine.bind``): it holds ``machine_state`` and one
method per guard named in ``TRANSITIONS``. Each guard reads the command from the event; when it
refuses it records the reason, so the person asking gets a reason, not just "no".

Pure: no I/O, no clocks. ``now`` comes in with the event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from transitions import EventData

from domain.commands import (
    MAX_TEXT,
    AssessmentCompletedInput,
    EhcAdviceRequestInput,
    EhcPauseInput,
    IepInput,
    OpenSenSupportInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    check_opaque_id,
)
from domain.machine import ACTION_WORDS, EHC, EPL, SA, SAS, bind
from domain.model import (
    Actor,
    ConsultationStatus,
    DeadlineKind,
    DeadlineStatus,
    EhcAssessment,
    JourneyState,
    PauseReason,
    Referral,
    ReferralStatus,
    ReviewOutcome,
    Role,
    SenType,
    Trigger,
)
from domain.policy import CODE_2014, add_months


class Rules:
    """The machine's model: holds ``machine_state`` and the guards, which say why they refuse."""

    machine_state: str
    #: Set by ``bind``: fire a trigger by name, or ask whether it may fire, with the arguments
    #: the guards read from the event (transitions' own ``trigger`` and ``may_trigger``).
    trigger: Callable[..., bool]
    may_trigger: Callable[..., bool]

    def __init__(self, state: JourneyState) -> None:
        self.state = state
        self.reasons: list[str] = []
        bind(self, state.machine_state)

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
        if not has_text(cmd.summary):
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
        if has_text(getattr(self._cmd(event), "evidence", "")):
            return True
        return self._refuse("give the evidence for the decision")

    def with_reason(self, event: EventData) -> bool:
        if has_text(getattr(self._cmd(event), "reason", "")):
            return True
        return self._refuse("give a reason for the decision")

    def with_note(self, event: EventData) -> bool:
        if has_text(self._cmd(event).note):
            return True
        return self._refuse("a progress note cannot be empty")

    def with_close_reason(self, event: EventData) -> bool:
        if getattr(self._cmd(event), "close_reason", None) is not None:
            return True
        return self._refuse("say why the journey closes (needs_met, left_school, moved_school)")

    def _iep_input(self, event: EventData) -> IepInput | None:
        cmd = self._cmd(event)
        return cast(
            IepInput | None,
            getattr(cmd, "iep", None)
            or getattr(cmd, "new_iep", None)
            or getattr(cmd, "plan", None),
        )

    def with_iep(self, event: EventData) -> bool:
        iep = self._iep_input(event)
        if iep is None:
            return self._refuse("an IEP is required: targets, strategies, provision, staff")
        return self._iep_ok(iep, event.kwargs["now"], self._is_ehc_plan(event))

    def with_optional_iep(self, event: EventData) -> bool:
        iep = self._iep_input(event)
        return iep is None or self._iep_ok(iep, event.kwargs["now"], self._is_ehc_plan(event))

    def _is_ehc_plan(self, event: EventData) -> bool:
        """Whether the plan a command brings is an EHC plan (reviewed annually)."""
        name = event.event.name
        if name == "ehc_finalise":
            return True
        outcome = getattr(self._cmd(event), "outcome", None)
        return (
            self.state.stage is EPL
            and name == "record_review"
            and outcome is not None
            and (outcome is ReviewOutcome.CONTINUE)
        )

    def _iep_ok(self, iep: IepInput, now: datetime, ehc_plan: bool = False) -> bool:
        if not iep.targets or not all(
            has_text(t.description) and has_text(t.success_criterion) for t in iep.targets
        ):
            return self._refuse("an IEP needs at least one target, each with a success criterion")
        if not iep.strategies or not all(has_text(s) for s in iep.strategies):
            return self._refuse("an IEP needs at least one teaching strategy")
        if not iep.provision or not all(has_text(p) for p in iep.provision):
            return self._refuse("an IEP needs the provision to be put in place")
        if not iep.responsible or not all(has_text(r) for r in iep.responsible):
            return self._refuse("an IEP needs the staff responsible for it")
        policy = self.state.policy
        if policy.is_2014:
            if not has_text(iep.expected_impact):
                return self._refuse("a plan needs the expected impact on progress")
            if not has_text(iep.pupil_views):
                return self._refuse("a plan records the pupil's own views")
        if iep.review_date is not None:
            today = policy.local_date(now)
            latest = add_months(today, policy.review_months(self.state.early_years, ehc_plan))
            if iep.review_date <= today:
                return self._refuse(f"the review date {iep.review_date} is not after today")
            if ehc_plan and iep.review_date > latest:
                return self._refuse(
                    f"the review date {iep.review_date} is later than {latest}: an EHC plan "
                    "is reviewed at least every 12 months"
                )
            if policy.is_2014 and iep.review_date > latest:
                return self._refuse(
                    f"the review date {iep.review_date} is later than {latest}: parents meet "
                    "the school at least three times a year, so plans are reviewed termly"
                )
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
        if not has_text(cmd.question):
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
        if not all(has_text(p.progress) for p in cmd.progress):
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
        return self.state.stage in (SAS, EHC) or bool(self.state.open_referrals())

    def when_last_open_referral(self, event: EventData) -> bool:
        referral_id = self._cmd(event).referral_id
        return [r.referral_id for r in self.state.open_referrals()] == [referral_id]

    # -- the 2014 Code ----------------------------------------------------------------------

    def under_2001(self, event: EventData) -> bool:
        if not self.state.policy.is_2014:
            return True
        if event.event.name == "move_to_code_2014":
            return self._refuse("the journey already follows the 2014 Code (code_2014)")
        return self._refuse(
            f"this journey follows the 2014 Code, which has no {ACTION_WORDS[event.event.name]}"
            ": use SEN Support and the EHC needs assessment"
        )

    def under_2014(self, event: EventData) -> bool:
        if self.state.policy.is_2014:
            return True
        return self._refuse(
            f"this journey follows the 2001 Code: {ACTION_WORDS[event.event.name]} needs "
            "code_2014 (an admin moves journeys with `senflow migrate --to code_2014`)"
        )

    def by_local_authority(self, event: EventData) -> bool:
        if self._actor(event).role is Role.LOCAL_AUTHORITY:
            return True
        return self._refuse(f"only the local authority may {ACTION_WORDS[event.event.name]}")

    def by_admin(self, event: EventData) -> bool:
        if self._actor(event).role is Role.ADMIN:
            return True
        return self._refuse(f"only an admin may {ACTION_WORDS[event.event.name]}")

    def with_need(self, event: EventData) -> bool:
        cmd: OpenSenSupportInput = self._cmd(event)
        if not isinstance(cmd.primary_need, SenType):
            return self._refuse("give the primary need as a census SEN type code")
        if cmd.secondary_need is not None and (
            not isinstance(cmd.secondary_need, SenType) or cmd.secondary_need is cmd.primary_need
        ):
            return self._refuse("the secondary need must be another census SEN type code")
        return True

    def with_local_authority(self, event: EventData) -> bool:
        try:
            check_opaque_id(self._cmd(event).local_authority_id, "local authority id")
        except Refused as err:
            return self._refuse(str(err))
        return True

    def to_code_2014(self, event: EventData) -> bool:
        if self._cmd(event).to == CODE_2014:
            return True
        return self._refuse(f"journeys move to {CODE_2014} only")

    def with_transfer_authority(self, event: EventData) -> bool:
        if self.state.stage is not SAS:
            return True
        try:
            check_opaque_id(self._cmd(event).local_authority_id, "local authority id")
        except Refused:
            return self._refuse(
                "a statutory assessment moves to the EHC timeline: give the local authority's id"
            )
        return True

    def escalation_is_an_ehc_request(self, event: EventData) -> bool:
        return self._refuse(
            "under the 2014 Code a review does not escalate: record the review, then request "
            "an EHC needs assessment"
        )

    def when_yes(self, event: EventData) -> bool:
        cmd = self._cmd(event)
        return bool(getattr(cmd, "assess", None) is True or getattr(cmd, "issue", None) is True)

    def when_no(self, event: EventData) -> bool:
        cmd = self._cmd(event)
        return bool(getattr(cmd, "assess", None) is False or getattr(cmd, "issue", None) is False)

    def open_ehc(self) -> EhcAssessment:
        ehc = self.state.ehc()
        assert ehc is not None, "an ehc_needs_assessment stage always has an open assessment"
        return ehc

    def ehc_decision_pending(self, event: EventData) -> bool:
        if self.open_ehc().decided_to_assess is None:
            return True
        return self._refuse("the authority has already decided whether to assess")

    def ehc_assessing(self, event: EventData) -> bool:
        if self.open_ehc().decided_to_assess:
            return True
        return self._refuse("the authority has not yet decided to assess")

    def ehc_before_draft(self, event: EventData) -> bool:
        if self.open_ehc().draft_issued_at is None:
            return True
        return self._refuse("the draft plan has already been issued")

    def ehc_draft_issued(self, event: EventData) -> bool:
        if self.open_ehc().draft_issued_at is not None:
            return True
        return self._refuse("issue a draft plan first: parents comment on it before it is final")

    def after_parent_comments(self, event: EventData) -> bool:
        window = next(
            (d for d in self.open_ehc().deadlines if d.kind is DeadlineKind.PARENT_COMMENTS), None
        )
        if window is None or window.status is not DeadlineStatus.PENDING:
            return True
        consultation = next(
            (c for c in self.state.consultations if c.consultation_id == window.ref), None
        )
        if consultation is not None and consultation.status is not ConsultationStatus.OPEN:
            return True
        return self._refuse(
            f"parents have until {window.due_on} to comment on the draft (15 calendar days)"
        )

    def with_adviser(self, event: EventData) -> bool:
        cmd: EhcAdviceRequestInput = self._cmd(event)
        try:
            check_opaque_id(cmd.adviser_id, "adviser id")
            check_opaque_id(cmd.kind, "kind of advice")
        except Refused as err:
            return self._refuse(str(err))
        return True

    def with_open_advice(self, event: EventData) -> bool:
        advice_id = self._cmd(event).advice_id
        ehc = self.state.ehc()
        deadline = ehc.deadline(advice_id) if ehc is not None else None
        if deadline is None or deadline.kind is not DeadlineKind.ADVICE:
            return self._refuse(f"no advice request {advice_id!r}")
        if deadline.met_at is not None:
            return self._refuse(f"advice {advice_id} is already recorded")
        return True

    def ehc_clock_running(self, event: EventData) -> bool:
        cmd: EhcPauseInput = self._cmd(event)
        if self.open_ehc().paused() is not None:
            return self._refuse("the EHC clock is already paused")
        if not isinstance(cmd.reason, PauseReason):
            return self._refuse("give the reason the regulations allow for the pause")
        return True

    def ehc_clock_paused(self, event: EventData) -> bool:
        if self.open_ehc().paused() is not None:
            return True
        return self._refuse("the EHC clock is not paused")


def has_text(value: object) -> bool:
    """A non-blank string within the length every text field is held to."""
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= MAX_TEXT
