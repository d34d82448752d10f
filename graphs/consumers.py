"""The worker's Channels consumer: `python manage.py runworker graph-runs`.

A message on `graph-runs` only says "look at the queue"; the rows say what to
do. The worker looks once as it starts (graphs' `runworker`), and after each
look schedules its next, so runs whose wake-up was lost, or whose worker
died, are picked up within SWEEP_SECONDS.
"""

from __future__ import annotations

import asyncio

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async

from graphs import worker
from graphs.events import RUNS_CHANNEL

SWEEP_SECONDS = 10.0


class GraphRunsConsumer(AsyncConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker_id = worker.new_worker_id()
        self.busy = asyncio.Lock()
        self.next_sweep: asyncio.TimerHandle | None = None
        self.again = False

    async def runs_wake(self, message: dict) -> None:
        if self.busy.locked():
            self.again = True  # the loop in progress takes another look when done
            return
        async with self.busy:
            self.again = True
            while self.again:
                self.again = False
                await database_sync_to_async(worker.work)(self.worker_id)
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self.next_sweep is not None:
            self.next_sweep.cancel()
        loop = asyncio.get_running_loop()
        self.next_sweep = loop.call_later(
            SWEEP_SECONDS,
            lambda: asyncio.ensure_future(
                self.channel_layer.send(RUNS_CHANNEL, {"type": "runs.wake"})
            ),
        )
