"""The reviewer's pages. One function view per page; with htmx it renders the
page's named partial instead of the whole page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Prefetch, Subquery, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from graphs.interrupts import Shape, quick_decision
from graphs.models import Checkpoint, Run, Thread
from graphs.registry import get_registry
from reviews.access import (
    ADMINISTER,
    REVIEW,
    VIEW,
    calls_to_decide,
    can,
    can_graph,
    can_thread,
    decidable,
    graphs_allowed,
    run_for,
    task_for,
    thread_for,
    visible_tasks,
    visible_threads,
)
from reviews.access import pending_count as access_pending_count
from reviews.actions import ActionRefused, DecisionsInvalid
from reviews.actions import runs as run_actions
from reviews.actions import state as state_actions
from reviews.actions import tasks as task_actions
from reviews.decision_forms import DecisionForm
from reviews.graph_state import (
    GraphUnavailable,
    executed_results,
    graph_for,
    mermaid,
    read_state,
    state_at,
)
from reviews.models import Approval, ReviewTask
from reviews.queue_filters import (
    ROW_JOINED,
    queue_filters,
    queue_tasks,
    turn_rows,
    with_rare_relations,
)
from reviews.queue_row import UNREAD as ROW_UNREAD
from reviews.start_form import StartForm
from reviews.state_diff import diff_states
from reviews.state_editor import StateEdit
from reviews.timeline import LANE_WIDTH, timeline

PAGE_SIZE = 50
RUNS_SHOWN = 10  # a thread page lists its newest runs


def _client_address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# -- home ---------------------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    registry = get_registry()
    per_graph = dict(
        Thread.objects.values_list("graph_name").annotate(n=Count("thread_id")).order_by()
    )
    names = {s.name for s in registry.specs()} | set(per_graph)
    hidden = names - graphs_allowed(request.user, VIEW, names)
    root = Checkpoint.objects.filter(thread_id=OuterRef("pk"), checkpoint_ns="")
    threads = (
        visible_threads(request.user, Thread.objects.exclude(graph_name__in=hidden))
        .order_by("-created_at")
        .annotate(
            checkpoint_count=Subquery(
                root.values("thread_id").annotate(n=Count("checkpoint_id")).values("n")[:1]
            ),
            latest_checkpoint_id=Subquery(
                root.order_by("-checkpoint_id").values("checkpoint_id")[:1]
            ),
            last_run_status=Subquery(
                Run.objects.filter(thread_id=OuterRef("pk")).order_by("-pk").values("status")[:1]
            ),
        )[:50]
    )
    graphs = [
        {
            "name": s.name,
            "target": s.target,
            "description": s.description,
            "thread_count": per_graph.get(s.name, 0),
        }
        for s in registry.specs()
        if s.name not in hidden
    ]
    return render(
        request,
        "reviews/home.html",
        {
            "graphs": graphs,
            "registry_errors": registry.errors,
            "config_path": registry.config_path,
            "threads": threads,
        },
    )


# -- queue --------------------------------------------------------------------


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    filters = queue_filters(request.GET)
    after = request.GET.get("after", "")
    page = list(
        visible_tasks(
            request.user, queue_tasks(filters, request.user, after=after, joined=ROW_JOINED)
        ).defer(*ROW_UNREAD)[: PAGE_SIZE + 1]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    params = request.GET.copy()
    params.pop("after", None)
    if more:
        params["after"] = str(page[-1].pk)
    live_rows = filters == queue_filters({})  # the plain, unfiltered queue
    # htmx asks for more rows, or for the rows again when the live queue
    # reconnects: the rows alone, without the overdue list above them.
    rows_only = request.htmx and ("after" in request.GET or request.htmx.target == "queue-rows")
    overdue_tasks = visible_tasks(request.user, ReviewTask.objects.pending()).filter(
        due_at__lte=timezone.now()
    )
    overdue = turn_rows(
        with_rare_relations(
            list(
                overdue_tasks.select_related(*ROW_JOINED).defer(*ROW_UNREAD).order_by("due_at")[:20]
            )
        )
        # Most queues have none overdue: asked first, as a query of rows
        # costs several times one of their existence to put together.
        if filters["status"] == "pending" and not after and not rows_only and overdue_tasks.exists()
        else []
    )
    context = {
        "tasks": turn_rows(with_rare_relations(page)),
        "filters": filters,
        "more_url": f"{reverse('queue')}?{params.urlencode()}" if more else "",
        "graphs": [s.name for s in get_registry().specs()],
        "kinds": ReviewTask.Kind.choices,
        "live_rows": live_rows,
        "overdue": overdue,
        "filtered": not live_rows,
    }
    if rows_only:
        # Nothing in the rows reads the request: rendered without it, they
        # skip the context processors (the navigation bar's count among them).
        return HttpResponse(render_to_string("reviews/queue.html#rows", context))
    return render(request, "reviews/queue.html", context)


@login_required
@require_GET
def pending_count(request: HttpRequest) -> HttpResponse:
    """The navigation bar's count, for pages told that the queue changed."""
    count = access_pending_count(request.user)
    return HttpResponse(
        f'<span class="count" id="pending-count" title="pending review tasks">{count}</span>'
    )


@login_required
@require_POST
def quick_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """The queue's `a` and `r` keys: approve or reject a single-action request."""
    task = task_for(request.user, pk, REVIEW)
    error, run = "", None
    group = list(ReviewTask.objects.of_interrupt(task))
    try:
        if len(group) > 1:
            raise ValueError(f"This turn has {len(group)} tool calls; open it to decide each one.")
        decision = quick_decision(
            task.as_request(), request.POST.get("action", ""), request.POST.get("message", "")
        )
        run = task_actions.decide(
            [task], {task.pk: decision}, user=request.user, client_address=_client_address(request)
        )
    except DecisionsInvalid as exc:
        error = exc.errors[task.pk]
    except (ValueError, ActionRefused) as exc:
        error = str(exc)
    note = ""
    if not error:
        note = task_actions.outcome_words([task], run)
        task.refresh_from_db()
    if request.htmx:
        return render(
            request,
            "reviews/queue.html#decided_row",
            {"task": task, "error": error, "run": run, "note": note},
            status=409 if error else 200,
        )
    if error:
        messages.error(request, f"Task {task.pk}: {error}")
    else:
        messages.success(request, f"Task {task.pk}: {note}")
    return redirect("queue")


@login_required
@require_POST
def bulk_decide(request: HttpRequest) -> HttpResponse:
    """Approve or reject the selected tasks at once. Each is decided on its
    own, under every rule; what can't be decided here is reported with why."""
    action = request.POST.get("action", "")
    message = request.POST.get("message", "")
    # Ids past a 64-bit key can name no task (and would overflow the query).
    ids = [int(pk) for pk in request.POST.getlist("tasks") if pk.isdigit() and len(pk) < 19]
    if action not in ("approve", "reject") or not ids:
        messages.error(request, "Select tasks, then approve or reject them.")
        return redirect("queue")
    visible = {t.pk: t for t in visible_tasks(request.user, ReviewTask.objects.filter(pk__in=ids))}
    done, refused = [], []
    for pk in ids:
        task = visible.get(pk)
        try:
            if task is None:
                raise ValueError("not found")
            if not can(request.user, REVIEW, task):
                raise ValueError(f"you may not decide it (rule “{task.rule}”)")
            group = ReviewTask.objects.of_interrupt(task).count()
            if group > 1:
                raise ValueError(f"one of {group} tool calls of a turn; open it to decide each")
            decision = quick_decision(task.as_request(), action, message)
            run = task_actions.decide(
                [task],
                {task.pk: decision},
                user=request.user,
                client_address=_client_address(request),
            )
            if ReviewTask.objects.get(pk=pk).is_pending:  # an approval towards a quorum
                raise ValueError(task_actions.outcome_words([task], run))
        except DecisionsInvalid as exc:
            refused.append(f"task {pk}: {exc.errors[pk]}")
        except (ValueError, ActionRefused) as exc:
            refused.append(f"task {pk}: {exc}")
        else:
            done.append(pk)
    if done:
        verb = "approved" if action == "approve" else "rejected"
        messages.success(request, f"{len(done)} task{'s' if len(done) != 1 else ''} {verb}.")
    for line in refused:
        messages.error(request, f"Not decided, {line}")
    return redirect("queue")


# -- task ---------------------------------------------------------------------


def _approval_words(decision: dict[str, Any]) -> str:
    if decision.get("type") in ("approve", "accept", "continue"):
        return "the call as proposed"
    return task_actions.describe_decision(decision)


def _quorum(task: ReviewTask) -> dict[str, Any] | None:
    """Who approved what so far, and how many approvals are still needed,
    for a call that needs several."""
    # Prefetched with the turn, in order.
    given, lapsed = task_actions.standing_approvals(task, list(task.approvals.all()))
    need = task.required_for(given[0].decision if given else {})
    if need <= 1:
        return None

    def listed(approvals: list[Approval]) -> list[dict[str, Any]]:
        return [
            {
                "who": a.reviewer.get_username(),
                "what": _approval_words(a.decision),
                "when": a.created_at,
            }
            for a in approvals
        ]

    return {
        "task": task,
        "need": need,
        "have": len(given),
        "left": max(0, need - len(given)),
        "by": [a.reviewer.get_username() for a in given],
        "given": listed(given),
        "lapsed": listed(lapsed),
    }


def _next_task(user: Any, task: ReviewTask) -> ReviewTask | None:
    """The oldest other open task this user may decide: where to go after deciding."""
    candidates = list(
        visible_tasks(user, ReviewTask.objects.pending())
        .exclude(
            thread_id=task.thread_id,
            checkpoint_id=task.checkpoint_id,
            interrupt_id=task.interrupt_id,
        )
        .select_related("rule")
        .order_by("pk")[:20]
    )
    mine = decidable(user, candidates)
    return mine[0] if mine else None


# Shapes whose interrupt asks for one decision (graphs.interrupts.requests_for):
# a task of theirs is its turn, with no other calls to look up.
ALONE_IN_TURN = frozenset({Shape.HITL_PER_CALL, Shape.SCHEMA, Shape.JSON})


def _task_context(
    task: ReviewTask, user: Any, forms: list[DecisionForm] | None = None
) -> dict[str, Any]:
    """The task page: the calls of its turn that the user may see, a form for
    each one they may decide, and the thread's state if they may see it."""
    turn = (
        [task]
        if task.shape in ALONE_IN_TURN
        else list(ReviewTask.objects.of_interrupt(task).select_related("decided_by", "rule"))
    )
    group = [t for t in turn if can(user, VIEW, t)]
    pending = [t for t in group if t.is_pending]
    # Each open call's approvals (its quorum): one query for the whole turn.
    approvals = Approval.objects.select_related("reviewer").order_by("pk")
    prefetch_related_objects(pending, Prefetch("approvals", queryset=approvals))
    mine = decidable(user, pending)
    if forms is None:
        forms = [DecisionForm(t) for t in mine]
    context: dict[str, Any] = {
        "task": task,
        "group": group,
        "forms": forms,
        # Open calls of this turn that others decide, and how many are hidden.
        "others": [t for t in pending if t not in mine],
        "hidden_calls": len(turn) - len(group),
        "decided": [t for t in group if t.status == ReviewTask.Status.DECIDED],
        "approvals": [q for t in pending if (q := _quorum(t))],
        "state": None,
        "graph_error": "",
        "thread_visible": can_thread(user, VIEW, task.thread),
    }
    if context["thread_visible"]:
        try:
            context["state"] = read_state(task.thread)
        except GraphUnavailable as exc:
            context["graph_error"] = str(exc)
    if context["decided"] and context["state"] and task.tool_name:
        names = [(t.decision or {}).get("name") or t.tool_name for t in context["decided"]]
        results = executed_results(context["state"].values, names)
        context["outcomes"] = [
            {"task": t, "approved": t.decision, "executed": r}
            for t, r in zip(context["decided"], results, strict=True)
        ]
    # The thread's newest runs tell both what ran since the task was asked
    # and whether a run has the thread (as on the thread page), in one query
    # where they reach back past the task, as on nearly every thread.
    newest = list(task.thread.runs.order_by("-pk")[:RUNS_SHOWN])
    if len(newest) < RUNS_SHOWN or newest[-1].created_at < task.created_at:
        since = [r for r in newest if r.created_at >= task.created_at and r.pk != task.run_id]
        context["runs"] = sorted(since, key=lambda r: r.pk)[:5]
    else:
        resumed = Run.objects.filter(thread_id=task.thread_id, created_at__gte=task.created_at)
        context["runs"] = list(resumed.exclude(pk=task.run_id).order_by("pk")[:5])
    # The outcome is read once, when the page or panel is rendered, and a run
    # can end before that render reaches the browser (its events arriving
    # while the decision's answer is still on its way): while a run of the
    # thread is active the outcome asks again by itself.
    context["thread_moving"] = _thread_moving(task.thread, newest)
    if not forms:
        context["next_task"] = _next_task(user, task)
    return context


@login_required
@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = task_for(request.user, pk)
    template = "reviews/task.html"
    if request.htmx and request.htmx.target == "task-outcome":
        # The outcome asks for itself when a run of the thread changes; the
        # decision forms around it are never replaced under the reviewer.
        template += "#outcome"
    context = {
        **_task_context(task, request.user),
        "can_administer": can(request.user, ADMINISTER, task),
        "may_run": can_graph(request.user, REVIEW, task.graph_name),
    }
    return render(request, template, context)


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Decide every pending call of the task's turn that the user may decide;
    the others wait for their own reviewers."""
    task = task_for(request.user, pk)
    pending = calls_to_decide(
        request.user, task, list(ReviewTask.objects.of_interrupt(task).pending())
    )
    forms = [DecisionForm(t, request.POST) for t in pending]
    decisions = {f.task.pk: f.decision for f in forms if f.is_valid()}
    refusal, status = ("" if pending else task.why_not_pending()), 409
    if pending and len(decisions) == len(forms):
        try:
            run = task_actions.decide(
                pending,
                decisions,
                user=request.user,
                client_address=_client_address(request),
            )
        except DecisionsInvalid as exc:
            for form in forms:
                if form.task.pk in exc.errors:
                    form.refuse(exc.errors[form.task.pk])
        except ActionRefused as exc:
            refusal = str(exc)
        except PermissionDenied as exc:
            refusal, status = str(exc), 403
        else:
            note = task_actions.outcome_words(pending, run)
            if request.htmx:
                task.refresh_from_db()
                context = {**_task_context(task, request.user), "notice": note}
                return render(request, "reviews/task.html#panel", context)
            messages.success(request, note)
            return redirect("task", pk=task.pk)
    task.refresh_from_db()
    context = {
        **_task_context(task, request.user, forms if not refusal else None),
        "refusal": refusal,
    }
    template = "reviews/task.html#panel" if request.htmx else "reviews/task.html"
    return render(request, template, context, status=status if refusal else 422)


# -- state editor ---------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def thread_state(request: HttpRequest, thread_id: str) -> HttpResponse:
    thread = thread_for(request.user, thread_id, REVIEW if request.method == "POST" else VIEW)
    try:
        edit = StateEdit.open(thread, request.POST if request.method == "POST" else request.GET)
    except GraphUnavailable as exc:
        return render(
            request, "reviews/state.html", {"thread": thread, "graph_error": str(exc)}, status=404
        )
    status = 200
    if request.method == "POST":
        edit.bind(request.POST)
        if edit.is_valid():
            try:
                result = state_actions.edit(
                    edit, user=request.user, client_address=_client_address(request)
                )
            except ActionRefused as exc:
                edit.refusal = str(exc)
                status = exc.status
            except PermissionDenied as exc:
                edit.refusal = str(exc)
                status = 403
            else:
                messages.success(request, result.summary)
                # The timeline, at the new point: an edit is a new checkpoint there.
                at = f"?at={result.checkpoint_id}" if result.checkpoint_id else ""
                return redirect(f"{reverse('thread', args=[thread.pk])}{at}")
        else:
            status = 422
    return render(request, "reviews/state.html", {"thread": thread, "edit": edit}, status=status)


# -- thread timeline ------------------------------------------------------------


def _thread_moving(thread: Thread, newest_runs: list[Run]) -> bool:
    """Whether a run has the thread now or next (Thread.active_run), read
    from its newest runs when they tell: all of its runs, or an active one."""
    if any(run.active or run.stopping for run in newest_runs):
        return True
    if len(newest_runs) < RUNS_SHOWN:
        return False
    return thread.active_run() is not None


@login_required
@require_GET
def thread_detail(request: HttpRequest, thread_id: str) -> HttpResponse:
    """The timeline of every checkpoint, the state at the selected point and
    its diff (against its parent, or against `compare`)."""
    thread = thread_for(request.user, thread_id)
    points, older = timeline(thread, before=request.GET.get("before", ""))
    ns = request.GET.get("ns", "")
    selected_id = request.GET.get("at") or next((p.checkpoint_id for p in points if p.latest), "")
    compare = request.GET.get("compare", "")
    runs = list(thread.runs.select_related("requested_by").order_by("-pk")[:RUNS_SHOWN])
    context: dict[str, Any] = {
        "thread": thread,
        "points": points,
        "older": older,
        # What the timeline marks, its links start from and its live refresh
        # asks for: always the point the page shows.
        "selected": {"checkpoint_id": selected_id, "ns": ns},
        "compared": compare,
        "here": urlencode(
            {k: v for k, v in (("at", selected_id), ("ns", ns), ("compare", compare)) if v}
        ),
        "rail_width": (max((p.lane for p in points), default=0) + 1) * LANE_WIDTH,
        # As on the task page: a run may end before the page's websocket
        # opens, so while one is active the timeline asks again by itself.
        "thread_moving": _thread_moving(thread, runs),
    }
    if request.htmx and request.GET.get("before"):
        return render(request, "reviews/thread.html#timeline_rows", context)
    if request.htmx and request.htmx.target == "timeline":
        return render(request, "reviews/thread.html#timeline", context)
    try:
        graph = graph_for(thread)
        point = state_at(thread, selected_id, ns) if selected_id else None
        if selected_id and point is None:
            raise Http404(f"Checkpoint {selected_id} is not in this thread.")
        other_id = compare or (point.parent_id if point else None)
        other = state_at(thread, other_id, ns) if other_id else None
        context |= {
            "graph_error": "",
            "point": point,
            "other": other,
            "comparing": bool(compare),
            "changes": diff_states(other.values if other else {}, point.values) if point else [],
            "diagram": mermaid(graph, point.next if point else []),
        }
    except GraphUnavailable as exc:
        context |= {"graph_error": str(exc), "point": None}
    if request.htmx and request.htmx.target == "thread-view":
        return render(request, "reviews/thread.html#view", context)
    # A thread's page is for those who may see every task on it: its open ones lead.
    pending_tasks = list(ReviewTask.objects.pending().filter(thread=thread).order_by("pk"))
    turns: dict[tuple[str, str], list[ReviewTask]] = {}
    for t in pending_tasks:
        turns.setdefault((t.checkpoint_id, t.interrupt_id), []).append(t)
    context |= {
        "runs": runs,
        "RUNS_SHOWN": RUNS_SHOWN,
        # Open the list when the newest run is under way or has failed.
        "runs_need_eyes": bool(
            runs and (runs[0].active or runs[0].stopping or runs[0].status == Run.Status.FAILED)
        ),
        "may_run": can_graph(request.user, REVIEW, thread.graph_name),
        "pending_turns": [
            {"task": calls[0], "names": [c.tool_name or c.get_kind_display() for c in calls]}
            for calls in turns.values()
        ],
    }
    return render(request, "reviews/thread.html", context)


@login_required
@require_POST
def replay(request: HttpRequest, thread_id: str) -> HttpResponse:
    """Re-run the graph from a past checkpoint; the old branch stays."""
    thread = thread_for(request.user, thread_id, REVIEW)
    checkpoint_id = request.POST.get("checkpoint", "")
    url = f"{reverse('thread', args=[thread.pk])}?at={checkpoint_id}"
    try:
        run = run_actions.replay(
            thread, checkpoint_id, user=request.user, client_address=_client_address(request)
        )
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect("thread", thread_id=thread.pk)
    messages.success(request, f"Run {run.pk} replays the graph from {checkpoint_id}.")
    return redirect(url)


# -- starting runs ----------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def start_run(request: HttpRequest, graph_name: str) -> HttpResponse:
    """A form from the graph's input schema; starts a run on a new thread."""
    try:
        form = StartForm.open(graph_name, request.POST if request.method == "POST" else None)
    except GraphUnavailable as exc:
        raise Http404(str(exc)) from exc
    if not can_graph(request.user, REVIEW, graph_name):
        raise PermissionDenied(f"You may not start {graph_name} runs.")
    status = 200
    if request.method == "POST":
        if form.is_valid():
            run = run_actions.start(
                **form.start_args, user=request.user, client_address=_client_address(request)
            )
            messages.success(request, f"Run {run.pk} started on a new thread.")
            return redirect("thread", thread_id=run.thread_id)
        status = 422
    return render(request, "reviews/start.html", {"form": form}, status=status)


# -- claims -------------------------------------------------------------------


@login_required
@require_POST
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    """Claim (or, with `release`, give back) the pending actions of the task's interrupt."""
    task = task_for(request.user, pk, REVIEW)
    # A claim holds the calls of the turn that the claimant may decide.
    group = decidable(request.user, list(ReviewTask.objects.of_interrupt(task).pending()))
    if request.POST.get("release"):
        if task_actions.release(group, user=request.user, client_address=_client_address(request)):
            messages.success(request, "Claim released; others may take the task.")
    else:
        try:
            task_actions.claim(
                group or [task], user=request.user, client_address=_client_address(request)
            )
        except ActionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Claimed: others see that you are on it for 15 minutes.")
    return redirect("task", pk=task.pk)


@login_required
@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Administrators hand a task (its whole turn) to a person or a group."""
    task = task_for(request.user, pk, ADMINISTER)
    User = get_user_model()
    to_user = User.objects.filter(username=request.POST.get("user", "").strip()).first()
    to_group = Group.objects.filter(name=request.POST.get("group", "").strip()).first()
    if to_user is None and to_group is None:
        messages.error(request, "Name an existing user or group to assign the task to.")
        return redirect("task", pk=task.pk)
    # The calls of the turn this administrator administers; the others keep their own.
    pending = ReviewTask.objects.of_interrupt(task).pending()
    group = [t for t in pending if can(request.user, ADMINISTER, t)] or [task]
    refused = [t for t in group if to_user is not None and not can(to_user, REVIEW, t)]
    if refused:
        messages.error(
            request,
            f"{to_user.get_username()} may not decide this task (rule “{refused[0].rule}”).",
        )
        return redirect("task", pk=task.pk)
    try:
        task_actions.assign(
            group,
            by=request.user,
            to_user=to_user,
            to_group=to_group,
            client_address=_client_address(request),
        )
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        who = to_user.get_username() if to_user else f"group {to_group.name}"
        messages.success(request, f"Assigned to {who}.")
    return redirect("task", pk=task.pk)


@login_required
@require_GET
def run_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One run's status element, for pages that show it (see run_status.html)."""
    run = run_for(request.user, pk)
    may_run = can_graph(request.user, REVIEW, run.graph_name)
    return render(request, "reviews/run_status.html", {"run": run, "may_run": may_run})


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a queued or running run; whoever may start the graph's runs may."""
    run = run_for(request.user, pk, REVIEW)
    try:
        run_actions.cancel(run, user=request.user, client_address=_client_address(request))
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        note = " It stops before its next step." if run.stopping else ""
        messages.success(request, f"Run {run.pk} cancelled.{note}")
    return redirect("thread", thread_id=run.thread_id)


@login_required
@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a thread's failed newest run again; whoever may start its runs may."""
    run = run_for(request.user, pk, REVIEW)
    try:
        again = run_actions.retry(run, user=request.user, client_address=_client_address(request))
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run {again.pk} retries run {run.pk}.")
    return redirect("thread", thread_id=run.thread_id)
