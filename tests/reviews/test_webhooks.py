"""Outgoing webhooks against a real HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from graphs.duties import DutiesLoop
from reviews.actions import tasks as task_actions
from reviews.models import WebhookDelivery, WebhookEndpoint
from reviews.webhooks import deliver_due, signature
from tests.reviews.conftest import TOLERANCE, pending, start, until

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def test_created_and_decided_are_signed_and_delivered(receiver, rita):
    url, got, _ = receiver
    WebhookEndpoint.objects.create(
        name="bot", url=url, secret="s3cret", events=["task.created", "task.decided"]
    )
    (task,) = pending(start("support", REFUND))  # the worker's sweep ran before the task existed
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
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
    state["secret"] = "k"
    WebhookEndpoint.objects.create(name="bot", url=url, secret="k", events=["task.created"])
    state["fail"] = 1
    pending(start("support", REFUND))
    assert deliver_due() == 0
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now()  # backs off
    assert deliver_due() == 0  # not due yet
    # The worker's side duties, as `serve` runs them, send it when it falls due.
    duties = DutiesLoop("w1", every=0.05)
    duties.start()
    try:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        until(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered", "retry")
    finally:
        duties.stop()
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and len(got) == 1 and state["refused"] == []


def test_unreachable_endpoint_gives_up_after_the_last_attempt(rita):
    WebhookEndpoint.objects.create(
        name="gone", url="http://127.0.0.1:9/hook", secret="k", events=["task.created"]
    )
    pending(start("support", REFUND))
    WebhookDelivery.objects.update(attempts=7)
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "URLError" in delivery.last_error


def replay(url: str, captured: dict, body: bytes | None = None) -> int:
    """Post a captured delivery again, as someone who saw it on the wire would."""
    headers = {k: v for k, v in captured["headers"].items() if k.lower() != "content-length"}
    request = urllib.request.Request(url, data=body or captured["body"], headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("secret", ["s3cret", "whsec_" + base64.b64encode(b"k" * 24).decode()])
def test_a_receiver_verifies_each_delivery_and_refuses_replays(receiver, rita, secret):
    url, got, state = receiver
    state["secret"] = secret
    WebhookEndpoint.objects.create(
        name="bot", url=url, secret=secret, events=["task.created", "task.decided"]
    )
    (task,) = pending(start("support", REFUND))
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
    assert deliver_due() == 2 and state["refused"] == []
    deliveries = WebhookDelivery.objects.order_by("pk")
    assert [g["headers"]["webhook-id"] for g in got] == [f"msg_{d.pk}" for d in deliveries]
    for g in got:  # older receivers still get the body's signature
        assert g["headers"]["X-HITL-Signature"] == signature(secret, g["body"])

    created = got[0]
    assert replay(url, created) == 401  # its id was seen
    state["seen"].clear()  # a receiver that forgot it still has the clock
    state["clock"] = TOLERANCE + 60
    assert replay(url, created) == 401
    state["clock"] = 0
    forged = created["body"].replace(b'"task.created"', b'"task.decided"')
    assert replay(url, created, body=forged) == 401
    assert state["refused"] == ["seen", "too old", "bad signature"]
    assert replay(url, created) == 204  # the same request, fresh: the checks were what refused


def test_a_retry_keeps_the_delivery_id_and_signs_its_own_time(receiver, rita):
    url, got, state = receiver
    state["secret"] = "k"
    WebhookEndpoint.objects.create(name="bot", url=url, secret="k", events=["task.created"])
    state["fail"] = 1
    pending(start("support", REFUND))
    assert deliver_due() == 0
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliver_due() == 1
    first, second = state["tried"]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert int(first["headers"]["webhook-timestamp"]) <= int(second["headers"]["webhook-timestamp"])
    assert len(got) == 1 and state["refused"] == []


def test_a_whsec_secret_must_be_base64(rita):
    endpoint = WebhookEndpoint(name="bot", url="http://127.0.0.1:9/hook", secret="whsec_not*b64")
    with pytest.raises(ValidationError, match="is base64 after it"):
        endpoint.full_clean()
    endpoint.events = ["task.created"]
    endpoint.save()
    pending(start("support", REFUND))
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and "not sent: a secret that starts with whsec_" in (
        delivery.last_error
    )
