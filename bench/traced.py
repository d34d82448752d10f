"""Run a command (`python -m bench.traced manage.py serve ...`) whose
allocations can be traced: the first SIGUSR1 starts tracemalloc (traced
from the start, the server would not start in time), and each SIGUSR1
writes a snapshot of what is allocated since to
$BENCH_TRACE_MEMORY/snapshot-N.pickle, for bench/load.py's `--trace-memory`
to compare round by round. Bench only: tracing slows the process down."""

from __future__ import annotations

import itertools
import os
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path


def main() -> None:
    out = Path(os.environ["BENCH_TRACE_MEMORY"])
    numbers = itertools.count()

    def snapshot(signum, frame) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "12")))
        tracemalloc.take_snapshot().dump(str(out / f"snapshot-{next(numbers)}.pickle"))

    signal.signal(signal.SIGUSR1, snapshot)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
