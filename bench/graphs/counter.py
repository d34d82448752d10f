"""A graph that counts to `target`, one checkpoint per step, for bench/timeline.py."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    count: int
    target: int
    notes: list[str]


def step(state: State) -> State:
    count = state.get("count", 0) + 1
    return {"count": count, "notes": [f"step {count}"][-1:]}


def more(state: State) -> str:
    return "step" if state.get("count", 0) < state.get("target", 1) else END


_builder = StateGraph(State)
_builder.add_node("step", step)
_builder.add_edge(START, "step")
_builder.add_conditional_edges("step", more, ["step", END])
graph = _builder.compile()
