"""Task queue priority for a notice's activity (Temporal's ``priority_key``: 1 goes first,
the default is 3).

At the start of term thousands of reviews fall due in the same hour, and each queues the
SENCO's reminder and letters inviting the parents. Without an order the reminder waits behind
every letter queued before it; the deadline notices to staff go first (decision 91). Shared by
``PupilJourney`` and the benchmark's baseline, which mirrors the journey's activities.
"""

from temporalio.common import Priority

#: Notices that tell staff (the SENCO, the local authority) a deadline has come or passed: an
#: IEP review due or overdue, a statutory EHC deadline near or missed.
URGENT_NOTICES = frozenset(
    {"review_reminder", "review_overdue", "ehc_deadline_warning", "ehc_deadline_breached"}
)
URGENT = Priority(priority_key=1)


def notice_priority(kind: str) -> Priority:
    """``URGENT`` for a deadline notice to staff, else the default (no priority sent)."""
    return URGENT if kind in URGENT_NOTICES else Priority.default
