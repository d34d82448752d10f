"""Runs of LangGraph's Agent Server API: create, wait, stream, join, get,
list, cancel and delete, on a thread or stateless.

Every run is a `graphs.Run` row driven by the project's worker, so it shows
on the pages and its interrupts become review tasks. A `command.resume` is
a decision by the key's user on the open tasks of the thread's interrupt,
through reviews.actions.tasks.decide as the pages decide: refused with 403
where the review rules don't let that user decide them, and 409 where a
quorum still needs other reviewers (the approval is recorded and audited).
Responses are shaped as LangGraph's own server shapes them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from agent_server.assistants import config_and_context, graph_ids, stored
from agent_server.auth import ApiError, authenticate_or_refuse, checks_key, payload, respond
from agent_server.models import Assistant, system_assistant_id
from agent_server.streaming import (
    DONE,
    RunListener,
    before_waiting,
    kept_events,
    metadata_id,
    seq_of,
    sse,
    sse_json,
)
from graphs import events
from graphs.checkpoint import DjangoCheckpointSaver
from graphs.interrupts import DecisionError, Shape, decisions_in, json_safe
from graphs.models import Checkpoint, Run, Thread, new_run_id
from graphs.run_settings import without_langgraphs_own
from graphs.worker import discard_checkpoints, graph_for_run, stream_held
from reviews.access import REVIEW, VIEW, can_thread, check_shaping, graph_rights, thread_for
from reviews.actions import ActionRefused, DecisionsInvalid
from reviews.actions import runs as run_actions
from reviews.actions import tasks as task_actions
from reviews.models import ReviewTask

STRATEGIES = ("reject", "interrupt", "rollback", "enqueue")
STREAM_MODES = (
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "events",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
)
# A run that stops at an interrupt succeeded, as LangGraph's server says;
# a cancelled run was "interrupted" by its cancel.
STATUS = {
    Run.Status.QUEUED: "pending",
    Run.Status.RUNNING: "running",
    Run.Status.INTERRUPTED: "success",
    Run.Status.SUCCEEDED: "success",
    Run.Status.FAILED: "error",
    Run.Status.CANCELLED: "interrupted",
}
NOT_FOUND = "Thread or assistant not found."
BUSY = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
_SAVER = DjangoCheckpointSaver()
JOINED = b": joined\n\n"


# -- shapes -----------------------------------------------------------------------


def run_shape(run: Run) -> dict[str, Any]:
    return {
        "run_id": str(run.run_id),
        "thread_id": run.thread_id,
        "assistant_id": run.assistant_id or str(system_assistant_id(run.graph_name)),
        "metadata": run.metadata or {},
        "status": STATUS[run.status],
        "kwargs": run.kwargs or _kwargs_of(run),
        "multitask_strategy": run.multitask_strategy or "enqueue",
        "created_at": run.created_at,
        "updated_at": run.finished_at or run.started_at or run.created_at,
        "langsmith_session_name": None,
    }


def _kwargs_of(run: Run) -> dict[str, Any]:
    """What a run started from the pages or /api/ asked, as LangGraph echoes it."""
    command = None
    if run.kind == Run.Kind.RESUME:
        resume = (run.payload or {}).get("value", (run.payload or {}).get("by_interrupt_id"))
        command = {"resume": resume}
    return _kwargs(
        run,
        input=run.payload if run.kind == Run.Kind.START else None,
        command=command,
        config=run.config or {},
        context=run.context or {},
        stream_mode=list(run.stream_mode or ["values"]),
    )


def _kwargs(
    run: Run,
    *,
    input: Any,
    command: Any,
    config: dict[str, Any],
    context: Any,
    stream_mode: list[str],
    resumable: bool = False,
    durability: str = "async",
) -> dict[str, Any]:
    assistant_id = run.assistant_id or str(system_assistant_id(run.graph_name))
    return {
        "input": input,
        "command": command,
        "config": {
            **config,
            "configurable": {
                **(config.get("configurable") or {}),
                "run_id": str(run.run_id),
                "thread_id": run.thread_id,
                "graph_id": run.graph_name,
                "assistant_id": assistant_id,
                "user_id": run.requested_by.get_username() if run.requested_by_id else "",
            },
            "metadata": {**(config.get("metadata") or {}), **(run.metadata or {})},
        },
        "context": context,
        "stream_mode": stream_mode,
        "interrupt_before": run.interrupt_before or None,
        "interrupt_after": run.interrupt_after or None,
        "webhook": None,
        "feedback_keys": None,
        "temporary": run.temporary,
        "subgraphs": run.stream_subgraphs,
        "resumable": resumable,
        "checkpoint_during": True,
        "durability": durability,
    }


def output_of(run: Run) -> dict[str, Any]:
    """What runs.wait and runs.join return: the thread's values where the run
    stopped, with "__interrupt__" listing the interrupts waiting there, or
    "__error__" for a run that failed."""
    if run.status == Run.Status.FAILED:
        kind, _, message = run.error.partition(": ")
        return {"__error__": {"error": kind, "message": message or run.error}}
    graph = graph_for_run(run.graph_name, run.config or {})
    state = graph.get_state({"configurable": {"thread_id": run.thread_id}})
    interrupts = [json_safe(i) for i in state.interrupts]
    if interrupts:
        return {**json_safe(state.values or {}), "__interrupt__": interrupts}
    return json_safe(state.values) if state.values else {}


class RunOutput:
    """The output of a run that streamed "values", as LangGraph's server
    takes it from the stream (a stateless run's thread is gone by its end):
    the last values, or those that carried interrupts."""

    def __init__(self) -> None:
        self.latest: bytes | None = None
        self.interrupted: list[Any] = []
        # The last "values" event, and whether an "error" event came.
        self.values: bytes | None = None
        self.errored = False

    def absorb(self, event: str, data: str) -> None:
        if event == "error":
            self.latest = b'{"__error__":' + data.encode() + b"}"
            self.interrupted = []
            self.errored = True
        elif event in ("values", "updates") and "__interrupt__" in data:
            found = orjson.loads(data).get("__interrupt__") or []
            self.interrupted.append((data, found))
            self.latest = data.encode()
            if event == "values":
                self.values = self.latest
        elif event == "values":
            self.latest = self.values = data.encode()

    def values_where_stopped(self) -> bytes | None:
        """The run's last event, when it was "values" and says all: the
        thread's values where the run stopped, with the one interrupt asked
        there if any. None when only the saved state can tell: no values
        streamed, an error, or several interrupts (the state lists them in
        the graph's task order, the stream in the order they were asked)."""
        if self.errored or self.values is None or self.latest is not self.values:
            return None
        if len(self.interrupted) > 1 or (self.interrupted and len(self.interrupted[0][1]) != 1):
            return None
        return self.values

    def body(self) -> bytes:
        if len(self.interrupted) > 1:
            merged = [i for _, found in self.interrupted for i in found]
            return orjson.dumps({"__interrupt__": merged})
        return self.latest or b"{}"


# -- asking for a run ----------------------------------------------------------------


def resolve_assistant(user: Any, assistant_id: Any) -> Assistant:
    """The assistant a run asks for, by its id or its graph's name (as
    LangGraph's server: 422 for neither, 404 for an id it doesn't know)."""
    if not isinstance(assistant_id, str) or not assistant_id:
        raise ApiError(422, "assistant_id is required.")
    names = graph_ids()
    if assistant_id in names:
        key = system_assistant_id(assistant_id)
    else:
        try:
            key = uuid.UUID(assistant_id)
        except ValueError:
            raise ApiError(
                422,
                f"Invalid assistant: '{assistant_id}'. Must be either:\n- A valid assistant "
                f"UUID, or\n- One of the registered graphs: {', '.join(names)}",
            ) from None
    row = stored(key)
    if row is None or row.graph_id not in names:
        raise ApiError(404, NOT_FOUND)
    may_see, may_run = graph_rights(user, row.graph_id)
    if not may_see:
        raise ApiError(404, NOT_FOUND)
    if not may_run:
        raise PermissionDenied(f"You may not start {row.graph_id} runs.")
    return row


def _modes(body: dict[str, Any]) -> list[str]:
    asked = body.get("stream_mode") or ["values"]
    if isinstance(asked, str):
        asked = [asked]
    if not isinstance(asked, list) or any(m not in STREAM_MODES for m in asked):
        raise ApiError(
            422, f"stream_mode must be one or more of {', '.join(STREAM_MODES)}; got {asked!r}."
        )
    return list(dict.fromkeys(asked))


def _nodes(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value in (None, []):
        return []
    if value == "*":
        return ["*"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(422, f'{key} must be a list of node names or "*".')
    return value


def _config(body: dict[str, Any], assistant: Assistant) -> tuple[dict[str, Any], Any]:
    """The run's config and context: the assistant's, with the request's over them."""
    config, context = config_and_context(body)
    base = assistant.config or {}
    kept = {
        k: v
        for k, v in {**base, **config}.items()
        if k in ("configurable", "recursion_limit", "tags", "metadata", "run_name")
    }
    if base.get("configurable") or config.get("configurable"):
        # LangGraph's own keys are dropped, not refused: a RemoteGraph sends
        # its caller's thread_id and runtime flags along.
        kept["configurable"] = without_langgraphs_own(
            {**(base.get("configurable") or {}), **(config.get("configurable") or {})}
        )
    if assistant.context or context:
        context = {**(assistant.context or {}), **(context or {})}
    return kept, (context or None)


def _client(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def create(
    request: HttpRequest,
    thread_id: str | None,
    body: dict[str, Any],
    *,
    run_id: uuid.UUID | None = None,
    stream_mode: list[str] | None = None,
    stateless_thread_id: uuid.UUID | None = None,
) -> Run:
    """Queue the run a request asks for; raises ApiError (or PermissionDenied,
    Http404) with LangGraph's status when it can't be made."""
    user = request.user
    assistant = resolve_assistant(user, body.get("assistant_id"))
    graph_name, assistant_id = assistant.graph_id, str(assistant.assistant_id)
    strategy = body.get("multitask_strategy") or "enqueue"
    if strategy not in STRATEGIES:
        raise ApiError(422, f"multitask_strategy must be one of {', '.join(STRATEGIES)}.")
    if_not_exists = body.get("if_not_exists") or "reject"
    if if_not_exists not in ("reject", "create"):
        raise ApiError(422, "if_not_exists must be 'reject' or 'create'.")
    on_completion = body.get("on_completion") or "delete"
    if on_completion not in ("delete", "keep"):
        raise ApiError(422, "on_completion must be 'delete' or 'keep'.")
    command = body.get("command")
    if command is not None and not isinstance(command, dict):
        raise ApiError(422, "command must be an object with resume, update or goto.")
    modes = stream_mode if stream_mode is not None else _modes(body)
    config, context = _config(body, assistant)
    check_shaping(user, graph_name, config_and_context(body)[0])
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(422, "metadata must be an object.")
    interrupt_before = _nodes(body, "interrupt_before")
    interrupt_after = _nodes(body, "interrupt_after")
    stateless = thread_id is None
    if stateless and command and "resume" in command:
        raise ApiError(400, "You must provide a thread_id when resuming.")
    point = _point(body)
    temporary = stateless and on_completion == "delete"
    fields: dict[str, Any] = {
        "run_id": run_id or new_run_id(),
        "assistant_id": assistant_id,
        "multitask_strategy": strategy,
        # Every run publishes the modes it was made with, as on LangGraph's
        # server: a client may join its stream at any time.
        "stream_mode": modes,
        "stream_subgraphs": bool(body.get("stream_subgraphs")),
        "temporary": temporary,
        "interrupt_before": interrupt_before,
        "interrupt_after": interrupt_after,
    }
    if config or context is not None:
        fields["config"] = config
        fields["context"] = context
    echo = {
        "input": body.get("input"),
        "command": command,
        "config": config,
        "context": context or {},
        "stream_mode": modes,
        "resumable": bool(body.get("stream_resumable")),
        "durability": body.get("durability") or "async",
    }
    refused: _Committed | None = None
    # As LangGraph's server: the thread learns its graph and assistant (a new
    # one takes the run's metadata too), and the run's metadata is the
    # assistant's, the thread's, the config's and its own.
    ours = {"graph_id": graph_name, "assistant_id": assistant_id}
    with transaction.atomic():
        thread = None
        if not stateless:
            thread = Thread.objects.select_for_update().filter(pk=thread_id).first()
            if thread is None and if_not_exists != "create":
                raise ApiError(404, NOT_FOUND)
        created = thread is None
        if created:
            known = {**ours, **(config.get("metadata") or {}), **metadata}
            thread = Thread.objects.create(
                thread_id=str(stateless_thread_id or new_run_id()) if stateless else thread_id,
                graph_name=graph_name,
                metadata=known,
            )
        else:
            if not can_thread(user, VIEW, thread):
                raise ApiError(404, NOT_FOUND)
            if thread.graph_name and thread.graph_name != graph_name:
                raise ApiError(
                    409,
                    f"Thread {thread_id} runs the graph {thread.graph_name!r}, not {graph_name!r}.",
                )
            known = {**(thread.metadata or {}), **ours}
            if known != thread.metadata or thread.graph_name != graph_name:
                Thread.objects.filter(pk=thread.pk).update(metadata=known, graph_name=graph_name)
            _share_thread(request, thread, strategy)
        fields["metadata"] = {
            **(assistant.metadata or {}),
            **known,
            **(config.get("metadata") or {}),
            **metadata,
            "assistant_id": assistant_id,
        }
        try:
            if point and (created or point != thread.latest_checkpoint_id()):
                if command:
                    raise ApiError(
                        422,
                        "A command applies where the thread stands, not at a past checkpoint: "
                        "run from the checkpoint with input (or none), then send the command.",
                    )
                asked = Run(thread=thread, graph_name=graph_name, requested_by=user, **fields)
                fields["kwargs"] = _kwargs(asked, **echo)
                run = _from_point(request, thread, point, body.get("input"), fields)
            elif command and "resume" in command:
                run = _resume(request, thread, command, fields)
                run.kwargs = _kwargs(run, **echo)
                Run.objects.filter(pk=run.pk).update(kwargs=run.kwargs)
            else:
                if created:  # nothing to inherit: no earlier run's config to look up
                    fields.setdefault("config", {})
                    fields.setdefault("context", None)
                asked = Run(thread=thread, graph_name=graph_name, requested_by=user, **fields)
                fields["kwargs"] = _kwargs(asked, **echo)
                run = _start(
                    request, thread, graph_name, body.get("input"), command, fields, fresh=created
                )
        except _Committed as exc:
            refused = exc  # the decisions stand; answered after they commit
    if refused is not None:
        raise refused
    return run


def _point(body: dict[str, Any]) -> str:
    """The root checkpoint a run starts from (`checkpoint_id`, or `checkpoint`
    as an object), or "" for where the thread stands."""
    checkpoint = body.get("checkpoint") or {}
    if not isinstance(checkpoint, dict):
        raise ApiError(422, "checkpoint must be an object with a checkpoint_id.")
    if checkpoint.get("checkpoint_ns"):
        raise ApiError(422, "A run starts from a root checkpoint: checkpoint_ns must be empty.")
    return str(body.get("checkpoint_id") or checkpoint.get("checkpoint_id") or "")


def _from_point(
    request: HttpRequest, thread: Thread, point: str, input: Any, fields: dict[str, Any]
) -> Run:
    """A run from a past checkpoint, as LangGraph streams one: with no input
    it runs the graph again from there (a replay), with input it starts a
    new branch there. The old branch stays; both change what the thread
    does next, so they need the right to review it."""
    thread_for(request.user, thread.pk, REVIEW)
    if not Checkpoint.objects.filter(
        thread_id=thread.pk, checkpoint_ns="", checkpoint_id=point
    ).exists():
        raise ApiError(404, f"Checkpoint {point} not found on thread {thread.pk}.")
    try:
        if input is None:
            return run_actions.replay(
                thread, point, user=request.user, client_address=_client(request), **fields
            )
    except ActionRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    return run_actions.start(
        thread.graph_name,
        input,
        user=request.user,
        client_address=_client(request),
        thread_id=thread.pk,
        kind=Run.Kind.START,
        via="langgraph",
        checkpoint_id=point,
        **fields,
    )


def _share_thread(request: HttpRequest, thread: Thread, strategy: str) -> None:
    """Another run has the thread: refuse, stop it, or queue behind it."""
    active = list(
        Run.objects.select_for_update().filter(thread=thread, status__in=Run.ACTIVE).order_by("pk")
    )
    if not active or strategy == "enqueue":
        return
    if strategy == "reject":
        raise ApiError(409, BUSY)
    thread_for(request.user, thread.pk, REVIEW)  # stopping it overrules whoever asked for it
    for run in active:
        run_actions.cancel(run, user=request.user, client_address=_client(request))
        if strategy == "rollback":
            _roll_back(run)


def _roll_back(run: Run) -> None:
    """A run stopped by "rollback" goes, with the checkpoints it wrote (its
    worker discards any it writes while stopping)."""
    discard_checkpoints(run)
    Run.objects.filter(pk=run.pk).delete()


def _start(
    request: HttpRequest,
    thread: Thread,
    graph_name: str,
    input: Any,
    command: dict[str, Any] | None,
    fields: dict[str, Any],
    *,
    fresh: bool,
) -> Run:
    """A run with new input, a command without a resume (update, goto), or
    none (continue from where the thread stopped). At a static breakpoint
    the last is the reviewers' "continue", decided as they would. (`fresh`:
    the thread was made for this run, so nothing waits on it.)"""
    waiting = [] if fresh else list(ReviewTask.objects.pending().filter(thread_id=thread.pk))
    if command:
        kind, value = Run.Kind.COMMAND, {k: command.get(k) for k in ("update", "goto")}
    elif input is None and not fresh and Checkpoint.objects.filter(thread_id=thread.pk).exists():
        if waiting and all(t.shape == Shape.BREAKPOINT for t in waiting):
            return _decide(
                request, thread, waiting, {t.pk: {"type": "continue"} for t in waiting}, fields
            )
        kind, value = Run.Kind.CONTINUE, None
    else:
        kind, value = Run.Kind.START, input
    if waiting:
        # New input, or a command, moves the thread past its open questions.
        thread_for(request.user, thread.pk, REVIEW)
    return run_actions.start(
        graph_name,
        value,
        user=request.user,
        client_address=_client(request),
        thread_id=thread.pk,
        thread=thread,
        kind=kind,
        via="langgraph",
        **fields,
    )


def _resume(
    request: HttpRequest, thread: Thread, command: dict[str, Any], fields: dict[str, Any]
) -> Run:
    """`command.resume` answers the thread's open interrupt(s): a decision on
    their review tasks by the key's user. Nothing else rides on it: an update
    or a goto would change what was just decided, unseen by its reviewers."""
    extra = sorted(k for k in ("update", "goto") if command.get(k))  # RemoteGraph sends goto: []
    if extra:
        raise ApiError(
            422,
            f"A resume is a review decision and can't carry {' or '.join(extra)}: "
            "send them in a run of their own, judged as a change to the thread's state.",
        )
    waiting = list(
        ReviewTask.objects.pending()
        .filter(thread_id=thread.pk)
        .select_related("rule")
        .order_by("interrupt_id", "action_index")
    )
    if not waiting:
        raise ApiError(409, f"Thread {thread.pk} is not waiting for a resume: nothing is asked.")
    by_interrupt: dict[str, list[ReviewTask]] = {}
    # A breakpoint beside interrupts is no answer's to give: its calls keep
    # waiting for their reviewers, and the resume for them. Alone, a resume
    # continues it, as LangGraph's does.
    for task in [t for t in waiting if t.shape != Shape.BREAKPOINT] or waiting:
        by_interrupt.setdefault(task.interrupt_id, []).append(task)
    resume = command["resume"]
    if isinstance(resume, dict) and resume and set(resume) <= set(by_interrupt) - {""}:
        answers = resume
    elif len(by_interrupt) == 1:
        answers = {next(iter(by_interrupt)): resume}
    else:
        raise ApiError(
            422,
            "Several interrupts are waiting: resume with {interrupt_id: value} "
            f"for {', '.join(sorted(by_interrupt))}.",
        )
    decisions: dict[int, dict[str, Any]] = {}
    for interrupt_id, value in answers.items():
        decisions |= decisions_for(by_interrupt[interrupt_id], value)
    chosen = [t for t in waiting if t.pk in decisions]
    return _decide(request, thread, chosen, decisions, fields)


def _decide(
    request: HttpRequest,
    thread: Thread,
    tasks: list[ReviewTask],
    decisions: dict[int, dict[str, Any]],
    fields: dict[str, Any],
) -> Run:
    run = None
    by_interrupt: dict[str, list[ReviewTask]] = {}
    for task in tasks:
        by_interrupt.setdefault(task.interrupt_id, []).append(task)
    try:
        for group in by_interrupt.values():
            run = (
                task_actions.decide(
                    group, decisions, user=request.user, client_address=_client(request)
                )
                or run
            )
    except DecisionsInvalid as exc:
        raise ApiError(422, " ".join(f"Task {k}: {v}" for k, v in exc.errors.items())) from None
    except ActionRefused as exc:
        raise ApiError(409, str(exc)) from None
    if run is None:
        left = ReviewTask.objects.pending().filter(thread_id=thread.pk)
        needs = [t for t in tasks if t.pk in set(left.values_list("pk", flat=True))]
        if needs:
            raise _Committed(
                409,
                "Your approval is recorded; the graph resumes once "
                f"{needs[0].required_approvals} reviewers have approved.",
            )
        raise _Committed(
            409,
            "Your decision is recorded; the graph resumes once the other "
            "open requests of this step are decided.",
        )
    # The resume runs as the pages' would, under the thread's config; the
    # request names it, and may stop it again before or after a node.
    kept = {
        name: value
        for name, value in fields.items()
        if name not in ("config", "context")
        and (value or name not in ("interrupt_before", "interrupt_after"))
    }
    for name, value in kept.items():
        setattr(run, name, value)
    Run.objects.filter(pk=run.pk).update(**kept)
    return run


class _Committed(ApiError):
    """A refusal whose decisions stand: they were recorded (and audited)."""


def decisions_for(tasks: list[ReviewTask], value: Any) -> dict[int, dict[str, Any]]:
    """A resume value, in the shape the interrupt's payload expects, as the
    review decisions that give it (graphs.interrupts.decisions_in)."""
    try:
        found = decisions_in([t.as_request() for t in tasks], value)
    except DecisionError as exc:
        raise ApiError(422, str(exc)) from None
    return {t.pk: d for t, d in zip(tasks, found, strict=True)}


# -- views --------------------------------------------------------------------------


def _locations(thread_id: str | None, run: Run, tail: str) -> dict[str, str]:
    """Relative to the mount, as LangGraph's server gives them."""
    base = f"/threads/{run.thread_id}/runs/{run.run_id}" if thread_id else f"/runs/{run.run_id}"
    return {"Location": f"{base}{tail}", "Content-Location": base}


def create_view(request: HttpRequest, thread_id: str | None = None) -> HttpResponse:
    run = create(request, thread_id, payload(request))
    base = f"/threads/{thread_id}/runs/{run.run_id}" if thread_id else f"/runs/{run.run_id}"
    return respond(run_shape(run), headers={"Content-Location": base})


@before_waiting
def _create(request, thread_id, body, **kwargs) -> Run:
    return create(request, thread_id, body, **kwargs)


@before_waiting
def _keyed_create(request, thread_id, *, stream: bool = False, **kwargs) -> Run:
    """The key checked, then the run made, in one call to a request thread."""
    authenticate_or_refuse(request)
    body = payload(request)
    if stream:
        kwargs["stream_mode"] = _modes(body)
    return create(request, thread_id, body, **kwargs)


@sync_to_async
def _output(run: Run, status: str | None = None) -> dict[str, Any]:
    """output_of the run, which ended with `status` when its message said so."""
    if status is None or status == Run.Status.FAILED:
        run.refresh_from_db()  # its error, or its end as its row tells it
    else:
        run.status = status
    return output_of(run)


@before_waiting
def _current(run: Run) -> Run | None:
    return Run.objects.filter(pk=run.pk).select_related("requested_by").first()


@checks_key
async def wait_view(request: HttpRequest, thread_id: str | None = None) -> HttpResponse:
    run_id = new_run_id()
    stateless = thread_id is None
    temporary_id = new_run_id() if stateless else None
    async with RunListener(run_id) as listener:
        run = await _keyed_create(
            request,
            thread_id,
            run_id=run_id,
            stateless_thread_id=temporary_id,
        )
        output = RunOutput()
        ended = None
        async for message in listener.messages(run.pk):
            if message["type"] == "run.chunk":
                output.absorb(message["event"], message["data"])
            else:
                ended = message["status"]
        headers = _locations(run.thread_id, run, "/join")
        if stateless:
            return HttpResponse(output.body(), content_type="application/json", headers=headers)
        if ended in (Run.Status.INTERRUPTED, Run.Status.SUCCEEDED) and (
            streamed := output.values_where_stopped()
        ):
            # What LangGraph's server answers too; the saved state says the same.
            return HttpResponse(streamed, content_type="application/json", headers=headers)
        return respond(await _output(run, ended), headers=headers)


@checks_key
async def stream_view(request: HttpRequest, thread_id: str | None = None) -> HttpResponse:
    run_id = new_run_id()
    temporary_id = new_run_id() if thread_id is None else None
    listener = RunListener(run_id)
    await listener.__aenter__()
    try:
        run = await _keyed_create(
            request,
            thread_id,
            stream=True,
            run_id=run_id,
            stateless_thread_id=temporary_id,
        )
    except BaseException:
        await listener.__aexit__(None, None, None)
        raise
    on_disconnect = payload(request).get("on_disconnect") or "continue"
    headers = _locations(thread_id, run, "/stream")
    return _sse_response(_relay(request, listener, run, on_disconnect == "cancel"), headers)


def _sse_response(events: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    for name, value in headers.items():
        response[name] = value
    return response


async def _relay(
    request: HttpRequest, listener: RunListener, run: Run, cancel_on_disconnect: bool
) -> AsyncIterator[bytes]:
    """The run's events as SSE, opening with its metadata at once (the
    worker's own, for its first attempt, goes to clients that join); closes
    only once the run has stopped, so the client reads it as finished."""
    ended = False
    resumable = bool((run.kwargs or {}).get("resumable"))
    opening = {"run_id": str(run.run_id), "attempt": 1}
    try:
        yield sse_json("metadata", opening, metadata_id(run) if resumable else None)
        async for message in listener.messages(run.pk):
            if message["type"] != "run.chunk":
                continue
            if message["event"] == "metadata" and orjson.loads(message["data"]) == opening:
                continue
            yield sse(message["event"], message["data"], message.get("id"))
        ended = True
    finally:
        await listener.__aexit__(None, None, None)
        if not ended and cancel_on_disconnect:
            await _cancel_quietly(request, run)


@sync_to_async
def _cancel_quietly(request: HttpRequest, run: Run) -> None:
    run.refresh_from_db()
    if run.status in Run.ACTIVE:
        with contextlib.suppress(ActionRefused):
            run_actions.cancel(run, user=request.user, client_address=_client(request))


# -- an existing run -------------------------------------------------------------------


def _run_for(
    request: HttpRequest,
    thread_id: str,
    run_id: str,
    action: str = VIEW,
    missing: str = "Not Found",
) -> Run:
    try:
        wanted = uuid.UUID(str(run_id))
    except ValueError:
        raise ApiError(422, "Invalid run ID: must be a UUID") from None
    thread_for(request.user, thread_id, action)
    run = (
        Run.objects.filter(thread_id=thread_id, run_id=wanted)
        .select_related("requested_by")
        .first()
    )
    if run is None:
        raise ApiError(404, missing)
    return run


def get_view(request: HttpRequest, thread_id: str, run_id: str) -> HttpResponse:
    return respond(run_shape(_run_for(request, thread_id, run_id)))


def delete_view(request: HttpRequest, thread_id: str, run_id: str) -> HttpResponse:
    run = _run_for(request, thread_id, run_id, REVIEW, missing="Run not found")
    run_actions.delete(run, user=request.user, client_address=_client(request))
    return HttpResponse(status=204)


def list_view(request: HttpRequest, thread_id: str) -> HttpResponse:
    thread_for(request.user, thread_id)
    try:
        limit = int(request.GET.get("limit", 10))
        offset = int(request.GET.get("offset", 0))
    except ValueError:
        raise ApiError(422, "limit and offset must be integers.") from None
    runs = Run.objects.filter(thread_id=thread_id).select_related("requested_by").order_by("-pk")
    if status := request.GET.get("status"):
        wanted = [ours for ours, theirs in STATUS.items() if theirs == status]
        runs = runs.filter(status__in=wanted)
    return respond([run_shape(r) for r in runs[offset : offset + max(limit, 0)]])


def cancel_view(request: HttpRequest, thread_id: str, run_id: str) -> HttpResponse:
    run = _run_for(request, thread_id, run_id, REVIEW, missing="No runs found to cancel.")
    action = request.GET.get("action", "interrupt")
    if run.status not in Run.ACTIVE:
        raise ApiError(404, "No runs found to cancel.")
    with transaction.atomic():
        run_actions.cancel(run, user=request.user, client_address=_client(request))
        if action == "rollback":
            _roll_back(run)
    if request.GET.get("wait", "false").lower() in ("true", "yes", "1"):
        return respond(output_of(run) if action != "rollback" else {})
    return HttpResponse(status=202)


def batch_view(request: HttpRequest) -> HttpResponse:
    """Stateless background runs, one per payload of the list."""
    try:
        asked = orjson.loads(request.body or b"[]")
    except orjson.JSONDecodeError as exc:
        raise ApiError(422, f"Invalid JSON body: {exc}") from None
    if not isinstance(asked, list) or not all(isinstance(b, dict) for b in asked):
        raise ApiError(422, "The request body must be a list of run payloads.")
    with transaction.atomic():
        made = [create(request, None, body) for body in asked]
    return respond([run_shape(run) for run in made])


def cancel_many_view(request: HttpRequest) -> HttpResponse:
    """Cancel runs named by thread and ids, or every run with a status
    ("pending", "running" or "all") that the key's user may cancel."""
    body = payload(request)
    action = request.GET.get("action", "interrupt")
    status = (body.get("status") or "").lower()
    if status:
        if status not in ("pending", "running", "all"):
            raise ApiError(422, "Invalid status: must be 'pending', 'running', or 'all'")
        if body.get("thread_id") or body.get("run_ids"):
            raise ApiError(
                422,
                "When providing a 'status', 'thread_id' and 'run_ids' must be omitted. The "
                "'status' parameter cancels all runs with the given status, regardless of "
                "thread or run ID.",
            )
        wanted = {
            "pending": [Run.Status.QUEUED],
            "running": [Run.Status.RUNNING],
            "all": list(Run.ACTIVE),
        }[status]
        runs = [
            run
            for run in Run.objects.filter(status__in=wanted).select_related("thread")
            if can_thread(request.user, REVIEW, run.thread)
        ]
    else:
        thread_id = body.get("thread_id")
        ids = body.get("run_ids") or []
        if not isinstance(thread_id, str) or not isinstance(ids, list):
            raise ApiError(422, "Give thread_id and run_ids, or a status.")
        runs = [_run_for(request, thread_id, run_id, REVIEW) for run_id in ids]
    with transaction.atomic():
        for run in runs:
            if run.status in Run.ACTIVE:
                run_actions.cancel(run, user=request.user, client_address=_client(request))
                if action == "rollback":
                    _roll_back(run)
    return HttpResponse(status=204)


async def join_view(request: HttpRequest, thread_id: str, run_id: str) -> HttpResponse:
    run = await before_waiting(_run_for)(request, thread_id, run_id)
    async with RunListener(run.run_id) as listener:
        current = await _current(run)
        if current is not None and current.status not in DONE:
            async for _ in listener.messages(run.pk):
                pass
    return respond(await _output(run), headers=_locations(thread_id, run, "/join"))


async def join_stream_view(request: HttpRequest, thread_id: str, run_id: str) -> HttpResponse:
    """The run's stream from the moment one joins, as LangGraph's server
    relays it: the events of the modes the run was made with (those of
    `stream_mode` among them, when given), until the run ends. A client back
    from a dropped resumable stream names the last event it saw in
    Last-Event-ID and gets every event after it first."""
    cancel = request.GET.get("cancel_on_disconnect", "false").lower() in ("true", "yes", "1")
    # Leaving cancels the run: only someone who may stop it can ask for that.
    run = await before_waiting(_run_for)(request, thread_id, run_id, REVIEW if cancel else VIEW)
    after = None
    if last_event_id := request.headers.get("Last-Event-ID", "").strip():
        after = seq_of(last_event_id)
        if after is None:
            raise ApiError(422, "Invalid last-event-id: must be a valid Redis stream ID")
    wanted = _join_modes(request)
    listener = RunListener(run.run_id)
    await listener.__aenter__()
    try:
        await _stream_if_queued(run, wanted or ["values"])
        current = await _current(run)
        missed = []
        if current is not None and after is not None and (current.kwargs or {}).get("resumable"):
            missed = await kept_events(current, after)
    except BaseException:
        await listener.__aexit__(None, None, None)
        raise
    headers = _locations(thread_id, run, "/stream")
    if current is None or current.status in DONE:
        await listener.__aexit__(None, None, None)
        listener = None
    return _sse_response(
        _joined(request, listener, current or run, wanted, after, missed, cancel), headers
    )


def _join_modes(request: HttpRequest) -> list[str] | None:
    """The modes asked for (`stream_mode`, one or a JSON list); None for all the run's."""
    asked = [
        mode for mode in request.GET.getlist("stream_mode") if mode
    ]  # the SDK sends "" for none
    if len(asked) == 1 and asked[0].startswith("["):
        with contextlib.suppress(orjson.JSONDecodeError):
            asked = orjson.loads(asked[0])
    return _modes({"stream_mode": asked}) if asked else None


def _wanted(event: str, modes: list[str] | None) -> bool:
    """Whether a joined stream relays an event of this name, as LangGraph's
    server filters them: every event when no modes were asked, else those of
    the modes asked ("messages" and "messages-tuple" take every messages
    event; a subgraph's "updates|child:1" goes with "updates")."""
    if not modes or event in modes:
        return True
    if event.startswith("messages") and ("messages" in modes or "messages-tuple" in modes):
        return True
    return event.partition("|")[0] in modes


@before_waiting
def _stream_if_queued(run: Run, modes: list[str]) -> None:
    """A run nobody asked to stream (one made from the pages) streams the
    modes of the first client to join it: all of them if no worker has
    claimed it yet (the claim reads the row as this leaves it); if it is
    running, its values and updates (what its worker can still give), from
    its next step on."""
    if run.stream_mode:
        return
    silent = Run.objects.filter(pk=run.pk, stream_mode=[])
    if silent.filter(status=Run.Status.QUEUED).update(stream_mode=modes):
        return
    live = [mode for mode in modes if mode in ("values", "updates")]
    if live and silent.filter(status=Run.Status.RUNNING).update(stream_mode=live):
        stream_held(run._state.db or "default", run.pk)  # this process's worker (`serve`)
        events.stream_run(run)  # any other's


async def _joined(
    request: HttpRequest,
    listener: RunListener | None,
    run: Run,
    modes: list[str] | None,
    after: int | None,
    missed: list[tuple[int, str, str, str]],
    cancel_on_disconnect: bool,
) -> AsyncIterator[bytes]:
    """What a resumable run sent after the client's last event, then its live
    events (heard since before the kept ones were read: those already sent
    from the kept ones are skipped), until it ends."""
    ended = False
    seen = after or 0
    try:
        # An SSE comment, which clients skip: daphne sends a response's headers
        # with its first bytes, and a client that joined hears at once that
        # the server follows the run for it.
        yield JOINED
        for seq, event, data, event_id in missed:
            seen = seq
            if _wanted(event, modes):
                yield sse(event, data, event_id)
        if listener is not None:
            async for message in listener.messages(run.pk):
                if message["type"] != "run.chunk":
                    continue
                event_id = message.get("id")
                if event_id is not None and (seq_of(event_id) or 0) <= seen:
                    continue
                if _wanted(message["event"], modes):
                    yield sse(message["event"], message["data"], event_id)
        ended = True
    finally:
        if listener is not None:
            await listener.__aexit__(None, None, None)
        if not ended and cancel_on_disconnect:
            await _cancel_quietly(request, run)
