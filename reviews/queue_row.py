"""One row of the queue, as HTML, without the template engine.

The queue page shows up to 50 rows (and its overdue list up to 20 more), and
every live push renders rows for every open queue: through the template
engine a row cost about a millisecond (three URL reversals, a dozen variable
lookups, filters), most of a page's time. Here a row is one pass of string
formatting; every text that comes from an agent or a person goes through
`escape`. The markup is the one `reviews/queue.html` used to hold in its
`row` partial, which now calls this.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import get_language

from reviews.models import ReviewTask
from reviews.templatetags.as_json import as_json_line
from reviews.templatetags.conversation import call_description, node_words

# What a row never reads, left in the database: JSON decoded for nothing on
# every row of every page (an interrupt's payload repeats its calls).
UNREAD = ("payload", "response_schema", "allowed", "thread__metadata", "rule__condition")

_PK = 2_147_483_647  # a placeholder id, split out of the reversed URLs
# The labels get_kind_display() and get_status_display() look up, each call
# through Django's choice machinery: here one dict lookup.
_KINDS = {value: str(label) for value, label in ReviewTask.Kind.choices}
_STATUSES = {value: str(label) for value, label in ReviewTask.Status.choices}


@dataclass(frozen=True)
class Local:
    """The reader's time zone and language, looked up once for all the rows
    of a page or a push: each lookup goes through asgiref's context-local
    storage and cost more than a row's dates themselves."""

    zone: tzinfo
    language: str | None


def local() -> Local:
    return Local(timezone.get_current_timezone(), get_language())


def escape(value: Any) -> str:
    """django.utils.html.escape without its check for lazy text, which cost
    as much as the escaping: the same characters escaped the same way."""
    return html.escape(str(value))


def _kind(task: ReviewTask) -> str:
    return _KINDS.get(task.kind, task.kind)


@lru_cache(maxsize=8)
def _urls(prefix: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The task page's and the quick decision's URL, split around the id.
    Reversed once per script prefix (a site served under a path has its own)."""
    task = escape(reverse("task", args=[_PK])).split(str(_PK))
    quick = escape(reverse("quick_decide", args=[_PK])).split(str(_PK))
    return (task[0], task[1]), (quick[0], quick[1])


def _truncate(text: str, length: int) -> str:
    # Truncator also normalises (NFC) what it keeps: plain ASCII that fits
    # is the same text, without building one.
    if text.isascii() and len(text) <= length:
        return text
    return Truncator(text).chars(length)


_DAY = 24 * 60 * 60
_EPOCH = datetime(2000, 1, 1)


def _since(moment: datetime, here: Local | None = None) -> str:
    """timesince(moment): the same words, looked up once per language and
    minute for the ages under a day (most of a queue's), where they depend
    on nothing else; each lookup of the words costs a dozen microseconds
    more than the reckoning."""
    now = datetime.now(moment.tzinfo if timezone.is_aware(moment) else None)
    delta = now - moment
    since = delta.days * _DAY + delta.seconds
    if since >= _DAY:
        return timesince(moment, now)
    language = here.language if here is not None else get_language()
    return _minutes_since(language, max(since, 0) // 60)


@lru_cache(maxsize=4096)
def _minutes_since(language: str | None, minutes: int) -> str:
    return timesince(_EPOCH, _EPOCH + timedelta(minutes=minutes))


def _iso(moment: Any, here: Local | None = None) -> str:
    """The moment in the reader's time zone (timezone.localtime), ISO 8601."""
    if not timezone.is_aware(moment):
        return moment.isoformat()
    zone = here.zone if here is not None else timezone.get_current_timezone()
    return moment.astimezone(zone).isoformat()


def _what(task: ReviewTask, calls: list[ReviewTask]) -> str:
    if len(calls) > 1:
        names = ", ".join(f"<code>{escape(c.tool_name or _kind(c))}</code>" for c in calls)
        return f'<span class="calls-count">{len(calls)} calls:</span> {names}'
    if task.tool_name:
        return f"<code>{escape(task.tool_name)}</code>"
    if task.shape == "breakpoint":
        return f"stopped before <code>{escape(node_words(task.node))}</code>"
    kind = _kind(task)
    text = escape(kind[:1].upper() + kind[1:])
    if task.node:
        text += f" in <code>{escape(node_words(task.node))}</code>"
    return text


def _args(task: ReviewTask, calls: list[ReviewTask]) -> str:
    if len(calls) > 1:
        return "".join(
            f'<div class="call-line"><code>{escape(c.tool_name)}</code> '
            f"{escape(_truncate(as_json_line(c.args), 80))}</div>"
            for c in calls
        )
    if task.args:
        return escape(_truncate(as_json_line(task.args), 120))
    return escape(_truncate(call_description(task.description), 120))


def _meta(task: ReviewTask, here: Local) -> str:
    created = task.created_at
    parts = [
        f'<span class="pill" title="{_iso(created, here) if created else ""}">'
        f"{escape(_since(created, here)) if created else ''}</span>"
    ]
    pending = task.is_pending
    if task.overdue:
        parts.append('<span class="pill bad">overdue</span>')
    elif task.due_at and pending:
        parts.append(
            f'<span class="pill warn" title="due {_iso(task.due_at, here)}">'
            f"due in {escape(timeuntil(task.due_at))}</span>"
        )
    if pending and (need := task.required_approvals) > 1:
        have = getattr(task, "approval_count", 0) or 0
        parts.append(f'<span class="pill quorum">{have} of {need} approvals</span>')
    if claim := task.claim_text:
        parts.append(f'<span class="pill claim">{escape(claim)}</span>')
    if task.assigned_to_id or task.assigned_group_id:
        who = task.assigned_to.get_username() if task.assigned_to_id else ""
        parts.append(f'<span class="pill">for {escape(who or task.assigned_group)}</span>')
    return "".join(parts)


def _status(task: ReviewTask) -> str:
    if task.status == ReviewTask.Status.DECIDED:
        kind = task.decision.get("type", "") if isinstance(task.decision, dict) else ""
        who = task.decided_by.get_username() if task.decided_by_id else ""
        return f"{escape(kind)} by {escape(who or 'system')}"
    return escape(_STATUSES.get(task.status, task.status))


def row_html(
    task: ReviewTask, *, replaces: Any = None, oob: bool = False, here: Local | None = None
) -> SafeString:
    """The row of a turn led by `task` (its calls in `task.calls`, as
    reviews.queue_filters.turn_rows leaves them). `replaces`: the id of the
    row this one replaces on open pages; `oob`: it replaces its own. `here`:
    the reader's zone and language, when rows are made in a batch (local())."""
    here = here or local()
    (task_url, quick_url) = _urls(get_script_prefix())
    pk = task.pk
    calls = getattr(task, "calls", None) or [task]
    url = f"{task_url[0]}{pk}{task_url[1]}"
    if replaces:
        swap = f' hx-swap-oob="outerHTML:#task-{escape(replaces)}"'
    elif oob:
        swap = ' hx-swap-oob="true"'
    else:
        swap = ""
    status = escape(task.status)
    select = (
        f'<input type="checkbox" name="tasks" value="{pk}" form="bulk" aria-label="select task {pk}">'
        if task.status == ReviewTask.Status.PENDING and len(calls) <= 1
        else ""
    )
    title = task.thread.title or task.thread_id
    return mark_safe(
        f'\n<tr id="task-{pk}" class="task-row {status}" data-url="{url}" '
        f'data-quick="{quick_url[0]}{pk}{quick_url[1]}"{swap}>\n'
        f"  <td>{select}</td>\n"
        f'  <td class="what"><a href="{url}" class="tools">{_what(task, calls)}</a>\n'
        f'    <div class="hint sub">{escape(task.graph_name)} · '
        f"{escape(_truncate(str(title), 40))}</div></td>\n"
        f'  <td class="args">{_args(task, calls)}</td>\n'
        f'  <td class="meta">{_meta(task, here)}</td>\n'
        f"  <td>{_status(task)}</td>\n"
        "</tr>\n"
    )
