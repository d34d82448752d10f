"""/langgraph/ runs through langgraph-sdk (sync and async) and RemoteGraph,
over real HTTP against the served dashboard: the shapes LangGraph's dev
server answers with, and runs that are the dashboard's own (its queue, its
worker, its pages and audit) behind them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)

from tests.agent_server.conftest import serve

GRAPHS = Path(__file__).parent / "graphs" / "langgraph.json"
TOPIC = {"topic": "x"}
FEEDBACK = {"approved": True, "tone": "formal"}
DRAFTING = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "drafting"))
# The keys of a run and of its kwargs, as LangGraph's dev server answers.
RUN_KEYS = {
    "run_id",
    "thread_id",
    "assistant_id",
    "metadata",
    "status",
    "kwargs",
    "multitask_strategy",
    "created_at",
    "updated_at",
    "langsmith_session_name",
}
KWARGS_KEYS = {
    "input",
    "command",
    "config",
    "context",
    "stream_mode",
    "interrupt_before",
    "interrupt_after",
    "webhook",
    "feedback_keys",
    "temporary",
    "subgraphs",
    "resumable",
    "checkpoint_during",
    "durability",
}
BUSY = (
    "Thread is already running a task. Wait for it to finish or choose a different "
    "multitask strategy."
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    yield from serve(tmp_path_factory.mktemp("runs"), graphs=GRAPHS)


@pytest.fixture(scope="module")
def key(site) -> str:
    return site.key("admin")


@pytest.fixture
def client(site, key):
    client = get_sync_client(url=site.api_url, api_key=key)
    yield client
    client.http.client.close()


def new_thread() -> str:
    return str(uuid.uuid4())


def until(check, tries: int = 400):
    """Ask again until `check` gives something true (no clock involved)."""
    for _ in range(tries):
        if result := check():
            return result
    raise AssertionError("never happened")


def running(client, thread_id: str, run_id: str) -> bool:
    return client.runs.get(thread_id, run_id)["status"] == "running"


def test_a_run_is_created_joined_and_read_as_langgraph_serves_it(site, client):
    thread_id = new_thread()
    run = client.runs.create(
        thread_id,
        "drafting",
        input=TOPIC,
        metadata={"source": "test"},
        if_not_exists="create",
    )
    assert set(run) == RUN_KEYS
    assert set(run["kwargs"]) == KWARGS_KEYS
    assert run["status"] in ("pending", "running")
    assert run["assistant_id"] == DRAFTING
    assert run["multitask_strategy"] == "enqueue"
    assert run["kwargs"]["input"] == TOPIC
    assert run["kwargs"]["stream_mode"] == ["values"]

    output = client.runs.join(thread_id, run["run_id"])
    assert output["draft"].startswith("Announcing: x.")
    (asked,) = output["__interrupt__"]
    assert set(asked) == {"value", "id", "response_schema"}
    assert asked["value"]["question"].startswith("How should this draft change")

    done = client.runs.get(thread_id, run["run_id"])
    # A run that stops at an interrupt succeeded, as LangGraph's server says.
    assert done["status"] == "success"
    assert done["metadata"] == {
        "created_by": "system",
        "graph_id": "drafting",
        "assistant_id": DRAFTING,
        "source": "test",
    }
    # The dashboard's own run: queued and run by its worker, asked by the key's
    # user, its interrupt a review task, and the thread marked as LangGraph marks it.
    row = site.query(
        "from graphs.models import Run, Thread\n"
        "from reviews.models import ReviewTask\n"
        f"run = Run.objects.get(run_id={run['run_id']!r})\n"
        f"task = ReviewTask.objects.get(thread_id={thread_id!r})\n"
        "result = [run.kind, run.status, run.requested_by.username, task.status, task.kind,"
        f" Thread.objects.get(pk={thread_id!r}).metadata]"
    )
    assert row == [
        "start",
        "interrupted",
        "admin",
        "pending",
        "feedback",
        {"graph_id": "drafting", "assistant_id": DRAFTING, "source": "test"},
    ]


def test_wait_resumes_and_continues_with_the_async_client(site, key):
    thread_id = new_thread()

    async def go():
        client = get_client(url=site.api_url, api_key=key)
        try:
            first = await client.runs.wait(
                thread_id, "drafting", input=TOPIC, if_not_exists="create"
            )
            answered = await client.runs.wait(thread_id, "drafting", command={"resume": FEEDBACK})
            # No input at a static breakpoint: the reviewers' "continue".
            published = await client.runs.wait(thread_id, "drafting", input=None)
            runs = await client.runs.list(thread_id)
            return first, answered, published, runs
        finally:
            await client.http.client.aclose()

    first, answered, published, runs = asyncio.run(go())
    assert "__interrupt__" in first
    # Stopped before "publish" (a static breakpoint): no interrupt to list.
    assert answered["feedback"] == FEEDBACK
    assert "__interrupt__" not in answered
    assert published["published"] == answered["draft"]
    assert [r["status"] for r in runs] == ["success"] * 3
    assert [r["kwargs"]["command"] for r in runs] == [None, {"resume": FEEDBACK}, None]
    # Both were the key user's decisions on the thread's review tasks.
    decided = site.query(
        "from reviews.models import ReviewTask\n"
        f"result = list(ReviewTask.objects.filter(thread_id={thread_id!r}).order_by('pk')"
        ".values_list('kind', 'status', 'decided_by__username', 'decision'))"
    )
    assert decided == [
        ["feedback", "decided", "admin", {"type": "answer", "value": FEEDBACK}],
        ["breakpoint", "decided", "admin", {"type": "continue"}],
    ]


def test_stateless_runs_leave_no_thread_unless_kept(site, key):
    """As LangGraph's server: a stateless run that ends takes its thread with
    it, unless on_completion is "keep"."""
    http = httpx.Client(base_url=site.api_url, headers={"x-api-key": key}, timeout=60)
    with http:
        gone = http.post("/runs/wait", json={"assistant_id": "researcher", "input": TOPIC})
        kept = http.post(
            "/runs/wait",
            json={"assistant_id": "researcher", "input": TOPIC, "on_completion": "keep"},
        )
    assert gone.status_code == 200
    assert gone.json()["steps"] == ["plan", "plan", "research", "summarise"]
    gone_thread = gone.headers["content-location"].split("/")[2]
    kept_thread = kept.headers["content-location"].split("/")[2]
    left = site.query(
        "from graphs.models import Checkpoint, Thread\n"
        f"result = [[Thread.objects.filter(pk=t).exists(), Checkpoint.objects.filter(thread_id=t).exists()]"
        f" for t in ({gone_thread!r}, {kept_thread!r})]"
    )
    assert left == [[False, False], [True, True]]


@pytest.mark.parametrize("on_completion", ["delete", "keep"])
def test_a_stateless_run_at_an_interrupt_leaves_a_review_task_and_a_thread_to_resume(
    site, client, on_completion
):
    """Where LangGraph's server deletes a stateless run's thread at an
    interrupt (on_completion "delete") and the interrupt with it, here the
    interrupt becomes a review task like any other and the thread stays, so a
    reviewer can decide it and the client can resume it (the thread is in
    Content-Location, as LangGraph's server gives it)."""
    made = []
    out = client.runs.wait(
        None, "drafting", input=TOPIC, on_completion=on_completion, on_run_created=made.append
    )
    assert "__interrupt__" in out
    thread_id = made[0]["thread_id"]
    tasks = site.query(
        "from reviews.models import ReviewTask\n"
        f"result = list(ReviewTask.objects.filter(thread_id={thread_id!r})"
        ".values_list('status', flat=True))"
    )
    assert tasks == ["pending"]
    assert client.threads.get(thread_id)["status"] == "interrupted"
    done = client.runs.wait(thread_id, "drafting", command={"resume": FEEDBACK})
    assert done["feedback"] == FEEDBACK
    decided = site.query(
        "from reviews.models import ReviewTask\n"
        f"result = list(ReviewTask.objects.filter(thread_id={thread_id!r}).order_by('pk')"
        ".values_list('status', flat=True))"
    )
    assert decided[0] == "decided"


def test_multitask_strategies(site, client, tmp_path):
    held, free = tmp_path / "held", tmp_path / "free"
    free.touch()
    thread_id = new_thread()
    first = client.runs.create(
        thread_id, "gated", input={"gate": str(held)}, if_not_exists="create"
    )
    try:
        until(lambda: running(client, thread_id, first["run_id"]))
        with pytest.raises(ConflictError) as refused:
            client.runs.create(
                thread_id, "gated", input={"gate": str(free)}, multitask_strategy="reject"
            )
        assert refused.value.response.json() == {"detail": BUSY}
        queued = client.runs.create(thread_id, "gated", input={"gate": str(free)})
        assert queued["status"] == "pending"
        assert client.runs.get(thread_id, first["run_id"])["status"] == "running"
        took_over = client.runs.create(
            thread_id, "gated", input={"gate": str(free)}, multitask_strategy="interrupt"
        )
        statuses = {r["run_id"]: r["status"] for r in client.runs.list(thread_id)}
        assert statuses[first["run_id"]] == "interrupted"
        assert statuses[queued["run_id"]] == "interrupted"
    finally:
        held.touch()
    # The stopped run was inside its node: it stopped after it, then the new run went through.
    assert client.runs.join(thread_id, took_over["run_id"]) == {
        "gate": str(free),
        "steps": ["through", "through"],
    }
    assert client.runs.get(thread_id, took_over["run_id"])["status"] == "success"
    cancels = site.query(
        "from reviews.models import AuditEvent\n"
        f"result = AuditEvent.objects.filter(thread_id={thread_id!r}, action='run.cancelled')"
        ".count()"
    )
    assert cancels == 2


def test_rollback_takes_the_stopped_run_away(site, client, tmp_path):
    held, free = tmp_path / "held", tmp_path / "free"
    free.touch()
    thread_id = new_thread()
    first = client.runs.create(
        thread_id, "gated", input={"gate": str(held)}, if_not_exists="create"
    )
    try:
        until(lambda: running(client, thread_id, first["run_id"]))
        second = client.runs.create(
            thread_id, "gated", input={"gate": str(free)}, multitask_strategy="rollback"
        )
    finally:
        held.touch()
    # Nothing of the rolled-back run is left: not its step, nor the run.
    assert client.runs.join(thread_id, second["run_id"]) == {
        "gate": str(free),
        "steps": ["through"],
    }
    with pytest.raises(NotFoundError):
        client.runs.get(thread_id, first["run_id"])
    assert [r["run_id"] for r in client.runs.list(thread_id)] == [second["run_id"]]


def test_cancel_list_and_delete(site, client, tmp_path):
    gate = tmp_path / "gate"
    thread_id = new_thread()
    run = client.runs.create(thread_id, "gated", input={"gate": str(gate)}, if_not_exists="create")
    try:
        until(lambda: running(client, thread_id, run["run_id"]))
        client.runs.cancel(thread_id, run["run_id"])
        assert client.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    finally:
        gate.touch()
    with pytest.raises(NotFoundError) as stopped:
        client.runs.cancel(thread_id, run["run_id"])
    assert stopped.value.response.json() == {"detail": "No runs found to cancel."}
    again = client.runs.create(thread_id, "gated", input={"gate": str(gate)})
    client.runs.join(thread_id, again["run_id"])
    assert [r["run_id"] for r in client.runs.list(thread_id)] == [again["run_id"], run["run_id"]]
    assert [r["run_id"] for r in client.runs.list(thread_id, status="interrupted")] == [
        run["run_id"]
    ]
    assert [r["run_id"] for r in client.runs.list(thread_id, limit=1, offset=1)] == [run["run_id"]]
    client.runs.delete(thread_id, run["run_id"])
    with pytest.raises(NotFoundError):
        client.runs.get(thread_id, run["run_id"])
    assert site.query(
        "from reviews.models import AuditEvent\n"
        f"result = list(AuditEvent.objects.filter(thread_id={thread_id!r})"
        ".exclude(action='run.started').order_by('pk').values_list('action', 'actor_name'))"
    ) == [["run.cancelled", "admin"], ["run.deleted", "admin"]]


def test_refusals_read_as_langgraph_words_them(client):
    thread_id = new_thread()
    with pytest.raises(NotFoundError) as missing:
        client.runs.create(thread_id, "drafting", input=TOPIC)
    assert missing.value.response.json() == {"detail": "Thread or assistant not found."}
    with pytest.raises(UnprocessableEntityError) as unknown:
        client.runs.create(None, "nope", input=TOPIC)
    assert unknown.value.response.json()["detail"].startswith("Invalid assistant: 'nope'.")
    with pytest.raises(NotFoundError):
        client.runs.create(None, str(uuid.uuid4()), input=TOPIC)
    with pytest.raises(BadRequestError) as stateless:
        client.runs.create(None, "drafting", command={"resume": FEEDBACK})
    assert stateless.value.response.json() == {
        "detail": "You must provide a thread_id when resuming."
    }
    # runs.wait raises httpx's own error for a refusal, against either server.
    with pytest.raises(httpx.HTTPStatusError) as waited:
        client.runs.wait(None, "nope", input=TOPIC)
    assert waited.value.response.status_code == 422
    client.runs.wait(thread_id, "drafting", input=TOPIC, if_not_exists="create")
    with pytest.raises(UnprocessableEntityError) as bad_id:
        client.runs.get(thread_id, "not-a-uuid")
    assert bad_id.value.response.json() == {"detail": "Invalid run ID: must be a UUID"}
    with pytest.raises(NotFoundError):
        client.runs.get(thread_id, str(uuid.uuid4()))


def test_a_command_updates_and_goes_to_a_node(site, client):
    thread_id = new_thread()
    client.runs.wait(thread_id, "drafting", input=TOPIC, if_not_exists="create")
    output = client.runs.wait(
        thread_id, "drafting", command={"update": {"draft": "edited"}, "goto": "ask_feedback"}
    )
    # As LangGraph's server: the update is written, and the node asks again.
    assert output["draft"] == "edited"
    assert output["__interrupt__"][0]["value"]["draft"] == "edited"
    # LangGraph writes the command at the checkpoint the thread waits at, so
    # the review asked there stays the one open question.
    seen = site.query(
        "from graphs.models import Run\n"
        "from reviews.models import ReviewTask\n"
        f"run = Run.objects.filter(thread_id={thread_id!r}).latest('pk')\n"
        f"result = [run.kind, run.payload, list(ReviewTask.objects.filter(thread_id={thread_id!r})"
        ".values_list('status', flat=True))]"
    )
    assert seen == ["command", {"update": {"draft": "edited"}, "goto": "ask_feedback"}, ["pending"]]


def test_remote_graph_runs_here_as_on_langgraphs_server(site, key):
    remote = RemoteGraph("drafting", url=site.api_url, api_key=key)
    config = {"configurable": {"thread_id": new_thread()}}
    asked = remote.invoke(TOPIC, config)
    assert asked["__interrupt__"][0]["value"]["draft"] == asked["draft"]
    answered = remote.invoke(Command(resume=FEEDBACK), config)
    assert answered["feedback"] == FEEDBACK
    updates = list(
        remote.stream(TOPIC, {"configurable": {"thread_id": new_thread()}}, stream_mode="updates")
    )
    assert list(updates[0]) == ["write_draft"]
    assert list(updates[-1]) == ["__interrupt__"]


def test_batches_and_bulk_cancels(site, client, tmp_path):
    made = client.runs.create_batch(
        [
            {"assistant_id": "drafting", "input": TOPIC},
            {"assistant_id": "researcher", "input": TOPIC},
        ]
    )
    assert [set(run) for run in made] == [RUN_KEYS, RUN_KEYS]
    assert len({run["thread_id"] for run in made}) == 2
    assert [run["kwargs"]["temporary"] for run in made] == [True, True]

    gate = tmp_path / "gate"
    thread_id = new_thread()
    first = client.runs.create(
        thread_id, "gated", input={"gate": str(gate)}, if_not_exists="create"
    )
    try:
        until(lambda: running(client, thread_id, first["run_id"]))
        second = client.runs.create(thread_id, "gated", input={"gate": str(gate)})
        client.runs.cancel_many(thread_id=thread_id, run_ids=[first["run_id"], second["run_id"]])
        assert [r["status"] for r in client.runs.list(thread_id)] == ["interrupted", "interrupted"]
    finally:
        gate.touch()
    with pytest.raises(UnprocessableEntityError):
        client.runs.cancel_many(status="finished")


def values(output: dict) -> dict:
    return {k: v for k, v in output.items() if k != "__interrupt__"}


def test_a_run_from_a_past_checkpoint_replays_or_branches_as_langgraph_does(site, client):
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.examples.drafting import builder

    # Directly with LangGraph: to the breakpoint before publish, then again
    # from the point that asked for feedback, and new input at the first point.
    graph = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["publish"])
    direct = {"configurable": {"thread_id": "direct"}}
    graph.invoke(TOPIC, direct)
    graph.invoke(Command(resume=FEEDBACK), direct)
    history = list(graph.get_state_history(direct))
    asked = next(s for s in history if s.next == ("ask_feedback",)).config
    first = history[-1].config
    replayed = graph.invoke(None, asked)
    branched = graph.invoke({"topic": "y"}, first)

    thread_id = new_thread()
    client.runs.wait(thread_id, "drafting", input=TOPIC, if_not_exists="create")
    client.runs.wait(thread_id, "drafting", command={"resume": FEEDBACK})
    points = client.threads.get_history(thread_id, limit=20)
    at_ask = next(p for p in points if p["next"] == ["ask_feedback"])["checkpoint_id"]
    at_first = points[-1]["checkpoint"]
    # From the first point, where the thread's latest holds feedback and a revision.
    branch = client.runs.wait(thread_id, "drafting", input={"topic": "y"}, checkpoint=at_first)
    assert values(branch) == values(branched) and "feedback" not in branch
    again = client.runs.wait(thread_id, "drafting", input=None, checkpoint_id=at_ask)
    assert values(again) == values(replayed)
    assert [i["value"] for i in again["__interrupt__"]] == [
        i.value for i in replayed["__interrupt__"]
    ]
    assert (
        client.threads.get_history(thread_id, limit=1)[0]["parent_checkpoint"]["checkpoint_id"]
        == at_ask
    )  # a new branch from that point: the old one stays
    assert site.query(
        "from graphs.models import Run\n"
        f"result = list(Run.objects.filter(thread_id={thread_id!r}).order_by('pk')"
        ".values_list('kind', 'checkpoint_id'))"
    ) == [
        ["start", ""],
        ["resume", at_ask],
        ["start", at_first["checkpoint_id"]],
        ["replay", at_ask],
    ]

    with pytest.raises(NotFoundError):
        client.runs.create(thread_id, "drafting", input=None, checkpoint_id="1f0-nope")
    with pytest.raises(UnprocessableEntityError, match="where the thread stands"):
        client.runs.create(
            thread_id, "drafting", command={"resume": FEEDBACK}, checkpoint_id=at_ask
        )
