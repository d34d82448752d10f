"""The event vocabulary, in one place: group names and what is published.

Groups: `queue` (every reviewer's queue page) and `thread.<thread_id>` (pages
showing one thread). Messages are small dicts; consumers render them. A lost
message costs only liveness: pages reload from the database.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

QUEUE_GROUP = "queue"
RUNS_CHANNEL = "graph-runs"
_UNSAFE = re.compile(r"[^0-9A-Za-z_.\-]")


def thread_group(thread_id: str) -> str:
    # Channels accepts only ASCII letters, digits, hyphens, underscores and
    # periods in group names, under 100 characters.
    return f"thread.{_UNSAFE.sub('_', str(thread_id))}"[:99]


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # liveness only: the database already has the truth
        log.warning("could not publish %s to %s", message.get("type"), group, exc_info=True)


def publish_progress(run, *, step: int, nodes: list[str], namespace: tuple[str, ...]) -> None:
    _send(
        thread_group(run.thread_id),
        {
            "type": "run.progress",
            "run": run.pk,
            "thread": run.thread_id,
            "step": step,
            "nodes": nodes,
            "namespace": "|".join(namespace),
        },
    )


def publish_run(run, status: str, *, requests: list | None = None) -> None:
    message = {
        "type": "run.status",
        "run": run.pk,
        "thread": run.thread_id,
        "graph": run.graph_name,
        "status": status,
        "requests": len(requests or ()),
    }
    _send(thread_group(run.thread_id), message)
    if requests:
        _send(QUEUE_GROUP, {**message, "type": "queue.changed"})


def wake_workers() -> None:
    """Tell a worker to look at the queue; the rows say what to do."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(RUNS_CHANNEL, {"type": "runs.wake"})
    except ChannelFull:
        pass  # wake-ups already waiting say the same thing
    except Exception:
        log.warning("could not wake workers; the periodic sweep will", exc_info=True)
