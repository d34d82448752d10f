"""The start form, the state editor and the decision form are Django forms
that the pages and the JSON API share: the same bad input gets the same
sentence beside the page's field and in the API's 422, and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from graphs.models import Checkpoint, Run
from reviews.models import ApiToken, AuditEvent, ReviewTask
from tests.reviews.conftest import pending
from tests.reviews.rows import stopped

FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}


@pytest.fixture
def api(rita):
    _, key = ApiToken.issue(rita, "tests")
    client = Client()

    def post(path: str, body: dict):
        return client.post(
            f"/api{path}",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    return post


def field_html(page: str, name: str) -> str:
    """The field's wrapper: its input, its help and its error."""
    at = page.index(f'name="{name}"')
    return page[page.rindex('<div class="field', 0, at) : page.index("</div>", at)]


def test_a_refused_start_says_the_same_on_the_page_and_in_the_api(as_rita, api):
    response = as_rita.post(
        reverse("start_run", args=["drafting"]),
        {
            "raw": json.dumps({"topic": 5}),
            "config": json.dumps({"recursion_limit": 0}),
            "interrupt_before": ["nowhere"],
        },
    )
    assert response.status_code == 422
    page = response.context["form"].errors
    refused = api(
        "/runs",
        {
            "graph": "drafting",
            "input": {"topic": 5},
            "config": {"recursion_limit": 0},
            "interrupt_before": ["nowhere"],
        },
    )
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert page["raw"] == ["topic: 5 is not of type 'string'"]
    assert errors["input.topic"] == page["raw"][0] and page["raw"][0] in errors["input"]
    assert errors["config"] == page["config"][0] == "config 'recursion_limit' must be at least 1."
    assert errors["interrupt_before"] == page["interrupt_before"][0]
    assert "nowhere is not among the nodes" in errors["interrupt_before"]
    assert not Run.objects.exists()


def test_a_start_problem_is_told_beside_its_field(as_rita):
    response = as_rita.post(
        reverse("start_run", args=["drafting"]), {"in-topic": "launch", "config": "[1]"}
    )
    assert response.status_code == 422
    field = field_html(response.content.decode(), "config")
    assert 'aria-invalid="true"' in field and "id_config_error" in field
    assert 'id="id_config_error">Config must be a JSON object' in field
    assert not Run.objects.exists()


def test_a_refused_state_edit_says_the_same_on_the_page_and_in_the_api(as_rita, api):
    thread = stopped("drafting", {"topic": "launch"})
    before = Checkpoint.objects.filter(thread_id=thread).count()
    response = as_rita.post(
        reverse("thread_state", args=[thread]),
        {"raw": json.dumps({"revisions": "one"}), "as_node": "nowhere"},
    )
    assert response.status_code == 422
    page = response.context["edit"].edit_form.errors
    refused = api(
        f"/threads/{thread}/state", {"values": {"revisions": "one"}, "as_node": "nowhere"}
    )
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert errors["revisions"] == page["raw"][0]
    assert errors["revisions"].startswith("revisions: 'one' is not of type")
    assert errors["as_node"] == page["as_node"][0]
    assert errors["as_node"].startswith("'nowhere' is not a node of drafting")
    field = field_html(response.content.decode(), "as_node")
    assert 'aria-invalid="true"' in field and 'id="id_as_node_error"' in field
    assert Checkpoint.objects.filter(thread_id=thread).count() == before
    assert not AuditEvent.objects.filter(action="state.edited").exists()


@pytest.mark.parametrize(
    ("decision", "field", "says"),
    [
        ({"type": "reject"}, "message", "Write the message the model will read."),
        (
            {"type": "edit", "name": "charge_card", "args": [300]},
            "args",
            "Arguments: an edit needs them as a JSON object.",
        ),
        ({"type": "maybe"}, "type", "'maybe' is not allowed here (allowed: approve, edit"),
    ],
)
def test_a_refused_decision_says_the_same_on_the_page_and_in_the_api(
    as_rita, api, decision, field, says
):
    thread = stopped("tool_agent", FLIGHT)
    book, charge = pending(thread)
    posted = {f"t{book.pk}-type": "approve"}
    for key, value in decision.items():
        posted[f"t{charge.pk}-{key}"] = value if isinstance(value, str) else json.dumps(value)
    response = as_rita.post(reverse("decide", args=[book.pk]), posted)
    assert response.status_code == 422
    form = next(f for f in response.context["forms"] if f.task.pk == charge.pk)
    (message,) = form.errors[field]
    assert message.startswith(says)
    html = response.content.decode()
    assert f'id="id_t{charge.pk}-{field}_error"' in html  # beside its own field

    refused = api(
        f"/tasks/{book.pk}/decision",
        {"decisions": {book.pk: {"type": "approve"}, charge.pk: decision}},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == {str(charge.pk): message}
    assert [t.status for t in pending(thread)] == ["pending", "pending"]
    assert not ReviewTask.objects.exclude(status="pending").exists()
    assert not Run.objects.filter(kind=Run.Kind.RESUME).exists()
