"""The 2014 Code on the time-skipping server: an EHC needs assessment runs its statutory clock
on durable timers — a deadline met, a pause excluded, a deadline breached and alerted."""

from __future__ import annotations

from datetime import timedelta

from domain.commands import (
    EhcDecisionInput,
    EhcDraftInput,
    EhcFinalInput,
    EhcPauseInput,
    EhcResumeInput,
    IepInput,
    OpenSenSupportInput,
    RequestEhcAssessmentInput,
)
from domain.model import (
    Actor,
    DeadlineStatus,
    EntryKind,
    PauseReason,
    Role,
    SenType,
    Stage,
    Target,
)
from domain.policy import Policy
from journeys import SENCO, agree_all, new_pupil, start_cmd, until_delivered
from service import temporal
from workflows.pupil_journey import PupilJourney, workflow_id
from workflows.search_attributes import SEN_CODE, SEN_STAGE

LA = Actor("la-7", Role.LOCAL_AUTHORITY)
WEEK, DAY = timedelta(weeks=1), timedelta(days=1)


def plan() -> IepInput:
    return IepInput(
        [Target("communicate needs with a picture board", "uses it unprompted 3x a day")],
        ["visual timetable"],
        ["speech and language therapy 1x30 minutes a week"],
        ["teacher-1"],
        expected_impact="fewer incidents at transitions",
        pupil_views="likes the picture board",
    )


async def test_an_ehc_needs_assessment_runs_its_statutory_clock(ts) -> None:  # type: ignore[no-untyped-def]
    client, pupil = ts.client, new_pupil()
    journey = workflow_id(pupil)
    await temporal.start(
        client,
        ts.settings,
        start_cmd(pupil, policy=Policy.code_2014(), school_id="s-2014"),
        journey,
    )
    await temporal.execute(
        client,
        journey,
        PupilJourney.open_sen_support,
        OpenSenSupportInput(SENCO, SenType.SLCN, "language screen", plan(), SenType.ASD),
    )
    await agree_all(client, pupil)
    await temporal.execute(
        client,
        journey,
        PupilJourney.request_ehc_assessment,
        RequestEhcAssessmentInput(SENCO, "la-7", "three cycles, little progress"),
    )
    await agree_all(client, pupil)

    await ts.env.sleep(5 * WEEK)
    await temporal.execute(
        client,
        journey,
        PupilJourney.ehc_decide,
        EhcDecisionInput(LA, True, "needs evidenced"),
    )
    await temporal.execute(
        client,
        journey,
        PupilJourney.pause_ehc_clock,
        EhcPauseInput(LA, PauseReason.CHILD_ABSENT),
    )
    await ts.env.sleep(4 * WEEK)  # nothing falls due while the clock is stopped
    await temporal.execute(client, journey, PupilJourney.resume_ehc_clock, EhcResumeInput(LA))
    state = await temporal.state(client, journey)
    ehc = state.ehc()
    assert ehc is not None
    draft = ehc.deadline("draft")
    assert draft is not None and draft.status is DeadlineStatus.PENDING
    assert not [e for e in state.timeline if e.kind is EntryKind.EHC_DEADLINE_BREACHED]

    # The draft is never issued in time: 16 weeks + 4 paused from the request.
    await ts.env.sleep(11 * WEEK + 3 * DAY)
    state = await until_delivered(client, pupil)
    breaches = [e for e in state.timeline if e.kind is EntryKind.EHC_DEADLINE_BREACHED]
    assert [e.ref for e in breaches] == ["draft"]
    warnings = [e.ref for e in state.timeline if e.kind is EntryKind.EHC_DEADLINE_WARNING]
    assert warnings == ["draft"]  # the decision came (week 5) before its warning was due
    ehc = state.ehc()
    assert ehc is not None
    decision, draft = ehc.deadline("decision"), ehc.deadline("draft")
    assert decision is not None and decision.status is DeadlineStatus.MET
    assert draft is not None and draft.status is DeadlineStatus.BREACHED
    assert draft.breached_at is not None
    policy = state.policy
    moved = draft.due_on - policy.local_date(ehc.requested_at + 16 * WEEK)
    # the pause (4 weeks and the few ms the test took, rounded up to whole days) was excluded
    assert moved in (4 * WEEK, 4 * WEEK + DAY), moved
    late = draft.breached_at - policy.due_instant(draft.due_on + DAY)  # 08:00 the next day
    assert timedelta(0) <= late < timedelta(minutes=1), late
    alerted = sorted(p.name for p in ts.outbox.glob("*ehc_deadline_breached*"))
    assert len(alerted) == 2 and any("la-7" in n for n in alerted), alerted

    await temporal.execute(
        client, journey, PupilJourney.ehc_draft, EhcDraftInput(LA, True, "draft", plan())
    )
    await agree_all(client, pupil)
    await temporal.execute(
        client, journey, PupilJourney.ehc_finalise, EhcFinalInput(LA, "final plan")
    )
    state = await until_delivered(client, pupil)
    assert (state.stage, state.census_code) == (Stage.EHC_PLAN, "E")
    last = state.ehc_assessments[-1]
    statuses = {d.deadline_id: d.status for d in last.deadlines}
    assert statuses["final"] is DeadlineStatus.MET  # 20 + 4 weeks: issued in week 22
    assert statuses["draft"] is DeadlineStatus.BREACHED  # met late stays a breach on record

    described = await client.get_workflow_handle(journey).describe()
    attrs = described.typed_search_attributes
    assert attrs.get(SEN_CODE) == "code_2014" and attrs.get(SEN_STAGE) == "ehc_plan"
