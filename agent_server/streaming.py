"""Listening to a run from a request: its stream's events over SSE, and its end.

The worker publishes what a run's streaming clients asked for, and the run's
new status, to the run's group (graphs.events.run_group); a request listens
on one channel of its own there, joined before the run is committed so
nothing it streams is missed. The rows stay the truth: a listener that
hears nothing for a while looks at the run's row, so a lost message costs a
few seconds, never a stream that does not end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

import orjson
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.dispatch import receiver
from django.utils import timezone

from agent_server.models import StreamEvent
from graphs import events
from graphs.models import Run
from graphs.signals import worker_sweep

# How long a listener waits for a message before it reads the run's row.
LOOK_EVERY = 5.0
PREFIX = "langgraph-run."
DONE = (Run.Status.INTERRUPTED, Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED)
# Redis stream ids, as LangGraph's servers give SSE events: "<ms>-<n>", here
# n counting the run's events. A bare "<ms>" is "<ms>-0", as Redis reads it.
EVENT_ID = re.compile(r"(\d+)(?:-(\d+))?")


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


def sse(event: str, data: str | bytes, event_id: str | None = None) -> bytes:
    """One server-sent event as LangGraph's server writes it: its id, if it
    has one, after its data."""
    if isinstance(data, str):
        data = data.encode()
    written = b"event: " + event.encode() + b"\ndata: " + data + b"\n"
    if event_id is not None:
        written += b"id: " + event_id.encode() + b"\n"
    return written + b"\n"


def sse_json(event: str, data: Any, event_id: str | None = None) -> bytes:
    return sse(event, orjson.dumps(data), event_id)


class RunListener:
    """One channel in a run's group, where its worker publishes its stream
    and its new status (not in its thread's, whose every checkpoint would
    wake a wait that has nothing to do with it)."""

    def __init__(self, run_id) -> None:
        self.layer = get_channel_layer()
        self.groups = [events.run_group(run_id)]
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
        # A layer lets go of a channel when a receive on it is cancelled, as
        # when a consumer ends (Redis pub/sub unsubscribes it, the in-memory
        # layer drops its queue): otherwise every wait would leave its
        # channel subscribed in the server and in Redis for good.
        receiving = asyncio.ensure_future(self.layer.receive(self.channel))
        await asyncio.sleep(0)  # it starts waiting
        receiving.cancel()
        await asyncio.wait([receiving])  # its cancellation done, not raised here

    async def messages(self, run_pk: int) -> AsyncIterator[dict[str, Any]]:
        """The run's stream events, then its last status message; ends once
        the run has stopped (as its row says, when a message went missing)."""
        self.run_pk = run_pk
        while True:
            try:
                # Not wait_for, which makes a task of each receive.
                async with asyncio.timeout(LOOK_EVERY):
                    message = await self.layer.receive(self.channel)
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


# -- resumable streams --------------------------------------------------------------


def event_id(seq: int, at) -> str:
    return f"{int(at.timestamp() * 1000)}-{seq}"


def seq_of(last_event_id: str) -> int | None:
    """The count of the last event a client saw, from its Last-Event-ID; None
    when the id is not one of ours (nor any Redis stream id)."""
    found = EVENT_ID.fullmatch(last_event_id.strip())
    if found is None:
        return None
    return int(found.group(2) or 0)


class KeptStream:
    """The worker's side of a resumable stream: each event is written, then
    sent with its id. Events count on across a run's attempts (a run a new
    worker continues), so ids never repeat. The worker's side duties trim the
    streams whose time is up (trim_stream_events), off the run's path."""

    def __init__(self, run: Run) -> None:
        self.run = run
        last = StreamEvent.objects.filter(run_id=run.pk).aggregate(last=Max("seq"))["last"]
        self.seq = last or 0

    def keep(self, event: str, data: str, at=None) -> str:
        self.seq += 1
        now = at or timezone.now()
        StreamEvent.objects.create(
            run_id=self.run.pk, seq=self.seq, event=event, data=data, sent_at=now
        )
        return event_id(self.seq, now)


@receiver(worker_sweep, dispatch_uid="agent_server.trim_stream_events")
def trim_stream_events(**kwargs) -> int:
    """Forget the events of resumable runs that ended RESUMABLE_STREAM_TTL_SECONDS ago."""
    ended = timezone.now() - timedelta(seconds=settings.RESUMABLE_STREAM_TTL_SECONDS)
    deleted, _ = StreamEvent.objects.filter(
        run__finished_at__lt=ended, run__status__in=DONE
    ).delete()
    return deleted


@before_waiting
def kept_events(run: Run, after: int) -> list[tuple[int, str, str, str]]:
    """A resumable run's events after the `after`-th, as (seq, event, data, id)."""
    rows = StreamEvent.objects.filter(run_id=run.pk, seq__gt=after).order_by("seq")
    return [
        (row.seq, row.event, row.data, event_id(row.seq, row.sent_at))
        for row in rows.only("seq", "event", "data", "sent_at")
    ]


def metadata_id(run: Run) -> str:
    """The id of a resumable run's first "metadata" event: the request that
    made the run sends it at once, and its worker keeps it under this id."""
    return event_id(1, run.created_at)
