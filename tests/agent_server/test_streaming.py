"""/langgraph/ runs streamed over SSE, through langgraph-sdk (sync and async)
against the served dashboard: every stream mode, subgraphs, errors, joining a
run's stream, and a stream that closes only once its run reads as finished.

The expected event sequences are what LangGraph's own dev server (`langgraph
dev`, langgraph-api 0.16) streams for the same graph, recorded from it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client

from tests.agent_server.conftest import ROOT, Served, serve
from tests.servers import (
    create_database,
    free_port,
    redis_missing_reason,
    require,
    start_redis,
    stop_all,
    wait_for_port,
)

GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"
TOPIC = {"topic": "x"}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1002, $1450"}]}
# (stream_subgraphs, mode) -> the event names LangGraph's dev server sends for
# the researcher graph (a subgraph's namespace without its task id).
EXPECTED = {
    (False, "values"): ["metadata", "values", "values", "values"],
    (False, "updates"): ["metadata", "updates", "updates"],
    (False, "custom"): ["metadata"],
    (False, "debug"): ["metadata"] + ["debug"] * 8,
    (False, "tasks"): ["metadata"] + ["tasks"] * 4,
    (False, "checkpoints"): ["metadata"] + ["checkpoints"] * 4,
    (False, "messages-tuple"): ["metadata"],
    (False, "events"): ["metadata"] + ["events"] * 16,
    (True, "values"): ["metadata", "values", "values"] + ["values|study"] * 3 + ["values"],
    (True, "updates"): ["metadata", "updates", "updates|study", "updates|study", "updates"],
    (True, "custom"): ["metadata", "custom|study"],
    (True, "debug"): ["metadata"] + ["debug"] * 6 + ["debug|study"] * 8 + ["debug"] * 2,
    (True, "tasks"): ["metadata"] + ["tasks"] * 3 + ["tasks|study"] * 4 + ["tasks"],
    (True, "checkpoints"): ["metadata"]
    + ["checkpoints"] * 3
    + ["checkpoints|study"] * 4
    + ["checkpoints"],
    (True, "events"): ["metadata"] + ["events"] * 16,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from serve(tmp_path_factory.mktemp("streaming"), graphs=GRAPHS)


@pytest.fixture(scope="module")
def key(site) -> str:
    return site.key("admin")


@pytest.fixture
def client(site, key):
    client = get_sync_client(url=site.api_url, api_key=key)
    yield client
    client.http.client.close()


def names(parts) -> list[str]:
    return [re.sub(r"\|study:[0-9a-f-]+", "|study", part.event) for part in parts]


def new_thread() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize(("subgraphs", "mode"), sorted(EXPECTED))
def test_each_stream_mode_sends_the_events_langgraph_sends(client, subgraphs, mode):
    parts = list(
        client.runs.stream(
            new_thread(),
            "researcher",
            input=TOPIC,
            stream_mode=mode,
            stream_subgraphs=subgraphs,
            if_not_exists="create",
        )
    )
    assert names(parts) == EXPECTED[(subgraphs, mode)]


def test_stream_data_is_shaped_as_langgraph_shapes_it(client):
    parts = list(
        client.runs.stream(
            new_thread(),
            "researcher",
            input=TOPIC,
            stream_mode=["values", "updates", "custom", "debug"],
            stream_subgraphs=True,
            if_not_exists="create",
        )
    )
    by_name: dict[str, list] = {}
    for part in parts:
        by_name.setdefault(re.sub(r"\|study:[0-9a-f-]+", "|study", part.event), []).append(
            part.data
        )
    # The subgraph hands back its whole state, which the parent's reducer appends.
    assert by_name["values"][-1] == {
        "topic": "x",
        "steps": ["plan", "plan", "research", "summarise"],
    }
    assert by_name["updates"][0] == {"plan": {"steps": ["plan"]}}
    assert by_name["updates|study"] == [
        {"research": {"steps": ["research"]}},
        {"summarise": {"steps": ["summarise"]}},
    ]
    assert by_name["custom|study"] == [{"progress": "reading about x"}]
    # A debug checkpoint names its checkpoint and its parent's as LangGraph's server does.
    checkpoint = next(d for d in by_name["debug"] if d["type"] == "checkpoint")["payload"]
    assert set(checkpoint["checkpoint"]) == {"checkpoint_id", "thread_id", "checkpoint_ns"}
    assert "parent_checkpoint" in checkpoint


def test_messages_tuple_streams_each_message_with_its_metadata(client):
    parts = list(
        client.runs.stream(
            new_thread(),
            "support",
            input=REFUND,
            stream_mode="messages-tuple",
            if_not_exists="create",
        )
    )
    assert names(parts) == ["metadata", "messages", "messages", "messages"]
    message, metadata = parts[1].data
    assert message["type"] == "ai"
    assert message["tool_calls"][0]["name"] == "lookup_order"
    assert metadata["langgraph_node"] == "agent"
    assert metadata["graph_id"] == "support"


def test_a_stream_opens_with_its_run_and_closes_once_the_run_has_ended(site, key, client):
    thread_id = new_thread()
    http = httpx.Client(base_url=site.api_url, headers={"x-api-key": key}, timeout=60)
    with (
        http,
        http.stream(
            "POST",
            f"/threads/{thread_id}/runs/stream",
            json={"assistant_id": "drafting", "input": TOPIC, "if_not_exists": "create"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
        location = response.headers["location"]
        content_location = response.headers["content-location"]
    assert lines[:2][0] == "event: metadata"
    run_id = content_location.rsplit("/", 1)[-1]
    assert lines[1] == f'data: {{"run_id":"{run_id}","attempt":1}}'
    # Relative to the mount, so the SDK reconnects to this server's own route.
    assert content_location == f"/threads/{thread_id}/runs/{run_id}"
    assert location == f"{content_location}/stream"
    # Without an "end" event the SDK asks the run whether it is over; it is.
    assert client.runs.get(thread_id, run_id)["status"] == "success"


def test_a_failing_run_streams_its_error(client):
    thread_id = new_thread()
    parts = list(
        client.runs.stream(thread_id, "researcher", input={"topic": "fail"}, if_not_exists="create")
    )
    assert names(parts) == ["metadata", "values", "error"]
    assert parts[-1].data == {"error": "ValueError", "message": "nothing to plan for 'fail'"}
    assert client.runs.list(thread_id)[0]["status"] == "error"


def test_runs_of_the_pages_relay_nothing_runs_of_the_api_their_modes(site, key, client):
    """As on LangGraph's server every run made through the API publishes the
    modes it was made with (a client may join it at any time); a run started
    from the pages or /api/ relays nothing unless a client joins it queued."""
    page_thread = site.start("drafting", TOPIC, key=key)
    thread_id = new_thread()
    created = client.runs.create(thread_id, "drafting", input=TOPIC, if_not_exists="create")
    client.runs.join(thread_id, created["run_id"])
    list(
        client.runs.stream(
            thread_id,
            "drafting",
            command={"resume": {"approved": True, "tone": "formal"}},
            stream_mode=["updates", "custom"],
        )
    )
    modes = site.query(
        "from graphs.models import Run\n"
        f"result = [list(Run.objects.filter(thread_id=t).order_by('pk')"
        ".values_list('stream_mode', flat=True))"
        f" for t in ({page_thread!r}, {thread_id!r})]"
    )
    assert modes == [[[]], [["values"], ["updates", "custom"]]]


def join_when_joined(
    client, thread_id: str, run_id: str, then, *, stream_mode=None, last_event_id=None
):
    """runs.join_stream's request through the SDK's own client, calling
    `then` once the server has answered it (it listens from then on)."""
    return list(
        client.http.stream(
            f"/threads/{thread_id}/runs/{run_id}/stream",
            "GET",
            params={"stream_mode": stream_mode, "cancel_on_disconnect": False},
            headers={"Last-Event-ID": last_event_id} if last_event_id else None,
            on_response=lambda _: then(),
        )
    )


def held(gate: Path) -> None:
    """Wait until the relay graph holds at its gate (its earlier steps sent)."""
    for _ in range(3000):
        if Path(f"{gate}.held").exists():
            return
        threading.Event().wait(0.02)
    raise AssertionError("the run never reached its gate")


# What LangGraph's dev server sends to a client that joins a relay run while
# it holds at its gate: the run's own modes from then on, nothing before
# (no "metadata"), without ids; modes the run doesn't stream aren't added.
JOINED_RUNNING = {
    (None, None): [
        ("values", ["opening", "through"]),
        ("values", ["opening", "through", "closing"]),
    ],
    (None, ("updates", "values")): [
        ("values", ["opening", "through"]),
        ("values", ["opening", "through", "closing"]),
    ],
    (("updates",), None): [
        ("updates", {"wait_at_gate": {"steps": ["through"]}}),
        ("updates", {"closing": {"steps": ["closing"]}}),
    ],
}


def join_while_held(client, thread_id: str, run_id: str, gate, joined_with) -> list:
    """Join the run once it waits at its gate, then let it go on."""
    held(gate)
    try:
        return join_when_joined(
            client,
            thread_id,
            run_id,
            gate.touch,
            stream_mode=list(joined_with) if joined_with else None,
        )
    finally:
        gate.touch()


def seen_of(parts) -> list:
    return [(p.event, p.data["steps"] if p.event == "values" else p.data) for p in parts]


@pytest.mark.parametrize(("made_with", "joined_with"), sorted(JOINED_RUNNING, key=str))
def test_join_stream_follows_a_running_run_from_the_moment_it_joins(
    client, tmp_path, made_with, joined_with
):
    gate = tmp_path / "gate"
    thread_id = new_thread()
    run = client.runs.create(
        thread_id,
        "relay",
        input={"gate": str(gate)},
        if_not_exists="create",
        **({"stream_mode": list(made_with)} if made_with else {}),
    )
    parts = join_while_held(client, thread_id, run["run_id"], gate, joined_with)
    assert seen_of(parts) == JOINED_RUNNING[(made_with, joined_with)]
    assert {p.id for p in parts} == {None}
    assert client.runs.get(thread_id, run["run_id"])["status"] == "success"


# A run of the pages streams nothing until a client joins; one that joins it
# while it runs hears it as one that joins a run of the API: its values (or
# the updates, when asked) from then on.
JOINED_PAGE_RUN = {
    None: JOINED_RUNNING[(None, None)],
    ("updates",): JOINED_RUNNING[(("updates",), None)],
}


@pytest.mark.parametrize("joined_with", sorted(JOINED_PAGE_RUN, key=str))
def test_join_stream_follows_a_running_run_of_the_pages_from_the_moment_it_joins(
    site, key, client, tmp_path, joined_with
):
    gate = tmp_path / "gate"
    started = httpx.post(
        f"{site.url}/api/runs",
        json={"graph": "relay", "input": {"gate": str(gate)}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert started.status_code == 201, started.text
    thread_id = started.json()["thread_id"]
    (run,) = client.runs.list(thread_id)
    parts = join_while_held(client, thread_id, run["run_id"], gate, joined_with)
    assert seen_of(parts) == JOINED_PAGE_RUN[joined_with]
    assert client.runs.get(thread_id, run["run_id"])["status"] == "success"


def test_join_stream_follows_a_queued_run_from_its_first_step(client, tmp_path):
    """As LangGraph's dev server: a client that joins a queued run hears it
    all, from its "metadata" on; one that asks for modes the run doesn't
    stream hears nothing of it."""
    gate = tmp_path / "gate"
    thread_id = new_thread()
    client.runs.create(thread_id, "gated", input={"gate": str(gate)}, if_not_exists="create")
    queued = client.runs.create(thread_id, "gated", input={"gate": str(gate)})
    other = client.runs.create(thread_id, "gated", input={"gate": str(gate)})
    assert queued["status"] == "pending"
    none: list = []
    other_joined = threading.Event()
    joined = threading.Thread(
        target=lambda: none.extend(
            join_when_joined(
                client, thread_id, other["run_id"], other_joined.set, stream_mode=["updates"]
            )
        )
    )

    def open_once_both_joined() -> None:
        joined.start()
        other_joined.wait(60)
        gate.touch()

    try:
        parts = join_when_joined(client, thread_id, queued["run_id"], open_once_both_joined)
    finally:
        gate.touch()
        joined.join(timeout=60)
    assert [p.event for p in parts] == ["metadata", "values", "values"]
    assert parts[0].data == {"run_id": queued["run_id"], "attempt": 1}
    assert parts[-1].data == {"gate": str(gate), "steps": ["through", "through"]}
    assert none == []
    assert client.runs.get(thread_id, queued["run_id"])["status"] == "success"


EVENT_ID = re.compile(r"[0-9]+-[0-9]+")


def test_a_resumable_stream_gives_a_client_back_the_events_it_missed(site, client, tmp_path):
    """As LangGraph's dev server: every event of a `stream_resumable` run has
    an id, and a client that comes back with the last one it saw
    (Last-Event-ID, as the SDK reconnects) gets every event after it, first
    those it missed, then the live ones, then the stream ends with the run."""
    gate = tmp_path / "gate"
    thread_id = new_thread()
    first: list = []
    for part in client.runs.stream(
        thread_id,
        "relay",
        input={"gate": str(gate)},
        if_not_exists="create",
        stream_resumable=True,
    ):
        first.append(part)
        if part.event == "values":
            break  # the connection drops here, before the run's first step
    assert [p.event for p in first] == ["metadata", "values"]
    assert first[-1].data["steps"] == []
    assert all(EVENT_ID.fullmatch(p.id) for p in first)
    run_id = first[0].data["run_id"]
    held(gate)
    assert client.runs.get(thread_id, run_id)["status"] == "running"
    missed = join_when_joined(client, thread_id, run_id, gate.touch, last_event_id=first[-1].id)
    assert [(p.event, p.data["steps"]) for p in missed] == [
        ("values", ["opening"]),  # sent while the client was away
        ("values", ["opening", "through"]),
        ("values", ["opening", "through", "closing"]),
    ]
    ids = [int(p.id.split("-")[1]) for p in first + missed]
    assert ids == sorted(set(ids))
    # Once the run has ended its events are still there to be read again,
    # and those of one mode only, as the client asks.
    again = list(client.runs.join_stream(thread_id, run_id, last_event_id=first[0].id))
    assert [p.id for p in again] == [p.id for p in first[1:] + missed]
    values = list(
        client.runs.join_stream(thread_id, run_id, stream_mode="updates", last_event_id=first[0].id)
    )
    assert values == []
    # A stream that was not resumable has no ids and nothing to give back.
    plain = list(
        client.runs.stream(new_thread(), "researcher", input=TOPIC, if_not_exists="create")
    )
    assert {p.id for p in plain} == {None}
    bad = httpx.get(
        f"{site.api_url}/threads/{thread_id}/runs/{run_id}/stream",
        headers={"x-api-key": client.http.client.headers["x-api-key"], "Last-Event-ID": "x"},
    )
    assert bad.status_code == 422
    assert bad.json() == {"detail": "Invalid last-event-id: must be a valid Redis stream ID"}


def test_the_async_client_streams_and_waits_too(site, key):
    async def go():
        client = get_client(url=site.api_url, api_key=key)
        try:
            thread_id = new_thread()
            seen = [
                part.event
                async for part in client.runs.stream(
                    thread_id,
                    "drafting",
                    input=TOPIC,
                    stream_mode="updates",
                    if_not_exists="create",
                )
            ]
            stateless = [
                part
                async for part in client.runs.stream(
                    None, "researcher", input=TOPIC, stream_mode="custom", stream_subgraphs=True
                )
            ]
            return seen, stateless
        finally:
            await client.http.client.aclose()

    seen, stateless = asyncio.run(go())
    assert seen == ["metadata", "updates", "updates"]
    assert [p.data for p in stateless[1:]] == [{"progress": "reading about x"}]


def test_a_burst_of_events_reaches_the_client_whole(client):
    parts = list(
        client.runs.stream(
            new_thread(), "chatty", input=TOPIC, stream_mode="custom", if_not_exists="create"
        )
    )
    assert [p.data["count"] for p in parts[1:]] == list(range(500))


def test_streams_and_waits_cross_processes_on_postgres_and_redis(postgres_server, tmp_path):
    """Scale-out: daphne answers, a `runworker` process runs the graph, and
    the stream's events and the run's end reach the client through Redis."""
    require(redis_missing_reason())
    redis = start_redis()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hitl_site.settings",
        "DATABASE_URL": create_database(postgres_server.url, "agent_server_streams"),
        "REDIS_URL": redis.url,
        "HITL_GRAPHS_CONFIG": str(GRAPHS),
        "HITL_VAR_DIR": str(tmp_path),
    }
    site = Served(url="", env=env)
    processes = []
    try:
        site.manage("migrate", "--noinput")
        site.manage("seed_demo")
        port = free_port()
        for command in (
            ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "hitl_site.asgi:application"],
            ["manage.py", "runworker", "graph-runs"],
        ):
            with (tmp_path / f"{command[-1]}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, *command],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        wait_for_port(port)
        client = get_sync_client(
            url=f"http://127.0.0.1:{port}/langgraph", api_key=site.key("admin")
        )
        thread_id = new_thread()
        parts = list(
            client.runs.stream(
                thread_id,
                "researcher",
                input=TOPIC,
                stream_mode=["updates", "custom"],
                stream_subgraphs=True,
                if_not_exists="create",
            )
        )
        assert names(parts) == [
            "metadata",
            "updates",
            "custom|study",
            "updates|study",
            "updates|study",
            "updates",
        ]
        assert client.runs.list(thread_id)[0]["status"] == "success"
        burst = list(
            client.runs.stream(
                new_thread(), "chatty", input=TOPIC, stream_mode="custom", if_not_exists="create"
            )
        )
        assert [p.data["count"] for p in burst[1:]] == list(range(500))
        assert "__interrupt__" in client.runs.wait(None, "drafting", input=TOPIC)
        client.http.client.close()
    finally:
        stop_all(processes)
        redis.stop()
