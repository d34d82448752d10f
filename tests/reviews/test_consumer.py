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
from reviews.actions import tasks as task_actions

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"
ORIGIN = (b"origin", b"http://testserver")
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


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


def cancelled_run_of(thread_id: str) -> Run:
    """Queue a run of the thread and cancel it: its pages hear "cancelled"."""
    run = Run.enqueue(graph_name="slow", kind=Run.Kind.CONTINUE, thread_id=thread_id)
    assert run.cancel()
    return run


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
    # Both arrive once committed, in either order (the run's end is told
    # without waiting for the rows to be drawn). The queue's is one message:
    # the rows lead it, so browsers parse them as rows, and the count and the
    # notice follow them.
    seen: dict[str, str] = {}
    for _ in range(50):
        message = await communicator.receive_from(timeout=5)
        if 'id="queue-rows"' in message:
            seen["queue"] = message
        if f'id="run-{run.pk}-status"' in message:
            seen["status"] = message
        if len(seen) == 2:
            break
    queue, status = seen["queue"], seen["status"]
    assert queue.lstrip().startswith('<tbody id="queue-rows"')
    count = queue.index('<span class="count" id="pending-count" hx-swap-oob="true">1</span>')
    assert queue.index("</tbody>") < count < queue.index('id="notice"')
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
    # A status of the watched thread published after both runs ended: the
    # page hears its thread's events in order, so whatever came of the other
    # run would have arrived before it.
    last = await sync_to_async(cancelled_run_of)(watched.thread_id)
    messages = []
    while f'id="run-{last.pk}-status"' not in (message := await communicator.receive_from(5)):
        messages.append(message)
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
        payload=REFUND,
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


async def test_a_turn_row_stays_until_its_last_call_is_decided(transactional_db):
    """Calls of a turn decided one at a time: the row loses the decided call,
    in place, and leaves with the last; a reviewer the rule doesn't name
    hears of neither."""
    from django.contrib.auth.models import Group

    from reviews.actions.tasks import outcome_words
    from reviews.consumers import fragment
    from reviews.models import ReviewRule, ReviewTask

    def people() -> tuple[bytes, bytes]:
        travel = Group.objects.create(name="travel")
        rule = ReviewRule.objects.create(name="travel desk", graph_name="tool_agent")
        rule.view_groups.add(travel)
        rule.review_groups.add(travel)
        cookies = []
        for name in ("rita", "sam"):
            user = get_user_model().objects.create_user(name, password=f"pw-{name}-123")
            if name == "rita":
                user.groups.add(travel)
            client = Client()
            client.force_login(user)
            cookies.append(f"sessionid={client.cookies['sessionid'].value}".encode())
        return cookies[0], cookies[1]

    rita_cookie, sam_cookie = await sync_to_async(people)()
    rita, sam = (
        WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", c)])
        for c in (rita_cookie, sam_cookie)
    )
    assert (await rita.connect())[0] and (await sam.connect())[0]
    await sync_to_async(Run.enqueue)(
        graph_name="tool_agent",
        kind=Run.Kind.START,
        payload={
            "messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]
        },
    )
    await sync_to_async(work, thread_sensitive=False)("w1")
    book, charge = await sync_to_async(lambda: list(ReviewTask.objects.order_by("pk")))()
    row = await receive_until(rita, 'id="queue-rows"')
    assert f'<tr id="task-{book.pk}"' in row and "2 calls:" in row
    assert await sam.receive_from(timeout=5) == fragment("queue_count_poke")  # not the row

    def decide(task: ReviewTask) -> None:
        rita_user = get_user_model().objects.get(username="rita")
        run = task_actions.decide([task], {task.pk: {"type": "approve"}}, user=rita_user)
        outcome_words([task], run)

    await sync_to_async(decide)(book)
    left = await receive_until(rita, f'hx-swap-oob="outerHTML:#task-{book.pk}"')
    # The row that showed the turn (named by its first call) is replaced by
    # what is left of it: one call, charge_card. It leads the event's one
    # message (a browser parses it as a row), the count (asked for again: a
    # rule governs the tasks) follows it.
    assert left.lstrip().startswith(f'<tr id="task-{charge.pk}" class="task-row pending"'), left
    assert left.endswith(fragment("queue_count_poke"))
    assert "charge_card" in left and "book_flight" not in left and "2 calls" not in left
    assert 'hx-swap-oob="delete"' not in left

    def rita_claims(task: ReviewTask) -> int:
        client = Client()
        client.force_login(get_user_model().objects.get(username="rita"))
        return client.post(f"/tasks/{task.pk}/claim/").status_code

    assert await sync_to_async(rita_claims)(charge) == 302
    assert "claimed by rita" in await receive_until(rita, "claimed by rita")
    await sync_to_async(decide)(charge)
    gone = await receive_until(rita, 'hx-swap-oob="delete"')
    # One message: the count, and the row leaving (the element htmx deletes
    # is named by id; the one that names it need not be a row).
    assert gone == fragment("queue_count_poke") + (
        f'\n\n<div id="task-{charge.pk}" hx-swap-oob="delete"></div>\n'
    )

    # Sam may see no task of the rule, nor its claim: only the count, asked
    # for again. A task no rule governs, queued after, is the first row his
    # page hears.
    await sync_to_async(Run.enqueue)(graph_name="support", kind=Run.Kind.START, payload=REFUND)
    await sync_to_async(work, thread_sensitive=False)("w1")
    (refund,) = await sync_to_async(list)(ReviewTask.objects.filter(tool_name="refund"))
    pokes = 0
    while 'id="queue-rows"' not in (heard := await sam.receive_from(timeout=5)):
        assert heard == fragment("queue_count_poke"), heard
        pokes += 1
    assert pokes >= 3  # one per decision and claim
    assert heard.startswith('<tbody id="queue-rows"') and f'<tr id="task-{refund.pk}"' in heard
    assert heard.count("<tr ") == 1
    await rita.disconnect()
    await sam.disconnect()


async def test_an_open_page_follows_its_reviewers_rights_and_session(transactional_db):
    """Rights are read at connect and again when they change: a reviewer
    taken out of the group a rule names hears no more of its rows; one
    signed out or deactivated has their page closed (other sessions stay)."""
    from django.contrib.auth.models import Group

    from reviews.consumers import fragment
    from reviews.models import ReviewRule

    def people() -> tuple[bytes, bytes]:
        finance = Group.objects.create(name="finance")
        rule = ReviewRule.objects.create(name="refunds", graph_name="support")
        rule.view_groups.add(finance)
        rule.review_groups.add(finance)
        rita = get_user_model().objects.create_user("rita", password="pw-rita-123")
        rita.groups.add(finance)
        cookies = []
        for _ in range(2):
            client = Client()
            client.login(username="rita", password="pw-rita-123")
            cookies.append(f"sessionid={client.cookies['sessionid'].value}".encode())
        return cookies[0], cookies[1]

    def refund_asked() -> None:
        Run.enqueue(graph_name="support", kind=Run.Kind.START, payload=REFUND)
        work("w1")

    first, second = await sync_to_async(people)()
    pages = [
        WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", c)])
        for c in (first, second)
    ]
    for page in pages:
        assert (await page.connect())[0]
    await sync_to_async(refund_asked, thread_sensitive=False)()
    for page in pages:
        assert "refund" in await receive_until(page, 'id="queue-rows"')

    def leaves_finance() -> None:
        get_user_model().objects.get(username="rita").groups.clear()

    await sync_to_async(leaves_finance)()
    for page in pages:
        assert await receive_until(page, "notice-toast") == fragment("rights_changed")
    await sync_to_async(refund_asked, thread_sensitive=False)()
    for page in pages:  # a count to ask for again, never the row
        assert await page.receive_from(timeout=5) == fragment("queue_count_poke")

    def signs_out(cookie: bytes) -> int:
        client = Client()
        client.cookies["sessionid"] = cookie.decode().partition("=")[2]
        return client.post("/accounts/logout/").status_code

    assert await sync_to_async(signs_out)(first) == 302
    assert await pages[0].receive_from(timeout=5) == fragment("signed_out")
    assert (await pages[0].receive_output(timeout=5))["code"] == 4401

    def deactivated() -> None:
        rita = get_user_model().objects.get(username="rita")
        rita.is_active = False
        rita.save()

    await sync_to_async(deactivated)()
    assert await pages[1].receive_from(timeout=5) == fragment("signed_out")
    assert (await pages[1].receive_output(timeout=5))["code"] == 4401
