"""The web pages in a real browser (Debian's chromium, driven by Playwright) over a stack
started as `make run` starts it: people sign in by the link the outbox holds, act through the
pages, and every page visited passes axe-core with no serious or critical violation (the CSP
is bypassed in these browser contexts only, to inject axe).

Set SENFLOW_SCREENSHOTS=docs/screenshots to write each role's main page there."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from browser import (
    CHROMIUM,
    assert_accessible,
    axe_check,
    focus_id,
    shoot,
    sign_in,
    tab_to,
    wait_for_link,
)
from playwright.sync_api import Browser, Page, expect, sync_playwright

from stack import senflow_up

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SHOTS = Path(os.environ["SENFLOW_SCREENSHOTS"]) if os.environ.get("SENFLOW_SCREENSHOTS") else None


class Stack:
    def __init__(self, base: str, state: Path) -> None:
        self.base, self.state = base, state
        self.outbox = state / "outbox"
        self.visited: list[str] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with senflow_up(tmp_path_factory.mktemp("web")) as (env, state):
        yield Stack(env["SENFLOW_API_URL"], state)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield found
        found.close()


def _page(browser: Browser, width: int = 1100) -> Page:
    context = browser.new_context(bypass_csp=True, viewport={"width": width, "height": 900})
    context.set_default_timeout(20_000)
    return context.new_page()


def _raise_concern(page: Page, stack: Stack, pupil: str, parent: str) -> str:
    page.goto(f"{stack.base}/concerns/new")
    assert_accessible(page, stack.visited)
    page.get_by_label("The pupil's reference").fill(pupil)
    page.get_by_label("What concerns you").fill("reading well behind peers")
    page.get_by_label("The SENCO's id").fill("senco-1")
    page.get_by_label("Parents' or carers' ids").fill(parent)
    page.get_by_role("button", name="Raise the concern").click()
    page.wait_for_url(re.compile(r".*/journeys/journey-[0-9a-f]+\?done=concern"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Monitoring")
    return page.url.split("/journeys/")[1].split("?")[0]


def _open_school_action(page: Page, stack: Stack, journey: str, review: date) -> None:
    page.goto(f"{stack.base}/journeys/{journey}")
    page.get_by_role("link", name="Open School Action").click()
    assert_accessible(page, stack.visited)
    page.get_by_label("SA-LITERACY-MATHS", exact=False).check()
    page.get_by_label("What shows it").fill("reading age 18 months behind")
    page.get_by_label("Target 1", exact=True).fill("read 30 high-frequency words")
    page.get_by_label("How you will know target 1 is met").fill("reads them in two sessions")
    page.get_by_label("Teaching strategies").fill("daily phonics")
    page.get_by_label("Provision").fill("TA 3x20 min a week")
    page.get_by_label("Who is responsible").fill("teacher-1")
    page.get_by_label("Review date (optional)").fill(review.isoformat())
    page.get_by_role("button", name="Open School Action").click()
    page.wait_for_url(re.compile(r".*\?done=open-school-action"))
    expect(page.get_by_role("heading", level=1)).to_have_text("School Action")


def test_a_senco_signs_in_sees_a_review_refused_then_escalates_by_keyboard(
    stack: Stack, browser: Browser
) -> None:
    page = _page(browser)
    sign_in(page, stack.base, stack.outbox, "senco-1", stack.visited)
    assert page.url.endswith("/school")
    journey = _raise_concern(page, stack, "w101", "carer-w101")
    _open_school_action(page, stack, journey, date.today() + timedelta(days=7))

    # the home page lists the review as due within 14 days (the read model, soon after)
    deadline = time.monotonic() + 30
    while True:
        page.goto(f"{stack.base}/school")
        due = page.locator("h3:has-text('Due within 14 days') + table")
        if due.count() and due.get_by_role("link", name="w101").count():
            break
        assert time.monotonic() < deadline, "the review never reached the home page"
        time.sleep(0.5)
    assert_accessible(page, stack.visited)
    shoot(page, SHOTS, "senco-home")
    due.get_by_role("link", name="w101").click()
    assert_accessible(page, stack.visited)
    rows_before = page.locator("h2:has-text('Timeline') + table tbody tr").count()

    # escalating straight from School Action is refused with the journey's own reason
    page.get_by_role("link", name="Move to School Action Plus").click()
    page.get_by_label("AP-PROGRESS-LONG", exact=False).check()
    page.get_by_label("What shows it").fill("no progress at all")
    page.get_by_label("Target 1", exact=True).fill("decode CVC words")
    page.get_by_label("How you will know target 1 is met").fill("9/10 in a probe")
    page.get_by_label("Teaching strategies").fill("precision teaching")
    page.get_by_label("Provision").fill("daily 1:1")
    page.get_by_label("Who is responsible").fill("teacher-1")
    page.get_by_role("button", name="Move to School Action Plus").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("review")
    assert summary.get_by_role("link").first.get_attribute("href") == "#f-triggers"
    assert page.get_by_label("What shows it").input_value() == "no progress at all"
    assert page.title().startswith("Error:")
    assert_accessible(page, stack.visited)
    page.goto(f"{stack.base}/journeys/{journey}")
    assert page.locator("h2:has-text('Timeline') + table tbody tr").count() == rows_before

    # the review, escalating, with the keyboard alone
    page.get_by_role("link", name="Record a review").click()
    assert_accessible(page, stack.visited)
    shoot(page, SHOTS, "senco-review-form")
    page.locator("body").focus()
    tab_to(page, "el && el.name === 'outcome'")
    page.keyboard.press("Space")  # the first outcome: continue
    page.keyboard.press("ArrowDown")  # the next: escalate
    assert page.locator("#f-outcome-2").is_checked()
    focus_id(page, "f-progress_0")
    page.keyboard.type("reads 12 of 30 words")
    focus_id(page, "f-notes")
    page.keyboard.type("little progress despite the IEP")
    tab_to(page, "el && el.name === 'triggers' && el.value === 'AP-LITERACY-MATHS'")
    page.keyboard.press("Space")
    for field, text in (
        ("f-target_1", "decode CVC words"),
        ("f-criterion_1", "9/10 in a probe"),
        ("f-strategies", "precision teaching"),
        ("f-provision", "daily 1:1"),
        ("f-responsible", "teacher-1"),
    ):
        focus_id(page, field)
        page.keyboard.type(text)
    tab_to(page, "el && el.type === 'submit'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*\?done=review"))
    expect(page.get_by_role("heading", level=1)).to_have_text("School Action Plus")
    timeline = page.locator("h2:has-text('Timeline') + table")
    expect(timeline).to_contain_text("AP-LITERACY-MATHS")
    assert_accessible(page, stack.visited)
    shoot(page, SHOTS, "senco-pupil")
    # the parents are consulted on the escalation: their letter is in the outbox
    wait_for_link(stack.outbox, "*.eml", "carer-w101", r"consultation#code=\S+", set(), timeout=30)


def _review_escalating(page: Page) -> None:
    page.get_by_role("link", name="Record a review").click()
    page.get_by_label("Move up a stage (School Action Plus)").check()
    page.locator("#f-progress_0").fill("reads 12 of 30 words")
    page.get_by_label("Review notes").fill("little progress despite the IEP")
    page.get_by_label("AP-LITERACY-MATHS", exact=False).check()
    page.get_by_label("Target 1", exact=True).fill("decode CVC words")
    page.get_by_label("How you will know target 1 is met").fill("9/10 in a probe")
    page.get_by_label("Teaching strategies").fill("precision teaching")
    page.get_by_label("Provision").fill("daily 1:1")
    page.get_by_label("Who is responsible").fill("teacher-1")
    page.get_by_role("button", name="Record the review").click()
    page.wait_for_url(re.compile(r".*\?done=review"))


def test_a_specialist_completes_a_referral_and_the_senco_closes(
    stack: Stack, browser: Browser
) -> None:
    senco = _page(browser)
    sign_in(senco, stack.base, stack.outbox, "senco-1", stack.visited)
    journey = _raise_concern(senco, stack, "w106", "carer-w106")
    _open_school_action(senco, stack, journey, date.today() + timedelta(days=30))
    _review_escalating(senco)
    senco.get_by_role("link", name="Refer to a specialist").click()
    assert_accessible(senco, stack.visited)
    senco.get_by_label("Educational psychologist").check()
    senco.get_by_label("The specialist's id").fill("ep-7")
    senco.get_by_label("What you are asking").fill("what underlies the slow decoding?")
    senco.get_by_role("button", name="Send the referral").click()
    senco.wait_for_url(re.compile(r".*\?done=refer"))
    expect(senco.locator("h2:has-text('Referrals') + table")).to_contain_text("ep-7")

    specialist = _page(browser)
    sign_in(specialist, stack.base, stack.outbox, "ep-7", stack.visited)
    deadline = time.monotonic() + 30
    while not specialist.get_by_role("link", name="w106 (school-1)").count():
        assert time.monotonic() < deadline, "the referral never reached the specialist's page"
        time.sleep(0.5)
        specialist.goto(f"{stack.base}/referrals")
    specialist.get_by_role("link", name="w106 (school-1)").click()
    assert_accessible(specialist, stack.visited)
    specialist.get_by_label("Summary of your assessment").fill("phonological difficulty")
    specialist.get_by_label("Recommendations").fill("structured literacy programme")
    specialist.get_by_role("button", name="Send the assessment").click()
    specialist.wait_for_url("**/referrals?done=assessment")
    assert_accessible(specialist, stack.visited)

    deadline = time.monotonic() + 20
    while True:  # the journey applies the report moments later
        senco.goto(f"{stack.base}/journeys/{journey}")
        if "phonological difficulty" in senco.locator("main").inner_text():
            break
        assert time.monotonic() < deadline, "the report never reached the journey"
        time.sleep(0.5)
    senco.get_by_role("link", name="Close the journey").click()
    senco.get_by_label("Pupil moved to another school").check()
    senco.get_by_label("Details").fill("moved to school-9")
    senco.get_by_role("button", name="Close the journey").click()
    senco.wait_for_url(re.compile(r".*\?done=close"))
    expect(senco.get_by_role("heading", level=1)).to_have_text("Closed")
    assert_accessible(senco, stack.visited)


def test_a_double_submitted_form_acts_once(stack: Stack, browser: Browser) -> None:
    page = _page(browser)
    sign_in(page, stack.base, stack.outbox, "senco-1", stack.visited)
    journey = _raise_concern(page, stack, "w102", "carer-w102")
    page.get_by_role("link", name="Add a progress note").click()
    page.get_by_label("Progress note").fill("reads 12 words")
    form = page.locator("#action-form")
    data: dict[str, str | float | bool] = {
        name: form.locator(f"[name={name}]").input_value() for name in ("csrf", "form_key")
    }
    data["note"] = "reads 12 words"
    sent = [  # the same rendered form sent twice, as a resend would
        page.request.post(f"{stack.base}/journeys/{journey}/act/note", form=data) for _ in range(2)
    ]
    assert [r.url.rsplit("?", 1)[-1] for r in sent] == ["done=note", "done=again"]
    page.goto(f"{stack.base}/journeys/{journey}")
    timeline = page.locator("h2:has-text('Timeline') + table")
    expect(timeline).to_contain_text("reads 12 words")
    assert timeline.get_by_text("reads 12 words").count() == 1


def test_a_class_teacher_raises_a_concern(stack: Stack, browser: Browser) -> None:
    page = _page(browser)
    sign_in(page, stack.base, stack.outbox, "teacher-1", stack.visited)
    assert page.url.endswith("/school")
    assert_accessible(page, stack.visited)
    shoot(page, SHOTS, "class-teacher-home")
    _raise_concern(page, stack, "w103", "carer-w103")
    timeline = page.locator("h2:has-text('Timeline') + table")
    expect(timeline).to_contain_text("teacher-1 (Class teacher)")
    assert_accessible(page, stack.visited)
    # a class teacher is offered notes, never the SENCO's decisions
    actions = page.locator("h2:has-text('What you can do now') + ul")
    expect(actions).to_contain_text("Add a progress note")
    assert "Open School Action" not in actions.inner_text()


def test_a_parent_answers_from_the_letters_link_on_a_phone(stack: Stack, browser: Browser) -> None:
    senco = _page(browser)
    sign_in(senco, stack.base, stack.outbox, "senco-1", stack.visited)
    journey = _raise_concern(senco, stack, "w104", "carer-w104")
    _open_school_action(senco, stack, journey, date.today() + timedelta(days=40))
    link = wait_for_link(stack.outbox, "*.eml", "carer-w104", r"http://\S+#code=\S+", set())

    phone = _page(browser, width=360)
    phone.goto(link)
    phone.wait_for_url("**/consultation/answer")
    assert "#code" not in phone.url
    assert_accessible(phone, stack.visited)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    shoot(phone, SHOTS, "parent-answer")
    phone.get_by_label("I agree").check()
    phone.get_by_label("Anything you want to tell the school").fill("happy with the plan")
    phone.get_by_role("button", name="Send my answer").click()
    expect(phone.locator(".govuk-panel")).to_contain_text("Your answer has been sent")
    assert_accessible(phone, stack.visited)

    again = _page(browser, width=360)
    deadline = time.monotonic() + 20
    while True:  # the journey applies the reply moments later
        again.goto(link)
        again.wait_for_url("**/consultation/answer")
        if again.locator("#answered").count():
            break
        assert time.monotonic() < deadline, "the journey never recorded the answer"
        time.sleep(0.5)
    expect(again.locator("#answered")).to_contain_text("I agree")
    assert_accessible(again, stack.visited)

    senco.goto(f"{stack.base}/journeys/{journey}")
    expect(senco.locator('h2:has-text("Parents\' answers") + table')).to_contain_text(
        "carer-w104: I agree"
    )


def test_signed_out_and_another_schools_pupil_are_refused(stack: Stack, browser: Browser) -> None:
    senco = _page(browser)
    sign_in(senco, stack.base, stack.outbox, "senco-1", stack.visited)
    journey = _raise_concern(senco, stack, "w105", "carer-w105")

    nobody = _page(browser)
    nobody.goto(f"{stack.base}/journeys/{journey}")
    assert "/sign-in?next=" in nobody.url
    expect(nobody.get_by_role("heading", level=1)).to_have_text("Sign in to senflow")

    other = _page(browser)
    sign_in(other, stack.base, stack.outbox, "senco-2", stack.visited)
    theirs = other.goto(f"{stack.base}/journeys/{journey}")
    missing = other.goto(f"{stack.base}/journeys/journey-{'0' * 32}")
    assert theirs is not None and missing is not None
    assert theirs.status == missing.status == 404
    other.goto(f"{stack.base}/journeys/{journey}")
    body = other.locator("main").inner_text()
    other.goto(f"{stack.base}/journeys/journey-{'0' * 32}")
    assert other.locator("main").inner_text() == body
    assert "w105" not in body
    assert_accessible(other, stack.visited)

    # what a person types is shown as text, never as markup
    senco.goto(f"{stack.base}/journeys/{journey}")
    senco.get_by_role("link", name="Add a progress note").click()
    senco.get_by_label("Progress note").fill("<script>window.pwned=1</script><b>bold</b>")
    senco.get_by_role("button", name="Save the note").click()
    senco.wait_for_url(re.compile(r".*\?done=note"))
    expect(senco.locator("h2:has-text('Timeline') + table")).to_contain_text("<b>bold</b>")
    assert senco.evaluate("window.pwned === undefined")


@pytest.mark.parametrize(
    ("user", "path", "heading", "shot"),
    [
        ("ep-7", "/referrals", "Referrals to you", "specialist-referrals"),
        ("admin-1", "/reports", "Reports", "admin-reports"),
        ("admin-1", "/reports/register", "SEN register by stage", "admin-register-report"),
        ("auditor-1", "/audit", "Pupils' histories", "auditor-histories"),
        ("la-7", "/ehc", "EHC caseload", "local-authority-ehc"),
        ("senco-1", "/accessibility", "Accessibility statement for senflow", ""),
    ],
)
def test_each_roles_main_page(
    stack: Stack, browser: Browser, user: str, path: str, heading: str, shot: str
) -> None:
    page = _page(browser)
    sign_in(page, stack.base, stack.outbox, user, stack.visited)
    page.goto(f"{stack.base}{path}")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert_accessible(page, stack.visited)
    if shot:
        shoot(page, SHOTS, shot)


def test_an_admin_downloads_a_report_as_csv(stack: Stack, browser: Browser) -> None:
    page = _page(browser)
    sign_in(page, stack.base, stack.outbox, "admin-1", stack.visited)
    page.goto(f"{stack.base}/reports/register")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0] == "school,stage,census_code,pupils"
    assert "school-1,school_action," in text


def test_an_auditor_downloads_a_pupils_history(stack: Stack, browser: Browser) -> None:
    page = _page(browser)
    sign_in(page, stack.base, stack.outbox, "auditor-1", stack.visited)
    page.goto(f"{stack.base}/audit")
    page.get_by_label("The pupil's reference").fill("w101")
    page.get_by_label("The setting").fill("school-1")
    page.get_by_role("button", name="Find the journey").click()
    assert_accessible(page, stack.visited)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the history report (text)").click()
    text = Path(download.value.path()).read_text()
    assert "w101" in text and "escalat" in text.lower()
    with page.expect_download() as export:
        page.get_by_role("link", name=re.compile("Download the export")).click()
    assert '"events"' in Path(export.value.path()).read_text()


def test_the_axe_check_can_fail(browser: Browser) -> None:
    """The check every page passes finds a violation when there is one."""
    page = _page(browser)
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    assert [v["id"] for v in axe_check(page)] == ["image-alt"]
