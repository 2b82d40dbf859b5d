"""What each role may do, as data: the API asks here before it asks Temporal.

Pure: no I/O. The journey's own rules (domain/machine.py and domain/guards.py) still decide
whether an allowed person's action is legal *now*; this module decides whether it is theirs to
attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.model import Role


class Permission(StrEnum):
    START = "start"
    ACT_SENCO = "act_senco"  # open School Action, escalate, refer, request, step down, close
    ACT_STAFF = "act_staff"  # notes and reviews (the journey refuses a teacher's escalation)
    READ_JOURNEY = "read_journey"  # state, timeline, list
    READ_HISTORY = "read_history"  # the audit trail and the raw export
    REPORTS = "reports"
    COMPLETE_REFERRAL = "complete_referral"  # only referrals assigned to them
    RESPOND_CONSULTATION = "respond_consultation"  # only the consultation their token is for
    CODEC = "codec"  # decode histories in the Temporal Web UI
    ACT_LOCAL_AUTHORITY = "act_local_authority"  # the EHC needs assessment's steps (2014)
    MIGRATE = "migrate"  # move running journeys to the 2014 Code
    MANAGE_USERS = "manage_users"  # add, list and revoke the users of their own settings


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SENCO: frozenset(
        {Permission.START, Permission.ACT_SENCO, Permission.ACT_STAFF, Permission.READ_JOURNEY}
    ),
    Role.CLASS_TEACHER: frozenset(
        {Permission.START, Permission.ACT_STAFF, Permission.READ_JOURNEY}
    ),
    Role.SPECIALIST: frozenset({Permission.COMPLETE_REFERRAL}),
    Role.PARENT: frozenset({Permission.RESPOND_CONSULTATION}),
    Role.ADMIN: frozenset(
        {Permission.READ_JOURNEY, Permission.REPORTS, Permission.MIGRATE, Permission.MANAGE_USERS}
    ),
    Role.LOCAL_AUTHORITY: frozenset(
        {Permission.READ_JOURNEY, Permission.ACT_LOCAL_AUTHORITY, Permission.REPORTS}
    ),
    Role.AUDITOR: frozenset({Permission.READ_JOURNEY, Permission.READ_HISTORY, Permission.CODEC}),
    Role.SYSTEM: frozenset(),
}

#: Roles whose reach is a set of schools (users add --school ...).
SCHOOL_ROLES = frozenset(
    {Role.SENCO, Role.CLASS_TEACHER, Role.ADMIN, Role.AUDITOR, Role.LOCAL_AUTHORITY}
)
#: Roles a person can be given with `senflow users add` (parents get letters' tokens).
USER_ROLES = (
    Role.SENCO,
    Role.CLASS_TEACHER,
    Role.SPECIALIST,
    Role.ADMIN,
    Role.AUDITOR,
    Role.LOCAL_AUTHORITY,
)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``actor_id`` is what history records, never a typed value."""

    actor_id: str
    role: Role
    schools: frozenset[str]
    token_id: str
    #: A parent's token: (workflow id, consultation id) it answers; None for everyone else.
    consultation: tuple[str, str] | None = None

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def reaches(self, school_id: str) -> bool:
        return self.role in SCHOOL_ROLES and school_id in self.schools


class Forbidden(Exception):
    """Authenticated, but this is not theirs to see or change. The message names no pupil
    data: only the rule that refused."""


def require(principal: Principal, permission: Permission, school_id: str | None = None) -> None:
    if not principal.may(permission):
        raise Forbidden(f"a {principal.role.value} may not {_WORDS[permission]}")
    if school_id is not None and not principal.reaches(school_id):
        raise Forbidden("that pupil's school is not one of yours")


_WORDS = {
    Permission.START: "start a journey",
    Permission.ACT_SENCO: "take this decision (a SENCO's)",
    Permission.ACT_STAFF: "record notes or reviews",
    Permission.READ_JOURNEY: "read journeys",
    Permission.READ_HISTORY: "read or export histories",
    Permission.REPORTS: "read the admin reports",
    Permission.COMPLETE_REFERRAL: "complete a specialist's assessment",
    Permission.RESPOND_CONSULTATION: "answer a parent consultation",
    Permission.CODEC: "decode payloads",
    Permission.ACT_LOCAL_AUTHORITY: "take the local authority's EHC assessment steps",
    Permission.MIGRATE: "move journeys to the 2014 Code",
    Permission.MANAGE_USERS: "manage users",
}
