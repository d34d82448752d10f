"""Runs per second through the worker against calling the graph directly.

Both sides run the demo `drafting` graph from start to its feedback interrupt
on new threads, with DjangoCheckpointSaver on the same SQLite database, in
interleaved rounds. The worker side pays for what a served run costs: the Run
row, the claim, the lease heartbeat, the progress events, the stop's
transaction and the review task. Ratio = worker rate / direct rate.

    python bench/worker.py [--rounds 15] [--runs 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import setup_django  # noqa: E402


def setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-worker-"))
    setup_django(f"sqlite:///{tmp / 'bench.sqlite3'}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10, help="runs per timed sample")
    args = parser.parse_args(argv)
    setup()

    from graphs.checkpoint import DjangoCheckpointSaver
    from graphs.models import Run
    from graphs.registry import get_registry
    from graphs.worker import new_worker_id, work

    graph = get_registry().get("drafting").compile(DjangoCheckpointSaver())
    worker_id = new_worker_id()

    def direct() -> None:
        for _ in range(args.runs):
            graph.invoke({"topic": "bench"}, {"configurable": {"thread_id": str(uuid.uuid4())}})

    def through_worker() -> None:
        for _ in range(args.runs):
            Run.enqueue(graph_name="drafting", kind=Run.Kind.START, payload={"topic": "bench"})
        assert work(worker_id) == args.runs

    cases = {"direct": direct, "worker": through_worker}
    for case in cases.values():
        case()  # warm up
    rates: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    rng = random.Random(5)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            cases[name]()
            rates[name].append(args.runs / (time.perf_counter() - start))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratio = medians["worker"] / medians["direct"]
    print("start -> interrupt on new threads, SQLite, medians of interleaved rounds")
    print(f"direct graph.invoke   {medians['direct']:8.1f} runs/s")
    print(f"through the worker    {medians['worker']:8.1f} runs/s")
    print(f"ratio worker/direct   {ratio:8.2f}x")
    return {**medians, "ratio": ratio}


if __name__ == "__main__":
    main()
