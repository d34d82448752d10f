"""Where task events are posted, and each delivery's progress."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from reviews.models import ReviewTask

WHSEC = "whsec_"


def signing_key(secret: str) -> bytes:
    """A whsec_ secret is base64 after its prefix, as Standard Webhooks
    libraries read it; any other secret is used as its UTF-8 bytes."""
    if secret.startswith(WHSEC):
        try:
            return base64.b64decode(secret.removeprefix(WHSEC), validate=True)
        except binascii.Error:
            raise ValueError("a secret that starts with whsec_ is base64 after it") from None
    return secret.encode()


class WebhookEndpoint(models.Model):
    """Where task events are posted, signed with the endpoint's secret."""

    name = models.CharField(max_length=100)
    url = models.URLField()
    secret = models.CharField(
        max_length=200,
        help_text=(
            "Signs each delivery as Standard Webhooks does. Headers: webhook-id (the "
            "delivery's id, the same on every retry), webhook-timestamp (Unix seconds of this "
            'attempt) and webhook-signature: "v1," then the base64 HMAC-SHA256 of '
            '"{webhook-id}.{webhook-timestamp}.{body}" under a key: the secret\'s '
            "UTF-8 bytes, or for a secret starting whsec_ the base64 bytes after it. A "
            "receiver recomputes the signature over the raw body, compares it in constant "
            "time, refuses a timestamp more than 5 minutes from its clock and an id it has "
            "already seen. X-HITL-Signature: sha256=HMAC(secret, body) is still sent for "
            "older receivers; it signs the body only, so a captured request can be replayed."
        ),
    )
    events = models.JSONField(
        default=list, help_text='e.g. ["task.created", "task.decided", "task.expired"]'
    )
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            signing_key(self.secret)
        except ValueError as exc:
            raise ValidationError({"secret": str(exc)}) from None


class WebhookDelivery(models.Model):
    """One event for one endpoint, tried until it is delivered or given up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed", "failed (gave up)"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The worker's sweep: pending deliveries whose time has come.
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due_idx")
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint} ({self.status})"

    @classmethod
    def endpoints_for(cls, event: str) -> list[WebhookEndpoint]:
        return [e for e in WebhookEndpoint.objects.filter(active=True) if event in e.events]

    @classmethod
    def queue_event(
        cls, event: str, task: ReviewTask, endpoints: list[WebhookEndpoint] | None = None
    ) -> None:
        """A delivery to every active endpoint that wants this event, in the
        caller's transaction: a rolled-back change sends nothing."""
        endpoints = cls.endpoints_for(event) if endpoints is None else endpoints
        if not endpoints:
            return
        payload = task.as_json()
        cls.objects.bulk_create([cls(endpoint=e, event=event, payload=payload) for e in endpoints])
