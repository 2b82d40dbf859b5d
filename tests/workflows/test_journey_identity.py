"""Journey identity through the application layer: a setting's reference holds one open
journey; a start that crashed half-way, or a journey that has closed, frees it; a journey
started under its legacy `pupil-<reference>` id is still found and still holds its reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from access.models import JourneyRef
from access.policy import Principal
from domain.commands import CloseInput, Refused
from domain.model import CloseReason, Role
from journeys import start_cmd
from records.db import make_engine, migrate
from service import identity, journeys, temporal
from service.actions import BY_NAME
from service.context import Services
from service.errors import NotFound
from service.journeys import SIGNED_IN
from workflows.pupil_journey import workflow_id

SENCO = Principal("senco-1", Role.SENCO, frozenset({"school-1"}), "t-senco")
OTHER = Principal("senco-9", Role.SENCO, frozenset({"school-9"}), "t-other")


def services(ts: Any) -> Services:
    migrate(make_engine(ts.settings.database_url))
    return Services(ts.settings, ts.client)


async def start(svc: Services, reference: str) -> journeys.Opened:
    return await journeys.start(
        svc,
        SENCO,
        school="school-1",
        reference=reference,
        senco_id="senco-1",
        parent_ids=["parent-a"],
        concern="slow reading",
    )


def rows(svc: Services, reference: str) -> list[tuple[str, str]]:
    with svc.factory() as session:
        found = session.scalars(select(JourneyRef).where(JourneyRef.reference == reference))
        return sorted((r.workflow_id, r.status) for r in found)


async def test_an_open_reference_refuses_a_second_start_and_a_closed_one_frees_it(
    ts: Any,
) -> None:
    svc = services(ts)
    first = await start(svc, "p-close")
    assert first.journey_id.startswith("journey-") and "p-close" not in first.journey_id
    with pytest.raises(Refused, match="already has an open journey"):
        await start(svc, "p-close")
    assert rows(svc, "p-close") == [(first.journey_id, "open")]

    await journeys.act(
        svc,
        SENCO,
        first.journey_id,
        BY_NAME["close"],
        CloseInput(SIGNED_IN, CloseReason.NEEDS_MET, "caught up"),
    )
    await ts.client.get_workflow_handle(first.journey_id).result()
    second = await start(svc, "p-close")  # the closed holder is found closed and marked so
    assert rows(svc, "p-close") == sorted(
        [(first.journey_id, "closed"), (second.journey_id, "open")]
    )
    assert await journeys.locate(svc, SENCO, "p-close") == second.journey_id
    assert (await journeys.show(svc, SENCO, first.journey_id)).close_reason is not None


async def test_a_start_that_never_reached_temporal_frees_its_reference_after_a_while(
    ts: Any,
) -> None:
    svc = services(ts)
    crashed = temporal.new_journey_id()
    identity.reserve(svc.factory, crashed, "school-1", "p-crash", datetime.now(UTC))
    with pytest.raises(Refused, match="is being started"):
        await start(svc, "p-crash")  # it may still be under way
    with svc.factory.begin() as session:  # ... until it is clearly not
        row = session.get(JourneyRef, crashed)
        assert row is not None
        row.created_at = datetime.now(UTC) - journeys.STALE_START - timedelta(seconds=1)
    opened = await start(svc, "p-crash")
    assert rows(svc, "p-crash") == [(opened.journey_id, "open")]


async def test_a_start_refused_by_the_rules_leaves_the_reference_free(ts: Any) -> None:
    svc = services(ts)
    with pytest.raises(Refused, match="describe the concern"):
        await journeys.start(
            svc,
            SENCO,
            school="school-1",
            reference="p-refused",
            senco_id="senco-1",
            parent_ids=["parent-a"],
            concern="",
        )
    assert rows(svc, "p-refused") == []


async def test_a_journey_started_under_its_legacy_id_is_found_and_holds_its_reference(
    ts: Any,
) -> None:
    svc = services(ts)
    legacy = workflow_id("p-legacy")
    await temporal.start(ts.client, ts.settings, start_cmd("p-legacy"), legacy)
    assert await journeys.locate(svc, SENCO, "p-legacy") == legacy
    assert (await journeys.show(svc, SENCO, legacy)).pupil_id == "p-legacy"
    with pytest.raises(Refused, match="already has an open journey"):
        await start(svc, "p-legacy")
    for attempt in (
        journeys.locate(svc, OTHER, "p-legacy", "school-9"),
        journeys.show(svc, OTHER, legacy),
    ):
        with pytest.raises(NotFound, match="^no such journey$"):
            await attempt
