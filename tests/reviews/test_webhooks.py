"""Outgoing webhooks against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from graphs.worker import work
from reviews.models import ReviewTask, WebhookDelivery, WebhookEndpoint
from reviews.webhooks import deliver_due, signature
from tests.reviews.conftest import pending, start

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


@pytest.fixture
def receiver():
    """A loopback server that records what it receives; `fail` makes it answer 500."""
    got: list[dict] = []
    state = {"fail": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail"]:
                state["fail"] -= 1
                self.send_response(500)
            else:
                got.append({"headers": self.headers, "body": body})  # case-insensitive
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, state
    server.shutdown()


def test_created_and_decided_are_signed_and_delivered(receiver, rita):
    url, got, _ = receiver
    WebhookEndpoint.objects.create(
        name="bot", url=url, secret="s3cret", events=["task.created", "task.decided"]
    )
    (task,) = pending(start("support", REFUND))  # the worker's sweep ran before the task existed
    ReviewTask.decide_together([task], {task.pk: {"type": "accept"}}, user=rita)
    assert deliver_due() == 2
    events = [json.loads(g["body"]) for g in got]
    assert [e["event"] for e in events] == ["task.created", "task.decided"]
    assert (
        events[1]["data"]["decision"] == {"type": "accept"}
        and events[1]["data"]["decided_by"] == "rita"
    )
    for g in got:
        assert g["headers"]["X-HITL-Signature"] == signature("s3cret", g["body"])
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_failures_are_retried_with_backoff_then_delivered(receiver, rita):
    url, got, state = receiver
    WebhookEndpoint.objects.create(name="bot", url=url, secret="k", events=["task.created"])
    state["fail"] = 1
    pending(start("support", REFUND))
    assert deliver_due() == 0
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now()  # backs off
    assert deliver_due() == 0  # not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    work("w1")  # the worker's sweep delivers
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2) and len(got) == 1


def test_unreachable_endpoint_gives_up_after_the_last_attempt(rita):
    WebhookEndpoint.objects.create(
        name="gone", url="http://127.0.0.1:9/hook", secret="k", events=["task.created"]
    )
    pending(start("support", REFUND))
    WebhookDelivery.objects.update(attempts=7)
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "URLError" in delivery.last_error
