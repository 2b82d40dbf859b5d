"""Letters rendered from the templates carry the facts they must; SMTP delivers each once."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import Engine, event
from temporalio.testing import ActivityEnvironment

import activities.notices as notices_module
from activities.mail import SmtpMailer, SmtpSettings, build_message, render_bodies
from activities.notices import Notifier, SendNoticeInput
from activities.reply_codes import ReplyCodes
from domain.commands import CloseInput, ParentRespondedInput
from domain.journey import FEATURE_REVIEW_INVITATIONS, Journey
from domain.model import CloseReason, Notice, ParentReply
from scenarios import SENCO, T0, at_action_plus_with_referral
from smtp_sink import SmtpServer, free_port


def all_notices() -> dict[str, Notice]:
    """One notice of every kind, made by a real journey run through its timers."""
    journey = at_action_plus_with_referral("p9")
    journey = Journey(journey.state, frozenset({FEATURE_REVIEW_INVITATIONS}))
    consultation = journey.state.consultations[-1].consultation_id
    journey.parent_responded(
        ParentRespondedInput(
            "r-dis", consultation, "carer-2", ParentReply.DISAGREE, "we see progress at home"
        ),
        T0 + timedelta(days=13),
    )
    for _ in range(40):
        wake = journey.next_wakeup()
        if (
            wake is None
            or journey.state.overdue
            and any(r.chases >= 2 for r in journey.state.referrals)
        ):
            break
        journey.on_time(wake)
    journey.close(
        CloseInput(SENCO, CloseReason.MOVED_SCHOOL, "family moved"), T0 + timedelta(days=400)
    )
    found: dict[str, Notice] = {}
    for notice in journey.state.outbox:
        found.setdefault(notice.kind, notice)
    return found


def test_every_kind_of_notice_has_a_text_and_an_html_letter() -> None:
    notices = all_notices()
    assert set(notices) == {
        "consultation",
        "consultation_reminder",
        "review_invitation",
        "review_reminder",
        "review_overdue",
        "referral_request",
        "referral_chase",
        "referral_escalated",
        "parent_reply",
        "closure",
    }
    for kind, notice in notices.items():
        text, html = render_bodies(notice)
        assert html is not None and html.startswith("<!DOCTYPE html>"), kind
        assert notice.facts["pupil_ref"] in text and notice.facts["senco"] in text, kind


def test_a_decision_letter_says_what_why_which_needs_the_targets_and_by_when() -> None:
    notice = all_notices()["consultation"]
    text, html = render_bodies(notice)
    f = notice.facts
    assert f"the school decided: {f['decision']}" in text
    assert f"Why: {f['reason']}" in text
    for need in f["needs"]:
        assert need in text and need in (html or "")
    for target in f["targets"]:
        assert target["description"] in text and target["criterion"] in text
    assert f"reviewed on {f['review_date']}" in text
    assert f"by {f['reply_by']}" in text and f["consultation_id"] in text
    assert "Contact: the SENCO" in text


def test_html_letters_escape_what_people_typed() -> None:
    notice = all_notices()["parent_reply"]
    notice.facts["comments"] = "<script>alert(1)</script> & more"
    text, html = render_bodies(notice)
    assert "<script>alert(1)</script> & more" in text
    assert html is not None and "&lt;script&gt;" in html and "<script>" not in html


def notifier(tmp_path, recorder, port: int) -> Notifier:
    smtp = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port, starttls=False, timeout=5))
    return Notifier(tmp_path / "outbox", "school.invalid", "office@school.invalid", recorder, smtp)


def consultation_inputs() -> list[SendNoticeInput]:
    journey = at_action_plus_with_referral("p7")
    return [
        SendNoticeInput("pupil-p7", n)
        for n in journey.state.outbox
        if n.kind == "consultation" and n.key.startswith("2-")
    ]


async def test_each_parent_gets_exactly_one_message_however_often_it_is_retried(
    tmp_path, recorder, smtp_server
) -> None:
    sender = notifier(tmp_path, recorder, smtp_server.port)
    env = ActivityEnvironment()
    inputs = consultation_inputs()
    assert len(inputs) == 2  # two carers, one letter each
    for _ in range(3):
        for item in inputs:
            await env.run(sender.send_notice, item)

    got = smtp_server.sink.messages
    assert sorted(rcpt for rcpts, _ in got for rcpt in rcpts) == [
        "alex@example.invalid",
        "sam@example.invalid",
    ]
    for _, msg in got:
        assert msg["Subject"] == "Your child's SEN support: opened School Action"
        assert msg["Message-ID"].endswith("@school.invalid>")
        plain = msg.get_body(preferencelist=("plain",)).get_content()
        assert "little or no progress even when teaching targets the difficulty" in plain
        assert msg.get_body(preferencelist=("html",)) is not None
    assert len({msg["Message-ID"] for _, msg in got}) == 2
    assert recorder.message_sent("pupil-p7", inputs[0].notice.key).channel == "smtp"


async def test_a_crash_after_the_server_accepted_does_not_send_again(
    tmp_path, recorder, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = notifier(tmp_path, recorder, smtp_server.port)
    [item, _] = consultation_inputs()

    class Crash(Exception):
        pass

    real_info = notices_module.log.info

    def crash_once(event: str, **kw: object) -> None:
        if event == "notice_sent":
            monkeypatch.setattr(notices_module.log, "info", real_info)
            raise Crash("worker died before acknowledging")
        real_info(event, **kw)

    monkeypatch.setattr(notices_module.log, "info", crash_once)
    with pytest.raises(Crash):
        await ActivityEnvironment().run(sender.send_notice, item)
    assert len(smtp_server.sink.messages) == 1
    retried = await ActivityEnvironment().run(sender.send_notice, item)  # Temporal's retry
    assert retried.rewritten and len(smtp_server.sink.messages) == 1


async def test_with_the_server_down_the_send_fails_and_succeeds_once_it_is_back(
    tmp_path, recorder
) -> None:
    server = SmtpServer(free_port())
    sender = notifier(tmp_path, recorder, server.port)
    [item, _] = consultation_inputs()
    for _ in range(2):
        with pytest.raises(OSError):
            await ActivityEnvironment().run(sender.send_notice, item)
    assert recorder.message_sent("pupil-p7", item.notice.key) is None
    server.start()
    try:
        await ActivityEnvironment().run(sender.send_notice, item)
        await ActivityEnvironment().run(sender.send_notice, item)
        assert len(server.sink.messages) == 1
    finally:
        server.stop()


async def test_without_an_address_on_file_the_letter_is_kept_for_a_person(
    tmp_path, recorder, smtp_server
) -> None:
    sender = notifier(tmp_path, recorder, smtp_server.port)
    [item, _] = consultation_inputs()
    item.notice.recipient_id = "carer-unknown"
    result = await ActivityEnvironment().run(sender.send_notice, item)
    assert result.channel == "undeliverable"
    assert smtp_server.sink.messages == []
    assert len(list((tmp_path / "outbox" / "undeliverable").glob("*.eml"))) == 1


def test_every_2014_notice_has_a_text_and_an_html_letter() -> None:
    from domain.commands import (
        EhcAdviceRequestInput,
        EhcDecisionInput,
        MigrateInput,
        RequestStatutoryAssessmentInput,
    )
    from domain.model import Actor, Role

    journey = at_action_plus_with_referral("p8", completed_after=3)
    journey.request_statutory_assessment(
        RequestStatutoryAssessmentInput(SENCO, "needs exceed provision"), T0 + timedelta(days=16)
    )
    journey.move_to_code_2014(
        MigrateInput(Actor("admin-1", Role.ADMIN), "2014 Code", local_authority_id="la-7"),
        T0 + timedelta(days=20),
    )
    la = Actor("la-7", Role.LOCAL_AUTHORITY)
    journey.ehc_decide(EhcDecisionInput(la, True, "assess"), T0 + timedelta(days=21))
    journey.ehc_request_advice(EhcAdviceRequestInput(la, "ep-2", "educational_psychologist"), T0)
    while (wake := journey.next_wakeup()) is not None and wake < T0 + timedelta(days=200):
        journey.on_time(wake)
    found: dict[str, Notice] = {}
    for notice in journey.state.outbox:
        found.setdefault(notice.kind, notice)
    kinds = {
        "code_2014_transfer",
        "ehc_request",
        "ehc_milestone",
        "ehc_advice_request",
        "ehc_deadline_warning",
        "ehc_deadline_breached",
    }
    assert kinds <= set(found)
    for kind in kinds:
        text, html = render_bodies(found[kind])
        assert html is not None and html.startswith("<!DOCTYPE html>"), kind
        assert found[kind].facts["pupil_ref"] in text, kind
        assert "{{" not in text and "None" not in text, (kind, text)
    transfer, _ = render_bodies(found["code_2014_transfer"])
    assert "School Action Plus to sen_support" not in transfer  # a statutory assessment ...
    assert "EHC needs assessment" in transfer  # ... continues on the EHC timeline
    request, _ = render_bodies(found["ehc_request"])
    assert "final EHC plan by 2027-02-14" in request  # 20 weeks from the transfer on 27 Sept


class Statements:
    """The SQL an engine runs and the pool checkouts it makes, while counting."""

    def __init__(self, engine: Engine) -> None:
        self.sql: list[tuple[str, str]] = []  # (verb, table)
        self.checkouts = 0
        event.listen(engine, "before_cursor_execute", self._sql)
        event.listen(engine, "checkout", self._checkout)

    def _sql(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        verb = statement.split()[0]
        table = re.search(r"\b(?:FROM|INTO|UPDATE) (\w+)", statement)
        self.sql.append((verb, table.group(1) if table else ""))

    def _checkout(self, *args: object) -> None:
        self.checkouts += 1


class NoReplyCodes(ReplyCodes):
    def __init__(self) -> None:
        pass

    def add_to(self, workflow_id: str, notice: Notice) -> Notice:
        raise AssertionError("a letter already sent was prepared again")


async def test_a_letter_already_in_the_ledger_is_neither_looked_up_nor_sent_again(
    tmp_path, recorder, smtp_server
) -> None:
    sender = notifier(tmp_path, recorder, smtp_server.port)
    [item, _] = consultation_inputs()
    first = await ActivityEnvironment().run(sender.send_notice, item)
    sender.reply_codes = NoReplyCodes()
    seen = Statements(recorder.session_factory.kw["bind"])
    again = await ActivityEnvironment().run(sender.send_notice, item)
    assert (again.rewritten, again.message_id, again.channel) == (True, first.message_id, "smtp")
    assert len(smtp_server.sink.messages) == 1
    assert seen.checkouts == 1 and seen.sql == [("SELECT", "messages_sent")]


async def test_a_new_letter_reads_the_ledger_and_the_address_in_one_checkout(
    tmp_path, recorder, smtp_server
) -> None:
    sender = notifier(tmp_path, recorder, smtp_server.port)
    [item, _] = consultation_inputs()
    seen = Statements(recorder.session_factory.kw["bind"])
    await ActivityEnvironment().run(sender.send_notice, item)
    [(rcpts, _)] = smtp_server.sink.messages
    assert rcpts == ["sam@example.invalid"]
    assert seen.checkouts == 2  # the reads before sending, the ledger write after
    assert seen.sql == [
        ("SELECT", "messages_sent"),
        ("SELECT", "contacts"),
        ("INSERT", "messages_sent"),
    ]
    assert recorder.message_sent("pupil-p7", item.notice.key).channel == "smtp"


@pytest.mark.parametrize("kind", sorted(all_notices()))
def test_every_letter_is_seven_bit_mime_that_reads_back_as_rendered(kind: str) -> None:
    # A subject and a reason a school may well type: accents, a pound sign, a curly quote.
    notice = replace(
        all_notices()[kind],
        subject="Réunion for Zoë’s plan: £0 cost",
        lines=["Ligne é ü", "two"],
    )
    date = T0 + timedelta(days=1)
    data = build_message(
        notice,
        message_id="<m1@school.invalid>",
        sender="s@x",
        to="t@y",
        journey="pupil-z",
        date=date,
    ).as_bytes()
    assert max(data) < 128  # any relay takes it; the outbox file reads as text
    msg = message_from_bytes(data, policy=policy.default)
    text, html = render_bodies(notice)
    assert msg["Subject"] == notice.subject
    assert msg["Message-ID"] == "<m1@school.invalid>"
    assert msg["Date"].datetime == date
    assert msg.get_body(preferencelist=("plain",)).get_content() == text
    if html is None:
        assert msg.get_body(preferencelist=("html",)) is None
    else:
        assert msg.get_body(preferencelist=("html",)).get_content() == html
