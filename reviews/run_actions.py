"""Runs asked for by reviewers: replay from a past checkpoint, cancel, retry
(pages and API)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from graphs.models import Checkpoint, Run, Thread
from reviews.emit import emit
from reviews.models import ActionRefused, ReviewTask


def cancel_run(run: Run, *, user: Any, client_address: str | None = None) -> Run:
    """Stop a queued or running run (see Run.cancel), audited; refused
    (ActionRefused) once it has stopped.

    A queued resume never ran, so the thread still waits where its
    reviewers decided: their review is given back (the tasks open again,
    approvals towards a quorum included) instead of being lost with the run."""
    before = run.status
    reopened: list[ReviewTask] = []
    with transaction.atomic():
        if not run.cancel(by=user):
            run.refresh_from_db()
            raise ActionRefused(f"Run {run.pk} has already stopped: it is {run.status}.")
        if before == Run.Status.QUEUED:
            reopened = ReviewTask.objects.reopen(run)
        emit(
            "run.cancelled",
            actor=user,
            tasks=reopened,
            thread_id=run.thread_id,
            graph_name=run.graph_name,
            run=run,
            before={"status": before},
            after={
                "status": run.status,
                **({"reopened": [t.pk for t in reopened]} if reopened else {}),
            },
            client_address=client_address,
        )
    return run


def retry_run(run: Run, *, user: Any, client_address: str | None = None) -> Run:
    """Queue the thread's newest run again after it failed; returns the new run.

    A run that wrote checkpoints continues from the thread's latest one (the
    step that failed runs again, with any resume value already saved there);
    a start that failed before its first checkpoint is sent its input again.
    Refused (ActionRefused) for a run that did not fail, or that a newer run
    of the thread has followed.
    """
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=run.thread_id)
        run.refresh_from_db()
        if run.status != Run.Status.FAILED:
            raise ActionRefused(f"Run {run.pk} is {run.phase}; only a failed run is retried.")
        waiting = ReviewTask.objects.pending().filter(thread_id=thread.pk).first()
        if waiting is not None:
            # A refused answer opened its review again: retrying would only
            # ask the same question, and never resends the refused answer.
            raise ActionRefused(
                f"The thread waits for review (task {waiting.pk}); decide it instead of retrying."
            )
        newest = thread.runs.order_by("-pk").first()
        if newest.pk != run.pk:
            raise ActionRefused(
                f"Run {newest.pk} came after run {run.pk}: retry the thread's newest run."
            )
        started = Checkpoint.objects.filter(thread_id=thread.pk).exists()
        again = Run.enqueue(
            graph_name=run.graph_name,
            kind=Run.Kind.CONTINUE if started else run.kind,
            thread_id=thread.pk,
            payload=None if started else run.payload,
            interrupt_before=run.interrupt_before,
            interrupt_after=run.interrupt_after,
            requested_by=user,
        )
        emit(
            "run.retried",
            actor=user,
            thread_id=thread.pk,
            graph_name=run.graph_name,
            run=again,
            before={"run": run.pk, "error": run.error},
            after={"run": again.pk, "kind": again.kind},
            client_address=client_address,
        )
    return again


def replay_from(
    thread: Thread, checkpoint_id: str, *, user: Any, client_address: str | None = None
) -> Run:
    """Queue a run that re-executes the graph from a past root checkpoint; the
    old branch stays. Refused (ActionRefused) for a checkpoint that isn't
    the thread's, or while a run is active on it."""
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread.pk)
        if not Checkpoint.objects.filter(
            thread_id=thread.pk, checkpoint_ns="", checkpoint_id=checkpoint_id
        ).exists():
            raise ActionRefused(f"Checkpoint {checkpoint_id!r} is not a point of this thread.")
        ActionRefused.while_running(locked, "replay")
        run = Run.enqueue(
            graph_name=thread.graph_name,
            kind=Run.Kind.REPLAY,
            thread_id=thread.pk,
            checkpoint_id=checkpoint_id,
            requested_by=user,
        )
        emit(
            "thread.replayed",
            actor=user,
            thread_id=thread.pk,
            graph_name=thread.graph_name,
            checkpoint_id=checkpoint_id,
            run=run,
            client_address=client_address,
        )
    return run
