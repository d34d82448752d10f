"""The home page's thread rows, rendered without the template engine
(reviews/templatetags/home_rows.py), read as the template wrote them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template import engines
from django.utils import timezone

from graphs.models import Thread

# The row as home.html's loop wrote it, kept as the reference.
TEMPLATE_ROW = (
    "{% load home_rows %}{% for thread in threads %}\n"
    + '      <tr>\n        <td><a href="{% url \'thread\' thread.thread_id %}"><code>{{ thread.thread_id }}</code></a>{% if thread.title %}<br>{{ thread.title }}{% endif %}</td>\n        <td>{{ thread.graph_name|default:"—" }}</td>\n        <td><span class="run-status {{ thread.last_run_status }}">{{ thread.last_run_status|default:"—" }}</span></td>\n        <td>{{ thread.checkpoint_count }}</td>\n        <td>{{ thread.latest_checkpoint_id|default:"—" }}</td>\n        <td><time datetime="{{ thread.created_at|date:\'c\' }}">{{ thread.created_at|timesince }} ago</time></td>\n      </tr>\n'
    + "{% endfor %}"
)
NEW_ROW = (
    "{% load home_rows %}{% for thread in threads %}\n      {% thread_row thread %}\n{% endfor %}"
)
HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"


def render(source: str, threads: list[Thread]) -> str:
    return engines["django"].from_string(source).render({"threads": threads})


def thread(thread_id: str, **shown) -> Thread:
    row = Thread(thread_id=thread_id, graph_name=shown.pop("graph_name", "support"))
    row.title = shown.pop("title", "")
    row.created_at = shown.pop("created_at", timezone.now() - timedelta(hours=3, minutes=2))
    # What views.home annotates.
    row.checkpoint_count = shown.pop("checkpoint_count", 4)
    row.latest_checkpoint_id = shown.pop("latest_checkpoint_id", "1f0-abc")
    row.last_run_status = shown.pop("last_run_status", "interrupted")
    return row


@pytest.mark.parametrize(
    "row",
    [
        thread("t-1"),
        thread(f"{HOSTILE}-1", title=HOSTILE, graph_name=HOSTILE),
        thread("a b/c?d#e%20ü", title="Café"),
        thread(
            "t-2",
            graph_name="",
            checkpoint_count=None,
            latest_checkpoint_id=None,
            last_run_status=None,
        ),
        thread("t-3", last_run_status="", latest_checkpoint_id="", title=None),
        thread("t-4", created_at=timezone.now() - timedelta(days=40)),
    ],
    ids=lambda row: repr(row.thread_id),
)
def test_a_thread_row_reads_as_the_template_wrote_it(row):
    assert render(NEW_ROW, [row]) == render(TEMPLATE_ROW, [row])


def test_thread_text_is_escaped():
    html = render(NEW_ROW, [thread(HOSTILE, title=HOSTILE)])
    assert "<script>" not in html and "&lt;script&gt;" in html
