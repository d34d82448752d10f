"""/langgraph/threads: threads, their state and history, as LangGraph's
Agent Server serves them, under the same rules as every other route.

A key's user lists and reads only the threads they may see
(reviews.access); changing one (its state, metadata, copy, deletion) needs
the right to decide every task still open on it. A state update is the
state editor's own edit (reviews.actions.state.edit): the same checks,
the same audit row, the same retired and new review tasks.

A thread's status comes from the database, so search can filter on it:
busy while a run has it, error when its newest run failed, interrupted while
a review task is open on it (an interrupt() or a static breakpoint), else idle.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404, HttpRequest, HttpResponse
from langchain_core.utils.uuid import uuid7

from agent_server import shapes
from agent_server.assistants import contains, graph_ids, page_of, selected
from agent_server.auth import ApiError, endpoint, methods, payload, respond
from agent_server.models import system_assistant_id
from graphs.checkpoint import DjangoCheckpointSaver
from graphs.interrupts import json_safe
from graphs.models import Run, Thread
from graphs.registry import GraphLoadError, GraphNotFound
from graphs.worker import compiled_graph
from reviews.access import REVIEW, VIEW, can_graph, thread_for, visible_threads
from reviews.actions import ActionRefused
from reviews.actions import state as state_actions
from reviews.actions import threads as thread_actions
from reviews.graph_state import GraphUnavailable, config_for
from reviews.models import ReviewTask
from reviews.state_editor import StateEdit

STATUSES = ("idle", "busy", "interrupted", "error")
SORTABLE = ("thread_id", "created_at", "updated_at", "state_updated_at", "status")
THREAD_FIELDS = (
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "config",
    "status",
    "values",
    "interrupts",
    "error",
)


def with_status(threads: QuerySet[Thread]) -> QuerySet[Thread]:
    """Threads with `api_status` and `api_updated` (when it last changed as
    far as the database says: made, or its newest run made or ended)."""
    runs = Run.objects.filter(thread_id=OuterRef("pk"))
    active = runs.filter(Q(status__in=Run.ACTIVE) | Run.stopping_q())
    open_tasks = ReviewTask.objects.filter(
        thread_id=OuterRef("pk"), status=ReviewTask.Status.PENDING
    )
    newest = runs.order_by("-pk")
    return threads.annotate(
        newest_run=Subquery(newest.values("status")[:1]),
        api_status=Case(
            When(Exists(active), then=Value("busy")),
            When(newest_run=Run.Status.FAILED, then=Value("error")),
            When(Exists(open_tasks), then=Value("interrupted")),
            default=Value("idle"),
            output_field=CharField(),
        ),
        api_updated=Greatest(
            "created_at",
            Coalesce(Subquery(newest.values("created_at")[:1]), "created_at"),
            Coalesce(Subquery(newest.values("finished_at")[:1]), "created_at"),
        ),
    )


def _thread(user: Any, thread_id: str, action: str = VIEW) -> Thread:
    """thread_for, with LangGraph's words for a thread that isn't there."""
    try:
        return thread_for(user, thread_id, action)
    except Http404:
        raise ApiError(404, f"Thread with ID {thread_id} not found") from None


def _graph(thread: Thread):
    """The thread's compiled graph, or None (no run yet, or not registered)."""
    if not thread.graph_name:
        return None
    try:
        return compiled_graph(thread.graph_name)
    except (GraphNotFound, GraphLoadError):
        return None


def _metadata(thread: Thread) -> dict[str, Any]:
    """What the API wrote, plus the graph and its assistant as a run through
    LangGraph's server adds them (Agent Inbox filters on graph_id), for
    threads started on the pages or /api/ too."""
    metadata = dict(thread.metadata or {})
    if thread.graph_name:
        metadata.setdefault("graph_id", thread.graph_name)
        metadata.setdefault("assistant_id", str(system_assistant_id(thread.graph_name)))
    return metadata


def _config(thread: Thread) -> dict[str, Any]:
    last = thread.runs.order_by("-pk").values_list("config", flat=True).first()
    if last is None:
        return {}
    return {**last, "configurable": dict(last.get("configurable") or {})}


def _error(thread: Thread, status: str) -> Any:
    if status != "error":
        return None
    text = thread.runs.order_by("-pk").values_list("error", flat=True).first() or ""
    kind, _, message = text.partition(": ")
    return {"error": kind, "message": message} if message else {"error": "Error", "message": text}


def _snapshot(thread: Thread) -> Any:
    graph = _graph(thread)
    return graph.get_state(config_for(thread)) if graph is not None else None


def shaped(thread: Thread, *, snapshot: Any = None) -> dict:
    """A thread row; `thread` annotated by with_status."""
    if snapshot is None:
        snapshot = _snapshot(thread)
    status = getattr(thread, "api_status", "idle")
    return shapes.thread(
        thread_id=thread.thread_id,
        created_at=thread.created_at,
        updated_at=getattr(thread, "api_updated", None) or thread.created_at,
        metadata=_metadata(thread),
        status=status,
        config=_config(thread),
        snapshot=snapshot,
        error=_error(thread, status),
    )


def _one(user: Any, thread_id: str, action: str = VIEW) -> dict:
    thread = _thread(user, thread_id, action)
    return shaped(with_status(Thread.objects.filter(pk=thread.pk)).get())


# -- the collection ------------------------------------------------------------------


@endpoint
def create(request: HttpRequest) -> HttpResponse:
    body = payload(request)
    thread_id = body.get("thread_id") or str(uuid7())  # time-ordered, as LangGraph makes them
    if not isinstance(thread_id, str) or len(thread_id) > 255:
        raise ApiError(422, "thread_id must be a string of at most 255 characters")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(422, "metadata must be an object")
    if body.get("supersteps"):
        raise ApiError(422, "supersteps are not supported here: create, then update_state")
    graph_name = metadata.get("graph_id") if metadata.get("graph_id") in graph_ids() else ""
    if not can_graph(request.user, REVIEW, graph_name):
        raise ApiError(403, f"You may not start {graph_name or 'these'} threads.")
    _, created = Thread.objects.get_or_create(
        thread_id=thread_id, defaults={"graph_name": graph_name, "metadata": metadata}
    )
    if not created:
        if body.get("if_exists") == "do_nothing":
            try:
                return respond(_one(request.user, thread_id))
            except ApiError:
                pass  # one the user may not see exists: say only that it does
        raise ApiError(409, f"Thread with ID {thread_id} already exists")
    return respond(_one(request.user, thread_id))


def _metadata_q(key: str, value: Any) -> Q:
    """One metadata key as a query: a string exactly, anything else by the
    key's presence (then compared in Python, see contains). graph_id and
    assistant_id of threads that never stored them come from the thread's
    graph (see _metadata)."""
    has_key = Q(metadata__has_key=key)
    matches = Q(**{f"metadata__{key}": value}) if _exact(key, value) else has_key
    derived = Q(pk__in=[])
    if key == "graph_id":
        derived = Q(graph_name=value)
    elif key == "assistant_id":
        names = [name for name in graph_ids() if str(system_assistant_id(name)) == str(value)]
        derived = Q(graph_name__in=names)
    return matches | (~has_key & derived)


def _exact(key: str, value: Any) -> bool:
    return isinstance(value, str) and "__" not in key


def _matching(user: Any, body: dict[str, Any]) -> QuerySet[Thread]:
    threads = with_status(visible_threads(user, Thread.objects.all(), graph_rules=True))
    status = body.get("status")
    if status:
        if status not in STATUSES:
            raise ApiError(422, f"Invalid status {status!r}: one of {', '.join(STATUSES)}")
        threads = threads.filter(api_status=status)
    if ids := body.get("ids"):
        threads = threads.filter(pk__in=[str(i) for i in ids])
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(422, "metadata must be an object")
    for key, value in metadata.items():
        threads = threads.filter(_metadata_q(key, value))
    sort_by = body.get("sort_by") if body.get("sort_by") in SORTABLE else "updated_at"
    column = {
        "thread_id": "thread_id",
        "status": "api_status",
        "created_at": "created_at",
    }.get(sort_by, "api_updated")
    ascending = str(body.get("sort_order") or "desc").lower() == "asc"
    return threads.order_by(column if ascending else f"-{column}", "thread_id")


def _found(user: Any, body: dict[str, Any], *, limit: int | None, offset: int = 0):
    """(thread, snapshot) of the matches from `offset` on, at most `limit`,
    and whether more match. Metadata the database can't compare and values
    are compared here on each thread, as LangGraph's runtimes compare them."""
    threads = _matching(user, body)
    metadata = body.get("metadata") or {}
    values = body.get("values") or {}
    in_python = values or any(not _exact(k, v) for k, v in metadata.items())
    if not in_python:
        window = threads[offset : offset + limit + 1] if limit is not None else threads[offset:]
        rows = [(thread, None) for thread in window]
        more = limit is not None and len(rows) > limit
        return rows[:limit] if limit is not None else rows, more
    rows, skipped = [], 0
    for thread in threads.iterator():
        if metadata and not contains(_metadata(thread), metadata):
            continue
        snapshot = None
        if values:
            snapshot = _snapshot(thread)
            if not (snapshot is not None and snapshot.created_at):
                continue
            if not contains(json_safe(snapshot.values), values):
                continue
        if skipped < offset:
            skipped += 1
            continue
        if limit is not None and len(rows) == limit:
            return rows, True
        rows.append((thread, snapshot))
    return rows, False


@endpoint
def search(request: HttpRequest) -> HttpResponse:
    body = payload(request)
    limit, offset = page_of(body)
    rows, more = _found(request.user, body, limit=limit, offset=offset)
    items = [shaped(thread, snapshot=snapshot) for thread, snapshot in rows]
    if more:
        headers = {
            "X-Pagination-Total": str(offset + limit + 1),
            "X-Pagination-Next": str(offset + limit),
        }
    else:
        headers = {"X-Pagination-Total": str(len(items) + offset)}
    return respond(selected(items, body.get("select"), THREAD_FIELDS), headers=headers)


@endpoint
def count(request: HttpRequest) -> HttpResponse:
    body = payload(request)
    metadata = body.get("metadata") or {}
    if body.get("values") or any(not _exact(k, v) for k, v in metadata.items()):
        return respond(len(_found(request.user, body, limit=None)[0]))
    return respond(_matching(request.user, body).count())


def _client(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@endpoint
def prune(request: HttpRequest) -> HttpResponse:
    """As LangGraph's server prunes: "delete" removes the threads,
    "keep_latest" keeps each with only its latest checkpoint, and threads that
    don't exist are skipped. One the user may see but not change, or one a
    run has, refuses the whole request before anything is pruned."""
    body = payload(request)
    ids = [str(i) for i in body.get("thread_ids") or []]
    strategy = body.get("strategy") or "delete"
    if strategy not in ("delete", "keep_latest"):
        raise ApiError(422, f"Invalid strategy: {strategy}. Expected 'delete' or 'keep_latest'.")
    if not ids:
        return respond({"pruned_count": 0})
    threads = []
    for thread_id in ids:
        try:
            threads.append(thread_for(request.user, thread_id, REVIEW))
        except Http404:
            continue  # as LangGraph's server: a missing thread is skipped
    for thread in threads:
        ActionRefused.while_running(thread, "prune it")
    if strategy == "keep_latest":
        DjangoCheckpointSaver().prune([t.pk for t in threads], strategy="keep_latest")
    else:
        for thread in threads:
            thread_actions.delete(thread, user=request.user, client_address=_client(request))
    return respond({"pruned_count": len(threads)})


# -- one thread ------------------------------------------------------------------------


@endpoint
def get(request: HttpRequest, thread_id: str) -> HttpResponse:
    return respond(_one(request.user, thread_id))


@endpoint
def patch(request: HttpRequest, thread_id: str) -> HttpResponse:
    """Merge metadata into the thread's (LangGraph's update)."""
    body = payload(request)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(422, "metadata must be an object")
    thread = _thread(request.user, thread_id, REVIEW)
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        thread.metadata = {**(thread.metadata or {}), **metadata}
        thread.save(update_fields=["metadata"])
    if request.headers.get("Prefer") == "return=minimal":
        return HttpResponse(status=204)
    return respond(_one(request.user, thread_id))


@endpoint
def delete(request: HttpRequest, thread_id: str) -> HttpResponse:
    thread = _thread(request.user, thread_id, REVIEW)
    thread_actions.delete(thread, user=request.user, client_address=_client(request))
    return HttpResponse(status=204)


@endpoint
def copy(request: HttpRequest, thread_id: str) -> HttpResponse:
    """A new thread with this one's checkpoints and metadata. What its state
    waits for becomes review tasks of the copy, as on any stopped thread."""
    # What the source waits for is asked again in the copy, so copying needs
    # the rights a change to the source would: a viewer could fill a queue.
    source = _thread(request.user, thread_id, REVIEW)
    copied = thread_actions.copy(source, user=request.user, client_address=_client(request))
    return respond(_one(request.user, copied.pk))


# -- state and history ------------------------------------------------------------------


def _state(thread: Thread, configurable: dict[str, Any], subgraphs: bool) -> dict[str, Any]:
    graph = _graph(thread)
    if graph is None:
        return shapes.EMPTY_STATE
    config = {"configurable": {**configurable, "thread_id": thread.thread_id}}
    return shapes.state(graph.get_state(config, subgraphs=subgraphs))


def _flag(value: Any) -> bool:
    return value in (True, "true", "True")


@endpoint
def get_state(request: HttpRequest, thread_id: str, checkpoint_id: str = "") -> HttpResponse:
    thread = _thread(request.user, thread_id)
    configurable = {"checkpoint_id": checkpoint_id} if checkpoint_id else {}
    return respond(_state(thread, configurable, _flag(request.GET.get("subgraphs"))))


@endpoint
def get_state_at(request: HttpRequest, thread_id: str) -> HttpResponse:
    """POST .../state/checkpoint: the state at a checkpoint given as an object
    (a subgraph's checkpoint_ns too)."""
    body = payload(request)
    thread = _thread(request.user, thread_id)
    checkpoint = body.get("checkpoint") or {}
    if not isinstance(checkpoint, dict):
        raise ApiError(422, "checkpoint must be an object")
    return respond(_state(thread, checkpoint, _flag(body.get("subgraphs"))))


@endpoint
def update_state(request: HttpRequest, thread_id: str) -> HttpResponse:
    """update_state, as the state editor writes it: refused (409) while a run
    has the thread or when `checkpoint` is not where it stands; no values
    with as_node "__end__" closes what the thread waits for (Agent Inbox's
    ignore)."""
    body = payload(request)
    thread = _thread(request.user, thread_id, REVIEW)
    if not thread.graph_name:
        raise ApiError(
            400,
            f"Thread '{thread.pk}' has no assigned graph ID. This usually occurs when no runs "
            "have been made on this particular thread. This operation requires a graph ID. "
            "Please ensure a run has been made for the thread or manually update the thread "
            "metadata (by setting the 'graph_id' field) before running this operation.",
        )
    values = body.get("values")
    if values is not None and not isinstance(values, dict):
        raise ApiError(422, "values must be an object of state keys (or null)")
    checkpoint = body.get("checkpoint") or {}
    at = str(checkpoint.get("checkpoint_id") or body.get("checkpoint_id") or "")
    latest = thread.latest_checkpoint_id()
    # An earlier checkpoint forks the thread from there; its latest is where it is.
    fork_from = at if at and at != latest else ""
    try:
        edit = StateEdit.open(thread, {"from": fork_from} if fork_from else {})
    except GraphUnavailable as exc:
        raise ApiError(404, str(exc)) from None
    except Http404 as exc:
        raise ApiError(404, str(exc)) from None
    edit.bind_values(values, as_node=body.get("as_node") or "", base_checkpoint=latest or "")
    if not edit.is_valid():
        problems = [*edit.errors, *edit.field_errors.values()]
        raise ApiError(422, " ".join(problems) or "Invalid values.")
    try:
        result = state_actions.edit(edit, user=request.user, client_address=_client(request))
    except ActionRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    configurable = {
        "thread_id": thread.thread_id,
        "checkpoint_ns": "",
        "checkpoint_id": result.checkpoint_id,
    }
    return respond(
        {
            "checkpoint": configurable,
            "configurable": configurable,
            "checkpoint_id": result.checkpoint_id,
        }
    )


def _history(
    thread: Thread,
    *,
    limit: int,
    before: Any,
    metadata: dict[str, Any] | None,
    checkpoint: dict[str, Any],
) -> list[dict[str, Any]]:
    graph = _graph(thread)
    if graph is None:
        return []
    config = {"configurable": {"checkpoint_ns": "", **checkpoint, "thread_id": thread.thread_id}}
    if isinstance(before, str) and before:
        before = {"configurable": {"checkpoint_id": before}}
    elif isinstance(before, dict) and before:
        before = {"configurable": before}
    else:
        before = None
    return [
        shapes.state(snapshot)
        for snapshot in graph.get_state_history(
            config, filter=metadata or None, before=before, limit=limit
        )
    ]


def _limit(value: Any, default: int) -> int:
    try:
        limit = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise ApiError(422, f"Invalid limit {value}") from None
    if limit < 1:
        raise ApiError(422, f"Invalid limit {value}")
    return limit


@endpoint
def history(request: HttpRequest, thread_id: str) -> HttpResponse:
    """GET with limit and before; POST with limit, before, metadata and
    checkpoint (a subgraph's namespace, or where to start)."""
    thread = _thread(request.user, thread_id)
    if request.method == "GET":
        return respond(
            _history(
                thread,
                limit=_limit(request.GET.get("limit"), 1),
                before=request.GET.get("before"),
                metadata=None,
                checkpoint={},
            )
        )
    body = payload(request)
    checkpoint = body.get("checkpoint") or {}
    metadata = body.get("metadata")
    if not isinstance(checkpoint, dict) or (
        metadata is not None and not isinstance(metadata, dict)
    ):
        raise ApiError(422, "checkpoint and metadata must be objects")
    return respond(
        _history(
            thread,
            limit=_limit(body.get("limit"), 1),
            before=body.get("before"),
            metadata=metadata,
            checkpoint=checkpoint,
        )
    )


one = methods(get=get, patch=patch, delete=delete)
state = methods(get=get_state, post=update_state)
