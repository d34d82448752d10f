"""Graphs that carry their author's configuration."""

import operator
from dataclasses import dataclass
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt


class Loop(TypedDict, total=False):
    rounds: int
    done: Annotated[list[str], operator.add]
    answer: str


def greet(state: Loop, config: RunnableConfig) -> Loop:
    greeting = config["configurable"].get("greeting", "none")
    return {"done": [f"{greeting} {len(state.get('done', []))}"]}


def confirm(state: Loop) -> Loop:
    return {"answer": interrupt(f"{len(state['done'])} rounds; fine?")}


_loop = StateGraph(Loop)
_loop.add_node("greet", greet)
_loop.add_node("confirm", confirm)
_loop.add_edge(START, "greet")
_loop.add_conditional_edges(
    "greet", lambda s: "confirm" if len(s["done"]) >= s.get("rounds", 1) else "greet"
)
_loop.add_edge("confirm", END)
# The author's own settings: a run that loops past 6 steps fails, as it
# would directly with LangGraph.
graph = _loop.compile().with_config(
    {"recursion_limit": 6, "configurable": {"greeting": "compiled-in"}}
)


@dataclass
class Who:
    user_id: str
    language: str = "en"


class Note(TypedDict, total=False):
    note: str
    answer: str


def write(state: Note, runtime: Runtime[Who]) -> Note:
    return {"note": f"for {runtime.context.user_id} in {runtime.context.language}"}


def check(state: Note) -> Note:
    return {"answer": interrupt(state["note"])}


_contextual = StateGraph(Note, context_schema=Who)
_contextual.add_node("write", write)
_contextual.add_node("check", check)
_contextual.add_edge(START, "write")
_contextual.add_edge("write", "check")
_contextual.add_edge("check", END)
contextual = _contextual.compile()
