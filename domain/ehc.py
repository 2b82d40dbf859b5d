"""The 2014 Code's EHC needs assessment: the school's request and the local authority's steps.

From SEN Support the SENCO asks the local authority for an assessment; only the authority
then decides whether to assess, asks for advice, issues a draft plan or decides not to issue
one, issues the final plan, and pauses or resumes the statutory clock for the reasons the
regulations allow. Each step meets (or, asking for advice, sets) a deadline of the clock in
``domain.ehc_clock``; the timer family ``_ehc_deadline_timers`` warns ahead of each deadline
and records those missed, or the end of the parents' time to comment on a draft.

Pure: no I/O, no clocks. ``now`` comes in as an argument.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain import ehc_clock, notices
from domain.commands import (
    ActionResult,
    EhcAdviceReceivedInput,
    EhcAdviceRequestInput,
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    IepInput,
    RequestEhcAssessmentInput,
)
from domain.decisions import PLAN_KINDS, JourneyBase
from domain.machine import EPL
from domain.model import (
    SYSTEM_ACTOR,
    DeadlineKind,
    DeadlineStatus,
    EhcAssessment,
    EhcOutcome,
    EhcPause,
    EntryKind,
    Iep,
    Stage,
)


class EhcSteps(JourneyBase):
    """The EHC needs assessment's actions and timers, part of ``domain.journey.Journey``."""

    def request_ehc_assessment(self, cmd: RequestEhcAssessmentInput, now: datetime) -> ActionResult:
        s = self.state
        ehc = EhcAssessment(
            assessment_id=f"ehc-{s.step + 1}",
            local_authority_id=cmd.local_authority_id,
            requested_at=now,
            requested_by=cmd.actor,
        )

        def start_clock() -> None:
            s.ehc_assessments.append(ehc)
            ehc_clock.start(ehc, s.policy, now)

        result = self._stage_decision(
            "request_ehc_assessment",
            cmd,
            now,
            "asked the local authority for an EHC needs assessment",
            cmd.evidence,
            [],
            prepare=start_clock,
        )
        notices.ehc_request(s, result.step, ehc, "ehc_request", "EHC needs assessment requested")
        return result

    def ehc_decide(self, cmd: EhcDecisionInput, now: datetime) -> ActionResult:
        self.check("ehc_decide", cmd, now)
        ehc = self._open_ehc()

        def decided() -> None:
            ehc.decided_to_assess = cmd.assess
            ehc_clock.meet(ehc, "decision", now)
            if not cmd.assess:
                ehc.outcome = EhcOutcome.NOT_ASSESSED

        if cmd.assess:
            decided()
            return self._milestone(
                cmd, now, ehc, "the authority decided to assess", cmd.reason, tell_parents=True
            )
        return self._stage_decision(
            "ehc_decide",
            cmd,
            now,
            "the authority decided not to assess",
            cmd.reason,
            [],
            prepare=decided,
        )

    def ehc_request_advice(self, cmd: EhcAdviceRequestInput, now: datetime) -> ActionResult:
        self.check("ehc_request_advice", cmd, now)
        ehc = self._open_ehc()
        advice_id = f"advice-{self.state.step + 1}"
        ehc_clock.add_deadline(
            ehc,
            self.state.policy,
            now,
            advice_id,
            DeadlineKind.ADVICE,
            f"{cmd.kind} advice from {cmd.adviser_id}",
            self.state.policy.ehc_advice,
            ref=cmd.adviser_id,
        )
        result = self._milestone(
            cmd, now, ehc, f"asked {cmd.adviser_id} for {cmd.kind} advice", "", ref=advice_id
        )
        deadline = ehc.deadline(advice_id)
        assert deadline is not None
        notices.ehc_advice_request(
            self.state, result.step, advice_id, cmd.adviser_id, cmd.kind, deadline.due_on
        )
        return ActionResult(**{**result.__dict__, "ref": advice_id})

    def ehc_advice_received(self, cmd: EhcAdviceReceivedInput, now: datetime) -> ActionResult:
        self.check("ehc_advice_received", cmd, now)
        ehc = self._open_ehc()
        ehc_clock.meet(ehc, cmd.advice_id, now)
        return self._milestone(cmd, now, ehc, f"advice {cmd.advice_id} received", "")

    def ehc_draft(self, cmd: EhcDraftInput, now: datetime) -> ActionResult:
        self.check("ehc_draft", cmd, now)
        ehc = self._open_ehc()
        if not cmd.issue:

            def not_issued() -> None:
                ehc_clock.meet(ehc, "draft", now)
                ehc.outcome = EhcOutcome.NOT_ISSUED

            return self._stage_decision(
                "ehc_draft",
                cmd,
                now,
                "the authority decided not to issue a plan",
                cmd.reason,
                [],
                prepare=not_issued,
            )
        assert cmd.plan is not None  # with_iep
        self._fire("ehc_draft", cmd, now)
        ehc_clock.meet(ehc, "draft", now)
        ehc.draft_issued_at = now
        ehc.draft_plan = self._plan(cmd.plan, now, f"draft-{self.state.step + 1}", EPL)
        step = self._next_step()
        self._record(
            step,
            now,
            EntryKind.EHC_MILESTONE,
            cmd.actor,
            "draft EHC plan issued",
            reason=cmd.reason,
        )
        self._consult_parents(
            step,
            now,
            "the draft EHC plan",
            decides_phase=False,
            deadline=self.state.policy.ehc_parent_comments,
        )
        consultation = self.state.consultations[-1]
        window = ehc_clock.add_deadline(
            ehc,
            self.state.policy,
            now,
            "parent-comments",
            DeadlineKind.PARENT_COMMENTS,
            "parents' comments on the draft plan",
            self.state.policy.ehc_parent_comments,
            ref=consultation.consultation_id,
        )
        window.due_at = consultation.deadline  # the same instant the consultation lapses
        window.warned = True  # parents get the consultation reminder, not a deadline warning
        return self._result(step, "draft EHC plan issued", consultation.consultation_id)

    def ehc_finalise(self, cmd: EhcFinalInput, now: datetime) -> ActionResult:
        ehc = self._open_ehc()

        def issued() -> None:
            ehc_clock.meet(ehc, "final", now)
            ehc.outcome = EhcOutcome.PLAN_ISSUED

        return self._stage_decision(
            "ehc_finalise",
            cmd,
            now,
            "the authority issued the final EHC plan",
            cmd.reason,
            [],
            iep=cmd.plan or _plan_input(ehc.draft_plan),
            prepare=issued,
        )

    def pause_ehc_clock(self, cmd: EhcPauseInput, now: datetime) -> ActionResult:
        self._fire("pause_ehc_clock", cmd, now)
        ehc = self._open_ehc()
        ehc.pauses.append(EhcPause(reason=cmd.reason, started_at=now, actor=cmd.actor))
        step = self._entry(
            now,
            EntryKind.EHC_CLOCK_PAUSED,
            cmd.actor,
            f"EHC clock paused: {cmd.reason.value}",
            ref=ehc.assessment_id,
        )
        return self._result(step, "EHC clock paused", ehc.assessment_id)

    def resume_ehc_clock(self, cmd: EhcResumeInput, now: datetime) -> ActionResult:
        self._fire("resume_ehc_clock", cmd, now)
        ehc = self._open_ehc()
        pause = ehc.paused()
        assert pause is not None
        pause.ended_at = now
        length = ehc_clock.move_after_pause(ehc, self.state.policy, pause, now)
        step = self._entry(
            now,
            EntryKind.EHC_CLOCK_RESUMED,
            cmd.actor,
            f"EHC clock resumed after {ehc_clock.span(self.state.policy, length)} "
            f"({pause.reason.value}); "
            "deadlines moved by the same",
            ref=ehc.assessment_id,
        )
        return self._result(step, "EHC clock resumed", ehc.assessment_id)

    # -- the statutory deadlines as time passes --------------------------------------------

    def _ehc_deadline_timers(self, now: datetime) -> None:
        """The statutory deadlines of an open EHC needs assessment (none while the clock is
        paused): a warning before each, then met, lapsed (parents' comments) or breached."""
        s = self.state
        ehc = s.ehc()
        if ehc is None or ehc.paused() is not None:
            return
        for d in ehc.pending():
            if not d.warned and now >= d.warn_at and now < d.due_at:
                d.warned = True
                step = self._entry(
                    now,
                    EntryKind.EHC_DEADLINE_WARNING,
                    SYSTEM_ACTOR,
                    f"{d.description} due by {d.due_on}",
                    ref=d.deadline_id,
                )
                notices.ehc_deadline_alert(s, step, ehc, d, "ehc_deadline_warning", "due soon")
            if now >= d.due_at:
                d.warned = True
                if d.kind is DeadlineKind.PARENT_COMMENTS:
                    d.status = DeadlineStatus.LAPSED
                    self._entry(
                        now,
                        EntryKind.EHC_PARENT_COMMENTS_CLOSED,
                        SYSTEM_ACTOR,
                        "parents' 15 days to comment on the draft plan have ended",
                        ref=d.deadline_id,
                    )
                    continue
                d.status = DeadlineStatus.BREACHED
                d.breached_at = now
                step = self._entry(
                    now,
                    EntryKind.EHC_DEADLINE_BREACHED,
                    SYSTEM_ACTOR,
                    f"statutory deadline missed: {d.description} (due {d.due_on})",
                    ref=d.deadline_id,
                )
                notices.ehc_deadline_alert(
                    s, step, ehc, d, "ehc_deadline_breached", "deadline missed"
                )

    # -- helpers ---------------------------------------------------------------------------

    def _open_ehc(self) -> EhcAssessment:
        return self.rules.open_ehc()

    def _milestone(
        self,
        cmd: Any,
        now: datetime,
        ehc: EhcAssessment,
        summary: str,
        reason: str,
        ref: str | None = None,
        tell_parents: bool = False,
    ) -> ActionResult:
        """A step in the assessment that leaves the stage as it is (already checked)."""
        step = self._entry(
            now,
            EntryKind.EHC_MILESTONE,
            cmd.actor,
            summary,
            reason=reason,
            ref=ref or ehc.assessment_id,
        )
        if tell_parents:
            notices.ehc_milestone(self.state, step, summary, now)
        return self._result(step, summary, ref or ehc.assessment_id)

    def _plan(self, spec: IepInput, now: datetime, plan_id: str, stage: Stage) -> Iep:
        return Iep(
            iep_id=plan_id,
            targets=list(spec.targets),
            strategies=list(spec.strategies),
            provision=list(spec.provision),
            review_date=spec.review_date or self.state.policy.local_date(now),
            responsible=list(spec.responsible),
            agreed_at=now,
            stage=stage,
            kind=PLAN_KINDS.get(stage, "iep"),
            expected_impact=spec.expected_impact,
            pupil_views=spec.pupil_views,
        )


def _plan_input(plan: Iep | None) -> IepInput | None:
    """The draft EHC plan as the input for the final one (review date set afresh)."""
    if plan is None:
        return None
    return IepInput(
        targets=list(plan.targets),
        strategies=list(plan.strategies),
        provision=list(plan.provision),
        responsible=list(plan.responsible),
        expected_impact=plan.expected_impact,
        pupil_views=plan.pupil_views,
    )
