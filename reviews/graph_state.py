"""What the pages read from a thread's graph: its state, steps and schemas.

Everything goes through the registered graph compiled with our saver, so the
pages see exactly what LangGraph sees.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import re
import typing
import weakref
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.channels.binop import BinaryOperatorAggregate
from pydantic import ConfigDict, PydanticUserError, TypeAdapter

from graphs.interrupts import json_safe
from graphs.models import Thread
from graphs.registry import GraphLoadError, GraphNotFound, get_registry
from graphs.worker import OWN_METADATA_PREFIX, compiled_graph

RESERVED_NODES = ("__start__", "__end__")


class GraphUnavailable(Exception):
    """The thread's graph is not registered here, or failed to load."""


@dataclass
class Step:
    checkpoint_id: str
    step: int
    source: str
    writes: list[str]
    created_at: str
    next: list[str] = field(default_factory=list)


@dataclass
class ThreadState:
    values: dict[str, Any]
    next: list[str]
    checkpoint_id: str
    steps: list[Step]


def graph_for(thread: Thread):
    try:
        return compiled_graph(thread.graph_name)
    except (GraphNotFound, GraphLoadError) as exc:
        raise GraphUnavailable(str(exc)) from exc


def config_for(thread: Thread, checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable = {"thread_id": thread.thread_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


# Checkpoint metadata the dashboard adds to the writes it makes itself (a
# run's own metadata never holds them: graphs.worker.run_config).
EDITED_BY, EDITED_AS_NODE = OWN_METADATA_PREFIX + "user", OWN_METADATA_PREFIX + "as_node"


def read_state(thread: Thread, *, steps: int = 8) -> ThreadState:
    graph = graph_for(thread)
    snapshot = graph.get_state(config_for(thread))
    # One more than shown: a step's writers are its parent's next nodes.
    history = list(graph.get_state_history(config_for(thread), limit=steps + 1))
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in history}
    shown = []
    for s in history[:steps]:
        metadata = s.metadata or {}
        parent_id = ((s.parent_config or {}).get("configurable") or {}).get("checkpoint_id")
        parent = by_id.get(parent_id)
        if metadata.get("source") == "update":
            writes = [metadata[EDITED_AS_NODE]] if metadata.get(EDITED_AS_NODE) else []
        else:
            writes = list(parent.next) if parent is not None else []
        shown.append(
            Step(
                checkpoint_id=s.config["configurable"]["checkpoint_id"],
                step=metadata.get("step", -1),
                source=metadata.get("source", ""),
                writes=writes,
                created_at=s.created_at or "",
                next=list(s.next),
            )
        )
    return ThreadState(
        values=json_safe(snapshot.values or {}),
        next=list(snapshot.next),
        checkpoint_id=(snapshot.config or {}).get("configurable", {}).get("checkpoint_id", ""),
        steps=shown,
    )


def state_schema(graph) -> tuple[dict[str, Any] | None, str]:
    """The JSON schema of the graph's state, or None and why not."""
    try:
        return TypeAdapter(graph.builder.state_schema).json_schema(), ""
    except Exception as exc:  # any schema pydantic can't read: the JSON box still works
        return None, f"{type(exc).__name__}: {exc}"


def typed_values(graph, values: dict[str, Any]) -> dict[str, Any]:
    """Edited values (JSON) as the types the graph's state declares, so an
    edit round-trips: a Decimal stays a Decimal, a set a set, bytes bytes
    (sent as base64), a message a message. Keys without a readable type,
    and values that don't fit it, are passed as they came."""
    try:
        hints = typing.get_type_hints(graph.builder.state_schema)
    except Exception:  # a schema Python can't resolve: LangGraph gets the JSON
        return dict(values)
    typed = {}
    for key, value in values.items():
        typed[key] = value
        if key in hints:
            # A value not of that type is passed as it came: the schema check has spoken.
            with contextlib.suppress(Exception):
                typed[key] = _adapter(hints[key]).validate_json(json.dumps(value))
    return typed


def _adapter(annotation: Any) -> TypeAdapter:
    try:
        return TypeAdapter(annotation, config=ConfigDict(val_json_bytes="base64"))
    except PydanticUserError:  # a model with a config of its own
        return TypeAdapter(annotation)


def merged_keys(graph) -> set[str]:
    """State keys whose channel merges updates with a reducer (add_messages,
    list appends) instead of replacing the value."""
    return {k for k, c in graph.channels.items() if isinstance(c, BinaryOperatorAggregate)}


def node_names(graph) -> list[str]:
    return [n for n in graph.nodes if n not in RESERVED_NODES]


def tool_args_schemas(graph) -> dict[str, dict[str, Any]]:
    """Argument schemas of the tools the graph's tool nodes run, by tool name."""
    schemas: dict[str, dict[str, Any]] = {}
    for node in graph.nodes.values():
        tools = getattr(getattr(node, "bound", None), "tools_by_name", None)
        for name, tool in (tools or {}).items():
            try:
                schemas[name] = tool.tool_call_schema.model_json_schema()
            except Exception:  # a tool without a readable schema is checked as JSON only
                continue
    return schemas


def module_tool_schema(graph_name: str, name: str) -> dict[str, Any] | None:
    """The argument schema of a tool the graph calls by name from its own
    code (a function or a langchain tool of the graph's module, not a tool
    node's): from the tool's args_schema, or the function's annotations."""
    try:
        module = get_registry().get(graph_name).module()
    except (GraphNotFound, GraphLoadError):
        return None
    found = getattr(module, name, None)
    if isinstance(found, BaseTool):
        tool = found
    elif inspect.isfunction(found) and found.__name__ == name:
        try:
            tool = StructuredTool.from_function(found, description=found.__doc__ or name)
        except Exception:  # a signature pydantic can't describe: checked as JSON only
            return None
    else:
        return None
    try:
        return tool.tool_call_schema.model_json_schema()
    except Exception:  # a tool without a readable schema is checked as JSON only
        return None


def executed_results(values: dict[str, Any], names: list[str]) -> list[dict[str, Any] | None]:
    """For tool calls of one turn (by name, in order), the tool messages that
    answered them in the thread's latest state: what was actually executed."""
    messages = values.get("messages") if isinstance(values, dict) else None
    if not isinstance(messages, list):
        return [None] * len(names)
    answers = {
        m.get("tool_call_id"): m
        for m in messages
        if isinstance(m, dict) and m.get("type") == "tool" and m.get("tool_call_id")
    }
    for message in reversed(messages):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if message.get("type") != "ai" or not calls:
            continue
        call_names = [c.get("name") for c in calls]
        if not all(name in call_names for name in names if name):
            continue
        out, used = [], set()
        for name in names:
            match = next(
                (i for i, c in enumerate(calls) if c.get("name") == name and i not in used), None
            )
            used.add(match)
            out.append(answers.get(calls[match].get("id")) if match is not None else None)
        return out
    return [None] * len(names)


@dataclass
class PointState:
    """The state at one checkpoint, as the timeline shows a clicked point."""

    checkpoint_id: str
    ns: str
    values: dict[str, Any]
    next: list[str]
    parent_id: str | None
    tasks: list[dict[str, Any]]
    pending_writes: list[dict[str, Any]]


def _internal(channel: str) -> bool:
    return channel.startswith(("__", "branch:"))


def state_at(thread: Thread, checkpoint_id: str, ns: str = "") -> PointState | None:
    """None when the checkpoint is not in the thread."""
    graph = graph_for(thread)
    config = config_for(thread, checkpoint_id)
    config["configurable"]["checkpoint_ns"] = ns
    saved = graph.checkpointer.get_tuple(config)
    if saved is None:
        return None
    names: dict[str, str] = {}
    tasks: list[dict[str, Any]] = []
    if not ns:
        snapshot = graph.get_state(config)
        values, nexts = snapshot.values or {}, list(snapshot.next)
        for task in snapshot.tasks:
            names[task.id] = task.name
            tasks.append(
                {
                    "name": task.name,
                    "interrupts": [json_safe(i.value) for i in task.interrupts],
                    "error": str(task.error) if task.error else "",
                }
            )
    else:
        # A subgraph's own checkpoint: its channels, without the graph's routing.
        channel_values = saved.checkpoint.get("channel_values", {})
        values = {k: v for k, v in channel_values.items() if not _internal(k)}
        nexts = []
    writes = [
        {"task": names.get(task_id, task_id[:8]), "channel": channel, "value": json_safe(value)}
        for task_id, channel, value in saved.pending_writes or []
        if not channel.startswith("branch:")
    ]
    parent = ((saved.parent_config or {}).get("configurable") or {}).get("checkpoint_id")
    return PointState(
        checkpoint_id=checkpoint_id,
        ns=ns,
        values=json_safe(values),
        next=nexts,
        parent_id=parent,
        tasks=tasks,
        pending_writes=writes,
    )


# Words Mermaid's flowchart grammar reads as its own, whatever their case.
_MERMAID_WORDS = {"end", "graph", "flowchart", "subgraph", "class", "classdef", "style"}
_MERMAID_WORDS |= {"linkstyle", "click", "call", "href", "direction", "default"}


def _mermaid_ids(names: list[str]) -> dict[str, str]:
    """A Mermaid node id per name: the name itself where it is a plain
    identifier (the source stays readable), else node_<n>, never one of them."""
    plain = {
        name
        for name in names
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in _MERMAID_WORDS
    }
    ids: dict[str, str] = {}
    numbers = (f"node_{n}" for n in itertools.count())
    for name in names:
        ids[name] = name if name in plain else next(i for i in numbers if i not in plain)
    return ids


def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: every character that could mean
    something to Mermaid, its Markdown or HTML written as an entity code."""
    return "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in " _.-") else f"#{ord(ch)};" for ch in text
    )


# One drawing per compiled graph: get_graph() walks every node and edge, and
# the thread page asks on each point it shows. Weak keys, so a graph rebuilt
# from a changed langgraph.json takes its old drawing with it.
_DRAWINGS: weakref.WeakKeyDictionary[Any, tuple[list[str], dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def mermaid(graph, highlight: list[str]) -> str:
    """The graph as Mermaid source, with the given nodes marked (drawn once
    per graph, marked per call)."""
    try:
        lines, ids = _DRAWINGS[graph]
    except KeyError:
        lines, ids = _DRAWINGS.setdefault(graph, _drawing(graph))
    except TypeError:  # a graph object that can't be weakly referenced
        lines, ids = _drawing(graph)
    if not lines:
        return ""
    marked = [ids[node] for node in dict.fromkeys(highlight) if node in ids]
    if marked:
        lines = [*lines, "\tclassDef next fill:#fde68a,stroke:#b45309,stroke-width:2px;"]
        lines += [f"\tclass {node_id} next;" for node_id in marked]
    return "\n".join(lines) + "\n"


def _drawing(graph) -> tuple[list[str], dict[str, str]]:
    """The Mermaid lines of the graph and each node's Mermaid id.

    LangGraph's draw_mermaid() writes node names into the source as they are;
    names are the graph author's text, so here each node gets an id of its
    own (its name, when that is a plain identifier) and its name goes in a
    quoted label, as entity codes where it is not plain. A name with `<`,
    quotes or brackets then renders as text, cannot break the diagram, and
    can be marked like any other."""
    try:
        drawn = graph.get_graph()
        first, last = drawn.first_node(), drawn.last_node()
    except Exception:  # a graph LangGraph can't draw still has its timeline
        return [], {}
    ids = _mermaid_ids(list(drawn.nodes))
    lines = ["---", "config:", "  flowchart:", "    curve: linear", "---", "graph TD;"]
    for key, node in drawn.nodes.items():
        notes = [f"{k} = {v}" for k, v in (node.metadata or {}).items() if isinstance(v, str)]
        label = "<br>".join(_mermaid_text(line) for line in [node.name, *notes])
        label = f'"{label}"'
        if first is not None and key == first.id:
            lines.append(f"\t{ids[key]}([{label}]):::first;")
        elif last is not None and key == last.id:
            lines.append(f"\t{ids[key]}([{label}]):::last;")
        else:
            lines.append(f"\t{ids[key]}({label});")
    for edge in drawn.edges:
        arrow = "-.->" if edge.conditional else "-->"
        if edge.data is not None:
            arrow += f'|"{_mermaid_text(str(edge.data))}"|'
        lines.append(f"\t{ids[edge.source]} {arrow} {ids[edge.target]};")
    # No line-height here: Mermaid writes class styles inline with
    # !important, which user style sheets can't adjust (WCAG 1.4.12);
    # site.css sets it.
    lines += [
        "\tclassDef default fill:#f2f0ff;",
        "\tclassDef first fill-opacity:0;",
        "\tclassDef last fill:#bfb6fc;",
    ]
    return lines, ids
