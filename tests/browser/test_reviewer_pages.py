"""A reviewer's pages in Chromium: no console error or failed request on any
page, the timeline's selection follows the point shown, and the decision form
keeps the choice, the editor and the message box in step."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.conftest import signed_in

FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def _start(served, graph: str, payload: dict) -> str:
    return served.manage("startrun", graph, "--input", json.dumps(payload)).strip().splitlines()[-1]


def flight_task(served, browser):
    """A reviewer on the task page of a flight booking's two calls."""
    page = signed_in(browser, served, "reviewer")
    _start(served, "tool_agent", FLIGHT)
    page.goto("/queue/")
    row = page.locator("tr.task-row", has_text="charge_card")
    expect(row).to_be_visible()
    page.goto(row.get_attribute("data-url"))
    return page


def _left_behind(request) -> bool:
    """The tab's icon, still loading when the test moved to the next page: the
    browser dropped it (net::ERR_ABORTED); nothing failed to serve it."""
    return request.url.endswith("/favicon.svg") and "ERR_ABORTED" in (request.failure or "")


def test_no_console_error_or_failed_request_on_any_page(served, browser):
    page = signed_in(browser, served, "admin")
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
    page.on(
        "requestfailed", lambda r: None if _left_behind(r) else problems.append(f"failed: {r.url}")
    )
    page.on(
        "response",
        lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
    )
    # Offline: anything not served by the dashboard itself is refused.
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(served.url) else route.abort()
        ),
    )
    thread = _start(served, "tool_agent", FLIGHT)
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
        "/graphs/tool_agent/start/",
        "/audit/",
        "/api/docs",
        "/admin/",  # admin's pages name no icon: the browser asks for /favicon.ico
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        if url == "/api/docs":
            expect(page.locator(".swagger-ui .info")).to_be_visible()  # offline
    # Headless Chromium never asks for /favicon.ico; a browser with a window
    # does, on every page that names no icon (admin's).
    icon = page.request.get("/favicon.ico")
    assert icon.ok and icon.url.endswith("/static/favicon.svg"), (icon.status, icon.url)
    assert icon.headers["content-type"].startswith("image/svg+xml")
    # Live fragments for every open page while a run moves on: a page gets
    # only what it has a place for.
    page.goto(task_url)
    page.locator("input[value=approve]").first.check()
    page.locator("input[value=approve]").nth(1).check()
    page.get_by_role("button", name="Submit all 2 decisions").click()
    expect(page.locator("#task-outcome .run-status.succeeded")).to_be_visible()
    page.goto("/queue/")
    _start(served, "support", REFUND)
    expect(page.locator("tr.task-row", has_text="refund")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert problems == []


def test_timeline_selection_follows_the_point_shown(served, browser):
    page = signed_in(browser, served, "reviewer")
    thread = _start(served, "tool_agent", FLIGHT)
    page.goto(f"/threads/{thread}/")
    points = page.locator("li.point")
    expect(points).to_have_count(3)
    expect(points.first).to_have_class("point interrupted selected")
    oldest = points.last
    oldest_id = oldest.get_attribute("id").removeprefix("point-")
    oldest.locator("a.point-link").click()
    expect(page.locator("li.point.selected")).to_have_count(1)
    expect(oldest).to_have_class("point selected")
    expect(page).to_have_url(f"{served.url}/threads/{thread}/?at={oldest_id}")
    expect(page.locator("#point h2 code")).to_have_attribute("title", oldest_id)
    # "diff with selected" starts from the point shown, and the address says so.
    latest_id = points.first.get_attribute("id").removeprefix("point-")
    points.first.locator("a.diff-link").click()
    expect(page).to_have_url(f"{served.url}/threads/{thread}/?at={oldest_id}&compare={latest_id}")
    expect(page.locator("li.point.selected")).to_have_attribute("id", f"point-{oldest_id}")
    expect(page.locator("#point h3").first).to_contain_text("Compared with")


def test_editing_the_call_chooses_edit_and_choosing_edit_opens_the_editor(served, browser):
    page = flight_task(served, browser)
    first, second = page.locator("fieldset.decision").all()
    first.locator("input[value=edit]").check()
    expect(first.locator("details.edit")).to_have_attribute("open", "")
    second.locator("details.edit summary").click()
    second.locator("textarea[name$=-args]").fill('{"amount": 10, "currency": "EUR"}')
    expect(second.locator("input[value=edit]")).to_be_checked()


def test_the_message_box_shows_only_with_a_choice_the_model_reads_it_with(served, browser):
    page = flight_task(served, browser)
    page.wait_for_selector("#live-state.on")
    first = page.locator("fieldset.decision").first
    message = first.locator("textarea[name$=-message]")
    expect(first.locator("input[value=approve]")).to_be_checked()
    expect(message).to_be_hidden()  # an approval carries no message

    first.locator("input[value=reject]").check()
    expect(message).to_be_visible()
    expect(message).to_be_focused()
    message.fill("Use the company card instead.")
    first.locator("input[value=edit]").check()
    expect(message).to_be_hidden()
    first.locator("input[value=reject]").check()
    expect(message).to_have_value("Use the company card instead.")  # kept while hidden

    # Refused for a missing message, the form comes back with the box shown
    # at its error, whatever the other call's choice.
    message.fill("")
    page.click("#decision-panel button[type=submit]")
    expect(first.locator(".message-box .error")).to_contain_text("Write the message")
    expect(first.locator("textarea[name$=-message]")).to_be_visible()
    second = page.locator("fieldset.decision").nth(1)
    expect(second.locator("textarea[name$=-message]")).to_be_hidden()


def test_the_executed_result_appears_after_deciding_without_a_reload(served, browser):
    page = flight_task(served, browser)
    page.wait_for_selector("#live-state.on")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    def answer_after_the_run_ends(route) -> None:
        # The served worker runs the resume at once, so its events often
        # reach the page before the decision's answer (the panel they would
        # refresh, rendered before the run ended): here always.
        response = route.fetch()
        for _ in range(120):
            if served.query(
                "from graphs.models import Run\n"
                "result = Run.objects.filter(kind='resume', status='succeeded').exists()"
            ):
                break
        route.fulfill(response=response)

    page.route("**/decide/", answer_after_the_run_ends)
    page.locator("input[value=approve]").first.check()
    page.locator("input[value=approve]").nth(1).check()
    page.get_by_role("button", name="Submit all 2 decisions").click()
    executed = page.locator("#task-outcome td.executed")
    expect(executed).to_have_count(2)
    expect(executed.nth(1)).to_contain_text("Charged 360.00 EUR")
    expect(executed.first).not_to_contain_text("no tool result yet")
    assert page.evaluate("window.sameDocument") is True


def test_a_turn_row_shows_what_is_left_when_one_call_is_decided(served, browser):
    page = signed_in(browser, served, "reviewer")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sockets = []

    def through(ws) -> None:  # the real socket, with a way to speak for the server
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket("**/ws/reviews/**", through)
    _start(served, "tool_agent", FLIGHT)
    page.goto("/queue/")
    row = page.locator("tr.task-row", has_text="2 calls")
    expect(row).to_be_visible()
    book, charge = served.query(
        "from reviews.models import ReviewTask\n"
        "result = list(ReviewTask.objects.order_by('pk').values_list('pk', flat=True))"
    )
    expect(row).to_have_id(f"task-{book}")
    # What the server sends open queues when book_flight alone is decided
    # (another process's decision would not reach this server's in-memory
    # channel layer, so its message goes through the page's own socket):
    # one message, the row replaced in place and the new count.
    message = served.query(
        "from reviews.consumers import queue_messages\n"
        "from reviews.live import TASKS_EVENT, render\n"
        "from reviews.models import ReviewTask\n"
        f"ReviewTask.objects.filter(pk={book}).update(status='decided')\n"
        f"event = render({{'type': TASKS_EVENT, 'created': [], 'removed': [{book}], 'changed': []}})\n"
        "(result,) = queue_messages(event, None)"
    )
    expect(page.locator("#pending-count")).to_have_text("2")
    sockets[-1].send(message)
    expect(page.locator("#pending-count")).to_have_text("1")
    left = page.locator(f"#task-{charge}")
    expect(left).to_contain_text("charge_card")
    expect(left).not_to_contain_text("book_flight")
    expect(page.locator(f"#task-{book}")).to_have_count(0)
    expect(page.locator("tr.task-row")).to_have_count(1)
    assert problems == []


def test_a_task_that_stops_before_the_socket_opens_still_shows(served, browser):
    """A queue drawn empty, then a task, then the websocket: the event went to
    no one, so the page asks again when the socket opens."""
    page = signed_in(browser, served, "reviewer")

    def late(ws) -> None:  # the page is drawn; the socket waits for the task
        thread = _start(served, "tool_agent", FLIGHT)
        served.query(
            "import time\n"
            "from reviews.models import ReviewTask\n"
            "for _ in range(600):\n"
            f"    if ReviewTask.objects.filter(thread_id={thread!r}).exists(): break\n"
            "    time.sleep(0.1)\n"
            "result = True"
        )
        ws.connect_to_server()

    page.route_web_socket("**/ws/reviews/**", late)
    # Drawn empty: read from the document itself, which the server sent
    # before the socket (and so the task) existed. The page may already show
    # the row by the time an assertion on it would run.
    drawn = page.goto("/queue/")
    assert 'class="empty"' in drawn.text() and "task-row" not in drawn.text()
    page.wait_for_selector("#live-state.on", timeout=90_000)
    expect(page.locator("tr.task-row", has_text="charge_card")).to_be_visible()
    expect(page.locator("p.empty")).to_be_hidden()
    expect(page.locator("#pending-count")).to_have_text("2")
    expect(page.locator("h1")).to_have_count(1)  # rows came back, not a page
