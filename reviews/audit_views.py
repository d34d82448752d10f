"""The audit trail: browse with filters, export any filtered view streamed."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from reviews.audit_chain import CSV_ANCHOR_MARK, HASHED, anchor_line
from reviews.models import AuditEvent

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
# The exported columns: the row's id, what its hash covers, and the hash.
COLUMNS = ["id", *HASHED, "hash"]
# Seeing the whole trail is an administrator's right: reviewers are granted
# it through this permission (admin: users or groups), superusers have it.
can_view_audit = permission_required("reviews.view_auditevent", raise_exception=True)


def _filters(request: HttpRequest) -> dict[str, str]:
    get = request.GET
    return {
        name: get.get(name, "").strip()
        for name in ("actor", "graph", "thread", "action", "since", "until", "q")
    }


def _day(text: str, *, end: bool) -> datetime | None:
    day = parse_date(text) if text else None
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def filtered_events(filters: dict[str, str]) -> tuple[QuerySet[AuditEvent], list[str]]:
    """The events the filters select, and what was wrong with any filter."""
    events = AuditEvent.objects.all()
    errors = []
    if filters["actor"]:
        events = events.filter(actor_name="" if filters["actor"] == "system" else filters["actor"])
    if filters["graph"]:
        events = events.filter(graph_name=filters["graph"])
    if filters["thread"]:
        events = events.filter(thread_id=filters["thread"])
    if filters["action"]:
        events = events.filter(action=filters["action"])
    for name, end in (("since", False), ("until", True)):
        if filters[name]:
            moment = _day(filters[name], end=end)
            if moment is None:
                errors.append(f"{name.capitalize()}: {filters[name]!r} is not a date (YYYY-MM-DD).")
            else:
                lookup = "created_at__lte" if end else "created_at__gte"
                events = events.filter(**{lookup: moment})
    if filters["q"]:
        q = filters["q"]
        events = events.filter(
            Q(thread_id__icontains=q)
            | Q(actor_name__icontains=q)
            | Q(before__icontains=q)
            | Q(after__icontains=q)
        )
    return events, errors


@login_required
@can_view_audit
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    events, errors = filtered_events(filters)
    after = request.GET.get("after", "")
    page_events = events.order_by("-id")
    if after.isdigit():
        page_events = page_events.filter(id__lt=int(after))
    page = list(page_events[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    params = request.GET.copy()
    params.pop("after", None)
    export = params.urlencode()
    if more:
        params["after"] = str(page[-1].pk)
    context = {
        "events": page,
        "filters": filters,
        "errors": errors,
        "actions": AuditEvent.ACTIONS,
        "more_url": f"{reverse('audit')}?{params.urlencode()}" if more else "",
        "export_query": export,
    }
    template = "reviews/audit.html#rows" if request.htmx and after else "reviews/audit.html"
    return render(request, template, context, status=422 if errors else 200)


class _Echo:
    """csv.writer writes into this and gets the line back: rows are streamed."""

    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet[AuditEvent]) -> Iterator[dict]:
    return events.order_by("id").values(*COLUMNS).iterator(chunk_size=EXPORT_CHUNK)


# What a spreadsheet would run as a formula. Thread ids and titles come from
# agents' clients, so a cell starting so is written as text (OWASP's advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_lines(events: QuerySet[AuditEvent], anchor: dict) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for row in _rows(events):
        row["created_at"] = row["created_at"].isoformat()
        for name in ("before", "after"):
            row[name] = "" if row[name] is None else json.dumps(row[name], sort_keys=True)
        yield writer.writerow([_cell(row[c]) for c in COLUMNS])
    yield writer.writerow([CSV_ANCHOR_MARK, anchor_line(anchor)])


def _jsonl_lines(events: QuerySet[AuditEvent], anchor: dict) -> Iterator[str]:
    for row in _rows(events):
        row["created_at"] = row["created_at"].isoformat()
        yield json.dumps(row, sort_keys=True) + "\n"
    yield anchor_line(anchor) + "\n"


@login_required
@can_view_audit
@require_GET
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The filtered trail, oldest first, streamed: a million rows never sit in
    memory. The last line is the whole chain's head when the export began,
    signed: saved, it is an anchor for `manage.py verify_audit --anchor`."""
    events, errors = filtered_events(_filters(request))
    if errors:
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain")
    anchor = AuditEvent.anchor()
    # Rows up to the anchored head only: the file is the trail as it stood then.
    events = events.filter(id__lte=anchor["last_id"] or 0)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(events, anchor), content_type="text/csv")
    else:
        response = StreamingHttpResponse(
            _jsonl_lines(events, anchor), content_type="application/jsonl"
        )
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response
