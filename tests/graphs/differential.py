"""Run a graph twice: directly with LangGraph (an in-memory saver,
`ainvoke`, then `Command(resume=...)` with the value a reviewer's decision
should produce, `update_state` for a state edit) and through this project
(started through the API, run by the worker, each decision and edit made
through the API); compare what they end with, in value and Python type."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.registry import get_registry
from graphs.worker import work
from reviews.models import ApiToken, ReviewTask

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


def api_client(name: str) -> Client:
    """A client of /api/ with a new superuser's token."""
    user = get_user_model().objects.create_superuser(name, password=f"pw-{name}-123")
    _, key = ApiToken.issue(user, name)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@dataclass
class Reviewed:
    values: Any
    thread: str
    asked: list[str]  # each turn's questions, as the API showed them


def through_the_api(graph_name: str, given: dict, steps: list[Step]) -> Reviewed:
    api = api_client("reviewer")
    asked: list[str] = []
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
            asked += [t["description"] for t in tasks]
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
    return Reviewed(state.values, thread, asked)
