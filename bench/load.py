"""A team's load: open queue pages on websockets plus a steady mix of requests.

The set-up runs as deployed (see bench/latency.py): the embedded default is
one `manage.py serve` process; scale-out is N daphne processes and a worker
on PostgreSQL + Redis. A team is `--sockets` reviewers with the queue open on
a websocket, and requests arriving at `--rate` a second whatever the server's
pace (an open loop: a server that falls behind shows it in the latency),
in the mix reviewers make them:

    queue page 35%, a task page 15%, a thread page 10%, home 10%,
    the queue's rows as htmx asks them 10%, the pending count 10%,
    a run started through the API 5% (each one a new row pushed to every
    open queue), a task decided through the API 5%.

Each round lasts `--seconds`; rounds follow each other on one server, so a
server that slows down or grows over time shows it round by round. Reported
per round: requests, errors, p50/p95/p99 latency, the server's CPU time
per request (its pushes and runs included), its resident memory and the
machine's load average as the round began (other work on the
machine shows in the latency). Scale-out also reports how throughput grows
from 1 to 2 daphne processes (closed loop: `--clients` clients sending as fast as answered).

    python bench/load.py [--sockets 200] [--rate 50] [--seconds 60] [--rounds 3]
                         [--only embedded|scale-out] [--trace-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import percentile, served, server_env  # noqa: E402

MIX = [
    ("queue", 35),
    ("task", 15),
    ("thread", 10),
    ("home", 10),
    ("rows", 10),
    ("count", 10),
    ("start", 5),
    ("decide", 5),
]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time the server's processes have used (user + system)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        # The fields after the command's name, which may hold spaces.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


class Team:
    """The reviewers' clients: what they ask, and the ids they ask it about."""

    def __init__(self, ports: list[int], login: dict[str, str]) -> None:
        import httpx

        self.ports = itertools.cycle(ports)
        self.clients = {
            port: httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                cookies={"sessionid": login["session"]},
                headers={"Authorization": f"Bearer {login['token']}"},
                timeout=60,
                limits=httpx.Limits(max_connections=200),
            )
            for port in ports
        }
        self.tasks: list[int] = []
        self.threads: list[str] = []

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def ask(self, kind: str) -> int:
        client = self.clients[next(self.ports)]
        if kind == "start":
            body = {"graph": "stamped", "input": {"question": "go?"}}
            response = await client.post("/api/runs", json=body)
            if response.status_code == 201:
                self.threads.append(response.json()["thread_id"])
            return response.status_code
        if kind == "decide":
            if not self.tasks:
                return 200
            pk = self.tasks.pop(random.randrange(len(self.tasks)))
            response = await client.post(
                f"/api/tasks/{pk}/decision",
                json={"decisions": {str(pk): {"type": "answer", "value": "yes"}}},
            )
            return 200 if response.status_code in (200, 409) else response.status_code
        if kind == "task" and self.tasks:
            return (await client.get(f"/tasks/{random.choice(self.tasks)}/")).status_code
        if kind == "thread" and self.threads:
            return (await client.get(f"/threads/{random.choice(self.threads)}/")).status_code
        if kind == "rows":
            headers = {"HX-Request": "true", "HX-Target": "queue-rows"}
            return (await client.get("/queue/", headers=headers)).status_code
        if kind == "count":
            return (await client.get("/queue/count/")).status_code
        path = "/" if kind == "home" else "/queue/"
        return (await client.get(path)).status_code

    async def refresh_tasks(self) -> None:
        client = self.clients[next(self.ports)]
        response = await client.get("/api/tasks", params={"status": "pending", "limit": 100})
        if response.status_code == 200:
            self.tasks = [t["id"] for t in response.json()["tasks"]]


async def open_queues(ports: list[int], login: dict[str, str], sockets: int):
    from websockets.asyncio.client import connect

    headers = {"Origin": "http://127.0.0.1", "Cookie": f"sessionid={login['session']}"}
    opened = []
    for port in itertools.islice(itertools.cycle(ports), sockets):
        opened.append(
            await connect(
                f"ws://127.0.0.1:{port}/ws/reviews/",
                additional_headers=headers,
                compression=None,
                open_timeout=60,
                max_size=None,
            )
        )

    async def drain(websocket) -> None:
        async for _ in websocket:  # a page reads what it is sent
            pass

    readers = [asyncio.ensure_future(drain(w)) for w in opened]
    return opened, readers


async def open_loop(team: Team, rate: float, seconds: float) -> dict:
    """Requests at `rate` a second for `seconds`, each timed from when it
    was due, so a queue building up in the server counts."""
    kinds = [k for k, weight in MIX for _ in range(weight)]
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    pending = set()

    async def one(kind: str, due: float) -> None:
        nonlocal errors
        try:
            status = await team.ask(kind)
        except Exception:
            status = 0
        latencies.append((time.perf_counter() - due) * 1000)
        if status >= 400 or status == 0:
            errors += 1

    for n in range(int(rate * seconds)):
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if n % int(rate) == 0:
            pending.add(asyncio.ensure_future(team.refresh_tasks()))
        pending.add(asyncio.ensure_future(one(random.choice(kinds), due)))
        pending = {p for p in pending if not p.done()}
    await asyncio.gather(*pending)
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
    }


async def closed_loop(team: Team, clients: int, seconds: float) -> float:
    """Requests a second with `clients` clients asking as fast as answered."""
    kinds = [k for k, weight in MIX if k not in ("start", "decide") for _ in range(weight)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await team.ask(random.choice(kinds))
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done / seconds


async def rounds(ports, login, pids, args) -> list[dict]:
    team = Team(ports, login)
    sockets, readers = await open_queues(ports, login, args.sockets)
    try:
        for _ in range(20):  # something on the pages to look at
            await team.ask("start")
        await asyncio.sleep(2)
        await team.refresh_tasks()
        rows = []
        for number in range(1, args.rounds + 1):
            before, load = rss_mb(pids), os.getloadavg()[0]
            await snapshot(pids, args.trace_memory, number - 1)
            cpu = cpu_seconds(pids)
            row = await open_loop(team, args.rate, args.seconds)
            rows.append(
                {
                    "round": number,
                    **row,
                    "cpu": (cpu_seconds(pids) - cpu) * 1000 / row["requests"],
                    "rss_before": before,
                    "rss_after": rss_mb(pids),
                    "load": load,
                }
            )
        await snapshot(pids, args.trace_memory, args.rounds)
        return rows
    finally:
        for reader in readers:
            reader.cancel()
        for websocket in sockets:
            await websocket.close()
        await team.close()


async def snapshot(pids: list[int], folder: Path | None, number: int) -> None:
    """With --trace-memory: the objects the server holds now (bench/traced.py)."""
    if folder is None:
        return
    os.kill(pids[0], signal.SIGUSR1)
    path = folder / f"objects-{number}.json"
    for _ in range(600):
        if path.exists():
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"the server wrote no {path.name}")


def memory_growth(folder: Path, rounds: int, lines: int = 30) -> None:
    """What the server holds more of after each round than before the first."""
    import json

    counts = [json.loads((folder / f"objects-{n}.json").read_text()) for n in range(rounds + 1)]
    grown = sorted(counts[-1], key=lambda k: counts[0].get(k, 0) - counts[-1][k])[:lines]
    print(f"objects the server holds, before round 1 and after each of {rounds}:")
    for kind in grown:
        print(f"  {' → '.join(str(c.get(kind, 0)) for c in counts):<40} {kind}")


def run(name: str, args, database_url: str, redis_url: str | None, daphnes: int = 1):
    tmp = Path(tempfile.mkdtemp(prefix=f"hitl-bench-load-{name}-"))
    if database_url == "sqlite":
        database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    env = server_env(tmp, database_url, redis_url)
    if args.trace_memory and name == "embedded":
        args.trace_memory = tmp
        env["BENCH_TRACE_MEMORY"] = str(tmp)
    else:
        args.trace_memory = None
    with served(name, tmp, env, daphnes) as (ports, login, pids):
        out = asyncio.run(rounds(ports, login, pids, args))
    if args.trace_memory:
        memory_growth(tmp, args.rounds)
    return out


def throughput(args, postgres_url: str, redis_url: str) -> dict[int, float]:
    from tests.servers import create_database

    out = {}
    for daphnes in (1, 2):
        tmp = Path(tempfile.mkdtemp(prefix=f"hitl-bench-load-out{daphnes}-"))
        database_url = create_database(postgres_url, f"bench_load_{daphnes}_daphnes")
        env = server_env(tmp, database_url, redis_url)
        with served("scale-out", tmp, env, daphnes) as (ports, login, _):

            async def measure() -> float:
                team = Team(ports, login)
                try:
                    for _ in range(10):
                        await team.ask("start")
                    await team.refresh_tasks()
                    await closed_loop(team, args.clients, 3)  # warm up
                    return await closed_loop(team, args.clients, args.seconds / 2)
                finally:
                    await team.close()

            out[daphnes] = asyncio.run(measure())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=20, help="scale-out's closed loop")
    parser.add_argument("--only", choices=["embedded", "scale-out"])
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="embedded: trace the server's allocations (slow) and show what grew",
    )
    args = parser.parse_args(argv)

    from tests.servers import (
        create_database,
        postgres_missing_reason,
        redis_missing_reason,
        start_postgres,
        start_redis,
    )

    print(
        f"{args.sockets} open queues, {args.rate:g} requests/s of the reviewer mix, "
        f"rounds of {args.seconds:g} s (latency in ms from when each request was due)"
    )
    print(
        f"{'set-up':<12}{'round':>6}{'reqs':>7}{'errors':>7}{'p50':>8}{'p95':>8}{'p99':>8}"
        f"{'CPU/req':>8}{'RSS MB':>15}{'load':>7}"
    )
    setups = []
    if args.only in (None, "embedded"):
        setups.append(("embedded", "sqlite", None))
    postgres = redis = None
    if args.only in (None, "scale-out"):
        reason = postgres_missing_reason() or redis_missing_reason()
        if reason:
            print(f"scale-out skipped: {reason}")
        else:
            postgres, redis = start_postgres(), start_redis()
            setups.append(("scale-out", create_database(postgres.url, "bench_load"), redis.url))
    try:
        for name, database_url, redis_url in setups:
            for row in run(name, args, database_url, redis_url):
                print(
                    f"{name:<12}{row['round']:>6}{row['requests']:>7}{row['errors']:>7}"
                    f"{row['p50']:>8.0f}{row['p95']:>8.0f}{row['p99']:>8.0f}{row['cpu']:>8.1f}"
                    f"{row['rss_before']:>7.0f} → {row['rss_after']:<5.0f}{row['load']:>7.1f}"
                )
        if redis is not None:
            load = os.getloadavg()[0]
            rates = throughput(args, postgres.url, redis.url)
            print(
                f"scale-out throughput, {args.clients} clients: 1 daphne {rates[1]:.0f} req/s, "
                f"2 daphnes {rates[2]:.0f} req/s ({rates[2] / rates[1]:.2f}x), "
                f"load average {load:.1f} at start"
            )
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()
