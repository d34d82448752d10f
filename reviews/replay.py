"""Replaying a thread from a past checkpoint (pages and API)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from graphs.models import Checkpoint, Run, Thread
from reviews.models import AuditEvent, DecisionRefused


def replay_from(
    thread: Thread, checkpoint_id: str, *, user: Any, client_address: str | None = None
) -> Run:
    """Queue a run that re-executes the graph from a past root checkpoint; the
    old branch stays. Refused (DecisionRefused) for a checkpoint that isn't
    the thread's, or while a run is active on it."""
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread.pk)
        if not Checkpoint.objects.filter(
            thread_id=thread.pk, checkpoint_ns="", checkpoint_id=checkpoint_id
        ).exists():
            raise DecisionRefused(f"Checkpoint {checkpoint_id!r} is not a point of this thread.")
        active = locked.active_run()
        if active is not None:
            raise DecisionRefused(
                f"Run {active.pk} is {active.phase} on this thread; replay once it has stopped."
            )
        run = Run.enqueue(
            graph_name=thread.graph_name,
            kind=Run.Kind.REPLAY,
            thread_id=thread.pk,
            checkpoint_id=checkpoint_id,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
        )
        AuditEvent.record(
            "thread.replayed",
            actor=user,
            thread_id=thread.pk,
            graph_name=thread.graph_name,
            checkpoint_id=checkpoint_id,
            run=run,
            client_address=client_address,
        )
    return run
