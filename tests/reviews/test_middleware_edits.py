"""An edit LangChain's HumanInTheLoopMiddleware keeps beside the message is
judged as the call it makes run.

The middleware leaves an edited call in the AI message as the model proposed
it, keeps the reviewer's edit in the state under the call's id, and its tools
step runs the edit. Going on from a point where the edit waits to run runs the
edit again: a 360 charge that finance edited into 5000 is a 5000 charge.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import override_settings
from django.urls import reverse

from graphs.models import Run, Thread
from graphs.written_calls import EDITED_CALLS_KEY
from reviews import live
from reviews.access import (
    REVIEW,
    VIEW,
    can,
    can_thread,
    pending_count,
    task_for,
    visible_tasks,
    visible_threads,
)
from reviews.actions import runs as run_actions
from reviews.actions import state as state_actions
from reviews.actions import tasks as task_actions
from reviews.actions import threads as thread_actions
from reviews.consumers import queue_messages
from reviews.graph_state import config_for, graph_for, read_state
from reviews.models import ReviewRule, ReviewTask
from reviews.state_editor import StateEdit
from tests.reviews.conftest import finish, pending, reviewed_by, start

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"
FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
OVER_1000 = {"properties": {"amount": {"exclusiveMinimum": 1000}}, "required": ["amount"]}
EDIT = {"type": "edit", "name": "charge_card", "args": {"amount": 5000.0, "currency": "EUR"}}


@pytest.fixture
def large_charges(rita, sam):
    return reviewed_by(
        "finance",
        (rita, sam),
        name="large charges need two",
        graph_name="tool_agent",
        tool_name="charge_card",
        condition=OVER_1000,
        required_approvals=2,
    )


def _charged(thread: Thread) -> int:
    messages = read_state(thread).values["messages"]
    return sum(m["type"] == "tool" and "Charged 5000.00" in str(m["content"]) for m in messages)


def test_an_edit_kept_by_the_middleware_is_judged_as_the_call_it_runs(
    large_charges, rita, sam, as_rita
):
    thread = Thread.objects.get(pk=start("tool_agent", FLIGHT))
    tasks = {t.tool_name: t for t in pending(thread.pk)}
    assert tasks["charge_card"].args["amount"] == 360.0 and tasks["charge_card"].rule is None
    book, charge = tasks["book_flight"], tasks["charge_card"]
    task_actions.decide([book, charge], {book.pk: {"type": "approve"}, charge.pk: EDIT}, user=rita)
    task_actions.decide([charge], {charge.pk: EDIT}, user=sam)
    finish()
    assert _charged(thread) == 1

    # Where the approved edit waits to run: the message still holds the 360
    # charge, the state the 5000 one.
    graph = graph_for(thread)
    before_tools = next(s for s in graph.get_state_history(config_for(thread)) if "tools" in s.next)
    (call,) = [
        c for c in before_tools.values["messages"][-1].tool_calls if c["name"] == "charge_card"
    ]
    assert call["args"]["amount"] == 360.0
    assert before_tools.values[EDITED_CALLS_KEY][call["id"]]["args"]["amount"] == 5000.0
    at = before_tools.config["configurable"]["checkpoint_id"]
    # The conversation shows what runs: the call as proposed, and the edit.
    page = as_rita.get(reverse("thread", args=[thread.pk]) + f"?at={at}").content.decode()
    (card,) = re.findall(
        r'<div class="tool-card">(?:(?!tool-card">).)*?charge_card.*?</div></div>', page, re.S
    )
    assert "360.0" in card and "edited by a reviewer" in card and "5000.0" in card

    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    for person, why in ((mallory, "you may not approve it"), (rita, "2")):
        with pytest.raises(PermissionDenied, match=why):
            run_actions.replay(thread, at, user=person)
        # Where it ended, the edit is still kept: a new message proposing a
        # small charge under the edited call's id, written as the middleware.
        edit = StateEdit.open(thread, {})
        message = {"type": "ai", "content": "", "tool_calls": [{**call, "args": {"amount": 1.0}}]}
        edit.bind_values(
            {"messages": [message]},
            as_node="HumanInTheLoopMiddleware.after_model",
            continue_run=True,
            base_checkpoint=thread.latest_checkpoint_id(),
        )
        assert edit.is_valid(), edit.edit_form.errors
        with pytest.raises(PermissionDenied, match=why):
            state_actions.edit(edit, user=person)
    finish()
    assert not Run.objects.filter(kind__in=[Run.Kind.REPLAY, Run.Kind.CONTINUE]).exists()
    assert _charged(thread) == 1


def test_a_thread_whose_call_was_edited_under_a_rule_is_seen_under_it(
    large_charges, rita, sam, client
):
    """A 360 charge no rule covers, edited into a 5000 one under finance's
    rule: from its first approval, the task, the thread, its copies, the
    turn's other calls' pages and the live queue are finance's to see."""
    thread = Thread.objects.get(pk=start("tool_agent", FLIGHT))
    tasks = {t.tool_name: t for t in pending(thread.pk)}
    book, charge = tasks["book_flight"], tasks["charge_card"]
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    client.force_login(mallory)
    assert can_thread(mallory, VIEW, thread)  # nothing on it is under a rule yet
    assert pending_count(mallory) == 2

    task_actions.decide([charge], {charge.pk: EDIT}, user=rita)  # one approval of two
    charge.refresh_from_db()
    assert (charge.status, charge.rule, charge.edit_rule) == ("pending", None, large_charges)
    assert not can_thread(mallory, VIEW, thread) and can_thread(rita, VIEW, thread)
    assert pending_count(mallory) == 1 and pending_count(rita) == 2
    assert not can(mallory, REVIEW, charge) and can(sam, REVIEW, charge)
    with pytest.raises(PermissionDenied, match="rule “large charges need two”"):
        task_actions.decide([charge], {charge.pk: {"type": "approve"}}, user=mallory)
    row = f'id="task-{charge.pk}"'
    pushed = live.render({"created": [charge.pk], "removed": [], "changed": [charge.pk]})
    assert row not in "".join(queue_messages(pushed, {None}))
    assert row in "".join(queue_messages(pushed, {None, large_charges.pk}))
    page = client.get(reverse("task", args=[book.pk])).content.decode()
    assert "book_flight" in page and "charge_card" not in page and "5000" not in page

    task_actions.decide([book, charge], {book.pk: {"type": "approve"}, charge.pk: EDIT}, user=sam)
    charge.refresh_from_db()
    assert (charge.status, charge.rule, charge.edit_rule) == ("decided", None, large_charges)
    finish()
    copy = thread_actions.copy(thread, user=rita)
    for shown in (thread, copy):
        assert can_thread(rita, VIEW, shown) and not can_thread(mallory, VIEW, shown)
        threads = Thread.objects.filter(pk=shown.pk)
        assert visible_threads(mallory, threads).count() == 0
        assert visible_threads(rita, threads).count() == 1
    everything = ReviewTask.objects.filter(pk__in=[book.pk, charge.pk])
    assert list(visible_tasks(mallory, everything)) == [book]
    with pytest.raises(Http404):
        task_for(mallory, charge.pk)
    assert task_for(rita, charge.pk) == charge
    page = client.get(reverse("task", args=[book.pk])).content.decode()
    assert "book_flight" in page and "charge_card" not in page and "5000" not in page


def test_an_edit_decided_at_once_is_seen_under_its_rule(large_charges, rita):
    large_charges.required_approvals = 1
    large_charges.save()
    thread = Thread.objects.get(pk=start("tool_agent", FLIGHT))
    (charge,) = [t for t in pending(thread.pk) if t.tool_name == "charge_card"]
    task_actions.decide([charge], {charge.pk: EDIT}, user=rita)
    charge.refresh_from_db()
    assert (charge.status, charge.edit_rule) == ("decided", large_charges)
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    assert not can_thread(mallory, VIEW, thread) and can_thread(rita, VIEW, thread)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_question_that_guards_a_call_is_asked_under_the_calls_rule(rita, sam, as_rita):
    """LangGraph's docs review a call with a plain interrupt() before the
    tools node, the call in its value: answering lets the call run, so the
    question is decided by those the call's rule names, with its quorum."""
    rule = reviewed_by(
        "finance", (rita, sam), name="weather", tool_name="look_up_weather", required_approvals=2
    )
    thread = start("asks_before_tools", {"messages": []})
    (question,) = pending(thread)
    assert question.tool_name == "" and question.rule == rule
    assert question.guards == [{"name": "look_up_weather", "args": {"city": "Porto"}}]
    page = as_rita.get(reverse("task", args=[question.pk])).content.decode()
    assert (
        "Answering lets the graph run this call" in page and "<code>look_up_weather</code>" in page
    )
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    yes = {question.pk: {"type": "answer", "value": "yes"}}
    with pytest.raises(PermissionDenied, match="rule “weather”"):
        task_actions.decide([question], yes, user=mallory)
    assert task_actions.decide([question], yes, user=rita) is None  # 1 of 2
    assert task_actions.decide([question], yes, user=sam) is not None
    finish()
    assert "sunny in Porto" in str(read_state(Thread.objects.get(pk=thread)).values["messages"])
    # A rule made later governs the open questions it matches, as for calls.
    thread = start("asks_before_tools", {"messages": []})
    rule.delete()
    assert pending(thread)[0].rule is None
    ReviewRule.objects.create(name="any weather", tool_name="look_up_weather")
    assert pending(thread)[0].rule.name == "any weather"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
@pytest.mark.parametrize("graph", ["confirms_plan", "stops_before_plan"])
def test_a_call_kept_in_a_state_key_of_its_own_is_asked_under_its_rule(graph, rita, sam):
    """A plan a later node carries out, kept outside the messages: the
    question that confirms it, or the breakpoint before the node that runs
    it, is decided by those the plan's rule names, with its quorum."""
    rule = reviewed_by(
        "finance", (rita, sam), name="refunds need two", tool_name="refund", required_approvals=2
    )
    thread = start(graph, {"messages": [{"role": "user", "content": "Refund me $2400"}]})
    (task,) = pending(thread)
    assert task.rule == rule
    go = {"type": "answer", "value": "yes"} if graph == "confirms_plan" else {"type": "continue"}
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    with pytest.raises(PermissionDenied, match="refunds need two"):
        task_actions.decide([task], {task.pk: go}, user=mallory)
    if graph == "stops_before_plan":
        with pytest.raises(PermissionDenied, match="you may not approve it"):
            run_actions.start(graph, None, user=mallory, thread_id=thread, kind=Run.Kind.CONTINUE)
    task_actions.decide([task], {task.pk: go}, user=rita)
    finish()
    assert "Refunded" not in str(read_state(Thread.objects.get(pk=thread)).values)
    task_actions.decide([task], {task.pk: go}, user=sam)
    finish()
    assert "Refunded 2400.00" in str(read_state(Thread.objects.get(pk=thread)).values)
