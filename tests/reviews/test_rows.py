"""The rows tests.reviews.rows makes are those the worker leaves.

Each case runs the real graph through the worker to its stop, makes the same
stop with `stopped`, and compares what the pages read of both: the thread, the
run, every checkpoint as LangGraph reads it back (values, next nodes, tasks
and their interrupts, metadata), the pending writes, the review tasks and the
audit trail. Ids a run draws anew (checkpoints, tasks, interrupts, messages,
tool calls) are compared by where they are used. Both stops are then decided
alike and resumed by the worker, and must end alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from graphs.interrupts import json_safe
from graphs.models import Checkpoint, CheckpointWrite, Run, Thread
from graphs.worker import RUN_KEY, compiled_graph
from reviews.actions import tasks as task_actions
from reviews.models import AuditEvent
from tests.reviews.conftest import finish, pending, start
from tests.reviews.rows import stopped

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
FEEDBACK = {"type": "answer", "value": {"approved": False, "tone": "playful", "notes": "ok"}}

# Per payload shape the pages show: (graph, input, run fields, the decision
# each task gets, the graphs config that has the graph).
CASES = {
    "agent-inbox-call": ("support", REFUND, {}, [{"type": "accept"}], None),
    "hitl-batched-turn": (
        "tool_agent",
        FLIGHT,
        {},
        [{"type": "approve"}, {"type": "reject", "message": "Not by card."}],
        None,
    ),
    "response-schema": ("drafting", {"topic": "Rows"}, {}, [FEEDBACK], None),
    "breakpoint": (
        "drafting",
        {"topic": "Rows"},
        {"interrupt_before": ["ask_feedback"]},
        [{"type": "continue"}],
        None,
    ),
    "hitl-per-call": (
        "per_call",
        FLIGHT,
        {},
        [{"type": "approve"}, {"type": "reject", "message": "Not by card."}],
        AGENTS,
    ),
    "subgraph": ("nested", {"text": "hello"}, {}, [FEEDBACK | {"value": "yes"}], AGENTS),
}
# What differs between any two runs, and what the test relates instead.
DRAWN = {"id", "tool_call_id", "run_id", "created_at", "started_at", "finished_at", "thread"}
IDS = ("checkpoint_id", "checkpoint_ns", "namespace", "interrupt_id", "task_id")


class Canon:
    """Replaces the ids one thread's run drew by their order of first use, so
    two runs compare equal when they use their ids in the same places."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict) and key == "parents":  # namespace -> checkpoint id
            return sorted(
                (self(k, "checkpoint_ns"), self(v, "checkpoint_id")) for k, v in value.items()
            )
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v, key) for v in value]
        if isinstance(value, str) and (key in DRAWN or key in IDS or key.endswith("_id")):
            return self.seen.setdefault(value, f"<{key} {len(self.seen)}>")
        return value


def fields(row, skip=()) -> dict[str, Any]:
    return {
        f.attname: getattr(row, f.attname)
        for f in row._meta.concrete_fields
        if f.attname not in {"id", "thread_id", *skip}
    }


def picture(thread_id: str) -> dict[str, Any]:
    """Everything the pages and a resume read of a stopped thread."""
    canon = Canon()
    thread = Thread.objects.get(pk=thread_id)
    (run,) = Run.objects.filter(thread=thread)
    graph = compiled_graph(thread.graph_name)
    config = {"configurable": {"thread_id": thread_id}}
    history = []
    namespaces = Checkpoint.objects.filter(thread=thread).values_list("checkpoint_ns", flat=True)
    for ns in ["", *sorted(set(namespaces) - {""})]:
        snapshots = graph.checkpointer.list(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
        )
        history += [
            {
                "checkpoint_ns": ns,
                "values": json_safe(s.checkpoint["channel_values"]),
                "metadata": {**s.metadata, RUN_KEY: s.metadata.get(RUN_KEY) == run.pk},
            }
            for s in snapshots
        ]
    states = [
        {
            "values": json_safe(s.values),
            "next": s.next,
            "metadata": {**s.metadata, RUN_KEY: s.metadata.get(RUN_KEY) == run.pk},
            "tasks": [
                {
                    "name": t.name,
                    "path": t.path,
                    "interrupts": [
                        {"interrupt_id": i.id, "value": json_safe(i.value)} for i in t.interrupts
                    ],
                }
                for t in s.tasks
            ],
            "checkpoint_id": s.config["configurable"]["checkpoint_id"],
            "parent_checkpoint_id": (s.parent_config or {})
            .get("configurable", {})
            .get("checkpoint_id"),
        }
        for s in graph.get_state_history(config)
    ]
    stop = graph.get_state(config, subgraphs=True)
    return canon(
        {
            "thread": fields(thread, skip={"created_at"}),
            "run": fields(run, skip=DRAWN),
            "states": states,
            "stop": {
                "checkpoint_id": stop.config["configurable"]["checkpoint_id"],
                "interrupts": [
                    {"interrupt_id": i.id, "value": json_safe(i.value)} for i in stop.interrupts
                ],
                "next": stop.next,
            },
            "checkpoints in every namespace": history,
            "writes": [
                fields(w, skip={"blob"})
                for w in CheckpointWrite.objects.filter(thread_id=thread_id).order_by(
                    "checkpoint_ns", "checkpoint_id", "task_path", "idx"
                )
            ],
            "tasks": [fields(t, skip=DRAWN | {"run_id"}) for t in pending(thread_id)],
            "audit": [
                fields(e, skip=DRAWN | {"hash", "prev_hash", "task_id", "run_id"})
                for e in AuditEvent.objects.filter(thread_id=thread_id).order_by("pk")
            ],
        }
    )


def ending(thread_id: str, decisions: list[dict[str, Any]], user) -> dict[str, Any]:
    tasks = pending(thread_id)
    task_actions.decide(tasks, dict(zip([t.pk for t in tasks], decisions, strict=True)), user=user)
    finish()
    thread = Thread.objects.get(pk=thread_id)
    state = compiled_graph(thread.graph_name).get_state({"configurable": {"thread_id": thread_id}})
    runs = list(Run.objects.filter(thread=thread).order_by("pk").values_list("kind", "status"))
    return Canon()({"values": json_safe(state.values), "next": state.next, "runs": runs})


@pytest.mark.parametrize("case", CASES)
def test_a_made_stop_is_the_stop_the_worker_leaves(case, rita):
    graph_name, payload, run_fields, decisions, graphs = CASES[case]
    with override_settings(**({"HITL_GRAPHS_CONFIG": graphs} if graphs else {})):
        ran = start(graph_name, payload, **run_fields)
        made = stopped(graph_name, payload, **run_fields)
        assert picture(made) == picture(ran)
        assert ending(made, decisions, rita) == ending(ran, decisions, rita)
