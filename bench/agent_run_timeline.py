"""One runs.wait on PostgreSQL + Redis, step by step: where a lone run waits.

Serves the postgres-redis set-up of bench/agent_server.py (daphne and two
`runworker graph-runs` processes on throwaway PostgreSQL and Redis servers),
then logs every statement PostgreSQL runs (`log_min_duration_statement=0`,
millisecond timestamps) and every command Redis gets (`MONITOR`) while one
client makes `runs.wait` calls one after another (fresh thread -> first
interrupt of `drafting`). For each call it prints its time and how long the
answer took after the worker published the run's end to the run's group
(what the waiting request listens to); then the merged timeline of the
median call: request in, the run's row committed, the wake-up published,
the claim, the graph's checkpoints, the stop recorded, its end published,
the answer.

Logging slows every statement a little; the gaps are what it shows.

    python bench/agent_run_timeline.py [--runs 10] [--daphnes 1] [--root CHECKOUT]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.agent_server import ours  # noqa: E402
from tests.servers import create_database, start_postgres, start_redis  # noqa: E402

WARM_UP = 5
STATEMENT = re.compile(
    r"(\d+-\d+-\d+ \d+:\d+:\d+\.\d+) UTC \[(\d+)\] LOG:  duration: ([\d.]+) ms"
    r"  (?:statement|execute [^:]*): (.*)"
)
COMMAND = re.compile(r"([\d.]+) \[\d+ [^:]+:(\d+)\] (.*)")
# The run's new status, as graphs.events.publish_run sends it to the run's group.
RUN_END = re.compile(r'"PUBLISH" "asgi__group__run\.[^"]*" ".*run\.status')


def statements(log: str) -> list[tuple[float, str]]:
    found = []
    for line in log.splitlines():
        if m := STATEMENT.match(line):
            at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            took = float(m[3])
            # PostgreSQL logs a statement as it ends.
            found.append(
                (at.timestamp() - took / 1000, f"pg {m[2]:>6} {took:6.2f} ms  {m[4][:100]}")
            )
    return found


def commands(log: str) -> list[tuple[float, str]]:
    return [
        (float(m[1]), f"redis :{m[2]}  {m[3][:100]}")
        for line in log.splitlines()
        if (m := COMMAND.match(line))
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--daphnes", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve")
    args = parser.parse_args(argv)

    import psycopg
    from langgraph_sdk import get_sync_client

    postgres, redis = start_postgres(), start_redis()
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-timeline-"))
    try:
        url = create_database(postgres.url, "bench_run_timeline")
        with ours("timeline", tmp, url, redis.url, args.root.resolve(), args.daphnes) as served:
            base, key, _ = served
            sdk = get_sync_client(url=base, api_key=key)

            def one_run() -> tuple[float, float]:
                started = time.time()
                sdk.runs.wait(
                    str(uuid.uuid4()), "drafting", input={"topic": "bench"}, if_not_exists="create"
                )
                return started, time.time()

            for _ in range(WARM_UP):
                one_run()
            with psycopg.connect(postgres.url, autocommit=True) as conn:
                data = conn.execute("SHOW data_directory").fetchone()[0]
                conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
                conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
                conn.execute("SELECT pg_reload_conf()")
            port = redis.url.rsplit(":", 1)[1].split("/")[0]
            with (tmp / "monitor.log").open("w") as out:
                monitor = subprocess.Popen(["redis-cli", "-p", port, "monitor"], stdout=out)
                time.sleep(0.5)
                calls = []
                for _ in range(args.runs):
                    calls.append(one_run())
                    time.sleep(0.2)  # each call's lines apart from the next's
                time.sleep(0.5)
                monitor.terminate()
                monitor.wait()
        # tests.servers writes the cluster's log beside its data directory.
        pg_log = (Path(data).parent / "log").read_text()
    finally:
        postgres.stop()
        redis.stop()

    redis_log = (tmp / "monitor.log").read_text()
    ends = [
        float(m[1])
        for line in redis_log.splitlines()
        if (m := COMMAND.match(line)) and RUN_END.search(m[3])
    ]
    rows = []
    for started, answered in calls:
        end = [at for at in ends if started <= at <= answered]
        after_end = (answered - end[-1]) * 1000 if end else float("nan")
        rows.append(((answered - started) * 1000, after_end))
    print("runs.wait at 1 client: ms in all, ms from the run's end published to the answer")
    for total, after_end in rows:
        print(f"{total:8.1f} {after_end:8.1f}")
    print(
        f"medians: {statistics.median(r[0] for r in rows):.1f} ms,"
        f" {statistics.median(r[1] for r in rows):.1f} ms after the end was published"
    )
    median = sorted(range(len(rows)), key=lambda n: rows[n][0])[len(rows) // 2]
    started, answered = calls[median]
    events = statements(pg_log) + commands(redis_log)
    events += [(started, "client: runs.wait sent"), (answered, "client: answer read")]
    print(f"\nthe median call ({rows[median][0]:.1f} ms), ms from its request:")
    for at, what in sorted(events):
        if started - 0.001 <= at <= answered + 0.001:
            print(f"{(at - started) * 1000:8.1f}  {what}")


if __name__ == "__main__":
    main()
