"""What the reviews app tells open queue pages.

An action publishes only the ids of the tasks it touched; each process that
has open queue pages renders their rows once, in its queue hub
(reviews.queue_hub), and hands the fragments to every page, which keeps the
rows its reviewer may see. So an event costs the same whether one reviewer
is watching or two hundred, and a process with no open queue page (a worker,
a server only clients of /langgraph/ call) renders nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.template.loader import render_to_string

from graphs.events import QUEUE_GROUP, publish
from reviews.models import ReviewTask
from reviews.queue_filters import turn_rows
from reviews.queue_row import UNREAD, Local, local, row_html

# What open queues hear: the ids of the tasks an action created, removed or
# changed. Rendered into a "queue.changed" event by render().
TASKS_EVENT = "queue.tasks"
# Rules, groups or a user's standing changed: pages read their rights again.
RIGHTS_EVENT = "rights.changed"
ROW_RELATED = ("thread", "rule", "claimed_by", "assigned_to", "assigned_group")


def _publish(created: list[int], removed: list[int], changed: list[int]) -> None:
    publish(
        QUEUE_GROUP,
        {"type": TASKS_EVENT, "created": created, "removed": removed, "changed": changed},
    )


def tasks_created(tasks: list[ReviewTask], removed: list[int] = ()) -> None:
    """New review tasks (and older ones of their thread that no longer
    apply): rows for every open queue, and the new count."""
    if tasks or removed:
        _publish([task.pk for task in tasks], list(removed), [])


def tasks_removed(task_ids: list[int]) -> None:
    """Tasks decided or retired: their rows leave every open queue."""
    _publish([], list(task_ids), [])


def tasks_changed(task_ids: list[int]) -> None:
    """Tasks claimed, released or assigned: open queues show the new holder."""
    if task_ids:
        _publish([], [], list(task_ids))


def rights_changed(*, users: list[int] | None = None, sessions: list[str] = ()) -> None:
    """Who may see what changed: open pages of these users (of everyone
    when None) read their rights again; pages of these sessions (signed
    out) close."""
    publish(QUEUE_GROUP, {"type": RIGHTS_EVENT, "users": users, "sessions": list(sessions)})


def session_tag(scope_or_key: dict | str | None) -> str:
    """A session's name in live messages: its key hashed, never the key."""
    key = scope_or_key
    if isinstance(scope_or_key, dict):
        session = scope_or_key.get("session")
        key = session.session_key if session is not None else None
    return hashlib.sha256(f"live-session:{key}".encode()).hexdigest()[:32] if key else ""


def render(event: dict[str, Any]) -> dict[str, Any] | None:
    """The "queue.changed" event open pages take (reviews.consumers), from
    a TASKS_EVENT: the rows as the database holds them now. Each part
    carries its rule, so each page keeps only the rows its reviewer may see,
    and each page sends what it keeps as one websocket message (two when new
    rows and rows replaced in place come together: see reviews/live.html).
    None when there is nothing to show."""
    created = _rows(event["created"])
    changed = _rows(event["changed"])
    if event["changed"] and not (changed or event["created"] or event["removed"]):
        return None  # changed tasks gone since: their removal tells the pages
    here = local()
    removed, replaced = _removals(event["removed"], here)
    context = {"pending_count": ReviewTask.objects.pending().count()}
    return {
        "type": "queue.changed",
        "count_html": render_to_string("reviews/live.html#queue_count", context),
        "rows": [
            {
                "rules": _rules_of(task),
                "html": row_html(task, here=here),
            }
            # A turn's calls share a row when they share a rule (what
            # decides who may see them).
            for task in turn_rows(
                sorted(created, key=lambda t: (*(r or 0 for r in _rules_of(t)), t.pk))
            )
        ],
        "removed": removed,
        # Rows that replace themselves in place: their holder or assignee
        # changed, or some calls of their turn were decided.
        "changed": replaced
        + [
            {
                "rules": _rules_of(task),
                "html": row_html(task, oob=True, here=here),
            }
            for task in turn_rows(changed)
        ],
    }


def _rules_of(task: ReviewTask) -> list[int | None]:
    """The rules a reader must see under to see the task's row: its own and
    the one its edit fell under."""
    return [task.rule_id, task.edit_rule_id]


def _rows(task_ids: list[int]) -> list[ReviewTask]:
    # Oldest first, as the queue lists them: a turn's row is named by its first call.
    if not task_ids:
        return []
    return list(
        ReviewTask.objects.filter(pk__in=task_ids)
        .select_related(*ROW_RELATED)
        .defer(*UNREAD)
        .order_by("pk")
    )


def _removals(removed: list[int], here: Local) -> tuple[list[dict], list[dict]]:
    """What leaves open queues, and the rows that stay in its place. A
    turn's calls share a row, named by its first open call (turn_rows, oldest
    first): when some calls of a turn are decided and others still wait, the
    row stays, replaced in place by what is left. Each part carries its rule:
    a task's id is not news for a page whose reviewer may not see the task."""
    gone: dict[tuple, list[int]] = {}
    for pk, *key in ReviewTask.objects.filter(pk__in=removed).values_list(
        "pk", "thread_id", "checkpoint_id", "interrupt_id", "rule_id", "edit_rule_id"
    ):
        gone.setdefault(tuple(key), []).append(pk)
    deleted, replaced = [], []
    for (thread_id, checkpoint_id, interrupt_id, rule_id, edit_rule_id), pks in gone.items():
        left = list(
            ReviewTask.objects.pending()
            .filter(
                thread_id=thread_id,
                checkpoint_id=checkpoint_id,
                interrupt_id=interrupt_id,
                rule_id=rule_id,
                edit_rule_id=edit_rule_id,
            )
            .exclude(pk__in=removed)
            .select_related(*ROW_RELATED)
            .defer(*UNREAD)
            .order_by("pk")
        )
        shown = min(pks + [t.pk for t in left])  # the row's id on open pages
        html = "".join(_removed(pk) for pk in pks if pk != shown or not left)
        if html:
            deleted.append({"rules": [rule_id, edit_rule_id], "html": html})
        if left:
            (row,) = turn_rows(left)
            replaced.append(
                {"rules": [rule_id, edit_rule_id], "html": row_html(row, replaces=shown, here=here)}
            )
    # Ids of no task any more: nothing to look up, nobody's news but a delete.
    for pk in set(removed) - {pk for pks in gone.values() for pk in pks}:
        deleted.append({"rules": [None], "html": _removed(pk)})
    return deleted, replaced


def _removed(pk: int) -> str:
    return render_to_string("reviews/live.html#queue_removed", {"pk": pk})
