"""Check by hand that an auditor reads encrypted histories in the Temporal Web UI.

Not part of the suite: it needs Debian's chromium (`apt-get install chromium`) and playwright
in any Python (`pip install playwright`; no browser download, it drives /usr/bin/chromium).
With `senflow up` running, an auditor's token, and a journey whose concern contains MARKER:

    python scripts/ui_codec_check.py --ui http://localhost:8233 --api http://localhost:8000 \\
        --token sf.... --workflow pupil-p1 --marker ZEBRAMARKER

It prints whether MARKER is visible before sign-in (it must not be) and after signing in and
setting the UI's browser codec endpoint with cross-origin credentials (it must be); exit 0
only if both hold.
"""

from __future__ import annotations

import argparse
import sys
import time

from playwright.sync_api import sync_playwright  # type: ignore[import-not-found]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("--ui", "--api", "--token", "--workflow", "--marker"):
        p.add_argument(name, required=True)
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page()
        page.goto(f"{args.ui}/namespaces/default/workflows/{args.workflow}")
        time.sleep(4)
        before = args.marker in page.content()
        page.goto(f"{args.api}/codec/login")
        page.fill("input[name=token]", args.token)
        page.click("button[type=submit]")
        page.goto(f"{args.ui}/namespaces/default/workflows/{args.workflow}")
        time.sleep(3)
        page.click("[data-testid^=data-encoder-status]")
        page.locator("dialog[open] label:has-text('Use my browser setting')").click()
        page.locator("dialog[open] textarea").first.fill(f"{args.api}/codec")
        page.locator("dialog[open] label:has-text('Include cross-origin credentials')").click()
        page.click("[data-testid=confirm-modal-button]")
        time.sleep(2)
        page.reload()
        time.sleep(5)
        after = args.marker in page.content()
        browser.close()
    print(f"marker visible before sign-in: {before}; after: {after}")
    return 0 if (not before and after) else 1


if __name__ == "__main__":
    sys.exit(main())
