"""Assistants, threads, states and checkpoints as LangGraph's Agent Server
writes them (langgraph_api.state and the in-memory runtime's rows), so
langgraph-sdk, RemoteGraph and Agent Inbox read this server as they read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langgraph.types import StateSnapshot

from agent_server.models import Assistant, AssistantVersion
from graphs.interrupts import json_safe


def assistant(row: Assistant) -> dict[str, Any]:
    return {
        "assistant_id": str(row.assistant_id),
        "graph_id": row.graph_id,
        "config": row.config,
        "context": row.context,
        "metadata": row.metadata,
        "name": row.name,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
        "description": row.description,
    }


def assistant_version(row: AssistantVersion) -> dict[str, Any]:
    return {
        "assistant_id": str(row.assistant_id),
        "version": row.version,
        "graph_id": row.graph_id,
        "config": row.config,
        "context": row.context,
        "metadata": row.metadata,
        "created_at": row.created_at,
        "name": row.name,
        "description": row.description,
    }


def checkpoint(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint's address from a RunnableConfig (None when it names none)."""
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    found: dict[str, Any] = {
        "checkpoint_id": configurable["checkpoint_id"],
        "thread_id": configurable["thread_id"],
    }
    if "checkpoint_ns" in configurable:
        found["checkpoint_ns"] = configurable["checkpoint_ns"] or ""
    if "checkpoint_map" in configurable:
        found["checkpoint_map"] = configurable["checkpoint_map"]
    return found


def interrupt(found: Any) -> dict[str, Any]:
    shaped: dict[str, Any] = {"id": found.id, "value": json_safe(found.value)}
    schema = getattr(found, "response_schema", None)
    if schema is not None:
        shaped["response_schema"] = json_safe(schema)
    return shaped


def state(snapshot: StateSnapshot) -> dict[str, Any]:
    """A StateSnapshot as a ThreadState (get_state, get_history)."""
    metadata = dict(snapshot.metadata) if snapshot.metadata is not None else None
    if metadata is not None and metadata.get("checkpoint_ns") == "":
        metadata.pop("checkpoint_ns")
    return {
        "values": json_safe(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "path": json_safe(task.path),
                "error": json_safe(task.error),
                "interrupts": [interrupt(i) for i in task.interrupts],
                "checkpoint": task.state["configurable"]
                if task.state is not None and not isinstance(task.state, StateSnapshot)
                else None,
                "state": state(task.state) if isinstance(task.state, StateSnapshot) else None,
                "result": json_safe(getattr(task, "result", None)),
            }
            for task in snapshot.tasks
        ],
        "metadata": json_safe(metadata),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint(snapshot.config),
        "parent_checkpoint": checkpoint(snapshot.parent_config),
        "interrupts": [interrupt(i) for i in getattr(snapshot, "interrupts", ()) or ()],
        # Deprecated by LangGraph, still sent (older clients read them).
        "checkpoint_id": (snapshot.config or {}).get("configurable", {}).get("checkpoint_id"),
        "parent_checkpoint_id": (snapshot.parent_config or {})
        .get("configurable", {})
        .get("checkpoint_id"),
    }


EMPTY_STATE: dict[str, Any] = {
    "values": {},
    "next": [],
    "tasks": [],
    "metadata": None,
    "created_at": None,
    "checkpoint": None,
    "parent_checkpoint": None,
    "interrupts": [],
    "checkpoint_id": None,
    "parent_checkpoint_id": None,
}


def thread_interrupts(snapshot: StateSnapshot) -> dict[str, list[dict[str, Any]]]:
    """Task id -> its pending interrupts: what Agent Inbox reads on a thread."""
    return {
        task.id: [interrupt(i) for i in task.interrupts]
        for task in snapshot.tasks
        if task.interrupts
    }


def thread(
    *,
    thread_id: str,
    created_at: datetime,
    updated_at: datetime,
    metadata: dict[str, Any],
    status: str,
    config: dict[str, Any],
    snapshot: StateSnapshot | None,
    error: Any = None,
) -> dict[str, Any]:
    """A Thread row. One that has no checkpoint yet has null values and no
    `error` or `interrupts`, as LangGraph's server makes them."""
    state_updated_at = created_at
    if snapshot is not None and snapshot.created_at:
        state_updated_at = datetime.fromisoformat(snapshot.created_at)
    shaped: dict[str, Any] = {
        "thread_id": thread_id,
        "created_at": created_at,
        "updated_at": max(updated_at, state_updated_at),
        "state_updated_at": state_updated_at,
        "metadata": metadata,
        "status": status,
        "config": config,
        "values": None,
    }
    if snapshot is not None and snapshot.created_at:
        shaped["values"] = json_safe(snapshot.values)
        shaped["error"] = error
        shaped["interrupts"] = thread_interrupts(snapshot)
    return shaped
