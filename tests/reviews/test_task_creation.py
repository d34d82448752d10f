"""The worker's stop creates review tasks through the reviews hook, once."""

from pathlib import Path

from django.test import override_settings

from graphs.models import Checkpoint, Run
from graphs.signals import run_interrupted
from graphs.worker import work
from reviews.models import ReviewTask

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_batched_interrupt_makes_one_task_per_action_exactly_once(transactional_db):
    run = Run.enqueue(
        graph_name="tool_agent",
        kind=Run.Kind.START,
        payload={
            "messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]
        },
    )
    work("w1")
    tasks = list(ReviewTask.objects.order_by("action_index"))
    assert [(t.tool_name, t.action_index, t.kind) for t in tasks] == [
        ("book_flight", 0, "tool_edit"),
        ("charge_card", 1, "tool_edit"),
    ]
    latest = (
        Checkpoint.objects.filter(thread_id=run.thread_id, checkpoint_ns="")
        .order_by("-checkpoint_id")
        .first()
    )
    assert {t.checkpoint_id for t in tasks} == {latest.checkpoint_id}
    assert tasks[1].args == {"amount": 360.0, "currency": "EUR"}
    assert all(t.status == ReviewTask.Status.PENDING and t.run_id == run.pk for t in tasks)

    # A retried stop (same thread, checkpoint, interrupt and action) adds nothing.
    from graphs.interrupts import requests_for

    again = requests_for(
        tasks[0].interrupt_id, {"action_requests": [{"name": "book_flight", "args": {}}]}
    )
    run_interrupted.send(sender=Run, run=run, requests=again, checkpoint_id=latest.checkpoint_id)
    assert ReviewTask.objects.count() == 2


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_breakpoint_task_names_the_node(transactional_db):
    Run.enqueue(
        graph_name="drafting",
        kind=Run.Kind.START,
        payload={"topic": "x"},
        interrupt_before=["ask_feedback"],
    )
    work("w1")
    (task,) = ReviewTask.objects.all()
    assert (task.kind, task.shape, task.node) == ("breakpoint", "breakpoint", "ask_feedback")
    assert task.interrupt_id == "" and task.description == "Stopped before ask_feedback"
