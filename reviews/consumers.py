"""The reviewer websocket: live queue and thread updates as HTML fragments.

Pages connect with the htmx ws extension (`ws-connect="/ws/reviews/?threads=..."`)
and every message is a fragment with `hx-swap-oob`, so the page updates in
place. Anonymous connections are refused before they are accepted.
"""

from __future__ import annotations

import functools
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.template.loader import render_to_string

from graphs.events import thread_group
from graphs.models import Thread
from reviews.access import VIEW, can_thread, rules_granting
from reviews.live import session_tag
from reviews.models import ReviewRule
from reviews.queue_hub import hub_for

MAX_THREADS = 50


@functools.cache
def notice(count: int) -> str:
    return render_to_string("reviews/live.html#queue_notice", {"count": count})


@functools.cache
def fragment(name: str) -> str:
    """A fixed fragment of reviews/live.html, rendered once per process."""
    return render_to_string(f"reviews/live.html#{name}")


def queue_messages(event: dict, visible: set[int | None] | None) -> list[str]:
    """What a page whose reviewer sees the rows of `visible` rules (None:
    all) is sent of a "queue.changed" event (reviews.live.render): one
    message, as every message costs a frame and a socket write per open
    page, and the browser a parse and a settle. Table rows lead it (see
    reviews/live.html); the count and the rows leaving follow as their
    siblings. Two only when new rows and rows replaced in place come
    together: both can't lead one message."""

    def shown(parts: list[dict]) -> list[str]:
        return [p["html"] for p in parts if visible is None or visible.issuperset(p["rules"])]

    rows, changed, removed = shown(event["rows"]), shown(event["changed"]), shown(event["removed"])
    head = event["count_html"] if visible is None else fragment("queue_count_poke")
    text = head + "".join(removed)
    if rows:
        text = (
            f'<tbody id="queue-rows" hx-swap-oob="beforeend">{"".join(rows)}</tbody>'
            + text
            + fragment("queue_news")
            + notice(len(rows))
        )
    if not changed:
        return [text]
    if rows:
        return [text, "".join(changed)]
    return ["".join(changed) + text]


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
        # What this reviewer may see is read here, and again whenever rules,
        # their groups or their standing change (rights_changed).
        self.wanted = wanted
        self.visible_rules = await self._visible_rules(user)
        self.groups_joined = [
            thread_group(thread_id) for thread_id in await self._existing_threads(wanted, user)
        ]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await hub_for(self.channel_layer).join(self)  # queue events, after the accept

    async def disconnect(self, code: int) -> None:
        hub_for(self.channel_layer).leave(self)
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    @database_sync_to_async
    def _existing_threads(self, thread_ids: list[str], user) -> list[str]:
        """The threads asked for that this reviewer may see (as their pages)."""
        threads = Thread.objects.filter(thread_id__in=thread_ids)
        return [thread.pk for thread in threads if can_thread(user, VIEW, thread)]

    @database_sync_to_async
    def _still_visible(self, thread_id: str) -> bool:
        thread = Thread.objects.filter(pk=thread_id).first()
        return thread is not None and can_thread(self.scope["user"], VIEW, thread)

    @database_sync_to_async
    def _visible_rules(self, user) -> set[int | None] | None:
        """None: every row; else the rule ids whose rows this reviewer sees
        (None among them: tasks no rule governs)."""
        if not ReviewRule.objects.exists():
            return None
        granted = rules_granting(user, VIEW)
        return None if granted is None else {None, *granted}

    @database_sync_to_async
    def _signed_in_user(self) -> Any:
        """The session's user as a new request would find it (None once the
        session ended, the password changed or the user was deactivated),
        read afresh: the scope's user and session are as they were at connect."""
        session = self.scope.get("session")
        if session is None or session.session_key is None:
            return None
        fresh = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
        user = get_user(SimpleNamespace(session=fresh))
        return user if user.is_authenticated else None

    # Thread events carry everything they need: no handler touches the
    # database. (Queue events come from the hub, reviews.queue_hub.)
    LIVE_EVENTS = frozenset({"run.status", "run.progress"})

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
        # The hub hands one event to every page: pages whose reviewers see
        # the same rules are sent the same text, made once.
        made = event.setdefault("messages", {})
        key = None if self.visible_rules is None else frozenset(self.visible_rules)
        if key not in made:
            made[key] = queue_messages(event, self.visible_rules)
        for text in made[key]:
            await self.send(text_data=text)

    async def rights_changed(self, event: dict) -> None:
        """Rules, groups or this reviewer's standing changed: what the page
        hears from now on follows what they may see now; a page whose
        session ended is closed."""
        user = self.scope["user"]
        ended = event["sessions"] and session_tag(self.scope) in event["sessions"]
        if not ended and event["users"] is not None and user.pk not in event["users"]:
            return
        user = None if ended else await self._signed_in_user()
        if user is None or user.pk != self.scope["user"].pk:
            await self.send(text_data=fragment("signed_out"))
            await self.close(code=4401)
            return
        self.scope["user"] = user
        rules = await self._visible_rules(user)
        groups = [thread_group(t) for t in await self._existing_threads(self.wanted, user)]
        for group in set(self.groups_joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in set(groups) - set(self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)
        if (rules, sorted(groups)) != (self.visible_rules, sorted(self.groups_joined)):
            await self.send(text_data=fragment("rights_changed"))
        self.visible_rules, self.groups_joined = rules, groups

    async def run_status(self, event: dict) -> None:
        # A stop that asked something may have asked it under a rule this
        # reviewer may not see, hiding the thread from them from now on.
        hidden = (
            event["requests"]
            and self.visible_rules is not None
            and not await self._still_visible(event["thread"])
        )
        if hidden:
            group = thread_group(event["thread"])
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined = [g for g in self.groups_joined if g != group]
            return
        # Small fragments without queries: rendered here, on the loop.
        await self.send(
            text_data=render_to_string("reviews/live.html#run_status", {"event": event})
        )

    async def run_progress(self, event: dict) -> None:
        await self.send(
            text_data=render_to_string("reviews/live.html#run_progress", {"event": event})
        )
