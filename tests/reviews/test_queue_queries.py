"""The queue costs the same number of queries for 2 rows as for 40: what a
row shows is read with the row, or for all rows at once (no query per row),
on the page, in its htmx rows and in the rows pushed to open queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from graphs.models import Thread
from reviews import live
from reviews.models import Approval, ReviewRule, ReviewTask
from tests.reviews.test_page_queries import PENDING_COUNT


@pytest.fixture
def team(db):
    User = get_user_model()
    rita = User.objects.create_user("rita")
    sam = User.objects.create_user("sam")
    finance = Group.objects.create(name="finance")
    rita.groups.add(finance)
    sam.groups.add(finance)  # his approvals count
    rule = ReviewRule.objects.create(name="refunds", graph_name="support", required_approvals=2)
    rule.view_groups.add(finance)
    rule.review_groups.add(finance)
    return {"rita": rita, "sam": sam, "finance": finance, "rule": rule}


def add_tasks(team, start: int, n: int) -> list[int]:
    """Tasks with everything a row shows: a rule with a quorum and an
    approval, a holder, an assignee, a due time, a titled thread."""
    now = timezone.now()
    ids = []
    for i in range(start, start + n):
        thread = Thread.objects.create(thread_id=f"t-{i}", graph_name="support", title=f"Order {i}")
        task = ReviewTask.objects.create(
            thread=thread,
            graph_name="support",
            checkpoint_id=f"cp-{i}",
            interrupt_id=f"i-{i}",
            shape="agent_inbox",
            kind="approval",
            tool_name="refund",
            args={"order": i},
            payload={"action_request": {"action": "refund", "args": {"order": i}}},
            rule=team["rule"],
            claimed_by=team["sam"],
            claim_expires_at=now + timedelta(minutes=10),
            assigned_to=team["rita"] if i % 2 else None,
            assigned_group=team["finance"] if not i % 2 else None,
            # Overdue ones among the first two already, with either assignee.
            due_at=now + (timedelta(hours=1) if i % 3 == 2 else -timedelta(minutes=1)),
        )
        Approval.objects.create(task=task, reviewer=team["sam"], decision={"type": "approve"})
        ids.append(task.pk)
    return ids


def queries(ask) -> int:
    with CaptureQueriesContext(connection) as captured:
        ask()
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "queue-rows"}],
    ids=["page", "rows"],
)
def test_the_queue_page_asks_as_often_for_many_rows_as_for_few(client, team, headers):
    client.force_login(team["rita"])
    add_tasks(team, 0, 2)

    def page():
        response = client.get(reverse("queue"), **headers)
        assert response.status_code == 200
        return response.content.decode()

    page()  # sessions, caches
    few = queries(page)
    add_tasks(team, 2, 40)
    assert queries(page) == few
    html = page()
    assert html.count('class="task-row') >= 40
    assert "claimed by sam" in html and "1 of 2 approvals" in html and "for finance" in html


def test_pushed_rows_are_read_with_their_row(team):
    few = add_tasks(team, 0, 2)
    many = add_tasks(team, 2, 40)
    event = lambda ids: {"created": ids, "removed": [], "changed": ids}  # noqa: E731
    live.render(event(few))
    assert queries(lambda: live.render(event(many))) == queries(lambda: live.render(event(few)))


def test_rows_alone_skip_what_only_the_whole_page_shows(client, team):
    """The rows htmx asks for (on reconnecting, on "Load more") are only
    rows: no overdue list and no navigation count is asked for them."""
    client.force_login(team["rita"])
    add_tasks(team, 0, 3)
    rows = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "queue-rows"}
    client.get(reverse("queue"), **rows)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(reverse("queue"), **rows).content.decode()
    assert html.count('class="task-row') == 3 and "Overdue" not in html
    asked = " ".join(q["sql"] for q in captured.captured_queries)
    assert PENDING_COUNT not in asked and '"due_at" <=' not in asked
    with CaptureQueriesContext(connection) as captured:
        html = client.get(reverse("queue")).content.decode()
    asked = " ".join(q["sql"] for q in captured.captured_queries)
    assert PENDING_COUNT in asked and '"due_at" <=' in asked and "Overdue" in html


def test_the_overdue_list_leads_the_page_when_some_task_is_overdue(client, team):
    client.force_login(team["rita"])
    ids = add_tasks(team, 0, 3)  # the first two overdue, the third due in an hour

    def overdue_list() -> str:
        html = client.get(reverse("queue")).content.decode()
        if "overdue-list" not in html:
            return ""
        return html[html.index("overdue-list") : html.index("</table>", html.index("overdue-list"))]

    listed = overdue_list()
    assert f'id="task-{ids[0]}"' in listed and f'id="task-{ids[1]}"' in listed
    assert f'id="task-{ids[2]}"' not in listed
    ReviewTask.objects.update(due_at=timezone.now() + timedelta(hours=1))
    assert overdue_list() == ""
