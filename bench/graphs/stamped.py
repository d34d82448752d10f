"""A graph that says when it called interrupt(), for bench/latency.py.

The moment (time.perf_counter(), CLOCK_MONOTONIC on Linux: one clock for
every process on the machine) goes into the question, which the queue row
shows: a client reads it from the very row it receives.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

STAMP_FORMAT = "interrupt() at {:.6f}"


class State(TypedDict, total=False):
    question: str
    answer: str


def think(state: State) -> State:
    # Stands in for the model call before a real interrupt: the request that
    # started the run has been answered by the time the graph stops.
    time.sleep(0.02)
    return {}


def ask(state: State) -> State:
    stamp = STAMP_FORMAT.format(time.perf_counter())
    return {"answer": interrupt({"question": f"{state['question']} {stamp}"})}


_builder = StateGraph(State)
_builder.add_node("think", think)
_builder.add_node("ask", ask)
_builder.add_edge(START, "think")
_builder.add_edge("think", "ask")
_builder.add_edge("ask", END)
graph = _builder.compile()


async def think_async(state: State) -> State:
    # The same stand-in for a model call, awaited as an async client would.
    await asyncio.sleep(0.02)
    return {}


async def ask_async(state: State) -> State:
    return ask(state)


_async_builder = StateGraph(State)
_async_builder.add_node("think", think_async)
_async_builder.add_node("ask", ask_async)
_async_builder.add_edge(START, "think")
_async_builder.add_edge("think", "ask")
_async_builder.add_edge("ask", END)
# Async nodes: the worker drives it on the event loop, with astream.
graph_async = _async_builder.compile()
