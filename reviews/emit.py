"""`emit`: the one place an action's effects leave it.

An action (claim, decide, cancel, edit the state, …) checks, locks and writes;
then it calls `emit` once per event, inside its transaction. `emit` writes the
audit row, queues the webhook deliveries subscribers asked for (in the same
transaction: a rolled-back action sends nothing) and, once committed, pushes
the live update to open pages. What each event does is read from `EFFECTS`,
so an action can't forget one of the three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction

from reviews.audit_log import AuditEvent
from reviews.webhook_models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from graphs.models import Run
    from reviews.models import ReviewTask


@dataclass(frozen=True)
class Effects:
    # The webhook event subscribers hear of, per task ("" for none).
    webhook: str = ""
    # What open queues show of the event's tasks: "created" (new rows, and
    # the `removed` ones leave), "changed" (rows redrawn: holder, assignee,
    # approvals), "removed" (rows leave), "rights" (every open page reads
    # what its reviewer may see again), or "" (a run's own events tell the
    # pages that show it).
    live: str = ""


EFFECTS: dict[str, Effects] = {
    "run.started": Effects(),
    # A queued resume cancelled: its decided tasks open again.
    "run.cancelled": Effects(live="created"),
    "run.retried": Effects(),
    "run.deleted": Effects(),
    "interrupt.raised": Effects(webhook="task.created", live="created"),
    "task.claimed": Effects(live="changed"),
    "task.released": Effects(live="changed"),
    "task.assigned": Effects(live="changed"),
    "task.approved": Effects(live="changed"),
    "task.decided": Effects(webhook="task.decided", live="removed"),
    "task.reopened": Effects(live="created"),
    "task.escalated": Effects(webhook="task.expired", live="changed"),
    # What the new checkpoint waits for is asked anew; the old asks leave.
    "state.edited": Effects(webhook="task.created", live="created"),
    "thread.forked": Effects(webhook="task.created", live="created"),
    "thread.replayed": Effects(),
    # A copy asks what its checkpoint waits for; a deleted thread's asks leave.
    "thread.copied": Effects(webhook="task.created", live="created"),
    "thread.deleted": Effects(live="removed"),
    "rule.changed": Effects(live="rights"),
    # An assistant changed, set back to a version, or deleted: every run
    # that names it after runs with what it says now.
    "assistant.changed": Effects(),
    # Made, changed or deleted in admin: who holds a key, where events go.
    "token.changed": Effects(),
    "webhook.changed": Effects(),
    # Who may approve: a user's groups, staff and superuser flags and
    # permissions, a group's permissions (open pages follow such changes
    # through reviews.receivers, whatever made them).
    "user.changed": Effects(),
    "group.changed": Effects(),
    "audit.keyed": Effects(),
}


def emit(
    action: str,
    *,
    actor: Any = None,
    task: ReviewTask | None = None,
    tasks: Sequence[ReviewTask] | None = None,
    removed: Sequence[int] = (),
    run: Run | None = None,
    thread_id: str = "",
    graph_name: str = "",
    checkpoint_id: str = "",
    before: Any = None,
    after: Any = None,
    client_address: str | None = None,
) -> AuditEvent:
    """Record `action` (one audit row, about `task` or the thread named) and
    send its effects for `tasks` (default: `task`). Call it inside the
    action's transaction."""
    effects = EFFECTS[action]
    event = AuditEvent.record(
        action,
        actor=actor,
        task=task,
        thread_id=thread_id,
        graph_name=graph_name,
        checkpoint_id=checkpoint_id,
        run=run,
        before=before,
        after=after,
        client_address=client_address,
    )
    concerned = list(tasks) if tasks is not None else [task] if task is not None else []
    if effects.webhook and concerned and _any_endpoint():
        endpoints = WebhookDelivery.endpoints_for(effects.webhook)
        for each in concerned if endpoints else ():
            WebhookDelivery.queue_event(effects.webhook, each, endpoints)
    if effects.live and (concerned or removed or effects.live == "rights"):
        transaction.on_commit(partial(_push, effects.live, concerned, list(removed)))
    return event


def _any_endpoint() -> bool:
    """Whether any endpoint listens at all, asked of the database each time
    (an endpoint added by another process counts at once) in one small
    statement: nearly every stop of every run asks, and most sites have none,
    where reading the endpoints through the ORM cost a tenth of a stop."""
    connection = transaction.get_connection()
    table = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE active = %s LIMIT 1", [True])
        return cursor.fetchone() is not None


def _push(kind: str, tasks: list[ReviewTask], removed: list[int]) -> None:
    from reviews import live  # renders rows: imports the models this module serves

    if kind == "rights":
        live.rights_changed()
    elif kind == "created":
        live.tasks_created(tasks, removed)
    elif kind == "changed":
        live.tasks_changed([t.pk for t in tasks])
    else:
        live.tasks_removed([t.pk for t in tasks] + removed)
