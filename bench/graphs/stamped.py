"""A graph that notes when it calls interrupt(), for bench/latency.py."""

from __future__ import annotations

import time
from typing import TypedDict

from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

# thread id -> time.perf_counter() just before interrupt(); the benchmark's
# worker runs in the benchmark's process, so the clocks agree.
STAMPS: dict[str, float] = {}


class State(TypedDict, total=False):
    question: str
    answer: str


def ask(state: State) -> State:
    STAMPS[get_config()["configurable"]["thread_id"]] = time.perf_counter()
    return {"answer": interrupt({"question": state["question"]})}


_builder = StateGraph(State)
_builder.add_node("ask", ask)
_builder.add_edge(START, "ask")
_builder.add_edge("ask", END)
graph = _builder.compile()
