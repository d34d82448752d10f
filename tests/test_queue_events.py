"""Queue events carry task ids: rows are rendered where a page shows them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from graphs.events import QUEUE_GROUP
from graphs.models import Run
from graphs.worker import work
from hitl_site.asgi import application
from reviews.models import ReviewTask
from tests.reviews.test_consumer import ORIGIN, session_cookie

AGENTS = Path(__file__).resolve().parent / "graphs" / "agents" / "langgraph.json"


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_a_new_task_reaches_the_queue_group_as_its_id(transactional_db):
    """The worker renders no rows: a process with no open queue page (a
    worker, a server only API clients call) never pays for them."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(QUEUE_GROUP, channel)
    try:
        await sync_to_async(Run.enqueue)(
            graph_name="echo", kind=Run.Kind.START, payload={"text": "refund?"}
        )
        await sync_to_async(work, thread_sensitive=False)("w1")
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
    finally:
        # The layer outlives the test: later tests count the group's members.
        await layer.group_discard(QUEUE_GROUP, channel)
    task = await sync_to_async(ReviewTask.objects.get)()
    assert message == {"type": "queue.tasks", "created": [task.pk], "removed": [], "changed": []}


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_an_open_queue_gets_the_rows_of_the_ids(transactional_db):
    cookie = await session_cookie()
    page = WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", cookie)])
    assert (await page.connect())[0]
    await sync_to_async(Run.enqueue)(
        graph_name="echo", kind=Run.Kind.START, payload={"text": "refund?"}
    )
    await sync_to_async(work, thread_sensitive=False)("w1")
    task = await sync_to_async(ReviewTask.objects.get)()
    message = await page.receive_from(timeout=5)
    assert message.lstrip().startswith('<tbody id="queue-rows"')
    assert f'<tr id="task-{task.pk}"' in message and "refund?" in message
    # Decided: its row leaves.
    await sync_to_async(ReviewTask.objects.filter(pk=task.pk).update)(status="decided")
    from reviews import live

    await sync_to_async(live.tasks_removed)([task.pk])
    heard = await page.receive_from(timeout=5)  # the count and the row leaving, at once
    assert heard.replace("\n", "") == (
        '<span class="count" id="pending-count" hx-swap-oob="true">0</span>'
        f'<div id="task-{task.pk}" hx-swap-oob="delete"></div>'
    )
    await page.disconnect()
