"""Who may do what: the one place the pages, the API and the websocket ask.

A task is governed by the rule it matched (ReviewRule); a thread, a start
form or a replay by its graph's rule (the first rule for the graph, or for
any graph, with no tool and no condition). Administering implies reviewing,
and reviewing implies viewing. No rule: every signed-in reviewer may.
Superusers may always.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from graphs.models import Run, Thread
from reviews.models import ReviewRule, ReviewTask

VIEW, REVIEW, ADMINISTER = "view", "review", "administer"
_IMPLIED = {
    VIEW: (VIEW, REVIEW, ADMINISTER),
    REVIEW: (REVIEW, ADMINISTER),
    ADMINISTER: (ADMINISTER,),
}
_RELATIONS = {VIEW: "view_groups", REVIEW: "review_groups", ADMINISTER: "admin_groups"}


def _signed_in(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _groups(user: Any) -> set[int]:
    if not hasattr(user, "_review_group_ids"):
        user._review_group_ids = set(user.groups.values_list("pk", flat=True))
    return user._review_group_ids


def rules_granting(user: Any, action: str) -> set[int] | None:
    """Ids of the rules under which the user may act; None: under all."""
    if not _signed_in(user):
        return set()
    if user.is_superuser:
        return None
    groups = _groups(user)
    query = Q()
    for implied in _IMPLIED[action]:
        query |= Q(**{f"{_RELATIONS[implied]}__in": groups})
    return set(ReviewRule.objects.filter(query).values_list("pk", flat=True)) if groups else set()


def allowed(user: Any, action: str, rule_id: int | None) -> bool:
    if not _signed_in(user):
        return False
    if rule_id is None or user.is_superuser:
        return True
    return rule_id in rules_granting(user, action)


def can(user: Any, action: str, task: ReviewTask) -> bool:
    return allowed(user, action, task.rule_id)


def graph_rule(graph_name: str) -> ReviewRule | None:
    return (
        ReviewRule.objects.filter(Q(graph_name=graph_name) | Q(graph_name=""), tool_name="")
        .filter(Q(condition__isnull=True))
        .first()
    )


def can_graph(user: Any, action: str, graph_name: str) -> bool:
    rule = graph_rule(graph_name)
    return allowed(user, action, rule.pk if rule else None)


def visible_tasks(user: Any, tasks: QuerySet[ReviewTask]) -> QuerySet[ReviewTask]:
    """The tasks among these the user may see."""
    granted = rules_granting(user, VIEW)
    if granted is None or not ReviewRule.objects.exists():
        return tasks  # no rules at all: every task is open (and the queries stay simple)
    return tasks.filter(Q(rule__isnull=True) | Q(rule_id__in=granted))


def task_for(user: Any, pk: int, action: str = VIEW) -> ReviewTask:
    """The task, if the user may see it (Http404 otherwise: its existence is
    not told) and may do `action` with it (PermissionDenied, saying why)."""
    tasks = ReviewTask.objects.select_related("thread", "decided_by", "claimed_by", "rule")
    task = visible_tasks(user, tasks).filter(pk=pk).first()
    if task is None:
        raise Http404("No such task.")
    if action != VIEW and not can(user, action, task):
        raise PermissionDenied(
            f"You may see this task but not decide it: rule “{task.rule}” names who may."
        )
    return task


def thread_for(user: Any, thread_id: str, action: str = VIEW) -> Thread:
    thread = Thread.objects.filter(pk=thread_id).first()
    if thread is None or not can_graph(user, VIEW, thread.graph_name):
        raise Http404("No such thread.")
    if action != VIEW and not can_graph(user, action, thread.graph_name):
        raise PermissionDenied(f"You may see {thread.graph_name} threads but not change them.")
    return thread


def run_for(user: Any, run_id: int, action: str = VIEW) -> Run:
    """A run, under its thread's rules."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    thread_for(user, run.thread_id, action)
    return run
