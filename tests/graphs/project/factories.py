"""Graphs made by functions, in each form LangGraph's server accepts."""

from contextlib import asynccontextmanager
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class Made(TypedDict, total=False):
    maker: str
    answer: str


def _graph(maker: str):
    def ask(state: Made) -> Made:
        return {"maker": maker, "answer": interrupt(f"made by {maker}; fine?")}

    builder = StateGraph(Made)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder


def make():
    return _graph("a function").compile()


async def make_async():
    return _graph("an async function")


def make_with_config(config: RunnableConfig):
    return _graph(f"a function for {config['configurable'].get('team', 'nobody')}").compile()


@asynccontextmanager
async def make_in_context():
    yield _graph("an async context manager").compile()
