"""startrun, and the worker consumer on a real channel layer."""

import asyncio
from io import StringIO
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.core.management import CommandError, call_command
from django.test import override_settings

from graphs.consumers import GraphRunsConsumer
from graphs.models import Run
from reviews.models import ReviewTask

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
