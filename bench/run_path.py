"""From queueing a run to its first checkpoint, with webhook endpoints that never answer.

Webhook deliveries, deadline mail and escalation are the worker's side
duties; none of them may stand between a queued run and the worker that
claims it. Each sample makes 0, 1 or 3 deliveries due, each to its own
black-hole endpoint (a loopback server that accepts the connection and never
answers), queues a run of the `stamped` bench graph with Run.enqueue (what
pages, the JSON API and `startrun` call) and notes when the run's first
checkpoint is in the database. The endpoints hang up once the sample is
taken, so every sample finds them idle.

Both ways the worker runs are timed, in this process on SQLite: `serve`'s
embedded worker thread (woken by the queued run, as `manage.py serve` wakes
it) and the `runworker graph-runs` consumer (sent the wake-up the channel
layer would bring it). Cases are interleaved in shuffled rounds; medians,
and the ratio of each case to the case without endpoints (the point: ~1.0x).

    python bench/run_path.py [--rounds 7] [--only serve|runworker]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import BENCH_GRAPHS, setup_django  # noqa: E402

CASES = (0, 1, 3)
POLL = 0.001


# After a sample the worker looks at the queue once more (the sample's wake-up
# came while it was busy): the next sample waits for it to be idle again, and
# for the side duties' pace to let the sample's wake-up start a round at once,
# so that the deliveries made due are in flight while the run starts.
def idle_seconds() -> float:
    from graphs.duties import SOONEST_SECONDS

    return SOONEST_SECONDS + 0.1


class BlackHole(threading.Thread):
    """Accepts connections and never answers until told to hang up."""

    def __init__(self) -> None:
        super().__init__(name="black-hole", daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        self.accepted = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.held.append(conn)
                self.accepted += 1

    def hang_up(self) -> None:
        with self.lock:
            held, self.held = self.held, []
        for conn in held:
            conn.close()

    def close(self) -> None:
        self.listener.close()
        self.hang_up()


def prepare(holes: list[BlackHole]) -> Callable[[int], None]:
    """One endpoint and one delivery per black hole; returns how to make the
    first n deliveries due (and the others done) before a sample."""
    from django.utils import timezone

    from reviews.models import WebhookDelivery, WebhookEndpoint

    deliveries = []
    for i, hole in enumerate(holes):
        # Subscribed to nothing: the bench's runs add no deliveries of their own.
        endpoint = WebhookEndpoint.objects.create(name=f"hole {i}", url=hole.url, secret="k")
        deliveries.append(
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                event="task.created",
                payload={"task": i},
                status=WebhookDelivery.Status.DELIVERED,  # until a sample makes it due
            ).pk
        )

    def make_due(n: int) -> None:
        Status = WebhookDelivery.Status
        WebhookDelivery.objects.filter(pk__in=deliveries[:n]).update(
            status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
        )
        WebhookDelivery.objects.filter(pk__in=deliveries[n:]).update(status=Status.DELIVERED)

    return make_due


def first_checkpoint(thread_id: str) -> None:
    from graphs.models import Checkpoint

    while not Checkpoint.objects.filter(thread_id=thread_id).exists():
        time.sleep(POLL)


def settle(run_pk: int) -> None:
    """Let the run stop before the next sample starts."""
    from graphs.models import Run

    while Run.objects.filter(pk=run_pk, status__in=Run.ACTIVE).exists():
        time.sleep(POLL)


def queue_run():
    from graphs.models import Run

    return Run.enqueue(graph_name="stamped", kind=Run.Kind.START, payload={"question": "go?"})


def serve_samples(order: list[tuple[int, int]], make_due, holes) -> list[tuple[int, float]]:
    """`manage.py serve`'s worker thread, woken by the queued run."""
    from graphs.management.commands.serve import EmbeddedWorker

    worker = EmbeddedWorker(2.0)
    worker.start()
    samples = []
    try:
        for _, case in order:
            make_due(case)
            start = time.perf_counter()
            run = queue_run()
            first_checkpoint(run.thread_id)
            samples.append((case, time.perf_counter() - start))
            settle(run.pk)
            for hole in holes:
                hole.hang_up()
            time.sleep(idle_seconds())
    finally:
        worker.stopping.set()
        worker.wake.set()
        worker.join(timeout=30)
    return samples


def runworker_samples(order: list[tuple[int, int]], make_due, holes) -> list[tuple[int, float]]:
    """The `runworker graph-runs` consumer, sent a wake-up as the layer brings one."""
    from asgiref.sync import sync_to_async
    from channels.testing import ApplicationCommunicator

    from graphs.consumers import GraphRunsConsumer

    elsewhere = sync_to_async(lambda f, *a: f(*a), thread_sensitive=False)

    async def main() -> list[tuple[int, float]]:
        app = ApplicationCommunicator(
            GraphRunsConsumer.as_asgi(), {"type": "channel", "channel": "graph-runs"}
        )
        samples = []
        try:
            for _, case in order:
                await elsewhere(make_due, case)
                start = time.perf_counter()
                run = await elsewhere(queue_run)
                await app.send_input({"type": "runs.wake"})
                await elsewhere(first_checkpoint, run.thread_id)
                samples.append((case, time.perf_counter() - start))
                await elsewhere(settle, run.pk)
                for hole in holes:
                    hole.hang_up()
                await asyncio.sleep(idle_seconds())
        finally:
            app.stop()
        return samples

    return asyncio.run(main())


SETUPS = {"serve": serve_samples, "runworker": runworker_samples}


def main(argv: list[str] | None = None) -> dict[str, dict[int, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=sorted(SETUPS))
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-run-path-"))
    setup_django(f"sqlite:///{tmp / 'bench.sqlite3'}", graphs_config=BENCH_GRAPHS)

    holes = [BlackHole() for _ in range(max(CASES))]
    for hole in holes:
        hole.start()
    make_due = prepare(holes)
    rng = random.Random(7)
    results: dict[str, dict[int, float]] = {}
    try:
        for name, take in SETUPS.items():
            if args.only not in (None, name):
                continue
            order = [(0, 0)]  # warm up: the graph compiled, the tables read once
            for r in range(1, args.rounds + 1):
                cases = list(CASES)
                rng.shuffle(cases)
                order += [(r, case) for case in cases]
            samples = take(order, make_due, holes)[1:]
            results[name] = {
                case: statistics.median(s for c, s in samples if c == case) for case in CASES
            }
    finally:
        for hole in holes:
            hole.close()

    print(f"Run.enqueue -> first checkpoint, SQLite, medians of {args.rounds} rounds (ms)")
    print(f"{'worker':<11}" + "".join(f"{f'{n} dead':>10}" for n in CASES) + "  ratios to 0 dead")
    for name, medians in results.items():
        ratios = "  ".join(f"{n}: {medians[n] / medians[0]:.2f}x" for n in CASES[1:])
        cells = "".join(f"{medians[n] * 1000:>10.1f}" for n in CASES)
        print(f"{name:<11}{cells}  {ratios}")
    print(f"black-hole connections accepted: {sum(hole.accepted for hole in holes)}")
    return results


if __name__ == "__main__":
    main()
