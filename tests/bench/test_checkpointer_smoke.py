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
    for goal in ("bar", "goal", "disk"):
        assert re.search(rf"^{goal}: .*: (met|not met) \(lowest [\d.]+x, ", result.stdout, re.M)
