"""Where the reviews side listens to the graphs side."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.dispatch import receiver

from graphs.models import Run
from graphs.signals import run_finished, run_interrupted
from reviews import live
from reviews.models import AuditEvent, ReviewTask


@receiver(run_interrupted, dispatch_uid="reviews.create_tasks")
def create_tasks(sender, run, requests, checkpoint_id: str, **kwargs) -> None:
    """Runs inside the worker's transaction that marks the run interrupted."""
    stale = ReviewTask.objects.supersede(run.thread_id, keep_checkpoint=checkpoint_id)
    retried = ReviewTask.objects.filter(
        thread_id=run.thread_id, checkpoint_id=checkpoint_id
    ).exists()
    ReviewTask.objects.create_for(
        thread_id=run.thread_id,
        graph_name=run.graph_name,
        checkpoint_id=checkpoint_id,
        requests=requests,
        run=run,
    )
    if not retried:  # a retried stop asks nothing new
        AuditEvent.record(
            "interrupt.raised",
            thread_id=run.thread_id,
            graph_name=run.graph_name,
            checkpoint_id=checkpoint_id,
            run=run,
            after=[
                {"kind": r.kind, "tool": r.tool_name, "node": r.node, "args": r.args}
                for r in requests
            ],
        )
    transaction.on_commit(partial(live.tasks_created, run.thread_id, checkpoint_id, stale))


@receiver(run_finished, dispatch_uid="reviews.supersede_on_finish")
def supersede_on_finish(sender, run, status: str, **kwargs) -> None:
    """A graph that ran to its end waits for nobody (a failed run still does)."""
    if status == Run.Status.SUCCEEDED:
        stale = ReviewTask.objects.supersede(run.thread_id)
        if stale:
            transaction.on_commit(partial(live.tasks_removed, stale))
