"""A tiny run of bench/run_path.py: it works end to end for both ways the
worker runs and prints its figures. Speed itself is never asserted here."""

import re

from tests.bench.test_benches import bench


def test_run_path_benchmark_reports_both_workers():
    out = bench("bench/run_path.py", "--rounds", "1")
    rows = re.findall(
        r"^(serve|runworker)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+1: ([\d.]+)x\s+3: ([\d.]+)x$",
        out,
        re.M,
    )
    assert [row[0] for row in rows] == ["serve", "runworker"]
    assert all(float(value) > 0 for row in rows for value in row[1:])
    # The black holes were really sent to: four deliveries in a round.
    accepted = re.search(r"^black-hole connections accepted: (\d+)$", out, re.M)
    assert accepted and int(accepted.group(1)) >= 4
