"""What the reviews app tells open pages, rendered once per event.

Fragments are rendered here, in the process that changed the data, and sent
as HTML: a consumer only forwards them, so an event costs the same whether
one reviewer is watching or two hundred.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from graphs.events import QUEUE_GROUP, publish
from reviews.models import ReviewTask


def tasks_created(run_id: int) -> None:
    """New review tasks of a run: rows for every open queue, and the new count."""
    pending = ReviewTask.objects.filter(status=ReviewTask.Status.PENDING)
    tasks = list(pending.filter(run_id=run_id).order_by("action_index"))
    if not tasks:
        return
    html = render_to_string(
        "reviews/live.html#queue_update",
        {"new_tasks": tasks, "pending_count": pending.count()},
    )
    publish(
        QUEUE_GROUP,
        {"type": "queue.changed", "run": run_id, "tasks": [t.pk for t in tasks], "html": html},
    )
