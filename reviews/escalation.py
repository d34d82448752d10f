"""Deadlines: what happens to a task nobody decided in time. Runs in the
worker's side duties (graphs.signals.worker_sweep, in graphs.duties' loop),
never in a page view nor before a run's claim; the system is the actor in the
audit trail."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from graphs.signals import worker_sweep
from reviews.decision_forms import quick_decision
from reviews.emit import emit
from reviews.models import ActionRefused, DecisionsInvalid, ReviewRule, ReviewTask

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
        # One worker handles a task: the first to mark it escalated.
        if not ReviewTask.objects.filter(
            pk=task.pk, status=ReviewTask.Status.PENDING, escalated_at__isnull=True
        ).update(escalated_at=now):
            continue
        handled.append(task.pk)
        try:
            _apply(task)
        except Exception:  # one task's failure must not stop the others
            log.exception("escalating task %s failed", task.pk)
    return handled


def _apply(task: ReviewTask) -> None:
    rule = task.rule
    policy = rule.on_expiry if rule else ReviewRule.OnExpiry.NOTIFY
    outcome = policy
    if policy == ReviewRule.OnExpiry.REJECT:
        group = list(ReviewTask.objects.of_interrupt(task).pending())
        try:
            decisions = {t.pk: quick_decision(t, "reject", rule.expiry_message) for t in group}
            ReviewTask.decide_together(group, decisions, user=None)
        except (ValueError, ActionRefused, DecisionsInvalid) as exc:
            outcome = f"notify (could not reject: {exc})"
            policy = ReviewRule.OnExpiry.NOTIFY
    with transaction.atomic():
        if policy == ReviewRule.OnExpiry.REASSIGN and rule.escalate_to_id:
            ReviewTask.objects.filter(pk=task.pk).update(assigned_group=rule.escalate_to)
        emit(
            "task.escalated",
            task=task,
            after={"policy": outcome, "due_at": task.due_at.isoformat(), "rule": str(rule or "")},
        )
    _mail(task, policy)


def _recipients(task: ReviewTask, policy: str) -> list[str]:
    rule = task.rule
    if rule is None:
        return []
    if policy == ReviewRule.OnExpiry.REASSIGN and rule.escalate_to_id:
        groups = [rule.escalate_to_id]
    else:
        groups = [
            *rule.review_groups.values_list("pk", flat=True),
            *rule.admin_groups.values_list("pk", flat=True),
        ]
    users = get_user_model().objects.filter(groups__in=groups, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _mail(task: ReviewTask, policy: str) -> None:
    recipients = _recipients(task, policy)
    if not recipients:
        return
    what = task.tool_name or task.node or task.get_kind_display()
    subject = f"Overdue review: {what} on {task.graph_name}"
    body = (
        f"Task {task.pk} ({what}, thread {task.thread_id}) was due at {task.due_at:%Y-%m-%d %H:%M} UTC.\n"
        f"Rule: {task.rule}. What happened: {policy}.\n"
    )
    transaction.on_commit(
        lambda: send_mail(
            subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True
        )
    )


def notify_assignment(task: ReviewTask, *, to_user=None, to_group=None) -> None:
    """Mail the person or the group a task was assigned to."""
    people = [to_user] if to_user is not None else list(to_group.user_set.filter(is_active=True))
    recipients = sorted({p.email for p in people if p.email})
    if not recipients:
        return
    what = task.tool_name or task.node or task.get_kind_display()
    subject = f"Assigned to you: {what} on {task.graph_name}"
    body = f"Task {task.pk} ({what}, thread {task.thread_id}) waits for your review.\n"
    transaction.on_commit(
        lambda: send_mail(
            subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True
        )
    )
