"""The reviewer websocket: live queue and thread updates as HTML fragments.

Pages connect with the htmx ws extension (`ws-connect="/ws/reviews/?threads=..."`)
and every message is a fragment with `hx-swap-oob`, so the page updates in
place. Anonymous connections are refused before they are accepted.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from graphs.events import QUEUE_GROUP, thread_group
from graphs.models import Thread
from reviews.models import ReviewTask

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

    @database_sync_to_async
    def _render(self, template: str, context: dict) -> str:
        return render_to_string(template, context)

    # -- events (types from graphs.events) ------------------------------------

    async def queue_changed(self, event: dict) -> None:
        html = await self._render(
            "reviews/live.html#queue_update", await self._queue_context(event)
        )
        await self.send(text_data=html)

    async def run_status(self, event: dict) -> None:
        await self.send(
            text_data=await self._render("reviews/live.html#run_status", {"event": event})
        )

    async def run_progress(self, event: dict) -> None:
        await self.send(
            text_data=await self._render("reviews/live.html#run_progress", {"event": event})
        )

    @database_sync_to_async
    def _queue_context(self, event: dict) -> dict:
        pending = ReviewTask.objects.filter(status=ReviewTask.Status.PENDING)
        return {
            "event": event,
            "new_tasks": list(pending.filter(run_id=event.get("run")).order_by("action_index")),
            "pending_count": pending.count(),
        }
