"""runs.wait through the Agent Server API: this server against LangGraph's own.

Each sample is one `runs.wait` of langgraph-sdk's sync client on a fresh
thread (`if_not_exists="create"`) of the demo `drafting` graph, returning at
its first interrupt; the client checks the answer lists it. 1 client, then N
clients at once (threads of this process, one SDK client each). Reported:
the median latency of a runs.wait and the runs per second the server
completed, for

- embedded: `manage.py serve` (daphne and the worker in one process, SQLite);
- postgres-redis: two daphne processes sharing one listening socket (opened
  here once and inherited, `daphne --fd`: the kernel hands each new
  connection to whichever process accepts first) plus two `manage.py
  runworker graph-runs` processes, on throwaway PostgreSQL and Redis servers
  on loopback (`--daphnes 1,2` serves both counts, as `postgres-redis` for
  two and `postgres-redis-1daphne` for one);
- langgraph dev: LangGraph's own dev server (`langgraph dev` of
  langgraph-cli[inmem], in-memory), on the same graph, in the same run.

Every set-up is served at once and measured in rounds, in a new order each
round, so the load of a busy machine weighs on each alike; figures are the
medians of the rounds, ratios the median of each round's ratio. With
`--baseline DIR` (another checkout, e.g. `git worktree add /tmp/base main`)
its embedded and PostgreSQL set-ups are served beside this checkout's too,
as `embedded@base` and `postgres-redis@base`, for a before/after in one run
(given again, a further checkout is served as `SET-UP@<its directory's name>`).

    python bench/agent_server.py [--samples 20] [--clients 10] [--runs 10] [--rounds 3]
        [--langgraph PATH-TO-langgraph] [--baseline DIR [--baseline DIR2]]
        [--only embedded|postgres-redis|langgraph-dev] [--daphnes 2[,1...]]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, stop_all, wait_for_port  # noqa: E402

DRAFTING = ROOT / "graphs" / "examples" / "drafting.py"
WARM_UP = 3

PREPARE = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from reviews.models import ApiToken
user = get_user_model().objects.create_superuser("bench", "", None)
_, key = ApiToken.issue(user, "agent server bench")
print(key)
"""


def graphs_dir(tmp: Path) -> Path:
    """The drafting graph alone, in a langgraph.json both servers read (the
    dev server resolves graph paths against its working directory, and
    writes its state there)."""
    place = tmp / "graphs"
    place.mkdir()
    shutil.copy(DRAFTING, place / "drafting.py")
    (place / "langgraph.json").write_text(
        '{"dependencies": ["."], "graphs": {"drafting": "./drafting.py:graph"}}'
    )
    return place


@contextmanager
def ours(
    name: str,
    tmp: Path,
    database_url: str,
    redis_url: str | None,
    root: Path = ROOT,
    daphnes: int = 2,
) -> Iterator[tuple]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        "DATABASE_URL": database_url,
        "HITL_GRAPHS_CONFIG": str(graphs_dir(tmp) / "langgraph.json"),
        "HITL_VAR_DIR": str(tmp),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",  # with DEBUG on, Django records every query
        "SECRET_KEY": "bench-only",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    prepared = subprocess.run(
        [sys.executable, "-c", PREPARE], cwd=root, env=env, capture_output=True, text=True
    )
    if prepared.returncode != 0:
        raise SystemExit(f"{name}: preparing the database failed:\n{prepared.stderr[-3000:]}")
    key = prepared.stdout.strip().splitlines()[-1]
    if redis_url is None:
        port = free_port()
        with processes(name, tmp, [["manage.py", "serve", "--port", str(port)]], env, root) as pids:
            wait_for_port(port, timeout=120)  # a busy machine starts it slowly
            yield f"http://127.0.0.1:{port}/langgraph", key, pids
        return
    # One listening socket for every daphne process, as a process manager
    # (supervisor's fcgi-program, circus, systemd) hands it to them: a new
    # connection waits in one queue for whichever process is free to take it.
    with socket.create_server(("127.0.0.1", 0), backlog=1024) as listening:
        port = listening.getsockname()[1]
        fd = listening.fileno()
        daphne = ["-m", "daphne", "--fd", str(fd), "hitl_site.asgi:application"]
        worker = ["manage.py", "runworker", "graph-runs"]
        commands = [daphne] * daphnes + [worker, worker]
        with processes(name, tmp, commands, env, root, pass_fds=(fd,)) as pids:
            wait_for_port(port, timeout=120)  # a busy machine starts it slowly
            yield f"http://127.0.0.1:{port}/langgraph", key, pids


@contextmanager
def langgraph_dev(tmp: Path, program: str) -> Iterator[tuple]:
    place = graphs_dir(tmp)
    port = free_port()
    command = [program, "dev", "--no-browser", "--no-reload", "--port", str(port)]
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    with processes("langgraph-dev", tmp, [command], env, place, python=False) as pids:
        wait_for_port(port, timeout=120)
        yield f"http://127.0.0.1:{port}", None, pids


@contextmanager
def processes(
    name, tmp, commands, env, cwd, *, python: bool = True, pass_fds: tuple[int, ...] = ()
) -> Iterator[list[int]]:
    logs = [tmp / f"{name}-{i}.log" for i in range(len(commands))]
    running = []
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("w") as out:
                running.append(
                    subprocess.Popen(
                        [sys.executable, *command] if python else command,
                        cwd=cwd,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        pass_fds=pass_fds,
                    )
                )
        yield [p.pid for p in running]
    except BaseException:
        for log in logs:
            if log.exists():
                print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        stop_all(running)


def one_run(client) -> float:
    started = time.perf_counter()
    output = client.runs.wait(
        str(uuid.uuid4()), "drafting", input={"topic": "bench"}, if_not_exists="create"
    )
    took = time.perf_counter() - started
    if "__interrupt__" not in output:
        raise AssertionError(f"runs.wait did not stop at the interrupt: {output}")
    return took * 1000


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user + system) the processes and all their descendants
    have used so far (Linux /proc): the cost of a run, which a machine busy
    with other work slows less than it slows the runs per second."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    counted, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid in counted:
            continue
        counted.add(pid)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return sum(spent.get(pid, 0.0) for pid in counted)


def measure(
    url: str, key: str | None, clients: int, runs_each: int, pids: list[int] = ()
) -> tuple[float, float, float]:
    """(median ms of a runs.wait, runs completed per second, CPU ms the
    server's processes spent per run)."""
    from langgraph_sdk import get_sync_client

    sdks = [get_sync_client(url=url, api_key=key) for _ in range(clients)]
    for sdk in sdks:
        one_run(sdk)  # its connection open
    latencies: list[float] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def client_loop(sdk) -> None:
        try:
            mine = [one_run(sdk) for _ in range(runs_each)]
        except BaseException as exc:
            failures.append(exc)
            return
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(sdk,)) for sdk in sdks]
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pids) - cpu_before
    for sdk in sdks:
        sdk.http.client.close()
    if failures:
        raise failures[0]
    return statistics.median(latencies), len(latencies) / elapsed, cpu * 1000 / len(latencies)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20, help="runs at 1 client")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10, help="runs per client at --clients")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every set-up")
    parser.add_argument(
        "--langgraph",
        default=os.environ.get("LANGGRAPH_CLI") or shutil.which("langgraph"),
        help="the `langgraph` program of langgraph-cli[inmem] (default: on PATH)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another checkout of this project (e.g. `git worktree add /tmp/base main`),"
        " served beside this one as `SET-UP@base`; again for more, as `SET-UP@<its dir name>`",
    )
    parser.add_argument("--only", choices=["embedded", "postgres-redis", "langgraph-dev"])
    parser.add_argument(
        "--daphnes",
        default="2",
        help="daphne processes serving postgres-redis; several counts (1,2) serve each",
    )
    args = parser.parse_args(argv)
    try:
        daphne_counts = [int(n) for n in args.daphnes.split(",")]
    except ValueError:
        parser.error(f"--daphnes: counts of processes separated by commas, not {args.daphnes!r}")
    if not daphne_counts or min(daphne_counts) < 1:
        parser.error("--daphnes: at least one process")

    from tests.servers import (
        create_database,
        postgres_missing_reason,
        redis_missing_reason,
        start_postgres,
        start_redis,
    )

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    roots = [("", ROOT)] + [
        ("@base" if n == 0 else f"@{path.resolve().name}", path.resolve())
        for n, path in enumerate(args.baseline)
    ]
    with ExitStack() as stack:
        servers: dict[str, tuple[str, str | None, list[int]]] = {}
        if args.only in (None, "embedded"):
            for suffix, root in roots:
                tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-agent-embedded-"))
                url = f"sqlite:///{tmp / 'bench.sqlite3'}"
                name = f"embedded{suffix}"
                servers[name] = stack.enter_context(ours(name, tmp, url, None, root))
        if args.only in (None, "postgres-redis"):
            reason = postgres_missing_reason() or redis_missing_reason()
            if reason:
                print(f"PostgreSQL + Redis skipped: {reason}")
            else:
                postgres, redis = start_postgres(), start_redis()
                stack.callback(postgres.stop)
                stack.callback(redis.stop)
                served = [(d, s, r) for d in daphne_counts for s, r in roots]
                for n, (daphnes, suffix, root) in enumerate(served):
                    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-agent-pg-"))
                    url = create_database(postgres.url, f"bench_agent_server_{n}")
                    name = pg_name(daphnes, suffix)
                    # Each its own Redis database: their workers' queues apart.
                    servers[name] = stack.enter_context(
                        ours(name, tmp, url, f"{redis.url.rsplit('/', 1)[0]}/{n}", root, daphnes)
                    )
        if args.only in (None, "langgraph-dev"):
            if not args.langgraph:
                print(
                    "langgraph dev skipped: no `langgraph` program"
                    " (pip install 'langgraph-cli[inmem]')"
                )
            else:
                tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-agent-dev-"))
                servers["langgraph-dev"] = stack.enter_context(langgraph_dev(tmp, args.langgraph))
        for url, key, _ in servers.values():
            warm_up(url, key, args.clients)
        # Rounds over every set-up in turn, in a new order each round: the
        # machine's load drifts, and it then weighs on each alike.
        measured: dict[tuple[str, int], list[tuple[float, float]]] = {}
        order = list(servers)
        for round_ in range(args.rounds):
            random.Random(round_).shuffle(order)
            for name in order:
                url, key, pids = servers[name]
                for clients, runs_each in ((1, args.samples), (args.clients, args.runs)):
                    figures = measure(url, key, clients, runs_each, pids)
                    measured.setdefault((name, clients), []).append(figures)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(
        f"runs.wait, fresh thread -> first interrupt of drafting ({args.samples} runs at 1 client,"
    )
    print(f"{args.runs} per client at {args.clients}); medians of {args.rounds} rounds")
    print(f"{'set-up':<20}{'clients':>8}{'p50 ms':>10}{'runs/s':>10}")
    rows = []
    for (name, clients), figures in sorted(measured.items()):
        p50 = statistics.median(f[0] for f in figures)
        rate = statistics.median(f[1] for f in figures)
        cpu = statistics.median(f[2] for f in figures)
        rows.append({"setup": name, "clients": clients, "p50": p50, "rate": rate, "cpu": cpu})
        print(f"{name:<20}{clients:>8}{p50:>10.1f}{rate:>10.1f}")
    # Slowed less by a machine busy with other work than the runs per second.
    print("CPU time the set-up's processes spent per run, all of them together:")
    for row in rows:
        print(f"cpu {row['setup']} at {row['clients']} clients: {row['cpu']:.1f} ms/run")
    # Each round's ratio is taken in the round, then their median is given.
    for (name, clients), figures in sorted(measured.items()):
        # Beside the dev server: the same set-up in the other checkouts, and
        # two daphne processes beside the other counts.
        others = [f"{name}{suffix}" for suffix, _ in roots[1:]]
        if name == pg_name(2):
            others += [pg_name(d) for d in daphne_counts if d != 2]
        for reference in ("langgraph-dev", *others):
            base = measured.get((reference, clients))
            if base is None or name == "langgraph-dev":
                continue
            p50s = [mine[0] / theirs[0] for mine, theirs in zip(figures, base, strict=True)]
            rates = [mine[1] / theirs[1] for mine, theirs in zip(figures, base, strict=True)]
            cpus = [mine[2] / theirs[2] for mine, theirs in zip(figures, base, strict=True)]
            print(
                f"ratio {name}/{reference} at {clients} clients:"
                f" p50 {statistics.median(p50s):.2f}x, runs/s {statistics.median(rates):.2f}x"
                f" (each round: {', '.join(f'{r:.2f}' for r in rates)}),"
                f" cpu/run {statistics.median(cpus):.2f}x"
            )
    return rows


def pg_name(daphnes: int, suffix: str = "") -> str:
    return f"postgres-redis{'' if daphnes == 2 else f'-{daphnes}daphne'}{suffix}"


def warm_up(url: str, key: str | None, clients: int) -> None:
    from langgraph_sdk import get_sync_client

    for _ in range(clients):
        sdk = get_sync_client(url=url, api_key=key)
        for _ in range(WARM_UP):
            one_run(sdk)
        sdk.http.client.close()


if __name__ == "__main__":
    main()
