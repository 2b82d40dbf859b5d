"""Auditors' use cases: a journey's record as Temporal's histories hold it, its breaches, and
the raw export — for journeys of the auditor's settings only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from access.policy import Permission, Principal, require
from audit import compliance
from audit import trail as trail_module
from audit.compliance import Breach
from service import identity, temporal
from service.context import Services
from service.errors import NotFound
from service.journeys import reach


@dataclass
class Record:
    trail: trail_module.Trail
    breaches: list[Breach]


async def record(svc: Services, principal: Principal, journey_id: str) -> Record:
    trail = await _trail(svc, principal, journey_id)
    return Record(trail, compliance.check(trail.state, datetime.now(UTC)))


async def export(svc: Services, principal: Principal, journey_id: str) -> str:
    """Every run's history in Temporal's JSON format (payloads as stored: encrypted when keys
    are configured, so the file replays only with the keys)."""
    trail = await _trail(svc, principal, journey_id)
    return trail_module.export_json(trail, journey_id)


async def audit_all(svc: Services, principal: Principal) -> list[Record]:
    """Every journey of the caller's settings, open, closed or only in the archive."""
    require(principal, Permission.READ_HISTORY)
    client = await svc.client()
    records = []
    archive = await asyncio.to_thread(svc.archive)
    for journey_id in await temporal.all_journey_ids(client, archive):
        try:
            records.append(await record(svc, principal, journey_id))
        except NotFound:
            continue
    return records


async def _trail(svc: Services, principal: Principal, journey_id: str) -> trail_module.Trail:
    require(principal, Permission.READ_HISTORY)
    archive = await asyncio.to_thread(svc.archive)
    try:
        await reach(svc, principal, journey_id, Permission.READ_HISTORY)
    except NotFound:
        client = await svc.client()
        held = await asyncio.to_thread(identity.place_of, svc.factory, journey_id)
        if held is not None or await temporal.school_of(client, journey_id) is not None:
            raise  # another setting's journey: its history is neither fetched nor decrypted
        # Temporal may have deleted a closed journey that only the archive holds: its own
        # recorded state says whose it was.
        trail = await temporal.trail(client, journey_id, archive)
        if not principal.reaches(trail.state.school_id):
            raise
        return trail
    return await temporal.trail(await svc.client(), journey_id, archive)
