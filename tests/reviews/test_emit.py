"""Every action's effects leave it through `emit`: its audit row, the webhook
deliveries it queues and the live update of open queues, all three from one
call, so none can be forgotten (a released claim once wrote no audit row; an
escalation that reassigned a task left open queues showing the old owner)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from graphs.duties import sweep
from hitl_site.asgi import application
from reviews.actions import tasks as task_actions
from reviews.audit_log import AuditEvent
from reviews.emit import EFFECTS
from reviews.models import ReviewRule, ReviewTask, WebhookDelivery, WebhookEndpoint
from tests.reviews.conftest import pending, start
from tests.reviews.rows import stopped
from tests.reviews.test_consumer import ORIGIN, receive_until

ROOT = Path(__file__).resolve().parents[2]
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
# Writing an audit row, queueing a delivery, pushing queue rows.
EFFECT = re.compile(
    r"AuditEvent\.record\b|\.queue_event\b|\blive\.tasks_\w+|\btasks_(?:created|changed|removed)\("
)
# A run's own step retiring what it made moot is no one's action: no audit
# row, no webhook; its rows leave open queues.
NOT_ACTIONS = {"reviews/receivers.py": 2}


def test_every_audited_action_says_what_else_it_does():
    assert sorted(EFFECTS) == sorted(AuditEvent.ACTIONS)


def test_nothing_but_emit_writes_an_actions_effects():
    found: dict[str, int] = {}
    for package in ("reviews", "graphs", "agent_server", "hitl_site"):
        for path in (ROOT / package).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            if name in ("reviews/emit.py", "reviews/live.py") or "/migrations/" in name:
                continue
            lines = [
                line
                for line in path.read_text().splitlines()
                if EFFECT.search(line) and not line.lstrip().startswith(("def ", "#"))
            ]
            if lines:
                found[name] = len(lines)
    assert found == NOT_ACTIONS


@pytest.fixture
def reviewer(transactional_db):
    user = get_user_model().objects.create_user("rita", password="pw-rita-123")
    client = Client()
    client.force_login(user)
    return user, f"sessionid={client.cookies['sessionid'].value}".encode()


async def _open_queue(cookie: bytes) -> WebsocketCommunicator:
    page = WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", cookie)])
    assert (await page.connect())[0]
    return page


async def test_releasing_a_claim_is_audited_and_open_queues_see_it(reviewer):
    user, cookie = reviewer
    (task,) = await sync_to_async(lambda: pending(stopped("support", REFUND)))()
    await sync_to_async(task_actions.claim)([task], user=user)
    page = await _open_queue(cookie)
    released = await sync_to_async(task_actions.release)(
        [task], user=user, client_address="127.0.0.9"
    )
    assert released == 1
    row = await receive_until(page, f'id="task-{task.pk}"')
    assert "claimed by" not in row
    event = await sync_to_async(AuditEvent.objects.get)(action="task.released")
    assert (event.actor_id, event.task_id, event.after) == (user.pk, task.pk, {"tasks": [task.pk]})
    assert event.client_address == "127.0.0.9"
    # Nothing held, nothing released: no row, no push.
    assert await sync_to_async(task_actions.release)([task], user=user) == 0
    assert await sync_to_async(AuditEvent.objects.filter(action="task.released").count)() == 1
    await page.disconnect()


async def test_an_escalation_that_reassigns_shows_the_new_owner_live(reviewer):
    user, cookie = reviewer

    def overdue_refund() -> ReviewTask:
        managers = Group.objects.create(name="managers")
        rule = ReviewRule.objects.create(
            name="refunds within the hour",
            graph_name="support",
            tool_name="refund",
            deadline_minutes=60,
            escalate_to=managers,
            on_expiry="reassign",
        )
        rule.view_groups.add(managers)
        user.groups.add(managers)
        WebhookEndpoint.objects.create(
            name="ops", url="http://127.0.0.1:9/hook", events=["task.expired"]
        )
        (task,) = pending(start("support", REFUND))
        ReviewTask.objects.filter(pk=task.pk).update(due_at=timezone.now() - timedelta(minutes=1))
        return task

    task = await sync_to_async(overdue_refund)()
    page = await _open_queue(cookie)
    await sync_to_async(sweep)("w1")  # the worker's side duties
    row = await receive_until(page, f'id="task-{task.pk}"')
    assert "for managers" in row
    assert await sync_to_async(AuditEvent.objects.filter(action="task.escalated").count)() == 1
    delivery = await sync_to_async(WebhookDelivery.objects.get)()
    assert delivery.event == "task.expired" and delivery.payload["id"] == task.pk
    await page.disconnect()
