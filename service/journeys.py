"""Journeys' use cases: start, find, read, act, reply, list — each once, for every front end.

Every function takes the ``Services`` it needs, the ``Principal`` acting and plain values, and
raises ``Refused`` (the domain's reason), ``Forbidden`` (the role may never do this),
``NotFound`` (no such journey *for this caller*: another setting's pupil and a missing one
are the same answer) or ``Unreachable``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from access.policy import Forbidden, Permission, Principal, require
from domain.commands import (
    ActionResult,
    AssessmentCompletedInput,
    ParentRespondedInput,
    Refused,
    StartJourneyInput,
    check_opaque_id,
)
from domain.journey import Journey
from domain.model import Actor, JourneyState, ParentReply, Role, SenType, Stage, TimelineEntry
from domain.policy import Policy, compulsory_school_age_date
from records import models as m
from service import identity, temporal
from service.actions import Action
from service.context import Services
from service.errors import NotFound
from workflows.pupil_journey import PupilJourney, workflow_id

#: A start whose row was written but whose workflow never appeared (a crash between the two)
#: frees the reference after this long.
STALE_START = timedelta(minutes=2)


@dataclass
class Opened:
    """A journey and where it stands."""

    journey_id: str
    state: JourneyState


#: What a front end puts in an action's ``actor`` field: ``act`` replaces it with the
#: signed-in principal, so no front end can name anyone else.
SIGNED_IN = Actor("signed-in", Role.SYSTEM)


def actor_of(principal: Principal) -> Actor:
    """Who history records: always the signed-in principal, never a typed value."""
    return Actor(principal.actor_id, principal.role)


# -- starting ----------------------------------------------------------------------------------


async def start(
    svc: Services,
    principal: Principal,
    *,
    school: str,
    reference: str,
    senco_id: str,
    parent_ids: list[str],
    concern: str,
    policy: Policy | None = None,
    date_of_birth: date | None = None,
    year_group: str | None = None,
) -> Opened:
    """Raise a concern: the setting's new journey for its pupil ``reference``."""
    require(principal, Permission.START, school)
    check_opaque_id(reference, "pupil reference")
    cmd = with_date_of_birth(
        StartJourneyInput(
            pupil_id=reference,
            school_id=school,
            senco_id=senco_id,
            parent_ids=list(parent_ids),
            actor=actor_of(principal),
            concern=concern,
            policy=policy or Policy.named(svc.settings.policy),
            year_group=year_group,
        ),
        date_of_birth,
        datetime.now(UTC).date(),
    )
    client = await svc.client()
    if await _legacy_open(client, school, reference):
        raise _already_open(reference)
    journey_id = temporal.new_journey_id()
    await _reserve(svc, client, journey_id, school, reference)
    try:
        state = await temporal.start(client, svc.settings, cmd, journey_id)
    except Refused:  # refused before Temporal was asked: the reference is free again
        await asyncio.to_thread(identity.release, svc.factory, journey_id)
        raise
    except Exception:
        await _settle_failed_start(svc, client, journey_id)
        raise
    await asyncio.to_thread(identity.confirm, svc.factory, journey_id)
    return Opened(journey_id, state)


async def _settle_failed_start(svc: Services, client: Client, journey_id: str) -> None:
    """The start failed on the way to or from Temporal, so it may or may not have begun: keep
    the row if the journey exists, free the reference if Temporal says it does not, and leave
    the row ``starting`` when Temporal cannot say (the next start reconciles it)."""
    try:
        exists = await _running(client, journey_id) is not None
    except Exception:
        return
    if exists:
        await asyncio.to_thread(identity.confirm, svc.factory, journey_id)
    else:
        await asyncio.to_thread(identity.release, svc.factory, journey_id)


def with_date_of_birth(
    cmd: StartJourneyInput, date_of_birth: date | None, today: date
) -> StartJourneyInput:
    """Only what the journey needs from a date of birth: the compulsory school age date (when
    still to come) and the birth month and year. The day itself never reaches Temporal."""
    if date_of_birth is None:
        return cmd
    if date_of_birth > today:
        raise Refused("the date of birth is in the future")
    if date_of_birth.year < today.year - 30:
        raise Refused("the date of birth is more than 30 years ago: SEN journeys end by 25")
    csa = compulsory_school_age_date(date_of_birth)
    return replace(
        cmd,
        compulsory_school_age_date=csa if csa > today else None,
        birth_year=date_of_birth.year,
        birth_month=date_of_birth.month,
    )


async def _reserve(
    svc: Services, client: Client, journey_id: str, school: str, reference: str
) -> None:
    """Write the (setting, reference) row; a row left by a journey that has since closed, or
    by a start that never reached Temporal, is reconciled and the reference taken."""
    for _ in range(3):
        now = datetime.now(UTC)
        try:
            await asyncio.to_thread(
                identity.reserve, svc.factory, journey_id, school, reference, now
            )
            return
        except identity.Taken as taken:
            held = taken.held
            if not held.journey_id:
                continue  # it closed as we looked: try again
            running = await _running(client, held.journey_id)
            if running is None and held.status == identity.STARTING:
                if now - held.created_at < STALE_START:  # another start may be under way
                    raise Refused(
                        f"a journey for pupil {reference} is being started; if that start "
                        "failed, try again in a few minutes"
                    ) from None
                await asyncio.to_thread(identity.release, svc.factory, held.journey_id)
            elif running:
                if held.status == identity.STARTING:  # its start succeeded; the row says so now
                    await asyncio.to_thread(identity.confirm, svc.factory, held.journey_id)
                raise _already_open(reference) from None
            else:
                await asyncio.to_thread(identity.mark_closed, svc.factory, held.journey_id, now)
    raise _already_open(reference)


async def _running(client: Client, journey_id: str) -> bool | None:
    """True/False for a journey Temporal has (running or not); None for one it has not."""
    try:
        described = await client.get_workflow_handle(journey_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise temporal.translate(err) from None
    return described.status is not None and described.status.name == "RUNNING"


async def _legacy_open(client: Client, school: str, reference: str) -> bool:
    """A journey started as ``pupil-<reference>`` by this school and still open."""
    legacy = workflow_id(reference)
    return await temporal.school_of(client, legacy) == school and bool(
        await _running(client, legacy)
    )


def _already_open(reference: str) -> Refused:
    return Refused(
        f"pupil {reference} already has an open journey at this setting; act on it instead "
        "of starting another"
    )


# -- finding and reaching a journey ------------------------------------------------------------


async def locate(
    svc: Services, principal: Principal, reference: str, school: str | None = None
) -> str:
    """The journey id a setting's pupil reference means, for this caller. A caller with
    several settings names the setting; another setting's pupil is simply not found."""
    if principal.role is Role.SPECIALIST:  # the role first, as ``reach`` asks it
        require(principal, Permission.COMPLETE_REFERRAL)
        check_opaque_id(reference, "pupil reference")
        return await _referred(svc, principal, reference, school)
    require(principal, Permission.READ_JOURNEY)
    check_opaque_id(reference, "pupil reference")
    if school is None:
        if len(principal.schools) != 1:
            raise Refused(
                "you act for several settings (or none): name the setting as well as the "
                "pupil reference, or use the journey id"
            )
        (school,) = principal.schools
    check_opaque_id(school, "setting id")
    if not principal.reaches(school):
        raise NotFound("no such journey")
    found = await asyncio.to_thread(identity.find, svc.factory, school, reference)
    if found is not None:
        return found
    legacy = workflow_id(reference)
    if await temporal.school_of(await svc.client(), legacy) == school:
        return legacy
    raise NotFound("no such journey")


async def _referred(svc: Services, principal: Principal, reference: str, school: str | None) -> str:
    """A specialist knows a pupil only through a referral to them (the read model's)."""
    if school is None:
        raise Refused("name the pupil's setting as well as its reference (--school)")
    check_opaque_id(school, "setting id")

    def read() -> str | None:
        query = (
            select(m.Journey.workflow_id)
            .join(m.Referral, m.Referral.workflow_id == m.Journey.workflow_id)
            .where(
                m.Referral.specialist_id == principal.actor_id,
                m.Journey.school_id == school,
                m.Journey.pupil_id == reference,
            )
            .order_by(m.Journey.opened_at.desc())
        )
        with svc.factory() as session:
            found: str | None = session.scalars(query).first()
            return found

    found = await asyncio.to_thread(read)
    if found is None:
        raise NotFound("no such journey")
    return found


async def setting_of(svc: Services, journey_id: str) -> str:
    """The setting that holds the journey; ``NotFound`` when there is none."""
    check_opaque_id(journey_id, "journey id")
    place = await asyncio.to_thread(identity.place_of, svc.factory, journey_id)
    if place is not None:
        return place.setting
    school = await temporal.school_of(await svc.client(), journey_id)
    if school is None:
        raise NotFound("no such journey")
    return school


async def reach(
    svc: Services, principal: Principal, journey_id: str, permission: Permission
) -> str:
    """Check the caller may do ``permission`` on this journey; returns its setting. The role
    first (no lookup for a role that may never do this), then the setting: a journey the
    caller cannot reach is ``NotFound``, exactly as one that does not exist."""
    require(principal, permission)
    if principal.consultation is not None:  # a parent's code reaches its one journey
        if principal.consultation[0] != journey_id:
            raise NotFound("no such journey")
        return await setting_of(svc, journey_id)
    school = await setting_of(svc, journey_id)
    if principal.role in (Role.SPECIALIST,):
        return school  # the referral itself is checked against the journey's state
    if not principal.reaches(school):
        raise NotFound("no such journey")
    return school


# -- reading -----------------------------------------------------------------------------------


async def show(svc: Services, principal: Principal, journey_id: str) -> JourneyState:
    await reach(svc, principal, journey_id, Permission.READ_JOURNEY)
    return await temporal.state(await svc.client(), journey_id)


async def find(
    svc: Services, principal: Principal, reference: str, school: str | None = None
) -> Opened:
    """A setting's pupil as the caller may read it: its journey id and where it stands."""
    require(principal, Permission.READ_JOURNEY)  # the role first: no lookup for a reader's page
    journey_id = await locate(svc, principal, reference, school)
    return Opened(journey_id, await show(svc, principal, journey_id))


async def timeline(svc: Services, principal: Principal, journey_id: str) -> list[TimelineEntry]:
    await reach(svc, principal, journey_id, Permission.READ_JOURNEY)
    return await temporal.timeline(await svc.client(), journey_id)


@dataclass
class Listed:
    journey_id: str
    pupil: str
    school: str | None
    stage: str | None
    next_review: datetime | None
    overdue: bool | None
    status: str


async def listing(
    svc: Services,
    principal: Principal,
    *,
    stage: Stage | None = None,
    school: str | None = None,
    overdue: bool | None = None,
    include_closed: bool = False,
) -> list[Listed]:
    """The caller's settings' journeys through Temporal visibility."""
    require(principal, Permission.READ_JOURNEY, school)
    client = await svc.client()
    found: list[temporal.JourneyListing] = []
    for one in [school] if school else sorted(principal.schools):
        found += await temporal.listing(
            client, stage.value if stage else None, one, overdue, include_closed
        )
    refs = await asyncio.to_thread(identity.references, svc.factory, [f.journey_id for f in found])
    rows = [
        Listed(
            journey_id=f.journey_id,
            pupil=refs.get(f.journey_id) or f.journey_id.removeprefix("pupil-"),
            school=f.school,
            stage=f.stage,
            next_review=f.next_review,
            overdue=f.overdue,
            status=f.status,
        )
        for f in found
    ]
    return sorted(rows, key=lambda r: (r.school or "", r.pupil))


# -- acting ------------------------------------------------------------------------------------


async def act(
    svc: Services, principal: Principal, journey_id: str, action: Action, cmd: Any
) -> ActionResult:
    """One school or local-authority action. The actor is the principal, whatever ``cmd``
    carried; the journey's validator decides whether it is legal now."""
    if not isinstance(cmd, action.input):
        raise TypeError(f"{action.name} takes {action.input.__name__}")
    await reach(svc, principal, journey_id, action.permission)
    cmd = replace(cmd, actor=actor_of(principal))
    return await temporal.execute(await svc.client(), journey_id, action.update, cmd)


def new_reply_id() -> str:
    """An idempotency key for a reply the caller did not name."""
    return f"reply-{uuid.uuid4().hex[:16]}"


async def complete_assessment(
    svc: Services,
    principal: Principal,
    journey_id: str,
    referral_id: str,
    summary: str,
    recommendations: list[str],
    need: SenType | None = None,
    reply_id: str | None = None,
) -> str:
    """A specialist reports back on a referral assigned to them. The journey's own guard is
    asked first, so the caller hears a refusal; the journey asks again on arrival."""
    await reach(svc, principal, journey_id, Permission.COMPLETE_REFERRAL)
    client = await svc.client()
    state = await temporal.state(client, journey_id)
    referral = next((r for r in state.referrals if r.referral_id == referral_id), None)
    if referral is None or referral.specialist_id != principal.actor_id:
        raise NotFound("no such journey")  # as for a journey that does not exist
    cmd = AssessmentCompletedInput(
        reply_id or new_reply_id(),
        referral_id,
        Actor(principal.actor_id, Role.SPECIALIST),
        summary,
        list(recommendations),
        need,
    )
    Journey(state).check("complete_assessment", cmd, datetime.now(UTC))
    await temporal.signal(client, journey_id, PupilJourney.assessment_completed, cmd)
    return cmd.reply_id


async def respond(
    svc: Services,
    principal: Principal,
    journey_id: str,
    consultation_id: str,
    reply: ParentReply,
    comments: str = "",
    reply_id: str | None = None,
) -> str:
    """A parent answers a consultation, with the code from that consultation's letter."""
    await reach(svc, principal, journey_id, Permission.RESPOND_CONSULTATION)
    if principal.consultation != (journey_id, consultation_id):
        raise Forbidden("your reply code is for another consultation")
    client = await svc.client()
    state = await temporal.state(client, journey_id)
    cmd = ParentRespondedInput(
        reply_id or new_reply_id(), consultation_id, principal.actor_id, reply, comments
    )
    Journey(state).check_parent_reply(cmd)
    await temporal.signal(client, journey_id, PupilJourney.parent_responded, cmd)
    return cmd.reply_id


@dataclass
class ConsultationView:
    """What a parent sees of the consultation their letter's code is for: what it is about,
    when to answer by, and whether they have answered."""

    journey_id: str
    consultation_id: str
    subject: str
    deadline: datetime
    open: bool
    answered: ParentReply | None
    stage_label: str


async def consultation(svc: Services, principal: Principal) -> ConsultationView:
    """The consultation a parent's code reaches (and nothing else of the journey)."""
    require(principal, Permission.RESPOND_CONSULTATION)
    if principal.consultation is None:
        raise Forbidden("that is not a reply code")
    journey_id, consultation_id = principal.consultation
    state = await temporal.state(await svc.client(), journey_id)
    found = next((c for c in state.consultations if c.consultation_id == consultation_id), None)
    if found is None:
        raise NotFound("no such consultation")
    mine = next((r for r in found.responses if r.parent_id == principal.actor_id), None)
    return ConsultationView(
        journey_id=journey_id,
        consultation_id=consultation_id,
        subject=found.subject,
        deadline=found.deadline,
        open=found.status.value == "open",
        answered=mine.reply if mine is not None else None,
        stage_label=state.stage_label,
    )
