"""Random action sequences against the domain: a refused action changes nothing, and every
reachable state keeps the journey's invariants."""

from __future__ import annotations

import copy
from dataclasses import asdict
from datetime import timedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.commands import (
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
)
from domain.journey import Journey
from domain.machine import STATES, TRANSITIONS
from domain.model import (
    REGISTER_STAGES,
    Actor,
    CloseReason,
    EntryKind,
    ParentReply,
    PauseReason,
    ReviewOutcome,
    Role,
    SenType,
    SpecialistKind,
    Stage,
    TargetProgress,
    Trigger,
)
from domain.policy import Policy
from scenarios import T0, iep

# Weighted towards plausible school actions, so sequences reach Action Plus and beyond;
# the rest are the wrong roles, wrong triggers and empty evidence that must be refused.
ROLES = st.sampled_from(
    [Role.SENCO] * 6 + [Role.CLASS_TEACHER, Role.PARENT, Role.SPECIALIST, Role.ADMIN]
)
SA = [t for t in Trigger if t.is_school_action]
AP = [t for t in Trigger if t.is_action_plus]
TRIGGERS = st.one_of(
    st.lists(st.sampled_from(SA), min_size=1, max_size=2),
    st.lists(st.sampled_from(AP), min_size=1, max_size=2),
    st.lists(st.sampled_from(list(Trigger)), min_size=0, max_size=2),
)
TEXT = st.sampled_from(["", "little progress", "reading age 18 months behind", "evidence"])
MOSTLY = st.sampled_from([True, True, True, False])


def legal_stage_edges() -> set[tuple[Stage, Stage]]:
    edges = set()
    for t in TRANSITIONS:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for source in sources:
            dest = t["dest"] or source
            edges.add((STATES[source][0], STATES[dest][0]))
    return edges


EDGES = legal_stage_edges()


class JourneyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.journey = Journey.begin(
            StartJourneyInput(
                "p1",
                "s1",
                "senco-1",
                ["carer-1", "carer-2"],
                Actor("t1", Role.CLASS_TEACHER),
                "concern",
            ),
            T0,
        )
        self.replies = 0

    def attempt(self, action, cmd) -> None:  # type: ignore[no-untyped-def]
        before = copy.deepcopy(asdict(self.journey.state))
        try:
            action(cmd, self.now)
        except Refused:
            assert asdict(self.journey.state) == before, "a refused action changed the journey"

    def progress(self, complete: bool) -> list[TargetProgress]:
        iep_now = self.journey.state.iep
        n = len(iep_now.targets) if iep_now else 1
        return [TargetProgress(i, "some progress") for i in range(n if complete else n - 1)]

    @rule()
    def a_senco_following_the_code(self) -> None:
        """A plausible next step, so random sequences also reach the deep stages."""
        senco, stage = Actor("senco-1", Role.SENCO), self.journey.state.stage
        if stage is Stage.MONITORING:
            self.attempt(
                self.journey.open_school_action,
                OpenSchoolActionInput(senco, [Trigger.SA_PROGRESS], "evidence", iep()),
            )
        elif stage is Stage.SCHOOL_ACTION:
            self.attempt(
                self.journey.record_review,
                RecordReviewInput(
                    senco,
                    ReviewOutcome.ESCALATE,
                    self.progress(True),
                    "little",
                    iep(),
                    [Trigger.AP_PROGRESS_LONG],
                ),
            )
        elif stage is Stage.SCHOOL_ACTION_PLUS and not self.journey.state.referrals:
            self.attempt(
                self.journey.refer,
                ReferInput(senco, SpecialistKind.EDUCATIONAL_PSYCHOLOGIST, "spec-1", "why?"),
            )
        elif stage is Stage.SCHOOL_ACTION_PLUS and self.journey.state.open_referrals():
            for r in self.journey.state.open_referrals():
                self.attempt(
                    self.journey.complete_assessment,
                    AssessmentCompletedInput(
                        "r", r.referral_id, Actor(r.specialist_id, Role.SPECIALIST), "report"
                    ),
                )
        elif stage is Stage.SCHOOL_ACTION_PLUS:
            self.attempt(
                self.journey.request_statutory_assessment,
                RequestStatutoryAssessmentInput(senco, "evidence"),
            )
        elif stage is Stage.STATUTORY_ASSESSMENT:
            self.attempt(
                self.journey.record_review,
                RecordReviewInput(senco, ReviewOutcome.CONTINUE, self.progress(True), "ok", iep()),
            )

    @rule(role=ROLES, triggers=TRIGGERS, evidence=TEXT)
    def open_school_action(self, role: Role, triggers: list[Trigger], evidence: str) -> None:
        self.attempt(
            self.journey.open_school_action,
            OpenSchoolActionInput(Actor("a", role), triggers, evidence, iep()),
        )

    @rule(role=ROLES, triggers=TRIGGERS, evidence=TEXT)
    def escalate(self, role: Role, triggers: list[Trigger], evidence: str) -> None:
        self.attempt(
            self.journey.escalate, EscalateInput(Actor("a", role), triggers, evidence, iep())
        )

    @rule(
        role=ROLES,
        outcome=st.sampled_from(list(ReviewOutcome)),
        triggers=TRIGGERS,
        complete=MOSTLY,
        with_iep=MOSTLY,
        close_reason=st.sampled_from([None, *CloseReason]),
    )
    def review(
        self,
        role: Role,
        outcome: ReviewOutcome,
        triggers: list[Trigger],
        complete: bool,
        with_iep: bool,
        close_reason: CloseReason | None,
    ) -> None:
        self.attempt(
            self.journey.record_review,
            RecordReviewInput(
                Actor("a", role),
                outcome,
                self.progress(complete),
                "notes",
                iep() if with_iep else None,
                triggers,
                close_reason,
            ),
        )

    @rule(role=ROLES, kind=st.sampled_from(list(SpecialistKind)))
    def refer(self, role: Role, kind: SpecialistKind) -> None:
        self.attempt(self.journey.refer, ReferInput(Actor("a", role), kind, "spec-1", "why?"))

    @rule(role=ROLES, which=st.integers(0, 3), right_specialist=MOSTLY)
    def complete_assessment(self, role: Role, which: int, right_specialist: bool) -> None:
        refs = self.journey.state.referrals
        referral_id = refs[which % len(refs)].referral_id if refs else "referral-1"
        actor = Actor("spec-1" if right_specialist else "spec-2", role)
        self.attempt(
            self.journey.complete_assessment,
            AssessmentCompletedInput("r", referral_id, actor, "report"),
        )

    @rule(role=ROLES, evidence=TEXT)
    def request_statutory_assessment(self, role: Role, evidence: str) -> None:
        self.attempt(
            self.journey.request_statutory_assessment,
            RequestStatutoryAssessmentInput(Actor("a", role), evidence),
        )

    @rule(role=ROLES, reason=TEXT, with_iep=st.booleans())
    def step_down(self, role: Role, reason: str, with_iep: bool) -> None:
        self.attempt(
            self.journey.step_down,
            StepDownInput(Actor("a", role), reason, iep() if with_iep else None),
        )

    @rule(role=ROLES, note=TEXT)
    def note(self, role: Role, note: str) -> None:
        self.attempt(self.journey.record_note, RecordNoteInput(Actor("a", role), note))

    @rule(role=ROLES, reason=TEXT, dice=st.integers(0, 5))
    def close(self, role: Role, reason: str, dice: int) -> None:
        if dice:  # closing ends exploration: try it one time in six
            return
        self.attempt(
            self.journey.close, CloseInput(Actor("a", role), CloseReason.NEEDS_MET, reason)
        )

    @rule(
        which=st.integers(0, 5),
        parent=st.sampled_from(["carer-1", "carer-2", "stranger"]),
        reply=st.sampled_from(list(ParentReply)),
    )
    def parent_replies(self, which: int, parent: str, reply: ParentReply) -> None:
        consultations = self.journey.state.consultations
        cid = consultations[which % len(consultations)].consultation_id if consultations else "x"
        self.replies += 1
        self.attempt(
            self.journey.parent_responded,
            ParentRespondedInput(f"r{self.replies}", cid, parent, reply),
        )

    @rule(days=st.integers(0, 120), to_next=st.booleans())
    def time_passes(self, days: int, to_next: bool) -> None:
        wake = self.journey.next_wakeup()
        target = self.now + timedelta(days=days)
        if to_next and wake is not None:
            target = max(self.now, wake)
        self.now = target
        self.journey.on_time(self.now)

    @invariant()
    def an_iep_exists_exactly_on_the_register(self) -> None:
        s = self.journey.state
        event(f"reached {s.stage.value}")  # --hypothesis-show-statistics: is it exploring?
        assert (s.iep is not None) == (s.stage in REGISTER_STAGES), (s.stage, s.iep)

    @invariant()
    def stage_and_phase_come_from_the_machine(self) -> None:
        s = self.journey.state
        assert (s.stage, s.phase) == STATES[s.machine_state]

    @invariant()
    def the_stage_only_moves_along_legal_edges(self) -> None:
        for e in self.journey.state.timeline:
            if e.kind is EntryKind.DECISION and e.stage_before and e.stage_after:
                assert (e.stage_before, e.stage_after) in EDGES

    @invariant()
    def steps_never_go_back_and_notices_are_unique(self) -> None:
        s = self.journey.state
        steps = [e.step for e in s.timeline]
        assert steps == sorted(steps)
        keys = [n.key for n in s.outbox]
        assert len(keys) == len(set(keys))

    @invariant()
    def a_closed_journey_sleeps_forever(self) -> None:
        if self.journey.state.stage is Stage.CLOSED:
            assert self.journey.next_wakeup() is None


JourneyMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJourneyProperties = JourneyMachine.TestCase


# -- the 2014 Code, and journeys moved to it in flight ---------------------------------------

LA = Actor("la-7", Role.LOCAL_AUTHORITY)
STEPS_2014 = st.sampled_from(
    ["decide", "advice", "advice_received", "draft", "final", "pause", "resume"]
)


def plan_2014() -> IepInput:
    spec = iep()
    spec.expected_impact, spec.pupil_views = "reading age up six months", "likes the TA"
    return spec


class Journey2014Machine(JourneyMachine):
    """Half the journeys start under the 2014 Code; the rest may be moved to it at any point."""

    @initialize(start_2014=st.booleans())
    def choose_the_code(self, start_2014: bool) -> None:
        if start_2014:
            self.journey.state.policy = Policy.code_2014()
        event(f"started under {self.journey.state.policy.name}")

    @rule(
        role=st.sampled_from([Role.ADMIN, Role.ADMIN, Role.SENCO]), la=st.sampled_from(["la-7", ""])
    )
    def move_to_2014(self, role: Role, la: str) -> None:
        self.attempt(
            self.journey.move_to_code_2014,
            MigrateInput(Actor("admin-1", role), "2014 Code", local_authority_id=la),
        )

    @rule()
    def a_school_and_authority_following_the_2014_code(self) -> None:
        senco, s = Actor("senco-1", Role.SENCO), self.journey.state
        if s.stage is Stage.MONITORING:
            self.attempt(
                self.journey.open_sen_support,
                OpenSenSupportInput(senco, SenType.SPLD, "evidence", plan_2014()),
            )
        elif s.stage is Stage.SEN_SUPPORT:
            self.attempt(
                self.journey.request_ehc_assessment,
                RequestEhcAssessmentInput(senco, "la-7", "evidence"),
            )
        elif s.stage is Stage.EHC_NEEDS_ASSESSMENT:
            ehc = s.ehc()
            assert ehc is not None
            if ehc.decided_to_assess is None:
                self.attempt(self.journey.ehc_decide, EhcDecisionInput(LA, True, "assess"))
            elif ehc.draft_issued_at is None:
                self.attempt(self.journey.ehc_draft, EhcDraftInput(LA, True, "d", plan_2014()))
            else:
                self.attempt(self.journey.ehc_finalise, EhcFinalInput(LA, "final"))

    @rule(role=ROLES, need=st.sampled_from([*SenType, "dyslexia"]), evidence=TEXT)
    def open_sen_support(self, role: Role, need: SenType, evidence: str) -> None:
        self.attempt(
            self.journey.open_sen_support,
            OpenSenSupportInput(Actor("senco-1", role), need, evidence, plan_2014()),
        )

    @rule(role=ROLES, evidence=TEXT, la=st.sampled_from(["la-7", "", "la 7"]))
    def request_ehc(self, role: Role, evidence: str, la: str) -> None:
        self.attempt(
            self.journey.request_ehc_assessment,
            RequestEhcAssessmentInput(Actor("senco-1", role), la, evidence),
        )

    @rule(step=STEPS_2014, by_la=MOSTLY, yes=MOSTLY, reason=TEXT)
    def ehc_step(self, step: str, by_la: bool, yes: bool, reason: str) -> None:
        actor = LA if by_la else Actor("senco-1", Role.SENCO)
        j = self.journey
        ehc = j.state.ehc()
        if ehc is None:  # no assessment under way: the machine refuses every step
            self.attempt(j.ehc_decide, EhcDecisionInput(actor, yes, reason))
            return
        advice = next((d.deadline_id for d in ehc.deadlines if d.kind.value == "advice"), "x")
        attempts = {
            "decide": (j.ehc_decide, EhcDecisionInput(actor, yes, reason)),
            "advice": (j.ehc_request_advice, EhcAdviceRequestInput(actor, "ep-2", "health")),
            "advice_received": (j.ehc_advice_received, EhcAdviceReceivedInput(actor, advice)),
            "draft": (j.ehc_draft, EhcDraftInput(actor, yes, reason, plan_2014())),
            "final": (j.ehc_finalise, EhcFinalInput(actor, reason or "final")),
            "pause": (j.pause_ehc_clock, EhcPauseInput(actor, PauseReason.SETTING_CLOSED)),
            "resume": (j.resume_ehc_clock, EhcResumeInput(actor)),
        }
        self.attempt(*attempts[step])

    @invariant()
    def an_open_ehc_assessment_exactly_in_that_stage(self) -> None:
        s = self.journey.state
        assert (s.ehc() is not None) == (s.stage is Stage.EHC_NEEDS_ASSESSMENT), s.stage
        for ehc in s.ehc_assessments:
            if not ehc.open:
                assert ehc.ended_at is not None and not ehc.pending()

    @invariant()
    def the_code_decides_the_stages(self) -> None:
        s = self.journey.state
        old = (Stage.SCHOOL_ACTION, Stage.SCHOOL_ACTION_PLUS, Stage.STATUTORY_ASSESSMENT)
        new = (Stage.SEN_SUPPORT, Stage.EHC_NEEDS_ASSESSMENT, Stage.EHC_PLAN)
        assert s.stage not in (new if s.policy.name == "code_2001" else old), s.stage
        event(f"reached {s.stage.value} under {s.policy.name}")


Journey2014Machine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJourney2014Properties = Journey2014Machine.TestCase
