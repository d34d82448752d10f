"""The JSON API: tokens, the documented routes, the same rules and audit as the pages."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from graphs.models import Run
from reviews.models import ApiToken, AuditEvent, ReviewTask
from tests.reviews.conftest import finish

FLIGHT = {"messages": [{"role": "user", "content": "Book me a flight to Oslo for 2 people"}]}


class Api:
    def __init__(self, key: str | None):
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}

    def get(self, path: str, **params):
        return self.client.get(f"/api{path}", params, **self.headers)

    def post(self, path: str, body=None, raw: str | None = None):
        data = raw if raw is not None else json.dumps(body or {})
        return self.client.post(
            f"/api{path}", data, content_type="application/json", **self.headers
        )


@pytest.fixture
def api(rita) -> Api:
    _, key = ApiToken.issue(rita, "tests")
    return Api(key)


def schema(as_rita) -> dict:
    response = as_rita.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_every_route_needs_a_valid_token(as_rita, rita, client):
    document = schema(as_rita)
    assert client.get("/api/openapi.json").status_code == 302  # docs need a sign-in too
    token, key = ApiToken.issue(rita, "soon revoked")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    for anonymous in (Api(None), Api("not-a-token"), Api(key)):
        for path, operations in document["paths"].items():
            url = path.removeprefix("/api").replace("{thread_id}", "t")
            url = url.replace("{task_id}", "1").replace("{run_id}", "1")
            for method in operations:
                response = getattr(anonymous, method)(url)
                assert response.status_code == 401, (method, path)


def test_documented_routes_answer_as_documented_and_never_500(as_rita, api):
    document = schema(as_rita)
    assert {p.removeprefix("/api") for p in document["paths"]} == {
        "/runs",
        "/runs/{run_id}/cancel",
        "/runs/{run_id}/retry",
        "/threads/{thread_id}",
        "/threads/{thread_id}/history",
        "/threads/{thread_id}/state",
        "/threads/{thread_id}/replay",
        "/tasks",
        "/tasks/{task_id}",
        "/tasks/{task_id}/decision",
        "/tasks/{task_id}/claim",
    }
    for path, operations in document["paths"].items():
        url = path.removeprefix("/api").replace("{thread_id}", "nope")
        url = url.replace("{task_id}", "999").replace("{run_id}", "999")
        for method, operation in operations.items():
            documented = set(operation["responses"]) | {"422"}  # ninja's own validation
            for body in (None, "{not json", '{"unexpected": ['):
                if method == "get":
                    response = api.get(url)
                else:
                    response = api.post(url, raw=body if body else "{}")
                assert response.status_code < 500, (method, path, response.content)
                assert str(response.status_code) in documented, (method, path, response.status_code)
                if response.status_code >= 400:  # a refusal says why
                    assert response.json().get("detail"), (method, path)


def test_a_review_through_the_api_keeps_types_and_is_audited(api, rita):
    started = api.post("/runs", {"graph": "tool_agent", "input": FLIGHT, "title": "From a bot"})
    assert started.status_code == 201, started.content
    run = started.json()
    assert run["status"] == "queued" and run["kind"] == "start"
    finish()
    listed = api.get("/tasks", graph="tool_agent", tool="charge_card").json()
    (charge,) = listed["tasks"]
    assert charge["args"] == {"amount": 360.0, "currency": "EUR"} and charge["allowed"]
    book = api.get("/tasks", q="book_flight").json()["tasks"][0]

    partial = api.post(
        f"/tasks/{book['id']}/decision", {"decisions": {book["id"]: {"type": "approve"}}}
    )
    assert partial.status_code == 422 and str(charge["id"]) in partial.json()["errors"]
    wrong = api.post(
        f"/tasks/{book['id']}/decision",
        {
            "decisions": {
                book["id"]: {"type": "approve"},
                charge["id"]: {"type": "edit", "args": {"amount": "lots"}},
            }
        },
    )
    assert wrong.status_code == 422 and "amount" in wrong.json()["errors"][str(charge["id"])]
    decided = api.post(
        f"/tasks/{book['id']}/decision",
        {
            "decisions": {
                book["id"]: {"type": "approve"},
                charge["id"]: {
                    "type": "edit",
                    "name": "charge_card",
                    "args": {"amount": 300, "currency": "NOK"},
                },
            }
        },
    )
    assert decided.status_code == 200, decided.content
    assert decided.json()["resume_run"]["kind"] == "resume"
    again = api.post(
        f"/tasks/{book['id']}/decision", {"decisions": {book["id"]: {"type": "approve"}}}
    )
    assert again.status_code == 409 and "Already decided by rita" in again.json()["detail"]
    assert ReviewTask.objects.get(pk=charge["id"]).decision["args"]["amount"] == 300
    finish()
    state = api.get(f"/threads/{run['thread_id']}").json()
    tools = [m["content"] for m in state["values"]["messages"] if m["type"] == "tool"]
    assert any(c.endswith("Charged 300.00 NOK") for c in tools)
    actions = set(AuditEvent.objects.values_list("action", "actor_name"))
    assert {("run.started", "rita"), ("task.decided", "rita")} <= actions


def test_state_edit_replay_and_history_through_the_api(api):
    run = api.post("/runs", {"graph": "drafting", "input": {"topic": "launch"}}).json()
    finish()
    thread = run["thread_id"]
    state = api.get(f"/threads/{thread}").json()
    assert state["next"] == ["ask_feedback"] and state["values"]["topic"] == "launch"

    bad = api.post(f"/threads/{thread}/state", {"values": {"revisions": "one"}})
    assert bad.status_code == 422 and "revisions" in json.dumps(bad.json())
    stale = api.post(
        f"/threads/{thread}/state", {"values": {"topic": "x"}, "base_checkpoint": "old"}
    )
    assert stale.status_code == 409
    edited = api.post(
        f"/threads/{thread}/state",
        {
            "values": {"draft": "By the API"},
            "as_node": "write_draft",
            "base_checkpoint": state["checkpoint_id"],
        },
    )
    assert edited.status_code == 200, edited.content
    assert api.get(f"/threads/{thread}").json()["values"]["draft"] == "By the API"

    history = api.get(f"/threads/{thread}/history", limit=2).json()
    assert len(history["points"]) == 2 and history["older"]
    assert history["points"][0]["source"] == "update"
    first = api.get(f"/threads/{thread}/history", before=history["older"]).json()["points"][-1]
    replayed = api.post(f"/threads/{thread}/replay", {"checkpoint_id": first["checkpoint_id"]})
    assert replayed.status_code == 201 and replayed.json()["kind"] == "replay"
    busy = api.post(f"/threads/{thread}/replay", {"checkpoint_id": first["checkpoint_id"]})
    assert busy.status_code == 409 and "replay once it has stopped" in busy.json()["detail"]
    assert Run.objects.filter(kind="replay").count() == 1
    assert api.post("/runs", {"graph": "nope"}).status_code == 404
    assert api.post("/runs", {"graph": "drafting", "input": {"topic": 5}}).status_code == 422


def test_thread_ids_with_slashes_reach_their_thread(api):
    """Agents name threads as they like ("team/ticket 7"): every thread route
    of the API reaches such a thread, and only it."""
    for thread in ("ops/ticket 7", "ops"):
        Run.enqueue(
            graph_name="drafting", kind=Run.Kind.START, thread_id=thread, payload={"topic": "x"}
        )
    finish()
    state = api.get("/threads/ops/ticket%207")
    assert state.status_code == 200 and state.json()["thread_id"] == "ops/ticket 7"
    history = api.get("/threads/ops/ticket%207/history")
    assert history.status_code == 200 and history.json()["points"]
    assert api.get("/threads/ops").json()["thread_id"] == "ops"
    checkpoint = history.json()["points"][-1]["checkpoint_id"]
    replay = api.post("/threads/ops/ticket%207/replay", {"checkpoint_id": checkpoint})
    assert replay.status_code == 201 and replay.json()["thread_id"] == "ops/ticket 7"


def test_a_webhook_sends_a_task_as_the_api_shows_it(api, rita):
    from reviews.actions import tasks as task_actions
    from reviews.models import WebhookDelivery, WebhookEndpoint
    from tests.reviews.conftest import pending, start

    WebhookEndpoint.objects.create(
        name="bot", url="http://127.0.0.1:9/", secret="k", events=["task.created", "task.decided"]
    )
    (task,) = pending(start("support", {"messages": [{"role": "user", "content": "refund A-1"}]}))
    created = WebhookDelivery.objects.get(event="task.created").payload
    task_actions.decide([task], {task.pk: {"type": "accept"}}, user=rita)
    decided = WebhookDelivery.objects.get(event="task.decided").payload
    shown = api.get(f"/tasks/{task.pk}").json()
    dates = ("created_at", "decided_at")
    assert set(decided) == set(shown) == set(created)
    assert {k: v for k, v in decided.items() if k not in dates} == {
        k: v for k, v in shown.items() if k not in dates
    }
    assert created["status"] == "pending" and decided["decided_by"] == "rita"
