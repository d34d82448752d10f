"""On PostgreSQL each process lends its pooled connections: requests waiting
on runs (streams, waits, joins) give theirs back while they wait."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client

from tests.agent_server.conftest import serve
from tests.servers import create_database

pytestmark = pytest.mark.postgres

GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"
POOL = 6  # the worker, its lease thread and the saver keep a few of them


@pytest.fixture(scope="module")
def site(postgres_server, tmp_path_factory):
    url = create_database(postgres_server.url, "agent_server_pool")
    yield from serve(
        tmp_path_factory.mktemp("pooled"),
        graphs=GRAPHS,
        extra_env={"DATABASE_URL": url, "DATABASE_POOL_SIZE": str(POOL)},
    )


def test_more_streams_wait_than_the_pool_has_connections(site, tmp_path):
    key = site.key("admin")
    gate = tmp_path / "gate"
    clients = [get_sync_client(url=site.api_url, api_key=key) for _ in range(POOL + 2)]
    streams = [
        client.runs.stream(
            str(uuid.uuid4()), "gated", input={"gate": str(gate)}, if_not_exists="create"
        )
        for client in clients
    ]
    try:
        # Each stream opens with its metadata once its run is made: from then
        # on its request waits, more of them than the pool holds. (Were they
        # holding connections, the later ones could not start, and nothing
        # else could be asked.)
        firsts = [next(stream) for stream in streams]
        assert [part.event for part in firsts] == ["metadata"] * len(streams)
        probe = get_sync_client(url=site.api_url, api_key=key)
        assert probe.threads.search(limit=1)
    finally:
        gate.touch()
    with ThreadPoolExecutor(len(streams)) as pool:
        ends = list(pool.map(lambda stream: [part.event for part in stream], streams))
    assert all(events[-1] == "values" for events in ends), ends
    for client in clients:
        client.http.client.close()
