"""The main pages checked by axe-core (vendored beside this file, never
fetched): no serious or critical violation of WCAG 2.1 A/AA."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import signed_in

AXE = (Path(__file__).parent / "vendor" / "axe-4.14.1.min.js").read_text()
FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}


def _start(served, graph: str, payload: dict) -> str:
    return served.manage("startrun", graph, "--input", json.dumps(payload)).strip().splitlines()[-1]


def violations(page) -> list[str]:
    """What axe finds serious or critical on the page as it is now."""
    page.evaluate(AXE)  # not a script tag: the page's CSP forbids inline scripts
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
            });
            return result.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => `${v.id} (${v.impact}): ${v.help} -- ` +
                     v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
        }"""
    )
    return [f"{page.url}: {line}" for line in found]


def test_the_main_pages_have_no_serious_accessibility_violation(served, browser):
    page = signed_in(browser, served, "admin")
    thread = _start(served, "tool_agent", FLIGHT)
    drafting = _start(served, "drafting", {"topic": "Accessible review pages"})
    page.goto("/queue/")
    turn = page.locator("tr.task-row", has_text="charge_card")
    feedback = page.locator("tr.task-row", has_text="Feedback")
    expect(turn).to_be_visible()
    expect(feedback).to_be_visible()
    pages = [
        "/",
        "/queue/",
        turn.get_attribute("data-url"),
        feedback.get_attribute("data-url"),
        f"/threads/{thread}/",
        f"/threads/{drafting}/state/",
        "/graphs/drafting/start/",
        "/audit/",
    ]
    found: list[str] = []
    for url in pages:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        found += violations(page)
        headings = page.locator("h1").count()
        if headings != 1:
            found.append(f"{url}: {headings} <h1> elements")
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    found += violations(page)
    assert found == [], "\n".join(found)


def test_field_help_and_errors_are_read_with_their_input(served, browser):
    page = signed_in(browser, served, "reviewer")
    _start(served, "drafting", {"topic": "Forms that explain themselves"})
    page.goto("/queue/")
    page.locator("tr.task-row", has_text="Feedback").locator("a").click()
    page.wait_for_selector("#live-state.on")
    words = page.get_by_label("Word limit")  # the label names the input alone
    expect(words).to_have_attribute("type", "number")
    page.get_by_label("Good to publish as is").check()
    page.get_by_label("Tone").select_option(label="friendly")
    words.fill("3")  # under the schema's minimum of 10
    page.click("#decision-panel button[type=submit]")
    words = page.get_by_label("Word limit")
    expect(words).to_have_attribute("aria-invalid", "true")
    described = words.get_attribute("aria-describedby").split()
    errors = [page.locator(f"[id='{i}']") for i in described]
    assert any("10" in e.inner_text() for e in errors), [e.inner_text() for e in errors]
    assert page.locator("label .error, label .hint").count() == 0  # beside, not inside


def test_shortcuts_keep_out_of_typing_and_can_be_turned_off(served, browser):
    page = signed_in(browser, served, "reviewer")
    _start(served, "support", {"messages": [{"role": "user", "content": "Refund A-1001, $120"}]})
    page.goto("/queue/")
    expect(page.locator("tr.task-row")).to_have_count(1)
    page.wait_for_load_state("networkidle")  # the rows asked again as the socket opened
    selected = page.locator("tr.task-row.selected")
    page.get_by_label("Search").press("j")  # typing in a box
    expect(selected).to_have_count(0)
    page.locator("h1").click()
    page.keyboard.press("j")
    expect(selected).to_have_count(1)
    page.evaluate(  # the rows drawn again, as on a reconnect, and settled
        """() => new Promise(done => {
            document.body.addEventListener(
                "htmx:afterSettle", () => setTimeout(done, 100), {once: true});
            htmx.trigger(document.body, "live-opened");
        })"""
    )
    assert selected.count() == 1  # the selection stays where it was
    page.keyboard.press("k")
    page.get_by_label("Keyboard shortcuts").uncheck()
    page.reload()
    expect(page.get_by_label("Keyboard shortcuts")).not_to_be_checked()  # kept
    page.locator("tr.task-row").first.evaluate("row => row.classList.remove('selected')")
    page.locator("h1").click()
    page.keyboard.press("j")
    expect(selected).to_have_count(0)


def test_the_connection_and_new_tasks_are_told_in_words(served, browser):
    page = signed_in(browser, served, "reviewer")
    page.goto("/")
    expect(page.locator("#live-state")).to_have_text("● live")
    region = page.locator("#notice")
    region.evaluate("element => { element.dataset.original = 'yes'; }")
    _start(served, "support", {"messages": [{"role": "user", "content": "Refund A-1001, $120"}]})
    expect(region.locator(".notice-toast")).to_contain_text("1 new task for you to review")
    # The same live region, announced: not a new element put in its place.
    expect(page.locator("#notice[data-original=yes][aria-live=polite]")).to_have_count(1)


def test_queue_and_diff_fit_a_phone_screen(served, browser):
    page = signed_in(browser, served, "admin")
    thread = _start(served, "tool_agent", FLIGHT)
    _start(served, "support", {"messages": [{"role": "user", "content": "Refund A-1002, $1450"}]})
    page.goto("/queue/")
    expect(page.locator("tr.task-row")).to_have_count(2)
    page.wait_for_load_state("networkidle")  # the rows redrawn as the socket opened
    # Tool names read whole: a name never breaks over two lines.
    for name in page.locator("td.what code").all():
        box = name.bounding_box()
        assert box["height"] < 30, (name.inner_text(), box)
    page.set_viewport_size({"width": 390, "height": 844})
    points = None
    for url in ("/queue/", "/", f"/threads/{thread}/", "compare"):
        if url == "compare":  # the newest point against the first, on one page
            newest, oldest = points.first.get_attribute("id"), points.last.get_attribute("id")
            url = f"/threads/{thread}/?at={newest[6:]}&compare={oldest[6:]}"
        page.goto(url)
        page.wait_for_load_state("networkidle")
        points = page.locator("li.point")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"{url} is {wide} px wide on a 390 px screen"
    expect(page.locator("#point h3").first).to_contain_text("Compared with")
