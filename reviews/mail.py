"""Mail to reviewers: an assignment, an overdue task. Sent once the action's
transaction commits (printed to the console unless EMAIL_BACKEND is set)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from reviews.models import ReviewRule, ReviewTask


def assigned(task: ReviewTask, *, to_user: Any = None, to_group: Any = None) -> None:
    """Mail the person or the group a task was assigned to."""
    people = [to_user] if to_user is not None else list(to_group.user_set.filter(is_active=True))
    what = _what(task)
    _send(
        sorted({p.email for p in people if p.email}),
        f"Assigned to you: {what} on {task.graph_name}",
        f"Task {task.pk} ({what}, thread {task.thread_id}) waits for your review.\n",
    )


def overdue(task: ReviewTask, policy: str) -> None:
    """Mail the reviewers (or the escalation group) of a task that ran out."""
    what = _what(task)
    _send(
        _overdue_recipients(task, policy),
        f"Overdue review: {what} on {task.graph_name}",
        f"Task {task.pk} ({what}, thread {task.thread_id}) was due at "
        f"{task.due_at:%Y-%m-%d %H:%M} UTC.\nRule: {task.rule}. What happened: {policy}.\n",
    )


def _what(task: ReviewTask) -> str:
    return task.tool_name or task.node or task.get_kind_display()


def _overdue_recipients(task: ReviewTask, policy: str) -> list[str]:
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


def _send(recipients: list[str], subject: str, body: str) -> None:
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True
            )
        )
