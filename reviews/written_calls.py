"""The tool calls a state write would let a graph run without asking.

A state write (an edit, a fork, a command's `update` or `goto`) can put a
tool call in an AI message, or move the graph past the node that would have
asked about the calls already there. Either way the call runs as the
writer's choice, so reviews.access judges these calls as if the writer had
approved them. Messages come as LangChain objects (a state read back) or in
any dict form LangGraph's `add_messages` accepts (a request's JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_messages


def written(value: Any) -> list[dict[str, Any]]:
    """Every tool call in an AI message anywhere in a written value."""
    return [call for message in _messages(value) for call in _calls(message)]


def unanswered(values: Any) -> list[dict[str, Any]]:
    """The calls of the last AI message in each of the state's message lists
    that no tool message answers yet: what a tools node would run next."""
    found = []
    for channel in values.values() if isinstance(values, dict) else ():
        messages = [m for m in map(_message, channel) if m] if isinstance(channel, list) else []
        ai = [i for i, m in enumerate(messages) if isinstance(m, AIMessage)]
        last = ai[-1] if ai else None
        if last is None:
            continue
        answered = {m.tool_call_id for m in messages[last + 1 :] if isinstance(m, ToolMessage)}
        found += [c for c in _calls(messages[last]) if c.get("id") not in answered]
    return found


def _messages(value: Any) -> Iterator[BaseMessage]:
    message = _message(value)
    if message is not None:
        yield message
    elif isinstance(value, dict):
        for item in value.values():
            yield from _messages(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _messages(item)
    elif hasattr(value, "model_dump") or hasattr(value, "__dataclass_fields__"):
        yield from _messages(vars(value))


def _message(value: Any) -> BaseMessage | None:
    if isinstance(value, BaseMessage):
        return value
    if not isinstance(value, dict) or not (
        {"tool_calls", "function_call"} & value.keys()
        or ({"type", "role"} & value.keys() and "content" in value)
    ):
        return None
    try:
        (message,) = convert_to_messages([value])
    except Exception:  # not a message LangChain reads; no tools node could run it either
        return None
    return message


def _calls(message: BaseMessage) -> list[dict[str, Any]]:
    if not isinstance(message, AIMessage):
        return []
    return [
        {"name": c.get("name") or "", "args": c.get("args") or {}, "id": c.get("id")}
        for c in message.tool_calls
    ]
