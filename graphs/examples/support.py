"""A support agent whose sensitive tool calls wait for a person.

The "model" is a few deterministic rules, so the demo needs no API key and no
network. Look-ups run directly; refunds, account closures and emails stop in
`interrupt()` with an Agent Inbox `HumanInterrupt` payload (a list of one) and
continue with the reviewer's answer: accept, edit, respond or ignore.

Input: {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic reads its schema on Python 3.11

ORDERS = {
    "A-1001": {
        "customer": "C-42",
        "email": "ada@example.com",
        "total": 120.0,
        "status": "delivered",
    },
    "A-1002": {
        "customer": "C-43",
        "email": "bob@example.com",
        "total": 2400.0,
        "status": "shipped",
    },
}


class SupportState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    executed: list[dict[str, Any]]


# -- tools ---------------------------------------------------------------------


def lookup_order(order_id: str) -> dict[str, Any]:
    order = ORDERS.get(order_id)
    return (
        {"order_id": order_id, **order} if order else {"order_id": order_id, "error": "not found"}
    )


def refund(order_id: str, amount: float, reason: str = "") -> str:
    return f"Refunded {amount:.2f} on order {order_id}" + (f" ({reason})" if reason else "")


def close_account(customer_id: str, reason: str) -> str:
    return f"Closed account {customer_id}: {reason}"


def send_email(to: str, subject: str, body: str) -> str:
    return f"Sent email to {to}: {subject}"


SAFE_TOOLS = {"lookup_order": lookup_order}
SENSITIVE_TOOLS = {"refund": refund, "close_account": close_account, "send_email": send_email}
DESCRIPTIONS = {
    "refund": "Money leaves the company: check the amount against the order.",
    "close_account": "Closing an account cannot be undone.",
    "send_email": "This email goes to the customer as written.",
}


# -- the scripted model ----------------------------------------------------------


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def _request_text(messages: list[AnyMessage]) -> str:
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    return str(humans[-1].content) if humans else ""


def agent(state: SupportState) -> SupportState:
    messages = state.get("messages", [])
    text = _request_text(messages)
    order_match = re.search(r"\b([A-Z]-\d{4})\b", text)
    order_id = order_match.group(1) if order_match else "A-1001"
    tool_results = [m for m in messages if isinstance(m, ToolMessage)]
    called = {m.name for m in tool_results}

    if "lookup_order" not in called:
        reply = AIMessage(
            content="Let me look up the order first.",
            tool_calls=[_call("lookup_order", {"order_id": order_id})],
        )
        return {"messages": [reply]}

    if not called & set(SENSITIVE_TOOLS):
        order = ORDERS.get(order_id, {})
        lowered = text.lower()
        if "refund" in lowered:
            amount_match = re.search(r"\$?(\d+(?:\.\d+)?)", text.replace(order_id, ""))
            amount = float(amount_match.group(1)) if amount_match else order.get("total", 0.0)
            call = _call(
                "refund", {"order_id": order_id, "amount": amount, "reason": "customer request"}
            )
        elif "close" in lowered:
            call = _call(
                "close_account",
                {
                    "customer_id": order.get("customer", "unknown"),
                    "reason": "customer asked to close",
                },
            )
        else:
            call = _call(
                "send_email",
                {
                    "to": order.get("email", "customer@example.com"),
                    "subject": f"About your order {order_id}",
                    "body": f"Your order {order_id} is {order.get('status', 'being checked')}.",
                },
            )
        return {
            "messages": [AIMessage(content="This needs a person's approval.", tool_calls=[call])]
        }

    last = tool_results[-1]
    return {"messages": [AIMessage(content=f"Done. {last.content}")]}


def tools(state: SupportState) -> SupportState:
    last = state["messages"][-1]
    results: list[ToolMessage] = []
    executed = list(state.get("executed", []))
    for call in last.tool_calls:
        name, args = call["name"], call["args"]
        if name in SAFE_TOOLS:
            output = SAFE_TOOLS[name](**args)
            results.append(ToolMessage(content=str(output), name=name, tool_call_id=call["id"]))
            continue
        request = {
            "action_request": {"action": name, "args": args},
            "config": {
                "allow_accept": True,
                "allow_edit": True,
                "allow_respond": True,
                "allow_ignore": name != "refund",
            },
            "description": DESCRIPTIONS.get(name),
        }
        response = interrupt([request])[0]
        kind = response.get("type")
        if kind == "edit":
            edited = response["args"]
            name, args = edited.get("action", name), edited.get("args", args)
        if kind in ("accept", "edit"):
            tool = SENSITIVE_TOOLS.get(name) or SAFE_TOOLS.get(name)
            if tool is None:
                content = f"Reviewer chose unknown tool {name!r}; nothing was run."
            else:
                content = str(tool(**args))
                executed.append({"tool": name, "args": args, "result": content})
        elif kind == "response":
            content = f"A reviewer declined and said: {response.get('args')}"
        else:
            content = "A reviewer chose to skip this action."
        results.append(ToolMessage(content=content, name=call["name"], tool_call_id=call["id"]))
    return {"messages": results, "executed": executed}


def route(state: SupportState) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


builder = StateGraph(SupportState)
builder.add_node("agent", agent)
builder.add_node("tools", tools)
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", route, ["tools", END])
builder.add_edge("tools", "agent")
graph = builder.compile()
