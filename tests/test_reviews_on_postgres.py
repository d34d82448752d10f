"""The reviewer pages with PostgreSQL as the default database.

The page tests in tests/reviews/ run on SQLite (the embedded default) in the
main suite; here the same files run once more, in a child pytest whose
DATABASE_URL points at the throwaway PostgreSQL cluster: decisions, races,
the state editor, replay and fork, on the database a scaled-out install uses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.servers import create_database

ROOT = Path(__file__).resolve().parent.parent


def test_reviewer_pages_on_postgresql(postgres_server):
    env = {
        **os.environ,
        "DATABASE_URL": create_database(postgres_server.url, "hitl_pages"),
        "TEST_DATABASE_URL": postgres_server.url,  # the child's PostgreSQL fixtures reuse it
    }
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reviews"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
