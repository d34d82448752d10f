"""The worker's side duties, in a loop of their own.

Other apps hang periodic work on `worker_sweep` (the reviews app: webhook
deliveries, deadlines and their mail). It runs beside the loop that claims
and executes runs, never before a claim: a run queued while a webhook
endpoint doesn't answer, or a mail server is slow, starts as soon as a worker
is free. The duties run at each wake-up and at least every sweep; whatever
they start in threads of their own is finished, or given up within its
timeout, when the worker stops (`worker_stopping`).

`manage.py serve` runs them in a `DutiesLoop` thread; the `runworker
graph-runs` consumer (graphs.consumers) runs each round in a thread of its
loop's executor, apart from the thread that executes runs.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connections

from graphs.models import Run
from graphs.signals import worker_stopping, worker_sweep

log = logging.getLogger(__name__)


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
    """Runs the side duties every `every` seconds and at each `wake()`."""

    def __init__(self, worker_id: str, every: float):
        super().__init__(name=f"duties-{worker_id}", daemon=True)
        self.worker_id, self.every = worker_id, every
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
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
