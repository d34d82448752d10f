"""Actions on whole threads: copy one (its checkpoints and metadata) and
delete one (its runs, tasks and checkpoints; the audit trail keeps the record)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.interrupts import pending_requests
from graphs.models import Thread
from reviews.actions import ActionRefused
from reviews.emit import emit
from reviews.graph_state import GraphUnavailable, config_for, graph_for
from reviews.models import ReviewTask


def copy(source: Thread, *, user: Any, client_address: str | None = None) -> Thread:
    """A new thread with the source's checkpoints and metadata. What its state
    waits for becomes review tasks of the copy, as on any stopped thread."""
    with transaction.atomic():
        copied = Thread.objects.create(
            thread_id=str(uuid.uuid4()),
            graph_name=source.graph_name,
            title=source.title,
            metadata=dict(source.metadata or {}),
        )
        DjangoCheckpointSaver().copy_thread(source.pk, copied.pk)
        copied.refresh_from_db()  # what the copied checkpoints wrote to the row
        latest = copied.latest_checkpoint_id()
        created: list[ReviewTask] = []
        if latest and copied.graph_name:
            try:
                graph = graph_for(copied)
            except GraphUnavailable:
                graph = None  # not loadable here: nothing to read what it waits for
            if graph is not None:
                created = ReviewTask.objects.create_for(
                    thread_id=copied.pk,
                    graph_name=copied.graph_name,
                    checkpoint_id=latest,
                    requests=pending_requests(graph.get_state(config_for(copied), subgraphs=True)),
                )
        _carry_restrictions(source, copied)
        emit(
            "thread.copied",
            actor=user,
            tasks=created,
            thread_id=copied.pk,
            graph_name=copied.graph_name,
            checkpoint_id=latest or "",
            after={"copied_from": source.pk},
            client_address=client_address,
        )
    return copied


def _carry_restrictions(source: Thread, copied: Thread) -> None:
    """Who may see a thread follows the rules of every task asked on it
    (reviews.access): the copy holds the same state, so the source's tasks
    under rules come along, as history (superseded), wherever the copy does
    not ask them anew."""
    carried = []
    for task in ReviewTask.objects.filter(thread_id=source.pk).under_rules():
        task.pk, task.thread_id, task.run_id, task.resumed_by_id = None, copied.pk, None, None
        task.status, task.claimed_by_id, task.claim_expires_at = (
            ReviewTask.Status.SUPERSEDED,
            None,
            None,
        )
        carried.append(task)
    ReviewTask.objects.bulk_create(carried, ignore_conflicts=True)


def delete(thread: Thread, *, user: Any, client_address: str | None = None) -> None:
    """Remove a thread, its runs, review tasks and checkpoints; refused while
    a run has it."""
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        ActionRefused.while_running(thread, "delete it")
        open_tasks = list(thread.review_tasks.pending().values_list("pk", flat=True))
        emit(
            "thread.deleted",
            actor=user,
            removed=open_tasks,
            thread_id=thread.pk,
            graph_name=thread.graph_name,
            checkpoint_id=thread.latest_checkpoint_id() or "",
            before={"open_tasks": open_tasks, "runs": thread.runs.count()},
            client_address=client_address,
        )
        thread_id = thread.pk  # delete() sets the instance's pk to None
        thread.delete()
        DjangoCheckpointSaver().delete_thread(thread_id)
