"""What a reviewer's answers and a graph's values become through this
project, beside what LangGraph does with them directly: a loop's questions,
the API's view of each interrupt, typed edits, values as JSON, a refused
answer. (Every documented pattern's final state: test_hitl_patterns.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Run
from graphs.registry import get_registry
from graphs.worker import work
from reviews.models import AuditEvent, ReviewTask
from tests.graphs.differential import answer, api_client, comparable, directly, through_the_api
from tests.graphs.test_worker import AGENTS

LOOP = [answer("x"), answer(-1), answer(30)]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_each_question_of_a_loop_shows_the_answer_it_follows(transactional_db):
    assert through_the_api("asks_again", {}, LOOP).asked == [
        "How old are you?",
        "'x' is not a valid age. How old are you?",
        "-1 is not a valid age. How old are you?",
    ]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_the_api_shows_what_each_interrupt_asked_and_where(transactional_db):
    api = api_client("api")
    for graph, given in (("echo", {"text": "refund 120?"}), ("nested", {"text": " hi "})):
        assert api.post("/api/runs", {"graph": graph, "input": given}, "application/json")
    work("api-worker")
    tasks = {t["graph"]: t for t in api.get("/api/tasks").json()["tasks"]}
    echo, nested = tasks["echo"], tasks["nested"]
    assert (echo["payload"], echo["node"], echo["namespace"]) == (
        {"question": "refund 120?"},
        "ask",
        "",
    )
    assert echo["interrupt_id"]
    # Asked inside the `review` subgraph, by its `check` node.
    assert nested["node"] == "check" and nested["namespace"].startswith("review:")
    assert nested["payload"] == "Is this text fine?"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_an_edit_is_checked_against_the_tools_own_annotations(transactional_db):
    """The support graph calls plain functions (no tool node): `amount: float`
    still refuses a string, with a message, before anything runs."""
    api = api_client("typed")
    given = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
    api.post("/api/runs", {"graph": "support", "input": given}, "application/json")
    work("typed-worker")
    (task,) = api.get("/api/tasks").json()["tasks"]

    def edit(amount):
        args = {"order_id": "A-1001", "amount": amount, "reason": "x"}
        return api.post(
            f"/api/tasks/{task['id']}/decision",
            {"decisions": {task["id"]: {"type": "edit", "name": "refund", "args": args}}},
            "application/json",
        )

    refused = edit("99")
    assert refused.status_code == 422
    assert "amount" in refused.json()["errors"][str(task["id"])]
    assert ReviewTask.objects.get(pk=task["id"]).status == "pending"
    assert edit(99).status_code == 200


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_values_are_shown_as_json_as_langgraphs_server_sends_them(transactional_db):
    api = api_client("shown")
    thread = api.post("/api/runs", {"graph": "rich"}, "application/json").json()["thread_id"]
    work("shown-worker")
    values = api.get(f"/api/threads/{thread}").json()["values"]
    assert values["price"] == 12.5 and sorted(values["tags"]) == ["urgent", "vip"]
    assert values["blob"] == "AAFiaW5hcnk=" and values["wait"] == 5400.0
    assert values["when"] == "2026-11-29T08:30:00+00:00" and values["point"] == {"x": 3, "y": 4}
    assert values["ident"] == "12345678-1234-5678-1234-567812345678"
    assert values["messages"][0]["tool_calls"][0]["name"] == "charge"
    (task,) = api.get("/api/tasks").json()["tasks"]
    assert task["payload"]["price"] == 12.5
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="shown"))
    for url in (f"/tasks/{task['id']}/", f"/threads/{thread}/", f"/threads/{thread}/state/"):
        html = admin.get(url).content.decode()
        for repr_text in ("Decimal(", "datetime.", "UUID(", "b&#x27;", "{&#x27;", "AIMessage("):
            assert repr_text not in html, (url, repr_text)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_an_edit_round_trips_the_types_of_the_state(transactional_db):
    api = api_client("edits")
    thread = api.post("/api/runs", {"graph": "rich"}, "application/json").json()["thread_id"]
    work("edits-worker")
    shown = api.get(f"/api/threads/{thread}").json()
    edited = {**shown["values"], "price": 99.95, "tags": ["vip"], "answer": "edited"}
    response = api.post(
        f"/api/threads/{thread}/state",
        {"values": edited, "base_checkpoint": shown["checkpoint_id"]},
        "application/json",
    )
    assert response.status_code == 200, response.content
    graph = get_registry().get("rich").compile(DjangoCheckpointSaver())
    state = graph.get_state({"configurable": {"thread_id": thread}}).values
    assert state["price"] == Decimal("99.95") and isinstance(state["price"], Decimal)
    assert state["tags"] == {"vip"}
    assert (state["blob"], state["wait"]) == (b"\x00\x01binary", timedelta(minutes=90))
    assert isinstance(state["when"], datetime) and isinstance(state["ident"], UUID)
    assert type(state["point"]).__name__ == "Point"
    assert [type(m).__name__ for m in state["messages"]] == ["AIMessage"]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_an_answer_the_graph_refuses_opens_the_review_again(transactional_db):
    """LangGraph keeps a refused answer and would read it again; here the
    review opens again with the error, the earlier answers of the loop stay,
    and the final state is the one LangGraph reaches with the good answers."""
    api = api_client("refused")
    thread = api.post("/api/runs", {"graph": "asks_again"}, "application/json").json()
    thread = thread["thread_id"]
    work("refused-worker")

    def decide(value) -> dict:
        (task,) = api.get("/api/tasks", {"status": "pending"}).json()["tasks"]
        decision = {task["id"]: {"type": "answer", "value": value}}
        assert (
            api.post(
                f"/api/tasks/{task['id']}/decision", {"decisions": decision}, "application/json"
            ).status_code
            == 200
        )
        work("refused-worker")
        return task

    decide("x")
    refused = decide("boom")
    failed = Run.objects.filter(thread_id=thread).order_by("-pk").first()
    assert failed.status == Run.Status.FAILED and "crashed on 'boom'" in failed.error
    (again,) = api.get("/api/tasks", {"status": "pending"}).json()["tasks"]
    assert again["id"] == refused["id"] and "crashed on 'boom'" in again["refused_with"]
    assert again["description"] == "'x' is not a valid age. How old are you?"
    retry = api.post(f"/api/runs/{failed.pk}/retry")
    assert retry.status_code == 409 and f"task {again['id']}" in retry.json()["detail"]
    assert AuditEvent.objects.filter(action="task.reopened", task_id=again["id"]).exists()
    decide(30)
    graph = get_registry().get("asks_again").compile(DjangoCheckpointSaver())
    got = graph.get_state({"configurable": {"thread_id": thread}}).values
    expected = directly("asks_again", {}, [answer("x"), answer(30)])
    assert comparable(got) == comparable(expected) == comparable({"age": 30, "attempts": 2})


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_an_async_tool_ran_after_its_review(transactional_db):
    state = through_the_api("async_tools", {}, [answer("go ahead")]).values
    assert state["verdict"] == "go ahead"
    assert state["messages"][-1].content == "sunny in Porto"
