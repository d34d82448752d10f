"""Deadlines: what happens to a task nobody decided in time. Runs in the
worker's side duties (graphs.signals.worker_sweep, in graphs.duties' loop),
never in a page view nor before a run's claim; each overdue task's rule is
applied by reviews.actions.tasks.escalate, the system its actor."""

from __future__ import annotations

import logging

from django.dispatch import receiver
from django.utils import timezone

from graphs.signals import worker_sweep
from reviews.actions import tasks as task_actions
from reviews.models import ReviewTask

log = logging.getLogger(__name__)


@receiver(worker_sweep, dispatch_uid="reviews.expire_due")
def _on_sweep(sender, **kwargs) -> None:
    expire_due()


def expire_due(now=None) -> list[int]:
    """Apply each overdue task's rule once; returns the tasks handled."""
    now = now or timezone.now()
    handled = []
    due = ReviewTask.objects.pending().filter(due_at__lte=now, escalated_at__isnull=True)
    for task in due.select_related("rule", "rule__escalate_to"):
        try:
            if task_actions.escalate(task, now):
                handled.append(task.pk)
        except Exception:  # one task's failure must not stop the others
            log.exception("escalating task %s failed", task.pk)
    return handled
