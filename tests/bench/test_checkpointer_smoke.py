"""A tiny run of bench/checkpointer.py: it works end to end and prints its
table. Speed itself is never asserted here; the benchmark reports it."""

import re
import subprocess
import sys
from pathlib import Path

from tests.servers import postgres_missing_reason, require

ROOT = Path(__file__).resolve().parents[2]
SHAPES = {"str", "list", "dict", "messages", "pydantic"}
CELL = r"\|\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s*"


def test_benchmark_reports_every_shape_on_both_databases():
    require(postgres_missing_reason())
    result = subprocess.run(
        [
            sys.executable,
            "bench/checkpointer.py",
            "--rounds",
            "1",
            "--cycles",
            "1",
            "--history",
            "60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(rf"^(sqlite|postgres)\s+(\w+)\s+{CELL * 4}$", result.stdout, re.M)
    assert {(db, shape) for db, shape, *_ in rows} == {
        (db, shape) for db in ("sqlite", "postgres") for shape in SHAPES
    }
    assert len(rows) == 10
    # Round trip, list and both disk columns: Django, LangGraph, ratio each.
    assert all(float(value) > 0 for _, _, *values in rows for value in values)
    ratios = [float(r) for _, _, *values in rows for r in values[2::3]]
    worst = re.search(r"^worst ratio ([\d.]+)x: (sqlite|postgres) (\w+) ", result.stdout, re.M)
    assert worst and float(worst.group(1)) == round(min(ratios), 2)
    for goal in ("bar", "bar \\(CPU\\)", "goal", "goal \\(CPU\\)", "disk"):
        assert re.search(rf"^{goal}: .*: (met|not met) \(lowest [\d.]+x, ", result.stdout, re.M)
    # Spreads: wall and CPU medians with quartiles, and each round's paired ratio,
    # for the round trip and the list of every shape and database.
    spreads = re.findall(
        r"^(sqlite|postgres)\s+(\w+)\s+(round trip|list)\s+(wall|cpu)\s+\|"
        r"\s+[\d.]+ \[\s*[\d.]+-\s*[\d.]+\] \|\s+[\d.]+ \[\s*[\d.]+-\s*[\d.]+\] \|"
        r"\s+[\d.]+x\s+[\d.]+x \[[\d.]+-[\d.]+\]$",
        result.stdout,
        re.M,
    )
    assert len(spreads) == 10 * 2 * 2
    # Statements per round trip, with SQLite's write commits and the pages they
    # append to the WAL.
    counts = re.findall(
        r"^(sqlite|postgres)\s+\w+\s+statements per round trip (\d+) vs (\d+)"
        r"(, write commits (\d+) vs (\d+), WAL pages written (\d+) vs (\d+))?$",
        result.stdout,
        re.M,
    )
    assert len(counts) == 10
    assert all(int(ours) > 0 and int(theirs) > 0 for _, ours, theirs, *_ in counts)
    assert all(commits for db, _, _, commits, *_ in counts if db == "sqlite")
    assert all(
        int(ours) > 0 and int(theirs) > 0 for db, *_, ours, theirs in counts if db == "sqlite"
    )
