"""Delivering the notices a journey owes: letters to parents, staff reminders, referrals.

Until real mail exists (issue 4) each message is an RFC 5322 file in the outbox folder, one
file per message key. The key is the workflow id + the journey step + kind + recipient, so a
retried activity rewrites the same file with the same Message-ID: a retry never sends twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import structlog
from temporalio import activity

from activities.records import Recorder
from domain.model import Notice
from records.models import MessageSent

log = structlog.get_logger("senflow.activities")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class SendNoticeInput:
    workflow_id: str
    notice: Notice


@dataclass
class SendNoticeResult:
    message_id: str
    path: str
    rewritten: bool  # True when an earlier attempt had already written this message


def message_key(workflow_id: str, notice: Notice) -> str:
    return f"{workflow_id}/{notice.key}"


def message_id(workflow_id: str, notice: Notice, domain: str) -> str:
    digest = hashlib.sha256(message_key(workflow_id, notice).encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class Notifier:
    """Activities that need the outbox folder and mail settings; built in ``worker.py``."""

    def __init__(
        self, outbox_dir: Path, mail_domain: str, sender: str, recorder: Recorder | None = None
    ) -> None:
        self.outbox_dir = outbox_dir
        self.mail_domain = mail_domain
        self.sender = sender
        self.recorder = recorder

    def path_for(self, workflow_id: str, notice: Notice) -> Path:
        name = f"{_UNSAFE.sub('_', workflow_id)}--{_UNSAFE.sub('_', notice.key)}.eml"
        return self.outbox_dir / name

    def render(self, input: SendNoticeInput) -> EmailMessage:
        notice = input.notice
        msg = EmailMessage()
        msg["Message-ID"] = message_id(input.workflow_id, notice, self.mail_domain)
        msg["From"] = self.sender
        # Contacts arrive with the mail issue; until then the opaque id is the mailbox.
        msg["To"] = f"{notice.recipient_role.value}.{notice.recipient_id}@{self.mail_domain}"
        msg["Subject"] = notice.subject
        msg["X-Senflow-Journey"] = input.workflow_id
        msg["X-Senflow-Notice"] = notice.kind
        info = activity.info()
        # The time the journey decided to send it, not the attempt's clock: retries match.
        msg["Date"] = format_datetime(info.scheduled_time)
        msg.set_content("\n".join([*notice.lines, "", "-- senflow, on behalf of the school"]))
        return msg

    @activity.defn(name="send_notice")
    async def send_notice(self, input: SendNoticeInput) -> SendNoticeResult:
        path = self.path_for(input.workflow_id, input.notice)
        msg = self.render(input)
        rewritten = await asyncio.to_thread(self._write, path, msg.as_bytes())
        if self.recorder is not None:
            await asyncio.to_thread(
                self.recorder.record_message,
                MessageSent(
                    workflow_id=input.workflow_id,
                    notice_key=input.notice.key,
                    kind=input.notice.kind,
                    recipient_role=input.notice.recipient_role.value,
                    recipient_id=input.notice.recipient_id,
                    message_id=str(msg["Message-ID"]),
                    sent_at=activity.info().scheduled_time,
                ),
            )
        log.info(
            "notice_written",
            workflow_id=input.workflow_id,
            kind=input.notice.kind,
            recipient_role=input.notice.recipient_role.value,
            key=input.notice.key,
            attempt=activity.info().attempt,
            rewritten=rewritten,
        )
        return SendNoticeResult(
            message_id=str(msg["Message-ID"]), path=str(path), rewritten=rewritten
        )

    @staticmethod
    def _write(path: Path, data: bytes) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a letter
        return existed
