"""The queue's filters, shared by the queue page and the JSON API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from reviews.models import ReviewTask

AGES = {"10m": timedelta(minutes=10), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
STATUSES = ("pending", "decided", "superseded", "all")


def queue_filters(params: Mapping[str, Any]) -> dict[str, str]:
    """Normalised filters; unknown values fall back to the defaults."""
    get = params.get
    filters = {
        "graph": str(get("graph", "") or "").strip(),
        "kind": str(get("kind", "") or "").strip(),
        "tool": str(get("tool", "") or "").strip(),
        "status": str(get("status", "pending") or "pending"),
        "mine": "1" if get("mine") else "",
        "age": str(get("age", "") or ""),
        "q": str(get("q", "") or "").strip(),
        "sort": "newest" if get("sort") == "newest" else "oldest",
    }
    if filters["status"] not in STATUSES:
        filters["status"] = "pending"
    if filters["kind"] not in ReviewTask.Kind.values:
        filters["kind"] = ""
    if filters["age"] not in AGES:
        filters["age"] = ""
    return filters


def queue_tasks(filters: dict[str, str], user: Any, *, after: str = "") -> QuerySet[ReviewTask]:
    tasks = ReviewTask.objects.select_related(
        "thread", "decided_by", "claimed_by", "assigned_to", "assigned_group"
    )
    if filters["status"] != "all":
        tasks = tasks.filter(status=filters["status"])
    if filters["graph"]:
        tasks = tasks.filter(graph_name=filters["graph"])
    if filters["kind"]:
        tasks = tasks.filter(kind=filters["kind"])
    if filters["tool"]:
        tasks = tasks.filter(tool_name=filters["tool"])
    if filters["mine"]:  # decided by me, assigned to me, or held by me
        tasks = tasks.filter(Q(decided_by=user) | Q(assigned_to=user) | Q(claimed_by=user))
    if filters["age"]:
        tasks = tasks.filter(created_at__lte=timezone.now() - AGES[filters["age"]])
    if filters["q"]:
        q = filters["q"]
        tasks = tasks.filter(
            Q(tool_name__icontains=q) | Q(args__icontains=q) | Q(description__icontains=q)
        )
    # Keyset pagination on the id (ids grow with creation time): the page
    # after a cursor costs the same at the end of a long backlog as at its start.
    newest = filters["sort"] == "newest"
    if str(after).isdigit():
        tasks = tasks.filter(pk__lt=int(after)) if newest else tasks.filter(pk__gt=int(after))
    return tasks.order_by("-pk" if newest else "pk")
