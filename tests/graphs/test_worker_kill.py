"""A worker killed with SIGKILL mid-run: its lease expires, another worker
continues the run from its last checkpoint, and nothing is lost or doubled."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).parent / "agents" / "langgraph.json"

WORKER = """
import os, sys, django
django.setup()
from datetime import timedelta
from graphs.worker import work
work(sys.argv[1], lease=timedelta(seconds=float(sys.argv[2])))
"""

EXPIRE = """
import django
django.setup()
from datetime import timedelta
from django.utils import timezone
from graphs.models import Run
print(Run.objects.filter(status="running").update(
    lease_expires_at=timezone.now() - timedelta(seconds=1)
))
"""

QUERY = """
import django, json
django.setup()
from graphs.models import Checkpoint, Run
from reviews.models import ReviewTask
run = Run.objects.get()
print(json.dumps({
    "status": run.status, "attempts": run.attempts, "worker": run.worker_id,
    "checkpoints": Checkpoint.objects.filter(thread_id=run.thread_id, metadata__hitl_run=run.pk).count(),
    "tasks": list(ReviewTask.objects.values_list("description", flat=True)),
}))
"""


def python(env, code: str, *args: str, **kwargs):
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, **kwargs)


def query(env) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", QUERY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_killed_worker_run_is_finished_by_another(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'kill.sqlite3'}",
        "HITL_GRAPHS_CONFIG": str(AGENTS),
        "HITL_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "startrun",
            "slow",
            "--input",
            # Long enough (6 s) that the kill lands mid-run even when the
            # polling below is slowed by a busy CI machine.
            '{"done": [], "delay": 0.15, "steps": 40}',
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )

    # Leases no test waits out: only the expiry written below ends the first.
    doomed = python(env, WORKER, "doomed", "600")
    # Read the file directly: a query through Django starts a process, and
    # slowed by a busy machine, would let the run end before the kill.
    with closing(sqlite3.connect(tmp_path / "kill.sqlite3")) as db:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            db.execute("SELECT COUNT(*) FROM graphs_checkpoint").fetchone()[0] < 4
        ):
            time.sleep(0.02)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    killed_at = query(env)
    assert killed_at["status"] == "running" and killed_at["worker"] == "doomed"
    assert killed_at["tasks"] == []

    # The lease runs out: its end is moved into the past, so no clock is waited on.
    expired = python(env, EXPIRE, stdout=subprocess.PIPE, text=True)
    assert expired.communicate(timeout=60)[0].strip() == "1"
    rescuer = python(env, WORKER, "rescuer", "600")
    assert rescuer.wait(timeout=120) == 0

    final = query(env)
    assert (
        final["status"] == "interrupted" and final["attempts"] == 2 and final["worker"] == "rescuer"
    )
    # Every step ran once in the final state, and the interrupt made one task.
    assert final["tasks"] == ["40 steps done; confirm?"]
    state = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup()\n"
            "from graphs.models import Run\nfrom graphs.checkpoint import DjangoCheckpointSaver\n"
            "run = Run.objects.get()\n"
            "print(DjangoCheckpointSaver().get_tuple({'configurable': {'thread_id': run.thread_id}}).checkpoint['channel_values']['done'])",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert state.stdout.strip() == str(list(range(40)))
