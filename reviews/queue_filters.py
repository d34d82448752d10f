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


# What a row shows of its task's relations. The thread and the rule (which
# holds the quorum) are on every row; who decided, holds or is assigned a
# task, on few: joined in, their columns cost every row of every page a
# quarter of the query's time, to build nothing (with_rare_relations).
ROW_JOINED = ("thread", "rule")
ROW_RARE = ("decided_by", "claimed_by", "assigned_to", "assigned_group")


def queue_tasks(
    filters: dict[str, str],
    user: Any,
    *,
    after: str = "",
    joined: tuple[str, ...] = ROW_JOINED + ROW_RARE,
) -> QuerySet[ReviewTask]:
    tasks = ReviewTask.objects.select_related(*joined)
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


def with_rare_relations(tasks: list[ReviewTask]) -> list[ReviewTask]:
    """The tasks, with what ROW_RARE names loaded where some task has it:
    one query per relation in use, none for those no task has."""
    from django.db.models import prefetch_related_objects

    used = [name for name in ROW_RARE if any(getattr(t, f"{name}_id") for t in tasks)]
    if used:
        prefetch_related_objects(tasks, *used)
    return tasks


def turn_rows(tasks: list[ReviewTask]) -> list[ReviewTask]:
    """One row per turn: the first call of each turn among these tasks leads
    its row and carries the turn's calls (`calls`) and, for a quorum, the
    approvals given so far (`approval_count`). Calls the user can't see are
    not among the tasks, so a row never names them."""
    from django.db.models import Prefetch, prefetch_related_objects

    from reviews.actions.tasks import standing_approvals
    from reviews.models import Approval

    rows: list[ReviewTask] = []
    lead: dict[tuple[str, str, str, int | None, int | None], ReviewTask] = {}
    for task in tasks:
        # Calls under different rules keep rows of their own: a row goes live
        # to those its rules let see it.
        key = (
            task.thread_id,
            task.checkpoint_id,
            task.interrupt_id,
            task.rule_id,
            task.edit_rule_id,
        )
        if key in lead and task.is_pending == lead[key].is_pending:
            lead[key].calls.append(task)
            continue
        task.calls = [task]
        lead[key] = task
        rows.append(task)
    # Only a call that needs several approvals shows how many it has: most
    # pages have none, and need no query for it.
    counting = [t for t in tasks if t.is_pending and t.required_approvals > 1]
    if counting:
        given = Approval.objects.select_related("reviewer").order_by("pk")
        prefetch_related_objects(counting, Prefetch("approvals", queryset=given))
    for task in tasks:
        task.approval_count = 0
    # Whether an approval still counts reads its reviewer's rights: one user
    # object per reviewer reads them once for the whole page.
    reviewers: dict[int, Any] = {}
    for task in counting:
        given = list(task.approvals.all())
        for approval in given:
            approval.reviewer = reviewers.setdefault(approval.reviewer_id, approval.reviewer)
        standing, _ = standing_approvals(task, given)
        task.approval_count = len(standing)
    return rows
