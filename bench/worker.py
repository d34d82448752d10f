"""Runs per second through the worker against calling the graph directly.

Both sides run a demo graph (`drafting` unless told) from start to its first
interrupt on new threads, with DjangoCheckpointSaver on the same SQLite
database, in interleaved rounds. Other shapes: `stamped`, the latency bench's
graph, which spends 20 ms in a stand-in for a model call before it asks;
`classic`, a static breakpoint before a tools node, whose stop asks each of
the three calls it would run as a task of its own. The worker side pays for what a served run costs: the
claim, the lease heartbeat, the progress events, the stop's transaction, the
review task with its audit row, and the live queue row. The runs are queued
before the worker wakes, as pages queue them; a third case times queueing
too. Ratio = worker rate / direct rate.

    python bench/worker.py [--rounds 15] [--runs 10] [--graph drafting]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import BENCH_GRAPHS, setup_django  # noqa: E402

# Each demo graph from its start to its first interrupt.
INPUTS = {
    "drafting": {"topic": "bench"},
    "support": {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]},
    "tool_agent": {
        "messages": [{"role": "user", "content": "Book me a flight to Porto for 2 people"}]
    },
    "stamped": {"question": "go?"},
    "stamped_async": {"question": "go?"},
    # A static breakpoint before a tools node, three calls in one turn.
    "classic": {"messages": [{"role": "user", "content": "Fly me to Oslo, two of us"}]},
}


def setup(graph: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-worker-"))
    config = BENCH_GRAPHS if graph.startswith(("stamped", "classic")) else None
    setup_django(f"sqlite:///{tmp / 'bench.sqlite3'}", graphs_config=config)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10, help="runs per timed sample")
    parser.add_argument("--graph", choices=sorted(INPUTS), default="drafting")
    args = parser.parse_args(argv)
    setup(args.graph)

    from graphs.checkpoint import DjangoCheckpointSaver
    from graphs.models import Run
    from graphs.registry import get_registry
    from graphs.worker import new_worker_id, runs_on_loop, work

    graph = get_registry().get(args.graph).compile(DjangoCheckpointSaver())
    payload = INPUTS[args.graph]
    worker_id = new_worker_id()

    async_graph = runs_on_loop(graph)

    def direct() -> float:
        start = time.perf_counter()
        if async_graph:  # LangGraph's own way for async nodes: ainvoke on a loop
            asyncio.run(direct_async())
        else:
            for _ in range(args.runs):
                graph.invoke(payload, {"configurable": {"thread_id": str(uuid.uuid4())}})
        return time.perf_counter() - start

    async def direct_async() -> None:
        for _ in range(args.runs):
            await graph.ainvoke(payload, {"configurable": {"thread_id": str(uuid.uuid4())}})

    def queue_runs() -> None:
        for _ in range(args.runs):
            Run.enqueue(graph_name=args.graph, kind=Run.Kind.START, payload=payload)

    def drain() -> float:
        queue_runs()  # asked for by the pages, before the worker wakes
        start = time.perf_counter()
        assert work(worker_id) == args.runs
        return time.perf_counter() - start

    def queue_and_drain() -> float:
        start = time.perf_counter()
        queue_runs()
        assert work(worker_id) == args.runs
        return time.perf_counter() - start

    cases = {"direct": direct, "worker": drain, "queued+worker": queue_and_drain}
    for case in cases.values():
        case()  # warm up
    rates: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    rng = random.Random(5)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            rates[name].append(args.runs / cases[name]())
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratio = medians["worker"] / medians["direct"]
    per_run_ms = 1000 / medians["worker"] - 1000 / medians["direct"]
    print(f"{args.graph}: start -> interrupt on new threads, SQLite, medians of interleaved rounds")
    way = "ainvoke" if async_graph else "invoke"
    print(f"direct graph.{way:<16}{medians['direct']:8.1f} runs/s")
    print(f"through the worker           {medians['worker']:8.1f} runs/s")
    print(f"  with queueing the runs     {medians['queued+worker']:8.1f} runs/s")
    print(f"ratio worker/direct          {ratio:8.2f}x")
    print(f"worker's own cost per run    {per_run_ms:8.2f} ms")
    return {**medians, "ratio": ratio}


if __name__ == "__main__":
    main()
