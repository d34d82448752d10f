"""Who may do what: the one place the pages, the API, the websocket and admin ask.

A task is governed by the rule it matched (ReviewRule). An edited call is
judged as if it had been proposed: its decider needs the right to review
under the edited call's rule too, and its quorum is the larger of the two.
Each call of a batched turn is decided by those its own rule names.

A thread (its state, history, diffs and live events) holds every call made
on it, so it is visible only to those who may view its graph (the graph's
rule: the first rule for the graph, or for any graph, with no tool and no
condition) and every task ever asked on it, with the rule each edit decided
on it fell under. Changing it (editing state,
forking, replaying, retrying, cancelling its runs) needs the right to
review its graph and to decide every task still open on it: any of those
would retire or overrule them. A state write is also judged on the tool
calls it would let the graph run (check_state_write).

Administering implies reviewing, and reviewing implies viewing. No rule:
every signed-in reviewer may view and review, and staff administer.
Superusers may always.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.http import Http404

from graphs.models import Run, Thread
from reviews.models import ReviewRule, ReviewTask, current_rules

VIEW, REVIEW, ADMINISTER = "view", "review", "administer"
_IMPLIED = {
    VIEW: (VIEW, REVIEW, ADMINISTER),
    REVIEW: (REVIEW, ADMINISTER),
    ADMINISTER: (ADMINISTER,),
}
_RELATIONS = {VIEW: "view_groups", REVIEW: "review_groups", ADMINISTER: "admin_groups"}


def _signed_in(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _cache(user: Any) -> dict[str, Any]:
    """What access has read for this user object. A request's user lives for
    that request (a websocket's for its connection), so a changed rule or
    group is seen from the next one."""
    if not hasattr(user, "_review_access"):
        user._review_access = {"graph_rules": {}}
    return user._review_access


def _groups(user: Any) -> set[int]:
    if not hasattr(user, "_review_group_ids"):
        user._review_group_ids = set(user.groups.values_list("pk", flat=True))
    return user._review_group_ids


def _rights(user: Any) -> dict[str, set[int]]:
    """Per right, the rules naming one of the user's groups for it: one query for all three."""
    cache = _cache(user)
    if "rights" not in cache:
        rights: dict[str, set[int]] = {action: set() for action in _RELATIONS}
        groups = _groups(user)
        if groups:
            named = [
                getattr(ReviewRule, relation)
                .through.objects.filter(group_id__in=groups)
                .annotate(right=Value(action))
                .values_list("reviewrule_id", "right")
                for action, relation in _RELATIONS.items()
            ]
            for rule_id, action in named[0].union(*named[1:], all=True):
                rights[action].add(rule_id)
        cache["rights"] = rights
    return cache["rights"]


def rules_granting(user: Any, action: str) -> set[int] | None:
    """Ids of the rules under which the user may act; None: under all."""
    if not _signed_in(user):
        return set()
    if user.is_superuser:
        return None
    rights = _rights(user)
    return set().union(*(rights[implied] for implied in _IMPLIED[action]))


def _rules_exist(user: Any) -> bool:
    cache = _cache(user)
    if "rules_exist" not in cache:
        cache["rules_exist"] = any(_rights(user).values()) or ReviewRule.objects.exists()
    return cache["rules_exist"]


def allowed(user: Any, action: str, rule_id: int | None) -> bool:
    if not _signed_in(user):
        return False
    if user.is_superuser:
        return True
    if rule_id is None:
        # No rule names administrators: staff are (assigning a task away from
        # whoever holds it, moving a graph by hand, changing its assistants).
        return action != ADMINISTER or user.is_staff
    return rule_id in rules_granting(user, action)


def can(user: Any, action: str, task: ReviewTask) -> bool:
    """Whether the user may `action` the task: under its rule, and may see
    the call an edit of it took under another (ReviewTask.edit_rule)."""
    return allowed(user, action, task.rule_id) and (
        task.edit_rule_id is None or allowed(user, VIEW, task.edit_rule_id)
    )


def graph_rules(names: Iterable[str]) -> dict[str, ReviewRule | None]:
    """Each graph's rule (the first rule for the graph, or for any graph,
    with no tool and no condition), for all these graphs in one query."""
    names = set(names)
    candidates = list(
        ReviewRule.objects.filter(Q(graph_name__in=names) | Q(graph_name=""), tool_name="").filter(
            Q(condition__isnull=True)
        )
    )
    return {
        name: next((r for r in candidates if r.graph_name in (name, "")), None) for name in names
    }


def graph_rule(graph_name: str) -> ReviewRule | None:
    return graph_rules([graph_name])[graph_name]


def _graph_rule_ids(user: Any, names: Iterable[str]) -> dict[str, int | None]:
    known = _cache(user)["graph_rules"]
    missing = set(names) - known.keys()
    if missing:
        known |= {name: rule.pk if rule else None for name, rule in graph_rules(missing).items()}
    return known


def graphs_allowed(user: Any, action: str, names: Iterable[str]) -> set[str]:
    """The graphs among these whose things the user may `action`."""
    names = set(names)
    if not _signed_in(user):
        return set()
    if user.is_superuser:
        return names
    rule_ids = _graph_rule_ids(user, names)
    return {name for name in names if allowed(user, action, rule_ids[name])}


def can_graph(user: Any, action: str, graph_name: str) -> bool:
    return graph_name in graphs_allowed(user, action, [graph_name])


def graph_rights(user: Any, graph_name: str) -> tuple[bool, bool]:
    """Whether the user may see, and may run or change, the graph's things:
    one rule lookup for both (the Agent Server's assistants and runs)."""
    return can_graph(user, VIEW, graph_name), can_graph(user, REVIEW, graph_name)


def _thread_allows(user: Any, action: str, thread: Thread) -> bool:
    if not can_graph(user, VIEW if action == VIEW else REVIEW, thread.graph_name):
        return False
    if user.is_superuser:
        return True
    tasks = ReviewTask.objects.filter(thread_id=thread.pk).under_rules()
    seen = {
        rule_id
        for pair in tasks.values_list("rule_id", "edit_rule_id").distinct()
        for rule_id in pair
        if rule_id is not None
    }
    if not seen <= rules_granting(user, VIEW):
        return False
    if action == VIEW:
        return True
    open_rules = set(tasks.pending().values_list("rule_id", flat=True).distinct())
    return open_rules <= rules_granting(user, action)


def visible_threads(
    user: Any, threads: QuerySet[Thread], *, graph_rules: bool = False
) -> QuerySet[Thread]:
    """The threads among these the user may see; the graphs' own rules too
    with `graph_rules` (callers that list graphs have asked those already)."""
    granted = rules_granting(user, VIEW)
    if granted is None:
        return threads
    if graph_rules:
        names = set(threads.values_list("graph_name", flat=True).distinct())
        threads = threads.exclude(graph_name__in=names - graphs_allowed(user, VIEW, names))
    hidden = ReviewTask.objects.filter(thread_id=OuterRef("pk")).hidden_under(granted)
    return threads.exclude(Exists(hidden))


def may_still_approve(reviewer: Any, task: ReviewTask, decision: dict[str, Any]) -> bool:
    """Whether an approval given earlier still counts: its reviewer is active
    and may still review the task, and the call as they approved it."""
    if not reviewer.is_active or not can(reviewer, REVIEW, task):
        return False
    if decision.get("type") != "edit":
        return True
    rule = edited_rule(task, decision)
    return rule is None or allowed(reviewer, REVIEW, rule.pk)


def edited_rule(task: ReviewTask, decision: dict[str, Any]) -> ReviewRule | None:
    """The rule an edited call falls under, judged as if it had been proposed."""
    return ReviewRule.for_call(
        task.graph_name, decision.get("name") or task.tool_name, decision.get("args")
    )


def check_decisions(
    user: Any, tasks: list[ReviewTask], decisions: dict[int, dict[str, Any]]
) -> dict[int, ReviewRule | None]:
    """Refuse (PermissionDenied) unless the user may decide every one of these
    tasks as decided; returns, per edited task, the rule its edit falls under
    (its quorum counts too). The system (user None) decides under no rule."""
    edited: dict[int, ReviewRule | None] = {}
    for task in tasks:
        decision = decisions.get(task.pk) or {}
        if decision.get("type") == "edit":
            edited[task.pk] = edited_rule(task, decision)
        if user is None:
            continue
        if not can(user, REVIEW, task):
            what = f"{task.tool_name} call" if task.tool_name else "request"
            rule = task.rule if not allowed(user, REVIEW, task.rule_id) else task.edit_rule
            raise PermissionDenied(
                f"You may not decide the {what} (task {task.pk}): rule “{rule}” names who may."
            )
        if task.pk in edited and not allowed(user, REVIEW, getattr(edited[task.pk], "pk", None)):
            raise PermissionDenied(
                f"You may not make this edit: {decision.get('name') or task.tool_name} "
                f"with these arguments falls under rule “{edited[task.pk]}”, which names who may."
            )
    return edited


def check_state_write(user: Any, thread: Thread, calls: list[dict[str, Any]]) -> None:
    """Refuse (PermissionDenied) a state write that would let the graph run a
    call, or pass an open request, its writer may not approve alone: the
    calls it writes and those it leaves for the graph to run
    (graphs.written_calls) go through check_calls, and an open request that
    waits for several approvals stands until they are given, since one
    person's write can't overrule it."""
    waiting = ReviewTask.objects.pending().filter(thread_id=thread.pk).select_related("rule")
    for task in waiting:
        if task.required_approvals > 1:
            raise PermissionDenied(
                f"Task {task.pk} waits for {task.required_approvals} reviewers' approval "
                f"under rule “{task.rule}”; decide it before changing the thread's state."
            )
    check_calls(user, thread.graph_name, calls)


def check_shaping(user: Any, graph_name: str, config: Any) -> None:
    """Refuse (PermissionDenied) a config that would shape the graph itself,
    unless the user may administer it: a factory that builds its graph from
    each run's config lets whoever sets it choose what the graph holds, a
    node that asks for review included. The system (user None) may."""
    from graphs.run_settings import without_langgraphs_own
    from graphs.worker import builds_from_config

    configurable = (config or {}).get("configurable") if isinstance(config, dict) else None
    if user is None or not without_langgraphs_own(configurable or {}):
        return
    if builds_from_config(graph_name) and not can_graph(user, ADMINISTER, graph_name):
        raise PermissionDenied(
            f"{graph_name} is built from each run's config, which can leave out its review: "
            f"setting config.configurable needs the right to administer {graph_name} graphs."
        )


def check_calls(user: Any, graph_name: str, calls: list[dict[str, Any]]) -> None:
    """Refuse (PermissionDenied) unless the user may approve each of these
    calls alone, as proposed: its rule lets them review and asks for one
    approval at most. The system (user None) may."""
    if user is None or not calls:
        return
    rules = current_rules()
    for call in calls:
        if call["args"] is None:  # unreadable: under each rule its arguments could meet
            judged = []
            for rule in rules:
                if rule.matches(graph_name, call["name"], None, lenient=True):
                    judged.append(rule)
                    if not rule.condition:
                        break  # the rules after it never see this call
        else:
            judged = [ReviewRule.for_call(graph_name, call["name"], call["args"], rules)]
        for rule in judged:
            if rule is not None:
                _check_call(user, call, rule)


def _check_call(user: Any, call: dict[str, Any], rule: ReviewRule) -> None:
    if not allowed(user, REVIEW, rule.pk):
        raise PermissionDenied(
            f"This would let the graph run a {call['name']} call that rule “{rule}” "
            "asks others to review: you may not approve it."
        )
    if rule.required_approvals > 1:
        raise PermissionDenied(
            f"This would let the graph run a {call['name']} call that rule “{rule}” "
            f"asks {rule.required_approvals} reviewers to approve; one person can't. "
            "Let the model propose it, so its reviewers are asked."
        )


def check_assistant_change(user: Any, graph_name: str, *, graphs_own: bool) -> None:
    """Refuse (PermissionDenied) a change to an assistant unless the user
    administers its graph: every run that names it runs with what it says.
    A graph's own assistant is the graph as deployed: superusers' alone."""
    if not can_graph(user, ADMINISTER, graph_name):
        raise PermissionDenied(f"Changing an assistant needs the right to administer {graph_name}.")
    if graphs_own and not user.is_superuser:
        raise PermissionDenied(
            f"{graph_name}'s own assistant runs the graph as deployed: "
            "create an assistant of your own to change its config."
        )


def decidable(user: Any, tasks: list[ReviewTask]) -> list[ReviewTask]:
    """The tasks among these (one turn's calls) that the user may decide."""
    return [task for task in tasks if can(user, REVIEW, task)]


def visible_tasks(user: Any, tasks: QuerySet[ReviewTask]) -> QuerySet[ReviewTask]:
    """The tasks among these the user may see."""
    granted = rules_granting(user, VIEW)
    if granted is None or not _rules_exist(user):
        return tasks  # no rules at all: every task is open (and the queries stay simple)
    return tasks.seen_under(granted)


def pending_count(user: Any) -> int:
    """How many open tasks the user may see (visible_tasks' count), in a
    plain statement: the navigation bar asks on every page, and building
    the count through the ORM cost more than running it."""
    table = connection.ops.quote_name(ReviewTask._meta.db_table)
    sql, params = f"SELECT COUNT(*) FROM {table} WHERE status = %s", [ReviewTask.Status.PENDING]
    granted = rules_granting(user, VIEW)
    if granted is not None and _rules_exist(user):
        for column in ("rule_id", "edit_rule_id"):
            sql += f" AND ({column} IS NULL" + f" OR {column} = %s" * len(granted) + ")"
            params += sorted(granted)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def task_for(user: Any, pk: int, action: str = VIEW) -> ReviewTask:
    """The task, if the user may see it (Http404 otherwise: its existence is
    not told) and may do `action` with it (PermissionDenied, saying why)."""
    tasks = ReviewTask.objects.select_related("thread", "decided_by", "claimed_by", "rule")
    task = visible_tasks(user, tasks).filter(pk=pk).first()
    if task is None:
        raise Http404("No such task.")
    if action != VIEW and not can(user, action, task):
        raise _may_not_decide(task)
    return task


def calls_to_decide(user: Any, task: ReviewTask, pending: list[ReviewTask]) -> list[ReviewTask]:
    """The open calls of the task's turn (`pending`) that the user may decide;
    PermissionDenied when calls are open but none of them is theirs."""
    mine = decidable(user, pending)
    if pending and not mine:
        raise _may_not_decide(task)
    return mine


def _may_not_decide(task: ReviewTask) -> PermissionDenied:
    return PermissionDenied(
        f"You may see this task but not decide it: rule “{task.rule}” names who may."
    )


def can_thread(user: Any, action: str, thread: Thread) -> bool:
    return _signed_in(user) and _thread_allows(user, action, thread)


def thread_for(user: Any, thread_id: str, action: str = VIEW) -> Thread:
    """The thread, if the user may see it (Http404 otherwise) and may do
    `action` to it (PermissionDenied, saying why)."""
    thread = Thread.objects.filter(pk=thread_id).first()
    if thread is None or not can_thread(user, VIEW, thread):
        raise Http404("No such thread.")
    if action != VIEW and not can_thread(user, action, thread):
        if not can_graph(user, REVIEW, thread.graph_name):
            raise PermissionDenied(f"You may see {thread.graph_name} threads but not change them.")
        raise PermissionDenied(
            "This thread has open tasks you may not decide; changing it would overrule them."
        )
    return thread


def run_for(user: Any, run_id: int, action: str = VIEW) -> Run:
    """A run, under its thread's rules."""
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    thread_for(user, run.thread_id, action)
    return run
