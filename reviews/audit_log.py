"""The audit trail: one row per human or system action, only ever added to."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from reviews.audit_chain import (
    GENESIS,
    HASHED,
    KEYED,
    Verdict,
    audit_key,
    keyed_row_hash,
    sign_anchor,
    walk,
)

if TYPE_CHECKING:
    from graphs.models import Run
    from reviews.models import ReviewTask


class AuditImmutable(Exception):
    """The audit trail is only ever added to."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AuditImmutable("audit events can't be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutable("audit events can't be deleted")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AuditImmutable("audit events can't be changed")


class AuditEvent(models.Model):
    """One human or system action, as it happened. Rows are only ever added:
    the ORM refuses changes, a trigger refuses them on PostgreSQL, and a keyed
    hash chain shows any change made past both (`manage.py verify_audit`);
    signed anchors kept elsewhere show rows removed from its end."""

    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The actor's name when it happened ("": the system).
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64)
    graph_name = models.CharField(max_length=200, blank=True, default="")
    thread_id = models.CharField(max_length=255, blank=True, default="")
    checkpoint_id = models.CharField(max_length=64, blank=True, default="")
    # Plain ids, not foreign keys: the trail outlives what it mentions.
    task_id = models.BigIntegerField(null=True, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, default="", editable=False)
    hash = models.CharField(max_length=64, default="", editable=False)
    # How `hash` was made: 1 plain SHA-256 (rows from before the chain was
    # keyed), 2 HMAC-SHA256 with AUDIT_KEY.
    hash_version = models.PositiveSmallIntegerField(default=KEYED, editable=False)

    # Every action the trail records (the audit page filters on them).
    ACTIONS = (
        "run.started",
        "run.cancelled",
        "run.retried",
        "run.deleted",
        "interrupt.raised",
        "task.claimed",
        "task.released",
        "task.assigned",
        "task.approved",
        "task.decided",
        "task.reopened",
        "task.escalated",
        "state.edited",
        "thread.forked",
        "thread.replayed",
        "thread.copied",
        "thread.deleted",
        "rule.changed",
        "assistant.changed",
        "token.changed",
        "webhook.changed",
        "user.changed",
        "group.changed",
        "audit.keyed",
    )

    objects = AuditQuerySet.as_manager()

    class Meta:
        indexes = [
            # The trail newest first (keyset on id), and per thread.
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
            models.Index(fields=["thread_id", "-created_at"], name="audit_thread_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditImmutable("audit events can't be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditImmutable("audit events can't be deleted")

    @property
    def actor_label(self) -> str:
        return self.actor_name or "system"

    @classmethod
    def record(
        cls,
        action: str,
        *,
        actor: Any = None,
        task: ReviewTask | None = None,
        thread_id: str = "",
        graph_name: str = "",
        checkpoint_id: str = "",
        run: Run | None = None,
        before: Any = None,
        after: Any = None,
        client_address: str | None = None,
    ) -> AuditEvent:
        """Add a row at the end of the chain (actor None: the system)."""
        if action not in cls.ACTIONS:
            raise ValueError(f"unknown audit action {action!r} (add it to AuditEvent.ACTIONS)")
        if task is not None:
            thread_id = thread_id or task.thread_id
            graph_name = graph_name or task.graph_name
            checkpoint_id = checkpoint_id or task.checkpoint_id
        if run is not None:
            thread_id = thread_id or run.thread_id
            graph_name = graph_name or run.graph_name
        person = actor if getattr(actor, "is_authenticated", False) else None
        event = cls(
            action=action,
            actor=person,
            actor_name=person.get_username() if person else "",
            task_id=task.pk if task else None,
            run_id=run.pk if run else None,
            thread_id=thread_id,
            graph_name=graph_name,
            checkpoint_id=checkpoint_id,
            before=before,
            after=after,
            client_address=cls._meta.get_field("client_address").get_prep_value(
                client_address or None
            ),
        )
        # Stored as the database gives them back, so the hash can be checked later.
        event.before, event.after = json_roundtrip(before), json_roundtrip(after)
        # Inside the caller's transaction, no savepoint: if the row can't be
        # written, the action it records must not commit either.
        with transaction.atomic(savepoint=False):
            connection = transaction.get_connection()
            if connection.vendor == "postgresql":
                # One writer at a time extends the chain (SQLite's IMMEDIATE
                # transactions already serialise writers).
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK])
            event.prev_hash = _head_hash(connection) or GENESIS
            event.hash = keyed_row_hash(event.__dict__, event.prev_hash, audit_key())
            event.save(force_insert=True)
        return event

    @classmethod
    def verify(cls, marks: Collection[int] = ()) -> Verdict:
        """Walk the whole chain (`marks`: anchors' heads, to see where they stand)."""
        rows = (
            cls.objects.order_by("id")
            .values("id", "prev_hash", "hash", "hash_version", *HASHED)
            .iterator(chunk_size=2000)
        )
        return walk(rows, audit_key(), marks=marks)

    @classmethod
    def anchor(cls, verdict: Verdict | None = None) -> dict[str, Any]:
        """The chain's head, signed: kept outside the database, it shows later
        whether any row up to it was removed or changed. `verdict`: the head
        a walk of the chain verified; else the head now, unchecked."""
        if verdict is None:
            head = cls.objects.order_by("-id").values("id", "hash").first()
            verdict = Verdict(head_id=head["id"], head_hash=head["hash"]) if head else Verdict()
            # Rows commit in id order (one writer extends the chain at a
            # time), so a row added since the head was read can't fall under it.
            verdict.count = cls.objects.filter(id__lte=head["id"]).count() if head else 0
        return sign_anchor(
            last_id=verdict.head_id,
            head_hash=verdict.head_hash,
            count=verdict.count,
            at=timezone.now(),
            key=audit_key(),
        )


def _head_hash(connection) -> str | None:
    """The last row's hash, in one statement written out: each run's start
    and stop extends the chain, and building this query through the ORM
    cost as much as the row's insert."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hash FROM {table} ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
    return row[0] if row else None


AUDIT_CHAIN_LOCK = 7_240_001  # pg_advisory_xact_lock key for the audit chain


def json_roundtrip(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(value, default=str))
