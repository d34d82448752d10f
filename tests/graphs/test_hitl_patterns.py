"""Every human-in-the-loop pattern of LangGraph's documentation, run twice:
directly with LangGraph (an in-memory saver, `ainvoke`, then `Command(resume=
...)` with the value the reviewer's decision should produce, `update_state`
for a state edit) and through this project (started through the API, run by
the worker, each decision and edit made through the API). The final states
must be equal in value and in Python type."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.registry import get_registry
from graphs.worker import work
from reviews.models import ApiToken, ReviewTask

PATTERNS = Path(__file__).parent / "patterns" / "langgraph.json"
CONTINUE = object()  # a breakpoint's "go on": invoke(None)
# The scripted model's tool call ids, random on each run (keys of the HITL
# middleware's record of edited calls).
CALL_ID = re.compile(r"call_[0-9a-f]{12}")


@dataclass
class Step:
    """One human turn. Through the API: `decide` maps the open tasks to
    decisions, or `edit` writes state values as a node and continues.
    Directly: `resume` maps the pending interrupts to the resume value."""

    decide: Callable[[list[dict]], dict[int, dict]] | None = None
    resume: Callable[[list[Any]], Any] | None = None
    edit: tuple[dict[str, Any], str] | None = None


def each(decision: Callable[[dict], dict]) -> Callable[[list[dict]], dict[int, dict]]:
    return lambda tasks: {t["id"]: decision(t) for t in tasks}


def answer(value: Any) -> Step:
    return Step(
        decide=each(lambda task: {"type": "answer", "value": value}),
        resume=lambda interrupts: {interrupts[0].id: value},
    )


GO_ON = Step(decide=each(lambda task: {"type": "continue"}), resume=lambda interrupts: CONTINUE)
FEEDBACK = {"approved": False, "tone": "friendly", "notes": "shorter"}
TRAVEL = {"messages": [{"role": "user", "content": "Book me a flight to Rome for 2 people"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
NOK = {"name": "charge_card", "args": {"amount": 300, "currency": "NOK"}}

CASES: dict[str, tuple[str, dict, list[Step]]] = {
    "approve, then Command(goto=...)": ("approval", {}, [answer("approve")]),
    "reject, then Command(goto=...)": ("approval", {}, [answer("reject")]),
    "typed feedback, then a static interrupt_before": (
        "drafting",
        {"topic": "refunds"},
        [answer(FEEDBACK), GO_ON],
    ),
    "edit the state at a breakpoint, as a node": (
        "drafting",
        {"topic": "refunds"},
        [answer(FEEDBACK), Step(edit=({"draft": "Edited by a person."}, "revise"))],
    ),
    "static interrupt_after": ("paused_after", {"log": []}, [GO_ON]),
    "review a tool call inside the tool": (
        "tool_with_interrupt",
        {},
        [answer({"type": "edit", "args": {"hotel_name": "Grand"}})],
    ),
    "parallel interrupts resumed together": (
        "parallel",
        {"answers": []},
        [
            Step(
                decide=each(lambda t: {"type": "answer", "value": t["description"][-1]}),
                resume=lambda interrupts: {i.id: i.value[-1] for i in interrupts},
            )
        ],
    ),
    "an interrupt inside a subgraph": ("nested", {"text": " hello "}, [answer("fine")]),
    "Agent Inbox (HumanInterrupt)": (
        "support",
        REFUND,
        [
            Step(
                decide=each(lambda task: {"type": "accept"}),
                resume=lambda interrupts: {interrupts[0].id: [{"type": "accept", "args": None}]},
            )
        ],
    ),
    "create_agent with HumanInTheLoopMiddleware, batched": (
        "tool_agent",
        TRAVEL,
        [
            Step(
                decide=each(
                    lambda t: (
                        {"type": "approve"}
                        if t["tool_name"] == "book_flight"
                        else {"type": "edit", **NOK}
                    )
                ),
                resume=lambda interrupts: {
                    interrupts[0].id: {
                        "decisions": [
                            {"type": "approve"},
                            {"type": "edit", "edited_action": NOK},
                        ]
                    }
                },
            )
        ],
    ),
    "create_agent with HumanInTheLoopMiddleware, per call": (
        "per_call",
        TRAVEL,
        [
            Step(
                decide=each(
                    lambda t: (
                        {"type": "approve"}
                        if t["tool_name"] == "book_flight"
                        else {"type": "reject", "message": "not on this card"}
                    )
                ),
                resume=lambda interrupts: {
                    i.id: {"type": "approve"}
                    if i.value["name"] == "book_flight"
                    else {"type": "reject", "message": "not on this card"}
                    for i in interrupts
                },
            )
        ],
    ),
    "interrupt() in a loop, validating the answer": (
        "asks_again",
        {},
        [answer("x"), answer(-1), answer(30)],
    ),
    "typed state: Decimal, set, bytes, datetime, UUID, timedelta, dataclass, messages": (
        "rich",
        {},
        [answer("yes")],
    ),
    "pydantic state": ("rich_model", {}, [answer("fine")]),
    "async nodes and an async tool": ("async_tools", {}, [answer("go ahead")]),
}


def comparable(value: Any) -> Any:
    """A value with the Python type of every part. Messages and tool calls
    get random ids from LangGraph and the scripted model; the rest must match."""
    if isinstance(value, BaseMessage):
        return (type(value), comparable(value.model_dump(exclude={"id"})))
    if isinstance(value, dict):
        return (
            type(value),
            {
                CALL_ID.sub("call_<id>", k) if isinstance(k, str) else k: "<id>"
                if k in ("id", "tool_call_id") and isinstance(v, str)
                else comparable(v)
                for k, v in value.items()
            },
        )
    if isinstance(value, list | tuple):
        return (type(value), [comparable(v) for v in value])
    return (type(value), value)


def directly(graph_name: str, given: dict, steps: list[Step]) -> Any:
    graph = get_registry().get(graph_name).compile(InMemorySaver())
    config = {"configurable": {"thread_id": "direct"}}

    async def drive() -> Any:
        await graph.ainvoke(given, config)
        for step in steps:
            if step.edit:
                values, as_node = step.edit
                await graph.aupdate_state(config, values, as_node=as_node)
                await graph.ainvoke(None, config)
                continue
            state = await graph.aget_state(config)
            value = step.resume(list(state.interrupts))
            await graph.ainvoke(None if value is CONTINUE else Command(resume=value), config)
        state = await graph.aget_state(config)
        assert not state.interrupts and not state.next, "LangGraph still waits"
        return state.values

    return asyncio.run(drive())


def through_the_api(graph_name: str, given: dict, steps: list[Step]) -> Any:
    user = get_user_model().objects.create_superuser("patterns", password="pw-patterns-1")
    _, key = ApiToken.issue(user, "patterns")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    started = api.post("/api/runs", {"graph": graph_name, "input": given}, "application/json")
    assert started.status_code == 201, started.content
    thread = started.json()["thread_id"]
    work("patterns")
    for step in steps:
        if step.edit:
            values, as_node = step.edit
            shown = api.get(f"/api/threads/{thread}").json()
            body = {
                "values": values,
                "as_node": as_node,
                "continue_run": True,
                "base_checkpoint": shown["checkpoint_id"],
            }
            edited = api.post(f"/api/threads/{thread}/state", body, "application/json")
            assert edited.status_code == 200, edited.content
        else:
            tasks = [
                t
                for t in api.get("/api/tasks", {"limit": 200}).json()["tasks"]
                if t["thread_id"] == thread
            ]
            decisions = step.decide(tasks)
            # One decision request per interrupt (a turn), as reviewers make them.
            turns: dict[str, list[dict]] = {}
            for task in tasks:
                turns.setdefault(task["interrupt_id"], []).append(task)
            for turn in turns.values():
                decided = api.post(
                    f"/api/tasks/{turn[0]['id']}/decision",
                    {"decisions": {t["id"]: decisions[t["id"]] for t in turn}},
                    "application/json",
                )
                assert decided.status_code == 200, decided.content
        work("patterns")
    assert not ReviewTask.objects.pending().filter(thread_id=thread).exists()
    graph = get_registry().get(graph_name).compile(DjangoCheckpointSaver())
    state = graph.get_state({"configurable": {"thread_id": thread}})
    assert not state.next, "the thread still waits"
    return state.values


@pytest.mark.parametrize("case", list(CASES))
@override_settings(HITL_GRAPHS_CONFIG=PATTERNS)
def test_same_final_state_as_langgraph(case, transactional_db):
    graph_name, given, steps = CASES[case]
    expected = directly(graph_name, given, steps)
    got = through_the_api(graph_name, given, steps)
    assert comparable(got) == comparable(expected)


@override_settings(HITL_GRAPHS_CONFIG=PATTERNS)
def test_the_cases_reach_what_their_names_say(transactional_db):
    """What the comparisons above compare, spelled out for a few cases."""
    assert directly("approval", {}, [answer("approve")])["outcome"].startswith("done")
    assert directly("approval", {}, [answer("reject")])["outcome"] == "called off"
    edited = CASES["edit the state at a breakpoint, as a node"]
    assert directly(*edited)["published"] == "Edited by a person."
    hotel = CASES["review a tool call inside the tool"]
    assert "Grand" in directly(*hotel)["messages"][-1].content
    batched = directly(*CASES["create_agent with HumanInTheLoopMiddleware, batched"])
    assert any("300.00 NOK" in str(m.content) for m in batched["messages"])
