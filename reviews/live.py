"""What the reviews app tells open pages, rendered once per event.

Fragments are rendered here, in the process that changed the data, and sent
as HTML: a consumer only forwards them, so an event costs the same whether
one reviewer is watching or two hundred.
"""

from __future__ import annotations

from django.db.models import prefetch_related_objects
from django.template.loader import render_to_string

from graphs.events import QUEUE_GROUP, publish
from reviews.models import ReviewTask
from reviews.queue_filters import turn_rows


def _publish_queue(
    new_tasks: list[ReviewTask], removed: list[int], changed: list[ReviewTask] = ()
) -> None:
    context = {"pending_count": ReviewTask.objects.pending().count()}
    publish(
        QUEUE_GROUP,
        {
            "type": "queue.changed",
            # Each part goes out as a websocket message of its own (see
            # reviews/live.html); rows carry their rule, so each page gets
            # only the rows its reviewer may see.
            "count_html": render_to_string("reviews/live.html#queue_count", context),
            "rows": [
                {
                    "rule": task.rule_id,
                    "html": render_to_string("reviews/queue.html#row", {"task": task}),
                }
                # A turn's calls share a row when they share a rule (what
                # decides who may see them).
                for task in turn_rows(sorted(new_tasks, key=lambda t: (t.rule_id or 0, t.pk)))
            ],
            "removed": _removals(removed),
            # Rows whose holder or assignee changed, replacing themselves in place.
            "changed": [
                {
                    "rule": task.rule_id,
                    "html": render_to_string("reviews/queue.html#row", {"task": task, "oob": True}),
                }
                for task in turn_rows(list(changed))
            ],
        },
    )


ROW_RELATED = ("thread", "rule", "claimed_by", "assigned_to", "assigned_group")


def _removals(removed: list[int]) -> list[dict]:
    """What leaves open queues. A turn's calls share a row, named by its
    first open call (turn_rows, oldest first): when some calls of a turn are
    decided and others still wait, the row stays, replaced in place by what
    is left. Each part carries its rule: a task's id is not news for a page
    whose reviewer may not see the task."""
    gone: dict[tuple, list[int]] = {}
    for pk, *key in ReviewTask.objects.filter(pk__in=removed).values_list(
        "pk", "thread_id", "checkpoint_id", "interrupt_id", "rule_id"
    ):
        gone.setdefault(tuple(key), []).append(pk)
    parts = []
    for (thread_id, checkpoint_id, interrupt_id, rule_id), pks in gone.items():
        left = list(
            ReviewTask.objects.pending()
            .filter(
                thread_id=thread_id,
                checkpoint_id=checkpoint_id,
                interrupt_id=interrupt_id,
                rule_id=rule_id,
            )
            .exclude(pk__in=removed)
            .select_related(*ROW_RELATED)
            .order_by("pk")
        )
        shown = min(pks + [t.pk for t in left])  # the row's id on open pages
        html = "".join(
            render_to_string("reviews/live.html#queue_removed", {"pk": pk})
            for pk in pks
            if pk != shown or not left
        )
        if left:
            (row,) = turn_rows(left)
            html += render_to_string("reviews/queue.html#row", {"task": row, "replaces": shown})
        parts.append({"rule": rule_id, "html": html})
    # Ids of no task any more: nothing to look up, nobody's news but a delete.
    for pk in set(removed) - {pk for pks in gone.values() for pk in pks}:
        parts.append(
            {"rule": None, "html": render_to_string("reviews/live.html#queue_removed", {"pk": pk})}
        )
    return parts


def tasks_created(tasks: list[ReviewTask], removed: list[int] = ()) -> None:
    """New review tasks (and older ones of their thread that no longer
    apply): rows for every open queue, and the new count."""
    if tasks or removed:
        prefetch_related_objects(tasks, "thread")
        _publish_queue(tasks, list(removed))


def tasks_removed(task_ids: list[int]) -> None:
    """Tasks decided or retired: their rows leave every open queue."""
    _publish_queue([], list(task_ids))


def tasks_changed(task_ids: list[int]) -> None:
    """Tasks claimed, released or assigned: open queues show the new holder."""
    # Oldest first, as the queue lists them: a turn's row is named by its first call.
    tasks = list(
        ReviewTask.objects.filter(pk__in=task_ids).select_related(*ROW_RELATED).order_by("pk")
    )
    if tasks:
        _publish_queue([], [], tasks)
