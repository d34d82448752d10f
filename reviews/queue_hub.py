"""Queue events for the open pages of one process, from one subscription.

A page could join the channel layer's queue group itself, but then every
event is put on every page's channel and wakes every page's consumer on its
own: with a few hundred pages open, that bookkeeping cost more than the
pages' own work (picking the rows each reviewer may see, one socket write).
So each process (each event loop) joins the group once, through a hub, and
the hub hands every event to its pages in turn. Thread events, which reach a
handful of pages, still go to each page's own channel.

Queue events name tasks by id (reviews.live): the hub renders their rows
once for all its pages, and only when it has pages.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async

from graphs.events import QUEUE_GROUP
from reviews import live

log = logging.getLogger(__name__)

# Group memberships expire (after a day, by default): the hub renews its own
# well within that, whether or not events come.
RENEW_SECONDS = 3600.0
PAGES_PER_TURN = 16


class Page(Protocol):
    async def queue_changed(self, event: dict[str, Any]) -> None: ...


class QueueHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        # Weak: a page whose connection ended without a goodbye drops out.
        self.pages: weakref.WeakSet[Page] = weakref.WeakSet()
        self.channel: str | None = None
        self.tasks: list[asyncio.Task] = []
        # Pages that connect at the same moment must not each make a channel:
        # one nobody reads would collect every event.
        self.setting_up = asyncio.Lock()
        # Received and not yet handed to the pages.
        self.waiting: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def join(self, page: Page) -> None:
        async with self.setting_up:
            for stale in _forget_closed_loops():
                if stale.channel is not None:  # its loop is gone: nobody reads it any more
                    await stale.layer.group_discard(QUEUE_GROUP, stale.channel)
            if self.channel is None:
                self.channel = await self.layer.new_channel("queue-hub.")
                await self.layer.group_add(QUEUE_GROUP, self.channel)
            if not self.tasks or any(task.done() for task in self.tasks):
                for task in self.tasks:
                    task.cancel()
                self.tasks = [
                    asyncio.ensure_future(self._listen()),
                    asyncio.ensure_future(self._deliver()),
                    asyncio.ensure_future(self._renew()),
                ]
        self.pages.add(page)

    def leave(self, page: Page) -> None:
        self.pages.discard(page)

    async def _renew(self) -> None:
        # Not a timeout on receive(): Redis's pub/sub layer forgets a channel
        # whose receive() was cancelled.
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self.layer.group_add(QUEUE_GROUP, self.channel)
            except Exception:
                log.warning("the queue hub could not renew its membership", exc_info=True)

    async def _listen(self) -> None:
        # Only receives, so that events that come while the pages are being
        # served wait here, to be taken together (_deliver).
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except Exception:  # the layer's server went away: pages reload from the database
                log.warning("the queue hub lost its channel layer; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            self.waiting.append(event)
            self.arrived.set()

    async def _deliver(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            events, self.waiting = merged(self.waiting), []
            for event in events:
                await self._hand_out(event)

    async def _hand_out(self, event: dict[str, Any]) -> None:
        if event.get("type") == live.TASKS_EVENT:
            if not self.pages:
                return  # nobody here to show rows to
            try:
                event = await _render(event)
            except Exception:  # pages reload from the database
                log.warning("the queue hub could not render an event", exc_info=True)
                return
            if event is None:
                return
        handler = get_handler_name(event)
        for done, page in enumerate(list(self.pages), start=1):
            try:
                await getattr(page, handler)(event)
            except Exception:  # one broken page must not cost the others their events
                log.warning("a page could not take a %s event", event.get("type"), exc_info=True)
            if done % PAGES_PER_TURN == 0:
                # The server writes to sockets when the loop polls them:
                # let it send what the pages so far have, before the rest.
                await asyncio.sleep(0)


def merged(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events that came together, with each run of task events made one:
    under a team's load (starts and decisions many a second) events come
    faster than a render and two hundred sends, and one render, one count
    and one message per page for the lot cost what one event did.

    Each task's events are taken in order, the last telling what pages
    are sent: a task created and then removed meanwhile only leaves; one
    created or removed needs no change besides. A task removed and then
    created again (a decided task reopened) starts a new event: its old row
    must leave a page before the new one comes, and one message can't say
    both (new rows lead it: see reviews/live.html)."""
    out: list[dict[str, Any]] = []
    taken: list[dict[int, str] | None] = []  # per event of out: each task's last event

    for event in events:
        if event.get("type") != live.TASKS_EVENT:
            out.append(event)
            taken.append(None)
            continue
        last = taken[-1] if taken else None
        if last is None or any(last.get(pk) == "removed" for pk in event["created"]):
            last = {}
            out.append(event)
            taken.append(last)
        for kind in ("removed", "created", "changed"):
            for pk in event[kind]:
                if kind == "changed" and pk in last and last[pk] != "changed":
                    continue  # a new row is drawn as the task is now; a removed one stays gone
                last[pk] = kind
    return [
        event
        if last is None
        else {
            "type": live.TASKS_EVENT,
            **{
                kind: [pk for pk, its in last.items() if its == kind]
                for kind in ("created", "removed", "changed")
            },
        }
        for event, last in zip(out, taken, strict=True)
    ]


_render = database_sync_to_async(live.render)


_hubs: dict[tuple[asyncio.AbstractEventLoop, int], QueueHub] = {}


def hub_for(layer: Any) -> QueueHub:
    """This event loop's hub for the given channel layer."""
    key = (asyncio.get_running_loop(), id(layer))
    if key not in _hubs or _hubs[key].layer is not layer:
        _hubs[key] = QueueHub(layer)
    return _hubs[key]


def _forget_closed_loops() -> list[QueueHub]:
    """Hubs of event loops that have closed (a test's, a restarted server's)."""
    closed = [key for key in _hubs if key[0].is_closed()]
    return [_hubs.pop(key) for key in closed]
