"""The human-in-the-loop patterns of LangGraph's documentation not covered by
the demo graphs, written as the docs write them."""

from __future__ import annotations

from typing import Annotated, Literal

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class Transfer(TypedDict, total=False):
    action: str
    outcome: str


def propose(state: Transfer) -> Transfer:
    return {"action": "transfer 50 EUR to ACME"}


def human_approval(state: Transfer) -> Command[Literal["carry_out", "call_off"]]:
    """Approve or reject: the answer picks the next node (Command(goto=...))."""
    decision = interrupt({"question": "Approve this action?", "action": state["action"]})
    return Command(goto="carry_out" if decision == "approve" else "call_off")


def carry_out(state: Transfer) -> Transfer:
    return {"outcome": f"done: {state['action']}"}


def call_off(state: Transfer) -> Transfer:
    return {"outcome": "called off"}


_approval = StateGraph(Transfer)
_approval.add_node("propose", propose)
_approval.add_node("human_approval", human_approval)
_approval.add_node("carry_out", carry_out)
_approval.add_node("call_off", call_off)
_approval.add_edge(START, "propose")
_approval.add_edge("propose", "human_approval")
_approval.add_edge("carry_out", END)
_approval.add_edge("call_off", END)
approval = _approval.compile()


@tool
def book_hotel(hotel_name: str) -> str:
    """Book a hotel; a person reviews the call from inside the tool."""
    response = interrupt(
        f"Trying to call `book_hotel` with args {{'hotel_name': {hotel_name!r}}}. "
        "Please approve or suggest edits."
    )
    if response["type"] == "accept":
        pass
    elif response["type"] == "edit":
        hotel_name = response["args"]["hotel_name"]
    else:
        raise ValueError(f"Unknown response type: {response['type']}")
    return f"Successfully booked a stay at {hotel_name}."


class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]


def ask_for_hotel(state: Chat) -> Chat:
    call = {"name": "book_hotel", "args": {"hotel_name": "McKittrick"}, "id": "h1"}
    return {"messages": [AIMessage("Booking.", tool_calls=[{**call, "type": "tool_call"}])]}


_tool_with_interrupt = StateGraph(Chat)
_tool_with_interrupt.add_node("agent", ask_for_hotel)
_tool_with_interrupt.add_node("tools", ToolNode([book_hotel]))
_tool_with_interrupt.add_edge(START, "agent")
_tool_with_interrupt.add_edge("agent", "tools")
_tool_with_interrupt.add_edge("tools", END)
tool_with_interrupt = _tool_with_interrupt.compile()


class Steps(TypedDict, total=False):
    log: Annotated[list[str], lambda a, b: a + b]


_paused_after = StateGraph(Steps)
_paused_after.add_node("step_one", lambda state: {"log": ["one"]})
_paused_after.add_node("step_two", lambda state: {"log": ["two"]})
_paused_after.add_edge(START, "step_one")
_paused_after.add_edge("step_one", "step_two")
_paused_after.add_edge("step_two", END)
# A static breakpoint after a node, as the docs set one at compile time.
paused_after = _paused_after.compile(interrupt_after=["step_one"])
