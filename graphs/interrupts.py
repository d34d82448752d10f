"""Pending interrupts in, review requests out; decisions in, resume values out.

The shapes are recognised from the interrupt's value, so
graphs written for Agent Inbox, for langchain's HumanInTheLoopMiddleware or
with plain `interrupt()` work unchanged:

- agent_inbox: a list of `HumanInterrupt` dicts; resumed with a list of
  `{"type": "accept"|"edit"|"response"|"ignore", "args": ...}`, one per item.
- hitl_batched: `{"action_requests": [...], "review_configs": [...]}`; resumed
  with `{"decisions": [...]}` in the same order.
- hitl_per_call: `{"type": "tool_approval", ...}`; resumed with one decision.
- schema: `interrupt(value, response_schema=...)`; resumed with the answer.
- json: any other value; resumed with a JSON answer.
- breakpoint: a static `interrupt_before/after`; continued with no value.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import ipaddress
import json
import re
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import orjson
from django.db import models
from langgraph.constants import TASKS
from langgraph.types import Send

from graphs import written_calls
from graphs.checkpoint import DjangoCheckpointSaver

# Agent Inbox decision types and the config flag that allows each.
INBOX_DECISIONS = {
    "accept": "allow_accept",
    "edit": "allow_edit",
    "response": "allow_respond",
    "ignore": "allow_ignore",
}
HITL_DECISIONS = ["approve", "edit", "reject", "respond"]
# What the decision types of both vocabularies mean. Run the call as proposed:
APPROVALS = ("approve", "accept")
# Carry a message the model reads (in the order the queue's reject key prefers):
WITH_MESSAGE = ("reject", "response", "respond")
# Say no: final at once, whatever quorum a rule asks for.
REFUSALS = (*WITH_MESSAGE, "ignore")


class Shape(models.TextChoices):
    """The payload shapes a review request comes in (see the module's doc)."""

    AGENT_INBOX = "agent_inbox", "Agent Inbox"
    HITL_BATCHED = "hitl_batched", "HITL middleware, batched"
    HITL_PER_CALL = "hitl_per_call", "HITL middleware, per call"
    SCHEMA = "schema", "answer to a schema"
    JSON = "json", "JSON answer"
    BREAKPOINT = "breakpoint", "static breakpoint"


class DecisionError(ValueError):
    """A decision that the interrupt does not allow or that is malformed."""


@dataclass
class ReviewRequest:
    """One thing a person decides: an action of an interrupt, or a breakpoint."""

    shape: str
    kind: str  # approval, tool_edit, feedback, breakpoint, other
    interrupt_id: str = ""
    action_index: int = 0
    tool_name: str = ""
    args: Any = None
    description: str = ""
    allowed: list[str] = field(default_factory=list)
    response_schema: dict[str, Any] | None = None
    value: Any = None
    node: str = ""
    namespace: str = ""
    # A question that is no tool call of its own: the calls answering it
    # lets run (see _guarded_calls).
    guards: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def json_safe(value: Any) -> Any:
    """A value as LangGraph's own server sends it as JSON: messages and other
    models as their fields, dataclasses as objects, sets as lists, Decimals
    as numbers, timedeltas as seconds, bytes as base64, datetimes and UUIDs
    as strings. Never a Python repr."""
    try:
        return orjson.loads(orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:  # what orjson refuses (an int past 64 bits): the slow way
        return json.loads(json.dumps(value, default=_default_stdlib, ensure_ascii=False))


def _default_stdlib(obj: Any) -> Any:
    """_default, plus what orjson writes itself."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    return _default(obj)


def _default(obj: Any) -> Any:
    """What orjson can't write itself, the way langgraph-api's serde writes it."""
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, Send):
        return {"node": obj.node, "args": obj.arg}
    for method in ("model_dump", "dict", "_asdict"):
        if callable(getattr(obj, method, None)):
            return getattr(obj, method)()
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, set | frozenset | deque):
        return list(obj)
    if isinstance(obj, dt.timezone | ZoneInfo):
        return obj.tzname(None)
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, Decimal):
        exponent = obj.as_tuple().exponent
        return float(obj) if not obj.is_finite() or int(exponent) < 0 else int(obj)
    if isinstance(obj, Path | ipaddress._BaseAddress | ipaddress._BaseNetwork):
        return str(obj)
    if isinstance(obj, re.Pattern):
        return obj.pattern
    if isinstance(obj, bytes | bytearray):
        return base64.b64encode(obj).decode()
    return None


def _is_agent_inbox(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and "action_request" in item for item in value)
    )


def _is_hitl_batched(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_requests"), list)


def _is_hitl_per_call(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_approval"


def requests_for(interrupt_id: str, value: Any, response_schema: Any = None) -> list[ReviewRequest]:
    """The review requests one interrupt asks for."""
    schema = response_schema if isinstance(response_schema, dict) else None
    if _is_agent_inbox(value):
        out = []
        for index, item in enumerate(value):
            action = item.get("action_request") or {}
            config = item.get("config") or {}
            allowed = [d for d, flag in INBOX_DECISIONS.items() if config.get(flag, False)]
            out.append(
                ReviewRequest(
                    shape=Shape.AGENT_INBOX,
                    kind="tool_edit" if "edit" in allowed else "approval",
                    interrupt_id=interrupt_id,
                    action_index=index,
                    tool_name=str(action.get("action", "")),
                    args=json_safe(action.get("args", {})),
                    description=str(item.get("description") or ""),
                    allowed=allowed,
                    value=json_safe(item),
                )
            )
        return out
    if _is_hitl_batched(value):
        configs = value.get("review_configs") or []
        by_name = {c.get("action_name"): c for c in configs if isinstance(c, dict)}
        out = []
        for index, action in enumerate(value["action_requests"]):
            config = by_name.get(action.get("name")) or (
                configs[index] if index < len(configs) else {}
            )
            allowed = list(config.get("allowed_decisions") or HITL_DECISIONS)
            out.append(
                ReviewRequest(
                    shape=Shape.HITL_BATCHED,
                    kind="tool_edit" if "edit" in allowed else "approval",
                    interrupt_id=interrupt_id,
                    action_index=index,
                    tool_name=str(action.get("name", "")),
                    args=json_safe(action.get("args", {})),
                    description=str(action.get("description") or ""),
                    allowed=allowed,
                    value=json_safe(action),
                    response_schema=config.get("args_schema"),
                )
            )
        return out
    if _is_hitl_per_call(value):
        allowed = _decisions_in_schema(schema) or HITL_DECISIONS
        return [
            ReviewRequest(
                shape=Shape.HITL_PER_CALL,
                kind="tool_edit" if "edit" in allowed else "approval",
                interrupt_id=interrupt_id,
                tool_name=str(value.get("name", "")),
                args=json_safe(value.get("args", {})),
                description=str(value.get("description") or ""),
                allowed=allowed,
                response_schema=schema,
                value=json_safe(value),
            )
        ]
    if schema is not None:
        return [
            ReviewRequest(
                shape=Shape.SCHEMA,
                kind="feedback",
                interrupt_id=interrupt_id,
                description=_question(value),
                response_schema=json_safe(schema),
                value=json_safe(value),
            )
        ]
    return [
        ReviewRequest(
            shape=Shape.JSON,
            kind="other",
            interrupt_id=interrupt_id,
            description=_question(value),
            value=json_safe(value),
        )
    ]


def _question(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("question", "description", "message", "prompt"):
            if isinstance(value.get(key), str):
                return value[key]
    return ""


def _decisions_in_schema(schema: dict[str, Any] | None) -> list[str]:
    """The decision types a per-call response_schema admits, in HITL order."""
    if not schema:
        return []
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            type_ = (node.get("properties") or {}).get("type") if "properties" in node else None
            if isinstance(type_, dict):
                found.update(v for v in (type_.get("enum") or []) if isinstance(v, str))
                if isinstance(type_.get("const"), str):
                    found.add(type_["const"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    return [d for d in HITL_DECISIONS if d in found]


def interrupt_origins(state) -> dict[str, tuple[str, str]]:
    """Interrupt id -> (node, namespace) for a `get_state(subgraphs=True)`
    snapshot: which node asked, and in which subgraph ("" for the root)."""
    origins: dict[str, tuple[str, str]] = {}

    def walk(snapshot, namespace: str) -> None:
        for task in getattr(snapshot, "tasks", ()) or ():
            inner = getattr(task, "state", None)
            inner_ns = namespace
            if inner is not None and getattr(inner, "config", None):
                inner_ns = inner.config.get("configurable", {}).get("checkpoint_ns", namespace)
                walk(inner, inner_ns)
            for found in getattr(task, "interrupts", ()) or ():
                # The innermost task that raised it names it first.
                origins.setdefault(found.id, (task.name, inner_ns))

    walk(state, "")
    return origins


def pending_requests(
    state, origins: dict[str, tuple[str, str]] | None = None
) -> list[ReviewRequest]:
    """Every review request of a stopped graph (a `get_state(subgraphs=True)`
    snapshot): its pending interrupts, or a static breakpoint's next nodes.
    `origins` (interrupt id -> node, namespace) where the caller knows them
    without the snapshot's tasks."""
    if origins is None:
        origins = interrupt_origins(state)
    requests: list[ReviewRequest] = []
    seen: set[str] = set()
    for interrupt in getattr(state, "interrupts", ()) or ():
        if interrupt.id in seen:
            continue
        seen.add(interrupt.id)
        node, namespace = origins.get(interrupt.id, ("", ""))
        for request in requests_for(
            interrupt.id, interrupt.value, getattr(interrupt, "response_schema", None)
        ):
            request.node, request.namespace = request.node or node, namespace
            if not request.tool_name:
                request.guards = _guarded_calls(interrupt.value, state, namespace)
            requests.append(request)
    # Continuing lets every graph stopped at a static breakpoint go on, each
    # parallel subgraph's and one beside a pending interrupt() included.
    stops = _breakpoint_stops(state) if state.next else []
    if not stops:
        return requests
    index = 0
    # The graph's own waiting calls are asked once, with the first stop.
    calls_above = _waiting_below(state)
    for stop in stops:
        # The next node may run the calls the model asked for last (a tools
        # node runs them all): each is asked on its own, so the rules that
        # govern that tool, its quorum included, govern continuing. Each
        # stopped graph's are its own: two subagents' equal calls run twice.
        calls, calls_above = calls_above, []
        if stop is not state:
            calls += [c for c in _waiting_below(stop) if c not in calls]
        calls += [c for c in _sent_calls(stop) if c not in calls]
        node = ", ".join(stop.next)
        namespace = (stop.config or {}).get("configurable", {}).get("checkpoint_ns", "")
        asked = [
            ReviewRequest(
                shape=Shape.BREAKPOINT,
                kind="breakpoint",
                tool_name=call["name"],
                args=call["args"] if call["args"] is not None else {},
                node=node,
                namespace=namespace,
                description=f"Stopped before {node}, which would run this call",
                value=None,
            )
            for call in calls
        ] or [
            ReviewRequest(
                shape=Shape.BREAKPOINT,
                kind="breakpoint",
                node=name,
                namespace=namespace,
                description=f"Stopped before {name}",
                value=None,
            )
            for name in stop.next
        ]
        for request in asked:
            request.action_index, index = index, index + 1
            requests.append(request)
    return requests


def _guarded_calls(value: Any, state, namespace: str = "") -> list[dict[str, Any]]:
    """The calls a question that is no call of its own guards: those its
    value shows (`interrupt({"question": ..., "call": tool_call})`, as
    LangGraph's docs review a call), and those a node after it may run in
    the graph that asks (in `namespace`) and each graph around it: the
    last AI message's, and those kept elsewhere in their state. Answering
    it lets them run, so the rules of those calls govern it
    (reviews.models.ReviewRule.for_task). A parallel branch stopped at a
    breakpoint asks its own calls."""
    calls = written_calls.written(value)
    path, current = [state], state
    while current is not None:
        current = next(
            (
                t.state
                for t in getattr(current, "tasks", ()) or ()
                if _is_snapshot(t.state) and _contains(_namespace_of(t.state), namespace)
            ),
            None,
        )
        if current is not None:
            path.append(current)
    for current in path:
        calls += [c for c in _waiting_below(current) if c not in calls]
    return calls


def _namespace_of(state) -> str:
    return ((getattr(state, "config", None) or {}).get("configurable") or {}).get(
        "checkpoint_ns", ""
    )


def _contains(outer: str, namespace: str) -> bool:
    """Whether the graph in `outer` is, or holds, the one in `namespace`."""
    return bool(outer) and (namespace == outer or namespace.startswith(outer + "|"))


def _waiting_below(state) -> list[dict[str, Any]]:
    """What a node past a stop of this (sub)graph may run: the last AI
    message's calls not yet answered, and calls kept elsewhere in the state."""
    values = getattr(state, "values", None)
    calls = written_calls.waiting(values)
    return calls + [c for c in written_calls.held(values) if c not in calls]


def _is_snapshot(state: Any) -> bool:
    # A subgraph task's `state` is its snapshot with `subgraphs=True`, its
    # config without.
    return hasattr(state, "values") and hasattr(state, "tasks")


# LangGraph's path for a task a Send made.
PUSH = "__pregel_push"


def _sent_calls(state) -> list[dict[str, Any]]:
    """Calls sent to the next nodes with `Send` (a planner that hands each
    call to a tools node): they wait in the checkpoint's task channel, which
    a snapshot does not show."""
    config = getattr(state, "config", None)
    pushed = (getattr(t, "path", ("",))[:1] == (PUSH,) for t in getattr(state, "tasks", ()) or ())
    if not config or not any(pushed):
        return []
    saved = DjangoCheckpointSaver().get_tuple(config)
    sends = (saved.checkpoint["channel_values"].get(TASKS) or []) if saved else []
    return written_calls.written(
        [send.arg for send in sends if isinstance(send, Send) and send.node in state.next]
    )


def _breakpoint_stops(state) -> list:
    """Every graph in a stopped snapshot (one taken with `subgraphs=True`)
    that stopped before its next nodes at a static breakpoint: the graph
    itself, or each subgraph stopped inside it, parallel ones included. A
    graph whose tasks wait in interrupt() is asked through its interrupts."""
    tasks = getattr(state, "tasks", ()) or ()
    inner = [t.state for t in tasks if getattr(getattr(t, "state", None), "next", None)]
    if inner:
        return [stop for sub in inner for stop in _breakpoint_stops(sub)]
    if any(getattr(t, "interrupts", ()) for t in tasks) or (
        not tasks and getattr(state, "interrupts", ())  # the worker's stop, one task asking
    ):
        return []
    return [state] if state.next else []


def validate_decision(request: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """Check one decision against its request; returns it normalised.

    `request` is a ReviewRequest as a dict. Decisions use the payload's own
    vocabulary (accept/edit/response/ignore for Agent Inbox, approve/edit/
    reject/respond for the middleware); feedback and JSON requests take
    `{"type": "answer", "value": ...}`; breakpoints take `{"type": "continue"}`.
    """
    return VOCABULARIES[request["shape"]].check(request, decision)


def quick_decision(request: dict[str, Any], action: str, message: str = "") -> dict[str, Any]:
    """The decision a plain "approve" or "reject" (with `message`) makes in the
    request's own vocabulary. DecisionError says why when the request needs
    more than that (an answer, a choice between tools)."""
    if action == "approve" and request["shape"] == "breakpoint":
        return {"type": "continue"}
    if action == "approve":
        chosen = next((d for d in APPROVALS if d in request["allowed"]), None)
        if chosen is None:
            raise DecisionError("This request can't simply be approved; open it to answer.")
        return {"type": chosen}
    chosen = next((d for d in WITH_MESSAGE if d in request["allowed"]), None)
    if chosen is None:
        raise DecisionError("This request can't be rejected; open it to decide.")
    if not message.strip():
        raise DecisionError("Write the message the model will read.")
    return {"type": chosen, "message": message.strip()}


def check_value(value: Any, schema: dict[str, Any], what: str) -> None:
    """Validate against a JSON schema; DecisionError says what and where."""
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise DecisionError(f"{what}{' at ' + where if where else ''}: {exc.message}") from None
    except jsonschema.SchemaError as exc:
        raise DecisionError(f"the interrupt's schema is invalid: {exc.message}") from None


def resume_value(requests: Sequence[dict[str, Any]], decisions: Sequence[dict[str, Any]]) -> Any:
    """The resume value of one interrupt, from its requests (in action order)
    and their validated decisions, in the shape its payload expects."""
    if not requests:
        raise DecisionError("nothing to resume")
    if len(decisions) != len(requests):
        raise DecisionError(
            f"{len(requests)} actions need {len(requests)} decisions, got {len(decisions)}"
        )
    return VOCABULARIES[requests[0]["shape"]].resume(decisions)


def decisions_in(requests: Sequence[dict[str, Any]], value: Any) -> list[dict[str, Any]]:
    """The decisions a resume value gives an interrupt's requests (in action
    order): resume_value read backwards, for clients that send the value
    itself (LangGraph's `Command(resume=...)`). DecisionError when the value
    is not in the payload's shape."""
    if not requests:
        raise DecisionError("nothing to resume")
    vocabulary = VOCABULARIES[requests[0]["shape"]]
    items = vocabulary.items(requests, value)
    if len(items) != len(requests):
        raise DecisionError(
            f"This interrupt asks {len(requests)} decisions; the resume gives {len(items)}."
        )
    return [vocabulary.read(r, item) for r, item in zip(requests, items, strict=True)]


# -- each shape's vocabulary -------------------------------------------------------


def _check_tool_call(request: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    type_ = decision.get("type")
    if type_ not in request["allowed"]:
        allowed = ", ".join(request["allowed"]) or "nothing"
        raise DecisionError(f"{type_!r} is not allowed here (allowed: {allowed})")
    if type_ == "edit":
        args = decision.get("args")
        if not isinstance(args, dict):
            raise DecisionError("an edit needs the tool's arguments as a JSON object")
        name = decision.get("name") or request["tool_name"]
        if not isinstance(name, str) or not name:
            raise DecisionError("an edit needs a tool name")
        schema = request.get("response_schema") if request["shape"] == Shape.HITL_BATCHED else None
        if schema:
            check_value(args, schema, "the tool's arguments")
        return {"type": "edit", "name": name, "args": args}
    if type_ in ("response", "respond") and not isinstance(decision.get("message"), str):
        raise DecisionError("a response needs a message")
    message = decision.get("message")
    return {"type": type_, **({"message": message} if isinstance(message, str) else {})}


def _check_answer(request: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    if decision.get("type") != "answer" or "value" not in decision:
        raise DecisionError('an answer is {"type": "answer", "value": ...}')
    if request["shape"] == Shape.SCHEMA:
        check_value(decision["value"], request["response_schema"], "the answer")
    return {"type": "answer", "value": decision["value"]}


def _inbox_resume(decisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for decision in decisions:
        type_ = decision["type"]
        if type_ == "edit":
            args: Any = {"action": decision["name"], "args": decision["args"]}
        elif type_ == "response":
            args = decision["message"]
        else:
            args = None
        out.append({"type": type_, "args": args})
    return out


def _inbox_read(request: dict[str, Any], item: Any) -> dict[str, Any]:
    type_ = _typed(item)
    if type_ == "edit":
        args = item.get("args") if isinstance(item.get("args"), dict) else {}
        return {
            "type": "edit",
            "name": args.get("action") or request["tool_name"],
            "args": args.get("args"),
        }
    if type_ == "response":
        return {"type": "response", "message": item.get("args")}
    return {"type": type_}


def _hitl_decisions(decisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for decision in decisions:
        type_ = decision["type"]
        if type_ == "edit":
            edited = {"name": decision["name"], "args": decision["args"]}
            out.append({"type": "edit", "edited_action": edited})
        elif "message" in decision:
            out.append({"type": type_, "message": decision["message"]})
        else:
            out.append({"type": type_})
    return out


def _hitl_read(request: dict[str, Any], item: Any) -> dict[str, Any]:
    type_ = _typed(item)
    if type_ == "edit":
        edited = item.get("edited_action") if isinstance(item.get("edited_action"), dict) else {}
        return {
            "type": "edit",
            "name": edited.get("name") or request["tool_name"],
            "args": edited.get("args"),
        }
    if "message" in item:
        return {"type": type_, "message": item["message"]}
    return {"type": type_}


def _batched_items(requests: Sequence[dict[str, Any]], value: Any) -> list[Any]:
    items = value.get("decisions") if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise DecisionError('This interrupt is resumed with {"decisions": [...]}.')
    return items


def _typed(item: Any) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise DecisionError(f"Each decision is an object with a type; got {item!r}.")
    return item["type"]


def _one(requests: Sequence[dict[str, Any]], value: Any) -> list[Any]:
    return [value]


@dataclass(frozen=True)
class Vocabulary:
    """How one payload shape is decided: `check` a decision against its
    request, make the `resume` value from an interrupt's decisions, and read
    a resume value back: its `items` (one per request), each `read` as the
    decision it is."""

    check: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    resume: Callable[[Sequence[dict[str, Any]]], Any]
    items: Callable[[Sequence[dict[str, Any]], Any], list[Any]]
    read: Callable[[dict[str, Any], Any], dict[str, Any]]


def _answer(request: dict[str, Any], item: Any) -> dict[str, Any]:
    return {"type": "answer", "value": item}


# What passes a breakpoint, in the words clients send: LangGraph's resume
# past one carries no value; Agent Inbox says "accept", the middleware "approve".
_PASSING = ("continue", "accept", "approve")


def _read_continue(request: dict[str, Any], item: Any) -> dict[str, Any]:
    """A breakpoint is passed with its calls as the model proposed them, or
    not at all: a decline or an edit is never read as passing it."""
    type_ = item.get("type") if isinstance(item, dict) else item
    unchanged = not isinstance(item, dict) or item.get("args") in (None, request.get("args"))
    if (item is None or type_ in _PASSING) and unchanged:
        return {"type": "continue"}
    said = type_ if isinstance(type_, str) else type(item).__name__
    raise DecisionError(
        f"{said!r} is not allowed here (allowed: continue): a breakpoint lets the calls run "
        "as proposed; to change or decline them, edit the thread's state."
    )


VOCABULARIES: dict[str, Vocabulary] = {
    Shape.AGENT_INBOX: Vocabulary(
        _check_tool_call,
        _inbox_resume,
        lambda requests, value: value if isinstance(value, list) else [value],
        _inbox_read,
    ),
    Shape.HITL_BATCHED: Vocabulary(
        _check_tool_call,
        lambda decisions: {"decisions": _hitl_decisions(decisions)},
        _batched_items,
        _hitl_read,
    ),
    Shape.HITL_PER_CALL: Vocabulary(
        _check_tool_call, lambda decisions: _hitl_decisions(decisions)[0], _one, _hitl_read
    ),
    Shape.SCHEMA: Vocabulary(_check_answer, lambda decisions: decisions[0]["value"], _one, _answer),
    Shape.JSON: Vocabulary(_check_answer, lambda decisions: decisions[0]["value"], _one, _answer),
    Shape.BREAKPOINT: Vocabulary(
        lambda request, decision: _read_continue(request, decision),
        lambda decisions: None,
        lambda requests, value: (
            value
            if isinstance(value, list) and len(value) == len(requests)
            else [value] * len(requests)
        ),
        lambda request, item: _read_continue(request, item),
    ),
}
