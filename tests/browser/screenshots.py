"""`make screenshots`: the pages a reviewer spends the day on, drawn by
Debian's Chromium from a freshly seeded dashboard, into var/screenshots/.

The queue with a batched turn, a quorum and a feedback question; a batched
task; a feedback form; a thread's timeline after a fork; and the queue and a
diff on a 390 px phone screen."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import ROOT, serving, signed_in
from tests.servers import CHROMIUM, chromium_missing_reason

OUT = ROOT / "var" / "screenshots"
STARTS = [
    ("tool_agent", {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2"}]}),
    ("support", {"messages": [{"role": "user", "content": "Refund order A-1002, $1450: broken"}]}),
    ("drafting", {"topic": "Our review dashboard draws each thread as a branch graph"}),
]


def _start(site, graph: str, payload: dict) -> str:
    out = site.manage("startrun", graph, "--input", json.dumps(payload))
    return out.strip().splitlines()[-1]


def _fork(page, thread: str) -> None:
    """Fork the drafting thread at its first step with a draft of our own,
    and let the branch run to its question."""
    page.goto(f"/threads/{thread}/")
    page.locator("li.point", has_text="step 0").locator("a").first.click()
    page.click("text=Fork: edit the state here")
    page.fill("textarea[name=s-draft], input[name=s-draft]", "A shorter draft, written by hand")
    page.select_option("select[name=as_node]", "write_draft")
    page.check("input[name=continue]")
    page.click("#state-editor button[type=submit]")
    page.wait_for_url(f"**/threads/{thread}/?at=*")
    expect(page.locator('li.point.interrupted[data-lane="1"]')).to_have_count(1)


def take(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory() as directory, serving(Path(directory)) as site:
        threads = {graph: _start(site, graph, payload) for graph, payload in STARTS}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            expect.set_options(timeout=30_000)
            page = signed_in(browser, site, "admin")
            page.set_viewport_size({"width": 1280, "height": 860})

            def shot(name: str, *, full: bool = True) -> None:
                page.wait_for_load_state("networkidle")
                path = out / f"{name}.png"
                page.screenshot(path=str(path), full_page=full)
                shots.append(path)

            page.goto("/queue/")
            for text in ("charge_card", "refund", "Feedback"):
                expect(page.locator("tr.task-row", has_text=text)).to_be_visible()
            shot("queue")
            queue_rows = {
                text: page.locator("tr.task-row", has_text=text).get_attribute("data-url")
                for text in ("charge_card", "Feedback")
            }
            page.goto(queue_rows["charge_card"])
            shot("batched-task")
            page.goto(queue_rows["Feedback"])
            shot("feedback-form")
            page.wait_for_selector("#live-state.on")  # htmx has taken over the form
            page.fill("input[name$=-f-max_words]", "3")
            page.click("#decision-panel button[type=submit]")
            expect(page.locator("#decision-panel .field.invalid")).to_be_visible()
            shot("feedback-field-error")
            page.goto("/graphs/drafting/start/")
            shot("start-form")
            page.goto(f"/threads/{threads['drafting']}/state/")
            shot("state-editor")
            _fork(page, threads["drafting"])
            shot("forked-timeline")

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto("/queue/")
            shot("queue-390")
            points = page.locator("li.point")
            page.goto(f"/threads/{threads['drafting']}/")
            first, last = points.last.get_attribute("id"), points.first.get_attribute("id")
            page.goto(
                f"/threads/{threads['drafting']}/?at={last.removeprefix('point-')}"
                f"&compare={first.removeprefix('point-')}"
            )
            shot("diff-390")
            browser.close()
    return shots


if __name__ == "__main__":
    if reason := chromium_missing_reason():
        sys.exit(f"Screenshots need Chromium: {reason}")
    for path in take():
        print(path.relative_to(ROOT))
