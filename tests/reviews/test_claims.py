"""Claims: one reviewer holds a task for a while; two claims at once, one wins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviews.actions import ActionRefused
from reviews.actions import tasks as task_actions
from reviews.models import AuditEvent, ReviewTask
from tests.reviews.conftest import pending
from tests.reviews.rows import stopped
from tests.reviews.test_decision_races import race

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}


def test_two_claims_at_once_one_wins(rita, sam):
    for _ in range(4):
        (task,) = pending(stopped("support", REFUND))
        results = race(
            lambda t=task: task_actions.claim([t], user=rita),
            lambda t=task: task_actions.claim([t], user=sam),
        )
        refused = [r for r in results if isinstance(r, ActionRefused)]
        assert len(refused) == 1 and "Already claimed by" in str(refused[0])
        task.refresh_from_db()
        assert task.claimed_by in (rita, sam)
        assert AuditEvent.objects.filter(action="task.claimed", task_id=task.pk).count() == 1


def test_a_claim_blocks_others_decisions_until_it_runs_out(as_rita, as_sam, rita, sam):
    thread = stopped("tool_agent", FLIGHT)
    book, charge = pending(thread)
    assert as_rita.post(reverse("claim", args=[book.pk])).status_code == 302
    charge.refresh_from_db()
    assert charge.claimed_by == rita  # the whole turn is claimed together
    page = as_sam.get(reverse("task", args=[book.pk])).content.decode()
    assert "claimed by rita, 15 minutes left" in page
    assert "claimed by rita" in as_sam.get(reverse("queue")).content.decode()
    data = {f"t{book.pk}-type": "approve", f"t{charge.pk}-type": "approve"}
    refused = as_sam.post(reverse("decide", args=[book.pk]), data)
    assert refused.status_code == 409
    assert "claimed by rita" in refused.content.decode()
    followed = as_sam.post(reverse("claim", args=[book.pk]), follow=True).content.decode()
    assert "Already claimed by rita" in followed

    # The claim runs out by itself; then sam may take the turn.
    ReviewTask.objects.filter(pk__in=[book.pk, charge.pk]).update(
        claim_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert as_sam.post(reverse("decide", args=[book.pk]), data).status_code == 302
    assert ReviewTask.objects.get(pk=book.pk).decided_by == sam


def test_release_and_extend(as_rita, rita):
    (task,) = pending(stopped("support", REFUND))
    as_rita.post(reverse("claim", args=[task.pk]))
    first = ReviewTask.objects.get(pk=task.pk).claim_expires_at
    as_rita.post(reverse("claim", args=[task.pk]))  # again: extends
    assert ReviewTask.objects.get(pk=task.pk).claim_expires_at >= first
    as_rita.post(reverse("claim", args=[task.pk]), {"release": "1"})
    task.refresh_from_db()
    assert task.claimed_by is None and task.claim_expires_at is None
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
    with pytest.raises(ActionRefused, match="Already decided"):
        task_actions.claim([task], user=rita)


def test_an_administrator_assigns_to_a_person_or_a_group(transactional_db, rita, sam):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core import mail
    from django.test import Client

    from reviews.models import ReviewRule

    leads, team = Group.objects.create(name="leads"), Group.objects.create(name="team")
    boss = get_user_model().objects.create_user("boss", password="pw-boss-123")
    boss.groups.add(leads)
    sam.groups.add(team)
    sam.email = "sam@example.com"
    sam.save()
    rule = ReviewRule.objects.create(name="support", graph_name="support")
    rule.admin_groups.add(leads)
    rule.review_groups.add(team)
    (task,) = pending(stopped("support", REFUND))
    as_boss = Client()
    as_boss.force_login(boss)
    assert "Assign to" in as_boss.get(reverse("task", args=[task.pk])).content.decode()

    refused = as_boss.post(reverse("assign", args=[task.pk]), {"user": "rita"}, follow=True)
    assert "rita may not decide this task" in refused.content.decode()
    as_boss.post(reverse("assign", args=[task.pk]), {"user": "sam"})
    task.refresh_from_db()
    assert (task.assigned_to, task.claimed_by) == (sam, sam)
    assert [m.to for m in mail.outbox] == [["sam@example.com"]]
    assert AuditEvent.objects.filter(action="task.assigned", actor_name="boss").exists()
    as_boss.post(reverse("assign", args=[task.pk]), {"group": "team"})
    assert ReviewTask.objects.get(pk=task.pk).assigned_group == team

    # Reviewers may not assign.
    as_sam = Client()
    as_sam.force_login(sam)
    assert as_sam.post(reverse("assign", args=[task.pk]), {"user": "sam"}).status_code == 403


def test_a_task_no_rule_governs_is_assigned_by_staff(as_rita, as_sam, rita, sam):
    """Anyone may review it; taking it from whoever holds it is staff's."""
    (task,) = pending(stopped("support", REFUND))
    assert as_sam.post(reverse("claim", args=[task.pk])).status_code in (200, 302)
    assert "Assign to" not in as_rita.get(reverse("task", args=[task.pk])).content.decode()
    response = as_rita.post(reverse("assign", args=[task.pk]), {"user": "rita"})
    assert response.status_code == 403
    assert ReviewTask.objects.get(pk=task.pk).claimed_by == sam
    rita.is_staff = True
    rita.save()
    as_rita.post(reverse("assign", args=[task.pk]), {"user": "rita"})
    assert ReviewTask.objects.get(pk=task.pk).claimed_by == rita
