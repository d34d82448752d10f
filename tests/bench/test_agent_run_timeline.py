"""A tiny run of bench/agent_run_timeline.py: each runs.wait's figures, and
the median call's PostgreSQL statements and Redis commands in order, from
the request to the answer. Speed itself is never asserted here."""

import re

from tests.bench.test_benches import bench
from tests.servers import postgres_missing_reason, redis_missing_reason, require


def test_the_timeline_shows_a_lone_runs_statements_and_its_end_published():
    require(postgres_missing_reason() or redis_missing_reason())
    out = bench("bench/agent_run_timeline.py", "--runs", "3")
    figures = out.split("the median call")[0]
    assert len(re.findall(r"^\s+[\d.]+\s+[\d.]+$", figures, re.M)) == 3, out
    timeline = out.split("the median call")[1].splitlines()[1:]
    said = [re.sub(r"^\s*-?[\d.]+\s+", "", line) for line in timeline]
    assert said[0] == "client: runs.wait sent" and said[-1] == "client: answer read", out
    assert any('INSERT INTO "graphs_run"' in line for line in said), out
    assert any(re.search(r'"PUBLISH" "asgi__group__run\..*run\.status', line) for line in said)
