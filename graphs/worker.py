"""Executes runs: claim a queued row, drive the graph, record how it stopped.

The database row is the truth. A worker holds a run under a lease that a
heartbeat thread renews; if the worker dies, the lease expires, a sweep puts
the run back in the queue, and whoever claims it next continues from the last
checkpoint the run wrote (found by the run id in checkpoint metadata), rather
than sending its input or resume value a second time. A run cancelled while
running is stopped before its next step: at once when the cancel is made in
this process or reaches it through the workers group (graphs.consumers),
else when its next renewal fails. The worker records nothing and lets the
thread go (Run.cancel, Run.free_thread).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import queue
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from django.db import connections, transaction
from django.db.models import Q
from django.dispatch import receiver
from langgraph.checkpoint.base import ERROR, RESUME
from langgraph.pregel import Pregel
from langgraph.types import Command, Send

from graphs import events
from graphs.checkpoint import DjangoCheckpointSaver
from graphs.interrupts import json_safe, pending_requests
from graphs.loop import graph_loop
from graphs.models import Checkpoint, CheckpointWrite, Run, Thread
from graphs.registry import get_registry
from graphs.run_settings import without_langgraphs_own
from graphs.signals import run_finished, run_interrupted

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)
# Checkpoint metadata the dashboard writes itself starts with this; the key
# naming the run that wrote a checkpoint is one.
OWN_METADATA_PREFIX = "hitl_"
RUN_KEY = OWN_METADATA_PREFIX + "run"
# The key of an "updates" chunk that carries interrupts (LangGraph keeps its
# own constant private).
INTERRUPT = "__interrupt__"
# The stream mode of astream_events' events, as LangGraph's server names it.
EVENTS = "events"


_SAVER = DjangoCheckpointSaver()


@functools.cache
def _compiled(config_path: str, graph_name: str):
    return get_registry().get(graph_name).compile(_SAVER)


def compiled_graph(graph_name: str):
    """A graph compiled once per process (and per graphs config); runtime
    breakpoints are passed per run, so one compiled graph serves every run."""
    return _compiled(str(get_registry().config_path), graph_name)


@functools.cache
def _takes_config(config_path: str, graph_name: str) -> bool:
    return get_registry().get(graph_name).takes_config


def builds_from_config(graph_name: str) -> bool:
    """Whether the graph is built by a factory from each run's config."""
    return _takes_config(str(get_registry().config_path), graph_name)


def graph_for_run(graph_name: str, config: dict[str, Any]):
    """The graph a run drives: a factory that takes a config is built from
    the run's own (as LangGraph's server does); any other graph is built once."""
    if _takes_config(str(get_registry().config_path), graph_name):
        return get_registry().get(graph_name).compile(_SAVER, config=config)
    return compiled_graph(graph_name)


@functools.cache
def _has_subgraphs(config_path: str, graph_name: str) -> bool:
    return any(True for _ in compiled_graph(graph_name).get_subgraphs(recurse=False))


def streams_subgraphs(graph_name: str) -> bool:
    """Whether runs stream from inside subgraphs: LangGraph then hands every
    step's output to a waiter thread, which costs a graph without subgraphs
    a fifth of its run time for nothing."""
    return _has_subgraphs(str(get_registry().config_path), graph_name)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseLost(RuntimeError):
    """Another worker owns the run now (our lease expired) or it was cancelled."""


class _Heartbeat(threading.Thread):
    """Renews the lease of the run its worker is executing, whichever that is:
    one thread serves a worker's whole batch of runs, not one per run."""

    def __init__(self, worker_id: str, lease: timedelta):
        super().__init__(name=f"lease-{worker_id}", daemon=True)
        self.worker_id, self.lease = worker_id, lease
        self.lock = threading.Lock()
        self.current: Run | None = None
        self.renewed_at = time.monotonic()
        self.stopped = threading.Event()
        self.must_stop = threading.Event()
        # A client joined the stream of a run that streamed to nobody.
        self.stream_asked = threading.Event()

    def hold(self, run: Run | None) -> None:
        with self.lock:
            previous, self.current = self.current, run
            self.renewed_at = time.monotonic()  # the claim took the lease
            self.must_stop.clear()
            self.stream_asked.clear()
        with _held_lock:
            if previous is not None:
                _held.pop(_key(previous), None)
            if run is not None:
                _held[_key(run)] = self

    def stop_run(self, database: str, run_id: int) -> None:
        """The run was cancelled: stop at the next step."""
        with self.lock:
            if self.current is not None and _key(self.current) == (database, run_id):
                self.must_stop.set()

    def stream_run(self, database: str, run_id: int) -> None:
        """A client joined the run: relay its stream from the next step."""
        with self.lock:
            if self.current is not None and _key(self.current) == (database, run_id):
                self.stream_asked.set()

    def run(self) -> None:
        lease = self.lease.total_seconds()
        wait = lease / 3
        while not self.stopped.wait(wait):
            wait = lease / 3
            with self.lock:
                run = self.current
            if run is None:
                continue
            try:
                kept = run.renew_lease(self.worker_id, self.lease)
            except Exception:
                # A locked or lost database: try again soon. Once the lease
                # may run out before the next try, another worker may take
                # the run, so this one stops it rather than run it twice.
                log.warning("could not renew the lease of run %s", run.pk, exc_info=True)
                wait = lease / 9
                with self.lock:
                    if self.current is run and time.monotonic() - self.renewed_at >= lease * 2 / 3:
                        self.must_stop.set()
                continue
            finally:
                # Its own, opened for the renewal: a worker's heartbeat lasts
                # as long as the process, and holds none while it waits.
                connections.close_all()
            with self.lock:
                if self.current is not run:  # a run that has just finished
                    continue
                if kept:
                    self.renewed_at = time.monotonic()
                else:
                    self.must_stop.set()

    def __enter__(self) -> _Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.join()


def _key(run: Run) -> tuple[str, int]:
    return (run._state.db or "default", run.pk)


# The runs this process is executing. A cancel made in this process (the
# embedded server, where pages and worker share it), or announced to every
# worker process (graphs.consumers), stops its run at the next step instead
# of at the next lease renewal.
_held: dict[tuple[str, int], _Heartbeat] = {}
_held_lock = threading.Lock()


def stop_held(database: str, run_id: int) -> None:
    """A run was cancelled: if this process is executing it, stop it before
    its next step."""
    with _held_lock:
        heartbeat = _held.get((database, run_id))
    if heartbeat is not None:
        heartbeat.stop_run(database, run_id)


def stream_held(database: str, run_id: int) -> None:
    """A client joined the stream of a run made to stream nothing (from the
    pages): if this process is executing it, it relays from its next step
    the modes the row now names."""
    with _held_lock:
        heartbeat = _held.get((database, run_id))
    if heartbeat is not None:
        heartbeat.stream_run(database, run_id)


@receiver(run_finished, dispatch_uid="graphs.worker.stop_cancelled")
def _stop_cancelled(sender, run: Run, status: str, **kwargs) -> None:
    if status == Run.Status.CANCELLED:
        stop_held(*_key(run))


def run_config(run: Run) -> dict[str, Any]:
    """LangGraph's config for a run: what the run asked for (configurable
    values, recursion_limit, tags, metadata) over what the graph was
    compiled with (`with_config`), with the thread and the run's own key."""
    asked = run.config or {}
    # Whatever way a run was asked for, LangGraph's own keys are never the
    # asker's: a resume map among them would answer interrupts unreviewed.
    configurable = {
        **without_langgraphs_own(asked.get("configurable") or {}),
        "thread_id": run.thread_id,
    }
    if run.assistant_id:
        # Asked through the Agent Server API: the graph reads these as
        # LangGraph's server gives them.
        configurable |= {
            "run_id": str(run.run_id),
            "graph_id": run.graph_name,
            "assistant_id": run.assistant_id,
        }
    config: dict[str, Any] = {
        **{k: v for k, v in asked.items() if k in ("recursion_limit", "tags", "run_name")},
        "configurable": configurable,
        # The Agent Server API's run metadata (graph_id, assistant_id...) too,
        # as LangGraph's server passes it to the graph and its checkpoints.
        # Never the dashboard's own keys (which run, who edited the state):
        # pages trust them to say who did what.
        "metadata": {
            **{
                key: value
                for key, value in {**(asked.get("metadata") or {}), **(run.metadata or {})}.items()
                if not str(key).startswith(OWN_METADATA_PREFIX)
            },
            RUN_KEY: run.pk,
        },
    }
    return config


def runs_on_loop(graph) -> bool:
    """Whether the graph needs LangGraph's async path: a node is `async def`,
    or a tool node holds a tool with only an async body (as MCP adapters make
    them), here or in a subgraph. Graphs that need not keep the sync
    `stream`, which costs a run about 3 ms less (thread hops per step)."""
    if getattr(graph, "_hitl_runs_on_loop", None) is None:
        graph._hitl_runs_on_loop = any(_async_only(node.bound) for node in graph.nodes.values())
    return graph._hitl_runs_on_loop


def _async_only(runnable: Any) -> bool:
    if isinstance(runnable, Pregel):
        return runs_on_loop(runnable)
    if getattr(runnable, "afunc", None) is not None and getattr(runnable, "func", 1) is None:
        return True
    tools = getattr(runnable, "tools_by_name", None) or {}
    return any(
        getattr(tool, "coroutine", None) is not None and getattr(tool, "func", 1) is None
        for tool in tools.values()
    )


def stream_on_loop(graph, *args: Any, **kwargs: Any) -> Iterator[Any]:
    """LangGraph's `astream` on the graphs' loop, as LangGraph's own server
    drives runs (so `async def` nodes and async tools run, and sync nodes run
    on LangGraph's threads), handed to this thread chunk by chunk.

    The graph waits for each chunk to be handled here before it goes on: a
    run that must stop (cancelled, its lease lost) stops before its next
    step, as it would under the sync `stream`. Leaving the loop early
    cancels the graph's task."""
    return _pump_on_loop(lambda: graph.astream(*args, **kwargs))


def events_on_loop(graph, *args: Any, run_id: str, subgraphs: bool, **kwargs: Any):
    """LangGraph's `astream_events` (version v2) on the graphs' loop, for a
    client streaming the "events" mode, as LangGraph's server does it: the
    root run's own stream chunks come out as `stream` would give them, every
    other event as ("events", event)."""

    async def chunks():
        async for event in graph.astream_events(*args, version="v2", subgraphs=subgraphs, **kwargs):
            if "langsmith:hidden" in (event.get("tags") or ()):
                continue
            if event["event"] == "on_chain_stream" and event["run_id"] == run_id:
                yield event["data"]["chunk"]
            else:
                yield ((), EVENTS, event) if subgraphs else (EVENTS, event)

    return _pump_on_loop(chunks)


def _pump_on_loop(chunks: Callable[[], Any]) -> Iterator[Any]:
    loop = graph_loop()
    handoff: queue.SimpleQueue[tuple[str, Any, asyncio.Future | None]] = queue.SimpleQueue()

    async def pump() -> None:
        try:
            async for chunk in chunks():
                handled = loop.create_future()
                handoff.put(("chunk", chunk, handled))
                await handled
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the run's failure, raised again in the worker
            handoff.put(("error", exc, None))
        else:
            handoff.put(("done", None, None))

    task = asyncio.run_coroutine_threadsafe(pump(), loop)
    try:
        while True:
            kind, item, handled = handoff.get()
            if kind == "error":
                raise item
            if kind == "done":
                return
            yield item
            loop.call_soon_threadsafe(_resolve, handled)
    finally:
        task.cancel()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class _ClientStream:
    """Relays a run's stream to the clients streaming it (the Agent Server
    API's SSE), in the events LangGraph's server sends for the modes they
    asked for: "messages-tuple" as "messages" events of [message, metadata],
    "messages" as messages/metadata, /partial and /complete, debug
    checkpoints with their "checkpoint" ids, a subgraph's events named
    "mode|namespace" when subgraphs were asked for, and the rest as LangGraph
    streams them. Only runs someone streams pay for any of it."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.asked = set(run.stream_mode)
        self.subgraphs = run.stream_subgraphs
        self.events = EVENTS in self.asked
        self.tuples = "messages-tuple" in self.asked
        self.messages: dict[str, Any] = {}
        # A resumable stream's events are kept, each before it is sent, so a
        # client that comes back gets those it missed (agent_server.streaming).
        self.kept = None
        if (run.kwargs or {}).get("resumable"):
            from agent_server.streaming import KeptStream

            self.kept = KeptStream(run)

    @property
    def graph_modes(self) -> list[str]:
        """What the graph streams, besides the worker's own updates and checkpoints."""
        modes = self.asked - {EVENTS, "messages-tuple", "updates", "checkpoints"}
        if self.tuples:
            modes.add("messages")
        return sorted(modes)

    def started(self) -> None:
        """The event a run's stream opens with as its worker starts it, as
        LangGraph's server sends it (a client that joins later never sees it)."""
        data = {"run_id": str(self.run.run_id), "attempt": self.run.attempts}
        # The first attempt's is the one the request that made the run sent.
        at = self.run.created_at if self.run.attempts == 1 else None
        self.send("metadata", (), data, at=at)

    def relay(self, namespace: tuple[str, ...], mode: str, data: Any) -> None:
        if namespace and not self.subgraphs:
            return
        if mode == "debug" and isinstance(data, dict) and data.get("type") == "checkpoint":
            data = {**data, "payload": _debug_checkpoint(data["payload"])}
        if mode == "messages":
            if self.tuples:
                self.send("messages", namespace, data)
            elif "messages" in self.asked:
                self.message_parts(namespace, data)
        elif mode in self.asked:
            self.send(mode, namespace, data)

    def send(self, mode: str, namespace: tuple[str, ...], data: Any, at: Any = None) -> None:
        event = f"{mode}|{'|'.join(namespace)}" if namespace else mode
        payload = orjson.dumps(json_safe(data)).decode()
        event_id = self.kept.keep(event, payload, at) if self.kept is not None else None
        events.publish_chunk(self.run, event, payload, event_id=event_id)

    def message_parts(self, namespace: tuple[str, ...], data: Any) -> None:
        """LangGraph's server's "messages" mode: a message's metadata once,
        then the message so far at each chunk."""
        from langchain_core.messages import BaseMessageChunk, message_chunk_to_message

        message, metadata = data
        if message.id in self.messages:
            self.messages[message.id] += message
        else:
            self.messages[message.id] = message
            self.send("messages/metadata", namespace, {message.id: {"metadata": metadata}})
        whole = self.messages[message.id]
        if isinstance(message, BaseMessageChunk):
            self.send("messages/partial", namespace, [whole])
        else:
            self.send("messages/complete", namespace, [message_chunk_to_message(whole)])

    def failed(self, exc: BaseException) -> None:
        self.send("error", (), {"error": type(exc).__name__, "message": str(exc)})


def _joined_client(run: Run) -> _ClientStream | None:
    """The stream of a run a client joined while it ran, in the modes the
    join wrote on its row (agent_server.runs)."""
    run.stream_mode = (
        Run.objects.filter(pk=run.pk).values_list("stream_mode", flat=True).first() or []
    )
    return _ClientStream(run) if run.stream_mode else None


def _checkpoint_of(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A config's checkpoint as LangGraph's server names one."""
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("thread_id") or not configurable.get("checkpoint_id"):
        return None
    checkpoint = {
        "checkpoint_id": configurable["checkpoint_id"],
        "thread_id": configurable["thread_id"],
    }
    if "checkpoint_ns" in configurable:
        checkpoint["checkpoint_ns"] = configurable["checkpoint_ns"] or ""
    if "checkpoint_map" in configurable:
        checkpoint["checkpoint_map"] = configurable["checkpoint_map"]
    return checkpoint


def _debug_checkpoint(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    if not payload:
        return None
    tasks = []
    for task in payload.get("tasks") or ():
        state = task.get("state")
        if isinstance(state, dict) and state.get("configurable"):
            task = {**{k: v for k, v in task.items() if k != "state"}}
            task["checkpoint"] = state["configurable"]
        tasks.append(task)
    return {
        **payload,
        "checkpoint": _checkpoint_of(payload.get("config")),
        "parent_checkpoint": _checkpoint_of(payload.get("parent_config")),
        "tasks": tasks,
    }


def _progress_made(run: Run) -> bool:
    """Whether an earlier attempt of this run already wrote checkpoints."""
    return Checkpoint.objects.filter(
        thread_id=run.thread_id, **{f"metadata__{RUN_KEY}": run.pk}
    ).exists()


class ThreadMovedOn(RuntimeError):
    """The thread no longer stands where the run was asked: another run
    moved it (and may have stopped it for review) in between."""


# Runs that go on from where the thread stands, as it stood when asked.
_GOES_ON = (Run.Kind.CONTINUE, Run.Kind.RESUME, Run.Kind.COMMAND)


def _graph_input(run: Run, graph, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What to stream, and with which config, for this attempt."""
    if run.attempts > 1 and _progress_made(run):
        return None, config  # continue from the run's own last checkpoint
    if run.kind in _GOES_ON and run.checkpoint_id:
        # Judged where it was asked: a run queued behind another that then
        # stopped for review would otherwise pass that review unasked.
        latest = Thread(pk=run.thread_id).newest_checkpoint_id()
        if latest != run.checkpoint_id:
            raise ThreadMovedOn(
                f"The thread moved on after this run was asked (from checkpoint "
                f"{run.checkpoint_id} to {latest}): decide what it waits for now, "
                "or ask again."
            )
    if run.kind == Run.Kind.START and run.checkpoint_id:  # new input at a past point: a branch
        return run.payload or {}, _at(config, run.checkpoint_id)
    if run.kind == Run.Kind.START:
        return run.payload or {}, config
    if run.kind == Run.Kind.RESUME:
        payload = run.payload or {}
        if "by_interrupt_id" not in payload:  # queued by an earlier version
            return _command({}, resume=payload.get("value")), config
        return _command({}, resume=_still_waiting(config, payload["by_interrupt_id"])), config
    if run.kind == Run.Kind.COMMAND:
        return _command(run.payload or {}), config
    if run.kind == Run.Kind.REPLAY:
        return None, _at(config, run.checkpoint_id)
    return None, config  # CONTINUE


def _still_waiting(config: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The answers whose interrupts still wait. An attempt of this run cut
    short (its worker lost, or a cancel that came late) may have passed some
    and stopped at the node's next question, which writes no checkpoint; and
    LangGraph hands an answer given for a task's first interrupt to the
    task's next one, so an answer already taken is never sent again. A task
    saves its answers with its next interrupt, in one write."""
    saved = _SAVER.get_tuple(config)
    writes = (saved.pending_writes or []) if saved else []
    waiting = {
        interrupt.id
        for _, channel, value in writes
        if channel == INTERRUPT
        for interrupt in (value if isinstance(value, list | tuple) else [value])
    }
    return {interrupt_id: a for interrupt_id, a in answers.items() if interrupt_id in waiting}


def _breakpoints(run: Run, graph: Any) -> dict[str, Any]:
    """The run's interrupt_before/after, when they differ from the graph's:
    the deployer's own (as the graph is built for every run) with the run's
    beside them. A factory built from the run's config keeps the breakpoints
    its default build has, whatever that config made of it."""
    kwargs: dict[str, Any] = {}
    own = compiled_graph(run.graph_name)
    default = own if graph is not own else None
    for name, asked in (("before", run.interrupt_before), ("after", run.interrupt_after)):
        built = getattr(graph, f"interrupt_{name}_nodes")
        nodes = built
        if default is not None:
            nodes = _also(getattr(default, f"interrupt_{name}_nodes"), nodes)
        if asked:
            nodes = _also(nodes, asked)
        if nodes != built:
            kwargs[f"interrupt_{name}"] = nodes
    return kwargs


def _also(compiled: Any, asked: Any) -> Any:
    """A run's breakpoints beside the graph's own. LangGraph lets a run's list
    replace the compiled one, but a compiled breakpoint is where its deployer
    asks for review (before a tools node): no run may take it away."""
    if compiled == "*" or asked == "*" or "*" in asked:  # /langgraph/ keeps "*" as ["*"]
        return "*"
    return [*compiled, *(node for node in asked if node not in compiled)]


def _at(config: dict[str, Any], checkpoint_id: str) -> dict[str, Any]:
    return {**config, "configurable": {**config["configurable"], "checkpoint_id": checkpoint_id}}


def _command(asked: dict[str, Any], **resume: Any) -> Command:
    """A command as LangGraph's server reads one: `goto` a node, a list of
    them, or Send-like {"node", "input"}; `update` values, or [key, value] pairs."""
    goto = asked.get("goto")
    if goto is not None and not isinstance(goto, list):
        goto = [goto]
    update = asked.get("update")
    if isinstance(update, list) and all(
        isinstance(t, list | tuple) and len(t) == 2 and isinstance(t[0], str) for t in update
    ):
        update = [tuple(t) for t in update]
    return Command(
        update=update,
        goto=[g if isinstance(g, str) else Send(g["node"], g["input"]) for g in goto]
        if goto
        else (),
        **resume,
    )


@dataclass(frozen=True)
class _Stopped:
    """The parts of a state snapshot that say where a run stopped."""

    config: dict[str, Any]
    interrupts: tuple[Any, ...]
    next: tuple[str, ...]
    # Interrupt id -> (node, namespace): the step's one task asked them.
    origins: dict[str, tuple[str, str]]
    # The state's channels there: at a breakpoint, the calls the next node runs.
    values: Any = None


class _StopSeen:
    """Where the run stopped, as its own stream told it: the root graph's
    last checkpoint and the interrupts raised after it. Reading the state
    back costs a query and a rebuild of the snapshot, on the way from
    interrupt() to the reviewers; the stream already said all of it."""

    def __init__(self, *, from_input: bool) -> None:
        # A run without new input (a resume, a continue, a replay) first
        # streams the checkpoint it starts from, which another run wrote.
        self.loaded = 0 if from_input else 1
        self.seen = 0
        self.checkpoint: dict[str, Any] | None = None
        self.raised: list[tuple[Any, ...]] = []
        self.nested = False

    def checkpointed(self, data: dict[str, Any]) -> None:
        self.checkpoint, self.raised = data, []
        self.seen += 1

    def interrupted(self, interrupts: tuple[Any, ...], *, nested: bool = False) -> None:
        if nested:
            self.nested = True  # asked inside a subgraph: its namespace is in the saved state
        else:
            self.raised.append(tuple(interrupts))

    @property
    def new_checkpoint(self) -> bool:
        """Whether the run stopped at a checkpoint it wrote itself: nothing
        can have been asked at one yet."""
        return self.seen > self.loaded

    def snapshot(self) -> _Stopped | None:
        """None when only the saved state can tell: no root checkpoint was
        streamed, or several tasks raised interrupts at once (get_state puts
        them in the graph's task order; the stream, in the order they ended)."""
        if self.checkpoint is None or len(self.raised) > 1:
            return None
        interrupts = self.raised[0] if self.raised else ()
        tasks = self.checkpoint.get("tasks") or ()
        if not interrupts and tasks:
            # A breakpoint: the calls continuing would run may be a stopped
            # subgraph's, in its own state, which only get_state reads.
            return None
        if interrupts and (self.nested or len(tasks) != 1):
            return None  # which task asked which is for get_state to say
        node = tasks[0]["name"] if interrupts else ""
        return _Stopped(
            config=self.checkpoint["config"],
            interrupts=interrupts,
            next=tuple(self.checkpoint["next"]),
            origins={i.id: (node, "") for i in interrupts},
            values=self.checkpoint.get("values"),
        )


def execute(
    run: Run, worker_id: str, *, lease: timedelta = LEASE, heartbeat: _Heartbeat | None = None
) -> str:
    """Drive one claimed run to its next stop; returns the status it ended in."""
    if heartbeat is None:
        with _Heartbeat(worker_id, lease) as heartbeat:
            return execute(run, worker_id, lease=lease, heartbeat=heartbeat)
    heartbeat.hold(run)
    stop: _StopSeen | None = None
    client: _ClientStream | None = None
    try:
        config = run_config(run)
        graph = graph_for_run(run.graph_name, config)
        stream_input, stream_config = _graph_input(run, graph, config)
        kwargs: dict[str, Any] = {}
        if run.context is not None:
            kwargs["context"] = run.context
        kwargs |= _breakpoints(run, graph)
        subgraphs = streams_subgraphs(run.graph_name)
        # Nodes that wrote since the last checkpoint, per namespace: a
        # checkpoint holds the writes of the updates streamed before it.
        written: dict[tuple[str, ...], list[str]] = {}
        stop = _StopSeen(
            from_input=stream_input is not None and not isinstance(stream_input, Command)
        )
        stream = functools.partial(stream_on_loop, graph) if runs_on_loop(graph) else graph.stream
        modes = ["updates", "checkpoints"]
        client = _ClientStream(run) if run.stream_mode else None
        if client is None:
            # For a client that joins while it runs (stream_held); sent to
            # none unless one does.
            modes.append("values")
        else:
            client.started()
            modes += client.graph_modes
            if client.events:
                # astream_events names the root run by the run's own id, and
                # the graph as LangGraph's server does: by its graph id.
                stream_config = {
                    "run_name": run.graph_name,
                    **stream_config,
                    "run_id": run.run_id,
                }
                stream = functools.partial(
                    events_on_loop, graph, run_id=str(run.run_id), subgraphs=subgraphs
                )
        for chunk in stream(
            stream_input,
            stream_config,
            stream_mode=modes,
            subgraphs=subgraphs,
            # Each checkpoint is saved before the next step begins: a step's
            # side effects (a tool charging a card) never run ahead of the
            # checkpoint a restarted worker continues from. It also ends the
            # run sooner after interrupt(): nothing is left to wait for.
            durability="sync",
            **kwargs,
        ):
            if heartbeat.must_stop.is_set():
                raise LeaseLost(f"run {run.pk} is no longer held by {worker_id}")
            if client is None and heartbeat.stream_asked.is_set():
                client = _joined_client(run)
            namespace, mode, data = chunk if subgraphs else ((), *chunk)
            if client is not None:
                client.relay(namespace, mode, data)
            if mode == "updates":
                nodes = written.setdefault(namespace, [])
                nodes.extend(n for n in data or {} if n != INTERRUPT)
                if INTERRUPT in (data or {}):
                    stop.interrupted(data[INTERRUPT], nested=bool(namespace))
            elif mode == "checkpoints":
                if not namespace:
                    stop.checkpointed(data)
                events.publish_progress(
                    run,
                    step=data["metadata"].get("step"),
                    source=data["metadata"].get("source", ""),
                    checkpoint_id=data["config"]["configurable"]["checkpoint_id"],
                    nodes=written.pop(namespace, []),
                    namespace=namespace,
                )
        state = stop.snapshot() or graph.get_state(
            {"configurable": {"thread_id": run.thread_id}}, subgraphs=True
        )
        status = record_stop(run, worker_id, state, new_checkpoint=stop.new_checkpoint)
        if status != Run.Status.INTERRUPTED:
            _discard_if_temporary(run)
        return status
    except LeaseLost:
        if run.free_thread(worker_id):
            log.info("run %s: cancelled, stopped before its next step", run.pk)
            return Run.Status.CANCELLED
        if not Run.objects.filter(pk=run.pk).exists():
            # Deleted while it ran (rolled back): what it wrote goes with it.
            discard_checkpoints(run)
            log.info("run %s: rolled back, its checkpoints discarded", run.pk)
            return Run.Status.CANCELLED
        log.warning("run %s: lease lost, leaving it to its new worker", run.pk)
        return Run.Status.RUNNING
    except Exception as exc:
        log.exception("run %s failed", run.pk)
        refused = False
        if (
            run.kind == Run.Kind.RESUME
            and stop is not None
            and stop.checkpoint is not None
            and not stop.new_checkpoint
        ):
            # The step that read the answer failed: the graph refused it.
            refused = forget_refused_answers(run.thread_id, stop.checkpoint["config"])
        if run.finish(
            worker_id,
            Run.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        ):
            run_finished.send(sender=Run, run=run, status=Run.Status.FAILED, answer_refused=refused)
            if client is not None:
                client.failed(exc)
            events.publish_run(run, Run.Status.FAILED)
            _discard_if_temporary(run)
            return Run.Status.FAILED
        return Run.Status.CANCELLED if run.free_thread(worker_id) else Run.Status.RUNNING
    finally:
        heartbeat.hold(None)


def forget_refused_answers(thread_id: str, config: dict[str, Any]) -> bool:
    """Take back the answers a resume run gave to tasks that then failed at
    this checkpoint, so the interrupt can be answered again.

    LangGraph saves a task's resume values (one per interrupt() it passed) and
    its error as pending writes, and a later resume would read the refused
    answer again before any new one. The last resume value of each failed task
    goes (the answers before it stay: a node asking in a loop keeps them), and
    so does its error; tasks inside subgraphs are mended in their namespaces
    too. Returns whether any answer was taken back."""
    checkpoint_id = config["configurable"]["checkpoint_id"]
    writes = CheckpointWrite.objects.filter(thread_id=thread_id)
    failed = list(
        writes.filter(checkpoint_ns="", checkpoint_id=checkpoint_id, channel=ERROR).values_list(
            "task_id", flat=True
        )
    )
    if not failed:
        return False
    places = Q(checkpoint_ns="", checkpoint_id=checkpoint_id, task_id__in=failed)
    for task_id in failed:
        places |= Q(checkpoint_ns__contains=f":{task_id}")
    taken_back = False
    with transaction.atomic():
        errors = writes.filter(places, channel=ERROR)
        errored = set(errors.values_list("checkpoint_ns", "checkpoint_id", "task_id"))
        for row in writes.filter(places, channel=RESUME):
            if (row.checkpoint_ns, row.checkpoint_id, row.task_id) not in errored:
                continue
            same = writes.filter(
                checkpoint_ns=row.checkpoint_ns,
                checkpoint_id=row.checkpoint_id,
                task_id=row.task_id,
                idx=row.idx,
            )
            answers = _SAVER.serde.loads_typed((row.type, bytes(row.blob)))
            if isinstance(answers, list) and len(answers) > 1:
                type_, blob = _SAVER.serde.dumps_typed(answers[:-1])
                same.update(type=type_, blob=blob)
            else:
                same.delete()
            taken_back = True
        errors.delete()
    return taken_back


def record_stop(run: Run, worker_id: str, state, *, new_checkpoint: bool) -> str:
    """One transaction: the run's new status, and (through the receivers) its
    review tasks."""
    requests = pending_requests(state, getattr(state, "origins", None))
    status = Run.Status.INTERRUPTED if requests else Run.Status.SUCCEEDED
    announce = functools.partial(events.publish_run, run, status, requests=requests)
    nested = transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if not run.finish(worker_id, status):
            raise LeaseLost(f"run {run.pk} is no longer held by {worker_id}")
        if not nested:
            # Heard first once committed: a client waiting on the run (the
            # Agent Server API's runs.wait) is answered before the pages'
            # fragments of its new tasks are rendered.
            transaction.on_commit(announce)
        # A stateless run's interrupt is reviewed like any other: its thread
        # stays for the reviewer's decision and the client's resume.
        if requests:
            # Receivers (the reviews app) create their tasks in this transaction.
            checkpoint_id = state.config["configurable"]["checkpoint_id"]
            run_interrupted.send(
                sender=Run,
                run=run,
                requests=requests,
                checkpoint_id=checkpoint_id,
                new_checkpoint=new_checkpoint,
            )
        else:
            run_finished.send(sender=Run, run=run, status=status)
    if nested:
        announce()
    return status


def discard_checkpoints(run: Run) -> None:
    """The checkpoints a run wrote, and their pending writes, are taken away:
    the thread is back where the run found it."""
    written = Checkpoint.objects.filter(thread_id=run.thread_id, **{f"metadata__{RUN_KEY}": run.pk})
    ids = list(written.values_list("checkpoint_id", flat=True))
    if ids:
        with transaction.atomic():
            CheckpointWrite.objects.filter(thread_id=run.thread_id, checkpoint_id__in=ids).delete()
            written.delete()


def _discard_if_temporary(run: Run) -> None:
    """A stateless run's thread goes once the run has ended, its checkpoints
    with it (the saver writes them outside the ORM). Not when it stopped at
    an interrupt: its thread then holds review tasks and waits for a resume."""
    if not run.temporary:
        return
    with transaction.atomic():
        Thread.objects.filter(pk=run.thread_id).delete()
        _SAVER.delete_thread(run.thread_id)


def work(
    worker_id: str, *, lease: timedelta = LEASE, stop: Callable[[], bool] = lambda: False
) -> int:
    """Requeue expired runs, then claim and execute runs until none is left.
    Returns how many runs this call executed. The side duties (webhooks,
    deadlines) are not done here but in their own loop (graphs.duties): a
    queued run never waits for an endpoint that doesn't answer."""
    done = 0
    Run.objects.requeue_expired()
    heartbeat = _heartbeat_of(worker_id, lease)
    while not stop() and (run := Run.objects.claim_next(worker_id, lease)) is not None:
        execute(run, worker_id, lease=lease, heartbeat=heartbeat)
        done += 1
    return done


_heartbeats: dict[tuple[str, timedelta], _Heartbeat] = {}


def _heartbeat_of(worker_id: str, lease: timedelta) -> _Heartbeat:
    """The worker's heartbeat, started once: a thread started and joined at
    each look at the queue cost a lone run ~4% of its time."""
    with _held_lock:
        heartbeat = _heartbeats.get((worker_id, lease))
        if heartbeat is None or not heartbeat.is_alive():
            heartbeat = _heartbeats[(worker_id, lease)] = _Heartbeat(worker_id, lease)
            heartbeat.start()
        return heartbeat
