"""The thread page: the checkpoint tree, a point's state and diff, replay and fork."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import override_settings
from django.urls import reverse

from graphs.models import Checkpoint, Run, Thread
from reviews.models import AuditEvent
from reviews.state_diff import diff_states
from reviews.timeline import checkpoint_time, timeline
from tests.reviews.conftest import finish, pending, start
from tests.reviews.test_task_page import FLIGHT

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"


def tree(thread_id: str) -> dict[str, str | None]:
    rows = Checkpoint.objects.filter(thread_id=thread_id, checkpoint_ns="")
    return dict(rows.values_list("checkpoint_id", "parent_checkpoint_id"))


def answer_feedback(client, thread_id: str) -> None:
    (task,) = pending(thread_id)
    client.post(
        reverse("decide", args=[task.pk]),
        {
            f"t{task.pk}-type": "answer",
            f"t{task.pk}-f-approved": "on",
            f"t{task.pk}-f-tone": '"formal"',
        },
    )
    finish()


def test_timeline_points_name_their_step_source_writers_and_cause(as_rita):
    thread_id = start("drafting", {"topic": "launch"})
    answer_feedback(as_rita, thread_id)
    points, older = timeline(Thread.objects.get(pk=thread_id))
    assert older == ""
    summary = [(p.step, p.source, p.writers, p.interrupted, p.lane) for p in reversed(points)]
    assert summary == [
        (-1, "input", [], False, 0),
        (0, "loop", ["__start__"], False, 0),
        (1, "loop", ["write_draft"], True, 0),  # ask_feedback interrupted here
        (2, "loop", ["ask_feedback"], False, 0),
        (3, "loop", ["revise"], False, 0),  # stopped before publish
    ]
    assert points[0].latest and points[0].run.kind == Run.Kind.RESUME
    assert points[0].caused_by == f"run {points[0].run.pk} (resume an interrupt, rita)"
    assert points[-1].at is not None and points[-1].at <= points[0].at
    assert checkpoint_time("not-a-uuid") is None

    html = as_rita.get(reverse("thread", args=[thread_id])).content.decode()
    assert html.count('<li class="point') == 5
    assert html.count('class="dot lane-c0"') == 5  # one line: no branch yet
    assert "Replay from here" in html and 'class="mermaid"' in html
    assert "class publish next;" in html  # the diagram marks what runs next


def test_a_runs_metadata_never_says_who_edited_its_points(as_rita, rita):
    """Who edited a point is the dashboard's word, from its own state edits:
    a run asked with the dashboard's metadata keys is credited to its run."""
    spoof = {"hitl_user": "admin", "hitl_as_node": "publish", "hitl_run": 0, "team": "blue"}
    run = Run.enqueue(
        graph_name="drafting",
        kind=Run.Kind.START,
        payload={"topic": "launch"},
        metadata=spoof,
        config={"metadata": spoof},
        requested_by=rita,
    )
    finish()
    points, _ = timeline(Thread.objects.get(pk=run.thread_id))
    assert points and all(p.run == run and p.edited_by == "" for p in points)
    assert points[0].caused_by == f"run {run.pk} (start with input, rita)"
    for row in Checkpoint.objects.filter(thread_id=run.thread_id):
        assert row.metadata["team"] == "blue" and row.metadata["hitl_run"] == run.pk
        assert "hitl_user" not in row.metadata and "hitl_as_node" not in row.metadata
    # Written there some other way (a graph run outside the dashboard): a
    # graph's own step still isn't an edit.
    row = Checkpoint.objects.filter(thread_id=run.thread_id).latest("checkpoint_id")
    Checkpoint.objects.filter(pk=row.pk).update(metadata={**row.metadata, "hitl_user": "admin"})
    points, _ = timeline(Thread.objects.get(pk=run.thread_id))
    assert points[0].edited_by == "" and "admin" not in points[0].caused_by


def test_point_detail_and_diff_against_parent_or_any_point(as_rita):
    thread_id = start("drafting", {"topic": "launch"})
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    latest, first_loop = points[0], points[-2]
    response = as_rita.get(
        reverse("thread", args=[thread_id]),
        {"at": latest.checkpoint_id},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="thread-view",
    )
    html = response.content.decode()
    # The point and the timeline that marks it travel together.
    assert html.lstrip().startswith('<div class="thread-grid" id="thread-view">')
    assert (
        "<strong>draft</strong> added" in html
        and "stopped for review</span> in <code>ask_feedback" in html
    )
    compared = as_rita.get(
        reverse("thread", args=[thread_id]),
        {"at": latest.checkpoint_id, "compare": first_loop.checkpoint_id},
    ).content.decode()
    assert f'Compared with <code title="{first_loop.checkpoint_id}">' in compared
    missing = as_rita.get(reverse("thread", args=[thread_id]), {"at": "nope"})
    assert missing.status_code == 404


def test_diff_compares_messages_one_by_one():
    old = {
        "messages": [
            {"type": "human", "content": "hi", "id": "1"},
            {"type": "ai", "content": "draft", "id": "2"},
        ],
        "topic": "a",
        "gone": 1,
    }
    new = {
        "messages": [
            {"type": "human", "content": "hi", "id": "1"},
            {"type": "ai", "content": "better draft", "id": "2"},
            {"type": "tool", "content": "done", "id": "3"},
        ],
        "topic": "a",
        "added": True,
    }
    changes = {c.key: c for c in diff_states(old, new)}
    assert {k: c.kind for k, c in changes.items()} == {
        "messages": "changed",
        "added": "added",
        "gone": "removed",
    }
    messages = changes["messages"]
    assert messages.unchanged_messages == 1
    assert [(m.kind, m.label) for m in messages.messages] == [
        ("changed", "ai: better draft"),
        ("added", "tool: done"),
    ]


def test_replay_from_a_past_point_keeps_the_old_branch(as_rita, rita):
    thread_id = start("drafting", {"topic": "launch"})
    answer_feedback(as_rita, thread_id)
    before = tree(thread_id)
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    past = next(p for p in points if p.step == 1)  # before ask_feedback ran
    response = as_rita.post(reverse("replay", args=[thread_id]), {"checkpoint": past.checkpoint_id})
    assert response.status_code == 302
    (run,) = Run.objects.filter(kind=Run.Kind.REPLAY)
    assert run.checkpoint_id == past.checkpoint_id and run.requested_by == rita
    assert AuditEvent.objects.filter(action="thread.replayed", run_id=run.pk).exists()
    finish()
    after = tree(thread_id)
    assert set(before.items()) <= set(after.items())  # the old branch is all still there
    new = {cid: parent for cid, parent in after.items() if cid not in before}
    assert past.checkpoint_id in new.values()  # the new branch grows from the past point
    # Replaying ask_feedback asks the question again, as a new task.
    (again,) = pending(thread_id)
    assert again.kind == "feedback" and again.checkpoint_id in new
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    branch = [p for p in points if p.forks_from == past.checkpoint_id]
    assert len(branch) == 1 and branch[0].lane == 1


def test_replay_refused_while_a_run_is_active_or_for_a_foreign_point(as_rita):
    thread_id = start("drafting", {"topic": "launch"})
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    Run.enqueue(graph_name="drafting", kind=Run.Kind.CONTINUE, thread_id=thread_id)
    response = as_rita.post(
        reverse("replay", args=[thread_id]), {"checkpoint": points[1].checkpoint_id}, follow=True
    )
    assert "is queued on this thread; replay once it has stopped" in response.content.decode()
    response = as_rita.post(reverse("replay", args=[thread_id]), {"checkpoint": "x"}, follow=True)
    assert "is not a point of this thread" in response.content.decode()
    assert not Run.objects.filter(kind=Run.Kind.REPLAY).exists()


def test_fork_edits_a_past_state_and_the_branch_finishes(as_rita):
    thread_id = start("drafting", {"topic": "launch"})
    answer_feedback(as_rita, thread_id)
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    past = next(p for p in points if p.step == 3)  # revised, stopped before publish
    editor = as_rita.get(reverse("thread_state", args=[thread_id]), {"from": past.checkpoint_id})
    assert "Forking: this is the state at a past checkpoint" in editor.content.decode()
    edit = editor.context["edit"]
    data = {"checkpoint": edit.base_checkpoint, "from": past.checkpoint_id, "continue": "1"}
    for field in edit.form:
        if field.field.kind == "checkbox":
            if field.value():
                data[field.html_name] = "on"
        else:
            data[field.html_name] = field.value() or ""
    data["s-draft"] = "A forked draft"
    assert as_rita.post(reverse("thread_state", args=[thread_id]), data).status_code == 302
    fork = Checkpoint.objects.filter(thread_id=thread_id, metadata__source="update").get()
    assert fork.parent_checkpoint_id == past.checkpoint_id
    assert AuditEvent.objects.get(action="thread.forked").after["forked_from"] == past.checkpoint_id
    finish()  # the continue run publishes the fork's draft
    from reviews.graph_state import read_state

    assert read_state(Thread.objects.get(pk=thread_id)).values["published"] == "A forked draft"


def test_a_fork_continued_with_nothing_changed_runs_again_from_its_point(as_rita):
    thread_id = start("drafting", {"topic": "launch"})
    answer_feedback(as_rita, thread_id)
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    past = next(p for p in points if p.step == 1)  # the draft, before feedback
    editor = as_rita.get(reverse("thread_state", args=[thread_id]), {"from": past.checkpoint_id})
    edit = editor.context["edit"]
    data = {"checkpoint": edit.base_checkpoint, "from": past.checkpoint_id, "continue": "1"}
    for field in edit.form:
        if field.field.kind != "checkbox":
            data[field.html_name] = field.value() or ""
    response = as_rita.post(reverse("thread_state", args=[thread_id]), data, follow=True)
    assert f"runs the graph again from point {past.checkpoint_id[-8:]}" in (
        response.content.decode()
    )
    run = Run.objects.get(kind=Run.Kind.REPLAY)
    assert run.checkpoint_id == past.checkpoint_id
    assert AuditEvent.objects.filter(action="thread.replayed").count() == 1
    assert not Checkpoint.objects.filter(thread_id=thread_id, metadata__source="update").exists()
    finish()  # from the draft, the graph asks for feedback again
    (again,) = pending(thread_id)
    assert again.node == "ask_feedback" and again.run_id == run.pk


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_subgraph_points_have_their_namespace_and_state(as_rita):
    thread_id = start("nested", {"text": "  hello "})
    (task,) = pending(thread_id)
    assert task.description == "Is this text fine?"
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    inner = [p for p in points if p.ns]
    assert inner and all(p.ns.startswith("review:") for p in inner)
    assert {p.lane for p in inner} == {1}
    html = as_rita.get(
        reverse("thread", args=[thread_id]), {"at": inner[0].checkpoint_id, "ns": inner[0].ns}
    ).content.decode()
    assert "&quot;text&quot;: &quot;hello&quot;" in html and inner[0].ns in html


def test_start_form_from_the_input_schema(as_rita, rita):
    page = as_rita.get(reverse("start_run", args=["drafting"])).content.decode()
    assert 'name="in-topic"' in page and 'name="interrupt_before" value="publish"' in page
    bad = as_rita.post(reverse("start_run", args=["drafting"]), {"raw": "[1]"})
    assert bad.status_code == 422 and "Raw JSON must be an object" in bad.content.decode()
    response = as_rita.post(
        reverse("start_run", args=["drafting"]),
        {"title": "Launch post", "in-topic": "launch", "interrupt_after": ["write_draft"]},
    )
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "thread", args=[run.thread_id]
    )
    assert (run.payload, run.interrupt_after, run.requested_by) == (
        {"topic": "launch"},
        ["write_draft"],
        rita,
    )
    assert Thread.objects.get(pk=run.thread_id).title == "Launch post"
    finish()
    (stop,) = pending(run.thread_id)
    assert stop.kind == "breakpoint" and stop.node == "ask_feedback"
    assert as_rita.get(reverse("start_run", args=["nope"])).status_code == 404


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_the_thread_lists_its_runs_with_a_failure_and_its_traceback(as_rita, rita):
    thread_id = start("broken", {"answers": []}, requested_by=rita)
    run = Run.objects.get(thread_id=thread_id)
    again = Run.enqueue(graph_name="broken", kind=Run.Kind.CONTINUE, thread_id=thread_id)
    assert again.cancel(by=rita)
    html = as_rita.get(reverse("thread", args=[thread_id])).content.decode()
    # Newest first; the newest run did not fail, so the list starts closed.
    assert html.index(f'id="run-{again.pk}-status"') < html.index(f'id="run-{run.pk}-status"')
    assert '<details class="runs">' in html
    assert f"Run {run.pk}: failed" in html and "asked by rita" in html
    assert '<summary class="error">ValueError: the tool is down</summary>' in html
    assert "Traceback (most recent call last)" in html and "_boom" in html
    assert '<summary class="hint">Cancelled by rita.</summary>' in html
    # A failure as the newest run opens the list.
    Run.objects.filter(pk=again.pk).delete()
    html = as_rita.get(reverse("thread", args=[thread_id])).content.decode()
    assert '<details class="runs" open>' in html


def _fork_data(client, thread_id: str, checkpoint_id: str) -> dict[str, str]:
    """The state editor's form at a past point, filled as it comes."""
    editor = client.get(reverse("thread_state", args=[thread_id]), {"from": checkpoint_id})
    edit = editor.context["edit"]
    data = {"checkpoint": edit.base_checkpoint, "from": checkpoint_id, "continue": "1"}
    for field in edit.form:
        if field.field.kind == "checkbox":
            if field.value():
                data[field.html_name] = "on"
        else:
            data[field.html_name] = field.value() or ""
    return data


def _row(html: str, checkpoint_id: str) -> str:
    start = html.index(f'id="point-{checkpoint_id}"')
    return html[start : html.index("</li>", start)]


def test_a_replay_and_an_edit_of_the_past_each_get_a_line_joined_where_they_started(as_rita):
    thread_id = start("tool_agent", FLIGHT)
    book, charge = pending(thread_id)
    as_rita.post(
        reverse("decide", args=[book.pk]),
        {f"t{book.pk}-type": "approve", f"t{charge.pk}-type": "approve"},
    )
    finish()
    points, _ = timeline(Thread.objects.get(pk=thread_id))
    asked = next(p for p in points if p.step == 1)  # the model's turn, stopped for review
    as_rita.post(reverse("replay", args=[thread_id]), {"checkpoint": asked.checkpoint_id})
    finish()
    first = next(p for p in points if p.step == 0)
    data = _fork_data(as_rita, thread_id, first.checkpoint_id)
    data["s-messages"] = data["s-messages"].replace("Oslo", "Bergen")
    assert as_rita.post(reverse("thread_state", args=[thread_id]), data).status_code == 302
    finish()

    points, _ = timeline(Thread.objects.get(pk=thread_id))
    # Newest first, as drawn: (step, what wrote it, lane, branch label,
    # stopped for review, the rails beside the row).
    drawing = [
        (
            p.step,
            p.writers or p.source,
            p.lane,
            p.branch,
            p.interrupted,
            sorted((r["part"], r["lane"]) for r in p.rails),
        )
        for p in points
    ]
    after_model = ["HumanInTheLoopMiddleware.after_model"]
    assert drawing == [
        (2, ["model"], 2, "fork: state edited", True, [("below", 2)]),
        (1, "update", 2, "", False, [("above", 2), ("below", 2)]),
        (2, "fork", 1, "replay", True, [("below", 1), ("through", 2)]),
        (5, after_model, 0, "", False, [("below", 0), ("through", 1), ("through", 2)]),
        (4, ["model"], 0, "", False, [("above", 0), ("below", 0), ("through", 1), ("through", 2)]),
        # The tool calls were sent tasks: named by their node, not their index.
        (3, ["tools"], 0, "", False, [("above", 0), ("below", 0), ("through", 1), ("through", 2)]),
        (
            2,
            after_model,
            0,
            "",
            False,
            [("above", 0), ("below", 0), ("through", 1), ("through", 2)],
        ),
        # The replay's line comes down to the point it replayed and turns to it.
        (
            1,
            ["model"],
            0,
            "",
            True,
            [("above", 0), ("above", 1), ("below", 0), ("join", 1), ("through", 2)],
        ),
        (0, ["__start__"], 0, "", False, [("above", 0), ("above", 2), ("below", 0), ("join", 2)]),
        (-1, "input", 0, "", False, [("above", 0)]),
    ]
    assert points[2].forks_from == asked.checkpoint_id
    assert points[1].forks_from == first.checkpoint_id

    html = as_rita.get(reverse("thread", args=[thread_id])).content.decode()
    assert html.count('<li class="point') == 10
    # The joins run from the fork point's dot across to the branch's lane.
    assert 'class="line join lane-c1" style="left: 0px; width: 16px"' in _row(
        html, asked.checkpoint_id
    )
    assert 'class="line join lane-c2" style="left: 0px; width: 32px"' in _row(
        html, first.checkpoint_id
    )
    tip_of_replay, edit, tip_of_edit = points[2], points[1], points[0]
    assert '<span class="pill branch lane-c1">replay</span>' in _row(
        html, tip_of_replay.checkpoint_id
    )
    assert '<span class="pill branch lane-c2">fork: state edited</span>' in _row(
        html, tip_of_edit.checkpoint_id
    )
    assert f'branches from <code title="{first.checkpoint_id}">' in _row(html, edit.checkpoint_id)
    stopped = {p.checkpoint_id for p in points if p.interrupted}
    assert stopped == {tip_of_edit.checkpoint_id, tip_of_replay.checkpoint_id, asked.checkpoint_id}
    assert (
        set(re.findall(r'<li class="point interrupted[^"]*" id="point-([^"]+)"', html)) == stopped
    )
    # Every point is a link with its short id: the graph is a list underneath.
    for p in points:
        assert f'<code class="short-id" title="{p.checkpoint_id}">{p.short_id}</code>' in html
        assert f'href="/threads/{thread_id}/?at={p.checkpoint_id}"' in html
