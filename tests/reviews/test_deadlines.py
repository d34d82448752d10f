"""Deadlines: due times from rules, overdue tasks first, and the rule's policy
applied by the worker (never by a page), with the system as the actor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from graphs.duties import sweep
from graphs.models import Run
from graphs.worker import work
from reviews.actions import tasks as task_actions
from reviews.models import AuditEvent, ReviewRule, ReviewTask
from tests.reviews.conftest import pending, start
from tests.reviews.rows import stopped

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


@pytest.fixture
def refunds_rule(rita, sam):
    finance, managers = Group.objects.create(name="finance"), Group.objects.create(name="managers")
    rita.groups.add(finance)
    rita.email, sam.email = "rita@example.com", "sam@example.com"
    rita.save(), sam.groups.add(managers), sam.save()
    rule = ReviewRule.objects.create(
        name="refunds within the hour",
        graph_name="support",
        tool_name="refund",
        deadline_minutes=60,
        escalate_to=managers,
    )
    rule.review_groups.add(finance)
    return rule


def overdue(task: ReviewTask) -> None:
    ReviewTask.objects.filter(pk=task.pk).update(due_at=timezone.now() - timedelta(minutes=1))


def test_due_time_from_the_rule_and_overdue_first(refunds_rule, as_rita):
    (late,) = pending(stopped("support", REFUND))
    (fresh,) = pending(stopped("support", REFUND))
    assert timedelta(minutes=59) < late.due_at - late.created_at <= timedelta(minutes=61)
    overdue(late)
    html = as_rita.get(reverse("queue")).content.decode()
    assert html.index(f'id="task-{late.pk}"') < html.index(f'id="task-{fresh.pk}"')
    assert "overdue" in html and "due in" in html


def test_notify_mails_the_reviewers_once(refunds_rule):
    (task,) = pending(start("support", REFUND))
    overdue(task)
    sweep("w1")  # the worker's side duties
    sweep("w2")  # another worker's do nothing more
    assert [m.to for m in mail.outbox] == [["rita@example.com"]]
    assert "Overdue review: refund on support" in mail.outbox[0].subject
    (event,) = AuditEvent.objects.filter(action="task.escalated")
    assert event.actor is None and event.after["policy"] == "notify"
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"


def test_reassign_moves_it_to_the_escalation_group(refunds_rule):
    ReviewRule.objects.filter(pk=refunds_rule.pk).update(on_expiry="reassign")
    (task,) = pending(start("support", REFUND))
    overdue(task)
    sweep("w1")
    task.refresh_from_db()
    assert task.assigned_group.name == "managers" and task.escalated_at
    assert [m.to for m in mail.outbox] == [["sam@example.com"]]


def test_reject_decides_as_the_system_and_the_model_reads_why(refunds_rule, rita):
    ReviewRule.objects.filter(pk=refunds_rule.pk).update(
        on_expiry="reject", expiry_message="Nobody approved the refund in time."
    )
    (task,) = pending(start("support", REFUND))
    task_actions.claim([task], user=rita)  # a claim doesn't stop the system
    overdue(task)
    sweep("w1")  # rejects, and queues the resume
    work("w1")
    task.refresh_from_db()
    assert task.status == "decided" and task.decided_by is None
    assert task.decision == {"type": "response", "message": "Nobody approved the refund in time."}
    resume = Run.objects.get(kind=Run.Kind.RESUME)
    assert resume.requested_by is None and resume.status == "succeeded"
    actions = list(AuditEvent.objects.filter(task_id=task.pk).values_list("action", "actor_name"))
    assert ("task.decided", "") in actions and ("task.escalated", "") in actions


def test_demo_rule_makes_large_refunds_need_two_of_finance(transactional_db):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    for name in ("reviewer", "reviewer2"):
        get_user_model().objects.create_user(name, password=f"pw-{name}-123")
    call_command("seed_demo_rules")
    call_command("seed_demo_rules")  # twice: nothing more
    (rule,) = ReviewRule.objects.all()
    # Who may approve, changed by the command as in admin: in the trail.
    trail = AuditEvent.objects.filter(action__in=["user.changed", "rule.changed"])
    assert sorted((e.action, (e.after or {}).get("username", "")) for e in trail) == [
        ("rule.changed", ""),
        ("user.changed", "reviewer"),
        ("user.changed", "reviewer2"),
    ]
    assert all(e.after.get("groups", ["finance"]) == ["finance"] for e in trail)
    big = {"messages": [{"role": "user", "content": "Please refund order A-1002, $2400"}]}
    (large,) = pending(stopped("support", big))
    (small,) = pending(stopped("support", REFUND))
    assert large.rule == rule and large.required_approvals == 2 and large.due_at
    assert small.rule is None
