"""`manage.py serve`, as `make run` starts it: pages and a worker in one process."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def manage(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_serve_runs_pages_and_a_worker(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "HITL_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    assert manage(env, "migrate", "--noinput").returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--sweep", "0.5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(f"http://127.0.0.1:{port}/")
            raise AssertionError("the home page must require a login")
        except urllib.error.HTTPError as exc:
            assert exc.code == 302 and "/accounts/login/" in exc.headers["Location"]

        # Queued from another process: the serve process's sweep finds it.
        queued = manage(env, "startrun", "drafting", "--input", '{"topic": "served"}')
        assert queued.returncode == 0, queued.stderr
        thread_id = queued.stdout.strip()
        check = (
            f"from graphs.models import Run; print(Run.objects.get(thread_id='{thread_id}').status)"
        )
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline:
            lines = manage(env, "shell", "-c", check).stdout.strip().splitlines()
            status = lines[-1] if lines else ""
            if status == "interrupted":
                break
            time.sleep(0.3)
        assert status == "interrupted"
    finally:
        server.terminate()
        server.wait(timeout=20)
