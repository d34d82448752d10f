"""Outgoing webhooks: task created, decided and expired, signed as Standard
Webhooks signs them (https://www.standardwebhooks.com), delivered by the
worker's sweep and retried with backoff.

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
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from graphs.signals import worker_sweep
from reviews.models import WebhookDelivery
from reviews.webhook_models import signing_key

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
TIMEOUT = 5.0


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


@receiver(worker_sweep, dispatch_uid="reviews.deliver_webhooks")
def _on_sweep(sender, **kwargs) -> None:
    deliver_due()


def deliver_due(limit: int = 50) -> int:
    """Send what is due; returns how many were delivered."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).select_related("endpoint")[:limit]
    delivered = 0
    for delivery in due:
        # Claim the attempt: two workers never send the same delivery at once.
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
        ).update(
            attempts=delivery.attempts + 1, next_attempt_at=now + backoff(delivery.attempts + 1)
        )
        if not claimed:
            continue
        delivered += _send(delivery, delivery.attempts + 1)
    return delivered


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
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
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
