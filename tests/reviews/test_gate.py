"""The review gate on every route.

Every URL pattern the resolver knows, every operation of the API's OpenAPI
document and every message the reviewer websocket sends is listed here with
who may use it; a route added later without a line here fails
`test_every_route_has_a_rule`. The people: anonymous, an outsider with no
groups, a reviewer of another graph (drafter), a reviewer of the travel
graph (reviewer), a finance member who counts towards the quorum on big
refunds and card charges (quorum, and quorum2), and an administrator.

Rules: refunds over 1000 need two finance approvals; card charges need
finance; the travel graph is the support group's; drafting is the drafting
group's; the rest of the support graph is open to every signed-in reviewer
(as in the demo). Each walk-around found by an outside tester is a named case
below, asserting on the database that nothing was decided, run or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from graphs.models import Checkpoint, Run, Thread
from graphs.worker import work
from hitl_site.asgi import application
from reviews.consumers import ReviewerConsumer
from reviews.models import ApiToken, Approval, AuditEvent, ReviewRule, ReviewTask
from reviews.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.reviews.conftest import pending, start
from tests.reviews.rows import stopped

PEOPLE = ("anonymous", "outsider", "drafter", "reviewer", "quorum", "admin")
SMALL = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
BIG = {"messages": [{"role": "user", "content": "Please refund order A-1002, $2400"}]}
EMAIL = {"messages": [{"role": "user", "content": "Where is order A-1001?"}]}
TRAVEL = {"messages": [{"role": "user", "content": "Fly 2 people to Porto"}]}


@dataclass
class Gate:
    users: dict[str, Any]
    small: ReviewTask  # open to every signed-in reviewer
    email: ReviewTask  # open too: the tester's way in
    big: ReviewTask  # two finance approvals
    book: ReviewTask  # travel: the support group
    charge: ReviewTask  # the same turn: finance only
    draft: str  # a drafting thread

    def client(self, person: str) -> Client:
        client = Client()
        if self.users[person] is not None:
            client.force_login(self.users[person])
        return client

    def api(self, person: str) -> dict[str, str]:
        user = self.users[person]
        if user is None:
            return {}
        _, key = ApiToken.issue(user, "gate")
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def gate(transactional_db) -> Gate:
    """The people and rules above, and a stop of each graph to review (made
    as the worker leaves one: what is gated here is reading and deciding)."""
    User = get_user_model()
    groups = {n: Group.objects.create(name=n) for n in ("support", "finance", "drafting")}
    users: dict[str, Any] = {
        "anonymous": None,
        "admin": User.objects.create_superuser("admin", password="pw-admin-123"),
    }
    for name, member_of in (
        ("outsider", ()),
        ("drafter", ("drafting",)),
        ("reviewer", ("support",)),
        ("quorum", ("support", "finance")),
        ("quorum2", ("support", "finance")),
    ):
        users[name] = User.objects.create_user(name, password=f"pw-{name}-123")
        users[name].groups.add(*(groups[g] for g in member_of))
    big = ReviewRule.objects.create(
        name="big refunds",
        order=10,
        graph_name="support",
        tool_name="refund",
        condition={"properties": {"amount": {"exclusiveMinimum": 1000}}, "required": ["amount"]},
        required_approvals=2,
    )
    big.review_groups.add(groups["finance"])
    cards = ReviewRule.objects.create(
        name="card charges", order=20, graph_name="tool_agent", tool_name="charge_card"
    )
    cards.review_groups.add(groups["finance"])
    travel = ReviewRule.objects.create(name="travel", order=50, graph_name="tool_agent")
    travel.review_groups.add(groups["support"])
    drafting = ReviewRule.objects.create(name="drafting", order=60, graph_name="drafting")
    drafting.review_groups.add(groups["drafting"])
    (small,) = pending(stopped("support", SMALL))
    (email,) = pending(stopped("support", EMAIL))
    (big_task,) = pending(stopped("support", BIG))
    book, charge = pending(stopped("tool_agent", TRAVEL))
    assert (book.tool_name, charge.tool_name) == ("book_flight", "charge_card")
    assert (big_task.rule, charge.rule, book.rule, small.rule) == (big, cards, travel, None)
    draft = stopped("drafting", {"topic": "gates"})
    return Gate(users, small, email, big_task, book, charge, draft)


def snapshot() -> dict[str, Any]:
    """What a refused request must leave as it was."""
    return {
        "tasks": sorted(
            ReviewTask.objects.values_list("pk", "status", "decision", "claimed_by_id")
        ),
        "approvals": Approval.objects.count(),
        "runs": sorted(Run.objects.values_list("pk", "status")),
        "checkpoints": Checkpoint.objects.count(),
    }


# -- the route table ------------------------------------------------------------
#
# Expected status per person (PEOPLE order). "hidden" objects answer 404:
# their existence is not told. Changes by people who may see but not decide
# answer 403. For POSTs, a 2xx/3xx is allowed only where the person may act.

ANON, SEEN, HIDDEN = 302, 200, 404
PAGE_GETS = {
    # name: (url builder, statuses)
    "home": (lambda g: reverse("home"), (ANON, SEEN, SEEN, SEEN, SEEN, SEEN)),
    "queue": (lambda g: reverse("queue"), (ANON, SEEN, SEEN, SEEN, SEEN, SEEN)),
    "pending_count": (lambda g: reverse("pending_count"), (ANON, SEEN, SEEN, SEEN, SEEN, SEEN)),
    "audit": (lambda g: reverse("audit"), (ANON, 403, 403, 403, 403, SEEN)),
    "audit_csv": (lambda g: reverse("audit_csv"), (ANON, 403, 403, 403, 403, SEEN)),
    "audit_jsonl": (lambda g: reverse("audit_jsonl"), (ANON, 403, 403, 403, 403, SEEN)),
    "start_run": (
        lambda g: reverse("start_run", args=["tool_agent"]),
        (ANON, 403, 403, SEEN, SEEN, SEEN),
    ),
    "task": (lambda g: reverse("task", args=[g.big.pk]), (ANON, 404, 404, 404, SEEN, SEEN)),
    "run_status": (
        lambda g: reverse("run_status", args=[g.big.run_id]),
        (ANON, 404, 404, 404, SEEN, SEEN),
    ),
    # The travel thread holds a finance-only call: the travel reviewer may
    # decide its booking but not see the thread whole.
    "thread": (
        lambda g: reverse("thread", args=[g.charge.thread_id]),
        (ANON, 404, 404, 404, SEEN, SEEN),
    ),
    "thread_state": (
        lambda g: reverse("thread_state", args=[g.big.thread_id]),
        (ANON, 404, 404, 404, SEEN, SEEN),
    ),
}
PAGE_POSTS = {
    # name: (url builder, form data builder, statuses); each refused one changes nothing.
    "decide": (
        lambda g: reverse("decide", args=[g.big.pk]),
        lambda g: {f"t{g.big.pk}-type": "response", f"t{g.big.pk}-message": "no"},
        (ANON, 404, 404, 404, None, None),
    ),
    "quick_decide": (
        lambda g: reverse("quick_decide", args=[g.charge.pk]),
        lambda g: {"action": "approve"},
        (ANON, 404, 404, 404, None, None),
    ),
    "claim": (
        lambda g: reverse("claim", args=[g.charge.pk]),
        lambda g: {},
        (ANON, 404, 404, 404, None, None),
    ),
    "assign": (
        lambda g: reverse("assign", args=[g.big.pk]),
        lambda g: {"user": "outsider"},
        (ANON, 404, 404, 404, 403, None),
    ),
    "cancel_run": (
        lambda g: reverse("cancel_run", args=[g.big.run_id]),
        lambda g: {},
        (ANON, 404, 404, 404, None, None),
    ),
    "retry_run": (
        lambda g: reverse("retry_run", args=[g.charge.run_id]),
        lambda g: {},
        (ANON, 404, 404, 404, None, None),
    ),
    "replay": (
        lambda g: reverse("replay", args=[g.big.thread_id]),
        lambda g: {"checkpoint": g.big.checkpoint_id},
        (ANON, 404, 404, 404, None, None),
    ),
    "thread_state": (
        lambda g: reverse("thread_state", args=[g.charge.thread_id]),
        lambda g: {"raw": '{"messages": []}'},
        (ANON, 404, 404, 404, None, None),
    ),
    "bulk_decide": (
        lambda g: reverse("bulk_decide"),
        lambda g: {"action": "approve", "tasks": [g.big.pk, g.charge.pk]},
        (ANON, 302, 302, 302, None, None),  # refused per task, with the reason
    ),
    "start_run": (
        lambda g: reverse("start_run", args=["tool_agent"]),
        lambda g: {"f-messages": "[]"},
        (ANON, 403, 403, None, None, None),
    ),
}
# Routes everybody may reach, and Django's own.
PUBLIC = {"login", "logout", "favicon"}
API = {
    # (method, path): (path builder, body builder, statuses)
    ("get", "/api/tasks"): (lambda g: "/api/tasks", None, (401, 200, 200, 200, 200, 200)),
    ("get", "/api/tasks/{task_id}"): (
        lambda g: f"/api/tasks/{g.big.pk}",
        None,
        (401, 404, 404, 404, 200, 200),
    ),
    ("post", "/api/tasks/{task_id}/decision"): (
        lambda g: f"/api/tasks/{g.big.pk}/decision",
        lambda g: {"decisions": {g.big.pk: {"type": "response", "message": "no"}}},
        (401, 404, 404, 404, None, None),
    ),
    ("post", "/api/tasks/{task_id}/claim"): (
        lambda g: f"/api/tasks/{g.charge.pk}/claim",
        None,
        (401, 404, 404, 404, None, None),
    ),
    ("post", "/api/runs"): (
        lambda g: "/api/runs",
        lambda g: {"graph": "tool_agent", "input": TRAVEL},
        (401, 403, 403, None, None, None),
    ),
    ("post", "/api/runs/{run_id}/cancel"): (
        lambda g: f"/api/runs/{g.big.run_id}/cancel",
        None,
        (401, 404, 404, 404, None, None),
    ),
    ("post", "/api/runs/{run_id}/retry"): (
        lambda g: f"/api/runs/{g.charge.run_id}/retry",
        None,
        (401, 404, 404, 404, None, None),
    ),
    ("get", "/api/threads/{thread_id}"): (
        lambda g: f"/api/threads/{g.charge.thread_id}",
        None,
        (401, 404, 404, 404, 200, 200),
    ),
    ("get", "/api/threads/{thread_id}/history"): (
        lambda g: f"/api/threads/{g.big.thread_id}/history",
        None,
        (401, 404, 404, 404, 200, 200),
    ),
    ("post", "/api/threads/{thread_id}/state"): (
        lambda g: f"/api/threads/{g.big.thread_id}/state",
        lambda g: {"values": {"executed": []}},
        (401, 404, 404, 404, None, None),
    ),
    ("post", "/api/threads/{thread_id}/replay"): (
        lambda g: f"/api/threads/{g.charge.thread_id}/replay",
        lambda g: {"checkpoint_id": g.charge.checkpoint_id},
        (401, 404, 404, 404, None, None),
    ),
    ("get", "/api/openapi.json"): (
        lambda g: "/api/openapi.json",
        None,
        None,  # the document: see test_the_api_document_follows_the_gate
    ),
}


def _patterns(resolvers: list, prefix: str = "") -> list[tuple[str, str]]:
    """(namespace-qualified name, route) of every URL pattern."""
    out = []
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            space = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            out += _patterns(entry.url_patterns, space)
        elif isinstance(entry, URLPattern):
            out.append((f"{prefix}{entry.name or ''}", str(entry.pattern)))
    return out


def test_every_route_has_a_rule(transactional_db):
    """A route added later must be given its line in this table."""
    known = set(PAGE_GETS) | set(PAGE_POSTS) | PUBLIC
    missing = []
    for name, route in _patterns(get_resolver().url_patterns):
        if name.startswith(("admin:", "api:", "langgraph:")):
            # The admin is staff-only as a whole; the API from its document
            # below; /langgraph/ by tests/agent_server/test_gate.py.
            continue
        if name not in known:
            missing.append(f"{name or '(unnamed)'} {route}")
    assert not missing, f"routes with no line in the gate's table: {missing}"
    operations = {
        (method, path)
        for path, item in _api_document().items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations - set(API) == set(), "API operations with no line in the gate's table"
    handlers = {
        name
        for name in vars(ReviewerConsumer)
        if not name.startswith("_")
        and name not in ("connect", "disconnect", "dispatch", "LIVE_EVENTS")
        and callable(vars(ReviewerConsumer)[name])
    }
    assert handlers <= set(LIVE_MESSAGES), f"websocket messages with no case: {handlers}"


def _api_document() -> dict[str, Any]:
    admin_user = get_user_model().objects.filter(is_superuser=True).first()
    client = Client()
    if admin_user is None:
        admin_user = get_user_model().objects.create_superuser("docs", password="pw-docs-123")
    client.force_login(admin_user)
    return client.get("/api/openapi.json").json()["paths"]


def _status_ok(expected: int | None, got: int) -> bool:
    if expected is None:  # may act: any answer but a refusal or an error
        return got < 500 and got not in (401, 403, 404)
    return got == expected


def test_pages_follow_the_gate(gate):
    for name, (url, statuses) in PAGE_GETS.items():
        for person, expected in zip(PEOPLE, statuses, strict=True):
            got = gate.client(person).get(url(gate)).status_code
            assert got == expected, (name, person, got)
    # Queue and count show only the tasks each may see.
    for person, sees in (("outsider", False), ("reviewer", False), ("quorum", True)):
        html = gate.client(person).get(reverse("queue")).content.decode()
        assert (f'id="task-{gate.big.pk}"' in html) is sees, person
        assert (f'id="task-{gate.charge.pk}"' in html) is sees, person


def test_page_changes_follow_the_gate(gate):
    for name, (url, data, statuses) in PAGE_POSTS.items():
        for person, expected in zip(PEOPLE, statuses, strict=True):
            if expected is None:
                continue  # the people who may act: their cases are below
            before = snapshot()
            got = gate.client(person).post(url(gate), data(gate)).status_code
            assert got == expected, (name, person, got)
            assert snapshot() == before, (name, person)


def test_api_follows_the_gate(gate):
    for (method, _), (path, body, statuses) in API.items():
        if statuses is None:
            continue
        for person, expected in zip(PEOPLE, statuses, strict=True):
            if expected is None:
                continue
            before = snapshot()
            call = getattr(Client(), method)
            kwargs = {"content_type": "application/json"} if method == "post" else {}
            payload = body(gate) if body else ({} if method == "post" else None)
            args = (path(gate), payload) if payload is not None else (path(gate),)
            got = call(*args, **kwargs, **gate.api(person)).status_code
            assert got == expected, (method, path(gate), person, got)
            assert snapshot() == before, (method, path(gate), person)


def test_the_api_document_follows_the_gate(gate):
    assert Client().get("/api/openapi.json").status_code in (302, 401)
    assert gate.client("outsider").get("/api/openapi.json").status_code == 200


def test_admin_is_for_staff_only(gate):
    urls = [reverse("admin:index")] + [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]
    for person in PEOPLE[:-1]:
        for url in urls:
            got = gate.client(person).get(url)
            assert got.status_code == 302 and "/login/" in got["Location"], (person, url)
    for url in urls:
        assert gate.client("admin").get(url).status_code == 200, url


def test_staff_see_in_admin_only_what_the_pages_show_them(gate):
    """Staff with the admin's view permissions, but not in finance."""
    staff = gate.users["reviewer"]
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "view_reviewtask",
                "view_thread",
                "view_run",
                "delete_thread",
                "view_webhookdelivery",
            ]
        )
    )
    # A task's webhook delivery carries the task, arguments and all.
    endpoint = WebhookEndpoint.objects.create(
        name="ops", url="http://127.0.0.1:9/hook", secret="s" * 32, events=["task.created"]
    )
    for task in (gate.book, gate.big):
        WebhookDelivery.queue_event("task.created", task, [endpoint])
    client = gate.client("reviewer")
    book, big = (WebhookDelivery.objects.get(payload__id=t.pk) for t in (gate.book, gate.big))
    changelist = reverse("admin:reviews_webhookdelivery_changelist")
    for person, shown in (("reviewer", [book]), ("admin", [book, big])):
        listed = gate.client(person).get(changelist).content.decode()
        for delivery in (book, big):
            link = reverse("admin:reviews_webhookdelivery_change", args=[delivery.pk])
            assert (link in listed) == (delivery in shown), (person, delivery)
    tasks = client.get(reverse("admin:reviews_reviewtask_changelist")).content.decode()
    assert f"/admin/reviews/reviewtask/{gate.book.pk}/change/" in tasks
    assert f"/admin/reviews/reviewtask/{gate.big.pk}/change/" not in tasks
    threads = client.get(reverse("admin:graphs_thread_changelist")).content.decode()
    assert gate.small.thread_id in threads and gate.big.thread_id not in threads
    runs = client.get(reverse("admin:graphs_run_changelist")).content.decode()
    assert f"/admin/graphs/run/{gate.small.run_id}/change/" in runs
    assert f"/admin/graphs/run/{gate.big.run_id}/change/" not in runs
    before = snapshot()
    change = client.post(reverse("admin:reviews_reviewtask_change", args=[gate.big.pk]), {})
    assert change.status_code == 403
    # The delete permission reaches only threads the pages would show.
    url = reverse("admin:graphs_thread_delete", args=[gate.big.thread_id])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert snapshot() == before


# -- the walk-arounds, by name ----------------------------------------------------


def test_walkaround_an_edit_is_judged_as_the_call_it_makes(gate):
    """The tester's way in: an open send_email, edited into a 9,999 refund."""
    rename = {"type": "edit", "name": "refund", "args": {"order_id": "A-1002", "amount": 9999}}
    for person in ("outsider", "reviewer", "drafter"):
        before = snapshot()
        response = gate.client(person).post(
            f"/api/tasks/{gate.email.pk}/decision",
            {"decisions": {gate.email.pk: rename}},
            content_type="application/json",
            **gate.api(person),
        )
        assert response.status_code == 403, person
        assert "big refunds" in response.json()["detail"]
        assert snapshot() == before
        # The page refuses it in words, and writes nothing either.
        page = gate.client(person).post(
            reverse("decide", args=[gate.small.pk]),
            {
                f"t{gate.small.pk}-type": "edit",
                f"t{gate.small.pk}-name": "refund",
                f"t{gate.small.pk}-args": '{"order_id": "A-1001", "amount": 9999}',
            },
        )
        assert page.status_code == 403 and "big refunds" in page.content.decode()
        assert snapshot() == before
    # A finance member may make that edit; it then needs the big refunds'
    # quorum: a second finance member must approve the same version.
    quorum = gate.client("quorum")
    response = quorum.post(
        f"/api/tasks/{gate.email.pk}/decision",
        {"decisions": {gate.email.pk: rename}},
        content_type="application/json",
        **gate.api("quorum"),
    )
    assert response.status_code == 200, response.content
    assert response.json()["decided"] == [] and response.json()["resume_run"] is None
    assert "1 of 2" in response.json()["note"]
    assert ReviewTask.objects.get(pk=gate.email.pk).status == "pending"
    again = gate.client("quorum2").post(
        f"/api/tasks/{gate.email.pk}/decision",
        {"decisions": {gate.email.pk: rename}},
        content_type="application/json",
        **gate.api("quorum2"),
    )
    assert again.status_code == 200 and again.json()["resume_run"] is not None
    assert ReviewTask.objects.get(pk=gate.email.pk).decision["args"]["amount"] == 9999


def test_walkaround_an_edit_may_only_call_a_tool_the_graph_has(gate):
    quorum = gate.client("quorum")
    before = snapshot()
    response = quorum.post(
        f"/api/tasks/{gate.book.pk}/decision",
        {
            "decisions": {
                gate.book.pk: {"type": "edit", "name": "wire_money", "args": {"to": "x"}},
                gate.charge.pk: {"type": "approve"},
            }
        },
        content_type="application/json",
        **gate.api("quorum"),
    )
    assert response.status_code == 422
    assert "no tool 'wire_money'" in response.json()["errors"][str(gate.book.pk)]
    assert snapshot() == before


def test_walkaround_one_call_of_a_turn_does_not_decide_the_others(gate):
    both = {gate.book.pk: {"type": "approve"}, gate.charge.pk: {"type": "approve"}}
    before = snapshot()
    response = gate.client("reviewer").post(
        f"/api/tasks/{gate.book.pk}/decision",
        {"decisions": both},
        content_type="application/json",
        **gate.api("reviewer"),
    )
    # The finance-only charge is not even an open call for the reviewer.
    assert response.status_code == 422
    assert response.json()["errors"] == {str(gate.charge.pk): "not an open call of this turn"}
    assert snapshot() == before
    # Someone who may see the charge but not decide it is refused by name.
    viewers = Group.objects.create(name="card watchers")
    gate.users["reviewer"].groups.add(viewers)
    ReviewRule.objects.get(name="card charges").view_groups.add(viewers)
    response = gate.client("reviewer").post(
        f"/api/tasks/{gate.book.pk}/decision",
        {"decisions": both},
        content_type="application/json",
        **gate.api("reviewer"),
    )
    assert response.status_code == 403 and "charge_card" in response.json()["detail"]
    assert snapshot() == before
    gate.users["reviewer"].groups.remove(viewers)
    # The reviewer's task page shows the booking's form only: not the
    # finance-only charge's arguments.
    page = gate.client("reviewer").get(reverse("task", args=[gate.book.pk])).content.decode()
    assert f'id="decision-{gate.book.pk}"' in page
    assert f'id="decision-{gate.charge.pk}"' not in page and "EUR" not in page
    # Deciding one's own call leaves the other waiting; the turn resumes
    # when finance has decided theirs.
    mine = gate.client("reviewer").post(
        f"/api/tasks/{gate.book.pk}/decision",
        {"decisions": {gate.book.pk: {"type": "approve"}}},
        content_type="application/json",
        **gate.api("reviewer"),
    )
    assert mine.status_code == 200 and mine.json()["decided"] == [gate.book.pk]
    assert mine.json()["resume_run"] is None
    assert ReviewTask.objects.get(pk=gate.charge.pk).status == "pending"
    theirs = gate.client("quorum").post(
        reverse("decide", args=[gate.charge.pk]), {f"t{gate.charge.pk}-type": "approve"}
    )
    assert theirs.status_code == 302
    resume = Run.objects.get(thread_id=gate.book.thread_id, kind=Run.Kind.RESUME)
    (answer,) = resume.payload["by_interrupt_id"].values()
    decisions = answer["decisions"]
    assert [d["type"] for d in decisions] == ["approve", "approve"]


def test_walkaround_a_thread_is_shown_whole_or_not_at_all(gate):
    """The big refund's thread, its state, diffs, history and changes."""
    thread = gate.big.thread_id
    for person in ("outsider", "reviewer", "drafter"):
        client, auth = gate.client(person), gate.api(person)
        at = f"?at={gate.big.checkpoint_id}&compare={gate.small.checkpoint_id}"
        for url in (
            reverse("thread", args=[thread]) + at,
            reverse("thread_state", args=[thread]),
        ):
            assert client.get(url).status_code == 404, (person, url)
        for url in (f"/api/threads/{thread}", f"/api/threads/{thread}/history"):
            assert Client().get(url, **auth).status_code == 404, (person, url)
        before = snapshot()
        edit = Client().post(
            f"/api/threads/{thread}/state",
            {"values": {"executed": []}},
            content_type="application/json",
            **auth,
        )
        assert edit.status_code == 404
        assert snapshot() == before
        home = client.get(reverse("home")).content.decode()
        assert thread not in home and gate.charge.thread_id not in home
    # Someone who may see everything on it, but may not decide its open
    # task, may not change it: an edit would retire that task.
    auditor = get_user_model().objects.create_user("auditor", password="pw-auditor-123")
    watchers = Group.objects.create(name="watchers")
    auditor.groups.add(watchers)
    ReviewRule.objects.get(name="big refunds").view_groups.add(watchers)
    gate.users["auditor"] = auditor
    assert gate.client("auditor").get(reverse("thread", args=[thread])).status_code == 200
    before = snapshot()
    response = Client().post(
        f"/api/threads/{thread}/state",
        {"values": {"executed": []}},
        content_type="application/json",
        **gate.api("auditor"),
    )
    assert response.status_code == 403 and "open tasks" in response.json()["detail"]
    cancel = gate.client("auditor").post(reverse("cancel_run", args=[gate.big.run_id]))
    assert cancel.status_code == 403
    assert snapshot() == before


def test_walkaround_forks_only_from_the_threads_own_points(gate):
    thread = gate.small.thread_id
    for fork_from in ("no-such-checkpoint", gate.big.checkpoint_id):
        before = snapshot()
        response = Client().post(
            f"/api/threads/{thread}/state",
            {"values": {"executed": []}, "fork_from": fork_from},
            content_type="application/json",
            **gate.api("admin"),
        )
        assert response.status_code == 404, fork_from
        assert "not a point of this thread" in response.json()["detail"]
        assert snapshot() == before
        page = gate.client("admin").get(reverse("thread_state", args=[thread]), {"from": fork_from})
        assert page.status_code == 404


def test_walkaround_ids_in_a_request_belong_to_the_thread_named(gate):
    admin_client = gate.client("admin")
    # A point of another thread is not a point of this one.
    url = reverse("thread", args=[gate.small.thread_id])
    assert admin_client.get(f"{url}?at={gate.big.checkpoint_id}").status_code == 404
    before = snapshot()
    replay = admin_client.post(
        reverse("replay", args=[gate.small.thread_id]), {"checkpoint": gate.big.checkpoint_id}
    )
    assert replay.status_code == 302 and snapshot() == before
    # A decision may name only the open calls of the task's own turn.
    response = Client().post(
        f"/api/tasks/{gate.small.pk}/decision",
        {
            "decisions": {
                gate.small.pk: {"type": "accept"},
                gate.big.pk: {"type": "accept"},
            }
        },
        content_type="application/json",
        **gate.api("admin"),
    )
    assert response.status_code == 422
    assert response.json()["errors"] == {str(gate.big.pk): "not an open call of this turn"}
    assert snapshot() == before


def test_walkaround_a_cancelled_resume_gives_the_review_back(gate):
    admin_client = gate.client("admin")
    response = admin_client.post(
        reverse("decide", args=[gate.small.pk]), {f"t{gate.small.pk}-type": "accept"}
    )
    assert response.status_code == 302
    resume = Run.objects.get(thread_id=gate.small.thread_id, kind=Run.Kind.RESUME)
    assert ReviewTask.objects.get(pk=gate.small.pk).status == "decided"
    cancelled = admin_client.post(reverse("cancel_run", args=[resume.pk]))
    assert cancelled.status_code == 302
    task = ReviewTask.objects.get(pk=gate.small.pk)
    assert (task.status, task.decision, task.decided_by) == ("pending", None, None)
    # It can be decided again, and then the graph resumes with that answer.
    again = admin_client.post(
        reverse("decide", args=[gate.small.pk]),
        {f"t{gate.small.pk}-type": "response", f"t{gate.small.pk}-message": "not today"},
    )
    assert again.status_code == 302
    work("test-worker")
    state = Client().get(f"/api/threads/{gate.small.thread_id}", **gate.api("admin")).json()
    assert "not today" in str(state["values"]["messages"])


def test_walkaround_a_big_refund_takes_two_finance_approvals(gate):
    """Quorum members count once each; nobody else counts at all."""
    url = reverse("decide", args=[gate.big.pk])
    data = {f"t{gate.big.pk}-type": "accept"}
    assert gate.client("reviewer").post(url, data).status_code == 404
    assert gate.client("quorum").post(url, data).status_code == 302
    assert gate.client("quorum").post(url, data).status_code == 409
    assert not Run.objects.filter(thread_id=gate.big.thread_id, kind=Run.Kind.RESUME).exists()
    assert gate.client("quorum2").post(url, data).status_code == 302
    assert Run.objects.filter(thread_id=gate.big.thread_id, kind=Run.Kind.RESUME).count() == 1


# -- the websocket ------------------------------------------------------------------


async def _page(gate: Gate, person: str, threads: list[str]) -> WebsocketCommunicator:
    client = Client()
    await sync_to_async(client.force_login)(gate.users[person])
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/reviews/?threads={','.join(threads)}",
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    assert (await communicator.connect())[0]
    return communicator


async def _heard(communicator: WebsocketCommunicator, marker: str) -> list[str]:
    """Messages up to and including the first holding `marker`, which the
    test sends last: everything before it has been delivered by then."""
    out = []
    while True:
        message = await communicator.receive_from(timeout=10)
        out.append(message)
        if marker in message:
            return out


# rights_changed sends fixed words, no thread's or task's: its case (a page
# follows its reviewer's rights) is in tests/reviews/test_consumer.py.
LIVE_MESSAGES = ("queue_changed", "run_status", "run_progress", "rights_changed")


async def test_live_messages_follow_the_gate(gate):
    """run.status, run.progress and queue.changed (rows and removals) for a
    hidden thread and task reach only those who may see them."""
    hidden_thread = gate.big.thread_id
    pages = {p: await _page(gate, p, [hidden_thread]) for p in ("reviewer", "quorum")}
    # Refusals, then a change everyone may see as the closing marker.
    await sync_to_async(
        lambda: gate.client("quorum").post(
            reverse("decide", args=[gate.big.pk]),
            {f"t{gate.big.pk}-type": "response", f"t{gate.big.pk}-message": "no"},
        )
    )()
    await sync_to_async(work, thread_sensitive=False)("w1")
    marker = await sync_to_async(lambda: pending(start("support", SMALL))[0])()
    heard = {p: await _heard(c, f'id="task-{marker.pk}"') for p, c in pages.items()}
    for communicator in pages.values():
        await communicator.disconnect()
    removal = f'id="task-{gate.big.pk}" hx-swap-oob="delete"'
    assert any(removal in m for m in heard["quorum"])
    assert not any(removal in m for m in heard["reviewer"])
    assert any("run-" in m and "-status" in m for m in heard["quorum"])
    assert any("thread-steps" in m for m in heard["quorum"])
    assert not any("run-" in m and "-status" in m for m in heard["reviewer"])
    assert not any("thread-steps" in m for m in heard["reviewer"])


def test_walkaround_a_state_write_is_judged_on_the_calls_it_lets_run(gate):
    """An open email anyone may answer; the state written past its review
    holds a 9,999 refund instead, for the graph's tools node to run."""
    thread = gate.email.thread_id
    last = {"type": "ai", "content": "", "id": "forged"}
    refund = {"name": "refund", "args": {"order_id": "A-1002", "amount": 9999}, "id": "c-1"}
    body = {"values": {"messages": [{**last, "tool_calls": [refund]}]}, "continue_run": True}
    for person, words in (("outsider", "you may not approve it"), ("quorum", "asks 2 reviewers")):
        before = snapshot()
        response = Client().post(
            f"/api/threads/{thread}/state",
            body,
            content_type="application/json",
            **gate.api(person),
        )
        assert response.status_code == 403, person
        assert words in response.json()["detail"]
        assert snapshot() == before
    # Nor through an open request that waits for two: one person's write
    # would retire it.
    before = snapshot()
    response = Client().post(
        f"/api/threads/{gate.big.thread_id}/state",
        {"values": {"executed": []}, "continue_run": True},
        content_type="application/json",
        **gate.api("quorum"),
    )
    assert response.status_code == 403 and "waits for 2 reviewers" in response.json()["detail"]
    assert snapshot() == before


def test_walkaround_admin_deletes_a_thread_as_the_pages_do(gate):
    """Staff with the delete permission who may see a thread but not decide
    its open task."""
    auditor = get_user_model().objects.create_user(
        "auditor", password="pw-auditor-123", is_staff=True
    )
    watchers = Group.objects.create(name="watchers")
    auditor.groups.add(watchers)
    auditor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_thread", "delete_thread", "change_thread"])
    )
    ReviewRule.objects.get(name="big refunds").view_groups.add(watchers)
    gate.users["auditor"] = auditor
    client = gate.client("auditor")
    thread = gate.big.thread_id
    before = snapshot()
    response = client.post(reverse("admin:graphs_thread_delete", args=[thread]), {"post": "yes"})
    assert response.status_code == 403
    changed = client.post(
        reverse("admin:graphs_thread_change", args=[thread]), {"graph_name": "drafting"}
    )
    assert Thread.objects.get(pk=thread).graph_name == "support", changed.status_code
    assert snapshot() == before
    # Deleted by one who may, it goes as the pages' delete does: audited,
    # with its checkpoints.
    admin_client = gate.client("admin")
    url = reverse("admin:graphs_thread_delete", args=[gate.small.thread_id])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="thread.deleted", thread_id=gate.small.thread_id)
    assert not Checkpoint.objects.filter(thread_id=gate.small.thread_id).exists()


def test_walkaround_a_copy_is_restricted_as_its_source(gate):
    """A thread a finance-only refund was asked on stays finance's after
    the refund is decided; its copy holds the same state, so it stays too."""
    from reviews.access import can_thread
    from reviews.actions import tasks as task_actions
    from reviews.actions import threads

    big = gate.big
    for person in ("quorum", "quorum2"):
        task_actions.decide([big], {big.pk: {"type": "accept"}}, user=gate.users[person])
    work("w1")
    source = Thread.objects.get(pk=big.thread_id)
    assert not ReviewTask.objects.pending().filter(thread_id=source.pk).exists()
    copied = threads.copy(source, user=gate.users["quorum"])
    for person, sees in (("reviewer", False), ("outsider", False), ("quorum", True)):
        for thread in (source, copied):
            assert can_thread(gate.users[person], "view", thread) is sees, (person, thread)
    assert gate.client("reviewer").get(reverse("thread", args=[copied.pk])).status_code == 404


async def test_walkaround_a_page_stops_hearing_a_thread_that_became_hidden(gate):
    """A reviewer watching a thread they may see; a run on it then asks a
    finance-only refund, which hides the thread from them from then on."""
    email_thread, small_thread = gate.email.thread_id, gate.small.thread_id
    pages = {p: await _page(gate, p, [email_thread, small_thread]) for p in ("reviewer", "quorum")}

    def hide() -> Run:
        run = Run.enqueue(
            graph_name="support", kind=Run.Kind.START, thread_id=email_thread, payload=BIG
        )
        work("w1")
        return run

    hiding = await sync_to_async(hide, thread_sensitive=False)()
    marker = await sync_to_async(
        lambda: Run.enqueue(graph_name="support", kind=Run.Kind.CONTINUE, thread_id=small_thread)
    )()
    assert await sync_to_async(marker.cancel)()
    heard = {p: await _heard(c, f'id="run-{marker.pk}-status"') for p, c in pages.items()}
    for communicator in pages.values():
        await communicator.disconnect()
    status = f'id="run-{hiding.pk}-status"'
    assert any(status in m for m in heard["quorum"])
    assert not any(status in m for m in heard["reviewer"])


def test_walkaround_a_task_page_tells_no_errors_of_a_thread_hidden_from_its_reader(gate):
    """The travel reviewer may decide the booking but not see its thread
    whole: a later run's error could tell what they may not see."""
    run = Run.enqueue(
        graph_name="tool_agent", kind=Run.Kind.CONTINUE, thread_id=gate.book.thread_id
    )
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FAILED, error="CardDeclined: card 4242 for 7,777"
    )
    for person, sees in (("reviewer", False), ("quorum", True)):
        page = gate.client(person).get(reverse("task", args=[gate.book.pk])).content.decode()
        assert f'id="run-{run.pk}-status"' in page, person
        assert ("card 4242" in page) is sees, person
