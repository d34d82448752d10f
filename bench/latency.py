"""From a graph calling interrupt() to reviewers' websockets hearing of it.

The set-up under test runs as deployed, in processes of its own: the embedded
default is `manage.py serve` (daphne and the worker in one process, SQLite,
in-memory channel layer); PostgreSQL + Redis is daphne plus a
`manage.py runworker graph-runs` process (throwaway servers on loopback).
Reviewers are real websocket clients in this process, signed in with a
session and connected over loopback: 1, then N of them; each notes when the
bytes of a new row reach its socket.

Each sample starts a run of a one-node graph through the JSON API. The graph
writes the moment it calls interrupt() into its question (see
bench/graphs/stamped.py), which the queue row shows, so each client reads it
from the row it receives. Latency = the moment a client receives the row -
that moment; time.perf_counter() reads CLOCK_MONOTONIC on Linux, one clock
for every process on the machine.

    python bench/latency.py [--samples 40] [--clients 200] [--only embedded|postgres-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import BENCH_GRAPHS  # noqa: E402
from bench.graphs.stamped import STAMP_FORMAT  # noqa: E402
from tests.servers import free_port, stop_all, wait_for_port  # noqa: E402

STAMP = re.compile(re.escape(STAMP_FORMAT).replace(r"\{:\.6f\}", r"([\d.]+)"))
WARM_UP = 2

PREPARE = """
import json, django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
# As `make run` does: pages then name static files from the manifest instead
# of hashing each file a page names, on every page.
call_command("collectstatic", interactive=False, verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
from reviews.models import ApiToken
user = get_user_model().objects.create_superuser("bench", "", None)
client = Client(); client.force_login(user)
_, key = ApiToken.issue(user, "latency bench")
print(json.dumps({"session": client.cookies["sessionid"].value, "token": key}))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_env(tmp: Path, database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        "DATABASE_URL": database_url,
        "HITL_GRAPHS_CONFIG": str(BENCH_GRAPHS),
        "HITL_VAR_DIR": str(tmp),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Production settings: with DEBUG on, Django records every query.
        "DEBUG": "false",
        "SECRET_KEY": "bench-only",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@contextmanager
def served(
    name: str, tmp: Path, env: dict[str, str], daphnes: int = 1
) -> Iterator[tuple[list[int], dict[str, str], list[int]]]:
    """The set-up's processes, started on free ports (the embedded default
    is one process; otherwise `daphnes` daphne processes and a worker);
    yields the web ports, the bench reviewer's session cookie and API token,
    and the server processes' ids."""
    prepared = subprocess.run(
        [sys.executable, "-c", PREPARE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if prepared.returncode != 0:
        raise SystemExit(f"{name}: preparing the database failed:\n{prepared.stderr[-3000:]}")
    login = json.loads(prepared.stdout.strip().splitlines()[-1])
    ports = [free_port() for _ in range(daphnes)]
    if name == "embedded":
        commands = [["manage.py", "serve", "--port", str(ports[0])]]
        if env.get("BENCH_TRACE_MEMORY"):  # bench/traced.py
            commands[0][:0] = ["-m", "bench.traced"]
    else:
        commands = [
            ["-m", "daphne", "-b", "127.0.0.1", "-p", str(p), "hitl_site.asgi:application"]
            for p in ports
        ] + [["manage.py", "runworker", "graph-runs"]]
    logs = [tmp / f"{name}-{i}.log" for i in range(len(commands))]
    processes = []
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, *command],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for port in ports:
            wait_for_port(port)
        yield ports, login, [p.pid for p in processes]
    except BaseException:
        for log in logs:
            if log.exists():
                print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        stop_all(processes)


def start_run(port: int, token: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/runs",
        data=json.dumps({"graph": "stamped", "input": {"question": "go?"}}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.read()


ROWS = b'id="queue-rows"'


def timed_connection():
    from websockets.asyncio.client import ClientConnection

    class TimedConnection(ClientConnection):
        """Notes when the bytes of new queue rows reach the socket, before the
        library parses them: all clients share this process's loop, and the
        time it takes to get round to each would otherwise count as latency.
        (Server frames are neither masked nor, as no client offers it,
        compressed: the HTML is in the bytes as sent.)"""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.rows_arrived: list[float] = []

        def data_received(self, data: bytes) -> None:
            if ROWS in data:
                self.rows_arrived.append(time.perf_counter())
            super().data_received(data)

    return TimedConnection


async def measure(port: int, login: dict[str, str], clients: int, samples: int) -> list[float]:
    from websockets.asyncio.client import connect

    headers = {"Origin": "http://127.0.0.1", "Cookie": f"sessionid={login['session']}"}
    connection = timed_connection()
    sockets = [
        await connect(
            f"ws://127.0.0.1:{port}/ws/reviews/",
            additional_headers=headers,
            compression=None,
            open_timeout=30,
            create_connection=connection,
        )
        for _ in range(clients)
    ]

    async def heard(websocket) -> float:
        async for message in websocket:
            if 'id="queue-rows"' in message and (stamp := STAMP.search(message)):
                arrived = websocket.rows_arrived.pop(0) if websocket.rows_arrived else None
                return ((arrived or time.perf_counter()) - float(stamp.group(1))) * 1000
        raise ConnectionError("the server closed a reviewer's websocket")

    latencies: list[float] = []
    try:
        for sample in range(WARM_UP + samples):
            listening = [asyncio.ensure_future(heard(websocket)) for websocket in sockets]
            await asyncio.to_thread(start_run, port, login["token"])
            received = await asyncio.wait_for(asyncio.gather(*listening), timeout=60)
            if sample >= WARM_UP:
                latencies += received
    finally:
        for websocket in sockets:
            await websocket.close()
    return latencies


def run_setup(name: str, args: argparse.Namespace, database_url: str, redis_url: str | None):
    tmp = Path(tempfile.mkdtemp(prefix=f"hitl-bench-latency-{name}-"))
    if database_url == "sqlite":
        database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    rows = []
    with served(name, tmp, server_env(tmp, database_url, redis_url)) as ([port], login, _):
        for clients in (1, args.clients):
            values = asyncio.run(measure(port, login, clients, args.samples))
            rows.append(
                {
                    "setup": name,
                    "clients": clients,
                    "p50": statistics.median(values),
                    "p99": percentile(values, 0.99),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40, help="runs per client count")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--only", choices=["embedded", "postgres-redis"])
    args = parser.parse_args(argv)

    from tests.servers import (
        create_database,
        postgres_missing_reason,
        redis_missing_reason,
        start_postgres,
        start_redis,
    )

    rows: list[dict] = []
    if args.only in (None, "embedded"):
        rows += run_setup("embedded", args, "sqlite", None)
    if args.only in (None, "postgres-redis"):
        reason = postgres_missing_reason() or redis_missing_reason()
        if reason:
            print(f"PostgreSQL + Redis skipped: {reason}")
        else:
            postgres, redis = start_postgres(), start_redis()
            try:
                url = create_database(postgres.url, "bench_latency")
                rows += run_setup("postgres-redis", args, url, redis.url)
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
