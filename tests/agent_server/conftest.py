"""A served dashboard (`manage.py serve`, as `make run` starts it) with the demo
graphs and the docs' patterns, driven over real HTTP by LangGraph's own
client, langgraph-sdk.

One server per test session: tests make their own threads and never assume
they are alone on it. Review rules that tests add name the pattern graphs
(nested, parallel, approval), never the demo graphs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client

from tests.browser.conftest import Served as BrowserServed
from tests.browser.conftest import serving

ROOT = Path(__file__).resolve().parents[2]
# The demo graphs (drafting, support, tool_agent) and the docs' patterns
# (a subgraph's interrupt in `nested`, parallel interrupts...).
GRAPHS = ROOT / "tests" / "graphs" / "patterns" / "langgraph.json"
# Browser apps on this origin may call /langgraph/ (CORS).
ALLOWED_ORIGIN = "http://inbox.example.test"


@dataclass
class Served(BrowserServed):
    """The served dashboard (manage, query) with API keys and runs."""

    keys: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"{self.url}/langgraph"

    def key(self, username: str) -> str:
        """An API key of `create_api_token` for this user (made once)."""
        if username not in self.keys:
            self.keys[username] = self.manage("create_api_token", username, "--name", "tests")
            self.keys[username] = self.keys[username].strip().splitlines()[-1]
        return self.keys[username]

    def start(self, graph: str, input: dict, *, key: str) -> str:
        """Start a run on a new thread through /api/ (as the pages would) and
        wait until it stops; returns the thread id."""
        response = httpx.post(
            f"{self.url}/api/runs",
            json={"graph": graph, "input": input},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201, response.text
        thread_id = response.json()["thread_id"]
        self.wait_stopped(thread_id, key=key)
        return thread_id

    def wait_stopped(self, thread_id: str, *, key: str) -> dict:
        """The thread once no run has it (a wait for the worker, not a timing check)."""
        client = get_sync_client(url=self.api_url, api_key=key)
        deadline = time.monotonic() + 60
        while True:
            thread = client.threads.get(thread_id)
            if thread["status"] != "busy" or time.monotonic() > deadline:
                return thread
            time.sleep(0.05)

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


def serve(tmp_path: Path, graphs: Path = GRAPHS, extra_env: dict | None = None):
    """The served dashboard without the demo review rules; a generator that
    yields the Served site and stops it when resumed."""
    env = {"HITL_CORS_ALLOWED_ORIGINS": ALLOWED_ORIGIN, **(extra_env or {})}
    with serving(tmp_path, graphs, env=env, rules=False, site_type=Served) as site:
        yield site


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """The graphs served for the whole session; no review rules, so every
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
