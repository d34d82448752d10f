"""Scale-out for real: PostgreSQL, redis-server, two `runworker graph-runs`
processes and one daphne. A run queued before any worker started is picked
up; fifty more each execute exactly once, and every interrupt reaches a
reviewer's connected websocket. A run cancelled from another process stops
at once in whichever worker runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.servers import (
    create_database,
    free_port,
    redis_missing_reason,
    require,
    start_redis,
    stop_all,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ROOT / "tests" / "graphs" / "agents" / "langgraph.json"
RUNS = 50

SESSION = """
import django; django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user("scale", password="pw-scale-123")
client = Client(); client.force_login(user)
print(client.cookies["sessionid"].value)
"""
ENQUEUE = """
import django, sys; django.setup()
from graphs.models import Run
for i in range(int(sys.argv[1])):
    Run.enqueue(graph_name="echo", kind=Run.Kind.START, payload={"text": f"question {i}"})
"""
SLOW = """
import django; django.setup()
from graphs.models import Run
payload = {"done": [], "delay": 0.1, "steps": 300}  # thirty seconds of steps
print(Run.enqueue(graph_name="slow", kind=Run.Kind.START, payload=payload).pk)
"""
RUN = """
import django, json, sys; django.setup()
from graphs.models import Checkpoint, Run
run = Run.objects.get(pk=int(sys.argv[1]))
if sys.argv[2:] == ["cancel"]:
    assert run.cancel()
steps = Checkpoint.objects.filter(thread_id=run.thread_id, checkpoint_ns="").count()
print(json.dumps({"status": run.status, "stopping": run.stopping, "steps": steps}))
"""
REPORT = """
import django, json; django.setup()
from graphs.models import Run
from reviews.models import ReviewTask
runs = list(Run.objects.values("pk", "status", "attempts", "worker_id"))
print(json.dumps({"runs": runs, "tasks": ReviewTask.objects.count()}))
"""


@pytest.fixture
def redis_server():
    require(redis_missing_reason())
    server = start_redis()
    yield server
    server.stop()


def test_fifty_runs_two_workers_one_daphne(postgres_server, redis_server, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        "DATABASE_URL": create_database(postgres_server.url, "scale_out"),
        "REDIS_URL": redis_server.url,
        "HITL_GRAPHS_CONFIG": str(AGENTS),
        "HITL_VAR_DIR": str(tmp_path),
    }

    def python(code: str, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    session = python(SESSION)
    python(ENQUEUE, "1")  # queued while no worker listens: no wake-up will come
    port = free_port()
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("daphne", "worker-1", "worker-2")]  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "hitl_site.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        ),
        *(
            subprocess.Popen(
                [sys.executable, "manage.py", "runworker", "graph-runs"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs[1:]
        ),
    ]
    try:
        wait_for_port(port)
        # A worker looks at the queue as it starts, without waiting for a wake-up.
        deadline = time.monotonic() + 30
        while json.loads(python(REPORT))["tasks"] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert json.loads(python(REPORT))["tasks"] == 1, "the early run was not picked up"
        with connect(
            f"ws://127.0.0.1:{port}/ws/reviews/",
            additional_headers={"Origin": "http://127.0.0.1", "Cookie": f"sessionid={session}"},
            open_timeout=10,
        ) as websocket:
            python(ENQUEUE, str(RUNS))
            seen: set[int] = set()
            deadline = time.monotonic() + 120
            while len(seen) < RUNS and time.monotonic() < deadline:
                try:
                    message = websocket.recv(timeout=5)
                except TimeoutError:
                    continue
                seen.update(int(pk) for pk in re.findall(r'id="task-(\d+)"', message))
            assert len(seen) == RUNS, f"{len(seen)} of {RUNS} interrupts reached the websocket"

        report = json.loads(python(REPORT))
        assert report["tasks"] == RUNS + 1
        assert len(report["runs"]) == RUNS + 1
        assert {r["status"] for r in report["runs"]} == {"interrupted"}
        assert {r["attempts"] for r in report["runs"]} == {1}  # each ran exactly once

        # Lease renewals come every ten seconds; the cancel must not wait for one.
        slow = python(SLOW)
        deadline = time.monotonic() + 30
        while json.loads(python(RUN, slow))["status"] != "running":
            assert time.monotonic() < deadline, "the slow run never started"
        at_cancel = json.loads(python(RUN, slow, "cancel"))
        deadline = time.monotonic() + 30
        while (now := json.loads(python(RUN, slow)))["stopping"]:
            assert time.monotonic() < deadline, "the cancelled run never stopped"
        assert now["status"] == "cancelled"
        assert now["steps"] - at_cancel["steps"] < 15, f"{now} after the cancel at {at_cancel}"
    finally:
        stop_all(processes)
        for log in logs:
            log.close()
