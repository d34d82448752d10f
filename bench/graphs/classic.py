"""LangGraph's classic review, for bench/worker.py: a model stand-in that
proposes three calls in one turn, and a static breakpoint before the tools
node. At that stop the worker reads the calls the tools node would run and
asks each under its own rule, the work an interrupt() stop does not have."""

from __future__ import annotations

from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


@tool
def search_flights(destination: str, passengers: int) -> str:
    """Find flights."""
    return f"FL-204 to {destination} for {passengers}"


@tool
def book_flight(flight: str, passengers: int) -> str:
    """Book a flight."""
    return f"Booked {flight}"


@tool
def charge_card(amount: float, currency: str) -> str:
    """Charge the customer's card."""
    return f"Charged {amount:.2f} {currency}"


def model(state: Chat) -> Chat:
    if isinstance(state["messages"][-1], ToolMessage):
        return {"messages": [AIMessage("All done.")]}
    calls = [
        ("search_flights", {"destination": "Oslo", "passengers": 2}),
        ("book_flight", {"flight": "FL-204", "passengers": 2}),
        ("charge_card", {"amount": 360.0, "currency": "EUR"}),
    ]
    return {
        "messages": [
            AIMessage(
                "Searching, booking and paying in one go.",
                tool_calls=[
                    {"name": name, "args": args, "id": f"c{i}", "type": "tool_call"}
                    for i, (name, args) in enumerate(calls)
                ],
            )
        ]
    }


_builder = StateGraph(Chat)
_builder.add_node("model", model)
_builder.add_node("tools", ToolNode([search_flights, book_flight, charge_card]))
_builder.add_edge(START, "model")
_builder.add_conditional_edges("model", tools_condition)
_builder.add_edge("tools", "model")
graph = _builder.compile(interrupt_before=["tools"])
