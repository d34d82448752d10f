"""Queue events reach every open page of a process through one subscription."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from graphs.events import QUEUE_GROUP
from graphs.models import Run
from graphs.worker import work
from hitl_site.asgi import application
from hitl_site.layers import EmbeddedChannelLayer
from reviews import live, queue_hub
from reviews.models import ReviewTask
from reviews.queue_hub import QueueHub, hub_for, merged
from tests.reviews.test_consumer import ORIGIN, session_cookie
from tests.servers import redis_missing_reason, require, start_redis


def queue_event(text: str) -> dict:
    return {
        "type": "queue.changed",
        "removed": [],
        "count_html": f'<span id="pending-count">{text}</span>',
        "rows": [{"rules": [None], "html": f'<tr id="task-1"><td>{text}</td></tr>'}],
        "changed": [],
    }


async def open_page(cookie: bytes) -> WebsocketCommunicator:
    page = WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", cookie)])
    assert (await page.connect())[0]
    return page


async def test_one_membership_per_process_and_every_page_hears(transactional_db):
    cookie = await session_cookie()
    pages = [await open_page(cookie) for _ in range(5)]
    layer = get_channel_layer()
    # However many pages are open, the layer puts each event on one channel.
    assert list(layer.groups[QUEUE_GROUP]) == [hub_for(layer).channel]
    assert len(hub_for(layer).pages) == 5

    await layer.group_send(QUEUE_GROUP, queue_event("first"))
    for page in pages:
        message = await page.receive_from(timeout=5)
        assert message.startswith('<tbody id="queue-rows"') and "first" in message

    # A closed page leaves the hub; the others still hear the next event.
    await pages[0].disconnect()
    assert len(hub_for(layer).pages) == 4
    await layer.group_send(QUEUE_GROUP, queue_event("second"))
    for page in pages[1:]:
        assert "second" in await page.receive_from(timeout=5)
        await page.disconnect()
    assert not hub_for(layer).pages


async def test_a_failing_page_does_not_cost_the_others_their_events(transactional_db):
    cookie = await session_cookie()
    pages = [await open_page(cookie) for _ in range(3)]
    layer = get_channel_layer()
    hub = hub_for(layer)
    broken = next(iter(hub.pages))
    refused: asyncio.Queue = asyncio.Queue()

    async def refuse(event: dict) -> None:
        refused.put_nowait(event)
        raise RuntimeError("socket gone")

    broken.queue_changed = refuse
    await layer.group_send(QUEUE_GROUP, queue_event("still here"))
    await layer.group_send(QUEUE_GROUP, queue_event("again"))
    for _ in range(2):
        await asyncio.wait_for(refused.get(), timeout=5)
    del broken.queue_changed  # the page takes events again
    await layer.group_send(QUEUE_GROUP, queue_event("mended"))
    # Each page's first message: the two others heard every event, the
    # broken one none until it was mended.
    firsts = []
    for page in pages:
        firsts.append(first := await page.receive_from(timeout=5))
        if "still here" in first:
            assert "again" in await page.receive_from(timeout=5)
            assert "mended" in await page.receive_from(timeout=5)
    assert sorted("mended" in first for first in firsts) == [False, False, True]
    for page in pages:
        await page.disconnect()


class Listener:
    """A page as the hub sees it: something that takes queue events."""

    def __init__(self) -> None:
        self.events: asyncio.Queue = asyncio.Queue()

    async def queue_changed(self, event: dict) -> None:
        self.events.put_nowait(event)


async def heard_after_renewals(layer, monkeypatch) -> tuple[list[str], list[float]]:
    """Join a hub, wait for it to renew its membership three times, then
    publish. Returns the rows heard and when each group_add began."""
    monkeypatch.setattr(queue_hub, "RENEW_SECONDS", 0.01)
    adds: list[float] = []
    renewed = asyncio.Event()
    group_add = layer.group_add

    async def counted(group: str, channel: str) -> None:
        adds.append(time.time())
        await group_add(group, channel)
        if len(adds) > 3:
            renewed.set()

    monkeypatch.setattr(layer, "group_add", counted)
    hub, page = QueueHub(layer), Listener()
    await hub.join(page)
    await asyncio.wait_for(renewed.wait(), timeout=30)
    await layer.group_send(QUEUE_GROUP, queue_event("after renewals"))
    event = await asyncio.wait_for(page.events.get(), timeout=5)
    for task in hub.tasks:
        task.cancel()
    return [row["html"] for row in event["rows"]], adds


async def test_the_membership_is_renewed_in_memory(monkeypatch):
    layer = EmbeddedChannelLayer()
    rows, adds = await heard_after_renewals(layer, monkeypatch)
    assert rows == ['<tr id="task-1"><td>after renewals</td></tr>']
    (joined,) = layer.groups[QUEUE_GROUP].values()
    # Stamped by a renewal, not left at the first join's time.
    assert joined >= adds[-1] > adds[0]


async def test_the_membership_is_renewed_on_redis(monkeypatch):
    """Redis's pub/sub layer drops a channel whose receive() is cancelled:
    renewals must never cancel the hub's receive."""
    require(redis_missing_reason())
    from channels_redis.pubsub import RedisPubSubChannelLayer

    server = start_redis()
    try:
        layer = RedisPubSubChannelLayer(hosts=[server.url])
        rows, _ = await heard_after_renewals(layer, monkeypatch)
        assert rows == ['<tr id="task-1"><td>after renewals</td></tr>']
        await layer.flush()
    finally:
        server.stop()


class RemoteLayer(EmbeddedChannelLayer):
    """Makes channels as a layer with a server does: after a wait."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        await asyncio.sleep(0.01)
        return await super().new_channel(prefix)


async def test_pages_that_join_at_once_share_one_channel():
    layer = RemoteLayer()
    hub = QueueHub(layer)
    pages = [Listener() for _ in range(5)]
    await asyncio.gather(*(hub.join(page) for page in pages))
    assert list(layer.groups[QUEUE_GROUP]) == [hub.channel]
    await layer.group_send(QUEUE_GROUP, queue_event("together"))
    for page in pages:
        assert (await asyncio.wait_for(page.events.get(), timeout=5))["type"] == "queue.changed"
    for task in hub.tasks:
        task.cancel()


AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"


def tasks_event(created=(), removed=(), changed=()) -> dict:
    return {
        "type": live.TASKS_EVENT,
        "created": list(created),
        "removed": list(removed),
        "changed": list(changed),
    }


def test_events_that_come_together_are_taken_as_one():
    other = {"type": "queue.changed", "rows": []}
    assert merged(
        [
            tasks_event(created=[1, 2]),
            tasks_event(changed=[2, 3]),
            tasks_event(removed=[1], changed=[4]),
            other,
            tasks_event(created=[5]),
        ]
    ) == [
        # 1 came and went: it only leaves. 2 is drawn new, as it is now.
        tasks_event(created=[2], removed=[1], changed=[3, 4]),
        other,  # in its place: what came after it is not taken before it
        tasks_event(created=[5]),
    ]


def test_a_task_removed_and_reopened_within_a_burst_leaves_and_comes_back():
    # Decided, then reopened (its run refused the answer) before the hub got
    # round to either: open queues must show it again, not only lose it.
    assert merged(
        [
            tasks_event(removed=[1], changed=[2]),
            tasks_event(created=[3]),
            tasks_event(created=[1]),
            tasks_event(changed=[1, 3]),
            tasks_event(removed=[3]),
        ]
    ) == [
        tasks_event(created=[3], removed=[1], changed=[2]),
        # Its old row leaves first: the new one comes in an event of its own.
        tasks_event(created=[1], removed=[3]),
    ]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_a_burst_of_task_events_reaches_a_page_as_one_message(transactional_db):
    def three_tasks() -> list[int]:
        for text in ("first", "second", "third"):
            Run.enqueue(graph_name="echo", kind=Run.Kind.START, payload={"text": text})
        work("w1")
        return list(ReviewTask.objects.order_by("pk").values_list("pk", flat=True))

    # Made before any page is open: the worker's own events reach nobody.
    first, second, third = await sync_to_async(three_tasks, thread_sensitive=False)()
    page = await open_page(await session_cookie())
    layer = get_channel_layer()
    for pk in (first, second, third):  # faster than the hub can serve them
        await layer.group_send(QUEUE_GROUP, tasks_event(created=[pk]))
    message = await page.receive_from(timeout=5)
    assert message.startswith('<tbody id="queue-rows"')
    assert [message.count(f'<tr id="task-{pk}"') for pk in (first, second, third)] == [1, 1, 1]
    assert '<span class="count" id="pending-count" hx-swap-oob="true">3</span>' in message
    assert "3 new tasks" in message
    assert await page.receive_nothing(timeout=0.5)

    # Drawn and decided in one burst: the row only leaves.
    await sync_to_async(ReviewTask.objects.filter(pk=first).update)(status="decided")
    await layer.group_send(QUEUE_GROUP, tasks_event(changed=[first]))
    await layer.group_send(QUEUE_GROUP, tasks_event(removed=[first]))
    message = await page.receive_from(timeout=5)
    assert "<tr" not in message and f'<div id="task-{first}" hx-swap-oob="delete">' in message
    assert '<span class="count" id="pending-count" hx-swap-oob="true">2</span>' in message
    assert await page.receive_nothing(timeout=0.5)
    await page.disconnect()
