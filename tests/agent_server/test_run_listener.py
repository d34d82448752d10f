"""A request waiting on a run listens to the run's own group alone: its
worker's stream events and the run's new status reach it there, and its
thread's other events (every checkpoint of every run on it) don't."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agent_server.streaming import RunListener
from graphs import events
from graphs.models import Run
from tests.servers import redis_missing_reason, require, start_redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def redis_url():
    require(redis_missing_reason())
    server = start_redis()
    yield server.url
    server.stop()


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


async def unsubscribed(redis, tries: int = 200) -> bool:
    """Whether Redis lists no channel of ours within a few seconds: an
    UNSUBSCRIBE reaches it a moment after the listener has ended."""
    for _ in range(tries):
        if await redis.pubsub_channels("asgi*") == []:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_listener_leaves_no_channel_subscribed_in_redis(redis_url):
    """On Redis pub/sub (scale-out), each wait's channel is unsubscribed once
    it has heard the run end: none is left behind, in Redis or in the
    server's layer, however many requests have waited."""
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from redis.asyncio import Redis

    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    redis = Redis.from_url(redis_url)
    try:
        for n in range(3):
            listener = RunListener(f"run-{n}")
            listener.layer = layer
            async with listener:
                await layer.send(listener.channel, {"type": "run.status"})
                assert (await layer.receive(listener.channel))["type"] == "run.status"
                assert await redis.pubsub_channels("asgi*") != []
            assert await unsubscribed(redis)
        assert layer._get_layer().channels == {}
    finally:
        await layer.flush()
        await redis.aclose()
