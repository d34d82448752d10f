"""Named people and a way to bring a graph to its next stop, for page tests.

Every test here runs on SQLite, the embedded default; those that commit
rows run once more with PostgreSQL, the database a scaled-out install uses,
as the default database (the `database` parameter), configured as
DATABASE_URL configures it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from graphs.models import Run
from graphs.worker import work
from reviews.models import ReviewRule, ReviewTask
from tests.conftest import default_on_postgres

# Modules whose database use is the same on both: drawings, documents, the
# admin, forms built from graph schemas, the channel layer. Their SQLite run
# is enough, and a second would cost the suite time for nothing.
SQLITE_ENOUGH = {"test_mermaid", "test_api_docs", "test_admin", "test_start_page", "test_queue_hub"}


def pytest_generate_tests(metafunc):
    # A test with committed rows runs on both; one that chooses its aliases
    # itself (db_alias, pg_alias) is left as it is.
    fixtures = metafunc.fixturenames
    if metafunc.module.__name__.rpartition(".")[2] in SQLITE_ENOUGH:
        return
    if "transactional_db" in fixtures and not {"db_alias", "pg_alias"} & set(fixtures):
        metafunc.parametrize(
            "database",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
        )


@pytest.fixture(autouse=True)
def database(request, django_db_blocker):
    """The database the test's `default` alias leads to."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield "sqlite"
        return
    with default_on_postgres(request, django_db_blocker):
        yield "postgres"


@pytest.fixture
def rita(transactional_db):
    return get_user_model().objects.create_user("rita", password="pw-rita-123")


@pytest.fixture
def sam(transactional_db):
    return get_user_model().objects.create_user("sam", password="pw-sam-123")


@pytest.fixture
def as_rita(rita) -> Client:
    client = Client()
    client.force_login(rita)
    return client


@pytest.fixture
def as_sam(sam) -> Client:
    client = Client()
    client.force_login(sam)
    return client


def reviewed_by(group_name: str, people, **rule_fields) -> ReviewRule:
    """A rule whose calls the group (these people) reviews."""
    group = Group.objects.create(name=group_name)
    for person in people:
        person.groups.add(group)
    rule = ReviewRule.objects.create(**rule_fields)
    rule.review_groups.add(group)
    return rule


def start(graph_name: str, payload, **fields) -> str:
    """Start a run and drive it to its stop; returns the thread id. A test
    that only reads or decides what the stop leaves makes it with
    tests.reviews.rows.stopped instead."""
    run = Run.enqueue(graph_name=graph_name, kind=Run.Kind.START, payload=payload, **fields)
    work("test-worker")
    return run.thread_id


def pending(thread_id: str) -> list[ReviewTask]:
    return list(ReviewTask.objects.pending().filter(thread_id=thread_id).order_by("action_index"))


def finish() -> int:
    """Run whatever the decisions queued."""
    return work("test-worker")


def until(condition, what: str) -> None:
    """Wait for a state, failing (rather than hanging) if it never comes."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


# A webhook receiver on loopback, as the endpoint's help text tells one to be.
TOLERANCE = 5 * 60  # seconds a receiver accepts between a delivery's time and its own


def refusal(secret: str, headers, body: bytes, now: float, seen: set[str]) -> str:
    """Why a receiver refuses a delivery ("" when it takes it), checked as the
    endpoint's help text tells a receiver to."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > TOLERANCE:
        return "too old"
    if secret.startswith("whsec_"):
        key = base64.b64decode(secret.removeprefix("whsec_"))
    else:
        key = secret.encode()
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    given = [
        s.removeprefix("v1,") for s in headers["webhook-signature"].split() if s.startswith("v1,")
    ]
    if not any(hmac.compare_digest(base64.b64decode(g), expected) for g in given):
        return "bad signature"
    return "seen" if msg_id in seen else ""


@pytest.fixture
def receiver():
    """A loopback server that records what it receives; `fail` makes it answer
    500. With a `secret`, it verifies each delivery as a receiver should and
    answers 401 to one it refuses (`clock`: seconds its clock is ahead)."""
    got: list[dict] = []
    state = {"fail": 0, "secret": None, "clock": 0, "seen": set(), "refused": [], "tried": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["tried"].append({"headers": self.headers, "body": body})
            why = ""
            if state["secret"] is not None:
                now = time.time() + state["clock"]
                why = refusal(state["secret"], self.headers, body, now, state["seen"])
            if why:
                state["refused"].append(why)
                self.send_response(401)
            elif state["fail"]:
                state["fail"] -= 1
                self.send_response(500)
            else:
                # Only a delivery it took is one it must not take again.
                state["seen"].add(self.headers["webhook-id"])
                got.append({"headers": self.headers, "body": body})  # case-insensitive
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, state
    server.shutdown()
