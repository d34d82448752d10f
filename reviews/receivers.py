"""Where the reviews side listens to the graphs side."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.dispatch import receiver

from graphs.signals import run_interrupted
from reviews import live
from reviews.models import ReviewTask


@receiver(run_interrupted, dispatch_uid="reviews.create_tasks")
def create_tasks(sender, run, requests, checkpoint_id: str, **kwargs) -> None:
    """Runs inside the worker's transaction that marks the run interrupted."""
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(
                thread_id=run.thread_id,
                run=run,
                graph_name=run.graph_name,
                checkpoint_id=checkpoint_id,
                interrupt_id=request.interrupt_id,
                action_index=request.action_index,
                shape=request.shape,
                kind=request.kind,
                tool_name=request.tool_name,
                args=request.args,
                description=request.description,
                allowed=request.allowed,
                response_schema=request.response_schema,
                payload=request.value,
                node=request.node,
            )
            for request in requests
        ],
        ignore_conflicts=True,
    )
    transaction.on_commit(partial(live.tasks_created, run.pk))
