"""The rules' durations, and the calendar arithmetic they need.

A ``Policy`` travels in every journey's input (and so in its history), so a demo or a test can
run a whole journey in minutes while production keeps the Code's terms and months.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LONDON = "Europe/London"
CODE_2001 = "code_2001"
CODE_2014 = "code_2014"
CODES = (CODE_2001, CODE_2014)


@dataclass(frozen=True)
class Policy:
    name: str = "code_2001"
    #: Default gap between IEP reviews when the plan gives no date ("termly").
    review_interval: timedelta = timedelta(weeks=13)
    #: The Code: reviewed at least twice a year for school-age pupils (≤ 6 months apart) ...
    max_review_months_school_age: int = 6
    #: ... and at least three times a year under compulsory school age (≤ 4 months apart).
    max_review_months_early_years: int = 4
    reminder_lead: timedelta = timedelta(days=14)
    overdue_grace: timedelta = timedelta(days=7)
    consultation_deadline: timedelta = timedelta(days=14)
    consultation_reminder_after: timedelta = timedelta(days=7)
    referral_chase_interval: timedelta = timedelta(weeks=6)
    #: Timers for a calendar date fire at this local hour, so notices arrive on the school day.
    local_hour: int = 8
    timezone: str = LONDON
    # The 2014 Code (fields added later keep their defaults when an older history decodes).
    #: EHC plans are reviewed at least every 12 months (the annual review).
    max_review_months_ehc_plan: int = 12
    #: The EHC needs assessment's statutory clock (SEND Regulations 2014, regs 5, 8, 10, 13).
    ehc_decision_to_assess: timedelta = timedelta(weeks=6)
    ehc_advice: timedelta = timedelta(weeks=6)
    ehc_draft_or_not_issue: timedelta = timedelta(weeks=16)
    ehc_parent_comments: timedelta = timedelta(days=15)
    ehc_final_plan: timedelta = timedelta(weeks=20)
    #: How far ahead of a statutory deadline the authority and the SENCO are warned.
    ehc_warning_lead: timedelta = timedelta(weeks=1)
    #: The annual review interval on a short (demo) clock; dates are used otherwise.
    ehc_review_interval: timedelta = timedelta(weeks=52)

    @classmethod
    def demo(cls, minute: timedelta = timedelta(minutes=1), name: str = "code_2001") -> Policy:
        """Every duration in minutes: a whole journey runs while you watch."""
        policy = cls(
            name="code_2001",
            review_interval=3 * minute,
            reminder_lead=1 * minute,
            overdue_grace=1 * minute,
            consultation_deadline=2 * minute,
            consultation_reminder_after=1 * minute,
            referral_chase_interval=2 * minute,
            ehc_decision_to_assess=6 * minute,
            ehc_advice=6 * minute,
            ehc_draft_or_not_issue=16 * minute,
            ehc_parent_comments=2 * minute,
            ehc_final_plan=20 * minute,
            ehc_warning_lead=1 * minute,
            ehc_review_interval=12 * minute,
        )
        return policy.for_code(name)

    @classmethod
    def code_2014(cls) -> Policy:
        return cls().for_code(CODE_2014)

    @classmethod
    def named(cls, name: str, minute: timedelta | None = None) -> Policy:
        """The policy a configuration names (``code_2001`` or ``code_2014``)."""
        if name not in CODES:
            raise ValueError(f"unknown policy {name!r}: one of {', '.join(CODES)}")
        return cls.demo(minute, name) if minute is not None else cls().for_code(name)

    def for_code(self, name: str) -> Policy:
        """The same clock (production or demo) under the rules of another Code."""
        if name == CODE_2014:
            # SEN Support: parents met at least three times a year, so plans are reviewed
            # at least termly whatever the child's age.
            return replace(
                self,
                name=CODE_2014,
                max_review_months_school_age=4,
                max_review_months_early_years=4,
            )
        if name == CODE_2001:
            defaults = Policy()
            return replace(
                self,
                name=CODE_2001,
                max_review_months_school_age=defaults.max_review_months_school_age,
                max_review_months_early_years=defaults.max_review_months_early_years,
            )
        raise ValueError(f"unknown policy {name!r}: one of {', '.join(CODES)}")

    @property
    def is_2014(self) -> bool:
        return self.name == CODE_2014

    @property
    def short_clock(self) -> bool:
        """A policy whose review interval is under a day runs on durations, not dates."""
        return self.review_interval < timedelta(days=1)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone()).date()

    def due_instant(self, day: date) -> datetime:
        """The UTC instant a timer for a calendar date fires (local morning, DST-safe)."""
        local = datetime.combine(day, time(hour=self.local_hour), tzinfo=self.zone())
        return local.astimezone(UTC)

    def latest_review_date(self, agreed_on: date, early_years: bool) -> date:
        return add_months(agreed_on, self.review_months(early_years))

    def review_months(self, early_years: bool, ehc_plan: bool = False) -> int:
        """The longest a plan may run before its review."""
        if ehc_plan:
            return self.max_review_months_ehc_plan
        return (
            self.max_review_months_early_years if early_years else self.max_review_months_school_age
        )


def add_months(day: date, months: int) -> date:
    """Calendar months later, clamped to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def compulsory_school_age_date(date_of_birth: date) -> date:
    """The first of 31 December, 31 March or 31 August on or after the fifth birthday."""
    fifth = _birthday(date_of_birth, 5)
    candidates = []
    for year in (fifth.year, fifth.year + 1):
        candidates += [date(year, 3, 31), date(year, 8, 31), date(year, 12, 31)]
    return min(d for d in candidates if d >= fifth)


def _birthday(date_of_birth: date, years: int) -> date:
    year = date_of_birth.year + years
    if date_of_birth.month == 2 and date_of_birth.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)  # a leap-day child turns five on 1 March in a common year
    return date_of_birth.replace(year=year)


def school_year_start(instant: datetime, policy: Policy) -> date:
    """1 September of the school year ``instant`` falls in (local calendar)."""
    local = policy.local_date(instant)
    year = local.year if local.month >= 9 else local.year - 1
    return date(year, 9, 1)
