"""Staff pages' lists, from the read model (one query per list, never one per journey): a
setting's register and what needs doing, a specialist's referrals, an authority's EHC
caseload. Always within the caller's settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from access.policy import Permission, Principal, require
from domain.policy import LONDON
from records import caseload
from records.caseload import Awaiting, Entry, Waiting
from service.context import Services

#: "Due soon" on the SENCO's home page.
DUE_SOON = timedelta(days=14)
PAGE_SIZE = 25


@dataclass
class Home:
    schools: list[str]
    register: list[Entry]
    total: int
    page: int
    pages: int
    counts: list[tuple[str, str, int]]
    overdue: list[Entry] = field(default_factory=list)
    due_soon: list[Entry] = field(default_factory=list)
    upcoming: list[Entry] = field(default_factory=list)
    consultations: list[Awaiting] = field(default_factory=list)
    referrals: list[Waiting] = field(default_factory=list)


def today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(LONDON)).date()


async def home(
    svc: Services,
    principal: Principal,
    *,
    search: str = "",
    stage: str | None = None,
    page: int = 1,
    school: str | None = None,
) -> Home:
    """The register (a page of it), reviews by urgency, consultations awaiting parents and
    referrals waiting, for the caller's settings (or one of them)."""
    require(principal, Permission.READ_JOURNEY, school)
    schools = [school] if school else sorted(principal.schools)
    page = max(1, page)
    now_day = today()

    def read() -> Home:
        with svc.factory() as session:
            rows, total = caseload.register(
                session,
                schools,
                search=search.strip()[:80],
                stage=stage or None,
                offset=(page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
            found = Home(
                schools=schools,
                register=rows,
                total=total,
                page=page,
                pages=max(1, -(-total // PAGE_SIZE)),
                counts=caseload.counts_by_stage(session, schools),
                consultations=caseload.consultations_awaiting(session, schools),
                referrals=caseload.referrals(session, schools=schools),
            )
            for entry in caseload.with_reviews(session, schools):
                day = entry.next_review_date
                if entry.overdue or (day is not None and day < now_day):
                    found.overdue.append(entry)
                elif day is not None and day <= now_day + DUE_SOON:
                    found.due_soon.append(entry)
                else:
                    found.upcoming.append(entry)
            return found

    return await asyncio.to_thread(read)


async def referrals_to_me(svc: Services, principal: Principal) -> list[Waiting]:
    """A specialist's referrals, open first."""
    require(principal, Permission.COMPLETE_REFERRAL)

    def read() -> list[Waiting]:
        with svc.factory() as session:
            rows = caseload.referrals(session, specialist_id=principal.actor_id, open_only=False)
        return sorted(rows, key=lambda r: (r.status != "open", r.requested_at))

    return await asyncio.to_thread(read)


async def ehc_caseload(svc: Services, principal: Principal) -> list[Entry]:
    """A local authority's statutory caseload across its settings."""
    require(principal, Permission.ACT_LOCAL_AUTHORITY)

    def read() -> list[Entry]:
        with svc.factory() as session:
            return caseload.ehc_caseload(session, sorted(principal.schools))

    return await asyncio.to_thread(read)
