"""The reviewer websocket: live queue and thread updates as HTML fragments.

Pages connect with the htmx ws extension (`ws-connect="/ws/reviews/?threads=..."`)
and every message is a fragment with `hx-swap-oob`, so the page updates in
place. Anonymous connections are refused before they are accepted.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from graphs.events import QUEUE_GROUP, thread_group
from graphs.models import Thread

MAX_THREADS = 50


class ReviewerConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        wanted = [t for value in query.get("threads", []) for t in value.split(",") if t][
            :MAX_THREADS
        ]
        self.groups_joined = [QUEUE_GROUP]
        for thread_id in await self._existing_threads(wanted):
            self.groups_joined.append(thread_group(thread_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    @database_sync_to_async
    def _existing_threads(self, thread_ids: list[str]) -> list[str]:
        return list(
            Thread.objects.filter(thread_id__in=thread_ids).values_list("thread_id", flat=True)
        )

    # Group events carry everything they need: no handler touches the database.
    LIVE_EVENTS = frozenset({"queue.changed", "run.status", "run.progress"})

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections (a hop to the sync thread)
        # before every handler. For live events that hop, taken once per open
        # page, serialised one event's delivery to every page behind it.
        if message["type"] in self.LIVE_EVENTS:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    # -- events (types from graphs.events and reviews.live) --------------------

    async def queue_changed(self, event: dict) -> None:
        for html in event["html"]:
            await self.send(text_data=html)

    async def run_status(self, event: dict) -> None:
        # Small fragments without queries: rendered here, on the loop.
        await self.send(
            text_data=render_to_string("reviews/live.html#run_status", {"event": event})
        )

    async def run_progress(self, event: dict) -> None:
        await self.send(
            text_data=render_to_string("reviews/live.html#run_progress", {"event": event})
        )
