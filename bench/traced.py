"""Run a command (`python -m bench.traced manage.py serve ...`) that tells
what it holds: each SIGUSR1 writes the number of objects of each type the
cyclic collector tracks, with the process's resident memory, to
$BENCH_TRACE_MEMORY/objects-N.json, for bench/load.py's `--trace-memory` to
compare round by round. (tracemalloc slowed a served process down past its
clients' patience.) Bench only."""

from __future__ import annotations

import collections
import gc
import itertools
import json
import os
import runpy
import signal
import sys
from pathlib import Path


def main() -> None:
    out = Path(os.environ["BENCH_TRACE_MEMORY"])
    numbers = itertools.count()

    def count(signum, frame) -> None:
        gc.collect()
        kinds = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
        )
        path = out / f"objects-{next(numbers)}.json"
        path.with_suffix(".tmp").write_text(json.dumps(kinds))
        path.with_suffix(".tmp").rename(path)

    signal.signal(signal.SIGUSR1, count)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
