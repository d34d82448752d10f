"""Graphs for the runs and streaming tests: a subgraph that writes custom
stream events and fails on demand, and a node that holds its run until the
test opens a gate (a file), so a run is busy for as long as a test needs.
No model, no network."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict  # pydantic reads its schema on Python 3.11


def _append(left: list[str], right: list[str]) -> list[str]:
    return [*left, *right]


class State(TypedDict, total=False):
    topic: str
    steps: Annotated[list[str], _append]


def research(state: State) -> State:
    get_stream_writer()({"progress": f"reading about {state.get('topic', '')}"})
    return {"steps": ["research"]}


def summarise(state: State) -> State:
    return {"steps": ["summarise"]}


_inner = StateGraph(State)
_inner.add_node("research", research)
_inner.add_node("summarise", summarise)
_inner.add_edge(START, "research")
_inner.add_edge("research", "summarise")
_inner.add_edge("summarise", END)


def plan(state: State) -> State:
    if state.get("topic") == "fail":
        raise ValueError("nothing to plan for 'fail'")
    return {"steps": ["plan"]}


_outer = StateGraph(State)
_outer.add_node("plan", plan)
_outer.add_node("study", _inner.compile())
_outer.add_edge(START, "plan")
_outer.add_edge("plan", "study")
_outer.add_edge("study", END)
researcher = _outer.compile()


class Gated(TypedDict, total=False):
    gate: str
    steps: Annotated[list[str], _append]


def wait_at_gate(state: Gated) -> Gated:
    # Bounded: a test that never opens the gate still ends.
    deadline = time.monotonic() + 60
    while not Path(state["gate"]).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"steps": ["through"]}


_gated = StateGraph(Gated)
_gated.add_node("wait_at_gate", wait_at_gate)
_gated.add_edge(START, "wait_at_gate")
_gated.add_edge("wait_at_gate", END)
gated = _gated.compile()


def chatter(state: State) -> State:
    # More events at once than a channel holds (the in-memory layer's 100).
    write = get_stream_writer()
    for count in range(500):
        write({"count": count})
    return {"steps": ["chatter"]}


_chatty = StateGraph(State)
_chatty.add_node("chatter", chatter)
_chatty.add_edge(START, "chatter")
_chatty.add_edge("chatter", END)
chatty = _chatty.compile()


class Relayed(TypedDict, total=False):
    gate: str
    steps: Annotated[list[str], _append]


def opening(state: Relayed) -> Relayed:
    return {"steps": ["opening"]}


def hold(state: Relayed) -> Relayed:
    # Says it is holding: every event of the steps before it has been sent.
    Path(f"{state['gate']}.held").touch()
    return wait_at_gate(state)


def closing(state: Relayed) -> Relayed:
    return {"steps": ["closing"]}


# A step before the gate and one after it: a client that joins (or comes back)
# while the run waits has missed the first and must hear the rest.
_relay = StateGraph(Relayed)
_relay.add_node("opening", opening)
_relay.add_node("wait_at_gate", hold)
_relay.add_node("closing", closing)
_relay.add_edge(START, "opening")
_relay.add_edge("opening", "wait_at_gate")
_relay.add_edge("wait_at_gate", "closing")
_relay.add_edge("closing", END)
relay = _relay.compile()
