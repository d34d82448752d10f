"""From a graph calling interrupt() to reviewers' websockets hearing of it.

A run of a one-node graph (bench/graphs/stamped.py notes the moment it calls
interrupt()) goes through the worker; 1 and then N reviewer websockets,
connected through the real ASGI stack (auth, origin check, consumer), wait on
the queue for its new task. Latency = the moment each client receives the
fragment - the moment of interrupt(). Both sides live in this process, so the
clocks agree; the path between them is the real one: the worker's stop
transaction, the task rows, the channel layer, the consumer, the socket.

Two set-ups, each in its own process: the embedded default (SQLite, in-memory
channel layer) and PostgreSQL + Redis (throwaway servers on loopback).

    python bench/latency.py [--samples 40] [--clients 200] [--only embedded|postgres-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import BENCH_GRAPHS, setup_django  # noqa: E402

ORIGIN = (b"origin", b"http://localhost")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def setup(database_url: str, redis_url: str | None) -> None:
    setup_django(
        database_url, redis_url=redis_url, graphs_config=BENCH_GRAPHS, allowed_hosts="localhost"
    )


def session_cookie() -> bytes:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def measure(clients: int, samples: int) -> list[float]:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from bench.graphs.stamped import STAMPS
    from graphs.models import Run
    from graphs.worker import new_worker_id, work
    from hitl_site.asgi import application

    cookie = await sync_to_async(session_cookie)()
    sockets = []
    for _ in range(clients):
        communicator = WebsocketCommunicator(
            application, "/ws/reviews/", headers=[ORIGIN, (b"cookie", cookie)]
        )
        connected, _ = await communicator.connect(timeout=10)
        assert connected, "the reviewer websocket refused the benchmark's session"
        sockets.append(communicator)

    async def heard(communicator: WebsocketCommunicator) -> float:
        while 'id="queue-rows"' not in await communicator.receive_from(timeout=30):
            pass
        return time.perf_counter()

    worker_id = new_worker_id()
    latencies: list[float] = []
    for sample in range(samples + 2):  # two warm-up runs
        run = await sync_to_async(Run.enqueue)(
            graph_name="stamped", kind=Run.Kind.START, payload={"question": "go?"}
        )
        listening = [asyncio.ensure_future(heard(c)) for c in sockets]
        await sync_to_async(work, thread_sensitive=False)(worker_id)
        received = await asyncio.gather(*listening)
        if sample >= 2:
            latencies += [(at - STAMPS[run.thread_id]) * 1000 for at in received]
    for communicator in sockets:
        await communicator.disconnect()
    return latencies


def child(args: argparse.Namespace) -> None:
    setup(args.database_url, args.redis_url)
    for clients in (1, args.clients):
        values = asyncio.run(measure(clients, args.samples))
        row = {
            "setup": args.child,
            "clients": clients,
            "p50": statistics.median(values),
            "p99": percentile(values, 0.99),
        }
        print(json.dumps(row), flush=True)
    from django.db import connections

    connections.close_all()


def run_child(name: str, args: argparse.Namespace, database_url: str, redis_url: str | None):
    command = [sys.executable, __file__, "--child", name, "--database-url", database_url]
    command += ["--samples", str(args.samples), "--clients", str(args.clients)]
    if redis_url:
        command += ["--redis-url", redis_url]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40, help="runs per client count")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--only", choices=["embedded", "postgres-redis"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return []

    from tests.servers import (
        create_database,
        postgres_missing_reason,
        redis_missing_reason,
        start_postgres,
        start_redis,
    )

    rows: list[dict] = []
    if args.only in (None, "embedded"):
        tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-latency-"))
        rows += run_child("embedded", args, f"sqlite:///{tmp / 'bench.sqlite3'}", None)
    if args.only in (None, "postgres-redis"):
        reason = postgres_missing_reason() or redis_missing_reason()
        if reason:
            print(f"PostgreSQL + Redis skipped: {reason}")
        else:
            postgres, redis = start_postgres(), start_redis()
            try:
                url = create_database(postgres.url, "bench_latency")
                rows += run_child("postgres-redis", args, url, redis.url)
            finally:
                redis.stop()
                postgres.stop()
    print(f"interrupt() -> websocket client, {args.samples} runs per row (ms)")
    print(f"{'set-up':<16}{'clients':>8}{'p50':>9}{'p99':>9}")
    for row in rows:
        print(f"{row['setup']:<16}{row['clients']:>8}{row['p50']:>9.1f}{row['p99']:>9.1f}")
    return rows


if __name__ == "__main__":
    main()
