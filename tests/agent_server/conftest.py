"""A served dashboard (`manage.py serve`, as `make run` starts it) with the demo
graphs, driven over real HTTP by LangGraph's own client, langgraph-sdk.

One server per test session: tests make their own threads and never assume
they are alone on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from langgraph_sdk import get_client, get_sync_client

from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
DEMO_GRAPHS = ROOT / "graphs" / "examples" / "langgraph.json"


@dataclass
class Served:
    url: str
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"{self.url}/langgraph"

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def query(self, code: str):
        """Run Python against the served database; `code` sets `result`."""
        out = self.manage("shell", "-c", f"import json\n{code}\nprint(json.dumps(result))")
        return json.loads(out.strip().splitlines()[-1])

    def key(self, username: str) -> str:
        """An API key of `create_api_token` for this user (made once)."""
        if username not in self.keys:
            self.keys[username] = self.manage("create_api_token", username, "--name", "tests")
            self.keys[username] = self.keys[username].strip().splitlines()[-1]
        return self.keys[username]

    def user(self, username: str, *, groups: tuple[str, ...] = ()) -> str:
        """A user (made once) in these groups; returns the username."""
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User\n"
            f"user, _ = User.objects.get_or_create(username={username!r})\n"
            f"for name in {list(groups)!r}:\n"
            "    user.groups.add(Group.objects.get_or_create(name=name)[0])\n",
        )
        return username


def serve(tmp_path: Path, graphs: Path = DEMO_GRAPHS, extra_env: dict | None = None):
    """Start `manage.py serve` on a fresh SQLite database; a generator that
    yields the Served site and stops it when resumed."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'agent_server.sqlite3'}",
        "HITL_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        "HITL_GRAPHS_CONFIG": str(graphs),
        **(extra_env or {}),
    }
    env.pop("REDIS_URL", None)
    site = Served(url="", env=env)
    site.manage("migrate", "--noinput")
    site.manage("seed_demo")
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--sweep", "0.3"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        site.url = f"http://127.0.0.1:{port}"
        yield site
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """The demo graphs served for the whole session; no review rules, so every
    signed-in user may see and decide everything unless a test adds rules."""
    yield from serve(tmp_path_factory.mktemp("agent-server"))


@pytest.fixture(scope="session")
def api_key(served) -> str:
    """A key of the demo `admin` account (a superuser)."""
    return served.key("admin")


@pytest.fixture
def sdk(served, api_key):
    """langgraph-sdk's sync client, pointed at /langgraph/ as an app would be."""
    client = get_sync_client(url=served.api_url, api_key=api_key)
    yield client
    client.http.client.close()


@pytest.fixture
async def async_sdk(served, api_key):
    """langgraph-sdk's async client, pointed at /langgraph/."""
    client = get_client(url=served.api_url, api_key=api_key)
    yield client
    await client.http.client.aclose()
