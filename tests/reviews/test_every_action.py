"""Every audited action, done for real, leaves all three of its effects: the
audit row, the webhook deliveries `EFFECTS` names and the live update of open
queues. Each scenario prepares a thread, then does the one action; what the
action did is read from the database and from a queue page's websocket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from graphs.duties import sweep
from graphs.models import Run, Thread
from graphs.worker import work
from hitl_site.asgi import application
from reviews.actions import runs, tasks, threads
from reviews.audit_log import AuditEvent
from reviews.consumers import fragment
from reviews.emit import EFFECTS, Effects
from reviews.models import ReviewRule, ReviewTask, WebhookDelivery, WebhookEndpoint
from reviews.tokens import ApiToken
from tests.reviews.conftest import pending, start
from tests.reviews.test_consumer import ORIGIN, receive_until

AGENTS = Path(__file__).parents[1] / "graphs" / "agents" / "langgraph.json"
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
# Done once by a migration, not by anyone since: nothing to do again here.
NOT_DONE_HERE = {"audit.keyed"}

# A scenario prepares what its action needs and returns the action, a
# callable doing it once, and the tasks it concerns (or how to find them once
# it is done).
Act = tuple[Callable[[], object], list[int] | Callable[[], list[int]]]
SCENARIOS: dict[str, Callable[[object], Act]] = {}
EXPECTED: dict[str, Effects] = {}


def scenario(action: str, *, webhook: str = "", live: str = ""):
    """`webhook` and `live` say what the action must do besides its audit
    row, written out here rather than read from `EFFECTS`: a slip there fails."""

    def register(prepare: Callable[[object], Act]) -> Callable[[object], Act]:
        SCENARIOS[action] = prepare
        EXPECTED[action] = Effects(webhook=webhook, live=live)
        return prepare

    return register


@sync_to_async
def _plain_cookie() -> bytes:
    user = get_user_model().objects.create_user("pia", password="pw-pia-123")
    return f"sessionid={_signed_in(user).cookies['sessionid'].value}".encode()


def _refund_task() -> ReviewTask:
    (task,) = pending(start("support", REFUND))
    return task


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user) -> Client:
    _, key = ApiToken.issue(user, "every action")
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@scenario("run.started")
def _(user) -> Act:
    return partial(runs.start, "support", REFUND, user=user), []


@scenario("interrupt.raised", webhook="task.created", live="created")
def _(user) -> Act:
    run = runs.start("support", REFUND, user=user)
    return partial(work, "every-action"), lambda: [t.pk for t in pending(run.thread_id)]


@scenario("run.cancelled", live="created")
def _(user) -> Act:
    # A queued resume cancelled gives its decided review back.
    task = _refund_task()
    resume = tasks.decide([task], {task.pk: {"type": "accept"}}, user=user)
    return partial(runs.cancel, resume, user=user), [task.pk]


@scenario("run.retried")
def _(user) -> Act:
    failed = Run.objects.get(thread_id=start("broken", {"answers": []}))
    assert failed.status == Run.Status.FAILED
    return partial(runs.retry, failed, user=user), []


@scenario("run.deleted")
def _(user) -> Act:
    run = Run.objects.get(thread_id=start("broken", {"answers": []}))
    return partial(runs.delete, run, user=user), []


@scenario("task.claimed", live="changed")
def _(user) -> Act:
    task = _refund_task()
    return partial(tasks.claim, [task], user=user), [task.pk]


@scenario("task.released", live="changed")
def _(user) -> Act:
    task = _refund_task()
    tasks.claim([task], user=user)
    return partial(tasks.release, [task], user=user), [task.pk]


@scenario("task.assigned", live="changed")
def _(user) -> Act:
    task = _refund_task()
    other = get_user_model().objects.create_user("otto", password="pw-otto-123")
    return partial(tasks.assign, [task], by=user, to_user=other), [task.pk]


@scenario("task.approved", live="changed")
def _(user) -> Act:
    ReviewRule.objects.create(
        name="refunds by two", graph_name="support", tool_name="refund", required_approvals=2
    )
    task = _refund_task()
    return partial(tasks.decide, [task], {task.pk: {"type": "accept"}}, user=user), [task.pk]


@scenario("task.decided", webhook="task.decided", live="removed")
def _(user) -> Act:
    task = _refund_task()
    decision = {task.pk: {"type": "response", "message": "Not this one."}}
    return partial(tasks.decide, [task], decision, user=user), [task.pk]


@scenario("task.reopened", live="created")
def _(user) -> Act:
    # A resume whose answer the graph refuses opens the review again.
    (task,) = pending(start("asks_again", {}))
    tasks.decide([task], {task.pk: {"type": "answer", "value": "boom"}}, user=user)
    return partial(work, "every-action"), [task.pk]


@scenario("task.escalated", webhook="task.expired", live="changed")
def _(user) -> Act:
    managers = Group.objects.create(name="managers")
    ReviewRule.objects.create(
        name="refunds within the hour",
        graph_name="support",
        tool_name="refund",
        deadline_minutes=60,
        escalate_to=managers,
        on_expiry="reassign",
    )
    task = _refund_task()
    ReviewTask.objects.filter(pk=task.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    return partial(sweep, "every-action"), [task.pk]


def _state_edit(user, thread_id: str, **body) -> Act:
    def edit() -> None:
        response = _api(user).post(
            f"/api/threads/{thread_id}/state",
            {"values": {"draft": "A better draft"}, "as_node": "write_draft", **body},
            "application/json",
        )
        assert response.status_code == 200, response.content

    return edit, lambda: [t.pk for t in pending(thread_id)]


@scenario("state.edited", webhook="task.created", live="created")
def _(user) -> Act:
    thread_id = start("drafting", {"topic": "launch"})
    return _state_edit(user, thread_id)


@scenario("thread.forked", webhook="task.created", live="created")
def _(user) -> Act:
    thread_id = start("drafting", {"topic": "launch"})
    (question,) = pending(thread_id)
    return _state_edit(user, thread_id, fork_from=question.checkpoint_id)


@scenario("thread.replayed")
def _(user) -> Act:
    thread = Thread.objects.get(pk=start("drafting", {"topic": "launch"}))
    # From the point before the question (where it waits, the question is
    # answered, not replayed).
    before = thread.checkpoints.filter(checkpoint_ns="").order_by("-checkpoint_id")[1]
    return partial(runs.replay, thread, before.checkpoint_id, user=user), []


@scenario("thread.copied", webhook="task.created", live="created")
def _(user) -> Act:
    thread = Thread.objects.get(pk=_refund_task().thread_id)
    copies = Thread.objects.exclude(pk=thread.pk)
    return partial(threads.copy, thread, user=user), lambda: [
        t.pk for t in pending(copies.get().pk)
    ]


@scenario("thread.deleted", live="removed")
def _(user) -> Act:
    task = _refund_task()
    thread = Thread.objects.get(pk=task.thread_id)
    return partial(threads.delete, thread, user=user), [task.pk]


@scenario("rule.changed", live="rights")
def _(user) -> Act:
    rule = ReviewRule.objects.create(name="refunds", graph_name="support", tool_name="refund")
    url = reverse("admin:reviews_reviewrule_delete", args=[rule.pk])
    return partial(_signed_in(user).post, url, {"post": "yes"}), []


@scenario("token.changed")
def _(user) -> Act:
    token, _ = ApiToken.issue(user, "a script")
    url = reverse("admin:reviews_apitoken_change", args=[token.pk])
    revoked = {"revoked_at_0": "2026-01-01", "revoked_at_1": "00:00:00"}
    return partial(
        _signed_in(user).post, url, {**revoked, "expires_at_0": "", "expires_at_1": ""}
    ), []


@scenario("webhook.changed")
def _(user) -> Act:
    made = WebhookEndpoint.objects.create(name="crm", url="https://crm.example.com/h", secret="s")
    url = reverse("admin:reviews_webhookendpoint_delete", args=[made.pk])
    return partial(_signed_in(user).post, url, {"post": "yes"}), []


@scenario("user.changed")
def _(user) -> Act:
    from django.contrib.auth.models import Group

    finance = Group.objects.create(name="finance")
    made = get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    url = reverse("admin:auth_user_change", args=[made.pk])
    form = {"username": "mallory", "is_active": "on", "groups": [finance.pk]}
    joined = {"date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}
    return partial(_signed_in(user).post, url, {**form, **joined}), []


@scenario("group.changed")
def _(user) -> Act:
    from django.contrib.auth.models import Group

    made = Group.objects.create(name="sales")
    url = reverse("admin:auth_group_delete", args=[made.pk])
    return partial(_signed_in(user).post, url, {"post": "yes"}), []


@scenario("assistant.changed")
def _(user) -> Act:
    from agent_server.models import Assistant

    made = Assistant.objects.create(graph_id="support", name="ours", config={})
    url = f"/langgraph/assistants/{made.assistant_id}"
    body = {"config": {"recursion_limit": 5}}
    return partial(_api(user).patch, url, body, "application/json"), []


def test_every_action_has_a_scenario():
    assert sorted(SCENARIOS) == sorted(set(EFFECTS) - NOT_DONE_HERE)


@pytest.fixture
def ada(transactional_db):
    """An administrator: the rules' access isn't what these tests are about."""
    user = get_user_model().objects.create_superuser("ada", password="pw-ada-123")
    client = Client()
    client.force_login(user)
    # Every event there is, to a receiver nobody runs: deliveries stay queued.
    events = sorted({e.webhook for e in EFFECTS.values() if e.webhook})
    WebhookEndpoint.objects.create(name="all", url="http://127.0.0.1:9/hook", events=events)
    return user, f"sessionid={client.cookies['sessionid'].value}".encode()


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
@pytest.mark.parametrize("action", sorted(SCENARIOS))
async def test_an_action_audits_notifies_and_pushes(action, ada):
    user, cookie = ada
    effects = EXPECTED[action]
    assert EFFECTS[action] == effects
    act, concerned = await sync_to_async(SCENARIOS[action])(user)
    audited = await sync_to_async(lambda: set(AuditEvent.objects.values_list("pk", flat=True)))()
    queued = await sync_to_async(
        lambda: set(WebhookDelivery.objects.values_list("pk", flat=True))
    )()
    page = WebsocketCommunicator(application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", cookie)])
    assert (await page.connect())[0]
    # A reviewer in no group: what rules let them see changes with the rules.
    plain = WebsocketCommunicator(
        application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", await _plain_cookie())]
    )
    assert (await plain.connect())[0]

    await sync_to_async(act)()
    if callable(concerned):
        concerned = await sync_to_async(concerned)()

    def since() -> tuple[list[str], list[tuple[str, int]]]:
        rows = AuditEvent.objects.exclude(pk__in=audited).filter(action=action)
        deliveries = WebhookDelivery.objects.exclude(pk__in=queued).order_by("pk")
        return (
            [row.actor.username if row.actor else "" for row in rows],
            [(d.event, d.payload["id"]) for d in deliveries],
        )

    actors, deliveries = await sync_to_async(since)()
    # Its audit row, naming who did it (the run's own stop and the deadline
    # sweep are done by no one).
    system = action in ("interrupt.raised", "task.reopened", "task.escalated")
    assert actors and set(actors) == {"" if system else "ada"}
    # The deliveries its event names, one per task it concerns, and no others.
    if effects.webhook:
        assert concerned
        assert deliveries == [(effects.webhook, pk) for pk in concerned]
    else:
        assert deliveries == []
    # Open queues hear of the tasks: new or redrawn rows, or rows leaving.
    if effects.live == "rights":  # every open page reads its reviewer's rights again
        assert await receive_until(plain, "notice-toast") == fragment("rights_changed")
    elif effects.live:
        assert concerned
        gone = f'id="task-{concerned[0]}" hx-swap-oob="delete"'
        message = await receive_until(page, f'id="task-{concerned[0]}"')
        assert (gone in message) == (effects.live == "removed"), message
    await page.disconnect()
    await plain.disconnect()
