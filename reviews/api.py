"""The JSON API (`/api/`): what the pages do, for scripts and other systems.

Bearer tokens (`manage.py create_api_token USER`); the same model methods as
the pages, so the same checks, refusals and audit rows. The OpenAPI document
is served at `/api/openapi.json`, the interactive docs at `/api/docs`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Query, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from reviews.access import (
    REVIEW,
    calls_to_decide,
    can_graph,
    decidable,
    run_for,
    task_for,
    thread_for,
    visible_tasks,
)
from reviews.actions import ActionRefused, DecisionsInvalid
from reviews.actions import runs as run_actions
from reviews.actions import state as state_actions
from reviews.actions import tasks as task_actions
from reviews.api_auth import TokenAuth
from reviews.decision_forms import DecisionForm
from reviews.graph_state import GraphUnavailable, read_state
from reviews.models import ReviewTask
from reviews.queue_filters import queue_filters, queue_tasks
from reviews.schema_forms import messages_by_field
from reviews.start_form import StartForm
from reviews.state_editor import StateEdit
from reviews.timeline import timeline


def signed_in_or_token(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OpenAPI document and the docs: for a signed-in user, or a script
    with an API token (which gets 401, never the sign-in page, when the token
    is wrong)."""
    page_view = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.headers.get("Authorization", "").lower().startswith("bearer "):
            return page_view(request, *args, **kwargs)
        try:
            user = TokenAuth()(request)
        except HttpError as exc:
            return JsonResponse({"detail": str(exc)}, status=exc.status_code)
        if user is None:
            return JsonResponse({"detail": "Unauthorized"}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


api = NinjaAPI(
    title="HITL review API",
    version="1",
    description="Start runs, read threads, list and decide review tasks, edit state, replay and fork.",
    auth=TokenAuth(),
    urls_namespace="api",
    # The document and the interactive docs need a signed-in user or a token.
    docs_decorator=signed_in_or_token,
)


class Error(Schema):
    detail: str


class Invalid(Schema):
    detail: str
    errors: dict[str, str] = {}


def _client(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# -- runs ------------------------------------------------------------------------


class RunIn(Schema):
    graph: str
    input: dict[str, Any] = {}
    title: str = ""
    interrupt_before: list[str] = []
    interrupt_after: list[str] = []
    config: dict[str, Any] = Field(
        {},
        description="LangGraph's per-run config: configurable, recursion_limit, tags, metadata",
    )
    context: dict[str, Any] | None = Field(
        None, description="the runtime context, for a graph with a context_schema"
    )


class RunOut(Schema):
    id: int
    thread_id: str
    graph: str
    kind: str
    status: str


def _run_out(run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "thread_id": run.thread_id,
        "graph": run.graph_name,
        "kind": run.kind,
        "status": run.status,
    }


@api.post(
    "/runs", response={201: RunOut, 400: Error, 403: Error, 404: Error, 422: Invalid}, tags=["runs"]
)
def start_run(request: HttpRequest, body: RunIn):
    """Start a graph on a new thread with the given input."""
    data = StartForm.api_data(
        body.input,
        title=body.title,
        interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after,
        config=body.config,
        context=body.context,
    )
    try:
        form = StartForm.open(body.graph, data, from_api=True)
    except GraphUnavailable as exc:
        return Status(404, {"detail": str(exc)})
    if not can_graph(request.user, REVIEW, body.graph):
        return Status(403, {"detail": f"You may not start {body.graph} runs."})
    if not form.is_valid():
        # The start page's form, so its sentences: each by its field (the
        # input's by key too), and all of them together under `input`.
        by_field = messages_by_field(form)
        errors = {n: m for n, m in by_field.items() if n not in ("raw", "__all__")}
        errors |= {f"input.{key}": message for key, message in form.key_errors.items()}
        errors["input"] = " ".join(by_field.values())
        detail = " ".join(form.non_field_errors()) or "The run was refused."
        return Status(422, {"detail": detail, "errors": errors})
    run = run_actions.start(**form.start_args, user=request.user, client_address=_client(request))
    return Status(201, _run_out(run))


@api.post(
    "/runs/{run_id}/cancel",
    response={200: RunOut, 403: Error, 404: Error, 409: Error},
    tags=["runs"],
)
def cancel(request: HttpRequest, run_id: int):
    """Stop a queued or running run. A queued run never starts; a running one
    stops before its next step and records nothing."""
    run = run_for(request.user, run_id, REVIEW)
    run_actions.cancel(run, user=request.user, client_address=_client(request))
    return Status(200, _run_out(run))


@api.post(
    "/runs/{run_id}/retry",
    response={201: RunOut, 403: Error, 404: Error, 409: Error},
    tags=["runs"],
)
def retry(request: HttpRequest, run_id: int):
    """Queue a thread's failed newest run again: it continues from the latest
    checkpoint, or starts over if it failed before its first."""
    run = run_for(request.user, run_id, REVIEW)
    again = run_actions.retry(run, user=request.user, client_address=_client(request))
    return Status(201, _run_out(again))


# -- threads ----------------------------------------------------------------------


class StateOut(Schema):
    thread_id: str
    graph: str
    checkpoint_id: str
    values: dict[str, Any]
    next: list[str]


class PointOut(Schema):
    checkpoint_id: str
    ns: str
    parent_id: str | None
    step: int
    source: str
    writers: list[str]
    interrupted: bool
    caused_by: str
    at: datetime | None
    forks_from: str | None


class HistoryOut(Schema):
    points: list[PointOut]
    older: str = Field("", description="pass as `before` for the next page")


@api.get(
    "/threads/{path:thread_id}/history", response={200: HistoryOut, 404: Error}, tags=["threads"]
)
def thread_history(request: HttpRequest, thread_id: str, before: str = "", limit: int = 50):
    """Checkpoints newest first, with branches (see the thread page)."""
    points, older = timeline(
        thread_for(request.user, thread_id), before=before, limit=max(1, min(limit, 200))
    )
    return {
        "points": [
            {
                "checkpoint_id": p.checkpoint_id,
                "ns": p.ns,
                "parent_id": p.parent_id,
                "step": p.step,
                "source": p.source,
                "writers": p.writers,
                "interrupted": p.interrupted,
                "caused_by": p.caused_by,
                "at": p.at,
                "forks_from": p.forks_from,
            }
            for p in points
        ],
        "older": older,
    }


class StateEditIn(Schema):
    values: dict[str, Any]
    as_node: str = ""
    continue_run: bool = False
    base_checkpoint: str = Field(
        "", description="the checkpoint the edit was made against; refused if the thread moved on"
    )
    fork_from: str = Field("", description="a past checkpoint: write a new branch from there")


class StateEditOut(Schema):
    checkpoint_id: str
    summary: str
    run: RunOut | None


@api.post(
    "/threads/{path:thread_id}/state",
    response={200: StateEditOut, 400: Error, 403: Error, 404: Error, 409: Error, 422: Invalid},
    tags=["threads"],
)
def edit_state(request: HttpRequest, thread_id: str, body: StateEditIn):
    """Write values as a new checkpoint (update_state), optionally continuing the run."""
    thread = thread_for(request.user, thread_id, REVIEW)
    try:
        edit = StateEdit.open(thread, {"from": body.fork_from} if body.fork_from else {})
    except GraphUnavailable as exc:
        return Status(404, {"detail": str(exc)})
    edit.bind_values(
        body.values,
        as_node=body.as_node,
        continue_run=body.continue_run,
        base_checkpoint=body.base_checkpoint,
    )
    if not edit.is_valid():
        # The page's form, so the page's sentences: a value's problem named by
        # its key, the node's by `as_node`.
        errors = {
            name: message
            for name, message in messages_by_field(edit.edit_form).items()
            if name not in ("raw", "__all__")
        }
        return Status(
            422,
            {
                "detail": " ".join(edit.errors) or "Invalid values.",
                "errors": errors | edit.field_errors,
            },
        )
    result = state_actions.edit(edit, user=request.user, client_address=_client(request))
    return {
        "checkpoint_id": result.checkpoint_id,
        "summary": result.summary,
        "run": _run_out(result.run) if result.run else None,
    }


class ReplayIn(Schema):
    checkpoint_id: str


@api.post(
    "/threads/{path:thread_id}/replay",
    response={201: RunOut, 400: Error, 403: Error, 404: Error, 409: Error},
    tags=["threads"],
)
def replay(request: HttpRequest, thread_id: str, body: ReplayIn):
    """Re-run the graph from a past checkpoint; the old branch stays."""
    run = run_actions.replay(
        thread_for(request.user, thread_id, REVIEW),
        body.checkpoint_id,
        user=request.user,
        client_address=_client(request),
    )
    return Status(201, _run_out(run))


@api.get("/threads/{path:thread_id}", response={200: StateOut, 404: Error}, tags=["threads"])
def thread_state(request: HttpRequest, thread_id: str):
    """The thread's latest state. (Thread ids may hold slashes: this route
    comes after the longer ones.)"""
    thread = thread_for(request.user, thread_id)
    try:
        state = read_state(thread, steps=0)
    except GraphUnavailable as exc:
        return Status(404, {"detail": str(exc)})
    return {
        "thread_id": thread.pk,
        "graph": thread.graph_name,
        "checkpoint_id": state.checkpoint_id,
        "values": state.values,
        "next": state.next,
    }


# -- tasks ------------------------------------------------------------------------


class TaskOut(Schema):
    id: int
    thread_id: str
    graph: str
    kind: str
    shape: str
    status: str
    tool_name: str
    args: Any
    description: str
    allowed: list[str]
    response_schema: dict[str, Any] | None
    node: str = Field(description="the node that asked (or a breakpoint's next node)")
    namespace: str = Field(
        description='the subgraph that asked, as LangGraph names it ("": the graph)'
    )
    payload: Any = Field(description="the interrupt's value, as the graph passed it")
    refused_with: str = Field(
        description="what the graph raised at the last decision, which it refused (asked again)"
    )
    checkpoint_id: str
    interrupt_id: str
    action_index: int
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision: dict[str, Any] | None


class TaskList(Schema):
    tasks: list[TaskOut]
    next_after: str = Field("", description="pass as `after` for the next page")


class TaskFilters(Schema):
    status: str = "pending"
    graph: str = ""
    kind: str = ""
    tool: str = ""
    mine: bool = False
    age: str = Field("", description="10m, 1h or 1d: waiting longer than that")
    q: str = ""
    sort: str = Field("oldest", description="oldest or newest")
    after: str = ""
    limit: int = 50


@api.get("/tasks", response=TaskList, tags=["tasks"])
def list_tasks(request: HttpRequest, filters: Query[TaskFilters]):
    """Review tasks with the queue page's filters, keyset paged."""
    chosen = queue_filters({**filters.dict(), "mine": "1" if filters.mine else ""})
    limit = max(1, min(filters.limit, 200))
    tasks = visible_tasks(request.user, queue_tasks(chosen, request.user, after=filters.after))
    page = list(tasks[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "tasks": [t.as_json() for t in page],
        "next_after": str(page[-1].pk) if more and page else "",
    }


@api.get("/tasks/{task_id}", response={200: TaskOut, 404: Error}, tags=["tasks"])
def get_task(request: HttpRequest, task_id: int):
    return task_for(request.user, task_id).as_json()


class DecisionIn(Schema):
    decisions: dict[int, dict[str, Any]] = Field(
        ...,
        description=(
            "One decision per pending task of the interrupt, by task id, in the payload's "
            'vocabulary: {"type": "approve"}, {"type": "edit", "name": ..., "args": {...}}, '
            '{"type": "reject", "message": ...}, {"type": "answer", "value": ...}, '
            '{"type": "continue"}.'
        ),
    )


class DecisionOut(Schema):
    decided: list[int] = Field(
        ..., description="tasks now decided (approvals may wait for a quorum)"
    )
    resume_run: RunOut | None
    note: str


@api.post(
    "/tasks/{task_id}/decision",
    response={200: DecisionOut, 400: Error, 403: Error, 404: Error, 409: Error, 422: Invalid},
    tags=["tasks"],
)
def decide(request: HttpRequest, task_id: int, body: DecisionIn):
    """Decide the pending calls of the task's turn that you may decide, all at
    once; calls that other reviewers decide wait for them, and the graph
    resumes once every call has its decision."""
    task = task_for(request.user, task_id)
    pending = list(visible_tasks(request.user, ReviewTask.objects.of_interrupt(task).pending()))
    if not pending:
        return Status(409, {"detail": task.why_not_pending()})
    open_ids = {t.pk for t in pending}
    strange = [pk for pk in body.decisions if pk not in open_ids]
    if strange:
        return Status(
            422,
            {
                "detail": "Decisions may only name the open calls of this task's turn.",
                "errors": {str(pk): "not an open call of this turn" for pk in strange},
            },
        )
    mine = calls_to_decide(request.user, task, pending)
    missing = [t.pk for t in mine if t.pk not in body.decisions]
    if missing:
        return Status(
            422,
            {
                "detail": "Every open call of this turn that you may decide needs a decision.",
                "errors": {str(pk): "no decision given" for pk in missing},
            },
        )
    # Calls named here that the user may not decide are refused (403) with the rest.
    chosen = [t for t in pending if t.pk in body.decisions]
    # The task page's form reads each decision, so a refusal says what the page says.
    forms = [
        DecisionForm(t, DecisionForm.api_data(t, body.decisions[t.pk]), from_api=True)
        for t in chosen
    ]
    refused = {
        str(form.task.pk): " ".join(m for messages in form.errors.values() for m in messages)
        for form in forms
        if not form.is_valid()
    }
    if refused:
        return Status(422, {"detail": "Some decisions were refused.", "errors": refused})
    try:
        run = task_actions.decide(
            chosen,
            {form.task.pk: form.decision for form in forms},
            user=request.user,
            client_address=_client(request),
        )
    except DecisionsInvalid as exc:
        return Status(
            422,
            {
                "detail": "Some decisions were refused.",
                "errors": {str(k): v for k, v in exc.errors.items()},
            },
        )
    note = task_actions.outcome_words(chosen, run)
    decided = list(
        ReviewTask.objects.filter(pk__in=[t.pk for t in chosen])
        .exclude(status=ReviewTask.Status.PENDING)
        .values_list("pk", flat=True)
    )
    return {"decided": decided, "resume_run": _run_out(run) if run else None, "note": note}


class ClaimOut(Schema):
    tasks: list[int]
    claimed_by: str | None
    claim_expires_at: datetime | None


@api.post(
    "/tasks/{task_id}/claim",
    response={200: ClaimOut, 400: Error, 403: Error, 404: Error, 409: Error},
    tags=["tasks"],
)
def claim(request: HttpRequest, task_id: int):
    """Claim the pending actions of the task's interrupt for 15 minutes (again: extend)."""
    task = task_for(request.user, task_id, REVIEW)
    group = decidable(request.user, list(ReviewTask.objects.of_interrupt(task).pending())) or [task]
    task_actions.claim(group, user=request.user, client_address=_client(request))
    task.refresh_from_db()
    return {
        "tasks": [t.pk for t in group],
        "claimed_by": request.user.get_username(),
        "claim_expires_at": task.claim_expires_at,
    }


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied):
    return api.create_response(request, {"detail": str(exc)}, status=403)


@api.exception_handler(ActionRefused)
def _refused(request: HttpRequest, exc: ActionRefused):
    """Taken by someone else, stopped, or moved on: the message says which."""
    return api.create_response(request, {"detail": str(exc)}, status=exc.status)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404):
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)
