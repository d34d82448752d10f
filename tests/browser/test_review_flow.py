"""A reviewer's day in a real browser against `manage.py serve`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import signed_in

FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"


def start_elsewhere(served, graph: str, payload: dict) -> str:
    """`startrun` in another process; the served worker's sweep picks it up."""
    return served.manage("startrun", graph, "--input", json.dumps(payload)).strip().splitlines()[-1]


def test_task_appears_live_edit_keeps_a_number_and_the_run_finishes(served, browser):
    page = signed_in(browser, served, "reviewer")
    expect(page.locator("#pending-count")).to_have_text("0")
    thread = start_elsewhere(served, "tool_agent", FLIGHT)

    # No reload: the rows arrive over the websocket.
    row = page.locator("tr.task-row", has_text="charge_card")
    expect(row).to_be_visible()
    expect(page.locator("#pending-count")).to_have_text("2")
    expect(page.locator("tr.task-row", has_text="book_flight")).to_contain_text(thread)

    row.locator("a").click()
    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    page.wait_for_selector("#live-state.on")  # htmx has taken over the forms
    charge = page.locator("fieldset.decision", has_text="charge_card")
    charge.locator("input[value=edit]").check()  # opens the editor
    charge.locator("textarea[name$=-args]").fill('{"amount": 300, "currency": "NOK"}')
    page.click("#decision-panel button[type=submit]")

    expect(page.locator("#decision-panel .notice")).to_contain_text("resumes the graph")
    status = page.locator(".run-status").last
    expect(status).to_contain_text("succeeded")  # pushed live when the run ends
    page.reload()
    expect(page.locator("table.outcomes")).to_contain_text("Charged 300.00 NOK")

    decision = served.query(
        "from reviews.models import ReviewTask\n"
        "result = ReviewTask.objects.get(tool_name='charge_card').decision"
    )
    assert decision["args"] == {"amount": 300, "currency": "NOK"}  # a number, not "300"


def test_two_reviewers_approve_at_once_and_one_wins(served, browser):
    start_elsewhere(served, "support", REFUND)
    pages = [signed_in(browser, served, name) for name in ("reviewer", "reviewer2")]
    for page in pages:
        page.locator("tr.task-row a").first.click()
        page.wait_for_url(re.compile(r"/tasks/\d+/$"))
        page.wait_for_selector("#live-state.on")  # htmx has taken over the page's forms
    # Both forms are submitted before either answer comes back.
    for page in pages:
        page.evaluate("document.querySelector('#decision-panel form').requestSubmit()")
    outcomes = []
    for page in pages:
        panel = page.locator("#decision-panel")
        expect(panel.locator(".notice, .refusal")).to_be_visible()
        outcomes.append(panel.inner_text())
    assert sum("Decision recorded" in o for o in outcomes) == 1, outcomes
    assert sum("Already decided by" in o for o in outcomes) == 1, outcomes
    resumes = served.query(
        "from graphs.models import Run\nresult = Run.objects.filter(kind='resume').count()"
    )
    assert resumes == 1


def test_feedback_form_then_a_state_edit(served, browser):
    page = signed_in(browser, served, "reviewer")
    thread = start_elsewhere(served, "drafting", {"topic": "the new office"})
    page.locator("tr.task-row", has_text="Feedback").locator("a").click()
    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    page.wait_for_selector("#live-state.on")  # htmx has taken over the forms
    page.check("input[name$=-f-approved]")
    page.select_option("select[name$=-f-tone]", label="friendly")
    page.fill("input[name$=-f-max_words]", "30")
    page.click("#decision-panel button[type=submit]")
    expect(page.locator("#decision-panel .notice")).to_contain_text("resumes the graph")
    expect(page.locator(".run-status").last).to_contain_text("interrupted")  # before publish

    page.goto(f"/threads/{thread}/state/")
    page.fill("textarea[name=s-draft], input[name=s-draft]", "Hi all! We moved to the new office.")
    page.select_option("select[name=as_node]", "revise")
    page.click("#state-editor button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Wrote draft as a new point")

    state = served.query(
        "from graphs.models import Thread\nfrom reviews.graph_state import read_state\n"
        f"s = read_state(Thread.objects.get(pk={thread!r}))\n"
        "result = {'draft': s.values['draft'], 'feedback': s.values['feedback'], 'next': s.next}"
    )
    assert state == {
        "draft": "Hi all! We moved to the new office.",
        "feedback": {"approved": True, "tone": "friendly", "max_words": 30},
        "next": ["publish"],
    }


def test_keys_decide_from_the_queue_and_rows_leave_when_decided_elsewhere(served, browser):
    page = signed_in(browser, served, "reviewer")
    for _ in range(3):
        start_elsewhere(served, "support", REFUND)
    rows = page.locator("tr.task-row")
    expect(rows).to_have_count(3)
    first, second, third = (rows.nth(i).get_attribute("id") for i in range(3))

    # Someone else decides the first task: it leaves this queue without reload.
    other = signed_in(browser, served, "reviewer2")
    other.locator(f"#{first} a").click()
    other.wait_for_url(re.compile(r"/tasks/\d+/$"))
    other.wait_for_selector("#live-state.on")  # htmx has taken over the forms
    other.click("#decision-panel button[type=submit]")
    expect(other.locator("#decision-panel .notice")).to_be_visible()
    expect(page.locator(f"#{first}")).to_have_count(0)
    expect(page.locator("#pending-count")).to_have_text("2")

    page.keyboard.press("j")
    expect(page.locator(f"#{second}")).to_have_class(re.compile("selected"))
    page.keyboard.press("a")
    expect(page.locator(f"#{second}-done")).to_contain_text("accept recorded")

    page.keyboard.press("j")
    expect(page.locator(f"#{third}")).to_have_class(re.compile("selected"))
    page.once("dialog", lambda dialog: dialog.accept("Too much for one order."))
    page.keyboard.press("r")
    expect(page.locator(f"#{third}-done")).to_contain_text("response recorded")
    decisions = served.query(
        "from reviews.models import ReviewTask\n"
        "result = [t.decision for t in ReviewTask.objects.order_by('pk')]"
    )
    assert decisions == [
        {"type": "accept"},
        {"type": "accept"},
        {"type": "response", "message": "Too much for one order."},
    ]


def test_timeline_click_fork_with_an_edit_and_watch_the_branch(served, browser):
    page = signed_in(browser, served, "reviewer")
    thread = start_elsewhere(served, "drafting", {"topic": "the picnic"})
    expect(page.locator("tr.task-row", has_text="Feedback")).to_be_visible()
    page.goto(f"/threads/{thread}/")
    page.wait_for_selector("#live-state.on")
    points = page.locator("li.point")
    expect(points).to_have_count(3)
    expect(page.locator("pre.mermaid svg")).to_be_visible()  # the diagram, drawn

    # Click the step-0 point: its state and diff come in place, the URL follows.
    points.filter(has_text="step 0").locator("a").first.click()
    expect(page.locator("#point h2").first).to_contain_text("Point")
    expect(page.locator("#point .diff")).to_contain_text("topic")
    assert "at=" in page.url

    # Fork from step 0 with a draft of our own, written as write_draft.
    page.click("text=Fork: edit the state here")
    expect(page.locator("#state-editor .notice")).to_contain_text("Forking")
    page.fill("textarea[name=s-draft], input[name=s-draft]", "A forked picnic draft")
    page.select_option("select[name=as_node]", "write_draft")
    page.check("input[name=continue]")
    page.click("#state-editor button[type=submit]")

    # Back on the timeline: the branch appears in a lane of its own and its
    # run stops at the feedback question again, live.
    page.wait_for_url(re.compile(rf"/threads/{thread}/\?at="))
    page.wait_for_selector("#live-state.on")
    branch = page.locator('li.point[data-lane="1"]')
    expect(branch.first).to_be_visible()
    expect(page.locator('li.point.interrupted[data-lane="1"]')).to_have_count(1)
    expect(page.locator('li.point[data-lane="0"]')).to_have_count(3)  # the old branch stays
    tasks = served.query(
        "from reviews.models import ReviewTask\n"
        "result = sorted(ReviewTask.objects.values_list('status', flat=True))"
    )
    assert tasks == ["pending", "superseded"]

    # Someone answers the branch's question elsewhere: its steps arrive on
    # this open timeline without a reload, up to the stop before publish.
    other = signed_in(browser, served, "reviewer2")
    other.locator("tr.task-row", has_text="Feedback").locator("a").click()
    other.wait_for_url(re.compile(r"/tasks/\d+/$"))
    other.wait_for_selector("#live-state.on")  # htmx has taken over the forms
    other.check("input[name$=-f-approved]")
    other.click("#decision-panel button[type=submit]")
    expect(other.locator("#decision-panel .notice")).to_be_visible()
    expect(branch).to_have_count(3)
    expect(branch.first).to_contain_text("revise")


def test_quorum_reached_by_two_reviewers_in_two_browsers(served, browser):
    served.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User\n"
        "from reviews.models import ReviewRule\n"
        "finance, _ = Group.objects.get_or_create(name='finance')\n"
        "for name in ('reviewer', 'reviewer2'): User.objects.get(username=name).groups.add(finance)\n"
        "rule = ReviewRule.objects.create(name='two for refunds', graph_name='support',"
        " tool_name='refund', required_approvals=2)\n"
        "rule.review_groups.add(finance)\n",
    )
    start_elsewhere(served, "support", REFUND)
    first, second = (signed_in(browser, served, name) for name in ("reviewer", "reviewer2"))
    for page in (first, second):
        page.locator("tr.task-row", has_text="refund").locator("a").click()
        page.wait_for_url(re.compile(r"/tasks/\d+/$"))
        page.wait_for_selector("#live-state.on")  # htmx has taken over the forms
    first.click("#decision-panel button[type=submit]")
    expect(first.locator("#decision-panel .notice")).to_contain_text(
        "Your approval is recorded (1 of 2)"
    )
    second.reload()
    expect(second.locator(".quorum")).to_contain_text("approved so far by reviewer")
    second.click("#decision-panel button[type=submit]")
    expect(second.locator("#decision-panel .notice")).to_contain_text("resumes the graph")
    expect(second.locator(".run-status").last).to_contain_text("succeeded")
    outcome = served.query(
        "from reviews.models import ReviewTask\nfrom graphs.models import Run\n"
        "t = ReviewTask.objects.get()\n"
        "result = [t.status, t.approvals.count(), Run.objects.filter(kind='resume').count()]"
    )
    assert outcome == ["decided", 2, 1]


@pytest.mark.parametrize("served", [AGENTS], indirect=True)
def test_a_running_run_is_cancelled_from_its_thread_page(served, browser):
    thread = start_elsewhere(served, "slow", {"done": [], "delay": 0.5, "steps": 60})
    page = signed_in(browser, served, "admin")
    page.goto(f"/threads/{thread}/")
    expect(page.locator(".run-status.running")).to_be_visible()  # the list opens for it
    count = f"from graphs.models import Checkpoint\nresult = Checkpoint.objects.filter(thread_id={thread!r}).count()"
    before = served.query(count)
    page.click("text=Cancel run")
    expect(page.locator("ul.messages")).to_contain_text("cancelled")
    # The worker shares the server's process: it stops at the next step and
    # lets the thread go, and the status element says so without a reload.
    expect(page.locator(".run-status.cancelled")).to_have_text(
        re.compile(r"^Run \d+: cancelled\s*$")
    )
    run = served.query(
        f"from graphs.models import Run\nr = Run.objects.get(thread_id={thread!r})\n"
        "result = [r.status, r.lease_expires_at is None]"
    )
    assert run == ["cancelled", True]
    # A step is half a second: waiting for the lease renewal (ten seconds)
    # would have let some twenty more through.
    assert served.query(count) - before <= 6
