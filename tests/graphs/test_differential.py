"""The same graph run directly with LangGraph and through this project.

Directly: an in-memory saver, `invoke`, then `Command(resume=...)` with the
value a reviewer's decision should produce. Here: started through the API,
run by the worker, each question decided through the API. The final states
must be equal, in value and in Python type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Run
from graphs.registry import get_registry
from graphs.worker import work
from reviews.models import ApiToken, AuditEvent, ReviewTask
from tests.graphs.test_worker import AGENTS

# One answer per question: (task as the API shows it) -> decision, and the
# resume value the same decision gives LangGraph directly.
Answer = tuple[Callable[[dict], dict], Any]


def typed(value: Any) -> Any:
    """A value with the Python type of every part, for comparisons."""
    if isinstance(value, BaseMessage):
        # add_messages gives each message a random id; the rest must match.
        return (type(value), typed(value.model_dump(exclude={"id"})))
    if isinstance(value, dict):
        return (type(value), {k: typed(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return (type(value), [typed(v) for v in value])
    return (type(value), value)


def direct(graph_name: str, given: dict, answers: list[Answer]) -> Any:
    graph = get_registry().get(graph_name).compile(InMemorySaver())
    config = {"configurable": {"thread_id": "direct"}}

    async def drive() -> Any:
        # ainvoke: LangGraph's way for graphs with async nodes, and sync ones too.
        await graph.ainvoke(given, config)
        for _, value in answers:
            pending = (await graph.aget_state(config)).interrupts
            assert len(pending) == 1, pending
            await graph.ainvoke(Command(resume={pending[0].id: value}), config)
        assert not (await graph.aget_state(config)).interrupts
        return (await graph.aget_state(config)).values

    return asyncio.run(drive())


def through_the_api(graph_name: str, given: dict, answers: list[Answer]) -> tuple[Any, list]:
    user = get_user_model().objects.create_superuser("diff", password="pw-diff-123")
    _, key = ApiToken.issue(user, "diff")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    run = api.post("/api/runs", {"graph": graph_name, "input": given}, "application/json")
    assert run.status_code == 201, run.content
    thread = run.json()["thread_id"]
    work("diff-worker")
    asked = []
    for decision, _ in answers:
        tasks = api.get("/api/tasks", {"status": "pending"}).json()["tasks"]
        (task,) = [t for t in tasks if t["thread_id"] == thread]
        asked.append(task["description"])
        response = api.post(
            f"/api/tasks/{task['id']}/decision",
            {"decisions": {task["id"]: decision(task)}},
            "application/json",
        )
        assert response.status_code == 200, response.content
        work("diff-worker")
    assert not ReviewTask.objects.pending().filter(thread_id=thread).exists()
    graph = get_registry().get(graph_name).compile(DjangoCheckpointSaver())
    return graph.get_state({"configurable": {"thread_id": thread}}).values, asked


def answer(value: Any) -> Answer:
    return (lambda task: {"type": "answer", "value": value}), value


CASES = {
    # Several interrupt() calls in one node: each resume answers only the
    # question asked now.
    "validate input in a loop": ("asks_again", {}, [answer("x"), answer(-1), answer(30)]),
    # Decimal, set, bytes, datetime, UUID, timedelta, a dataclass, messages.
    "typed state": ("rich", {}, [answer("yes")]),
    "pydantic state": ("rich_model", {}, [answer("fine")]),
    # async def nodes, and an async-only tool in a tool node.
    "async nodes and tools": ("async_tools", {}, [answer("go ahead")]),
}


@pytest.mark.parametrize("case", list(CASES))
@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_same_final_state_as_langgraph(case, transactional_db):
    graph_name, given, answers = CASES[case]
    expected = direct(graph_name, given, answers)
    got, _ = through_the_api(graph_name, given, answers)
    assert typed(got) == typed(expected)


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_each_question_of_a_loop_shows_the_answer_it_follows(transactional_db):
    _, asked = through_the_api("asks_again", {}, CASES["validate input in a loop"][2])
    assert asked == [
        "How old are you?",
        "'x' is not a valid age. How old are you?",
        "-1 is not a valid age. How old are you?",
    ]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_the_api_shows_what_each_interrupt_asked_and_where(transactional_db):
    user = get_user_model().objects.create_superuser("api", password="pw-api-123")
    _, key = ApiToken.issue(user, "api")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
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
    user = get_user_model().objects.create_superuser("typed", password="pw-typed-123")
    _, key = ApiToken.issue(user, "typed")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
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


def _api(name: str) -> Client:
    user = get_user_model().objects.create_superuser(name, password=f"pw-{name}-123")
    _, key = ApiToken.issue(user, name)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_values_are_shown_as_json_as_langgraphs_server_sends_them(transactional_db):
    api = _api("shown")
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
    api = _api("edits")
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
    api = _api("refused")
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
    expected = direct("asks_again", {}, [answer("x"), answer(30)])
    assert typed(got) == typed(expected) == typed({"age": 30, "attempts": 2})


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_an_async_tool_ran_after_its_review(transactional_db):
    state, _ = through_the_api("async_tools", {}, [answer("go ahead")])
    assert state["verdict"] == "go ahead"
    assert state["messages"][-1].content == "sunny in Porto"
