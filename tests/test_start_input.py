"""A run's input is checked against the graph's input before anything is
queued: a value the graph's reducer would refuse (`{"messages": 5}`) is a
422 that names the key, not a run that fails in the worker."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from graphs.models import Run
from reviews.models import ApiToken

HELLO = [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]


@pytest.fixture
def rita(transactional_db):
    return get_user_model().objects.create_user("rita", password="pw-rita-123")


@pytest.fixture
def as_rita(rita) -> Client:
    client = Client()
    client.force_login(rita)
    return client


def post_run(rita, payload) -> object:
    _, key = ApiToken.issue(rita, "tests")
    return Client().post(
        "/api/runs",
        json.dumps({"graph": "tool_agent", "input": payload}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        (5, "Unsupported message type"),
        ([5], "Unsupported message type"),
        ({"x": 1}, "must contain 'role' and 'content'"),
        (None, "non-null"),
        ([{"role": "user", "content": 3}], "validation error"),
    ],
)
def test_the_api_refuses_input_the_reducer_would(rita, messages, says):
    response = post_run(rita, {"messages": messages})
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]["input"]
    assert errors.startswith("messages: ") and says in errors
    assert not Run.objects.exists()


def test_input_the_reducer_takes_still_starts(rita):
    for messages in (HELLO, HELLO[0], "Book me a flight"):
        assert post_run(rita, {"messages": messages}).status_code == 201
    assert Run.objects.count() == 3


def test_the_start_page_shows_the_refusal_beside_the_field(as_rita):
    # A sentence is taken as a message; a list holding a number is no message.
    response = as_rita.post("/graphs/tool_agent/start/", {"in-messages": "[5]"})
    assert response.status_code == 422
    page = response.content.decode()
    field = page[page.index('name="in-messages"') - 400 : page.index('name="in-messages"') + 600]
    assert "invalid" in field and "Unsupported message type" in field
    assert 'aria-invalid="true"' in field  # the input itself says so, and points at the error

    raw = as_rita.post("/graphs/tool_agent/start/", {"raw": '{"messages": 5}'})
    assert raw.status_code == 422
    assert "messages: Unsupported message type" in raw.content.decode()
    assert not Run.objects.exists()

    good = as_rita.post("/graphs/tool_agent/start/", {"raw": json.dumps({"messages": HELLO})})
    assert good.status_code == 302 and Run.objects.count() == 1
