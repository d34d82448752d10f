"""Server time of the queue page against the size of the backlog.

Two SQLite databases built in this run: 1,000 pending tasks over 100 threads,
and 100,000 over 10,000 threads. The page (middleware, queries, template,
through Django's test client, signed in) is timed on each in interleaved
rounds; the ratio large/small says whether the cost grows with the backlog.

    python bench/queue_page.py [--rounds 30] [--large 100000]
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

from bench.django_env import setup_django  # noqa: E402


def setup(tmp: Path) -> None:
    setup_django(f"sqlite:///{tmp / 'small.sqlite3'}", migrate=False)  # build() migrates each


def use(path: Path) -> None:
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = str(path)


def build(path: Path, tasks: int, threads: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from graphs.models import Thread
    from reviews.models import ReviewTask

    use(path)
    call_command("migrate", verbosity=0)
    get_user_model().objects.create_user("bench", password="bench-pw-123")
    Thread.objects.bulk_create(
        [
            Thread(thread_id=f"t-{i}", graph_name="support", title=f"Order {i}")
            for i in range(threads)
        ],
        batch_size=2000,
    )
    tools = ["refund", "send_email", "close_account"]
    batch: list[ReviewTask] = []
    for i in range(tasks):
        batch.append(
            ReviewTask(
                thread_id=f"t-{i % threads}",
                graph_name="support",
                checkpoint_id=f"cp-{i}",
                interrupt_id=f"i-{i}",
                shape="agent_inbox",
                kind="tool_edit",
                tool_name=tools[i % 3],
                args={"order_id": f"A-{i}", "amount": i % 500, "reason": "customer request"},
                description="Money leaves the company: check the amount against the order.",
                allowed=["accept", "edit", "response"],
            )
        )
        if len(batch) == 5000:
            ReviewTask.objects.bulk_create(batch)
            batch = []
    ReviewTask.objects.bulk_create(batch)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-queue-"))
    setup(tmp)
    from django.test import Client

    databases = {
        "small": (tmp / "small.sqlite3", args.small, max(1, args.small // 10)),
        "large": (tmp / "large.sqlite3", args.large, max(1, args.large // 10)),
    }
    for path, tasks, threads in databases.values():
        build(path, tasks, threads)

    clients = {}
    for name, (path, *_) in databases.items():
        use(path)
        client = Client()
        assert client.login(username="bench", password="bench-pw-123")
        clients[name] = client

    def page(name: str) -> float:
        use(databases[name][0])
        start = time.perf_counter()
        response = clients[name].get("/queue/")
        elapsed = time.perf_counter() - start
        assert response.status_code == 200 and response.content.count(b'class="task-row') == 50
        return elapsed

    for name in databases:
        page(name)  # warm up: templates, the connection's caches
    samples: dict[str, list[float]] = {name: [] for name in databases}
    order = list(databases)
    rng = random.Random(11)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            samples[name].append(page(name))
    medians = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    ratio = medians["large"] / medians["small"]
    print("queue page, first page of 50 pending tasks, SQLite, server time (ms)")
    print(f"{'backlog':<30}{'p50':>8}{'p90':>8}")
    for name, (_, tasks, threads) in databases.items():
        p90 = sorted(samples[name])[int(0.9 * (len(samples[name]) - 1))] * 1000
        print(f"{f'{tasks:,} over {threads:,} threads':<30}{medians[name]:>8.1f}{p90:>8.1f}")
    print(f"ratio large/small {ratio:.2f}x")
    return {**medians, "ratio": ratio}


if __name__ == "__main__":
    main()
