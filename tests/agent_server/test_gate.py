"""Every /langgraph/ route asks for a key: a route added later is found by
its namespace and checked too. (What a key's user may see and change is in
test_threads, test_assistants and the runs tests.)"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

METHODS = ("get", "post", "patch", "delete")
SAMPLE = {
    "thread_id": "some-thread",
    "assistant_id": "drafting",
    "run_id": "1f1ebd2d-4fba-69fb-8001-8833d074282b",
    "checkpoint_id": "1f1ebd2d-4fba-69fb-8001-8833d074282b",
    "namespace": "review",
    "rest": "no/such/route",
}


def langgraph_routes() -> list[str]:
    """Every /langgraph/ route as a path with sample values."""
    found = []

    def walk(entries, prefix: str, inside: bool) -> None:
        for entry in entries:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route, inside or entry.namespace == "langgraph")
            elif isinstance(entry, URLPattern) and inside:
                found.append(route)

    walk(get_resolver().url_patterns, "/", False)
    return found


def filled(route: str) -> str:
    route = route.replace("^(?P<rest>.*)$", "<rest>")
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE[m[1]], route)


def test_the_table_knows_every_route():
    routes = langgraph_routes()
    assert "/langgraph/threads/<path:thread_id>/state" in routes
    assert any("runs" in r for r in routes)
    assert all(re.search(r"<(?:\w+:)?(\w+)>", filled(r)) is None for r in routes)


# Asked before anything else, without a key, as on LangGraph's own servers:
# they tell only that the server is there and which versions it runs.
OPEN = {"/langgraph/ok", "/langgraph/info"}


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in langgraph_routes() if r not in OPEN])
def test_every_route_refuses_a_request_without_a_valid_key(route):
    client = Client()
    path = filled(route)
    answers = {}
    for method in METHODS:
        for headers in ({}, {"x-api-key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = client.generic(
                method.upper(), path, data="{}", content_type="application/json", headers=headers
            )
            answers[method, tuple(headers)] = response.status_code
            # 405: a method the route doesn't serve, answered before anyone is asked.
            assert response.status_code in (401, 405), (method, headers, response.content)
            if response.status_code == 401:
                assert set(response.json()) == {"detail"}
    assert 401 in answers.values(), f"{path} serves no method at all"


@pytest.mark.django_db
def test_only_ok_and_info_answer_without_a_key():
    assert set(langgraph_routes()) >= OPEN
    client = Client()
    for path in OPEN:
        assert client.get(path).status_code == 200
        assert client.post(path, data="{}", content_type="application/json").status_code == 405
    assert set(client.get("/langgraph/info").json()) == {
        "version",
        "langgraph_py_version",
        "flags",
        "host",
    }
