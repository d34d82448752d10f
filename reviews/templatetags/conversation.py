"""State read at a glance: message lists as a conversation (who said what,
the tool calls an AI message makes, the results tools gave back), every other
value as JSON, and LangGraph's internal names in plain words."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from graphs.interrupts import json_safe
from graphs.written_calls import EDITED_CALLS_KEY

register = template.Library()

ROLES = {
    "human": "Person",
    "ai": "AI",
    "tool": "Tool result",
    "system": "System",
    "function": "Function result",
    "remove": "Removed",
}
# LangGraph's names for the edges of a graph and its bookkeeping channels.
NODE_WORDS = {
    "__start__": "the input",
    "__end__": "the end",
    "__interrupt__": "an interrupt",
    "__input__": "the input",
}
# The text langchain's HumanInTheLoopMiddleware appends to a description: the
# call again, its arguments as a Python repr. The page shows the call itself.
_CALL_SUFFIX = re.compile(r"\n*Tool: [^\n]*\nArgs: .*\Z", re.DOTALL)


def is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict) and isinstance(m.get("type"), str) and "content" in m for m in value
        )
    )


def _text(content: Any) -> tuple[str, list[Any]]:
    """A message's text, and the content blocks that are not text (images,
    tool-use blocks) to show as JSON."""
    if isinstance(content, str):
        return content, []
    if isinstance(content, list):
        texts, other = [], []
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            else:
                other.append(block)
        return "\n".join(texts), other
    return "", [content] if content is not None else []


def _structured(text: str) -> Any:
    """A tool's result that is a dict or list written out (as JSON, or as the
    Python repr a tool node makes of a dict), or None for plain text."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{" or len(stripped) > 100_000:
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        value = ast.literal_eval(stripped)  # literals only: never runs code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return json_safe(value) if isinstance(value, dict | list) else None


def message_view(message: dict[str, Any]) -> dict[str, Any]:
    kind = message.get("type", "")
    text, blocks = _text(message.get("content"))
    if kind == "tool" and (value := _structured(text)) is not None:
        text, blocks = "", [value, *blocks]
    return {
        "kind": kind if kind in ROLES else "other",
        "role": ROLES.get(kind, kind or "Message"),
        "name": message.get("name") or "",
        "text": text,
        "blocks": blocks,
        "tool_calls": [
            {"name": c.get("name", ""), "args": c.get("args"), "id": c.get("id") or ""}
            for c in message.get("tool_calls") or []
            if isinstance(c, dict)
        ],
        "invalid_calls": message.get("invalid_tool_calls") or [],
        "tool_call_id": message.get("tool_call_id") or "",
        "status": message.get("status") or "",
        "raw": message,
    }


@register.filter
def state_parts(values: Any) -> list[dict[str, Any]]:
    """A state's keys in order, each a conversation or a JSON value."""
    values = json_safe(values)
    if not isinstance(values, dict):
        return [{"key": "", "messages": None, "value": values}]
    edits = values.get(EDITED_CALLS_KEY)
    parts = []
    for key, value in values.items():
        messages = [message_view(m) for m in value] if is_messages(value) else None
        if messages and isinstance(edits, dict):
            # A call HumanInTheLoopMiddleware runs as a reviewer edited it.
            for call in (c for m in messages for c in m["tool_calls"]):
                if isinstance(edits.get(call["id"]), dict):
                    call["edited"] = edits[call["id"]]
        parts.append({"key": key, "messages": messages, "value": value})
    return parts


@register.filter
def messages_of(value: Any) -> list[dict[str, Any]]:
    """One message or a list of them, as the conversation shows them."""
    value = json_safe(value)
    if isinstance(value, dict):
        value = [value]
    return [message_view(m) for m in value] if is_messages(value) else []


@register.filter
def node_words(name: Any) -> str:
    """`__start__` reads "the input"; a node's own name stays as it is."""
    return NODE_WORDS.get(str(name), str(name))


@register.filter
def breaks_at_dots(text: Any) -> str:
    """A dotted name (`HumanInTheLoopMiddleware.after_model`) that may wrap
    after its dots on a narrow column, never inside a word."""
    return mark_safe(escape(str(text)).replace(".", ".<wbr>"))


@register.filter
def step_words(step: Any) -> str:
    """LangGraph numbers the input checkpoint -1 and the first step 0."""
    return "input" if step in (-1, "-1") else f"step {step}"


@register.filter
def source_words(source: Any) -> str:
    return {
        "input": "the input arrived",
        "loop": "a graph step",
        "update": "a state edit",
        # LangGraph copies the point a replay or fork starts from: the copy
        # is where the new branch begins.
        "fork": "a new branch",
    }.get(str(source), str(source))


@register.filter
def short_id(checkpoint_id: Any) -> str:
    """The last eight characters of a checkpoint id: LangGraph's ids share
    their leading time bits, so the tail is what tells points apart."""
    return str(checkpoint_id or "")[-8:]


@register.filter
def call_description(description: Any, tool_name: str = "") -> str:
    """A description without the repeated call langchain's middleware appends."""
    return _CALL_SUFFIX.sub("", str(description or "")).strip()
