"""Requests borrow long-lived threads that keep their database connections
(hitl_site.request_threads): driven through the ASGI handler in this process,
with the site's whole middleware stack and views of this module's own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from django.http import HttpRequest, JsonResponse
from django.urls import path

from hitl_site import request_threads
from hitl_site.request_threads import PooledThreadsASGIHandler
from tests.conftest import default_on_postgres
from tests.test_settings import check

# Raw connections the views saw, kept alive so that `is` tells them apart.
seen: list[object] = []
released = threading.Event()


def ask() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    seen.append(connection.connection)


def where(request: HttpRequest) -> JsonResponse:
    ask()
    return JsonResponse(
        {
            "thread": threading.current_thread().name,
            "in_atomic_block": connection.in_atomic_block,
            "autocommit": connection.get_autocommit(),
        }
    )


def slow(request: HttpRequest) -> JsonResponse:
    ask()
    # A guard against a hang, not a measure: the fast request releases it.
    return JsonResponse({"released": released.wait(timeout=20)})


def fast(request: HttpRequest) -> JsonResponse:
    ask()
    released.set()
    return JsonResponse({"thread": threading.current_thread().name})


def leak(request: HttpRequest) -> JsonResponse:
    """A transaction entered and never left (a view's generator abandoned
    halfway, a hand-made atomic block)."""
    transaction.atomic().__enter__()
    Group.objects.create(name="left open")
    if request.GET.get("raise"):
        raise ValueError("and then it failed")
    return JsonResponse({"thread": threading.current_thread().name})


class Waits:
    """What the async view tells (events of the test's own loop)."""

    waiting: asyncio.Event
    cancelled: asyncio.Event


async def waits(request: HttpRequest) -> JsonResponse:
    """An async view that waits until its client leaves."""
    Waits.waiting.set()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        Waits.cancelled.set()
        raise
    return JsonResponse({})


urlpatterns = [
    path("waits/", waits),
    path("where/", where),
    path("slow/", slow),
    path("fast/", fast),
    path("leak/", leak),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, transactional_db, django_db_blocker, monkeypatch):
    """The database `default` leads to: SQLite, or PostgreSQL configured as
    from DATABASE_URL, with a pool of 3 (so that a connection not given
    back shows at once)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    monkeypatch.setenv("DATABASE_POOL_SIZE", "3")
    with default_on_postgres(request, django_db_blocker):
        yield "postgres"
    # Django keeps a process's pools by alias, past the settings that made
    # them: left open, this small one would serve `default` to the tests
    # after this one, whose pages, worker and consumers need more at once.
    pool = PostgresWrapper._connection_pools.pop("default", None)
    if pool is not None:
        pool.close()


# Every request thread a test made: they outlive the test's handler.
made: list[ThreadPoolExecutor] = []


@pytest.fixture
def site(settings, database, monkeypatch):
    settings.ROOT_URLCONF = __name__
    seen.clear()
    released.clear()
    Waits.waiting, Waits.cancelled = asyncio.Event(), asyncio.Event()
    made.clear()
    new = request_threads.RequestThreads._new

    def recorded(self) -> ThreadPoolExecutor:
        made.append(new(self))
        return made[-1]

    monkeypatch.setattr(request_threads.RequestThreads, "_new", recorded)

    def client(threads: int) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=PooledThreadsASGIHandler(threads=threads))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    yield client
    # The request threads outlive their handler: each gives back its
    # database connections and ends with the test, after whatever it still
    # runs (a cancelled request's view). One the handler ended already did.
    for executor in made:
        with contextlib.suppress(RuntimeError):
            executor.submit(request_threads.close_connections)
        executor.shutdown(wait=True)


async def test_requests_reuse_a_pooled_thread_and_its_connection(site, database):
    async with site(threads=2) as client:
        answers = [(await client.get("/where/")).json() for _ in range(3)]
    threads = {answer["thread"] for answer in answers}
    assert threads == {"request-0_0"}, answers  # the pool's, not a thread of its own
    if database == "sqlite":
        assert seen[0] is seen[1] is seen[2]
    # (PostgreSQL's connections go back to the process's pool after each
    # request: Django keeps none of its own beside a pool.)


async def test_a_request_beside_a_slow_one_gets_a_thread_of_its_own(site, database):
    handler = PooledThreadsASGIHandler(threads=1)
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        slow_request = asyncio.ensure_future(client.get("/slow/"))
        await asyncio.sleep(0.2)  # the slow request holds the only idle thread
        fast = await client.get("/fast/")
        assert (await slow_request).json() == {"released": True}
        assert fast.json()["thread"] == "request-1_0"
        # With both done, one thread is kept (the first back), the other
        # closed its connection and ended.
        assert len(handler.threads.free) == 1
        then = (await client.get("/where/")).json()["thread"]
        assert then in ("request-0_0", "request-1_0")
    if database == "sqlite":
        slow_connection, fast_connection, kept = seen
        ended = fast_connection if kept is slow_connection else slow_connection
        assert kept in (slow_connection, fast_connection) and kept.total_changes == 0
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            ended.total_changes  # noqa: B018


class CountingExecutor(ThreadPoolExecutor):
    """A pool thread that counts the work handed to it: each piece is a
    crossing from the event loop, a wait for the interpreter under load."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="counted")
        self.handed = 0
        made.append(self)

    def submit(self, fn, /, *args, **kwargs):
        self.handed += 1
        return super().submit(fn, *args, **kwargs)


async def test_a_sync_view_runs_with_the_middleware_in_one_pass(site, database):
    handler = PooledThreadsASGIHandler(threads=1)
    executor = handler.threads.free[0] = CountingExecutor()
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for n in range(1, 3):
            answer = (await client.get("/where/")).json()
            assert answer["thread"] == "counted_0"
            # The request (request_started, the middleware, the view), the
            # response's close, the check that nothing was left open.
            assert executor.handed == 3 * n


async def test_an_async_view_is_cancelled_when_its_client_leaves(site, database):
    handler = PooledThreadsASGIHandler(threads=1)
    sent: list[dict] = []
    disconnect = asyncio.Event()

    async def receive() -> dict:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/waits/",
        "raw_path": b"/waits/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    served = asyncio.ensure_future(handler(scope, receive, send))
    await asyncio.wait_for(Waits.waiting.wait(), timeout=10)
    disconnect.set()
    await asyncio.wait_for(served, timeout=10)
    assert Waits.cancelled.is_set()  # Django's way: the view hears its client left
    assert [m for m in sent if m] == []  # and nothing was answered


async def test_a_burst_of_requests_waits_for_the_pool_threads(site, database):
    # Patient enough that the pool's thread comes back first, however slow the machine.
    handler = PooledThreadsASGIHandler(threads=1, patience=60)
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        slow_request = asyncio.ensure_future(client.get("/slow/"))
        await asyncio.sleep(0.2)  # the slow request holds the only thread
        waiting = [asyncio.ensure_future(client.get("/where/")) for _ in range(3)]
        await asyncio.sleep(0.2)
        assert not any(w.done() for w in waiting)  # queued, not each on a thread of its own
        released.set()
        assert (await slow_request).json() == {"released": True}
        answers = [(await w).json()["thread"] for w in waiting]
    assert answers == ["request-0_0"] * 3
    assert next(handler.threads.made) == 1  # no thread made but the pool's


@pytest.mark.parametrize("how", ["returns", "raises"])
async def test_a_transaction_left_open_does_not_reach_the_next_request(site, database, how):
    async with site(threads=1) as client:
        # More than PostgreSQL's pool holds: each connection must go back to it.
        for _ in range(4):
            left = await client.get("/leak/", params={"raise": "1"} if how == "raises" else {})
            assert left.status_code == (500 if how == "raises" else 200)
            after = (await client.get("/where/")).json()
            assert after == {"thread": "request-0_0", "in_atomic_block": False, "autocommit": True}
        # What the abandoned transactions wrote was rolled back, not committed
        # by whoever used the connection next.
        assert not await Group.objects.filter(name="left open").aexists()
        if database == "sqlite":  # the thread keeps its new connection
            await client.get("/where/")
            assert seen[-1] is seen[-2]


@pytest.mark.parametrize("value", ["-1", "many"])
def test_bad_thread_counts_stop_start_up(value):
    result = check(HITL_REQUEST_THREADS=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "HITL_REQUEST_THREADS" in result.stderr
