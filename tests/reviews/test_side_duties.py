"""The worker's side duties (webhooks, deadlines) run in a loop of their own:
a queued run is claimed while a webhook endpoint holds its delivery, the
deliveries go out on a bounded pool, and stopping waits only for what is in
flight. The endpoints are real sockets on loopback."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
from concurrent.futures import wait

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.db import connections
from django.utils import timezone

from graphs import duties
from graphs.consumers import GraphRunsConsumer
from graphs.duties import DutiesLoop
from graphs.management.commands.serve import EmbeddedWorker
from graphs.models import Run
from reviews import webhooks
from reviews.models import ReviewTask, WebhookDelivery, WebhookEndpoint
from reviews.webhooks import Sender
from tests.reviews.conftest import until

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
# Long enough that a held attempt only ends when the test releases it.
HOLD = 120


class HeldEndpoint:
    """Accepts each request and answers none (204) until `release` is set."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.release = threading.Event()
        self.requests: list[bytes] = []  # their bodies
        self.answered = 0
        self.changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.lower().splitlines()
                    if line.startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length and (chunk := conn.recv(65536)):
                body += chunk
            with self.changed:
                self.requests.append(body)
                self.changed.notify_all()
            self.release.wait()
            try:
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            except OSError:  # the client gave up
                return
            with self.changed:
                self.answered += 1

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout=60), (
                f"{len(self.requests)} requests arrived, not {count}"
            )

    def close(self) -> None:
        self.release.set()
        self.listener.close()


@pytest.fixture
def held(transactional_db, settings):
    settings.HITL_WEBHOOK_TIMEOUT = HOLD
    duties.stop()  # a pool left by another test is replaced, sized by this test's settings
    endpoint = HeldEndpoint()
    yield endpoint
    endpoint.close()
    duties.stop()


def due_deliveries(url: str, count: int, *, endpoints: int = 1) -> list[int]:
    """`count` due deliveries, to `endpoints` endpoints (at `url`) in turn."""
    made = [
        WebhookEndpoint.objects.create(name=f"held {i}", url=url, secret="k")
        for i in range(endpoints)
    ]
    return [
        WebhookDelivery.objects.create(
            endpoint=made[i % endpoints], event="task.created", payload={"task": i}
        ).pk
        for i in range(count)
    ]


def in_flight(pk: int) -> bool:
    """Claimed for its first attempt, which has not ended."""
    delivery = WebhookDelivery.objects.get(pk=pk)
    return (delivery.status, delivery.attempts, delivery.last_error, delivery.response_code) == (
        "pending",
        1,
        "",
        None,
    )


def delivered(pk: int) -> bool:
    return WebhookDelivery.objects.get(pk=pk).status == "delivered"


def test_served_worker_claims_a_run_while_an_endpoint_holds_its_delivery(held):
    (pk,) = due_deliveries(held.url, 1)
    worker = EmbeddedWorker(sweep_seconds=HOLD)
    worker.start()
    try:
        held.wait_for(1)  # the delivery is in flight
        run = Run.enqueue(graph_name="support", kind=Run.Kind.START, payload=REFUND)
        until(
            lambda: ReviewTask.objects.filter(thread_id=run.thread_id).exists(),
            "the run reached its interrupt",
        )
        assert Run.objects.get(pk=run.pk).status == "interrupted"
        assert in_flight(pk) and held.answered == 0  # still held
        held.release.set()
        until(lambda: delivered(pk), "the held delivery was delivered once released")
    finally:
        held.release.set()
        worker.stopping.set()
        worker.wake.set()
        worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(held.requests) == 1


async def test_consumer_claims_a_run_while_an_endpoint_holds_its_delivery(held):
    # Not the thread the consumer's runs execute in.
    elsewhere = functools.partial(sync_to_async, thread_sensitive=False)
    (pk,) = await elsewhere(due_deliveries)(held.url, 1)
    app = ApplicationCommunicator(
        GraphRunsConsumer.as_asgi(), {"type": "channel", "channel": "graph-runs"}
    )
    try:
        await app.send_input({"type": "runs.wake"})  # as runworker looks as it starts
        await elsewhere(held.wait_for)(1)
        run = await elsewhere(Run.enqueue)(
            graph_name="support", kind=Run.Kind.START, payload=REFUND
        )
        await app.send_input({"type": "runs.wake"})  # what the queued run sends
        for _ in range(1200):
            if await elsewhere(ReviewTask.objects.filter(thread_id=run.thread_id).exists)():
                break
            await asyncio.sleep(0.05)
        assert await elsewhere(lambda: Run.objects.get(pk=run.pk).status)() == "interrupted"
        assert await elsewhere(in_flight)(pk) and held.answered == 0
        held.release.set()
        await elsewhere(until)(lambda: delivered(pk), "delivered once released")
    finally:
        held.release.set()
        app.stop()
    assert len(held.requests) == 1


def test_a_dead_endpoint_holds_one_thread_not_the_other_deliveries(held, receiver, settings):
    receiver_url = receiver[0]
    settings.HITL_WEBHOOK_THREADS = 2
    dead = due_deliveries(held.url, 3)  # the oldest: claimed first
    live_endpoint = WebhookEndpoint.objects.create(name="live", url=receiver_url, secret="k")
    live = [
        WebhookDelivery.objects.create(endpoint=live_endpoint, event="task.created", payload={}).pk
        for _ in range(3)
    ]
    sender = Sender()
    futures = sender.kick()
    try:
        held.wait_for(1)
        until(lambda: all(delivered(pk) for pk in live), "the live endpoint's deliveries")
        # One thread waits on the dead endpoint; its other deliveries wait their turn.
        assert in_flight(dead[0]) and len(held.requests) == 1
        assert WebhookDelivery.objects.filter(pk__in=dead[1:], attempts=0).count() == 2
        held.release.set()
        assert sum(f.result() for f in futures) == 6
    finally:
        held.release.set()
        sender.stop()
    assert all(delivered(pk) for pk in dead)
    # In the order they fell due.
    assert [json.loads(body)["data"]["task"] for body in held.requests] == [0, 1, 2]


def test_stopping_waits_for_the_attempts_in_flight_and_claims_no_more(held, settings):
    settings.HITL_WEBHOOK_THREADS = 2
    pks = due_deliveries(held.url, 5, endpoints=5)
    loop = DutiesLoop("w1", every=HOLD)
    loop.start()  # its first round starts two deliveries, which the endpoint holds
    held.wait_for(2)
    stopping = threading.Thread(target=loop.stop)
    stopping.start()
    until(lambda: webhooks._sender.stopping, "the pool was told to stop")
    assert stopping.is_alive()  # waiting for the two held attempts
    held.release.set()
    stopping.join(timeout=60)
    assert not stopping.is_alive() and not loop.is_alive()
    rows = WebhookDelivery.objects.filter(pk__in=pks)
    assert sorted(rows.values_list("status", flat=True)) == ["delivered"] * 2 + ["pending"] * 3
    assert rows.filter(attempts=0).count() == 3  # not sent, not counted: the next worker's
    assert len(held.requests) == 2


def test_another_worker_never_claims_a_delivery_in_flight(held):
    (pk,) = due_deliveries(held.url, 1)
    first, second = Sender(threads=1), Sender(threads=1)  # as two worker processes
    sending = first.kick()
    held.wait_for(1)
    done, _ = wait(second.kick(), timeout=60)
    try:
        assert [f.result() for f in done] in ([], [0])
        assert len(held.requests) == 1 and in_flight(pk)
    finally:
        held.release.set()
        first.stop()
        second.stop()
    assert [f.result() for f in sending] == [1] and len(held.requests) == 1


def test_a_delivery_in_flight_is_not_claimed_again_when_it_falls_due(held):
    (pk,) = due_deliveries(held.url, 1)
    sender = Sender(threads=2)
    sending = sender.kick()
    held.wait_for(1)
    # Its attempt outlives the time its claim set aside.
    WebhookDelivery.objects.filter(pk=pk).update(next_attempt_at=timezone.now())
    done, _ = wait(sender.kick(), timeout=60)
    try:
        assert [f.result() for f in done] == [0]
        assert len(held.requests) == 1
    finally:
        held.release.set()
        sender.stop()
    assert [f.result() for f in sending] == [1] and len(held.requests) == 1


def test_pool_threads_close_their_database_connections(transactional_db, receiver):
    receiver_url = receiver[0]
    endpoint = WebhookEndpoint.objects.create(name="live", url=receiver_url, secret="k")
    (pk,) = [WebhookDelivery.objects.create(endpoint=endpoint, event="task.created", payload={}).pk]
    sender = Sender(threads=1)
    try:
        assert sum(f.result() for f in sender.kick()) == 1
        # The same single thread, after its delivery.
        left_open = sender.pool.submit(lambda: connections["default"].connection is not None)
        assert left_open.result() is False
    finally:
        sender.stop()
    assert delivered(pk)
