"""Sync views on long-lived threads that keep their database connections.

Django's ASGIHandler gives every request a thread of its own (a fresh
`ThreadSensitiveContext`), and so a database connection of its own: on
SQLite a connection opened and closed per request, plus a thread started and
joined, cost 2 to 3 ms of CPU per served page of the reviewers' mix (of 12).
Here a request borrows a long-lived thread for its whole life, and that
thread keeps its connection from one request to the next.

A request for a sync view (every page; not the async views under
/langgraph/) also runs in one pass on its thread: the request_started
signal, the whole middleware stack and the view. Django's own way crosses
from the event loop to the thread and back about five times per request,
each crossing a wait for the interpreter behind whatever else runs. A
request for an async view takes Django's way, which cancels the view when
its client leaves.

When every thread is taken, a request waits for one, first come first
served, unless the threads are held by slow requests (long SSE streams
under /langgraph/, a slow export; see PATIENCE_SECONDS): then it gets a new
thread, as in Django, so that nothing waits long behind a slow request.
That thread is lent again while the load lasts; once more than
HITL_REQUEST_THREADS would stand idle, those beyond it close their
connections and end.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.db import connections
from django.http import FileResponse
from django.urls import (
    Resolver404,
    URLPattern,
    URLResolver,
    get_resolver,
    set_script_prefix,
)

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


# A request that holds a pool thread longer than this is a slow one (a
# stream, a slow export), and a request waits for a pool thread, first come first
# served, until one is free or the pool's threads are held by slow requests:
# then it gets a thread of its own, as in Django. A burst of requests so
# queues for the pool, instead of starting a thread and opening a database
# connection each: in a process that runs one thread at a time they only
# took turns slower, and under a team's load a burst grew the process by a
# thread per request (200 at once, +100 MB that stayed).
PATIENCE_SECONDS = 1.0


class RequestThreads:
    """Single-thread executors, each lent to one request at a time; at most
    `size` kept idle. Touched only from the server's event loop."""

    def __init__(self, size: int, patience: float = PATIENCE_SECONDS) -> None:
        self.size = size
        self.patience = patience
        self.made = itertools.count()
        self.free = [self._new() for _ in range(size)]
        self.free.reverse()
        # Requests waiting for a thread, first come first served.
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.lent: dict[ThreadPoolExecutor, float] = {}  # since when

    def _new(self) -> ThreadPoolExecutor:
        # The thread itself starts with the executor's first work.
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"request-{next(self.made)}")

    def _lend(self, executor: ThreadPoolExecutor) -> ThreadPoolExecutor:
        self.lent[executor] = time.monotonic()
        return executor

    def _held_by_slow_requests(self) -> bool:
        since = time.monotonic() - self.patience
        slow = sum(1 for lent in self.lent.values() if lent < since)
        return len(self.lent) < self.size + slow

    async def take(self) -> ThreadPoolExecutor:
        # Last in, first out: under a light load the same thread, with its
        # warm connection, serves every request.
        if self.free:
            return self._lend(self.free.pop())
        if not self.size:
            return self._lend(self._new())  # no pool: a thread per request, as in Django
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        try:
            while not waiter.done() and not self._held_by_slow_requests():
                await asyncio.wait([waiter], timeout=self.patience)
        except BaseException:  # the request was cancelled meanwhile
            if waiter.done():
                self._keep_or_end(waiter.result())  # handed a thread: the next one's
            else:
                waiter.cancel()
                self.waiting.remove(waiter)
            raise
        if waiter.done():
            return waiter.result()
        waiter.cancel()
        self.waiting.remove(waiter)
        return self._lend(self._new())

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
                    loop.call_soon_threadsafe(self._keep_or_end, executor)

            done.add_done_callback(returned)
            raise
        self._keep_or_end(executor)

    def _keep_or_end(self, executor: ThreadPoolExecutor) -> None:
        self.lent.pop(executor, None)
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(self._lend(executor))
                return
        if len(self.free) < self.size:
            self.free.append(executor)
            return
        # Queued behind whatever the thread still runs; it ends once it has
        # closed its connections, and nobody waits.
        executor.submit(close_connections)
        executor.shutdown(wait=False)


class _SyncStack(BaseHandler):
    """The site's middleware in sync mode, around the view: what a sync
    view's request runs in one pass. Django's last word on an exception no
    handler could answer is the ASGI handler's."""

    handle_uncaught_exception = ASGIHandler.handle_uncaught_exception

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)


class PooledThreadsASGIHandler(ASGIHandler):
    """Django's ASGIHandler, with each request's sync code on a borrowed
    long-lived thread (see the module's docstring)."""

    def __init__(self, threads: int | None = None, patience: float = PATIENCE_SECONDS) -> None:
        super().__init__()
        size = settings.HITL_REQUEST_THREADS if threads is None else threads
        self.threads = RequestThreads(size, patience)
        self.sync_stack = _SyncStack()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = await self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            await self.threads.give_back(executor)

    async def handle(self, scope, receive, send):
        prefix = get_script_prefix(scope)
        if _async_view(scope["path"].removeprefix(prefix) if prefix else scope["path"]):
            await super().handle(scope, receive, send)
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(prefix)
        request, error_response = self.create_request(scope, body_file)
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(
                scope, request, error_response
            )
            try:
                # A client gone meanwhile: the server drops what is sent.
                await self.send_response(response, send)
            finally:
                await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope, request, error_response):
        signals.request_started.send(sender=self.__class__, scope=scope)
        if request is None:  # unreadable: Django's answer, as in its way
            return error_response
        response = self.sync_stack.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):  # the server chunks what it sends
            response.block_size = self.chunk_size
        return response


def _async_view(path: str) -> bool:
    """Whether the path leads to an async view (Django's way: the view is
    cancelled when its client leaves). A path no view answers is a sync
    matter (static files, the 404 page). Resolved in full only under the
    few top-level routes that hold async views: a full resolution (0.1 to
    0.2 ms, the site's and the API's routes tried in turn) took 3% of a
    loaded server's time, and Django resolves the path again for the view."""
    resolver = get_resolver()
    if not any(top.pattern.match(path.removeprefix("/")) for top in _holding_async(resolver)):
        return False
    try:
        match = resolver.resolve(path)
    except Resolver404:
        return False
    return iscoroutinefunction(match.func)


@functools.lru_cache(maxsize=8)
def _holding_async(resolver: URLResolver) -> list[URLPattern | URLResolver]:
    """The top-level routes under which some view is async."""

    def holds(route: URLPattern | URLResolver) -> bool:
        if isinstance(route, URLResolver):
            return any(holds(inner) for inner in route.url_patterns)
        return iscoroutinefunction(route.callback)

    return [route for route in resolver.url_patterns if holds(route)]
