"""A request waiting on a run listens to the run's own group alone: its
worker's stream events and the run's new status reach it there, and its
thread's other events (every checkpoint of every run on it) don't."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async

from agent_server.streaming import RunListener
from graphs import events
from graphs.models import Run
from hitl_site.layers import RedisPubSubLayer
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
    from redis.asyncio import Redis

    layer = RedisPubSubLayer(hosts=[redis_url])
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


class _StillClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock never moves: whatever waits for a timer
    (a sleep, a timeout) waits for good, and only I/O and other tasks wake
    anything."""

    def time(self) -> float:
        return 0.0


def test_a_message_is_heard_as_it_arrives_not_at_a_timers_tick(redis_url):
    """On Redis pub/sub, a server whose last wait has ended is subscribed to
    nothing; the next wait subscribes, and its run's end must be heard as it
    arrives. A receiver that polls for a subscription (channels_redis' own
    sleeps a tenth of a second between looks) hears it only when its sleep
    ends: on a clock that stands still, never."""

    async def two_waits_in_turn() -> list[str]:
        layer = RedisPubSubLayer(hosts=[redis_url])
        heard = []
        try:
            for _ in range(2):
                channel = await layer.new_channel("langgraph-run.")
                await layer.send(channel, {"type": "run.status"})
                heard.append((await layer.receive(channel))["type"])
                # The wait ends: its channel unsubscribed (as RunListener
                # lets go of it), and the process is subscribed to nothing
                # once Redis has confirmed it.
                receiving = asyncio.ensure_future(layer.receive(channel))
                await asyncio.sleep(0)
                receiving.cancel()
                await asyncio.wait([receiving])
                pubsub = layer._get_layer()._shards[0]._pubsub
                while pubsub.subscribed:
                    await asyncio.sleep(0)
        finally:
            await layer.flush()
        return heard

    done: list[list[str]] = []
    loop = _StillClockLoop()

    def serve() -> None:
        done.append(loop.run_until_complete(two_waits_in_turn()))
        loop.close()

    # A daemon thread: a receiver that never hears would hang it, not pytest.
    serving = threading.Thread(target=serve, daemon=True)
    serving.start()
    serving.join(timeout=30)
    assert done == [["run.status", "run.status"]], "a message waited for a timer to be heard"
