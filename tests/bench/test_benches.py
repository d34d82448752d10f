"""Tiny runs of the bench/ scripts: each works end to end
and prints its figures. Speed itself is never asserted here."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import postgres_missing_reason, redis_missing_reason, require

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("graph", ["drafting", "stamped_async", "classic"])
def test_worker_benchmark_reports_a_ratio(graph):
    out = bench("bench/worker.py", "--rounds", "1", "--runs", "2", "--graph", graph)
    ratio = re.search(r"^ratio worker/direct\s+([\d.]+)x$", out, re.M)
    assert ratio and float(ratio.group(1)) > 0


def test_latency_benchmark_reports_both_set_ups():
    require(postgres_missing_reason() or redis_missing_reason())
    out = bench("bench/latency.py", "--samples", "2", "--clients", "3")
    rows = re.findall(r"^(embedded|postgres-redis)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert {(setup, int(clients)) for setup, clients, *_ in rows} == {
        (setup, clients) for setup in ("embedded", "postgres-redis") for clients in (1, 3)
    }
    assert all(0 < float(p50) <= float(p99) for *_, p50, p99 in rows)


def test_queue_benchmark_reports_a_ratio():
    out = bench("bench/queue_page.py", "--rounds", "1", "--small", "60", "--large", "300")
    assert re.search(r"^60 over 6 threads\s+[\d.]+\s+[\d.]+$", out, re.M)
    ratio = re.search(r"^ratio large/small ([\d.]+)x$", out, re.M)
    assert ratio and float(ratio.group(1)) > 0


def test_pages_benchmark_reports_each_page_and_the_mix():
    out = bench("bench/pages.py", "--rounds", "1", "--tasks", "5", "--rule")
    rows = dict(re.findall(r"^(queue|rows|task|thread|home|count|read mix)\s+([\d.]+)$", out, re.M))
    assert set(rows) == {"queue", "rows", "task", "thread", "home", "count", "read mix"}
    assert all(float(ms) > 0 for ms in rows.values())


def test_timeline_benchmark_reports_a_ratio():
    out = bench("bench/timeline.py", "--rounds", "1", "--short", "20", "--long", "120")
    assert re.search(r"^120 checkpoints\s+[\d.]+\s+[\d.]+$", out, re.M)
    ratio = re.search(r"^ratio long/short ([\d.]+)x$", out, re.M)
    assert ratio and float(ratio.group(1)) > 0


def test_agent_server_benchmark_reports_its_figures():
    out = bench(
        "bench/agent_server.py",
        "--only",
        "embedded",
        "--samples",
        "2",
        "--clients",
        "2",
        "--runs",
        "1",
    )
    rows = re.findall(r"^embedded\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert [int(clients) for clients, *_ in rows] == [1, 2]
    assert all(float(p50) > 0 and float(rate) > 0 for _, p50, rate in rows)


def test_load_benchmark_reports_each_round():
    out = bench(
        "bench/load.py",
        *("--sockets", "4", "--rate", "8", "--seconds", "2", "--rounds", "2", "--only", "embedded"),
    )
    rows = re.findall(r"^embedded\s+(\d)\s+(\d+)\s+(\d+)\s", out, re.M)
    assert [int(r) for r, *_ in rows] == [1, 2], out
    assert all(int(errors) == 0 and int(requests) == 16 for _, requests, errors in rows), out
