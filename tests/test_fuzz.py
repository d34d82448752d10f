"""Every write route, pages and /api/, fed input no form would send.

The routes come from Django's URL resolver and the API's OpenAPI document, so
a route added later is fuzzed without touching this file. Each one gets, as a
signed-in reviewer (a session for pages, a bearer token for /api/), in each
field in turn while the others keep the values its own form or schema gives:
malformed JSON, a body over the upload limit, JSON nested 100,000 deep, an
integer past 64 bits and a NUL character. None may answer 5xx, and a refused
request (4xx) may change no row. A request that is accepted (free text takes
`{not json` as text) may write; each request runs in a savepoint rolled back
after it, so the next one meets the same pending task.

Ids are those of real threads, tasks and runs from the demo graphs. This file
runs on the default database (SQLite); `test_fuzz_on_postgresql` runs it once
more in a child pytest whose default database is PostgreSQL, where NUL in text
and integers past 64 bits fail in the driver rather than pass through.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from graphs.models import Run, Thread
from graphs.worker import work
from reviews.api import api
from reviews.models import ApiToken, ReviewTask
from tests.servers import create_database

ROOT = Path(__file__).resolve().parent.parent
# Each test in a transaction rolled back at its end; the objects it works on
# are made once for the module (`world`), committed.
pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"
NESTED = "[" * 100_000
NUL = "a\x00b"
MALFORMED = '{"not": json'
OVERSIZED = 3_000_000  # characters, past DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB)
KINDS = ["malformed", "oversized", "nested", "hugeint", "nul"]

GRAPHS = {
    "tool_agent": {
        "messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]
    },
    "support": {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]},
    "drafting": {"topic": "launch"},
}
# Rows a refused request may write: django-axes logs a failed sign-in (a
# wrong password is refused, and counted, on purpose); sessions come and go.
MAY_WRITE_ON_REFUSAL = {"axes.AccessAttempt", "axes.AccessFailureLog", "sessions.Session"}
WRITE_METHODS = ("post", "put", "patch", "delete")


# -- the routes -----------------------------------------------------------------


def _patterns(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _api_operations() -> list[tuple[str, str]]:
    document = api.get_openapi_schema(path_prefix="/api")
    return [
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in WRITE_METHODS
    ]


API_PATHS = {path for _, path in _api_operations()} | {
    p for p in api.get_openapi_schema(path_prefix="/api")["paths"]
}


def _page_routes() -> list[str]:
    """Every pattern but those the OpenAPI document describes (fuzzed below
    as API operations, with a token)."""
    routes = []
    for pattern in _patterns(get_resolver().url_patterns):
        as_api = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern)
        if as_api not in API_PATHS:
            routes.append(pattern)
    return routes


ADMIN_ROUTES = [r for r in _page_routes() if r.startswith("admin/")]
PAGE_ROUTES = [r for r in _page_routes() if not r.startswith("admin/")]
API_OPERATIONS = _api_operations()

# Known failures in code being fixed elsewhere: strict, so each one shows up
# as XPASS (and fails) once it is fixed, and the mark must then go.
# For example ("queue/bulk/", "hugeint"): "OverflowError in bulk_decide".
KNOWN: dict[tuple[str, str], str] = {}


def _cases(routes, kinds):
    for route in routes:
        for kind in kinds:
            reason = KNOWN.get((route, kind))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(route, kind, marks=marks, id=f"{route or '/'} {kind}")


# -- the world: real objects, made anew when a request changed them --------------


class FormReader(HTMLParser):
    """The forms of a page: action -> field values as the form would send them."""

    def __init__(self, page_url: str):
        super().__init__()
        self.page_url = page_url
        self.forms: dict[str, dict[str, str]] = {}
        self.current: dict[str, str] | None = None
        self.textarea: str | None = None
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            action = urlsplit(urljoin(self.page_url, a.get("action") or self.page_url)).path
            self.current = self.forms.setdefault(action, {})
        elif self.current is None or not a.get("name"):
            return
        elif tag == "input":
            # Every field the form has, ticked or not: each one is fuzzed.
            self.current.setdefault(a["name"], a.get("value") or "")
        elif tag == "button" and a.get("value"):
            self.current.setdefault(a["name"], a["value"])
        elif tag == "textarea":
            self.textarea = a["name"]
            self.current.setdefault(a["name"], "")
        elif tag == "select":
            self.select = a["name"]
        elif tag == "option" and self.select:
            self.current.setdefault(self.select, a.get("value", ""))

    def handle_data(self, data):
        if self.current is not None and self.textarea:
            self.current[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None


@dataclass
class World:
    session: Client
    token: dict[str, str]
    tasks: dict[str, int] = field(default_factory=dict)  # graph -> a pending task
    threads: dict[str, str] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    forms: dict[str, dict[str, str]] = field(default_factory=dict)

    def renew(self) -> None:
        for graph, payload in GRAPHS.items():
            run = Run.enqueue(graph_name=graph, kind=Run.Kind.START, payload=payload)
            work("fuzz-worker")
            self.threads[graph] = run.thread_id
            self.runs[graph] = run.pk
            self.tasks[graph] = (
                ReviewTask.objects.pending().filter(thread_id=run.thread_id).order_by("pk")[0].pk
            )
        self.forms = {}
        pages = ["/", "/queue/", "/audit/", "/accounts/login/"]
        for graph in GRAPHS:
            pages += [
                f"/tasks/{self.tasks[graph]}/",
                f"/threads/{self.threads[graph]}/",
                f"/threads/{self.threads[graph]}/state/",
                f"/graphs/{graph}/start/",
            ]
        for page in pages:
            response = self.session.get(page)
            reader = FormReader(page)
            reader.feed(response.content.decode(errors="replace"))
            for action, fields in reader.forms.items():
                self.forms.setdefault(action, fields)

    def urls(self, route: str) -> list[str]:
        """The route with real ids, once per demo graph where it takes one."""
        # A regex pattern (the admin's app list): its first alternative.
        route = re.sub(r"\(\?P<(\w+)>\(?([^)|]*)[^)]*\)+", r"\2", route).replace("^", "")
        route = route.replace("$", "")
        if not re.search(r"<|\{", route):
            return ["/" + route.lstrip("/")]
        out = []
        for graph in GRAPHS:
            values = {
                "pk": self.tasks[graph] if "tasks/" in route else self.runs[graph],
                "task_id": self.tasks[graph],
                "run_id": self.runs[graph],
                "thread_id": self.threads[graph],
                "graph_name": graph,
                "assistant_id": graph,
                "checkpoint_id": Thread.objects.get(pk=self.threads[graph]).latest_checkpoint_id(),
                "namespace": "no-such-subgraph",
                "rest": "no/such/route",
                "object_id": 1,
                "content_type_id": 1,
                "id": 1,
            }
            url = re.sub(
                r"<(?:\w+:)?(\w+)>|\{(\w+)\}",
                lambda m, values=values: str(values[m.group(1) or m.group(2)]),
                route,
            )
            out.append("/" + url.lstrip("/"))
        return list(dict.fromkeys(out))


def row_counts() -> dict[str, int]:
    """Every table's row count, in one query (it runs twice per request)."""
    models = [
        m
        for m in apps.get_models()
        if m._meta.managed and m._meta.label not in MAY_WRITE_ON_REFUSAL
    ]
    quote = connection.ops.quote_name
    sql = ", ".join(f"(SELECT COUNT(*) FROM {quote(m._meta.db_table)})" for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}")
        counts = cursor.fetchone()
    return {m._meta.label: n for m, n in zip(models, counts, strict=True)}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One set of objects for the module, committed for real (the worker and
    LangGraph read from their own connections); emptied at the end."""
    with django_db_blocker.unblock():
        reviewer = get_user_model().objects.create_user("rita", password="pw-rita-123")
        session = Client()
        session.force_login(reviewer)
        _, key = ApiToken.issue(reviewer, "fuzz")
        made = World(session=session, token={"HTTP_AUTHORIZATION": f"Bearer {key}"})
        made.renew()
        try:
            yield made
        finally:
            call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def fuzz(world):
    return Fuzz(world)


class Fuzz:
    def __init__(self, world: World):
        self.world = world
        self.answers: list[tuple[str, str, int]] = []

    def send(self, what: str, call, *args, refused_with: int | None = None, **kwargs) -> int:
        # Each request in a savepoint rolled back after it: what an accepted
        # request wrote is undone, so the next one meets the same objects.
        cookies = copy.deepcopy(self.world.session.cookies)
        with transaction.atomic():
            before = row_counts()
            response = call(*args, **kwargs)
            after = row_counts()
            transaction.set_rollback(True)
        self.world.session.cookies = cookies  # a sign-out is undone too
        status = response.status_code
        self.answers.append((what, response.content[:200].decode(errors="replace"), status))
        assert status < 500, (what, status, response.content[:2000])
        if refused_with is not None:
            assert status == refused_with, (what, status, response.content[:500])
        changed = {k: (before[k], n) for k, n in after.items() if before.get(k) != n}
        if status >= 400:
            assert not changed, (what, status, changed)
        return status


# -- pages --------------------------------------------------------------------------


def _bad(kind: str) -> str:
    return {"malformed": MALFORMED, "nested": NESTED, "hugeint": HUGE, "nul": NUL}[kind]


def _json_body(kind: str) -> str:
    return {
        "malformed": MALFORMED,
        "nested": NESTED,
        "hugeint": '{"value": ' + HUGE + ', "tasks": [' + HUGE + "]}",
        "nul": '{"value": "a\\u0000b"}',
    }[kind]


def _fuzz_page(fuzz: Fuzz, route: str, kind: str) -> None:
    world = fuzz.world
    generic = {"value": "", "raw": "", "tasks": "", "message": ""}
    for index in range(len(world.urls(route))):
        # Read again before each request: an accepted one renews the objects.
        def url(index: int = index) -> str:
            return world.urls(route)[index]

        def form() -> dict[str, str]:
            return world.forms.get(url()) or generic

        post = world.session.post
        if kind == "oversized":
            data = {**form(), "raw": "x" * OVERSIZED}
            fuzz.send(f"POST {url()} oversized", post, url(), data, refused_with=413)
            continue
        if kind == "nul":
            fuzz.send(f"GET {url()}?q=NUL", world.session.get, url(), {"q": NUL}, refused_with=400)
        for name in list(form()):
            fuzz.send(
                f"POST {url()} {name}={kind}",
                post,
                url(),
                {**form(), name: _bad(kind)},
                refused_with=400 if kind == "nul" else None,
            )
        for method in WRITE_METHODS:
            fuzz.send(
                f"{method.upper()} {url()} JSON body {kind}",
                getattr(world.session, method),
                url(),
                _json_body(kind),
                content_type="application/json",
                refused_with=422 if kind == "nul" else None,
            )


@pytest.mark.parametrize(("route", "kind"), list(_cases(PAGE_ROUTES, KINDS)))
def test_page_route(fuzz, route, kind):
    _fuzz_page(fuzz, route, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_admin_routes(fuzz, kind):
    """The admin's many routes in one case per kind: a reviewer who is not
    staff is sent to the admin's sign-in, but the input is read first."""
    for route in ADMIN_ROUTES:
        _fuzz_page(fuzz, route, kind)


# -- /api/ ---------------------------------------------------------------------------


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _example(schema: dict, document: dict) -> Any:
    schema = _resolve(schema, document)
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            k: _example(v, document)
            for k, v in schema.get("properties", {}).items()
            if k in schema.get("required", [])
        }
    return {"string": "x", "integer": 1, "number": 1, "boolean": False, "array": []}.get(kind)


def _bodies(world: World, method: str, path: str, graph: str) -> tuple[dict, list[str]]:
    """A body the operation would take, and the names of its fields."""
    document = api.get_openapi_schema(path_prefix="/api")
    operation = document["paths"][path][method]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return {}, ["unexpected"]
    schema = _resolve(content["schema"], document)
    body = _example(schema, document) or {}
    if "graph" in schema.get("properties", {}):
        body.update(graph=graph, input=GRAPHS[graph])
    if "decisions" in schema.get("properties", {}):
        body["decisions"] = {str(world.tasks[graph]): {"type": "approve"}}
    return body, list(schema.get("properties", {})) or ["unexpected"]


@pytest.mark.parametrize(
    ("route", "kind"),
    list(_cases([f"{m.upper()} {p}" for m, p in API_OPERATIONS], KINDS)),
)
def test_api_operation(fuzz, route, kind):
    world = fuzz.world
    method, path = route.split(" ", 1)
    method = method.lower()
    client = Client()

    def send(url: str, text: str):
        return getattr(client, method)(url, text, content_type="application/json", **world.token)

    for graph in GRAPHS:
        urls = world.urls(path)
        url = urls[list(GRAPHS).index(graph) % len(urls)]
        body, names = _bodies(world, method, path, graph)
        if kind == "oversized":
            text = json.dumps({**body, "padding": "x" * OVERSIZED})
            fuzz.send(f"{route} oversized", send, url, text, refused_with=413)
            continue
        if kind == "malformed":
            fuzz.send(f"{route} malformed body", send, url, MALFORMED)
        if kind == "nul" and "{" in path:
            first_id = re.search(r"\{(\w+)\}", path).group(0)
            bad_url = path.replace(first_id, "%00")
            bad_url = re.sub(r"\{(\w+)\}", "1", bad_url)
            fuzz.send(f"{route} NUL in path", send, bad_url, json.dumps(body), refused_with=400)
        for name in names:
            # Renewed after an accepted request: new ids.
            urls = world.urls(path)
            url = urls[list(GRAPHS).index(graph) % len(urls)]
            body, _ = _bodies(world, method, path, graph)
            placeholder = "__FUZZ__"
            text = json.dumps({**body, name: placeholder})
            bad = {
                "malformed": json.dumps(MALFORMED),
                "nested": NESTED,
                "hugeint": HUGE,
                "nul": json.dumps(NUL),
            }[kind]
            fuzz.send(
                f"{route} {name}={kind}",
                send,
                url,
                text.replace(json.dumps(placeholder), bad),
                refused_with=422 if kind in ("nul", "hugeint") else None,
            )


def test_the_fuzzed_routes_are_the_served_ones(world):
    """The OpenAPI document served is the one the cases came from."""
    served = world.session.get("/api/openapi.json").json()
    assert {p for p in served["paths"]} == {
        p for p in api.get_openapi_schema(path_prefix="/api")["paths"]
    }
    assert len(PAGE_ROUTES) > 20 and len(API_OPERATIONS) >= 7


@pytest.mark.postgres
def test_fuzz_on_postgresql(postgres_server):
    env = {
        **os.environ,
        "DATABASE_URL": create_database(postgres_server.url, "hitl_fuzz"),
        "TEST_DATABASE_URL": postgres_server.url,
    }
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "not on_postgresql",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
