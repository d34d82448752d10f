"""One event loop per process for graphs: runs stream on it (LangGraph's
async path, so `async def` nodes and async tools run), and what an async
graph factory opens (a client session, a pool) lives on it for good."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

_T = TypeVar("_T")
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def graph_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="graphs-loop", daemon=True).start()
    return _loop


def run_on_graph_loop(awaitable: Awaitable[_T]) -> _T:
    """Await on the graphs' loop from a thread of the caller's, and wait."""
    return asyncio.run_coroutine_threadsafe(_awaited(awaitable), graph_loop()).result()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
