"""Named people and a way to bring a graph to its next stop, for page tests."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from graphs.models import Run
from graphs.worker import work
from reviews.models import ReviewTask


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


def start(graph_name: str, payload, **fields) -> str:
    """Start a run and drive it to its stop; returns the thread id."""
    run = Run.enqueue(graph_name=graph_name, kind=Run.Kind.START, payload=payload, **fields)
    work("test-worker")
    return run.thread_id


def pending(thread_id: str) -> list[ReviewTask]:
    return list(ReviewTask.objects.pending().filter(thread_id=thread_id).order_by("action_index"))


def finish() -> int:
    """Run whatever the decisions queued."""
    return work("test-worker")
