"""The event vocabulary, in one place: group names and what is published.

Groups: `queue` (every reviewer's queue page), `thread.<digest of the id>`
(pages showing one thread), `run.<run id>` (clients waiting on or streaming
one run through the Agent Server API) and `graph-workers` (every worker process). Messages are
small dicts; consumers render them. A lost message costs only liveness: pages
reload from the database, and workers from the rows.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import hashlib
import logging
import threading
from typing import Any

from asgiref.sync import SyncToAsync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

QUEUE_GROUP = "queue"
RUNS_CHANNEL = "graph-runs"
WORKERS_GROUP = "graph-workers"


def thread_group(thread_id: str) -> str:
    """The group of pages showing a thread.

    Channels accepts only ASCII letters, digits, hyphens, underscores and
    periods in group names, under 100 characters, and thread ids may hold
    anything. A digest keeps one group per thread: replacing characters would
    put `a/b` and `a_b` in one group, and each page would hear the other's
    thread. 128 bits make a collision, even a sought one, out of reach."""
    return f"thread.{hashlib.sha256(str(thread_id).encode()).hexdigest()[:32]}"


class _Outbox:
    """Messages for one event loop, sent in order by one task running on it.

    Sync code (the worker, signal receivers) hands a message over and goes on:
    `async_to_sync` would start an event loop per message, which costs more
    than the graph step that produced it. The in-memory channel layer's queues
    belong to the loop its consumers wait on, so messages are delivered on
    that loop, never on a loop of our own making.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: collections.deque[tuple[str, str, dict[str, Any]]] = collections.deque()
        self.lock = threading.Lock()
        self.draining = False
        self.idle = threading.Event()
        self.idle.set()

    def put(self, item: tuple[str, str, dict[str, Any]]) -> None:
        with self.lock:
            self.pending.append(item)
            self.idle.clear()
            if self.draining:
                return
            self.draining = True
        try:
            self.loop.call_soon_threadsafe(self.loop.create_task, self._drain())
        except RuntimeError:  # the loop has closed: nobody is listening there any more
            with self.lock:
                self.pending.clear()
                self.draining = False
                self.idle.set()

    async def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.pending:
                    self.draining = False
                    self.idle.set()
                    return
                kind, target, message = self.pending.popleft()
            await _deliver(kind, target, message)


async def _deliver(kind: str, target: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if kind == "group":
            await layer.group_send(target, message)
        else:
            await layer.send(target, message)
    except ChannelFull:
        pass  # wake-ups already waiting say the same thing
    except Exception:  # liveness only: the database already has the truth
        log.warning("could not publish %s to %s", message.get("type"), target, exc_info=True)


_outboxes: dict[asyncio.AbstractEventLoop, _Outbox] = {}
_outboxes_lock = threading.Lock()
_served_loop: asyncio.AbstractEventLoop | None = None
_own_loop: asyncio.AbstractEventLoop | None = None


def serve_on(loop: asyncio.AbstractEventLoop) -> None:
    """Deliver events from plain threads on this loop: the server's, when the
    worker shares a process with it (`manage.py serve`)."""
    global _served_loop
    _served_loop = loop


def _background_loop() -> asyncio.AbstractEventLoop:
    global _own_loop
    if _own_loop is None or _own_loop.is_closed():
        _own_loop = asyncio.new_event_loop()
        threading.Thread(target=_own_loop.run_forever, name="events", daemon=True).start()
        atexit.register(flush)
    return _own_loop


def _target_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    # Called through sync_to_async: the awaiting code's loop, read where
    # async_to_sync reads it. asgiref has no public way to ask for it: the
    # public one, async_to_sync(a coroutine returning the running loop), costs
    # a hop to that loop and back per message (56-71 us against 0.09-0.12 us,
    # ~600x, medians of 7 x 2000 calls, asgiref 3.13), holds the caller until
    # the loop is free, and in a plain thread (the embedded worker's) starts
    # a loop of its own each time. SyncToAsync.threadlocal.main_event_loop is
    # set in SyncToAsync.thread_handler up to asgiref 3.13, which pyproject.toml
    # pins below 3.14 for it. Without it, a sync view under `runserver` (daphne,
    # the in-memory layer, no `serve` to name the loop) would send from a loop
    # of our own, and consumers waiting on daphne's loop would not be woken.
    caller = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if caller is not None and not caller.is_closed():
        return caller
    if _served_loop is not None and not _served_loop.is_closed():
        return _served_loop
    return _background_loop()


def _outbox() -> _Outbox:
    loop = _target_loop()
    with _outboxes_lock:
        outbox = _outboxes.get(loop)
        if outbox is None:
            for old in [old for old in _outboxes if old.is_closed()]:
                del _outboxes[old]
            outbox = _outboxes[loop] = _Outbox(loop)
        return outbox


def flush(timeout: float = 5.0) -> bool:
    """Wait until the events handed over so far have been sent (from sync code:
    a command about to exit, a test)."""
    with _outboxes_lock:
        outboxes = list(_outboxes.values())
    return all(outbox.idle.wait(timeout) for outbox in outboxes)


def publish(group: str, message: dict[str, Any]) -> None:
    """Hand a message for a group over; it is sent in order, without waiting."""
    _outbox().put(("group", group, message))


def publish_progress(
    run,
    *,
    step: int | None,
    source: str,
    checkpoint_id: str,
    nodes: list[str],
    namespace: tuple[str, ...],
) -> None:
    """A checkpoint a run wrote: its step and source, the nodes whose writes
    it holds, and the subgraph namespace it belongs to ("" for the root)."""
    publish(
        thread_group(run.thread_id),
        {
            "type": "run.progress",
            "run": run.pk,
            "thread": run.thread_id,
            "step": step,
            "source": source,
            "checkpoint_id": checkpoint_id,
            "nodes": nodes,
            "namespace": "|".join(namespace),
        },
    )


def publish_run(run, status: str, *, requests: list | None = None) -> None:
    """A run's new status, to pages showing its thread, and to the clients
    following the run itself (the Agent Server API's waits and streams, which
    so hear nothing of the thread's other events). (The queue hears of new
    review tasks from the reviews app, which creates them.)"""
    message = {
        "type": "run.status",
        "run": run.pk,
        "thread": run.thread_id,
        "graph": run.graph_name,
        "status": status,
        "requests": len(requests or ()),
    }
    publish(thread_group(run.thread_id), message)
    publish(run_group(run.run_id), message)


def run_group(run_id) -> str:
    """The group of clients streaming one run (its LangGraph run id)."""
    return f"run.{getattr(run_id, 'hex', run_id)}"


def publish_chunk(run, event: str, data: str, *, event_id: str | None = None) -> None:
    """One event of a run's stream, for the clients streaming it: the SSE
    event name LangGraph's server gives it ("values", "updates|child:1") and
    its data, already JSON, so it is written once and relayed as is. A
    resumable stream's events carry their SSE id."""
    message = {"type": "run.chunk", "event": event, "data": data}
    if event_id is not None:
        message["id"] = event_id
    publish(run_group(run.run_id), message)


def stop_run(run) -> None:
    """A running run was cancelled: whichever worker holds it stops it before
    its next step. (The worker also finds out when it next renews its lease;
    this only saves the wait.)"""
    publish(
        WORKERS_GROUP,
        {"type": "run.cancelled", "run": run.pk, "database": run._state.db or "default"},
    )


def stream_run(run) -> None:
    """A client joined the stream of a running run that streamed to nobody:
    whichever worker holds it relays it from its next step."""
    publish(
        WORKERS_GROUP,
        {"type": "run.streamed", "run": run.pk, "database": run._state.db or "default"},
    )


def wake_workers() -> None:
    """Tell a worker to look at the queue; the rows say what to do."""
    _outbox().put(("send", RUNS_CHANNEL, {"type": "runs.wake"}))
