import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.registry import get_registry


@pytest.fixture
def reviewer(db_alias):
    return get_user_model().objects.create_user("rita", password="pw-rita-123")


def test_home_requires_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("db_alias", ["sqlite"], indirect=True)
def test_home_lists_graphs_and_threads_escaped(client, reviewer):
    graph = get_registry().get("drafting").compile(DjangoCheckpointSaver())
    thread_id = f"<script>alert(1)</script>-{uuid.uuid4()}"
    graph.invoke({"topic": "x"}, {"configurable": {"thread_id": thread_id}})
    client.force_login(reviewer)
    html = client.get(reverse("home")).content.decode()
    for name in ("support", "tool_agent", "drafting"):
        assert f"<strong>{name}</strong>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html


@pytest.mark.parametrize("db_alias", ["sqlite"], indirect=True)
def test_each_thread_shows_how_its_last_run_ended(client, reviewer):
    from graphs.models import Run
    from graphs.worker import work

    first = Run.enqueue(graph_name="drafting", kind=Run.Kind.START, payload={"topic": "a"})
    work("test-worker")
    queued = Run.enqueue(graph_name="drafting", kind=Run.Kind.START, payload={"topic": "b"})
    client.force_login(reviewer)
    html = client.get(reverse("home")).content.decode()

    def row_of(thread_id: str) -> str:
        return next(row for row in html.split("<tr>") if thread_id in row)

    assert '<span class="run-status interrupted">interrupted</span>' in row_of(first.thread_id)
    assert '<span class="run-status queued">queued</span>' in row_of(queued.thread_id)
