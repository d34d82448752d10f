"""The reviewer websocket, through the real ASGI stack and channel layer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from graphs.models import Checkpoint, Run
from graphs.worker import work
from hitl_site.asgi import application

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"
ORIGIN = (b"origin", b"http://testserver")


@sync_to_async
def session_cookie() -> bytes:
    user = get_user_model().objects.create_user("rita", password="pw-rita-123")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def receive_until(communicator: WebsocketCommunicator, needle: str, limit: int = 50) -> str:
    for _ in range(limit):
        message = await communicator.receive_from(timeout=5)
        if needle in message:
            return message
    raise AssertionError(f"no message containing {needle!r}")


async def test_anonymous_connections_are_refused(transactional_db):
    communicator = WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN])
    connected, code = await communicator.connect()
    assert not connected and code == 4401


async def test_foreign_origin_is_refused(transactional_db):
    cookie = await session_cookie()
    communicator = WebsocketCommunicator(
        application,
        "/ws/reviews/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert not connected


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_new_task_and_progress_arrive_live_and_escaped(transactional_db):
    cookie = await session_cookie()
    run = await sync_to_async(Run.enqueue)(
        graph_name="echo",
        kind=Run.Kind.START,
        payload={"text": "<script>alert('x')</script> refund?"},
    )
    communicator = WebsocketCommunicator(
        application, f"/ws/reviews/?threads={run.thread_id}", headers=[ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect()
    assert connected

    worker = asyncio.ensure_future(sync_to_async(work, thread_sensitive=False)("w1"))
    # The queue hears of the task when it is committed, the thread of the
    # run's status just after: both arrive, in that order.
    # One message: the rows lead it, so browsers parse them as rows, and the
    # count and the notice follow them.
    queue = await receive_until(communicator, 'id="queue-rows"')
    assert queue.lstrip().startswith('<tbody id="queue-rows"')
    count = queue.index('<span class="count" id="pending-count" hx-swap-oob="true">1</span>')
    assert queue.index("</tbody>") < count < queue.index('id="notice"')
    status = await receive_until(communicator, f'id="run-{run.pk}-status"')
    assert "interrupted" in status and "1 waiting for review" in status
    assert 'hx-swap-oob="beforeend"' in queue
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; refund?" in queue
    assert "<script>" not in queue
    await worker
    await communicator.disconnect()


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
async def test_thread_progress_only_for_subscribed_threads(transactional_db):
    cookie = await session_cookie()
    watched = await sync_to_async(Run.enqueue)(
        graph_name="slow", kind=Run.Kind.START, payload={"done": [], "delay": 0, "steps": 2}
    )
    other = await sync_to_async(Run.enqueue)(
        graph_name="slow", kind=Run.Kind.START, payload={"done": [], "delay": 0, "steps": 2}
    )
    communicator = WebsocketCommunicator(
        application,
        f"/ws/reviews/?threads={watched.thread_id},no-such-thread",
        headers=[ORIGIN, (b"cookie", cookie)],
    )
    assert (await communicator.connect())[0]
    await sync_to_async(work, thread_sensitive=False)("w1")
    messages = []
    while not await communicator.receive_nothing(timeout=0.3):
        messages.append(await communicator.receive_from())
    steps = [m for m in messages if 'id="thread-steps"' in m]
    assert any(f'id="run-{watched.pk}-status"' in m for m in messages)
    # One line per checkpoint the run wrote, naming it: the watched thread's
    # own (the other thread's status and progress never reach this page).
    assert not any(f'id="run-{other.pk}-status"' in m for m in messages)
    written = await sync_to_async(list)(
        Checkpoint.objects.filter(thread_id=watched.thread_id)
        .order_by("checkpoint_id")
        .values_list("checkpoint_id", flat=True)
    )
    assert len(steps) == len(written) > 2
    assert all(f'title="{cid}"' in line for cid, line in zip(written, steps, strict=True))
    assert "input · the input arrived" in steps[0] and "· by " in steps[-1]
    await communicator.disconnect()


async def test_a_claim_updates_the_row_on_open_queues(transactional_db):
    from reviews.models import ReviewTask

    cookie = await session_cookie()
    communicator = WebsocketCommunicator(
        application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    assert (await communicator.connect())[0]
    await sync_to_async(Run.enqueue)(
        graph_name="support",
        kind=Run.Kind.START,
        payload={"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]},
    )
    await sync_to_async(work, thread_sensitive=False)("w1")
    task = await sync_to_async(ReviewTask.objects.get)()

    def sam_claims() -> int:
        sam = get_user_model().objects.create_user("sam", password="pw-sam-123")
        client = Client()
        client.force_login(sam)
        return client.post(f"/tasks/{task.pk}/claim/").status_code

    assert await sync_to_async(sam_claims)() == 302
    row = await receive_until(communicator, "claimed by sam")
    assert row.lstrip().startswith(f'<tr id="task-{task.pk}"') and 'hx-swap-oob="true"' in row
    await communicator.disconnect()
