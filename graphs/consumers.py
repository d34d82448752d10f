"""The worker's Channels consumer: `python manage.py runworker graph-runs`.

A message on `graph-runs` only says "look at the queue"; the rows say what to
do. The worker looks once as it starts (graphs' `runworker`), and after each
look schedules its next, so runs whose wake-up was lost, or whose worker
died, are picked up within SWEEP_SECONDS.

Runs execute in a thread while the consumer goes on reading its messages:
each worker process is also in the `graph-workers` group, where a cancel made
anywhere reaches the run it is executing before the graph's next step.

The side duties (graphs.duties: webhooks, deadlines) run at each wake-up and
every SWEEP_SECONDS (no sooner than duties.SOONEST_SECONDS after their last
round), even while a long run executes, in another thread than the runs': a
run is never claimed late because an endpoint doesn't answer.
"""

from __future__ import annotations

import asyncio
import logging

from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import database_sync_to_async

from graphs import duties, worker
from graphs.events import RUNS_CHANNEL, WORKERS_GROUP

log = logging.getLogger(__name__)

SWEEP_SECONDS = 10.0


class GraphRunsConsumer(AsyncConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker_id = worker.new_worker_id()
        self.working: asyncio.Task | None = None
        self.next_sweep: asyncio.TimerHandle | None = None
        self.woken_again = False
        self.on_duty: asyncio.Task | None = None
        self.next_duties: asyncio.TimerHandle | None = None
        self.duties_again = False
        self.duties_pace = duties.Pace()

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before each handler, on
        # the sync thread: busy executing a run for as long as it lasts, so
        # every message (a cancel among them) would wait for the run's end.
        # No handler here touches the database on the loop; worker.work runs
        # through database_sync_to_async, which closes them itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def runs_wake(self, message: dict) -> None:
        # Each wake-up renews the group membership, which expires otherwise.
        await self.channel_layer.group_add(WORKERS_GROUP, self.channel_name)
        self.woken_again = True
        if self.working is None or self.working.done():
            self.working = asyncio.ensure_future(self._work_through_queue())
        self._start_duties()

    async def run_cancelled(self, message: dict) -> None:
        worker.stop_held(message["database"], message["run"])

    async def run_streamed(self, message: dict) -> None:
        worker.stream_held(message["database"], message["run"])

    async def _work_through_queue(self) -> None:
        try:
            while self.woken_again:  # a wake-up while working asks for another pass
                self.woken_again = False
                await database_sync_to_async(worker.work)(self.worker_id)
        except Exception:
            log.exception("the worker's look at the queue failed; retrying at the next sweep")
        finally:
            self._schedule_sweep()

    def _start_duties(self) -> None:
        self.duties_again = True
        if self.on_duty is None or self.on_duty.done():
            self.on_duty = asyncio.ensure_future(self._do_duties())

    async def _do_duties(self) -> None:
        # Not on the sync thread, which executes runs: a thread of the loop's
        # executor, whose connections are closed before and after.
        sweep = database_sync_to_async(duties.sweep, thread_sensitive=False)
        try:
            while self.duties_again:  # a wake-up during a round asks for another
                await asyncio.sleep(self.duties_pace.wait())
                self.duties_again = False
                self.duties_pace.started()
                await sweep(self.worker_id)
        except Exception:
            log.exception("the worker's side duties failed; retrying at the next sweep")
        finally:
            if self.next_duties is not None:
                self.next_duties.cancel()
            loop = asyncio.get_running_loop()
            self.next_duties = loop.call_later(SWEEP_SECONDS, self._start_duties)

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
