"""The Content-Security-Policy breaks nothing a reviewer uses: every page,
with its live updates, diagrams and the API docs, runs without a single
violation in a real browser."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.conftest import signed_in

FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}


def test_no_page_trips_the_policy(served, browser):
    page = signed_in(browser, served, "admin")
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    # Also what the console may not say: the document's own report of each block.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e =>"
        " console.log('Content Security Policy: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    thread = served.manage("startrun", "tool_agent", "--input", json.dumps(FLIGHT))
    thread = thread.strip().splitlines()[-1]
    page.goto("/queue/")
    row = page.locator("tr.task-row", has_text="charge_card")
    expect(row).to_be_visible()  # arrived over the websocket
    task_url = row.get_attribute("data-url")

    for url in (
        "/",
        "/queue/",
        task_url,
        f"/threads/{thread}/",
        f"/threads/{thread}/state/",
        "/graphs/drafting/start/",
        "/audit/",
        "/admin/",
        "/api/docs",
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        if url == f"/threads/{thread}/":
            expect(page.locator("pre.mermaid svg")).to_be_visible()  # the diagram drew
        if url == "/api/docs":
            expect(page.locator(".swagger-ui .info")).to_be_visible()
        if url != "/api/docs" and not url.startswith("/admin"):
            expect(page.locator("#live-state.on")).to_be_visible()  # the websocket opened
    assert violations == []
