"""Delivering the notices a journey owes: letters to parents, staff reminders, referrals.

Each message key is the workflow id + the journey step + kind + recipient.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import NamedTuple

import structlog
from temporalio import activity

from activities.mail import SmtpMailer, build_message
from activities.records import Recorder
from activities.reply_codes import ReplyCodes
from domain.model import Notice
from records.models import Contact, MessageSent

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
    rewritten: bool  # True when an earlier attempt had already delivered this message
    channel: str = "outbox"  # smtp, outbox, or undeliverable (no address on file)


class _Letter(NamedTuple):
    """A notice ready to deliver: its message, its recipient's address (None: none on file),
    and what the ledger row and the log line say of it."""

    workflow_id: str
    notice: Notice  # as the letter states it (with a reply code, where one is issued)
    msg: Message
    address: str | None
    message_id: str
    when: datetime
    attempt: int


def message_key(workflow_id: str, notice: Notice) -> str:
    return f"{workflow_id}/{notice.key}"


def message_id(workflow_id: str, notice: Notice, domain: str) -> str:
    digest = hashlib.sha256(message_key(workflow_id, notice).encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class Notifier:
    """Delivers notices: SMTP when configured, else the outbox folder; built in ``worker.py``.

    Idempotent in three layers: the delivery ledger (``messages_sent``) is checked first and
    written *before* the activity is acknowledged, so a retry after an accepted send sends
    nothing; the outbox file for a key is rewritten in place; and every message carries a
    Message-ID derived from workflow id + key, so a receiving server can drop a duplicate.
    """

    def __init__(
        self,
        outbox_dir: Path,
        mail_domain: str,
        sender: str,
        recorder: Recorder | None = None,
        smtp: SmtpMailer | None = None,
        reply_codes: ReplyCodes | None = None,
    ) -> None:
        self.outbox_dir = outbox_dir
        self.mail_domain = mail_domain
        self.sender = sender
        self.recorder = recorder
        self.smtp = smtp
        self.reply_codes = reply_codes

    def path_for(self, workflow_id: str, notice: Notice, folder: str = "") -> Path:
        name = f"{_UNSAFE.sub('_', workflow_id)}--{_UNSAFE.sub('_', notice.key)}.eml"
        return self.outbox_dir / folder / name if folder else self.outbox_dir / name

    def address_of(self, notice: Notice, contact: Contact | None) -> str | None:
        """The recipient's address from their contact (kept outside Temporal), if any."""
        if contact is not None and contact.email:
            return contact.email
        if self.smtp is not None:
            return None  # real mail, no address on file: undeliverable, a person must act
        # Outbox only (a demo, a test): the opaque id stands in as a mailbox.
        return f"{notice.recipient_role.value}.{notice.recipient_id}@{self.mail_domain}"

    @activity.defn(name="send_notice")
    async def send_notice(self, input: SendNoticeInput) -> SendNoticeResult:
        info = activity.info()
        # The time the journey decided to send it, not the attempt's clock: retries match.
        when, attempt = info.scheduled_time, info.attempt
        if self.smtp is None:
            # The outbox: the ledger, the letter's file and the ledger's new row are all
            # blocking work, so all of it runs in one thread hop (a hop, with its GIL hand-over
            # and pool checkout, cost more per letter than the reads it carried).
            return await asyncio.to_thread(self._to_outbox, input, when, attempt)
        letter = await asyncio.to_thread(self._prepare, input, when, attempt)
        if isinstance(letter, SendNoticeResult):
            return letter
        if letter.address is None:
            return await asyncio.to_thread(self._file, letter)
        await self.smtp.send(letter.msg)  # raises (and so retries) until the server accepts
        await asyncio.to_thread(self._record, letter, "smtp")
        return self._sent(letter, "smtp", Path(), rewritten=False)

    def _to_outbox(self, input: SendNoticeInput, when: datetime, attempt: int) -> SendNoticeResult:
        letter = self._prepare(input, when, attempt)
        return letter if isinstance(letter, SendNoticeResult) else self._file(letter)

    def _prepare(
        self, input: SendNoticeInput, when: datetime, attempt: int
    ) -> SendNoticeResult | _Letter:
        """The ledger's answer for a notice already delivered, else the letter to deliver."""
        notice = input.notice
        mid = message_id(input.workflow_id, notice, self.mail_domain)
        if self.recorder is None:
            address = self.address_of(notice, None)  # no database: nothing to look up
        else:
            # Both reads in one session: the ledger entry, else the recipient's contact.
            sent, contact = self.recorder.delivery_context(
                input.workflow_id, notice.key, notice.recipient_id
            )
            if sent is not None:  # an earlier attempt delivered it and recorded it
                log.info(
                    "notice_already_sent",
                    workflow_id=input.workflow_id,
                    key=notice.key,
                    attempt=attempt,
                )
                return SendNoticeResult(
                    message_id=sent.message_id, path="", rewritten=True, channel=sent.channel
                )
            address = self.address_of(notice, contact)
        if self.reply_codes is not None:  # the code is in the letter only, never in history
            notice = self.reply_codes.add_to(input.workflow_id, notice)
        msg = build_message(
            notice,
            message_id=mid,
            sender=self.sender,
            to=address or f"undeliverable.{notice.recipient_id}@{self.mail_domain}",
            journey=input.workflow_id,
            date=when,
        )
        return _Letter(input.workflow_id, notice, msg, address, mid, when, attempt)

    def _file(self, letter: _Letter) -> SendNoticeResult:
        """No SMTP configured, or no address on file: a file a person can act on."""
        channel = "outbox" if letter.address is not None else "undeliverable"
        folder = "" if letter.address is not None else channel
        path = self.path_for(letter.workflow_id, letter.notice, folder)
        rewritten = self._write(path, letter.msg.as_bytes())
        self._record(letter, channel)
        return self._sent(letter, channel, path, rewritten)

    def _record(self, letter: _Letter, channel: str) -> None:
        """The ledger row, written before the activity is acknowledged: a retry sends nothing."""
        if self.recorder is None:
            return
        notice = letter.notice
        self.recorder.record_message(
            MessageSent(
                workflow_id=letter.workflow_id,
                notice_key=notice.key,
                kind=notice.kind,
                recipient_role=notice.recipient_role.value,
                recipient_id=notice.recipient_id,
                message_id=letter.message_id,
                sent_at=letter.when,
                channel=channel,
            )
        )

    def _sent(self, letter: _Letter, channel: str, path: Path, rewritten: bool) -> SendNoticeResult:
        notice = letter.notice
        log.info(
            "notice_sent",
            workflow_id=letter.workflow_id,
            kind=notice.kind,
            recipient_role=notice.recipient_role.value,
            key=notice.key,
            channel=channel,
            attempt=letter.attempt,
            rewritten=rewritten,
        )
        return SendNoticeResult(
            message_id=letter.message_id, path=str(path), rewritten=rewritten, channel=channel
        )

    @staticmethod
    def _write(path: Path, data: bytes) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a letter
        return existed
