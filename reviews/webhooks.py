"""Outgoing webhooks: task created, decided and expired, signed as Standard
Webhooks signs them (https://www.standardwebhooks.com), delivered from the
worker's side duties (graphs.duties) on a bounded pool of threads and retried
with backoff.

The signature covers the delivery's id and the attempt's time with the body,
so a receiver that refuses old timestamps and ids it has seen can't be made
to act twice on a captured request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.dispatch import receiver
from django.utils import timezone

from graphs.signals import worker_stopping, worker_sweep
from reviews.models import WebhookDelivery
from reviews.webhook_models import signing_key

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


def attempt_timeout() -> float:
    return float(settings.HITL_WEBHOOK_TIMEOUT)


def signature(secret: str, body: bytes) -> str:
    """X-HITL-Signature, kept for receivers written before webhook-signature:
    it signs the body alone, so it can't tell a replay from a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def message_id(delivery: WebhookDelivery) -> str:
    # The delivery's, not the attempt's: a receiver that has seen it drops a retry.
    return f"msg_{delivery.pk}"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


class Sender:
    """Sends due deliveries on a bounded pool of threads, as healthchecks'
    sendalerts sends alerts: one endpoint that never answers holds one
    thread for one timeout, not the others, and never the worker's runs.
    An endpoint gets one delivery at a time from a process, in the order they
    fell due (a task's "created" before its "decided").

    Each busy thread claims one delivery at a time and sends it at once, so
    no claimed delivery waits in a queue, where it could fall due again and
    be claimed twice. The claim is a conditional UPDATE that also moves the
    delivery's next attempt past the time this one can take: another worker
    process sees it as not due while it is in flight."""

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self.lock = threading.Lock()
        # One claim at a time in a process: each sees the deliveries and
        # endpoints the others have in flight.
        self.claiming = threading.Lock()
        self.pool: ThreadPoolExecutor | None = None
        self.size = 0
        self.busy = 0
        self.in_flight: dict[int, int] = {}  # delivery: its endpoint
        self.stopping = False

    def kick(self) -> list[Future[int]]:
        """Put free threads to work on what is due; returns their futures
        (each gives how many deliveries its thread delivered)."""
        with self.lock:
            if self.stopping:
                return []
            if self.pool is None:
                self.size = self.threads or settings.HITL_WEBHOOK_THREADS
                self.pool = ThreadPoolExecutor(self.size, thread_name_prefix="webhooks")
            free = self.size - self.busy
        due = _due().count() if free > 0 else 0
        futures = []
        with self.lock:
            for _ in range(min(free, due, self.size - self.busy)):
                if self.stopping or self.pool is None:
                    break
                self.busy += 1
                futures.append(self.pool.submit(self._drain))
        return futures

    def stop(self) -> None:
        """Claim nothing more; wait for the attempts in flight, each of which
        ends within its timeout. A later kick starts a new pool."""
        with self.lock:
            self.stopping = True
            pool, self.pool = self.pool, None
        try:
            if pool is not None:
                pool.shutdown(wait=True)
        finally:
            with self.lock:
                self.stopping = False

    def _drain(self) -> int:
        delivered = 0
        try:
            while not self.stopping and (claimed := self._claim()) is not None:
                try:
                    delivered += _send(claimed, claimed.attempts)
                finally:
                    with self.lock:
                        self.in_flight.pop(claimed.pk, None)
        except Exception:
            log.exception("webhook deliveries stopped; the next sweep tries again")
        finally:
            with self.lock:
                self.busy -= 1
            connections.close_all()  # this thread's own: pool threads outlive it
        return delivered

    def _claim(self) -> WebhookDelivery | None:
        """One due delivery, claimed for this attempt (its `attempts` counts
        it), or None when nothing is due."""
        with self.claiming:
            return self._claim_one(timezone.now())

    def _claim_one(self, now) -> WebhookDelivery | None:
        with self.lock:
            deliveries, endpoints = set(self.in_flight), set(self.in_flight.values())
        due = _due(now).exclude(pk__in=deliveries).exclude(endpoint_id__in=endpoints)
        due = due.select_related("endpoint")
        for delivery in due.order_by("next_attempt_at", "pk")[: self.size]:
            attempt = delivery.attempts + 1
            # Never sooner than this attempt may last (connect, send, answer).
            hold = max(backoff(attempt), timedelta(seconds=4 * attempt_timeout()))
            claimed = WebhookDelivery.objects.filter(
                pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
            ).update(attempts=attempt, next_attempt_at=now + hold)
            if claimed:
                with self.lock:
                    self.in_flight[delivery.pk] = delivery.endpoint_id
                delivery.attempts = attempt
                return delivery
        return None


def _due(now=None):
    return WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now or timezone.now()
    )


_sender = Sender()


@receiver(worker_sweep, dispatch_uid="reviews.deliver_webhooks")
def _on_sweep(sender, **kwargs) -> None:
    _sender.kick()  # not waited for: the deliveries go on in the pool


@receiver(worker_stopping, dispatch_uid="reviews.stop_webhooks")
def _on_stopping(sender, **kwargs) -> None:
    _sender.stop()


def deliver_due() -> int:
    """Send what is due through the pool and wait for it; returns how many
    were delivered."""
    return sum(future.result() for future in _sender.kick())


def _send(delivery: WebhookDelivery, attempt: int) -> int:
    body = json.dumps(
        {"event": delivery.event, "delivery": delivery.pk, "data": delivery.payload}, sort_keys=True
    ).encode()
    secret = delivery.endpoint.secret
    msg_id, timestamp = message_id(delivery), int(timezone.now().timestamp())
    code, error = None, ""
    try:
        request = urllib.request.Request(
            delivery.endpoint.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "hitl-review-webhooks",
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": standard_signature(secret, msg_id, timestamp, body),
                "X-HITL-Event": delivery.event,
                "X-HITL-Delivery": str(delivery.pk),
                "X-HITL-Signature": signature(secret, body),
            },
        )
        with urllib.request.urlopen(request, timeout=attempt_timeout()) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except ValueError as exc:  # a secret that can't sign
        error = f"not sent: {exc}"
    ok = code is not None and 200 <= code < 300
    fields: dict[str, Any] = {"response_code": code, "last_error": error}
    if ok:
        fields |= {"status": WebhookDelivery.Status.DELIVERED, "delivered_at": timezone.now()}
    elif attempt >= MAX_ATTEMPTS:
        fields["status"] = WebhookDelivery.Status.FAILED
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    if not ok:
        log.warning(
            "webhook %s to %s failed (attempt %s): %s",
            delivery.pk,
            delivery.endpoint.url,
            attempt,
            error,
        )
    return int(ok)
