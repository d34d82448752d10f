"""The tool calls a change to a thread would let its graph run without asking.

A state write (an edit, a fork, a command's `update` or `goto`, new input)
can put a tool call in the state, or move the graph past the node that would
have asked about the calls already there: a tools node runs every call of
the last AI message, answered or not. Either way the call runs as the
writer's choice, so reviews.access judges these calls as if the writer had
approved them.

A request's values are read by shape, not by message format: anything that
holds a tool name and its arguments is a call, whether LangChain's
(`{"name", "args"}`, also inside `lc` constructors and `Send` inputs),
OpenAI's (`{"function": {"name", "arguments"}}`) or Anthropic's
(`{"type": "tool_use", "name", "input"}`). Reading too much only judges a
harmless dict under the graph's rules; reading too little would let a call
through.

LangChain's HumanInTheLoopMiddleware leaves a call a reviewer edited as the
model proposed it in the message, keeps the edit in the state under the
call's id, and runs the edit in its place: where a tools node would run a
call, the edit kept for it counts as a call it runs too.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.utils.json import parse_partial_json


def written(value: Any) -> list[dict[str, Any]]:
    """Every tool call anywhere in a value, in any of the shapes above."""
    found: list[dict[str, Any]] = []
    _scan(value, found, depth=0)
    # One call read from its own dict and from the one holding it counts once.
    seen: set[str] = set()
    unique = []
    for call in found:
        key = json.dumps(call, sort_keys=True, default=repr)
        if key not in seen:
            seen.add(key)
            unique.append(call)
    return unique


# Where HumanInTheLoopMiddleware keeps its reviewers' edits: call id -> call.
EDITED_CALLS_KEY = "hitl_edited_tool_calls"


def last_turn(values: Any) -> list[dict[str, Any]]:
    """Every call of the last AI message in each of the state's message
    lists: what a tools node reached next would run, answered or not."""
    found = []
    for channel in values.values() if isinstance(values, dict) else ():
        if not isinstance(channel, list):
            continue
        last = next((m for m in reversed(channel) if _is_ai(m)), None)
        if last is not None:
            found += written(last)
            found += _edits(values, [c.get("id") for c in _with_ids(last)])
    return found


def waiting(values: Any) -> list[dict[str, Any]]:
    """The calls of each message list's last AI message that no tool message
    after it answers: asked and not yet run, what a tools node reached next
    runs (wherever that message sits in the list)."""
    found = []
    for channel in values.values() if isinstance(values, dict) else ():
        if not isinstance(channel, list):
            continue
        at = next((i for i in range(len(channel) - 1, -1, -1) if _is_ai(channel[i])), None)
        if at is None:
            continue
        answered = {_answers(m) for m in channel[at + 1 :]} - {None}
        calls = [c for c in _with_ids(channel[at]) if c.get("id") not in answered]
        edits = _edits(values, [c.pop("id", None) for c in calls])
        found += calls + [c for c in edits if c not in calls]
    return found


def held(values: Any) -> list[dict[str, Any]]:
    """The calls a state keeps outside its message lists (a planned call in a
    key of its own, which a later node runs): nothing says whether one ran
    already, so past a stop each counts as one that may run."""
    if not isinstance(values, dict):
        return []
    return written(
        {
            key: value
            for key, value in values.items()
            if key != EDITED_CALLS_KEY and not _is_message_list(value)
        }
    )


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_message(m) for m in value)


def _is_message(value: Any) -> bool:
    # A message has content; a call (OpenAI's is `{"type": "function", ...}`)
    # has none.
    if isinstance(value, BaseMessage):
        return True
    return (
        isinstance(value, dict)
        and "content" in value
        and (
            "role" in value or str(value.get("type", "")).lower().removesuffix("message") in _KINDS
        )
    )


_KINDS = {"human", "ai", "aimessagechunk", "tool", "system", "function", "chat", "remove"}


def _edits(values: dict[str, Any], ids: list[Any]) -> list[dict[str, Any]]:
    """The edits the state keeps for these calls (see EDITED_CALLS_KEY)."""
    kept = values.get(EDITED_CALLS_KEY)
    if not isinstance(kept, dict):
        return []
    return [
        call for id_ in ids if isinstance(id_, str) and id_ in kept for call in written(kept[id_])
    ]


def _answers(message: Any) -> str | None:
    """The call a tool message answers."""
    if hasattr(message, "tool_call_id"):
        return message.tool_call_id
    if isinstance(message, dict) and (
        message.get("type") == "tool" or message.get("role") == "tool"
    ):
        return message.get("tool_call_id")
    return None


def _with_ids(message: Any) -> list[dict[str, Any]]:
    """A message's calls, each with its id where the message gives one. Two
    equal calls under two ids are two calls: a tools node runs both."""
    listed = (
        message.get("tool_calls")
        if isinstance(message, dict)
        else getattr(message, "tool_calls", None)
    )
    calls = [
        {"name": c["name"], "args": c["args"], "id": c.get("id")}
        for c in (listed if isinstance(listed, list) else [])
        if isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and isinstance(c.get("args"), dict)
    ]
    # Other shapes the message holds (OpenAI's, arguments no reading makes an
    # object of) are its calls too.
    known = {_key(c) for c in calls}
    return calls + [c for c in written(message) if _key(c) not in known]


def _key(call: dict[str, Any]) -> str:
    return json.dumps({"name": call["name"], "args": call["args"]}, sort_keys=True, default=repr)


def _is_ai(message: Any) -> bool:
    if isinstance(message, BaseMessage):
        return isinstance(message, AIMessage)
    return isinstance(message, dict) and (
        message.get("type") in ("ai", "AIMessage", "AIMessageChunk")
        or message.get("role") in ("assistant", "ai")
    )


def _scan(value: Any, found: list[dict[str, Any]], depth: int) -> None:
    if depth > 60:  # request bodies nest at most 100 levels deep; states far less
        return
    if hasattr(value, "model_dump"):  # LangChain's messages, pydantic states
        value = value.model_dump()
    elif hasattr(value, "__dataclass_fields__"):
        value = vars(value)
    if isinstance(value, dict):
        found += _calls(value)
        for item in value.values():
            _scan(item, found, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _scan(item, found, depth + 1)


# A call's name and its arguments, under the keys the formats use:
# LangChain's `name`/`args`, OpenAI's legacy `function_call` (`arguments`),
# Anthropic's and Bedrock's `input`, Agent Inbox's `action`/`args`, and a
# plan's own `tool`/`params`. Any name beside any arguments is read.
CALL_NAMES = ("name", "tool", "tool_name", "action")
CALL_ARGUMENTS = ("args", "arguments", "input", "params", "parameters")
_CALL_NAME_SET = frozenset(CALL_NAMES)


def _calls(value: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reading of a dict as a call: one that holds several shapes
    (LangChain's `args` beside OpenAI's `function`) is judged on each, since
    which one a converter takes is its own choice."""
    # Most dicts a state holds are no call: one look at their keys says so.
    found = (
        [
            {"name": value[name_key], "args": _arguments(value[args_key])}
            for name_key in CALL_NAMES
            if isinstance(value.get(name_key), str)
            for args_key in CALL_ARGUMENTS
            if args_key in value
        ]
        if not _CALL_NAME_SET.isdisjoint(value)
        else []
    )
    name = value.get("name")
    if isinstance(name, str) and str(value.get("type", "")).endswith("tool_use"):
        found.append({"name": name, "args": _arguments(value.get("input"))})
    function = value.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        found.append({"name": function["name"], "args": _arguments(function.get("arguments"))})
    return found


def _arguments(raw: Any) -> dict[str, Any] | None:
    """A call's arguments as LangChain reads them (leniently: control
    characters in strings, a cut-off object); None when no reading gives an
    object, and such a call is judged under every rule of its tool."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, strict=False)
        except ValueError:
            raw = parse_partial_json(raw)
    return raw if isinstance(raw, dict) else None
