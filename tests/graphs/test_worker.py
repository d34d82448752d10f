"""The worker drives real graphs from queued runs to their next stop, turns
their interrupts into review requests, and resumes them with decisions."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.test import override_settings
from langchain_core.messages import ToolMessage

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.interrupts import DecisionError, pending_requests, resume_value, validate_decision
from graphs.models import Checkpoint, Run
from graphs.registry import get_registry
from graphs.signals import run_interrupted
from graphs.worker import RUN_KEY, run_config, work

AGENTS = Path(__file__).parent / "agents" / "langgraph.json"


@pytest.fixture
def stops(transactional_db):
    """Review requests per run, as the run_interrupted hook hands them out.
    The worker reads where a run stopped from the run's own stream; each stop
    must say exactly what the saved state says."""
    seen: dict[int, list[dict]] = {}
    # The worker catches what a receiver raises (a run fails, it goes on), so
    # what differs is collected here and asserted after the test.
    differences: list[tuple] = []

    def receiver(sender, run, requests, checkpoint_id, **kwargs):
        seen[run.pk] = [r.as_dict() for r in requests]
        saved = state_of(run, subgraphs=True)
        if checkpoint_id != saved.config["configurable"]["checkpoint_id"]:
            differences.append((run.pk, checkpoint_id, saved.config))
        expected = [r.as_dict() for r in pending_requests(saved)]
        if seen[run.pk] != expected:
            differences.append((run.pk, seen[run.pk], expected))

    run_interrupted.connect(receiver)
    try:
        with override_settings(HITL_GRAPHS_CONFIG=AGENTS):
            yield seen
    finally:
        run_interrupted.disconnect(receiver)
    assert not differences, "the stop the worker read differs from the saved state"


def state_of(run: Run, *, subgraphs: bool = False):
    graph = get_registry().get(run.graph_name).compile(DjangoCheckpointSaver())
    return graph.get_state({"configurable": {"thread_id": run.thread_id}}, subgraphs=subgraphs)


def decide(run: Run, requests: list[dict], decisions: list[dict]) -> Run:
    """Validate decisions and queue the resume, as the review pages will."""
    checked = [validate_decision(r, d) for r, d in zip(requests, decisions, strict=True)]
    value = resume_value(requests, checked)
    return Run.enqueue(
        graph_name=run.graph_name,
        kind=Run.Kind.RESUME,
        thread_id=run.thread_id,
        payload={"value": value},
    )


def test_agent_inbox_refund_edited_keeps_number_types(stops):
    run = Run.enqueue(
        graph_name="support",
        kind=Run.Kind.START,
        payload={"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]},
    )
    assert work("w1") == 1
    run.refresh_from_db()
    assert run.status == Run.Status.INTERRUPTED and run.finished_at
    (request,) = stops[run.pk]
    assert (request["shape"], request["kind"], request["tool_name"]) == (
        "agent_inbox",
        "tool_edit",
        "refund",
    )
    assert request["allowed"] == [
        "accept",
        "edit",
        "response",
    ]  # the graph forbids ignoring refunds
    assert request["args"] == {"order_id": "A-1001", "amount": 120.0, "reason": "customer request"}
    with pytest.raises(DecisionError, match="'ignore' is not allowed"):
        validate_decision(request, {"type": "ignore"})

    resume = decide(
        run, [request], [{"type": "edit", "args": {"order_id": "A-1001", "amount": 100}}]
    )
    assert work("w1") == 1
    resume.refresh_from_db()
    assert resume.status == Run.Status.SUCCEEDED
    executed = state_of(run).values["executed"]
    assert executed == [
        {
            "tool": "refund",
            "args": {"order_id": "A-1001", "amount": 100},
            "result": "Refunded 100.00 on order A-1001",
        }
    ]
    assert type(executed[0]["args"]["amount"]) is int
    # Every checkpoint the runs wrote names its run.
    runs_seen = {
        c.metadata.get(RUN_KEY) for c in Checkpoint.objects.filter(thread_id=run.thread_id)
    }
    assert {run.pk, resume.pk} <= runs_seen


def test_batched_middleware_one_request_per_call_resumed_in_order(stops):
    run = Run.enqueue(
        graph_name="tool_agent",
        kind=Run.Kind.START,
        payload={
            "messages": [{"role": "user", "content": "Book me a flight to Porto for 2 people"}]
        },
    )
    work("w1")
    requests = stops[run.pk]
    assert [(r["tool_name"], r["action_index"]) for r in requests] == [
        ("book_flight", 0),
        ("charge_card", 1),
    ]
    assert requests[0]["allowed"] == ["approve", "edit", "reject"]
    assert requests[1]["allowed"] == ["approve", "edit", "reject", "respond"]
    assert len({r["interrupt_id"] for r in requests}) == 1

    decide(
        run,
        requests,
        [
            {"type": "edit", "args": {"flight": "FL-204", "passengers": 3}},
            {"type": "reject", "message": "Ask the customer about the price first"},
        ],
    )
    work("w1")
    messages = state_of(run).values["messages"]
    tools = {m.name: m.content for m in messages if isinstance(m, ToolMessage)}
    assert "Booked 3 seat(s) on FL-204" in tools["book_flight"]
    assert "Ask the customer about the price first" in tools["charge_card"]
    assert "Charged" not in tools["charge_card"]


def test_per_call_middleware_resumed_by_interrupt_id(stops):
    run = Run.enqueue(
        graph_name="per_call",
        kind=Run.Kind.START,
        payload={
            "messages": [{"role": "user", "content": "Book me a flight to Rome for 1 people"}]
        },
    )
    work("w1")
    requests = stops[run.pk]
    assert {r["shape"] for r in requests} == {"hitl_per_call"}
    by_tool = {r["tool_name"]: r for r in requests}
    assert by_tool["charge_card"]["allowed"] == ["approve", "reject"]
    assert len({r["interrupt_id"] for r in requests}) == 2

    answers = {
        by_tool["book_flight"]["interrupt_id"]: resume_value(
            [by_tool["book_flight"]],
            [validate_decision(by_tool["book_flight"], {"type": "approve"})],
        ),
        by_tool["charge_card"]["interrupt_id"]: resume_value(
            [by_tool["charge_card"]],
            [validate_decision(by_tool["charge_card"], {"type": "reject", "message": "no"})],
        ),
    }
    Run.enqueue(
        graph_name="per_call",
        kind=Run.Kind.RESUME,
        thread_id=run.thread_id,
        payload={"by_interrupt_id": answers},
    )
    work("w1")
    tools = {
        m.name: m.content for m in state_of(run).values["messages"] if isinstance(m, ToolMessage)
    }
    assert tools["book_flight"].startswith("Booked 1 seat(s)")
    assert "Charged" not in tools["charge_card"]


def test_parallel_interrupts_resumed_together(stops):
    run = Run.enqueue(graph_name="parallel", kind=Run.Kind.START, payload={"answers": []})
    work("w1")
    requests = stops[run.pk]
    assert sorted(r["description"] for r in requests) == ["question a", "question b"]
    answers = {
        r["interrupt_id"]: resume_value(
            [r], [validate_decision(r, {"type": "answer", "value": r["description"][-1]})]
        )
        for r in requests
    }
    resume = Run.enqueue(
        graph_name="parallel",
        kind=Run.Kind.RESUME,
        thread_id=run.thread_id,
        payload={"by_interrupt_id": answers},
    )
    work("w1")
    resume.refresh_from_db()
    assert resume.status == Run.Status.SUCCEEDED
    assert sorted(state_of(run).values["answers"]) == ["a=a", "b=b"]


def test_feedback_schema_then_breakpoint_then_continue(stops):
    run = Run.enqueue(graph_name="drafting", kind=Run.Kind.START, payload={"topic": "refunds"})
    work("w1")
    (feedback,) = stops[run.pk]
    assert (feedback["shape"], feedback["kind"]) == ("schema", "feedback")
    assert feedback["description"] == "How should this draft change before it is published?"
    with pytest.raises(DecisionError, match="answer at tone: 'angry' is not one of"):
        validate_decision(
            feedback, {"type": "answer", "value": {"approved": False, "tone": "angry"}}
        )
    with pytest.raises(DecisionError, match="'approved' is a required property"):
        validate_decision(feedback, {"type": "answer", "value": {"tone": "formal"}})

    resume = decide(
        run,
        [feedback],
        [{"type": "answer", "value": {"approved": False, "tone": "playful", "max_words": 10}}],
    )
    work("w1")
    (breakpoint,) = stops[resume.pk]
    assert (breakpoint["shape"], breakpoint["node"]) == ("breakpoint", "publish")
    assert "published" not in state_of(run).values

    cont = Run.enqueue(graph_name="drafting", kind=Run.Kind.CONTINUE, thread_id=run.thread_id)
    work("w1")
    cont.refresh_from_db()
    assert cont.status == Run.Status.SUCCEEDED
    assert (
        state_of(run).values["published"]
        == "Guess what? Announcing: refunds. Here is what changes and why"
    )


def test_failed_run_keeps_error_and_traceback(stops):
    run = Run.enqueue(graph_name="broken", kind=Run.Kind.START, payload={"answers": []})
    work("w1")
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == "ValueError: the tool is down"
    assert "_boom" in run.traceback and run.finished_at


def test_retried_run_continues_instead_of_resending_input(stops):
    """A run reclaimed after its worker died continues from its own last checkpoint."""
    run = Run.enqueue(
        graph_name="slow", kind=Run.Kind.START, payload={"done": [], "delay": 0, "steps": 3}
    )
    graph = get_registry().get("slow").compile(DjangoCheckpointSaver())
    config = {"configurable": {"thread_id": run.thread_id}, "metadata": {RUN_KEY: run.pk}}
    # The first attempt got as far as two steps before its worker died.
    graph.invoke({"done": [], "delay": 0, "steps": 3}, config, interrupt_after=["step"])
    graph.invoke(None, config, interrupt_after=["step"])
    Run.objects.filter(pk=run.pk).update(attempts=1)
    work("w2")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Run.Status.INTERRUPTED, 2)
    assert state_of(run).values["done"] == [0, 1, 2]  # not restarted from an empty list


# Twenty seconds of steps: a run that is not stopped is seen to run them all.
STEPS = 100


def slow_run(graph: str = "slow") -> Run:
    return Run.enqueue(
        graph_name=graph, kind=Run.Kind.START, payload={"done": [], "delay": 0.2, "steps": STEPS}
    )


def work_while(run: Run, lease: timedelta, meanwhile) -> None:
    """Work the queue; once the run is two steps in, `meanwhile` runs in another thread."""

    def later() -> None:
        # The input's checkpoint and one per step.
        while Checkpoint.objects.filter(thread_id=run.thread_id).count() < 3:
            time.sleep(0.02)
        meanwhile()

    other = threading.Thread(target=later)
    other.start()
    assert work("w1", lease=lease) == 1
    other.join()
    run.refresh_from_db()


def test_worker_that_lost_its_lease_stops_and_records_nothing(stops):
    """A worker too slow to renew finds its run taken over: it stops at the
    next step and leaves the run, untouched, to its new owner."""
    run = slow_run()
    # Renewed every 0.1 s: the worker has renewed before the takeover.
    work_while(
        run,
        timedelta(seconds=0.3),
        lambda: Run.objects.filter(pk=run.pk).update(worker_id="other-worker"),
    )
    assert (run.status, run.worker_id, run.finished_at) == (
        Run.Status.RUNNING,
        "other-worker",
        None,
    )
    assert run.pk not in stops  # no review requests from the worker that lost it
    assert len(state_of(run).values["done"]) < STEPS  # it stopped early


def test_cancelled_elsewhere_the_worker_stops_at_its_next_renewal(stops):
    """A cancel from another process: this one hears of it when its lease
    renewal finds the run no longer running."""
    run = slow_run()
    work_while(
        run,
        timedelta(seconds=0.3),
        lambda: Run.objects.filter(pk=run.pk).update(status=Run.Status.CANCELLED),
    )
    assert run.status == Run.Status.CANCELLED and not run.stopping  # the worker let go
    assert run.pk not in stops  # it asked nobody anything
    assert len(state_of(run).values["done"]) < STEPS  # it stopped early


@pytest.mark.parametrize("graph", ["slow", "slow_async"])
def test_a_cancel_made_in_the_workers_process_stops_the_run_at_once(stops, graph):
    """As in the embedded server: no waiting for the next lease renewal; an
    async graph, driven on the event loop, stops as soon."""
    run = slow_run(graph)

    def cancel() -> None:
        with transaction.atomic():  # announced on commit, as the pages do
            assert Run.objects.get(pk=run.pk).cancel()

    # No renewal for twenty minutes: only the announcement can stop the run.
    work_while(run, timedelta(hours=1), cancel)
    assert run.status == Run.Status.CANCELLED and not run.stopping
    assert len(state_of(run).values["done"]) < STEPS


def test_interrupt_inside_a_subgraph_is_asked_and_resumed(stops):
    run = Run.enqueue(graph_name="nested", kind=Run.Kind.START, payload={"text": "  hello "})
    work("w1")
    (request,) = stops[run.pk]
    assert (request["shape"], request["description"]) == ("json", "Is this text fine?")
    resume = decide(run, [request], [{"type": "answer", "value": "yes"}])
    work("w1")
    resume.refresh_from_db()
    assert resume.status == Run.Status.SUCCEEDED
    assert state_of(run).values["checked"] == "hello: yes"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_the_stop_is_read_from_the_stream_not_from_the_saver(transactional_db, monkeypatch):
    """The way from interrupt() to the reviewers reads nothing back: the
    only checkpoint read of a new run is LangGraph's own, when it starts."""
    reads = []
    get_tuple = DjangoCheckpointSaver.get_tuple

    def counted(self, config):
        reads.append(config["configurable"].get("checkpoint_id"))
        return get_tuple(self, config)

    monkeypatch.setattr(DjangoCheckpointSaver, "get_tuple", counted)
    run = Run.enqueue(graph_name="drafting", kind=Run.Kind.START, payload={"topic": "refunds"})
    work("w1")
    run.refresh_from_db()
    assert run.status == Run.Status.INTERRUPTED
    assert reads == [None]


def test_each_step_begins_after_the_checkpoint_before_it_is_saved(stops):
    """Durability "sync": a step's side effects never run ahead of the
    checkpoint a restarted worker would continue from."""
    run = Run.enqueue(graph_name="witnessed", kind=Run.Kind.START, payload={"saved": []})
    work("w1")
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED
    # The input checkpoint, then one per step: step k sees k + 2 saved.
    assert state_of(run).values["saved"] == list(range(2, 10))


def test_a_run_that_stops_again_where_it_stopped_asks_nothing_twice(stops):
    from reviews.models import ReviewTask

    fresh: dict[int, bool] = {}

    def note(sender, run, new_checkpoint, **kwargs):
        fresh[run.pk] = new_checkpoint

    run_interrupted.connect(note)
    try:
        run = Run.enqueue(graph_name="echo", kind=Run.Kind.START, payload={"text": "hi"})
        work("w1")
        # Continuing without an answer runs the asking node again: it asks
        # the same question at the same checkpoint.
        again = Run.enqueue(graph_name="echo", kind=Run.Kind.CONTINUE, thread_id=run.thread_id)
        work("w1")
    finally:
        run_interrupted.disconnect(note)
    again.refresh_from_db()
    assert again.status == Run.Status.INTERRUPTED
    assert fresh == {run.pk: True, again.pk: False}
    assert stops[again.pk] == stops[run.pk]
    (task,) = ReviewTask.objects.filter(thread_id=run.thread_id)
    assert (task.run_id, task.status) == (run.pk, ReviewTask.Status.PENDING)


def test_a_breakpoint_after_a_node_stops_before_the_next(stops):
    run = Run.enqueue(
        graph_name="drafting",
        kind=Run.Kind.START,
        payload={"topic": "refunds"},
        interrupt_after=["write_draft"],
    )
    work("w1")
    (breakpoint,) = stops[run.pk]
    assert (breakpoint["shape"], breakpoint["node"]) == ("breakpoint", "ask_feedback")
    assert state_of(run).values["draft"].startswith("Announcing: refunds")


def test_a_worker_keeps_one_lease_heartbeat_across_its_looks_at_the_queue(stops):
    """Started once, not at each look at the queue (a thread started and
    joined per look cost a lone run ~4% of its time)."""
    for _ in range(2):
        Run.enqueue(
            graph_name="support",
            kind=Run.Kind.START,
            payload={"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]},
        )
        assert work("w-beat") == 1
    beating = [t for t in threading.enumerate() if t.name == "lease-w-beat"]
    assert len(beating) == 1 and beating[0].is_alive()


def _held_run(worker_id: str, lease: timedelta) -> Run:
    Run.enqueue(graph_name="support", kind=Run.Kind.START, payload={})
    return Run.objects.claim_next(worker_id, lease)


def _expires(run: Run):
    return Run.objects.values_list("lease_expires_at", flat=True).get(pk=run.pk)


def test_a_failed_lease_renewal_is_tried_again_and_the_run_kept(transactional_db, monkeypatch):
    """A database that refuses one renewal (locked, a dropped connection)
    neither ends the heartbeat nor lets the lease run out under a busy worker."""
    from django.db import OperationalError

    from graphs.worker import _heartbeat_of

    lease = timedelta(seconds=0.9)
    run = _held_run("w-flaky", lease)
    tried, renew = [], Run.renew_lease

    def once_locked(self, worker_id, lease):
        tried.append(worker_id)
        if len(tried) == 1:
            raise OperationalError("database is locked")
        return renew(self, worker_id, lease)

    monkeypatch.setattr(Run, "renew_lease", once_locked)
    heartbeat = _heartbeat_of("w-flaky", lease)
    before = _expires(run)
    heartbeat.hold(run)
    try:
        deadline = time.monotonic() + 30
        while _expires(run) == before:
            assert time.monotonic() < deadline, f"never renewed after a failure: {tried}"
            time.sleep(0.02)
        assert heartbeat.is_alive() and not heartbeat.must_stop.is_set()
    finally:
        heartbeat.hold(None)


def test_a_worker_that_cannot_renew_its_lease_stops_the_run_before_it_runs_out(
    transactional_db, monkeypatch
):
    """Another worker may take a run whose lease ran out: one that can't
    renew stops the run first, so it never runs twice at once."""
    from django.db import OperationalError

    from graphs.worker import _heartbeat_of

    lease = timedelta(seconds=0.9)
    run = _held_run("w-cut-off", lease)

    def locked(self, worker_id, lease):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Run, "renew_lease", locked)
    heartbeat = _heartbeat_of("w-cut-off", lease)
    heartbeat.hold(run)
    try:
        assert heartbeat.must_stop.wait(30), "kept running a run it could not renew"
        assert heartbeat.is_alive()
    finally:
        heartbeat.hold(None)


def test_langgraphs_own_config_keys_never_reach_the_graph():
    # However a run's config was stored (an older row, an assistant's), the
    # runtime's keys are not the asker's: a resume map would answer its
    # interrupts without a review.
    asked = {
        "configurable": {
            "__pregel_resume_map": {"i": "approve"},
            "checkpoint_id": "old",
            "thread_id": "other",
            # The identity LangGraph's server gives its caller, which graphs trust.
            "langgraph_auth_user_id": "admin",
            "langgraph_auth_permissions": ["finance"],
            "tenant": "acme",
        },
        "recursion_limit": 5,
    }
    config = run_config(Run(thread_id="t-1", graph_name="support", config=asked))
    assert config["configurable"] == {"tenant": "acme", "thread_id": "t-1"}
    assert config["recursion_limit"] == 5
