"""Letters and emails: Jinja2 templates (plain text + HTML) and SMTP delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    UndefinedError,
)

from domain.model import Notice

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465)
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


@cache
def _environment(html: bool) -> Environment:
    # Two environments over the same files: HTML escapes what it inserts, text does not.
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=html,
        undefined=StrictUndefined,  # a missing fact is an error, not a silent blank in a letter
        keep_trailing_newline=True,
    )


def render_bodies(notice: Notice) -> tuple[str, str | None]:
    """(plain text, HTML) for a notice; a kind without a template gets its summary lines."""
    facts: dict[str, Any] = notice.facts
    try:
        text = _environment(False).get_template(f"{notice.kind}.j2").module.text(facts)  # type: ignore[attr-defined]
        html = _environment(True).get_template(f"{notice.kind}.j2").module.html(facts)  # type: ignore[attr-defined]
    except (TemplateNotFound, UndefinedError):
        # No template, or a notice queued by an older run before it carried these facts:
        # its summary lines still say what changed. Never fail (and retry forever) on a letter.
        return "\n".join([*notice.lines, "", "-- senflow, on behalf of the school"]), None
    return str(text).strip() + "\n", str(html).strip() + "\n"


#: Bodies as UTF-8 in quoted-printable: 7-bit safe for any relay, readable in an outbox file.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def build_message(
    notice: Notice, *, message_id: str, sender: str, to: str, journey: str, date: datetime
) -> Message:
    """The letter as a MIME message: plain text, and HTML as an alternative when the kind has
    a template. Built from the email package's compat32 classes, which keep headers as given:
    ``EmailMessage``'s header registry parsed and re-folded every header, and a letter took
    2.5 times as long (scripts/microbench_convert.py, docs/performance.md)."""
    text, html = render_bodies(notice)
    msg: Message = _part(text, "plain")
    if html is not None:
        msg = MIMEMultipart("alternative")
        msg.attach(_part(text, "plain"))
        msg.attach(_part(html, "html"))
    for name, value in (
        ("Message-ID", message_id),
        ("From", sender),
        ("To", to),
        ("Subject", notice.subject),
        ("Date", format_datetime(date)),
        ("X-Senflow-Journey", journey),
        ("X-Senflow-Notice", notice.kind),
    ):
        msg[name] = value if value.isascii() else Header(value, "utf-8").encode()
    return msg


def _part(body: str, subtype: str) -> MIMEText:
    # MIMEText hands its charset to set_payload, which takes a Charset (typeshed says str)
    return MIMEText(body, subtype, _UTF8_QP)  # type: ignore[arg-type]


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, msg: Message) -> None:
        """Returns once the server has accepted the message (250 after DATA)."""
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls,
            start_tls=s.starttls if not s.tls else False,
            timeout=s.timeout,
        )
        await smtp.connect()
        try:
            if s.user:
                await smtp.login(s.user, s.password or "")
            await smtp.send_message(msg)
        finally:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                pass  # accepted is accepted; a failed goodbye must not cause a resend
            except OSError:
                pass


async def deliver(msg: Message, smtp: SmtpSettings | None, outbox: Path, name: str) -> str:
    """Send one message now, outside any journey (a sign-in link): by SMTP when configured,
    else as ``outbox/name`` (written whole, so a reader never sees half a message).
    Returns the channel."""
    if smtp is not None:
        await SmtpMailer(smtp).send(msg)
        return "smtp"
    outbox.mkdir(parents=True, exist_ok=True)
    tmp = outbox / f".{name}.tmp"
    tmp.write_bytes(msg.as_bytes())
    tmp.replace(outbox / name)
    return "outbox"
