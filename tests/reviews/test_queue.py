"""The queue page: filters, search, keyset pages and the quick decisions."""

from __future__ import annotations

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from graphs.models import Run, Thread
from reviews.models import ReviewTask
from tests.reviews.conftest import pending
from tests.reviews.rows import stopped

FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def backlog(n: int, **fields) -> list[ReviewTask]:
    """Pending tasks without running graphs: what the queue itself costs."""
    thread = Thread.objects.create(
        thread_id=f"bulk-{fields.get('tool_name', 'x')}", graph_name="support"
    )
    return ReviewTask.objects.bulk_create(
        [
            ReviewTask(
                thread=thread,
                graph_name="support",
                checkpoint_id=f"cp-{i}",
                interrupt_id=f"i-{i}",
                shape="agent_inbox",
                kind="approval",
                allowed=["accept", "ignore"],
                args={"n": i},
                **{"tool_name": "refund", **fields},
            )
            for i in range(n)
        ]
    )


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="task-(\d+)" class="task-row', html)]


def test_queue_lists_pending_oldest_first_with_count(as_rita):
    flight = stopped("tool_agent", FLIGHT)
    refund = stopped("support", REFUND)
    response = as_rita.get(reverse("queue"))
    html = response.content.decode()
    ids = [t.pk for t in pending(flight) + pending(refund)]
    # One row per turn: the batched flight turn's two calls share a row.
    assert row_ids(html) == [ids[0], ids[2]]
    assert (
        f'<span class="count" id="pending-count" title="pending review tasks">{len(ids)}</span>'
        in html
    )
    assert (
        '<span class="calls-count">2 calls:</span> <code>book_flight</code>, <code>charge_card</code>'
        in html
    )
    assert "&quot;amount&quot;: 360.0" in html
    assert 'ws-connect="/ws/reviews/"' in html and 'id="queue-rows"' in html


def test_filters_and_search(as_rita, rita):
    stopped("tool_agent", FLIGHT)
    refund = stopped("support", REFUND)
    get = lambda **q: row_ids(as_rita.get(reverse("queue"), q).content.decode())  # noqa: E731
    (refund_task,) = pending(refund)
    assert get(graph="support") == [refund_task.pk]
    assert get(tool="charge_card") == [
        t.pk for t in ReviewTask.objects.filter(tool_name="charge_card")
    ]
    assert get(q="A-1001") == [refund_task.pk]  # searches inside the arguments
    assert get(q="no such thing") == []
    assert get(kind="feedback") == []
    assert get(age="1h") == []
    ReviewTask.objects.filter(pk=refund_task.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    assert get(age="1h") == [refund_task.pk]
    newest = get(sort="newest")
    assert newest[0] == refund_task.pk and len(newest) == len(get()) == 2
    ReviewTask.objects.filter(pk=refund_task.pk).update(status="decided", decided_by=rita)
    assert get(status="decided", mine="1") == [refund_task.pk]
    html = as_rita.get(reverse("queue"), {"graph": "support"}).content.decode()
    assert 'id="queue-rows-filtered"' in html and 'id="queue-news"' in html  # no live rows here


def test_keyset_pages_cover_the_backlog_once(as_rita):
    tasks = backlog(120)
    first = as_rita.get(reverse("queue"))
    seen = row_ids(first.content.decode())
    more = first.context["more_url"]
    while more:
        page = as_rita.get(more, HTTP_HX_REQUEST="true")
        html = page.content.decode()
        assert "<table" not in html  # the rows partial only
        seen += row_ids(html)
        found = re.search(r'<tr id="queue-more">.*?href="([^"]+)"', html)
        more = found.group(1).replace("&amp;", "&") if found else ""
    assert seen == [t.pk for t in tasks]


def test_quick_approve_and_reject(as_rita):
    refund = stopped("support", REFUND)
    (task,) = pending(refund)
    response = as_rita.post(
        reverse("quick_decide", args=[task.pk]), {"action": "approve"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "accept recorded; run" in response.content.decode()
    assert ReviewTask.objects.get(pk=task.pk).decision == {"type": "accept"}
    assert Run.objects.filter(kind=Run.Kind.RESUME, thread_id=refund).count() == 1

    again = as_rita.post(
        reverse("quick_decide", args=[task.pk]),
        {"action": "reject", "message": "no"},
        HTTP_HX_REQUEST="true",
    )
    assert again.status_code == 409 and "Already decided by rita" in again.content.decode()


def test_quick_decision_refuses_a_batched_turn_and_an_empty_reason(as_rita):
    flight = stopped("tool_agent", FLIGHT)
    book, _ = pending(flight)
    response = as_rita.post(reverse("quick_decide", args=[book.pk]), {"action": "approve"})
    assert response.status_code == 302
    followed = as_rita.get(response["Location"]).content.decode()
    assert "This turn has 2 tool calls; open it to decide each one." in followed
    refund = stopped("support", REFUND)
    (task,) = pending(refund)
    response = as_rita.post(
        reverse("quick_decide", args=[task.pk]),
        {"action": "reject", "message": " "},
        HTTP_HX_REQUEST="true",
    )
    assert (
        response.status_code == 409
        and "Write the message the model will read." in response.content.decode()
    )
    assert all(t.status == "pending" for t in pending(flight) + pending(refund))


def test_bulk_decisions_report_what_they_could_not_do(as_rita, rita):
    refunds = [pending(stopped("support", REFUND))[0] for _ in range(2)]
    book, _charge = pending(stopped("tool_agent", FLIGHT))
    response = as_rita.post(
        reverse("bulk_decide"),
        {"action": "approve", "tasks": [refunds[0].pk, refunds[1].pk, book.pk, 999]},
        follow=True,
    )
    html = response.content.decode()
    assert "2 tasks approved." in html
    assert f"Not decided, task {book.pk}: one of 2 tool calls of a turn" in html
    assert "Not decided, task 999: not found" in html
    assert [ReviewTask.objects.get(pk=t.pk).decision for t in refunds] == [{"type": "accept"}] * 2
    assert ReviewTask.objects.get(pk=book.pk).status == "pending"
    assert Run.objects.filter(kind=Run.Kind.RESUME).count() == 2

    refund = pending(stopped("support", REFUND))[0]
    empty = as_rita.post(
        reverse("bulk_decide"), {"action": "reject", "tasks": [refund.pk]}, follow=True
    )
    assert "Write the message the model will read." in empty.content.decode()
    as_rita.post(
        reverse("bulk_decide"), {"action": "reject", "message": "No.", "tasks": [refund.pk]}
    )
    assert ReviewTask.objects.get(pk=refund.pk).decision == {"type": "response", "message": "No."}
