"""Who may do what: every URL and the websocket, for anonymous, an outsider,
a reviewer of another graph, a view-only auditor, an eligible reviewer and an
admin. Rules live in the database and are enforced in reviews.access."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from graphs.models import Run
from graphs.worker import work
from hitl_site.asgi import application
from reviews.models import ApiToken, ReviewRule, ReviewTask
from tests.reviews.conftest import pending
from tests.reviews.rows import stopped

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
BIG_REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1002, $2400"}]}
PEOPLE = ("anonymous", "outsider", "drafter", "auditor", "supporter", "admin")


@pytest.fixture
def world(transactional_db):
    User = get_user_model()
    teams = {name: Group.objects.create(name=name) for name in ("support", "drafting", "audit")}
    users = {
        "anonymous": None,
        "admin": User.objects.create_superuser("admin", password="pw-a-123"),
    }
    for name, team in (
        ("outsider", None),
        ("drafter", "drafting"),
        ("auditor", "audit"),
        ("supporter", "support"),
    ):
        users[name] = User.objects.create_user(name, password=f"pw-{name}-123")
        if team:
            users[name].groups.add(teams[team])
    support = ReviewRule.objects.create(name="support team", graph_name="support")
    support.review_groups.add(teams["support"])
    support.view_groups.add(teams["audit"])
    drafting = ReviewRule.objects.create(name="drafting team", graph_name="drafting")
    drafting.review_groups.add(teams["drafting"])
    thread = stopped("support", REFUND)
    (task,) = pending(thread)
    return {"users": users, "thread": thread, "task": task, "support": support}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# Expected status per person: anonymous, outsider, drafter, auditor, supporter, admin.
GETS = {
    "task": (302, 404, 404, 200, 200, 200),
    "thread": (302, 404, 404, 200, 200, 200),
    "thread_state": (302, 404, 404, 200, 200, 200),
    "start_support": (302, 403, 403, 403, 200, 200),
    "audit": (302, 403, 403, 403, 403, 200),
}


def test_pages_matrix(world):
    task, thread = world["task"], world["thread"]
    urls = {
        "task": reverse("task", args=[task.pk]),
        "thread": reverse("thread", args=[thread]),
        "thread_state": reverse("thread_state", args=[thread]),
        "start_support": reverse("start_run", args=["support"]),
        "audit": reverse("audit"),
    }
    for name, expected in GETS.items():
        got = tuple(client_for(world["users"][p]).get(urls[name]).status_code for p in PEOPLE)
        assert got == expected, name
    # The queue and its count show only what each may see.
    for person, sees in zip(PEOPLE[1:], (False, False, True, True, True), strict=True):
        html = client_for(world["users"][person]).get(reverse("queue")).content.decode()
        assert (f'id="task-{task.pk}"' in html) is sees, person


def test_changes_matrix(world):
    task, thread = world["task"], world["thread"]
    waiting = Run.enqueue(graph_name="support", kind=Run.Kind.CONTINUE, thread_id=thread)
    posts = {
        reverse("cancel_run", args=[waiting.pk]): {},
        reverse("retry_run", args=[waiting.pk]): {},
        reverse("decide", args=[task.pk]): {
            f"t{task.pk}-type": "response",
            f"t{task.pk}-message": "x",
        },
        reverse("quick_decide", args=[task.pk]): {"action": "approve"},
        reverse("claim", args=[task.pk]): {},
        reverse("replay", args=[thread]): {"checkpoint": "x"},
        reverse("thread_state", args=[thread]): {"raw": '{"executed": []}'},
    }
    expected = {"anonymous": 302, "outsider": 404, "drafter": 404, "auditor": 403}
    for person, status in expected.items():
        client = client_for(world["users"][person])
        for url, data in posts.items():
            assert client.post(url, data).status_code == status, (person, url)
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED
    assert not Run.objects.exclude(kind="start").exclude(pk=waiting.pk).exists()
    supporter = client_for(world["users"]["supporter"])
    assert supporter.post(reverse("cancel_run", args=[waiting.pk])).status_code == 302
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.CANCELLED
    response = supporter.post(reverse("quick_decide", args=[task.pk]), {"action": "approve"})
    assert response.status_code == 302
    assert ReviewTask.objects.get(pk=task.pk).decided_by == world["users"]["supporter"]


def test_api_matrix(world):
    task = world["task"]
    for person, sees, decides in (
        ("outsider", False, 404),
        ("drafter", False, 404),
        ("auditor", True, 403),
    ):
        _, key = ApiToken.issue(world["users"][person], "t")
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        client = Client()
        listed = client.get("/api/tasks", **auth).json()["tasks"]
        assert (task.pk in [t["id"] for t in listed]) is sees, person
        assert client.get(f"/api/tasks/{task.pk}", **auth).status_code == (200 if sees else 404)
        decided = client.post(
            f"/api/tasks/{task.pk}/decision",
            {"decisions": {task.pk: {"type": "accept"}}},
            content_type="application/json",
            **auth,
        )
        assert decided.status_code == decides, person
        assert client.get(f"/api/threads/{world['thread']}", **auth).status_code == (
            200 if sees else 404
        )
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"


def big_refunds() -> tuple[Group, ReviewRule]:
    """Refunds over 1000 go to the finance team, ahead of the support rule."""
    finance = Group.objects.create(name="finance")
    big = ReviewRule.objects.create(
        name="big refunds",
        order=10,
        graph_name="support",
        tool_name="refund",
        condition={"properties": {"amount": {"exclusiveMinimum": 1000}}, "required": ["amount"]},
    )
    big.review_groups.add(finance)
    return finance, big


def test_a_condition_on_the_arguments_picks_the_rule(world):
    """Refunds over 1000 need the finance team, whoever handles the rest."""
    finance, big = big_refunds()
    (large,) = pending(stopped("support", BIG_REFUND))
    assert large.rule_id == big.pk
    assert (
        ReviewTask.objects.get(pk=world["task"].pk).rule_id == world["support"].pk
    )  # 120: not big
    supporter = client_for(world["users"]["supporter"])
    assert supporter.get(reverse("task", args=[large.pk])).status_code == 404
    world["users"]["supporter"].groups.add(finance)
    assert (
        client_for(world["users"]["supporter"]).get(reverse("task", args=[large.pk])).status_code
        == 200
    )


async def test_websocket_rows_and_threads_follow_the_rules(world):
    users = world["users"]

    async def connect(user) -> WebsocketCommunicator:
        client = Client()
        await sync_to_async(client.force_login)(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        communicator = WebsocketCommunicator(
            application,
            f"/ws/reviews/?threads={world['thread']}",
            headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
        )
        assert (await communicator.connect())[0]
        return communicator

    drafter, supporter = await connect(users["drafter"]), await connect(users["supporter"])
    await sync_to_async(Run.enqueue)(graph_name="support", kind=Run.Kind.START, payload=REFUND)
    again = await sync_to_async(Run.enqueue)(
        graph_name="support", kind=Run.Kind.CONTINUE, thread_id=world["thread"]
    )
    await sync_to_async(work, thread_sensitive=False)("w1")
    # Then a run each page must hear of: what came before its row is all the
    # page was told of the runs above (nothing is judged by a quiet wait).
    marks = {"drafter": ("drafting", {"topic": "x"}), "supporter": ("support", REFUND)}
    for graph, payload in marks.values():
        await sync_to_async(Run.enqueue)(graph_name=graph, kind=Run.Kind.START, payload=payload)
    await sync_to_async(work, thread_sensitive=False)("w1")
    heard = {"drafter": [], "supporter": []}
    for name, page in (("drafter", drafter), ("supporter", supporter)):
        graph = marks[name][0]
        mark = await sync_to_async(
            lambda graph=graph: ReviewTask.objects.filter(graph_name=graph).latest("pk")
        )()
        while f'<tr id="task-{mark.pk}"' not in (message := await page.receive_from(timeout=5)):
            heard[name].append(message)
        await page.disconnect()
    assert any("queue-rows" in m and "refund" in m for m in heard["supporter"])
    assert not any("queue-rows" in m for m in heard["drafter"])
    assert any("1 new task for you to review" in m for m in heard["supporter"])
    assert not any('id="notice"' in m for m in heard["drafter"])
    # The drafter's page asks for its own count instead of hearing the total.
    assert any('hx-get="/queue/count/"' in m for m in heard["drafter"])
    # Both asked for the support thread; only the supporter was subscribed.
    assert any(f'id="run-{again.pk}-status"' in m for m in heard["supporter"])
    assert not any(f'id="run-{again.pk}-status"' in m for m in heard["drafter"])


def test_bulk_honours_every_rule(world):
    task = world["task"]
    for person, reason in (("drafter", "not found"), ("auditor", "you may not decide it")):
        html = (
            client_for(world["users"][person])
            .post(reverse("bulk_decide"), {"action": "approve", "tasks": [task.pk]}, follow=True)
            .content.decode()
        )
        assert f"Not decided, task {task.pk}: {reason}" in html, person
    assert ReviewTask.objects.get(pk=task.pk).status == "pending"


def test_home_lists_only_graphs_and_threads_one_may_see(world):
    html = client_for(world["users"]["drafter"]).get(reverse("home")).content.decode()
    assert world["thread"] not in html and "<strong>support</strong>" not in html
    assert "<strong>drafting</strong>" in html
    html = client_for(world["users"]["supporter"]).get(reverse("home")).content.decode()
    assert world["thread"] in html and "<strong>support</strong>" in html


def test_a_call_whose_arguments_cant_be_read_is_judged_under_every_rule_of_its_tool(world):
    from django.core.exceptions import PermissionDenied

    from reviews.access import check_calls

    finance, _ = big_refunds()
    supporter = world["users"]["supporter"]
    check_calls(supporter, "support", [{"name": "refund", "args": {"amount": 120}}])
    with pytest.raises(PermissionDenied, match="big refunds"):
        check_calls(supporter, "support", [{"name": "refund", "args": None}])
    supporter.groups.add(finance)
    check_calls(
        get_user_model().objects.get(pk=supporter.pk), "support", [{"name": "refund", "args": None}]
    )
