"""The queue's rows, rendered without the template engine (reviews.queue_row),
show what the template partial they replace showed, byte for byte, for every
kind of row: its text escaped, its links, pills, holders and calls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.template import engines
from django.utils import timezone, translation

from graphs.models import Thread
from reviews.models import Approval, ReviewRule, ReviewTask
from reviews.queue_filters import turn_rows
from reviews.queue_row import local, row_html

# The row as the queue's template partial wrote it, kept as the reference.
TEMPLATE_ROW = (
    "{% load as_json conversation %}\n"
    + '<tr id="task-{{ task.pk }}" class="task-row {{ task.status }}" data-url="{% url \'task\' task.pk %}" data-quick="{% url \'quick_decide\' task.pk %}"{% if replaces %} hx-swap-oob="outerHTML:#task-{{ replaces }}"{% elif oob %} hx-swap-oob="true"{% endif %}>\n  <td>{% if task.status == "pending" and task.calls|length <= 1 %}<input type="checkbox" name="tasks" value="{{ task.pk }}" form="bulk" aria-label="select task {{ task.pk }}">{% endif %}</td>\n  <td class="what"><a href="{% url \'task\' task.pk %}" class="tools">{% if task.calls|length > 1 %}<span class="calls-count">{{ task.calls|length }} calls:</span> {% for c in task.calls %}<code>{{ c.tool_name|default:c.get_kind_display }}</code>{% if not forloop.last %}, {% endif %}{% endfor %}{% elif task.tool_name %}<code>{{ task.tool_name }}</code>{% elif task.shape == "breakpoint" %}stopped before <code>{{ task.node|node_words }}</code>{% else %}{{ task.get_kind_display|capfirst }}{% if task.node %} in <code>{{ task.node|node_words }}</code>{% endif %}{% endif %}</a>\n    <div class="hint sub">{{ task.graph_name }} · {{ task.thread.title|default:task.thread_id|truncatechars:40 }}</div></td>\n  <td class="args">{% if task.calls|length > 1 %}{% for c in task.calls %}<div class="call-line"><code>{{ c.tool_name }}</code> {{ c.args|as_json_line|truncatechars:80 }}</div>{% endfor %}{% elif task.args %}{{ task.args|as_json_line|truncatechars:120 }}{% else %}{{ task.description|call_description|truncatechars:120 }}{% endif %}</td>\n  <td class="meta"><span class="pill" title="{{ task.created_at|date:\'c\' }}">{{ task.created_at|timesince }}</span>{% if task.overdue %}<span class="pill bad">overdue</span>{% elif task.due_at and task.is_pending %}<span class="pill warn" title="due {{ task.due_at|date:\'c\' }}">due in {{ task.due_at|timeuntil }}</span>{% endif %}{% if task.is_pending and task.required_approvals > 1 %}<span class="pill quorum">{{ task.approval_count|default:0 }} of {{ task.required_approvals }} approvals</span>{% endif %}{% if task.claim_text %}<span class="pill claim">{{ task.claim_text }}</span>{% endif %}{% if task.assigned_to or task.assigned_group %}<span class="pill">for {{ task.assigned_to.get_username|default:task.assigned_group }}</span>{% endif %}</td>\n  <td>{% if task.status == "decided" %}{{ task.decision.type }} by {{ task.decided_by.get_username|default:"system" }}{% else %}{{ task.get_status_display }}{% endif %}</td>\n</tr>\n'
)
HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"


def reference(task: ReviewTask, **context) -> str:
    return engines["django"].from_string(TEMPLATE_ROW).render({"task": task, **context})


def make(thread: Thread, n: int, **fields) -> ReviewTask:
    values = {
        "graph_name": thread.graph_name,
        "checkpoint_id": f"cp-{n}",
        "interrupt_id": f"i-{n}",
        "shape": "agent_inbox",
        "kind": "approval",
        "tool_name": "refund",
        "args": {"order": f"A-{n}"},
        **fields,
    }
    return ReviewTask.objects.create(thread=thread, **values)


@pytest.fixture
def rows(db):
    User = get_user_model()
    rita = User.objects.create_user("rita")
    sam = User.objects.create_user("sam")
    finance = Group.objects.create(name=f"finance {HOSTILE}")
    quorum = ReviewRule.objects.create(name="two", graph_name="support", required_approvals=2)
    quorum.review_groups.add(finance)
    sam.groups.add(finance)  # his approval counts
    plain = Thread.objects.create(thread_id="t-plain", graph_name="support")
    titled = Thread.objects.create(
        thread_id="t-titled",
        graph_name="support",
        # Past 40 characters, with a combining accent the truncation composes.
        title="Cafe\u0301 order " + HOSTILE + " and more words after it",
    )
    # Short enough to keep whole: still composed, as the truncation composes it.
    short = Thread.objects.create(thread_id="t-short", graph_name="support", title="Cafe\u0301")
    now = timezone.now()
    tasks = [
        make(plain, 1),
        make(short, 22),
        make(plain, 23, tool_name="", args=None, kind="tool_edit"),
        make(titled, 2, args={"note": HOSTILE * 10, "amount": 12.5, "ok": True}),
        make(plain, 3, tool_name="", args=None, description="Check it.\n\nTool: x\nArgs: {}"),
        make(plain, 4, tool_name="", args={}, description=HOSTILE * 20, kind="feedback"),
        make(plain, 5, tool_name="", args=None, kind="feedback", node="ask_<human>"),
        make(
            plain,
            6,
            tool_name="",
            args=None,
            shape="breakpoint",
            kind="breakpoint",
            node="__start__",
        ),
        make(plain, 7, kind="other", tool_name="", args=[1, 2], node=""),
        make(plain, 8, status="decided", decided_by=rita, decision={"type": "edit"}),
        make(plain, 9, status="decided", decision={"type": HOSTILE}),
        make(plain, 10, status="decided", decision=None),
        make(plain, 11, status="superseded"),
        make(plain, 12, claimed_by=sam, claim_expires_at=now + timedelta(minutes=9)),
        make(plain, 13, claimed_by=sam, claim_expires_at=now - timedelta(minutes=1)),
        make(plain, 14, assigned_to=rita),
        make(plain, 15, assigned_group=finance),
        make(plain, 16, due_at=now + timedelta(hours=3, minutes=5)),
        make(plain, 17, due_at=now - timedelta(minutes=5)),
        make(plain, 18, rule=quorum),
        make(plain, 19, rule=quorum, status="decided", decision={"type": "approve"}),
        # A batched turn: two calls share a row, one with no tool name.
        make(
            plain,
            20,
            checkpoint_id="cp-b",
            interrupt_id="batch",
            action_index=0,
            tool_name="book_" + HOSTILE,
        ),
        make(
            plain,
            21,
            checkpoint_id="cp-b",
            interrupt_id="batch",
            action_index=1,
            tool_name="",
            kind="feedback",
            args={"long": "y" * 200},
        ),
    ]
    Approval.objects.create(task=tasks[19], reviewer=sam, decision={"type": "approve"})
    ReviewTask.objects.filter(pk=tasks[0].pk).update(created_at=now - timedelta(days=2, hours=1))
    loaded = list(
        ReviewTask.objects.filter(pk__in=[t.pk for t in tasks])
        .select_related(
            "thread", "rule", "decided_by", "claimed_by", "assigned_to", "assigned_group"
        )
        .order_by("pk")
    )
    return turn_rows(loaded)


def test_every_kind_of_row_reads_as_the_template_wrote_it(rows):
    assert len(rows) == 22  # the batched turn is one row
    for task in rows:
        assert row_html(task) == reference(task), task


def test_live_rows_replace_themselves_or_another(rows):
    task = rows[0]
    assert row_html(task, oob=True) == reference(task, oob=True)
    assert 'hx-swap-oob="true"' in row_html(task, oob=True)
    assert row_html(task, replaces=7) == reference(task, replaces=7)
    assert 'hx-swap-oob="outerHTML:#task-7"' in row_html(task, replaces=7)


def test_a_row_without_its_turn_is_a_row_of_one(rows):
    task = ReviewTask.objects.select_related("thread").get(pk=rows[0].pk)
    assert not hasattr(task, "calls")
    assert row_html(task) == reference(task)


def test_agent_text_is_escaped(rows):
    html = "".join(row_html(task) for task in rows)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_call_that_needs_several_approvals_shows_how_many_it_has(rows):
    (quorum,) = [t for t in rows if t.is_pending and t.required_approvals > 1]
    assert '<span class="pill quorum">1 of 2 approvals</span>' in row_html(quorum)


def test_rows_of_a_page_read_in_the_readers_time_zone_and_language(rows):
    """A page's rows share one look-up of the reader's zone and language
    (queue_row.local()): the rows still read as the template wrote them there."""
    english = [row_html(task) for task in rows]  # the words of each age, looked up in English
    with timezone.override("Asia/Kathmandu"), translation.override("de"):
        here = local()
        page = engines["django"].from_string(
            "{% load queue_rows %}{% for task in tasks %}{% queue_row task %}{% endfor %}"
        )
        assert page.render({"tasks": rows}) == "".join(reference(task) for task in rows)
        for task in rows:
            assert row_html(task, here=here) == reference(task), task
        assert "+05:45" in row_html(rows[0], here=here)
        assert "Tage" in row_html(rows[0], here=here)  # two days old, in German
        assert [row_html(task, here=here) for task in rows] != english
