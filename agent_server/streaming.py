"""Listening to a run from a request: its stream's events over SSE, and its end.

The worker publishes what a run's streaming clients asked for to the run's
group (graphs.events.run_group) and each run's new status to its thread's
group; a request listens on one channel of its own in both, joined before
the run is committed so nothing it streams is missed. The rows stay the
truth: a listener that hears nothing for a while looks at the run's row, so
a lost message costs a few seconds, never a stream that does not end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import orjson
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from graphs import events
from graphs.models import Run

# How long a listener waits for a message before it reads the run's row.
LOOK_EVERY = 5.0
PREFIX = "langgraph-run."
DONE = (Run.Status.INTERRUPTED, Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED)


_P = ParamSpec("_P")
_T = TypeVar("_T")


def before_waiting(function: Callable[_P, _T]) -> Callable[_P, Awaitable[_T]]:
    """sync_to_async for the database work of a request that then waits on
    a run: a pooled connection (PostgreSQL) goes back to the pool when the
    call returns. A wait may last as long as the run, and requests waiting
    on runs must not hold the connections the worker and pages need."""

    @functools.wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return function(*args, **kwargs)
        finally:
            if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
                connection.close()

    return sync_to_async(call)


def sse(event: str, data: str | bytes) -> bytes:
    """One server-sent event as LangGraph's server writes it."""
    if isinstance(data, str):
        data = data.encode()
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def sse_json(event: str, data: Any) -> bytes:
    return sse(event, orjson.dumps(data))


class RunListener:
    """One channel in a thread's group and a run's group."""

    def __init__(self, thread_id: str, run_id) -> None:
        self.layer = get_channel_layer()
        self.groups = [events.thread_group(thread_id), events.run_group(run_id)]
        self.channel = ""
        self.run_pk: int | None = None

    async def __aenter__(self) -> RunListener:
        self.channel = await self.layer.new_channel(PREFIX)
        for group in self.groups:
            await self.layer.group_add(group, self.channel)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for group in self.groups:
            with contextlib.suppress(Exception):
                await self.layer.group_discard(group, self.channel)

    async def messages(self, run_pk: int) -> AsyncIterator[dict[str, Any]]:
        """The run's stream events, then its last status message; ends once
        the run has stopped (as its row says, when a message went missing)."""
        self.run_pk = run_pk
        while True:
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel), LOOK_EVERY)
            except TimeoutError:
                status = await _status(run_pk)
                if status is None or status in DONE:
                    return
                continue
            kind = message.get("type")
            if kind == "run.chunk":
                yield message
            elif (
                kind == "run.status"
                and message.get("run") == run_pk
                and message.get("status") in DONE
            ):
                yield message
                return


@before_waiting
def _status(run_pk: int) -> str | None:
    return Run.objects.filter(pk=run_pk).values_list("status", flat=True).first()
