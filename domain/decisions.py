"""What every action of a journey shares: the machine, the timeline, a decision's aftermath.

``JourneyBase`` holds one ``JourneyState`` and its model (``domain.guards.Rules``, bound to the
shared machine at ``state.machine_state``). An action is checked (``check``: the guards give
every reason they refuse) and fired (``_fire``), and it is recorded as a numbered step of the
timeline. A stage decision then agrees the plan it brings or retires the old one, sets the next
review date, ends an EHC needs assessment the journey has left, and consults the parents (or,
on closing, tells them). ``domain.journey.Journey`` builds every action on these.

Pure: no I/O, no clocks. ``now`` comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from domain import ehc_clock, notices
from domain.commands import ActionResult, IepInput, Refused
from domain.guards import Rules
from domain.machine import ACTION_WORDS, EHC, EPL, SS, STATES, WAIT_P
from domain.model import (
    EARLY_YEARS_LABELS,
    SYSTEM_ACTOR,
    Actor,
    Consultation,
    ConsultationStatus,
    EntryKind,
    Iep,
    JourneyState,
    Referral,
    ReferralStatus,
    Stage,
    TimelineEntry,
    Trigger,
)
from domain.policy import add_months

#: What a plan agreed at each stage of the 2014 Code is called (``iep`` otherwise).
PLAN_KINDS = {SS: "sen_support_plan", EHC: "sen_support_plan", EPL: "ehc_plan"}


class JourneyBase:
    """The state, the machine's model and the steps every action takes (see the module)."""

    def __init__(self, state: JourneyState, features: frozenset[str] = frozenset()) -> None:
        self.state = state
        self.rules = Rules(state)
        #: Switched on per run by the workflow (``workflow.patched``); never stored.
        self.features = features

    # -- asking the machine ----------------------------------------------------------------

    def check(self, trigger: str, cmd: object, now: datetime) -> None:
        """Raise ``Refused`` with every reason the machine gives; change nothing."""
        self.rules.reasons = []
        if self.rules.may_trigger(trigger, cmd=cmd, now=now):
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
        self.rules.trigger(trigger, cmd=cmd, now=now)
        self._sync()

    def _sync(self) -> None:
        s = self.state
        s.machine_state = self.rules.machine_state
        s.stage, s.phase = STATES[s.machine_state]
        label = EARLY_YEARS_LABELS.get(s.stage) if s.early_years else None
        s.stage_label = label or s.stage.value

    # -- stage decisions and what follows them ---------------------------------------------

    def _stage_decision(
        self,
        trigger: str,
        cmd: Any,
        now: datetime,
        summary: str,
        reason: str,
        triggers: list[Trigger],
        iep: IepInput | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> ActionResult:
        """Fire a stage-changing trigger, run ``prepare`` (once the machine has agreed), record
        the decision, agree the plan it brings and consult the parents."""
        before = self.state.stage
        self._fire(trigger, cmd, now)
        if prepare is not None:
            prepare()
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
        self._after_stage_change(step, now, before, iep or getattr(cmd, "iep", None), summary)
        return self._result(step, summary)

    def _after_stage_change(
        self, step: int, now: datetime, before: Stage, iep: IepInput | None, subject: str
    ) -> None:
        s = self.state
        last = s.ehc_assessments[-1] if s.ehc_assessments else None
        if last is not None and last.ended_at is None and s.stage is not EHC:
            ehc_clock.end(last, now)
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
            notices.closure(s, step, subject, now)
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
            kind=PLAN_KINDS.get(s.stage, "iep"),
            expected_impact=spec.expected_impact,
            pupil_views=spec.pupil_views,
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
        if s.stage is EPL:  # the annual review of an EHC plan
            if policy.short_clock:
                due = now + policy.ehc_review_interval
                return due, policy.local_date(due)
            review_date = add_months(policy.local_date(now), policy.max_review_months_ehc_plan)
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

    # -- consulting parents ----------------------------------------------------------------

    def _consult_parents(
        self,
        step: int,
        now: datetime,
        subject: str,
        decides_phase: bool,
        deadline: timedelta | None = None,
    ) -> None:
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
            deadline=now + (deadline or s.policy.consultation_deadline),
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
        notices.consultation_letter(s, step, consultation)

    def _settle(self, consultation: Consultation, now: datetime) -> None:
        if consultation.decides_phase:
            consultation.decides_phase = False
            if self.rules.may_trigger("parents_settled", cmd=None, now=now):
                self.rules.trigger("parents_settled", cmd=None, now=now)
                self._sync()

    # -- the timeline ----------------------------------------------------------------------

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

    # -- finding records -------------------------------------------------------------------

    def referral(self, referral_id: str) -> Referral | None:
        return self.rules.referral(referral_id)

    def consultation(self, consultation_id: str) -> Consultation | None:
        return next(
            (c for c in self.state.consultations if c.consultation_id == consultation_id), None
        )
