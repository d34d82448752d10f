"""The home page's thread rows, without the template engine per row.

Fifty rows of a few lookups, a URL, a date and a "time since" each cost the
template engine most of the page; here each is one pass of string
formatting, every text escaped.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.safestring import SafeString, mark_safe

from reviews.queue_row import _iso, _since, escape
from reviews.templatetags.queue_rows import here

register = template.Library()

_ID = "0placeholder0"
# Ids that a URL carries as they are (reverse() would quote nothing in them).
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")


@lru_cache(maxsize=8)
def _thread_url(prefix: str) -> tuple[str, str]:
    before, after = escape(reverse("thread", args=[_ID])).split(_ID)
    return before, after


def _url(thread_id: str) -> str:
    if _PLAIN.fullmatch(thread_id):
        before, after = _thread_url(get_script_prefix())
        return f"{before}{thread_id}{after}"
    return escape(reverse("thread", args=[thread_id]))


def _or_dash(value: Any) -> str:
    return escape(value) if value else "—"


@register.simple_tag(takes_context=True)
def thread_row(context: template.Context, thread: Any) -> SafeString:
    """One thread of the home page's list (annotated as views.home does)."""
    title = f"<br>{escape(thread.title)}" if thread.title else ""
    created = thread.created_at
    when = ""
    since = ""
    if created:
        reader = here(context)
        when = _iso(created, reader)
        since = escape(_since(created, reader))
    status = thread.last_run_status
    return mark_safe(
        "<tr>\n"
        f'        <td><a href="{_url(thread.thread_id)}"><code>{escape(thread.thread_id)}</code></a>'
        f"{title}</td>\n"
        f"        <td>{_or_dash(thread.graph_name)}</td>\n"
        f'        <td><span class="run-status {escape(status)}">{_or_dash(status)}</span></td>\n'
        f"        <td>{escape(thread.checkpoint_count)}</td>\n"
        f"        <td>{_or_dash(thread.latest_checkpoint_id)}</td>\n"
        f'        <td><time datetime="{when}">{since} ago</time></td>\n'
        "      </tr>"
    )
