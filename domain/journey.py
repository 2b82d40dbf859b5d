"""One pupil's journey: the decisions, timers and notices of the SEN Code of Practice.

``Journey`` is the one class the workflow and the tools use. It wraps one ``JourneyState`` and
binds its model to the shared machine (``domain.machine``) at ``state.machine_state``; it never
stores the Machine in the state. Every school action is checked by asking the machine with the
command, and the guards (``domain.guards``) record *why* a move is refused so the person asking
gets a reason, not just "no".

Where the rest lives: what every action shares (checking, the timeline, a stage decision and the
parents' consultation) in ``domain.decisions``; the EHC needs assessment's steps in
``domain.ehc`` and its statutory clock in ``domain.ehc_clock``; the wording of every notice in
``domain.notices``.

Pure: no I/O, no clocks. ``now`` comes in as an argument.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain import ehc_clock, notices
from domain.commands import (
    MAX_TEXT,
    ActionResult,
    AssessmentCompletedInput,
    CloseInput,
    EscalateInput,
    MigrateInput,
    OpenSchoolActionInput,
    OpenSenSupportInput,
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
from domain.decisions import JourneyBase
from domain.ehc import EhcSteps
from domain.guards import has_text
from domain.machine import EHC, SAS
from domain.model import (
    SYSTEM_ACTOR,
    Actor,
    Consultation,
    ConsultationStatus,
    EhcAssessment,
    EntryKind,
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
)
from domain.policy import CODE_2014

#: Behaviour added after journeys were recorded. The workflow switches each on with
#: ``workflow.patched`` so that histories recorded before it replay unchanged.
FEATURE_REVIEW_INVITATIONS = "review-invitations"


class Journey(EhcSteps, JourneyBase):
    """One pupil's journey: rules, decisions, timers and the notices they owe.

    Each public action first calls ``check`` (read-only, used by update validators) and then
    changes ``self.state``; a refused action raises ``Refused`` and changes nothing. The EHC
    needs assessment's actions come from ``EhcSteps`` (``domain.ehc``); ``check`` and the steps
    every action shares from ``JourneyBase`` (``domain.decisions``).
    """

    # -- starting --------------------------------------------------------------------------

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

    # -- school actions --------------------------------------------------------------------

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

    # -- the 2014 Code: SEN Support --------------------------------------------------------

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

    # -- the 2014 Code: moving a 2001 journey in flight ------------------------------------

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

    # -- replies (signals: never raise out of the workflow, see apply_reply) ---------------

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

    # -- time ------------------------------------------------------------------------------

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
