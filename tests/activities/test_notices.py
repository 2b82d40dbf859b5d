"""The outbox activity: one RFC 5322 file per message key, however often it is retried."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.notices import Notifier, SendNoticeInput
from domain.model import Notice, Role


def notice(key: str = "7-consultation-carer-1") -> Notice:
    return Notice(
        key=key,
        kind="consultation",
        recipient_role=Role.PARENT,
        recipient_id="carer-1",
        subject="Your child's SEN support: opened School Action",
        lines=["Decision: opened School Action.", "Please reply by 2026-12-08."],
    )


async def test_a_retried_notice_rewrites_the_same_letter_once(tmp_path: Path) -> None:
    notifier = Notifier(tmp_path, "school.invalid", "office@school.invalid")
    env = ActivityEnvironment()
    first = await env.run(notifier.send_notice, SendNoticeInput("pupil-p1", notice()))
    again = await env.run(notifier.send_notice, SendNoticeInput("pupil-p1", notice()))

    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1
    assert (first.rewritten, again.rewritten) == (False, True)
    assert first.message_id == again.message_id
    msg = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["Message-ID"] == first.message_id
    assert msg["To"] == "parent.carer-1@school.invalid"
    assert msg["Subject"] == "Your child's SEN support: opened School Action"
    assert "Please reply by 2026-12-08." in msg.get_content()


async def test_different_steps_or_journeys_are_different_letters(tmp_path: Path) -> None:
    notifier = Notifier(tmp_path, "school.invalid", "office@school.invalid")
    env = ActivityEnvironment()
    ids = {
        (await env.run(notifier.send_notice, SendNoticeInput(wf, notice(key)))).message_id
        for wf, key in [
            ("pupil-p1", "7-consultation-carer-1"),
            ("pupil-p1", "9-consultation-carer-1"),
            ("pupil-p2", "7-consultation-carer-1"),
        ]
    }
    assert len(ids) == 3
    assert len(list(tmp_path.glob("*.eml"))) == 3
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, nothing half-done left
