"""A tiny run of bench/agent_server.py's PostgreSQL + Redis set-up, served by
one daphne process and by two sharing one inherited listening socket: both
answer and their figures are printed. Speed itself is never asserted here."""

import re

from tests.bench.test_benches import bench
from tests.servers import postgres_missing_reason, redis_missing_reason, require


def test_one_and_two_daphne_processes_on_one_socket_both_answer():
    require(postgres_missing_reason() or redis_missing_reason())
    out = bench(
        "bench/agent_server.py",
        *("--only", "postgres-redis", "--daphnes", "1,2", "--rounds", "1"),
        *("--samples", "2", "--clients", "2", "--runs", "2"),
    )
    rows = re.findall(r"^(postgres-redis\S*)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert sorted((name, int(clients)) for name, clients, *_ in rows) == [
        ("postgres-redis", 1),
        ("postgres-redis", 2),
        ("postgres-redis-1daphne", 1),
        ("postgres-redis-1daphne", 2),
    ], out
    assert all(float(rate) > 0 for *_, rate in rows)
    assert re.search(r"^ratio postgres-redis/postgres-redis-1daphne at 2 clients", out, re.M)
