"""The worker's side duties come at most once per duties.SOONEST_SECONDS,
however many runs wake the worker meanwhile: every queued run wakes it, and
a round per run cost a busy worker a fifth of its time. A wake-up in between
is not lost: it is the next round, once the time has passed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator

from graphs import duties
from graphs.consumers import GraphRunsConsumer
from graphs.duties import DutiesLoop
from graphs.signals import worker_sweep

BURST = 20


@pytest.fixture
def rounds():
    """The moments the duties' rounds began."""
    began: list[float] = []
    lock = threading.Lock()

    def count(**kwargs) -> None:
        with lock:
            began.append(time.monotonic())

    worker_sweep.connect(count, dispatch_uid="test.count_rounds", weak=False)
    yield began
    worker_sweep.disconnect(dispatch_uid="test.count_rounds")


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_burst_of_wake_ups_costs_one_more_round_of_the_served_duties(transactional_db, rounds):
    loop = DutiesLoop("w1", every=60)  # no round of its own during the test
    loop.start()
    try:
        wait_for(lambda: len(rounds) == 1, "the first round")
        for _ in range(BURST):  # as a run queued every 10 ms wakes it
            loop.wake()
            time.sleep(0.01)
        wait_for(lambda: len(rounds) >= 2, "the round the wake-ups asked for")
        time.sleep(duties.SOONEST_SECONDS / 2)
        assert len(rounds) == 2
        assert rounds[1] - rounds[0] >= duties.SOONEST_SECONDS * 0.9  # clocks read apart
    finally:
        loop.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_wake_ups_costs_one_more_round_of_the_consumers_duties(rounds):
    app = ApplicationCommunicator(
        GraphRunsConsumer.as_asgi(), {"type": "channel", "channel": "graph-runs"}
    )
    waiting = sync_to_async(wait_for, thread_sensitive=False)
    try:
        await app.send_input({"type": "runs.wake"})
        await waiting(lambda: len(rounds) == 1, "the first round")
        for _ in range(BURST):
            await app.send_input({"type": "runs.wake"})
            await asyncio.sleep(0.01)
        await waiting(lambda: len(rounds) >= 2, "the round the wake-ups asked for")
        await asyncio.sleep(duties.SOONEST_SECONDS / 2)
        assert len(rounds) == 2
        assert rounds[1] - rounds[0] >= duties.SOONEST_SECONDS * 0.9  # clocks read apart
    finally:
        app.stop()
