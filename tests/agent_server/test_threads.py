"""/langgraph/threads through langgraph-sdk (sync and async), over real HTTP
against the served dashboard: the shapes LangGraph's dev server answers with,
Agent Inbox's calls, and the dashboard's own rules and audit behind them."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)

from tests.agent_server.conftest import ALLOWED_ORIGIN

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1002, $1450"}]}
THREAD_KEYS = {
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "config",
    "values",
}
STATE_KEYS = {
    "values",
    "next",
    "tasks",
    "metadata",
    "created_at",
    "checkpoint",
    "parent_checkpoint",
    "interrupts",
    "checkpoint_id",
    "parent_checkpoint_id",
}
TASK_KEYS = {"id", "name", "path", "error", "interrupts", "checkpoint", "state", "result"}


def add_rule(served, graph: str, *, view=(), review=()) -> None:
    """A review rule for the whole graph, naming these groups (made once)."""
    served.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group\n"
        "from reviews.models import ReviewRule\n"
        f"rule, made = ReviewRule.objects.get_or_create(name='api {graph}', graph_name={graph!r})\n"
        f"rule.view_groups.set([Group.objects.get_or_create(name=n)[0] for n in {list(view)!r}])\n"
        f"rule.review_groups.set([Group.objects.get_or_create(name=n)[0] for n in {list(review)!r}])\n",
    )


def audit(served, thread_id: str) -> list[list]:
    return served.query(
        "from reviews.audit_log import AuditEvent\n"
        f"result = [[e.action, e.actor_name, e.after] for e in AuditEvent.objects"
        f".filter(thread_id={thread_id!r}).order_by('id')]"
    )


def open_tasks(served, thread_id: str) -> int:
    return served.query(
        "from reviews.models import ReviewTask\n"
        f"result = ReviewTask.objects.filter(thread_id={thread_id!r}, status='pending').count()"
    )


def test_create_get_update_and_delete(sdk, served):
    made = sdk.threads.create(metadata={"customer": "acme"})
    assert set(made) == THREAD_KEYS
    assert (made["status"], made["values"], made["config"]) == ("idle", None, {})
    assert made["metadata"] == {"customer": "acme"}
    assert sdk.threads.get(made["thread_id"]) == made
    assert sdk.threads.get_state(made["thread_id"])["checkpoint"] is None

    mine = sdk.threads.create(thread_id="ticket-4711", metadata={"n": 1})
    assert mine["thread_id"] == "ticket-4711"
    with pytest.raises(ConflictError):
        sdk.threads.create(thread_id="ticket-4711")
    assert sdk.threads.create(thread_id="ticket-4711", if_exists="do_nothing") == mine

    updated = sdk.threads.update("ticket-4711", metadata={"m": 2})
    assert updated["metadata"] == {"n": 1, "m": 2}
    assert sdk.threads.search(metadata={"m": 2}, limit=100) == [updated]

    sdk.threads.delete("ticket-4711")
    with pytest.raises(NotFoundError):
        sdk.threads.get("ticket-4711")
    assert [a[:2] for a in audit(served, "ticket-4711")] == [["thread.deleted", "admin"]]


def test_an_interrupted_thread_reads_as_agent_inbox_reads_it(served, sdk, api_key):
    thread_id = served.start("support", REFUND, key=api_key)
    # Agent Inbox: threads.search({offset, limit, status, metadata}), then each
    # thread's `interrupts`.
    found = sdk.threads.search(
        status="interrupted", metadata={"graph_id": "support"}, limit=100, offset=0
    )
    thread = next(t for t in found if t["thread_id"] == thread_id)
    assert set(thread) == THREAD_KEYS | {"error", "interrupts"}
    assert thread["status"] == "interrupted"
    assert thread["metadata"]["assistant_id"] == sdk.assistants.get("support")["assistant_id"]
    state = sdk.threads.get_state(thread_id)
    assert set(state) == STATE_KEYS and set(state["tasks"][0]) == TASK_KEYS
    (task,) = [t for t in state["tasks"] if t["interrupts"]]
    assert thread["interrupts"] == {task["id"]: task["interrupts"]}
    (interrupt,) = task["interrupts"]
    assert set(interrupt) == {"id", "value"}
    (request,) = interrupt["value"]
    assert request["action_request"]["action"] == "refund"
    assert set(request["config"]) == {"allow_accept", "allow_edit", "allow_respond", "allow_ignore"}
    assert state["interrupts"] == [interrupt]
    assert thread["values"] == state["values"]

    assert sdk.threads.search(values={"messages": thread["values"]["messages"]}) == [thread]
    assert sdk.threads.count(status="interrupted", metadata={"graph_id": "support"}) >= 1
    assert thread_id not in [t["thread_id"] for t in sdk.threads.search(status="idle", limit=100)]


def test_ignore_ends_the_thread_through_the_state_editor(served, sdk, api_key):
    """Agent Inbox's ignore: threads.updateState(id, {values: null, asNode: "__end__"})."""
    thread_id = served.start("support", REFUND, key=api_key)
    assert open_tasks(served, thread_id) == 1
    written = sdk.threads.update_state(thread_id, None, as_node="__end__")
    assert set(written) == {"checkpoint", "configurable", "checkpoint_id"}
    assert written["checkpoint"] == {
        "thread_id": thread_id,
        "checkpoint_ns": "",
        "checkpoint_id": written["checkpoint_id"],
    }
    thread = sdk.threads.get(thread_id)
    assert (thread["status"], thread["interrupts"]) == ("idle", {})
    assert sdk.threads.get_state(thread_id)["next"] == []
    # The open review task is retired and the edit is audited as one.
    assert open_tasks(served, thread_id) == 0
    assert ["state.edited", "admin", {"values": {}, "as_node": "__end__"}] in audit(
        served, thread_id
    )


async def test_update_state_writes_values_as_a_node_and_forks_from_a_checkpoint(
    served, async_sdk, api_key
):
    thread_id = served.start("drafting", {"topic": "launch"}, key=api_key)
    before = await async_sdk.threads.get_state(thread_id)
    written = await async_sdk.threads.update_state(
        thread_id, {"draft": "A better draft"}, as_node="write_draft"
    )
    after = await async_sdk.threads.get_state(thread_id)
    assert after["values"]["draft"] == "A better draft"
    assert after["checkpoint"]["checkpoint_id"] == written["checkpoint_id"]
    assert after["parent_checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert after["metadata"]["source"] == "update"
    assert [
        "state.edited",
        "admin",
        {"values": {"draft": "A better draft"}, "as_node": "write_draft"},
    ] in audit(served, thread_id)

    # The same rules as the editor: keys of the state only, nodes of the graph only.
    with pytest.raises(UnprocessableEntityError):
        await async_sdk.threads.update_state(thread_id, {"colour": "red"})
    with pytest.raises(UnprocessableEntityError):
        await async_sdk.threads.update_state(thread_id, {"topic": "x"}, as_node="nowhere")

    # From an earlier checkpoint: a new branch from there.
    forked = await async_sdk.threads.update_state(
        thread_id, {"topic": "another"}, checkpoint=before["checkpoint"]
    )
    state = await async_sdk.threads.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == forked["checkpoint_id"]
    assert state["parent_checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert state["values"]["draft"] == before["values"]["draft"]
    assert "thread.forked" in [a[0] for a in audit(served, thread_id)]

    # No values at a past point: a bare fork, the point copied as a new branch.
    bare = await async_sdk.threads.update_state(thread_id, None, checkpoint=before["checkpoint"])
    state = await async_sdk.threads.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == bare["checkpoint_id"]
    assert state["parent_checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert (state["values"], state["next"]) == (before["values"], before["next"])
    assert state["metadata"]["source"] == "update"
    # At the latest point nothing would change: said so, nothing written.
    with pytest.raises(UnprocessableEntityError, match="Nothing changed"):
        await async_sdk.threads.update_state(thread_id, None)


async def test_state_at_a_checkpoint_with_subgraphs_and_history(served, async_sdk, api_key):
    thread_id = served.start("nested", {"text": "  hello  "}, key=api_key)
    plain = await async_sdk.threads.get_state(thread_id)
    (task,) = plain["tasks"]
    assert task["name"] == "review" and task["state"] is None
    deep = await async_sdk.threads.get_state(thread_id, subgraphs=True)
    inner = deep["tasks"][0]["state"]
    assert set(inner) == STATE_KEYS
    assert inner["next"] == ["check"]
    assert inner["checkpoint"]["checkpoint_ns"].startswith("review:")
    assert inner["interrupts"] == task["interrupts"]

    history = await async_sdk.threads.get_history(thread_id, limit=10)
    assert [h["metadata"]["step"] for h in history] == [1, 0, -1]
    assert history[0] == plain
    parent = history[1]["checkpoint"]
    assert await async_sdk.threads.get_state(thread_id, checkpoint=parent) == history[1]
    assert (
        await async_sdk.threads.get_state(thread_id, checkpoint_id=parent["checkpoint_id"])
        == (history[1])
    )
    assert await async_sdk.threads.get_history(thread_id, limit=1) == history[:1]
    assert await async_sdk.threads.get_history(thread_id, limit=10, before=parent) == history[2:]
    assert await async_sdk.threads.get_history(thread_id, metadata={"source": "input"}) == [
        history[2]
    ]
    # As LangGraph lists a checkpoint given by id: that one alone.
    assert await async_sdk.threads.get_history(thread_id, checkpoint=parent) == history[1:2]
    # A subgraph's own history, by its namespace.
    ns = inner["checkpoint"]["checkpoint_ns"]
    inside = await async_sdk.threads.get_history(thread_id, checkpoint={"checkpoint_ns": ns})
    assert inside[0]["checkpoint"]["checkpoint_id"] == inner["checkpoint"]["checkpoint_id"]


def test_copy_and_prune(served, sdk, api_key):
    thread_id = served.start("drafting", {"topic": "copies"}, key=api_key)
    sdk.threads.update(thread_id, metadata={"team": "docs"})
    copy = sdk.threads.copy(thread_id)
    original = sdk.threads.get(thread_id)
    assert copy["thread_id"] != thread_id
    assert copy["values"] == original["values"]
    assert copy["metadata"] == original["metadata"]
    assert copy["status"] == "interrupted"
    # The copy waits for a person like any stopped thread: it has its own review task.
    assert open_tasks(served, copy["thread_id"]) == 1
    assert [a[:3] for a in audit(served, copy["thread_id"])] == [
        ["thread.copied", "admin", {"copied_from": thread_id}]
    ]

    assert len(sdk.threads.get_history(copy["thread_id"], limit=100)) > 1
    assert sdk.threads.prune([copy["thread_id"]], strategy="keep_latest") == {"pruned_count": 1}
    assert len(sdk.threads.get_history(copy["thread_id"], limit=100)) == 1
    assert sdk.threads.get(copy["thread_id"])["values"] == original["values"]

    assert sdk.threads.prune([copy["thread_id"], "no-such-thread"]) == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        sdk.threads.get(copy["thread_id"])
    assert sdk.threads.get(thread_id)["values"] == original["values"]


def test_a_key_reads_and_changes_only_what_its_user_may(served, sdk, api_key):
    """The rules of reviews/access.py: a thread is seen by those who may see
    its graph and every task on it, and changed only by those who may decide
    every task open on it."""
    add_rule(served, "nested", view=("nested-viewers",), review=("nested-reviewers",))
    served.user("nested-outsider")
    served.user("nested-viewer", groups=("nested-viewers",))
    served.user("nested-reviewer", groups=("nested-reviewers",))
    outsider, viewer, reviewer = (
        get_sync_client(url=served.api_url, api_key=served.key(name))
        for name in ("nested-outsider", "nested-viewer", "nested-reviewer")
    )
    thread_id = served.start("nested", {"text": "secret"}, key=api_key)

    assert thread_id not in [t["thread_id"] for t in outsider.threads.search(limit=100)]
    for read in (outsider.threads.get, outsider.threads.get_state, outsider.threads.get_history):
        with pytest.raises(NotFoundError):
            read(thread_id)
    assert outsider.threads.count(metadata={"graph_id": "nested"}) == 0

    assert viewer.threads.get(thread_id)["status"] == "interrupted"
    with pytest.raises(PermissionDeniedError):
        viewer.threads.update_state(thread_id, None, as_node="__end__")
    with pytest.raises(PermissionDeniedError):
        viewer.threads.update(thread_id, metadata={"x": 1})
    with pytest.raises(PermissionDeniedError):
        viewer.threads.delete(thread_id)
    with pytest.raises(PermissionDeniedError):
        viewer.threads.prune([thread_id])
    assert open_tasks(served, thread_id) == 1

    reviewer.threads.update_state(thread_id, None, as_node="__end__")
    assert viewer.threads.get(thread_id)["status"] == "idle"


def test_a_busy_thread_refuses_state_updates(served, sdk, api_key):
    thread_id = served.start("drafting", {"topic": "busy"}, key=api_key)
    run = served.query(
        "from graphs.models import Run\n"
        # Running elsewhere: made as such, so no worker here ever claims it.
        "run = Run.objects.create(graph_name='drafting', kind='continue',"
        f" thread_id={thread_id!r}, status='running', worker_id='elsewhere')\n"
        "result = run.pk"
    )
    try:
        assert sdk.threads.get(thread_id)["status"] == "busy"
        assert thread_id in [t["thread_id"] for t in sdk.threads.search(status="busy", limit=100)]
        with pytest.raises(ConflictError):
            sdk.threads.update_state(thread_id, {"topic": "meanwhile"})
        with pytest.raises(ConflictError):
            sdk.threads.delete(thread_id)
    finally:
        served.query(
            "from graphs.models import Run\n"
            f"result = Run.objects.filter(pk={run}).update(status='cancelled')"
        )


def test_cors_preflight_for_allowed_origins_only(served):
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type",
    }
    url = f"{served.api_url}/threads/search"
    allowed = httpx.options(url, headers={"Origin": ALLOWED_ORIGIN, **asked})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allowed_headers = allowed.headers["access-control-allow-headers"].split(", ")
    assert {"x-api-key", "content-type"} <= set(allowed_headers)
    other = httpx.options(url, headers={"Origin": "http://elsewhere.test", **asked})
    assert "access-control-allow-origin" not in other.headers
    # Pages are no API: no CORS headers there.
    page = httpx.options(f"{served.url}/queue/", headers={"Origin": ALLOWED_ORIGIN, **asked})
    assert "access-control-allow-origin" not in page.headers


def test_remote_graph_reads_and_edits_state(served, api_key):
    """LangGraph's RemoteGraph, pointed at this server, reads the graph, the
    state and its history and writes state as a local graph would."""
    from langgraph.pregel.remote import RemoteGraph

    thread_id = served.start("drafting", {"topic": "remote"}, key=api_key)
    remote = RemoteGraph("drafting", url=served.api_url, api_key=api_key)
    config = {"configurable": {"thread_id": thread_id}}

    drawn = remote.get_graph(xray=True)
    assert {"write_draft", "ask_feedback", "revise", "publish"} <= set(drawn.nodes)
    state = remote.get_state(config)
    assert state.next == ("ask_feedback",)
    assert state.values["topic"] == "remote"
    (interrupt,) = state.interrupts
    assert interrupt.value["question"].startswith("How should this draft change")
    assert [s.metadata["step"] for s in remote.get_state_history(config)][:2] == [1, 0]

    written = remote.update_state(config, {"draft": "Edited remotely"}, as_node="write_draft")
    assert remote.get_state(config).values["draft"] == "Edited remotely"
    assert (
        written["configurable"]["checkpoint_id"]
        == remote.get_state(config).config["configurable"]["checkpoint_id"]
    )


def test_a_static_breakpoint_reads_as_interrupted_with_no_interrupts(served, sdk, api_key):
    """As LangGraph's server: stopped before a node (interrupt_before), the
    thread is interrupted, its next node named, with no interrupt values."""
    thread_id = sdk.threads.create()["thread_id"]
    sdk.runs.wait(thread_id, "drafting", input={"topic": "breakpoints"})
    sdk.runs.wait(thread_id, "drafting", command={"resume": {"approved": True, "tone": "formal"}})
    thread = sdk.threads.get(thread_id)
    assert (thread["status"], thread["interrupts"]) == ("interrupted", {})
    assert sdk.threads.get_state(thread_id)["next"] == ["publish"]
    assert thread_id in [
        t["thread_id"] for t in sdk.threads.search(status="interrupted", limit=100)
    ]


def test_a_thread_whose_newest_run_failed_reads_as_error(served, sdk, api_key):
    thread_id = served.start("drafting", {"topic": "failing"}, key=api_key)
    served.query(
        "from graphs.models import Run\n"
        "result = Run.objects.create(graph_name='drafting', kind='continue',"
        f" thread_id={thread_id!r}, status='failed',"
        " error='ValueError: the draft is empty').pk"
    )
    thread = sdk.threads.get(thread_id)
    assert thread["status"] == "error"
    assert thread["error"] == {"error": "ValueError", "message": "the draft is empty"}
    assert thread_id in [t["thread_id"] for t in sdk.threads.search(status="error", limit=100)]
