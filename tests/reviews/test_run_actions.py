"""Cancelling and retrying runs from the thread page and the API: audited,
refused when they no longer apply, offered only to those who may start the
graph's runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import reverse

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Run
from graphs.registry import get_registry
from reviews.models import ApiToken, AuditEvent, ReviewRule
from tests.reviews.conftest import finish, pending, start

AGENTS = Path(__file__).resolve().parents[1] / "graphs" / "agents" / "langgraph.json"


def state_of(graph_name: str, thread_id: str):
    graph = get_registry().get(graph_name).compile(DjangoCheckpointSaver())
    return graph.get_state({"configurable": {"thread_id": thread_id}})


DRAFT = {"topic": "release notes"}


@pytest.fixture
def waiting(transactional_db):
    """A thread stopped at its question, and a run queued on it (no worker runs here)."""
    thread = start("drafting", DRAFT)
    return Run.enqueue(graph_name="drafting", kind=Run.Kind.CONTINUE, thread_id=thread)


def test_the_thread_page_cancels_a_queued_run(as_rita, rita, waiting):
    page = as_rita.get(reverse("thread", args=[waiting.thread_id])).content.decode()
    assert f'id="run-{waiting.pk}-status"' in page
    assert reverse("cancel_run", args=[waiting.pk]) in page and "Cancel run" in page

    response = as_rita.post(reverse("cancel_run", args=[waiting.pk]), follow=True)
    assert f"Run {waiting.pk} cancelled." in response.content.decode()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.error) == (Run.Status.CANCELLED, "Cancelled by rita.")
    event = AuditEvent.objects.get(action="run.cancelled")
    assert (event.actor, event.run_id, event.before) == (rita, waiting.pk, {"status": "queued"})

    # Stopped runs are refused, and nothing more is written.
    again = as_rita.post(reverse("cancel_run", args=[waiting.pk]), follow=True)
    assert f"Run {waiting.pk} has already stopped: it is cancelled." in again.content.decode()
    assert AuditEvent.objects.filter(action="run.cancelled").count() == 1
    status = as_rita.get(reverse("run_status", args=[waiting.pk])).content.decode()
    assert f"Run {waiting.pk}: cancelled" in status and "Cancel run" not in status


def test_viewers_are_not_offered_the_button(as_rita, rita, waiting):
    viewers = Group.objects.create(name="viewers")
    rule = ReviewRule.objects.create(name="drafting", graph_name="drafting")
    rule.view_groups.add(viewers)
    rita.groups.add(viewers)
    page = as_rita.get(reverse("thread", args=[waiting.thread_id])).content.decode()
    assert f'id="run-{waiting.pk}-status"' in page and "Cancel run" not in page
    assert as_rita.post(reverse("cancel_run", args=[waiting.pk])).status_code == 403
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED


def test_the_api_cancels_once(client, rita, waiting):
    _, key = ApiToken.issue(rita, "script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    url = f"/api/runs/{waiting.pk}/cancel"
    response = client.post(url, **auth)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    refused = client.post(url, **auth)
    assert refused.status_code == 409 and "already stopped" in refused.json()["detail"]
    assert client.post("/api/runs/999999/cancel", **auth).status_code == 404


@pytest.fixture
def bring_tool_back():
    """Brings the flaky graph's tool up; it is down again after the test."""

    modules = ("hitl_graphs.flaky", "hitl_graphs.flaky_after_approval")

    def up() -> None:
        for name in modules:
            if name in sys.modules:
                sys.modules[name].TOOL["down"] = False

    yield up
    for name in modules:
        if name in sys.modules:
            sys.modules[name].TOOL["down"] = True


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_failed_run_is_retried_from_where_it_failed(as_rita, rita, bring_tool_back):
    thread = start("flaky", {"answers": []})
    failed = Run.objects.get(thread_id=thread)
    assert failed.status == Run.Status.FAILED
    page = as_rita.get(reverse("thread", args=[thread])).content.decode()
    assert reverse("retry_run", args=[failed.pk]) in page and "Retry" in page

    bring_tool_back()
    response = as_rita.post(reverse("retry_run", args=[failed.pk]), follow=True)
    again = Run.objects.exclude(pk=failed.pk).get(thread_id=thread)
    assert f"Run {again.pk} retries run {failed.pk}." in response.content.decode()
    assert (again.kind, again.payload, again.requested_by) == (Run.Kind.CONTINUE, None, rita)
    event = AuditEvent.objects.get(action="run.retried")
    assert event.run_id == again.pk and event.before["error"] == "ValueError: the tool is down"
    finish()
    again.refresh_from_db()
    assert again.status == Run.Status.SUCCEEDED
    # "prepare" did not run twice
    assert state_of("flaky", thread).values["answers"] == ["prepared", "tool answered"]

    # Only the newest failed run is retried, once.
    refused = as_rita.post(reverse("retry_run", args=[failed.pk]), follow=True)
    assert f"Run {again.pk} came after run {failed.pk}" in refused.content.decode()
    assert Run.objects.filter(thread_id=thread).count() == 2


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_start_that_failed_before_its_first_checkpoint_is_sent_its_input_again(client, rita):
    run = Run.enqueue(graph_name="flaky", kind=Run.Kind.START, payload={"answers": []})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error="the worker crashed")
    _, key = ApiToken.issue(rita, "script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    response = client.post(f"/api/runs/{run.pk}/retry", **auth)
    assert response.status_code == 201 and response.json()["kind"] == "start"
    again = Run.objects.get(pk=response.json()["id"])
    assert again.payload == {"answers": []}
    refused = client.post(f"/api/runs/{again.pk}/retry", **auth)
    assert refused.status_code == 409 and "only a failed run is retried" in refused.json()["detail"]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
def test_a_resume_that_failed_gives_the_review_back_instead_of_a_retry(as_rita, bring_tool_back):
    """The node failed after interrupt() returned the decision: the decision
    is not resent by a retry, the review opens again with the error, and the
    decision made anew runs the node again."""
    thread = start("flaky_after_approval", {"answers": []})
    (task,) = pending(thread)
    decide = {f"t{task.pk}-type": "answer", f"t{task.pk}-value": '"approved"'}
    as_rita.post(reverse("decide", args=[task.pk]), decide)
    finish()
    failed = Run.objects.filter(thread_id=thread).latest("pk")
    assert failed.status == Run.Status.FAILED
    task.refresh_from_db()
    assert task.status == "pending" and "the tool is down" in task.refused_with
    page = as_rita.get(reverse("task", args=[task.pk])).content.decode()
    assert "The graph refused the last decision" in page and "the tool is down" in page
    refused = as_rita.post(reverse("retry_run", args=[failed.pk]), follow=True)
    assert "decide it instead of retrying" in refused.content.decode()
    assert not Run.objects.filter(thread_id=thread, pk__gt=failed.pk).exists()
    bring_tool_back()
    as_rita.post(reverse("decide", args=[task.pk]), decide)
    finish()
    again = Run.objects.filter(thread_id=thread).latest("pk")
    assert again.status == Run.Status.SUCCEEDED
    state = state_of("flaky_after_approval", thread)
    assert state.values["answers"] == ["approved: tool answered"] and not state.next
