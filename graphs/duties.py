"""The worker's side duties, in a loop of their own.

Other apps hang periodic work on `worker_sweep` (the reviews app: webhook
deliveries, deadlines and their mail). It runs beside the loop that claims
and executes runs, never before a claim: a run queued while a webhook
endpoint doesn't answer, or a mail server is slow, starts as soon as a worker
is free. The duties run at each wake-up and at least every sweep, but no
sooner than SOONEST_SECONDS after their last round: every queued run wakes
the worker, and under a steady stream of runs a round per run cost a fifth of
a worker's time for nothing (the wake-ups coalesce into the next round, so
what fell due is still seen within that time). Whatever they start in threads
of their own is finished, or given up within its timeout, when the worker
stops (`worker_stopping`).

`manage.py serve` runs them in a `DutiesLoop` thread; the `runworker
graph-runs` consumer (graphs.consumers) runs each round in a thread of its
loop's executor, apart from the thread that executes runs.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connections

from graphs.models import Run
from graphs.signals import worker_stopping, worker_sweep

log = logging.getLogger(__name__)

SOONEST_SECONDS = 1.0


class Pace:
    """When the next round may start: not before `soonest` seconds after
    the last one started."""

    def __init__(self, soonest: float = SOONEST_SECONDS) -> None:
        self.soonest = soonest
        self.last: float | None = None

    def wait(self) -> float:
        """Seconds to wait before the next round (0 when it may start now)."""
        if self.last is None:
            return 0.0
        return max(0.0, self.last + self.soonest - time.monotonic())

    def started(self) -> None:
        self.last = time.monotonic()


def sweep(worker_id: str) -> None:
    """One round of the side duties; one's failure doesn't stop the others."""
    for _, result in worker_sweep.send_robust(sender=Run, worker_id=worker_id):
        if isinstance(result, Exception):
            log.error("a side duty failed", exc_info=result)


def stop() -> None:
    """The worker is stopping: the duties finish what they have in flight."""
    for _, result in worker_stopping.send_robust(sender=Run):
        if isinstance(result, Exception):
            log.error("a side duty failed to stop", exc_info=result)


class DutiesLoop(threading.Thread):
    """Runs the side duties every `every` seconds and at each `wake()` (no
    sooner than `every` or SOONEST_SECONDS after the last round)."""

    def __init__(self, worker_id: str, every: float):
        super().__init__(name=f"duties-{worker_id}", daemon=True)
        self.worker_id, self.every = worker_id, every
        self.pace = Pace(min(every, SOONEST_SECONDS))
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._stopping.wait(self.pace.wait()):
                    break
                self.pace.started()
                # A long-lived thread: no request cycle closes its connection.
                close_old_connections()
                try:
                    sweep(self.worker_id)
                except Exception:
                    log.exception("the side duties failed; retrying at the next sweep")
                finally:
                    close_old_connections()
                self._wake.wait(self.every)
                self._wake.clear()
        finally:
            connections.close_all()

    def stop(self, timeout: float | None = None) -> None:
        """End the loop after its round, then what the duties have in flight."""
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)
        stop()
