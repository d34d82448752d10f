"""Server time of a thread's page against the length of its history.

Two threads of the `counter` graph (bench/graphs/counter.py) on one SQLite
database: 50 checkpoints and 5,000. The whole thread page (timeline, the
latest point's state and diff, the diagram) is timed through Django's test
client, signed in, in interleaved rounds; the ratio long/short says whether
the first view's cost grows with the history.

    python bench/timeline.py [--rounds 30] [--long 5000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import BENCH_GRAPHS, setup_django  # noqa: E402


def setup(tmp: Path) -> None:
    setup_django(f"sqlite:///{tmp / 'bench.sqlite3'}", graphs_config=BENCH_GRAPHS)


def thread_of(steps: int) -> str:
    from graphs.models import Thread
    from graphs.worker import compiled_graph

    thread_id = f"counter-{steps}"
    Thread.objects.create(thread_id=thread_id, graph_name="counter")
    compiled_graph("counter").invoke(
        {"target": steps}, {"configurable": {"thread_id": thread_id}, "recursion_limit": steps + 10}
    )
    return thread_id


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--short", type=int, default=50)
    parser.add_argument("--long", type=int, default=5000)
    args = parser.parse_args(argv)
    setup(Path(tempfile.mkdtemp(prefix="hitl-bench-timeline-")))
    from django.contrib.auth import get_user_model
    from django.test import Client

    from graphs.models import Checkpoint

    threads = {"short": thread_of(args.short - 2), "long": thread_of(args.long - 2)}
    sizes = {
        name: Checkpoint.objects.filter(thread_id=thread_id).count()
        for name, thread_id in threads.items()
    }
    get_user_model().objects.create_user("bench", password="bench-pw-123")
    client = Client()
    assert client.login(username="bench", password="bench-pw-123")

    def page(name: str) -> float:
        start = time.perf_counter()
        response = client.get(f"/threads/{threads[name]}/")
        elapsed = time.perf_counter() - start
        assert response.status_code == 200 and b'id="point-' in response.content
        return elapsed

    for name in threads:
        page(name)
    samples: dict[str, list[float]] = {name: [] for name in threads}
    order = list(threads)
    rng = random.Random(13)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            samples[name].append(page(name))
    medians = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    ratio = medians["long"] / medians["short"]
    print("thread page, first view, SQLite, server time (ms)")
    print(f"{'history':<26}{'p50':>8}{'p90':>8}")
    for name in threads:
        p90 = sorted(samples[name])[int(0.9 * (len(samples[name]) - 1))] * 1000
        print(f"{f'{sizes[name]:,} checkpoints':<26}{medians[name]:>8.1f}{p90:>8.1f}")
    print(f"ratio long/short {ratio:.2f}x")
    return {**medians, "ratio": ratio}


if __name__ == "__main__":
    main()
