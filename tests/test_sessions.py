"""Sessions: a page reads its session without a query where one process
serves, and a session ended in one process (logout) ends at once in every
other, whichever processes the deployment runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.servers import redis_missing_reason, require, start_redis

ROOT = Path(__file__).resolve().parent.parent

# A server process in miniature: it reads sessions as a request does
# (SessionStore.load through the configured engine), keeping whatever its
# engine keeps between requests, and ends them as logout does (flush).
PROCESS = """
import sys
import django; django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
store = import_module(settings.SESSION_ENGINE).SessionStore
for line in sys.stdin:
    command, key = line.split()
    if command == "make":
        user, _ = get_user_model().objects.get_or_create(username="sessions-" + key)
        client = Client()
        client.force_login(user)
        print(client.cookies["sessionid"].value, flush=True)
    elif command == "read":
        print("signed-in" if "_auth_user_id" in store(key).load() else "ended", flush=True)
    elif command == "end":
        store(key).flush()
        print("ended", flush=True)
    elif command == "forget":
        get_user_model().objects.filter(username__startswith="sessions-").delete()
        print("forgotten", flush=True)
"""


class Process:
    def __init__(self, env: dict[str, str]) -> None:
        environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.popen = subprocess.Popen(
            [sys.executable, "-c", PROCESS],
            cwd=ROOT,
            env={**environ, "DJANGO_SETTINGS_MODULE": "hitl_site.settings", **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str, key: str = "-") -> str:
        self.popen.stdin.write(f"{command} {key}\n")
        self.popen.stdin.flush()
        answer = self.popen.stdout.readline().strip()
        assert answer, f"the process stopped (exit {self.popen.poll()})"
        return answer

    def stop(self) -> None:
        self.popen.stdin.close()
        self.popen.wait(timeout=30)


@pytest.fixture
def redis_url():
    require(redis_missing_reason())
    server = start_redis()
    yield server.url
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_page_reads_its_session_without_a_query():
    user = get_user_model().objects.create_user("one-process", password="pw-sessions-1")
    client = Client()
    client.force_login(user)
    client.get("/queue/count/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/queue/count/").status_code == 200
    assert not [q for q in queries if "django_session" in q["sql"]]
    client.logout()
    assert client.get("/queue/count/").status_code == 302


@pytest.mark.parametrize("shared_cache", [True, False], ids=["redis", "no-redis"])
def test_a_session_ended_in_one_process_ends_in_every_other(
    pg_alias, pg_url, shared_cache, request
):
    env = {"DATABASE_URL": pg_url}
    if shared_cache:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    serving, other = Process(env), Process(env)
    try:
        key = serving.ask("make", "a")
        assert serving.ask("read", key) == "signed-in"  # now held by whatever it keeps
        assert other.ask("read", key) == "signed-in"
        assert other.ask("end", key) == "ended"  # a logout served by the other process
        assert serving.ask("read", key) == "ended"
    finally:
        serving.ask("forget")
        serving.stop()
        other.stop()
