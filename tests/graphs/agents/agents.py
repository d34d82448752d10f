"""Graphs for the worker tests, beside the demo graphs."""

import asyncio
import operator
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic reads its schema on Python 3.11

from graphs.examples.support import SupportState
from graphs.examples.support import tools as support_tools
from graphs.examples.tool_agent import ScriptedChatModel, book_flight, charge_card, search_flights


class Answers(TypedDict, total=False):
    answers: Annotated[list[str], operator.add]


def _ask(name: str):
    return lambda state: {"answers": [f"{name}={interrupt(f'question {name}')}"]}


_parallel = StateGraph(Answers)
_parallel.add_node("ask_a", _ask("a"))
_parallel.add_node("ask_b", _ask("b"))
_parallel.add_edge(START, "ask_a")
_parallel.add_edge(START, "ask_b")
_parallel.add_edge("ask_a", END)
_parallel.add_edge("ask_b", END)
parallel = _parallel.compile()

per_call = create_agent(
    model=ScriptedChatModel(),
    tools=[search_flights, book_flight, charge_card],
    middleware=[
        HumanInTheLoopMiddleware(
            interrupt_on={
                "book_flight": True,
                "charge_card": {"allowed_decisions": ["approve", "reject"]},
            },
            interrupt_mode="per_call",
        )
    ],
)


class Steps(TypedDict, total=False):
    done: Annotated[list[int], operator.add]
    delay: float
    steps: int


def _boom(state: Answers) -> Answers:
    raise ValueError("the tool is down")


# Whether the flaky graph's tool is down; tests flip it.
TOOL = {"down": True}


def _call_tool(state: Answers) -> Answers:
    if TOOL["down"]:
        raise ValueError("the tool is down")
    return {"answers": ["tool answered"]}


def _approve_then_call(state: Answers) -> Answers:
    answer = interrupt("call the tool?")
    return {"answers": [f"{answer}: {_call_tool(state)['answers'][0]}"]}


_flaky_after_approval = StateGraph(Answers)
_flaky_after_approval.add_node("act", _approve_then_call)
_flaky_after_approval.add_edge(START, "act")
_flaky_after_approval.add_edge("act", END)
flaky_after_approval = _flaky_after_approval.compile()

_flaky = StateGraph(Answers)
_flaky.add_node("prepare", lambda state: {"answers": ["prepared"]})
_flaky.add_node("call_tool", _call_tool)
_flaky.add_edge(START, "prepare")
_flaky.add_edge("prepare", "call_tool")
_flaky.add_edge("call_tool", END)
flaky = _flaky.compile()

_broken = StateGraph(Answers)
_broken.add_node("boom", _boom)
_broken.add_edge(START, "boom")
_broken.add_edge("boom", END)
broken = _broken.compile()


def _step(state: Steps) -> Steps:
    time.sleep(state.get("delay", 0.2))
    return {"done": [len(state.get("done", []))]}


def _confirm(state: Steps) -> Steps:
    interrupt(f"{len(state['done'])} steps done; confirm?")
    return {}


_slow = StateGraph(Steps)
_slow.add_node("step", _step)
_slow.add_node("confirm", _confirm)
_slow.add_edge(START, "step")
_slow.add_conditional_edges(
    "step", lambda s: "confirm" if len(s["done"]) >= s.get("steps", 10) else "step"
)
_slow.add_edge("confirm", END)
slow = _slow.compile()


class Echo(TypedDict, total=False):
    text: str
    reply: str


_echo = StateGraph(Echo)
_echo.add_node("ask", lambda state: {"reply": interrupt({"question": state["text"]})})
_echo.add_edge(START, "ask")
_echo.add_edge("ask", END)
echo = _echo.compile()


class Nested(TypedDict, total=False):
    text: str
    checked: str


def _check(state: Nested) -> Nested:
    return {"checked": f"{state['text']}: {interrupt('Is this text fine?')}"}


_inner = StateGraph(Nested)
_inner.add_node("check", _check)
_inner.add_edge(START, "check")
_inner.add_edge("check", END)

_nested = StateGraph(Nested)
_nested.add_node("prepare", lambda state: {"text": state["text"].strip()})
_nested.add_node("review", _inner.compile())
_nested.add_edge(START, "prepare")
_nested.add_edge("prepare", "review")
_nested.add_edge("review", END)
nested = _nested.compile()


class Seen(TypedDict, total=False):
    saved: Annotated[list[int], operator.add]


def _witness(state: Seen, config) -> Seen:
    """How many checkpoints of this thread were saved when this step began."""
    from graphs.models import Checkpoint

    thread_id = config["configurable"]["thread_id"]
    return {"saved": [Checkpoint.objects.filter(thread_id=thread_id, checkpoint_ns="").count()]}


_witnessed = StateGraph(Seen)
_witnessed.add_node("witness", _witness)
_witnessed.add_edge(START, "witness")
_witnessed.add_conditional_edges("witness", lambda s: END if len(s["saved"]) >= 8 else "witness")
witnessed = _witnessed.compile()


class Age(TypedDict, total=False):
    age: int
    attempts: int


def _ask_age(state: Age) -> Age:
    """LangGraph's "validate human input" pattern: ask again in a loop."""
    question, attempts = "How old are you?", 0
    while True:
        attempts += 1
        answer = interrupt(question)
        if answer == "boom":
            raise ValueError("the age checker crashed on 'boom'")
        if isinstance(answer, int) and answer > 0:
            return {"age": answer, "attempts": attempts}
        question = f"{answer!r} is not a valid age. How old are you?"


_asks_again = StateGraph(Age)
_asks_again.add_node("ask", _ask_age)
_asks_again.add_edge(START, "ask")
_asks_again.add_edge("ask", END)
asks_again = _asks_again.compile()


@dataclass
class Point:
    x: int
    y: int


class Rich(TypedDict, total=False):
    """Values JSON has no word for: each must come back as itself."""

    price: Decimal
    tags: set[str]
    blob: bytes
    when: datetime
    ident: UUID
    wait: timedelta
    point: Point
    messages: Annotated[list[AnyMessage], add_messages]
    answer: str


def _seed(state: Rich) -> Rich:
    return {
        "price": Decimal("12.50"),
        "tags": {"urgent", "vip"},
        "blob": b"\x00\x01binary",
        "when": datetime(2026, 11, 29, 8, 30, tzinfo=UTC),
        "ident": UUID("12345678-1234-5678-1234-567812345678"),
        "wait": timedelta(minutes=90),
        "point": Point(3, 4),
        "messages": [
            AIMessage("Charging", tool_calls=[{"name": "charge", "args": {"n": 1}, "id": "c1"}])
        ],
    }


def _ask_rich(state: Rich) -> Rich:
    return {
        "answer": interrupt(
            {"question": "charge this?", "price": state["price"], "tags": state["tags"]}
        )
    }


def _in_line(schema, *nodes, **compile_kwargs):
    """A graph that runs its (name, node) pairs one after the other."""
    graph = StateGraph(schema)
    before = START
    for name, node in nodes:
        graph.add_node(name, node)
        graph.add_edge(before, name)
        before = name
    graph.add_edge(before, END)
    return graph.compile(**compile_kwargs)


rich = _in_line(Rich, ("seed", _seed), ("ask", _ask_rich))


class RichModel(BaseModel):
    price: Decimal = Decimal("0")
    tags: set[str] = set()
    when: datetime | None = None
    point: Point | None = None
    answer: str = ""


def _seed_model(state: RichModel) -> dict:
    return {
        "price": Decimal("7.25"),
        "tags": {"a"},
        "when": datetime(2026, 1, 2, tzinfo=UTC),
        "point": Point(1, 2),
    }


def _ask_model(state: RichModel) -> dict:
    return {"answer": interrupt({"question": "fine?", "price": state.price})}


rich_model = _in_line(RichModel, ("seed", _seed_model), ("ask", _ask_model))


class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    verdict: str


@tool
async def fetch_weather(city: str) -> str:
    """The weather in a city (an async tool, as MCP adapters make them)."""
    await asyncio.sleep(0)
    return f"sunny in {city}"


async def _plan(state: Chat) -> Chat:
    await asyncio.sleep(0)
    call = {"name": "fetch_weather", "args": {"city": "Porto"}, "id": "w1", "type": "tool_call"}
    return {"messages": [AIMessage("Checking the weather.", tool_calls=[call])]}


async def _review(state: Chat) -> Chat:
    await asyncio.sleep(0)
    verdict = interrupt(
        {"question": "fetch the weather?", "call": state["messages"][-1].tool_calls[0]}
    )
    return {"verdict": verdict}


def _asks_before_tools(plan, review, tool):
    """plan -> review (a question) -> a tools node -> end."""
    return _in_line(Chat, ("plan", plan), ("review", review), ("tools", ToolNode([tool])))


async_tools = _asks_before_tools(_plan, _review, fetch_weather)


async def _step_async(state: Steps) -> Steps:
    await asyncio.sleep(state.get("delay", 0.2))
    return {"done": [len(state.get("done", []))]}


_slow_async = StateGraph(Steps)
_slow_async.add_node("step", _step_async)
_slow_async.add_node("confirm", _confirm)
_slow_async.add_edge(START, "step")
_slow_async.add_conditional_edges(
    "step", lambda s: "confirm" if len(s["done"]) >= s.get("steps", 10) else "step"
)
_slow_async.add_edge("confirm", END)
slow_async = _slow_async.compile()


@tool
def refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    return f"Refunded {amount:.2f} on order {order_id}"


def _refunder(state: Chat) -> Chat:
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(f"Done. {last.content}")]}
    amount = float(str(last.content).rpartition("$")[2])
    call = {"name": "refund", "args": {"order_id": "A-1", "amount": amount}, "id": "r1"}
    return {"messages": [AIMessage("Refunding.", tool_calls=[{**call, "type": "tool_call"}])]}


# LangGraph's classic review: a static breakpoint before the tools node.
_classic = StateGraph(Chat)
_classic.add_node("agent", _refunder)
_classic.add_node("tools", ToolNode([refund]))
_classic.add_edge(START, "agent")
_classic.add_conditional_edges("agent", tools_condition)
_classic.add_edge("tools", "agent")
classic = _classic.compile(interrupt_before=["tools"])


# The classic agent as a subgraph: it stops at its own breakpoint.
_outer = StateGraph(Chat)
_outer.add_node("worker", classic)
_outer.add_edge(START, "worker")
_outer.add_edge("worker", END)
subclassic = _outer.compile()


class Planned(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    plan: list[dict]


def _plan_refund(state: Planned) -> Planned:
    amount = float(str(state["messages"][-1].content).rpartition("$")[2])
    call = {"name": "refund", "args": {"order_id": "A-1", "amount": amount}, "id": "p1"}
    return {"plan": [{**call, "type": "tool_call"}]}


# A planner hands each call to the tools node with a Send: the calls are in
# no message, only in the sends waiting at the breakpoint.
_sendplan = StateGraph(Planned)
_sendplan.add_node("planner", _plan_refund)
_sendplan.add_node("tools", ToolNode([refund]))
_sendplan.add_edge(START, "planner")
_sendplan.add_conditional_edges(
    "planner", lambda state: [Send("tools", [call]) for call in state["plan"]], ["tools"]
)
_sendplan.add_edge("tools", END)
sendplan = _sendplan.compile(interrupt_before=["tools"])


# Subagents in parallel: each request is sent to the classic agent, and each
# stops at its own breakpoint in the same step.
def _fan_out(state: Chat) -> list[Send]:
    asked = str(state["messages"][-1].content)
    return [Send("worker", {"messages": [HumanMessage(part.strip())]}) for part in asked.split(";")]


_fanout = StateGraph(Chat)
_fanout.add_node("dispatch", lambda state: {})
_fanout.add_node("worker", classic)
_fanout.add_edge(START, "dispatch")
_fanout.add_conditional_edges("dispatch", _fan_out, ["worker"])
_fanout.add_edge("worker", END)
fanout = _fanout.compile()


# A harmless interrupt() beside a subagent stopped at its breakpoint.
def _survey(state: Chat) -> Chat:
    answer = interrupt({"question": "Send the customer a satisfaction survey afterwards?"})
    return {"messages": [AIMessage(f"Survey: {answer}")]}


_mixed = StateGraph(Chat)
_mixed.add_node("survey", _survey)
_mixed.add_node("worker", classic)
_mixed.add_edge(START, "survey")
_mixed.add_edge(START, "worker")
_mixed.add_edge("survey", END)
_mixed.add_edge("worker", END)
mixed = _mixed.compile()


# The classic agent built by a factory from each run's config: "fast" builds
# it without its breakpoint, as a deployer's trusted batch mode might.
def classic_factory(config: dict) -> object:
    fast = ((config or {}).get("configurable") or {}).get("fast")
    return _classic.compile() if fast else _classic.compile(interrupt_before=["tools"])


# Two sensitive calls in one turn, asked one after the other by one node
# (the support example's tools node): the email's answer must never answer
# the refund's question.
def _email_then_refund(state: SupportState) -> SupportState:
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(f"Done. {last.content}")]}
    amount = float(str(last.content).rpartition("$")[2])
    email = {"to": "ada@example.com", "subject": "Your refund", "body": "It is on its way."}
    calls = [
        {"name": "send_email", "args": email, "id": "e1", "type": "tool_call"},
        {
            "name": "refund",
            "args": {"order_id": "A-1002", "amount": amount},
            "id": "r1",
            "type": "tool_call",
        },
    ]
    return {"messages": [AIMessage("Emailing, then refunding.", tool_calls=calls)]}


_two_asks = StateGraph(SupportState)
_two_asks.add_node("agent", _email_then_refund)
_two_asks.add_node("tools", support_tools)
_two_asks.add_edge(START, "agent")
_two_asks.add_conditional_edges("agent", tools_condition)
_two_asks.add_edge("tools", "agent")
two_asks = _two_asks.compile()


# A plan kept in a state key of its own: a question confirms it, then a
# `Send` hands it to a tools node; or a static breakpoint stops before the
# node that carries it out.
class Planned(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    plan: dict
    ok: str


def _plan_refund(state: Planned) -> Planned:
    amount = float(str(state["messages"][-1].content).rpartition("$")[2])
    args = {"order_id": "A-1002", "amount": amount}
    return {"plan": {"name": "refund", "args": args, "id": "p1", "type": "tool_call"}}


def _confirm_plan(state: Planned) -> Command:
    if interrupt("Go ahead with the planned action?") == "yes":
        return Command(update={"ok": "yes"}, goto=Send("tools", [state["plan"]]))
    return Command(update={"ok": "no"}, goto=END)


_confirms_plan = StateGraph(Planned)
_confirms_plan.add_node("planner", _plan_refund)
_confirms_plan.add_node("confirm", _confirm_plan, destinations=("tools", END))
_confirms_plan.add_node("tools", ToolNode([refund]))
_confirms_plan.add_edge(START, "planner")
_confirms_plan.add_edge("planner", "confirm")
_confirms_plan.add_edge("tools", END)
confirms_plan = _confirms_plan.compile()


def _carry_out_plan(state: Planned) -> Planned:
    return {"messages": [AIMessage(refund.invoke(state["plan"]["args"]))]}


stops_before_plan = _in_line(
    Planned,
    ("planner", _plan_refund),
    ("carry_out", _carry_out_plan),
    interrupt_before=["carry_out"],
)


# LangGraph's docs' way to review a call: a question node before the tools
# node, the call shown in the question.
@tool
def look_up_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _plan_lookup(state: Chat) -> Chat:
    call = {"name": "look_up_weather", "args": {"city": "Porto"}, "id": "w1", "type": "tool_call"}
    return {"messages": [AIMessage("Checking the weather.", tool_calls=[call])]}


def _ask_first(state: Chat) -> Chat:
    question = {"question": "look up the weather?", "call": state["messages"][-1].tool_calls[0]}
    return {"verdict": interrupt(question)}


asks_before_tools = _asks_before_tools(_plan_lookup, _ask_first, look_up_weather)
