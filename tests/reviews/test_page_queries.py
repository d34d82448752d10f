"""What the reviewer's pages ask the database: who may do what is read once
per request (and again by the next one), the navigation bar's count only by
pages that show it, a thread page's runs once."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from graphs.models import Run, Thread
from reviews.models import ReviewRule
from reviews.views import ALONE_IN_TURN, RUNS_SHOWN
from tests.reviews.conftest import pending
from tests.reviews.rows import stopped

REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}
PENDING_COUNT = 'SELECT COUNT(*) FROM "reviews_reviewtask"'
OUTCOME = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "task-outcome"}
TIMELINE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "timeline"}


@pytest.fixture
def finance(rita) -> ReviewRule:
    """Rita reviews the support graph under its rule (not as a superuser):
    the rule paths are taken."""
    group = Group.objects.create(name="finance")
    rita.groups.add(group)
    rule = ReviewRule.objects.create(name="support", graph_name="support", order=1)
    rule.view_groups.add(group)
    rule.review_groups.add(group)
    return rule


def asked(client, url: str, **headers) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200, (url, response.status_code)
    return [q["sql"] for q in captured.captured_queries]


def pages(thread_id: str) -> dict[str, tuple[str, dict]]:
    (task,) = pending(thread_id)
    return {
        "queue": (reverse("queue"), {}),
        "task": (reverse("task", args=[task.pk]), {}),
        "outcome": (reverse("task", args=[task.pk]), OUTCOME),
        "thread": (reverse("thread", args=[thread_id]), {}),
        "timeline": (reverse("thread", args=[thread_id]), TIMELINE),
        "home": (reverse("home"), {}),
        "count": (reverse("pending_count"), {}),
    }


@pytest.mark.parametrize(
    "page", ["queue", "task", "outcome", "thread", "timeline", "home", "count"]
)
def test_no_page_asks_the_same_thing_twice(as_rita, finance, page):
    url, headers = pages(stopped("support", REFUND))[page]
    as_rita.get(url, **headers)
    repeated = {sql: n for sql, n in Counter(asked(as_rita, url, **headers)).items() if n > 1}
    assert repeated == {}


def test_home_asks_as_often_for_many_graphs_as_for_few(as_rita, finance):
    def home_with(graphs: int) -> int:
        for i in range(graphs):
            Thread.objects.get_or_create(thread_id=f"t-{i}", graph_name=f"elsewhere-{i}")
        return len(asked(as_rita, reverse("home")))

    assert home_with(1) == home_with(6)


def test_only_pages_that_show_the_pending_count_count(as_rita, finance):
    urls = pages(stopped("support", REFUND))
    shown = {
        name: any(PENDING_COUNT in sql for sql in asked(as_rita, url, **headers))
        for name, (url, headers) in urls.items()
    }
    assert shown == {
        "queue": True,
        "task": True,
        "outcome": False,
        "thread": True,
        "timeline": False,
        "home": True,
        "count": True,
    }


def test_the_pending_count_is_that_of_the_open_tasks_one_may_see(rita, sam, finance):
    """The navigation bar's count, in its plain statement, is visible_tasks'
    count: with no rule, under rules one may see or not, for a superuser."""
    from django.contrib.auth import get_user_model

    from reviews.access import pending_count, visible_tasks
    from reviews.models import ReviewTask

    def counts(user) -> tuple[int, int]:
        fresh = get_user_model().objects.get(pk=user.pk)  # rights are read once per object
        orm = visible_tasks(fresh, ReviewTask.objects.pending()).count()
        return pending_count(get_user_model().objects.get(pk=user.pk)), orm

    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    stopped("support", REFUND)  # under rita's rule
    stopped("drafting", {"topic": "x"})  # under none
    hidden = ReviewRule.objects.create(name="tools", graph_name="tool_agent", order=2)
    hidden.view_groups.add(Group.objects.create(name="nobody"))
    stopped("tool_agent", {"messages": [{"role": "user", "content": "Fly me to Oslo for 2"}]})
    for user, expected in ((rita, 2), (sam, 1), (admin, 4)):  # two calls asked on tool_agent
        assert counts(user) == (expected, expected), user
    ReviewTask.objects.filter(graph_name="drafting").update(status=ReviewTask.Status.DECIDED)
    assert counts(rita) == (1, 1) and counts(sam) == (0, 0)


def test_the_thread_page_reads_its_runs_once(as_rita, finance):
    thread_id = stopped("support", REFUND)
    url = reverse("thread", args=[thread_id])
    as_rita.get(url)
    runs_asked = [sql for sql in asked(as_rita, url) if 'FROM "graphs_run"' in sql]
    # The page's list of runs, and the runs the timeline's points name.
    assert len(runs_asked) == 2, runs_asked


def moving(client, thread_id: str) -> bool:
    html = client.get(reverse("thread", args=[thread_id])).content.decode()
    return "load delay:2s" in html


def test_a_thread_moves_while_any_of_its_runs_is_active(as_rita, finance):
    thread_id = stopped("support", REFUND)
    assert not moving(as_rita, thread_id)
    thread = Thread.objects.get(pk=thread_id)
    old = Run.objects.create(thread=thread, graph_name="support", kind=Run.Kind.RESUME)
    assert moving(as_rita, thread_id)  # queued, among the runs listed
    for _ in range(RUNS_SHOWN):
        Run.objects.create(
            thread=thread, graph_name="support", kind=Run.Kind.RESUME, status=Run.Status.FAILED
        )
    assert moving(as_rita, thread_id)  # queued, older than every run listed
    Run.objects.filter(pk=old.pk).update(status=Run.Status.SUCCEEDED)
    assert not moving(as_rita, thread_id)


def test_changed_groups_and_rules_are_seen_by_the_next_request(as_rita, rita, finance):
    (task,) = pending(stopped("support", REFUND))
    url = reverse("task", args=[task.pk])
    assert as_rita.get(url).status_code == 200
    finance.view_groups.clear()
    finance.review_groups.clear()
    assert as_rita.get(url).status_code == 404
    finance.view_groups.add(*rita.groups.all())
    assert as_rita.get(url).status_code == 200
    thread_url = reverse("thread", args=[task.thread_id])
    assert as_rita.get(thread_url).status_code == 200
    # A rule now governs every graph before the support one, naming none of rita's groups.
    first = ReviewRule.objects.create(name="all graphs", graph_name="", order=0)
    first.view_groups.add(Group.objects.create(name="others"))
    assert as_rita.get(thread_url).status_code == 404
    rita.groups.clear()
    assert as_rita.get(url).status_code == 404


def test_a_batched_turn_reads_its_approvals_at_once(as_rita, finance):
    flight = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
    book, _charge = pending(stopped("tool_agent", flight))  # one turn, two calls
    url = reverse("task", args=[book.pk])
    as_rita.get(url)
    approvals_asked = [sql for sql in asked(as_rita, url) if 'FROM "reviews_approval"' in sql]
    assert len(approvals_asked) == 1, approvals_asked


def test_a_call_alone_in_its_turn_is_read_once(as_rita, finance):
    """An interrupt that asks one question: the task page looks up no other
    calls of its turn; a batched turn's page shows every call."""
    (task,) = pending(stopped("drafting", {"topic": "launch"}))
    assert task.shape in ALONE_IN_TURN
    url = reverse("task", args=[task.pk])
    as_rita.get(url)
    by_turn = '"reviews_reviewtask"."interrupt_id" = '
    assert not [sql for sql in asked(as_rita, url) if by_turn in sql]
    flight = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
    book, charge = pending(stopped("tool_agent", flight))
    html = as_rita.get(reverse("task", args=[book.pk])).content.decode()
    assert f"<code>{book.tool_name}</code>" in html and f"<code>{charge.tool_name}</code>" in html


def test_home_reads_the_threads_by_graph_once(as_rita, finance):
    stopped("support", REFUND)
    as_rita.get(reverse("home"))
    threads_asked = [
        sql for sql in asked(as_rita, reverse("home")) if 'FROM "graphs_thread"' in sql
    ]
    # The graphs' thread counts (which also tell the graphs threads name),
    # and the newest threads.
    assert len(threads_asked) == 2, threads_asked
