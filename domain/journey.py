"""One pupil's journey: the decisions, timers and notices of the SEN Code of Practice.

A ``Journey`` wraps one ``JourneyState`` and binds its model to the shared machine
(``domain.machine``) at ``state.machine_state``; it never stores the Machine in the state. Every
school action is checked by asking the machine with the command, and the guards record *why* a
move is refused so the person asking gets a reason, not just "no".

Pure: no I/O, no clocks. ``now`` comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from domain import ehc_clock, notices
from domain.commands import (
    MAX_TEXT,
    ActionResult,
    AssessmentCompletedInput,
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
    MigrateInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
    ParentRespondedInput,
    RecordNoteInput,
    RecordReviewInput,
    ReferInput,
    Refused,
    RequestEhcAssessmentInput,
    RequestStatutoryAssessmentInput,
    StartJourneyInput,
    StepDownInput,
    check_opaque_id,
)
from domain.guards import Rules, has_text
from domain.machine import (
    ACTION_WORDS,
    EHC,
    EPL,
    SAS,
    SS,
    STATES,
    WAIT_P,
)
from domain.model import (
    EARLY_YEARS_LABELS,
    SYSTEM_ACTOR,
    Actor,
    Consultation,
    ConsultationStatus,
    DeadlineKind,
    DeadlineStatus,
    EhcAssessment,
    EhcOutcome,
    EhcPause,
    EntryKind,
    Iep,
    JourneyState,
    ParentReply,
    ParentResponse,
    Phase,
    Referral,
    ReferralStatus,
    Review,
    ReviewOutcome,
    Role,
    SenType,
    Stage,
    TimelineEntry,
    Trigger,
)
from domain.policy import CODE_2014, add_months

#: Behaviour added after journeys were recorded. The workflow switches each on with
#: ``workflow.patched`` so that histories recorded before it replay unchanged.
FEATURE_REVIEW_INVITATIONS = "review-invitations"


class Journey:
    """One pupil's journey: rules, decisions, timers and the notices they owe.

    Each public action first calls ``check`` (read-only, used by update validators) and then
    changes ``self.state``; a refused action raises ``Refused`` and changes nothing.
    """

    def __init__(self, state: JourneyState, features: frozenset[str] = frozenset()) -> None:
        self.state = state
        self.rules = Rules(state)
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
        notices.referral_request(self.state, step, referral)
        self._consult_parents(step, now, f"referral to {cmd.kind.value}", decides_phase=False)
        return self._result(
            step, f"referral {referral.referral_id} requested", referral.referral_id
        )

    # -- the 2014 Code: SEN Support -----------------------------------------------------------

    def open_sen_support(self, cmd: OpenSenSupportInput, now: datetime) -> ActionResult:
        self.check("open_sen_support", cmd, now)  # refuse before touching anything
        self.state.primary_need = cmd.primary_need
        self.state.secondary_need = cmd.secondary_need
        need = cmd.primary_need.value + (
            f"/{cmd.secondary_need.value}" if cmd.secondary_need else ""
        )
        return self._stage_decision(
            "open_sen_support",
            cmd,
            now,
            f"opened SEN Support (need {need})",
            cmd.evidence,
            [],
            iep=cmd.plan,
        )

    # -- the 2014 Code: the EHC needs assessment and its statutory clock ----------------------

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

    # -- the 2014 Code: moving a 2001 journey in flight ---------------------------------------

    def move_to_code_2014(self, cmd: MigrateInput, now: datetime) -> ActionResult:
        self.check("move_to_code_2014", cmd, now)
        s = self.state
        before, label_before = s.stage, s.stage_label
        self._fire("move_to_code_2014", cmd, now)
        s.policy = s.policy.for_code(CODE_2014)
        self._sync()
        step = self._next_step()
        summary = f"moved to the 2014 Code: {label_before} became {s.stage_label}"
        if s.stage is not Stage.MONITORING:
            s.primary_need = self._assessed_need()
            summary += f" (need {s.primary_need.value})"
            if s.iep is not None:
                s.iep.kind = "sen_support_plan"  # carried over; its review date is kept
        self._record(
            step,
            now,
            EntryKind.DECISION,
            cmd.actor,
            summary,
            reason=cmd.reason,
            before=before,
            after=s.stage,
        )
        if s.stage is EHC:
            requested = next(
                (e.at for e in reversed(s.timeline) if e.stage_after is SAS and e.stage_before),
                now,
            )
            ehc = EhcAssessment(
                assessment_id=f"ehc-{step}",
                local_authority_id=cmd.local_authority_id,
                requested_at=now,
                requested_by=cmd.actor,
                transferred_from=requested,
            )
            s.ehc_assessments.append(ehc)
            ehc_clock.start(ehc, s.policy, now)
            notices.ehc_request(s, step, ehc, "ehc_request", "statutory assessment transferred")
        if before is not Stage.MONITORING:
            notices.code_2014_transfer(s, step, summary, label_before, now)
        return self._result(step, summary)

    def _assessed_need(self) -> SenType:
        """The need a specialist recorded (the latest), or NSA: no specialist assessment."""
        needs = [
            r.need
            for r in self.state.referrals
            if r.status is ReferralStatus.COMPLETED and r.need is not None
        ]
        return needs[-1] if needs else SenType.NSA

    # -- the EHC clock --------------------------------------------------------------------------

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

    # -- replies (signals: never raise out of the workflow, see apply_reply) -----------------

    def complete_assessment(self, cmd: AssessmentCompletedInput, now: datetime) -> ActionResult:
        self._fire("complete_assessment", cmd, now)
        referral = self.referral(cmd.referral_id)
        assert referral is not None
        referral.status = ReferralStatus.COMPLETED
        referral.completed_at = now
        referral.summary = cmd.summary
        referral.recommendations = list(cmd.recommendations)
        referral.need = cmd.need if isinstance(cmd.need, SenType) else None
        step = self._entry(
            now,
            EntryKind.ASSESSMENT_COMPLETED,
            cmd.actor,
            f"{referral.kind.value} assessment completed",
            reason=cmd.summary,
            ref=referral.referral_id,
        )
        notices.assessment_received(self.state, step, referral, now)
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
            ehc = self.state.ehc()
            window = next(
                (
                    d
                    for d in (ehc.deadlines if ehc else [])
                    if d.ref == consultation.consultation_id
                ),
                None,
            )
            if ehc is not None and window is not None:
                ehc_clock.meet(ehc, window.deadline_id, now)  # parents have commented on the draft
        if cmd.reply is not ParentReply.AGREE:
            notices.parent_reply(self.state, step, consultation, cmd)
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
        candidates += ehc_clock.wakeups(s.ehc())
        return min(candidates) if candidates else None

    def on_time(self, now: datetime) -> bool:
        """Apply everything due at ``now``. Returns whether anything changed.

        The families run in this order, always: the notices they queue and the timeline steps
        they number are what committed histories replay against.
        """
        before = self.state.step
        if self.state.stage is Stage.CLOSED:
            return False
        self._compulsory_school_age_timer(now)
        self._review_timers(now)
        self._consultation_timers(now)
        self._ehc_deadline_timers(now)
        self._referral_timers(now)
        return self.state.step != before

    def _compulsory_school_age_timer(self, now: datetime) -> None:
        """An early years pupil reaching compulsory school age: the stage's label changes."""
        s = self.state
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

    def _review_timers(self, now: datetime) -> None:
        """The plan's review: a reminder before the due date, due on it, overdue after it."""
        s = self.state
        iep = s.iep
        if iep is None or s.review_due_at is None:
            return
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
            notices.review_reminder(s, step, iep)
            if FEATURE_REVIEW_INVITATIONS in self.features:
                notices.review_invitation(s, step, iep)
        if now >= due and self.rules.may_trigger("review_falls_due", cmd=None, now=now):
            self.rules.trigger("review_falls_due", cmd=None, now=now)
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
            notices.review_overdue(s, step, iep)

    def _consultation_timers(self, now: datetime) -> None:
        """Open consultations: a reminder to parents, then no response by the deadline."""
        s = self.state
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
                notices.consultation_reminder(s, step, c)
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

    def _referral_timers(self, now: datetime) -> None:
        """Open referrals: chased every interval; the SENCO is told after the second chase."""
        s = self.state
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
                notices.referral_chase(s, step, r)
                if r.chases == 2:
                    notices.referral_escalated(s, step, r)

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


PLAN_KINDS = {SS: "sen_support_plan", EHC: "sen_support_plan", EPL: "ehc_plan"}


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
    if not has_text(cmd.concern):
        raise Refused("describe the concern")
