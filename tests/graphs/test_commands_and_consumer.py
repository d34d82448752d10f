"""startrun, and the worker consumer on a real channel layer."""

import asyncio
import functools
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator
from django.core.management import CommandError, call_command
from django.test import override_settings

from graphs import worker
from graphs.consumers import GraphRunsConsumer
from graphs.events import WORKERS_GROUP
from graphs.models import Checkpoint, Run
from reviews.models import ReviewTask
from tests.graphs.test_worker import state_of

AGENTS = Path(__file__).parent / "agents" / "langgraph.json"


def test_startrun_queues_and_prints_the_thread(transactional_db):
    out = StringIO()
    call_command(
        "startrun", "drafting", "--input", '{"topic": "cli"}', "--title", "From the CLI", stdout=out
    )
    run = Run.objects.get()
    assert out.getvalue().strip() == run.thread_id
    assert (run.kind, run.status, run.payload) == ("start", "queued", {"topic": "cli"})
    assert run.thread.title == "From the CLI"


def test_startrun_refuses_bad_input(transactional_db):
    with pytest.raises(CommandError, match="no graph named 'nope'"):
        call_command("startrun", "nope")
    with pytest.raises(CommandError, match="--input is not valid JSON"):
        call_command("startrun", "drafting", "--input", "{topic")
    assert not Run.objects.exists()


def test_startrun_execute_runs_to_the_interrupt(transactional_db):
    err = StringIO()
    call_command(
        "startrun",
        "drafting",
        "--input",
        '{"topic": "now"}',
        "--execute",
        stdout=StringIO(),
        stderr=err,
    )
    assert Run.objects.get().status == Run.Status.INTERRUPTED
    assert "interrupted" in err.getvalue()
    assert ReviewTask.objects.get().kind == "feedback"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_consumer_wakes_and_executes_queued_runs(transactional_db):
    run = await sync_to_async(Run.enqueue)(
        graph_name="parallel", kind=Run.Kind.START, payload={"answers": []}
    )
    app = ApplicationCommunicator(
        GraphRunsConsumer.as_asgi(), {"type": "channel", "channel": "graph-runs"}
    )
    await app.send_input({"type": "runs.wake"})
    status = Run.Status.QUEUED
    for _ in range(200):
        status = await sync_to_async(lambda: Run.objects.get(pk=run.pk).status)()
        if status not in Run.ACTIVE:
            break
        await asyncio.sleep(0.05)
    app.stop()
    assert status == Run.Status.INTERRUPTED
    assert await sync_to_async(ReviewTask.objects.count)() == 2


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_a_cancel_from_another_process_stops_the_consumers_run_at_once(
    transactional_db, monkeypatch
):
    """The worker process hears of the cancel from the workers group while
    its run executes, not at its next lease renewal."""
    # No renewal for twenty minutes: only the message can stop the run.
    monkeypatch.setitem(worker.work.__kwdefaults__, "lease", timedelta(hours=1))
    # Not the thread the consumer's run executes in, which is busy with it.
    elsewhere = functools.partial(sync_to_async, thread_sensitive=False)
    steps = 400  # twenty seconds of steps
    run = await elsewhere(Run.enqueue)(
        graph_name="slow",
        kind=Run.Kind.START,
        payload={"done": [], "delay": 0.05, "steps": steps},
    )
    app = ApplicationCommunicator(
        GraphRunsConsumer.as_asgi(), {"type": "channel", "channel": "graph-runs"}
    )
    await app.send_input({"type": "runs.wake"})
    checkpoints = Checkpoint.objects.filter(thread_id=run.thread_id)
    for _ in range(600):
        if await elsewhere(checkpoints.count)() >= 3:  # two steps in
            break
        await asyncio.sleep(0.02)

    # Another run queued meanwhile wakes the worker: the wake-up must not
    # hold the cancel up until the run ends.
    await app.send_input({"type": "runs.wake"})
    # What Run.cancel does in another process: the row, then the message.
    cancelled = await elsewhere(
        lambda: Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.CANCELLED
        )
    )()
    assert cancelled == 1
    await get_channel_layer().group_send(
        WORKERS_GROUP, {"type": "run.cancelled", "run": run.pk, "database": "default"}
    )
    for _ in range(1200):
        stopped = await elsewhere(lambda: Run.objects.get(pk=run.pk))()
        if not stopped.stopping:  # the worker let the thread go
            break
        await asyncio.sleep(0.05)
    app.stop()
    assert not stopped.stopping
    done = await elsewhere(lambda: state_of(stopped).values["done"])()
    assert len(done) < steps
