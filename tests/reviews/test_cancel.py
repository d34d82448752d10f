"""Cancelling a run from the thread page and the API: audited, refused once
the run has stopped, offered only to those who may start the graph's runs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from graphs.models import Run
from reviews.models import ApiToken, AuditEvent, ReviewRule
from tests.reviews.conftest import start

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
