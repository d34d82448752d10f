"""Sync views on long-lived threads that keep their database connections.

Django's ASGIHandler gives every request a thread of its own (a fresh
`ThreadSensitiveContext`), and so a database connection of its own: on
SQLite a connection opened and closed per request, plus a thread started and
joined, cost about 4 ms of CPU per served page, a fifth of a typical page.
Here a request borrows one of a few long-lived threads for its whole life,
and that thread keeps its connection from one request to the next.

When every pooled thread is busy (long SSE streams under /langgraph/, a slow
export), a request gets a thread of its own, as Django does it, so that
nothing waits behind a slow request; that thread closes its connections when
the request ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import connections

log = logging.getLogger(__name__)


def end_of_request() -> None:
    """Run on a pooled thread after each request: what the next request on
    this thread must not inherit. A transaction a request left open (an
    `atomic` block entered and never left, autocommit turned off) died with
    the request's thread in Django's way; here the thread lives on, so the
    connection is given back (rolled back) and forgotten, and the next
    request opens a fresh one."""
    for connection in connections.all(initialized_only=True):
        left_open = connection.in_atomic_block or (
            connection.connection is not None
            and connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]
        )
        if not left_open:
            continue
        log.warning(
            "a request left a transaction open on %r: its connection is dropped",
            connection.alias,
        )
        with contextlib.suppress(Exception):
            # Rolls back as it ends (PostgreSQL's pool takes it back), but
            # inside an atomic block it leaves the wrapper marked unusable:
            # hence a new wrapper for the next request.
            connection.close()
        del connections[connection.alias]


def close_connections() -> None:
    connections.close_all()


class RequestThreads:
    """A fixed set of single-thread executors, each lent to one request at a
    time. Touched only from the server's event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"request-{n}")
            for n in reversed(range(size))
        ]

    def take(self) -> ThreadPoolExecutor | None:
        # Last in, first out: under a light load the same thread, with its
        # warm connection, serves every request.
        return self.free.pop() if self.free else None

    async def give_back(self, executor: ThreadPoolExecutor) -> None:
        # Back in the pool once the thread has done the request's last work:
        # a view still running after its client left (a cancelled request's
        # thread carries on) must not hold up the next request.
        done = executor.submit(end_of_request)
        try:
            await asyncio.shield(asyncio.wrap_future(done))
        except asyncio.CancelledError:
            # The server gave up on this request: the thread comes back when it is free.
            loop = asyncio.get_running_loop()

            def returned(_: Future) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self.free.append, executor)

            done.add_done_callback(returned)
            raise
        self.free.append(executor)


class PooledThreadsASGIHandler(ASGIHandler):
    """Django's ASGIHandler, with each request's sync code on a borrowed
    long-lived thread (see the module's docstring)."""

    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        size = settings.HITL_REQUEST_THREADS if threads is None else threads
        self.threads = RequestThreads(size)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.take()
        if executor is None:
            await self._on_own_thread(scope, receive, send)
            return
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            await self.threads.give_back(executor)

    async def _on_own_thread(self, scope, receive, send) -> None:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-overflow")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # Queued behind whatever the request left running; the thread
            # ends once it has closed its connections, and nobody waits.
            executor.submit(close_connections)
            executor.shutdown(wait=False)
