"""Parents' reply codes: a single-purpose API token printed in each consultation letter.

Issued here, in the activity that writes the letter, never in workflow code: the code must not
enter Temporal's history. It is derived from the token secret and (journey, consultation,
parent), so the letter, its reminder and any retried attempt carry the same code, stored once.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from access.store import issue_parent_token
from domain.model import Notice, Role
from domain.policy import LONDON

#: Letters that ask a parent for an answer.
ASKING = ("consultation", "consultation_reminder")


class ReplyCodes:
    def __init__(self, factory: sessionmaker[Session], secret: bytes, web_url: str) -> None:
        self.factory = factory
        self.secret = secret
        self.web_url = web_url.rstrip("/")

    def add_to(self, workflow_id: str, notice: Notice) -> Notice:
        """The notice with ``reply_code``, ``reply_url`` and ``reply_link`` facts when it asks a
        parent to reply."""
        facts = notice.facts
        if notice.kind not in ASKING or notice.recipient_role is not Role.PARENT:
            return notice
        if "consultation_id" not in facts or "reply_by" not in facts:
            return notice  # queued by an older run without these facts: the letter still works
        code = issue_parent_token(
            self.factory,
            self.secret,
            workflow_id=workflow_id,
            school_id=str(facts.get("school", "")),
            consultation_id=str(facts["consultation_id"]),
            parent_id=notice.recipient_id,
            expires_at=expiry(str(facts["reply_by"])),
        )
        # The link carries the code in its fragment: a browser never sends a fragment to a
        # server, so it stays out of access logs and Referer headers; the page posts it.
        facts = {
            **facts,
            "reply_code": code,
            "reply_url": f"{self.web_url}/reply",
            "reply_link": f"{self.web_url}/consultation#code={code}",
        }
        return dataclasses.replace(notice, facts=facts)


def expiry(reply_by: str) -> datetime:
    """The end of the reply-by day (London), or the minute after a short-clock deadline."""
    zone = ZoneInfo(LONDON)
    if " " in reply_by:  # "YYYY-MM-DD HH:MM": a demo policy's deadline to the minute
        local = datetime.strptime(reply_by, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
        return (local + timedelta(minutes=1)).astimezone(UTC)
    day = datetime.strptime(reply_by, "%Y-%m-%d").replace(tzinfo=zone)
    return (day + timedelta(days=1)).astimezone(UTC)
