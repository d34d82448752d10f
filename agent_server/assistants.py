"""/langgraph/assistants: each graph of langgraph.json is an assistant (its
id the uuid5 LangGraph's server gives it, or the graph's name), and more can
be made with their own config, context and metadata, every change a version.

Reading an assistant needs the right to view its graph; making, changing or
deleting one the right to start its runs (review).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from pydantic import TypeAdapter

from agent_server import shapes
from agent_server.auth import ApiError, endpoint, methods, payload, respond
from agent_server.models import Assistant, system_assistant_id
from graphs.interrupts import json_safe
from graphs.registry import GraphLoadError, GraphNotFound, get_registry
from graphs.worker import compiled_graph
from hitl_site.rows import Rows
from reviews.access import (
    REVIEW,
    VIEW,
    can_graph,
    check_assistant_change,
    check_shaping,
    graph_rights,
)
from reviews.actions import assistants as assistant_actions

SORTABLE = ("assistant_id", "graph_id", "name", "created_at", "updated_at")


def graph_ids() -> list[str]:
    return [spec.name for spec in get_registry().specs()]


def ensure_system_assistants() -> None:
    """One assistant per registered graph, made on first use (a graph added
    to langgraph.json gets its own at the next request)."""
    wanted = {system_assistant_id(name): name for name in graph_ids()}
    have = set(Assistant.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    for assistant_id, name in wanted.items():
        if assistant_id in have:
            continue
        spec = get_registry().get(name)
        now = timezone.now()
        with transaction.atomic():
            row, created = Assistant.objects.get_or_create(
                pk=assistant_id,
                defaults={
                    "graph_id": name,
                    "name": name,
                    "description": spec.description or None,
                    "metadata": {"created_by": "system"},
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if created:
                row.add_version()


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def stored(key: uuid.UUID) -> Assistant | None:
    """The assistant row with this id; a graph's own is made the first time
    it is asked for (one query when it exists)."""
    row = _read(key)
    if row is None and key in {system_assistant_id(name) for name in graph_ids()}:
        ensure_system_assistants()
        row = _read(key)
    return row


_ROWS = Rows(Assistant)


def _read(key: uuid.UUID) -> Assistant | None:
    """By a statement written once: every run asks, and building the query
    through the ORM cost more than running it."""
    using = router.db_for_read(Assistant)
    connection = connections[using]
    quote = connection.ops.quote_name
    pk = Assistant._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_ROWS.columns(using)} FROM {quote(Assistant._meta.db_table)}"
            f" WHERE {quote(Assistant._meta.db_table)}.{quote(pk.column)} = %s",
            [pk.get_db_prep_value(key, connection)],
        )
        row = cursor.fetchone()
    return None if row is None else _ROWS.make(using, row)


def resolve(user: Any, assistant_id: str, action: str = VIEW) -> Assistant:
    """The assistant named by its id or its graph's name: 404 when there is
    none or the user may not see its graph, 403 when they may see but not
    `action` it."""
    key = system_assistant_id(assistant_id) if assistant_id in graph_ids() else None
    key = key or _as_uuid(assistant_id)
    row = stored(key) if key else None
    may_see, may_run = graph_rights(user, row.graph_id) if row else (False, False)
    if row is None or row.graph_id not in graph_ids() or not may_see:
        raise ApiError(404, f"Assistant {assistant_id} not found")
    if action != VIEW and not may_run:
        raise ApiError(403, f"You may not start or change {row.graph_id} runs.")
    return row


def _visible(user: Any) -> QuerySet[Assistant]:
    ensure_system_assistants()
    graphs = [name for name in graph_ids() if can_graph(user, VIEW, name)]
    return Assistant.objects.filter(graph_id__in=graphs)


def _filtered(user: Any, body: dict[str, Any]) -> QuerySet[Assistant]:
    rows = _visible(user)
    if graph_id := body.get("graph_id"):
        _known_graph(graph_id)
        rows = rows.filter(graph_id=graph_id)
    if name := body.get("name"):
        rows = rows.filter(name__icontains=name)
    return rows


def contains(container: Any, wanted: Any) -> bool:
    """PostgreSQL's jsonb @> as LangGraph's runtimes apply it to metadata."""
    if isinstance(wanted, dict):
        return isinstance(container, dict) and all(
            key in container and contains(container[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return isinstance(container, list) and all(
            any(contains(item, w) for item in container) for w in wanted
        )
    return container == wanted


def _known_graph(graph_id: str) -> None:
    if graph_id not in graph_ids():
        raise ApiError(404, f"Graph '{graph_id}' not found")


def page_of(body: dict[str, Any]) -> tuple[int, int]:
    try:
        limit, offset = int(body.get("limit") or 10), int(body.get("offset") or 0)
    except (TypeError, ValueError):
        raise ApiError(422, "limit and offset must be integers") from None
    if limit < 1 or offset < 0:
        raise ApiError(422, "limit must be at least 1 and offset at least 0")
    return limit, offset


def selected(items: list[dict[str, Any]], select: Any, allowed: tuple[str, ...]) -> list:
    if not select:
        return items
    invalid = [column for column in select if column not in allowed]
    if invalid:
        raise ApiError(422, f"Invalid select columns: {invalid}")
    return [{k: v for k, v in item.items() if k in select} for item in items]


ASSISTANT_FIELDS = (
    "assistant_id",
    "graph_id",
    "config",
    "context",
    "metadata",
    "name",
    "created_at",
    "updated_at",
    "version",
    "description",
)


@endpoint
def search(request: HttpRequest) -> HttpResponse:
    body = payload(request)
    limit, offset = page_of(body)
    rows = list(_filtered(request.user, body))
    if metadata := body.get("metadata"):
        rows = [row for row in rows if contains(row.metadata, metadata)]
    sort_by = body.get("sort_by")
    if sort_by in SORTABLE:
        descending = str(body.get("sort_order") or "desc").lower() != "asc"
        rows.sort(key=lambda row: str(getattr(row, sort_by)), reverse=descending)
    else:
        rows.sort(key=lambda row: row.created_at, reverse=True)
    page = rows[offset : offset + limit]
    headers = {"X-Pagination-Total": str(len(page) + offset)}
    if len(rows) > offset + limit:
        headers = {
            "X-Pagination-Total": str(offset + limit + 1),
            "X-Pagination-Next": str(offset + limit),
        }
    items = selected([shapes.assistant(row) for row in page], body.get("select"), ASSISTANT_FIELDS)
    return respond(items, headers=headers)


@endpoint
def count(request: HttpRequest) -> HttpResponse:
    body = payload(request)
    rows = list(_filtered(request.user, body))
    if metadata := body.get("metadata"):
        rows = [row for row in rows if contains(row.metadata, metadata)]
    return respond(len(rows))


def config_and_context(body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A request's config and context, checked as LangGraph's server checks
    them (objects, and not both configurable and context)."""
    config = body.get("config") or {}
    context = body.get("context")
    if not isinstance(config, dict):
        raise ApiError(422, "config must be an object")
    if context is not None and not isinstance(context, dict):
        raise ApiError(422, "context must be an object")
    if config.get("configurable") and context:
        raise ApiError(
            400,
            "Cannot specify both configurable and context. Prefer setting context alone. "
            "Context was introduced in LangGraph 0.6.0 and is the long term planned "
            "replacement for configurable.",
        )
    return config, context


def _config_and_context(body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """As LangGraph keeps them on an assistant: configurable and context
    mirror each other."""
    config, context = config_and_context(body)
    if config.get("configurable"):
        context = config["configurable"]
    elif context:
        config = {**config, "configurable": context}
    return config, context


@endpoint
def create(request: HttpRequest) -> HttpResponse:
    body = payload(request)
    graph_id = body.get("graph_id")
    if not isinstance(graph_id, str) or not graph_id:
        raise ApiError(422, "graph_id is required")
    _known_graph(graph_id)
    if not can_graph(request.user, REVIEW, graph_id):
        raise ApiError(403, f"You may not start or change {graph_id} runs.")
    assistant_id = body.get("assistant_id") or str(uuid.uuid4())
    if _as_uuid(assistant_id) is None:
        raise ApiError(422, "Invalid assistant ID: must be a UUID")
    config, context = _config_and_context(body)
    check_shaping(request.user, graph_id, config)
    ensure_system_assistants()
    with transaction.atomic():
        existing = Assistant.objects.select_for_update().filter(pk=assistant_id).first()
        if existing is not None:
            if body.get("if_exists") == "do_nothing" and can_graph(
                request.user, VIEW, existing.graph_id
            ):
                return respond(shapes.assistant(existing))
            raise ApiError(409, f"Assistant {assistant_id} already exists")
        now = timezone.now()
        row = Assistant.objects.create(
            created_at=now,
            updated_at=now,
            assistant_id=assistant_id,
            graph_id=graph_id,
            name=body.get("name") or "Untitled",
            description=body.get("description"),
            config=config,
            context=context or {},
            metadata=body.get("metadata") or {},
        )
        row.add_version()
    return respond(shapes.assistant(row))


@endpoint
def get(request: HttpRequest, assistant_id: str) -> HttpResponse:
    return respond(shapes.assistant(resolve(request.user, assistant_id)))


def _to_change(user: Any, assistant_id: str) -> Assistant:
    row = resolve(user, assistant_id, REVIEW)
    graphs_own = row.assistant_id == system_assistant_id(row.graph_id)
    check_assistant_change(user, row.graph_id, graphs_own=graphs_own)
    return row


@endpoint
def patch(request: HttpRequest, assistant_id: str) -> HttpResponse:
    """A new version with the changes; the others stay as they were."""
    body = payload(request)
    row = _to_change(request.user, assistant_id)
    if graph_id := body.get("graph_id"):
        _known_graph(graph_id)
        if not can_graph(request.user, REVIEW, graph_id):
            raise ApiError(403, f"You may not start or change {graph_id} runs.")
    config, context = _config_and_context(body)
    if graph_id and graph_id != row.graph_id:
        # Moved to another graph, its config shapes that graph's runs:
        # judged as a change made there.
        check_assistant_change(request.user, graph_id, graphs_own=False)
        check_shaping(request.user, graph_id, config or row.config)
    row = assistant_actions.change(
        row,
        {
            "graph_id": graph_id or row.graph_id,
            "config": config or row.config,
            "context": context if context is not None else row.context,
            "metadata": {**row.metadata, **(body.get("metadata") or {})},
            **{k: body[k] for k in ("name", "description") if body.get(k) is not None},
        },
        user=request.user,
        client_address=request.META.get("REMOTE_ADDR") or None,
    )
    return respond(shapes.assistant(row))


@endpoint
def delete(request: HttpRequest, assistant_id: str) -> HttpResponse:
    row = _to_change(request.user, assistant_id)
    assistant_actions.delete(
        row, user=request.user, client_address=request.META.get("REMOTE_ADDR") or None
    )
    return HttpResponse(status=204)


@endpoint
def versions(request: HttpRequest, assistant_id: str) -> HttpResponse:
    body = payload(request)
    row = resolve(request.user, assistant_id)
    limit, offset = page_of(body)
    rows = list(row.versions.order_by("-version"))
    if metadata := body.get("metadata"):
        rows = [version for version in rows if contains(version.metadata, metadata)]
    return respond([shapes.assistant_version(v) for v in rows[offset : offset + limit]])


@endpoint
def set_latest(request: HttpRequest, assistant_id: str) -> HttpResponse:
    body = payload(request)
    row = _to_change(request.user, assistant_id)
    version = row.versions.filter(version=body.get("version")).first()
    if version is None:
        raise ApiError(
            404, f"Version {body.get('version')} not found for assistant {row.assistant_id}"
        )
    row = assistant_actions.set_latest(
        row, version, user=request.user, client_address=request.META.get("REMOTE_ADDR") or None
    )
    return respond(shapes.assistant(row))


def _graph(row: Assistant):
    try:
        return compiled_graph(row.graph_id)
    except (GraphNotFound, GraphLoadError) as exc:
        raise ApiError(404, str(exc)) from None


def _xray(request: HttpRequest) -> bool | int:
    value = request.GET.get("xray")
    if not value or value in ("false", "False"):
        return False
    if value in ("true", "True"):
        return True
    try:
        depth = int(value)
    except ValueError:
        raise ApiError(422, "Invalid xray value") from None
    if depth <= 0:
        raise ApiError(422, "Invalid xray value")
    return depth


@endpoint
def graph(request: HttpRequest, assistant_id: str) -> HttpResponse:
    """The graph's nodes and edges as LangGraph draws them; with xray, the
    subgraphs' own nodes too (to that depth)."""
    xray = _xray(request)
    row = resolve(request.user, assistant_id)
    try:
        drawn = _graph(row).get_graph(config=row.config or None, xray=xray).to_json()
    except NotImplementedError:
        raise ApiError(422, "The graph does not support visualization") from None
    for node in drawn.get("nodes", []):
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)
    return respond(json_safe(drawn))


def _state_jsonschema(compiled: Any, name: str | None) -> dict[str, Any]:
    """As langgraph-api writes a graph's state schema: every output channel,
    typed by what it takes as an update."""
    from langchain_core.runnables.utils import create_model

    fields: dict[str, Any] = {}
    for key in compiled.stream_channels_list:
        channel = compiled.channels[key]
        try:
            create_model(key, __root__=(channel.UpdateType, None)).model_json_schema()
            fields[key] = (channel.UpdateType, None)
        except Exception:
            fields[key] = (Any, None)
    return create_model(compiled.get_name("State", name=name), **fields).model_json_schema()


_EXCLUDED_CONFIG = ("__pregel_checkpointer", "__pregel_store", "checkpoint_id", "checkpoint_ns")


def _config_jsonschema(compiled: Any) -> dict[str, Any]:
    config_schema = compiled.config_schema()
    fields = getattr(config_schema, "model_fields", None) or {}
    if "configurable" not in fields:
        return {}
    schema = TypeAdapter(fields["configurable"].annotation).json_schema()
    if schema:
        for key in (*_EXCLUDED_CONFIG, "thread_id"):
            schema.get("properties", {}).pop(key, None)
    config_type = getattr(compiled, "config_type", None)
    if config_type is not None and hasattr(config_type, "__name__"):
        schema["title"] = config_type.__name__
    return schema


def _schemas(compiled: Any, name: str | None = None) -> dict[str, Any]:
    """`name`: the graph's id, which LangGraph's server gives the graphs it loads."""
    readers = {
        "input_schema": compiled.get_input_jsonschema,
        "output_schema": compiled.get_output_jsonschema,
        "state_schema": lambda: _state_jsonschema(compiled, name),
        "config_schema": lambda: _config_jsonschema(compiled),
        "context_schema": compiled.get_context_jsonschema,
    }
    schemas: dict[str, Any] = {}
    for key, read in readers.items():
        try:
            schemas[key] = read()
        except Exception:  # a schema LangGraph can't write is null there too
            schemas[key] = None
    return schemas


@endpoint
def schemas(request: HttpRequest, assistant_id: str) -> HttpResponse:
    row = resolve(request.user, assistant_id)
    return respond(json_safe({"graph_id": row.graph_id, **_schemas(_graph(row), row.graph_id)}))


@endpoint
def subgraphs(
    request: HttpRequest, assistant_id: str, namespace: str | None = None
) -> HttpResponse:
    row = resolve(request.user, assistant_id)
    recurse = request.GET.get("recurse", "False") in ("true", "True")
    found = {
        ns: _schemas(subgraph)
        for ns, subgraph in _graph(row).get_subgraphs(namespace=namespace, recurse=recurse)
    }
    return respond(json_safe(found))


one = methods(get=get, patch=patch, delete=delete)
