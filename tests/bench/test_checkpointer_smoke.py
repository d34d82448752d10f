"""A tiny run of bench/checkpointer.py: it works end to end and prints its
table. Speed itself is never asserted here; the benchmark reports it."""

import re
import subprocess
import sys
from pathlib import Path

from tests.servers import postgres_missing_reason, require

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_and_reports_ratios():
    require(postgres_missing_reason())
    result = subprocess.run(
        [
            sys.executable,
            "bench/checkpointer.py",
            "--rounds",
            "2",
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
    rows = re.findall(
        r"^(sqlite|postgres)\s+(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", result.stdout, re.M
    )
    cases = {(db, case.strip()) for db, case, *_ in rows}
    assert cases == {
        (db, case)
        for db in ("sqlite", "postgres")
        for case in (
            "start->interrupt->resume->end",
            "list(limit=50) of 60 checkpoints",
            "disk bytes per checkpoint (KB)",
        )
    }
    assert all(float(ratio) > 0 for *_, ratio in rows)
