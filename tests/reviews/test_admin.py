"""Admin shows tasks and the audit trail but does not change them."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from reviews.models import AuditEvent


@pytest.fixture
def boss(transactional_db) -> Client:
    """A superuser's signed-in client."""
    admin = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
    client = Client()
    client.force_login(admin)
    return client


def test_audit_trail_is_read_only_in_admin(boss, rita):
    event = AuditEvent.record("task.decided", actor=rita, thread_id="t-1", after={"type": "accept"})
    client = boss
    listing = client.get(reverse("admin:reviews_auditevent_changelist")).content.decode()
    assert "task.decided" in listing and "rita" in listing
    delete = reverse("admin:reviews_auditevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:reviews_auditevent_add")).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_rules_deleted_together_are_each_audited_and_tasks_stay(boss, rita):
    """ "Delete selected" goes the way a rule's own delete page goes; a task,
    the record of a review, is never deleted on its own."""
    from reviews.models import ReviewRule, ReviewTask
    from tests.reviews.conftest import pending, start

    rules = [ReviewRule.objects.create(name=f"rule {n}", graph_name="support") for n in (1, 2)]
    client = boss
    deleted = client.post(
        reverse("admin:reviews_reviewrule_changelist"),
        {"action": "delete_selected", "_selected_action": [r.pk for r in rules], "post": "yes"},
    )
    assert deleted.status_code == 302 and not ReviewRule.objects.exists()
    audited = AuditEvent.objects.filter(action="rule.changed", actor_name="boss")
    assert sorted(e.before["name"] for e in audited) == ["rule 1", "rule 2"]
    assert all(e.after is None for e in audited)

    (task,) = pending(start("support", {"messages": [{"role": "user", "content": "Refund $5"}]}))
    delete = reverse("admin:reviews_reviewtask_delete", args=[task.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse("admin:reviews_reviewtask_changelist"),
        {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302) and ReviewTask.objects.filter(pk=task.pk).exists()


def test_a_rule_changed_in_admin_is_audited_with_its_groups_before_and_after(boss):
    from django.contrib.auth.models import Group

    from reviews.models import ReviewRule

    finance, sales = (Group.objects.create(name=name) for name in ("finance", "sales"))
    rule = ReviewRule.objects.create(name="refunds", graph_name="support", tool_name="refund")
    rule.review_groups.add(finance)
    client = boss
    changed = client.post(
        reverse("admin:reviews_reviewrule_change", args=[rule.pk]),
        {
            "name": "refunds",
            "order": 0,
            "graph_name": "support",
            "tool_name": "refund",
            "condition": "null",
            "on_expiry": "notify",
            "expiry_message": "",
            "required_approvals": 1,
            "review_groups": [sales.pk],
        },
    )
    assert changed.status_code == 302, changed.content.decode()[:2000]
    (event,) = AuditEvent.objects.filter(action="rule.changed")
    assert (event.before["review"], event.after["review"]) == (["finance"], ["sales"])
    assert event.graph_name == "support" and event.actor_name == "boss"


def test_who_may_approve_changed_in_admin_is_audited(boss):
    """Rights come from a user's groups, flags and permissions: adding
    someone to finance, or a permission to a group, is in the trail."""
    from django.contrib.auth.models import Group, Permission

    finance = Group.objects.create(name="finance")
    mallory = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    client = boss
    changed = client.post(
        reverse("admin:auth_user_change", args=[mallory.pk]),
        {
            "username": "mallory",
            "is_active": "on",
            "is_staff": "on",
            "groups": [finance.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert changed.status_code == 302, changed.content.decode()[:3000]
    (event,) = AuditEvent.objects.filter(action="user.changed")
    assert (event.before["groups"], event.after["groups"]) == ([], ["finance"])
    assert (event.before["is_staff"], event.after["is_staff"]) == (False, True)
    assert event.actor_name == "boss"
    view = Permission.objects.get(codename="view_auditevent")
    changed = client.post(
        reverse("admin:auth_group_change", args=[finance.pk]),
        {"name": "finance", "permissions": [view.pk]},
    )
    assert changed.status_code == 302, changed.content.decode()[:3000]
    (event,) = AuditEvent.objects.filter(action="group.changed")
    assert event.before == {"name": "finance", "members": ["mallory"], "permissions": []}
    assert event.after["permissions"] == ["reviews.view_auditevent"]


def test_a_password_set_in_admin_is_audited(boss):
    """Setting someone's password lets its setter act as them."""
    fin = get_user_model().objects.create_user("fin", password="pw-fin-123")
    client = boss
    url = reverse("admin:auth_user_password_change", args=[fin.pk])
    new = {
        "password1": "Another-pw-4567",
        "password2": "Another-pw-4567",
        "usable_password": "true",
    }
    refused = client.post(url, {**new, "password2": "different"})
    assert refused.status_code == 200 and not AuditEvent.objects.filter(action="user.changed")
    assert client.post(url, new).status_code == 302
    (event,) = AuditEvent.objects.filter(action="user.changed")
    assert event.actor_name == "boss" and event.after["username"] == "fin"
    assert event.after["password"] == "set" and "password" not in event.before
