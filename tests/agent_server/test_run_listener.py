"""A request waiting on a run listens to the run's own group alone: its
worker's stream events and the run's new status reach it there, and its
thread's other events (every checkpoint of every run on it) don't."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from agent_server.streaming import RunListener
from graphs import events
from graphs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def queued_run() -> Run:
    return Run.enqueue(graph_name="support", kind=Run.Kind.START, payload={})


@sync_to_async
def row_says(run: Run, status: str) -> None:
    Run.objects.filter(pk=run.pk).update(status=status)


def publish_a_step_and_the_stop(run: Run) -> None:
    """A checkpoint (to the thread's group), a stream event and the run's stop."""
    events.publish_progress(
        run, step=1, source="loop", checkpoint_id="c1", nodes=["a"], namespace=()
    )
    events.publish_chunk(run, "values", "{}")
    events.publish_run(run, Run.Status.INTERRUPTED)


async def test_a_waiting_request_hears_the_run_end_in_the_runs_group():
    run = await queued_run()
    async with RunListener(run.run_id) as listener:
        publish_a_step_and_the_stop(run)
        # Were the status not heard, the listener would read the row, and
        # end on what it says, without the message.
        await row_says(run, Run.Status.INTERRUPTED)
        heard = [message async for message in listener.messages(run.pk)]
    assert [m["type"] for m in heard] == ["run.chunk", "run.status"]
    assert heard[-1]["status"] == Run.Status.INTERRUPTED and heard[-1]["run"] == run.pk


async def test_the_threads_other_events_never_reach_the_listeners_channel():
    run = await queued_run()
    async with RunListener(run.run_id) as listener:
        publish_a_step_and_the_stop(run)
        # Read the channel itself, not `messages`, which would drop a thread
        # event it was sent. Events arrive in the order they were published,
        # so everything sent before the status is in hand when it comes.
        arrived = []
        while not arrived or arrived[-1]["type"] != "run.status":
            arrived.append(await listener.layer.receive(listener.channel))
    assert [m["type"] for m in arrived] == ["run.chunk", "run.status"]
