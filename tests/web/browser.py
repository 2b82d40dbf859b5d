"""Helpers for the browser tier: Debian's chromium driven by Playwright, people signing in by
the link the outbox holds, letters read as their recipient reads them, axe-core in each page."""

from __future__ import annotations

import email
import re
import time
from email.message import Message
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def axe_check(page: Page) -> list[dict[str, Any]]:
    """Run axe-core in the page; return the serious and critical violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Page, visited: list[str]) -> None:
    found = axe_check(page)
    visited.append(page.url)
    assert found == [], f"{page.url}: {found}"


def _body(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8")
    raise AssertionError("no text part")


def letters(outbox: Path, pattern: str, to: str) -> list[tuple[Path, str]]:
    found = []
    for path in sorted(outbox.glob(pattern), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes())
        if to in str(message["To"]):
            found.append((path, _body(message)))
    return found


def wait_for_link(
    outbox: Path, pattern: str, to: str, link: str, seen: set[Path], timeout: float = 30.0
) -> str:
    """The first link matching ``link`` in a letter to ``to`` not seen before."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path, body in letters(outbox, pattern, to):
            if path in seen:
                continue
            found = re.search(link, body)
            if found:
                seen.add(path)
                return found.group(0)
        time.sleep(0.3)
    raise AssertionError(f"no letter to {to} with {link} in {outbox}")


def sign_in(page: Page, base: str, outbox: Path, user: str, visited: list[str]) -> None:
    """Sign in as a demo user of `make run` by the link emailed to them."""
    seen = {p for p, _ in letters(outbox, "sign-in--*.eml", f"{user}@")}
    page.goto(f"{base}/sign-in")
    assert_accessible(page, visited)
    domain = "specialists" if user.startswith("ep-") else ("school-2" if "-2" in user else "")
    address = f"{user}@{domain or 'school-1'}.example.org"
    page.get_by_label("Your work email address").fill(address)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.wait_for_url("**/sign-in/sent")
    url = wait_for_link(outbox, "sign-in--*.eml", f"{user}@", r"http://\S+/sign-in/link/\S+", seen)
    page.goto(url)
    assert_accessible(page, visited)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/sign-in" not in page.url, page.url


def tab_to(page: Page, test: str, limit: int = 120) -> None:
    """Press Tab until ``test`` (a JS expression over ``el``, the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {test}; }})()"):
            return
    raise AssertionError(f"Tab never reached {test}")


def focus_id(page: Page, element_id: str) -> None:
    tab_to(page, f"el && el.id === {element_id!r}")


def shoot(page: Page, folder: Path | None, name: str) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
