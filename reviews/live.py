"""What the reviews app tells open pages, rendered once per event.

Fragments are rendered here, in the process that changed the data, and sent
as HTML: a consumer only forwards them, so an event costs the same whether
one reviewer is watching or two hundred.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from graphs.events import QUEUE_GROUP, publish
from reviews.models import ReviewTask


def _publish_queue(new_tasks: list[ReviewTask], removed: list[int]) -> None:
    context = {
        "new_tasks": new_tasks,
        "removed": removed,
        "pending_count": ReviewTask.objects.pending().count(),
    }
    parts = (
        ["queue_count"]
        + (["queue_rows"] if new_tasks else [])
        + (["queue_removed"] if removed else [])
    )
    publish(
        QUEUE_GROUP,
        {
            "type": "queue.changed",
            "tasks": [t.pk for t in new_tasks],
            "removed": removed,
            # One websocket message each (see reviews/live.html).
            "html": [render_to_string(f"reviews/live.html#{part}", context) for part in parts],
        },
    )


def tasks_created(thread_id: str, checkpoint_id: str, removed: list[int] = ()) -> None:
    """New review tasks of a thread's checkpoint (and older ones of the thread
    that no longer apply): rows for every open queue, and the new count."""
    tasks = list(
        ReviewTask.objects.pending()
        .filter(thread_id=thread_id, checkpoint_id=checkpoint_id)
        .select_related("thread")
        .order_by("interrupt_id", "action_index")
    )
    if tasks or removed:
        _publish_queue(tasks, list(removed))


def tasks_removed(task_ids: list[int]) -> None:
    """Tasks decided or retired: their rows leave every open queue."""
    _publish_queue([], list(task_ids))
