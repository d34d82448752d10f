"""Real graphs compiled by LangGraph, saving through DjangoCheckpointSaver,
on SQLite and PostgreSQL."""

from __future__ import annotations

import operator
import threading
import uuid
from typing import Annotated, TypedDict

import pytest
from django.db import connections
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from graphs.checkpoint import CheckpointLoadError, DjangoCheckpointSaver
from graphs.models import Checkpoint, CheckpointBlob, CheckpointWrite, Thread


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answer: str
    context: str


def config(thread_id: str | None = None, **extra) -> dict:
    return {"configurable": {"thread_id": thread_id or str(uuid.uuid4()), **extra}}


def approval_graph(saver, **compile_kwargs):
    def plan(state: State) -> State:
        return {"log": ["plan"]}

    def ask(state: State) -> State:
        answer = interrupt({"question": "ship it?", "log": state["log"]})
        return {"log": [f"ask:{answer}"], "answer": answer}

    def act(state: State) -> State:
        return {"log": [f"act:{state['answer']}"]}

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("ask", ask)
    builder.add_node("act", act)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "ask")
    builder.add_edge("ask", "act")
    builder.add_edge("act", END)
    return builder.compile(checkpointer=saver, **compile_kwargs)


def test_interrupt_and_resume(saver, db_alias):
    graph = approval_graph(saver)
    cfg = config()
    first = graph.invoke({"log": []}, cfg)
    assert first["__interrupt__"][0].value == {"question": "ship it?", "log": ["plan"]}
    state = graph.get_state(cfg)
    assert state.next == ("ask",)
    assert state.tasks[0].interrupts[0].value["question"] == "ship it?"

    result = graph.invoke(Command(resume="yes"), cfg)
    assert result["log"] == ["plan", "ask:yes", "act:yes"]
    assert graph.get_state(cfg).next == ()
    assert (
        Thread.objects.using(db_alias).filter(thread_id=cfg["configurable"]["thread_id"]).exists()
    )


def test_writes_come_from_langgraph_worker_threads(db_alias):
    seen: set[int] = set()

    class RecordingSaver(DjangoCheckpointSaver):
        def put(self, *args, **kwargs):
            seen.add(threading.get_ident())
            return super().put(*args, **kwargs)

    graph = approval_graph(RecordingSaver(using=db_alias))
    cfg = config()
    graph.invoke({"log": []}, cfg)
    graph.invoke(Command(resume="ok"), cfg)
    # Sync invoke saves from its background executor, not the calling thread.
    assert seen and threading.get_ident() not in seen
    assert graph.get_state(cfg).values["log"][-1] == "act:ok"


async def test_async_interrupt_and_resume(saver):
    graph = approval_graph(saver)
    cfg = config()
    await graph.ainvoke({"log": []}, cfg)
    assert (await graph.aget_state(cfg)).next == ("ask",)
    result = await graph.ainvoke(Command(resume="async"), cfg)
    assert result["log"] == ["plan", "ask:async", "act:async"]


def test_static_breakpoints_before_and_after(saver):
    def step(name):
        return lambda state: {"log": [name]}

    builder = StateGraph(State)
    for name in ("a", "b", "c"):
        builder.add_node(name, step(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    graph = builder.compile(checkpointer=saver, interrupt_before=["b"], interrupt_after=["c"])
    cfg = config()
    graph.invoke({"log": []}, cfg)
    assert graph.get_state(cfg).next == ("b",)
    assert graph.get_state(cfg).values["log"] == ["a"]
    graph.invoke(None, cfg)
    state = graph.get_state(cfg)
    assert state.values["log"] == ["a", "b", "c"]
    assert state.next == ()  # stopped after c, which was the last node
    history = list(graph.get_state_history(cfg))
    assert history[0].metadata["step"] > history[-1].metadata["step"]


def test_parallel_interrupts_resumed_together_by_id(saver):
    class Fan(TypedDict, total=False):
        answers: Annotated[list[str], operator.add]

    def ask_a(state: Fan) -> Fan:
        return {"answers": [f"a={interrupt('question a')}"]}

    def ask_b(state: Fan) -> Fan:
        return {"answers": [f"b={interrupt('question b')}"]}

    builder = StateGraph(Fan)
    builder.add_node("ask_a", ask_a)
    builder.add_node("ask_b", ask_b)
    builder.add_edge(START, "ask_a")
    builder.add_edge(START, "ask_b")
    builder.add_edge("ask_a", END)
    builder.add_edge("ask_b", END)
    graph = builder.compile(checkpointer=saver)
    cfg = config()
    result = graph.invoke({"answers": []}, cfg)
    interrupts = {i.value: i.id for i in result["__interrupt__"]}
    assert set(interrupts) == {"question a", "question b"}
    # Pending writes of both interrupts survive the round trip through the database.
    stored = saver.get_tuple(cfg)
    assert sum(1 for _, channel, _ in stored.pending_writes if channel == "__interrupt__") == 2

    final = graph.invoke(
        Command(resume={interrupts["question a"]: "yes", interrupts["question b"]: "no"}), cfg
    )
    assert sorted(final["answers"]) == ["a=yes", "b=no"]


def test_update_state_as_node_and_history(saver):
    graph = approval_graph(saver)
    cfg = config()
    graph.invoke({"log": []}, cfg)
    new_cfg = graph.update_state(cfg, {"answer": "edited", "log": ["edit"]}, as_node="ask")
    state = graph.get_state(cfg)
    assert state.config["configurable"]["checkpoint_id"] == new_cfg["configurable"]["checkpoint_id"]
    assert state.metadata["source"] == "update"
    assert state.next == ("act",)
    result = graph.invoke(None, cfg)
    assert result["log"] == ["plan", "edit", "act:edited"]
    sources = [s.metadata["source"] for s in graph.get_state_history(cfg)]
    assert sources[-1] == "input" and "update" in sources


def test_replay_from_past_checkpoint_keeps_old_branch(saver, db_alias):
    graph = approval_graph(saver)
    cfg = config()
    graph.invoke({"log": []}, cfg)
    graph.invoke(Command(resume="first"), cfg)
    history = list(graph.get_state_history(cfg))
    at_ask = next(s for s in history if s.next == ("ask",))
    before = Checkpoint.objects.using(db_alias).filter(thread_id=cfg["configurable"]["thread_id"])
    old_ids = set(before.values_list("checkpoint_id", flat=True))

    # Replaying from the checkpoint before "ask" re-runs "ask", which interrupts again.
    replay = graph.invoke(None, at_ask.config)
    assert replay["__interrupt__"][0].value["question"] == "ship it?"
    graph.invoke(Command(resume="second"), cfg)
    assert graph.get_state(cfg).values["log"] == ["plan", "ask:second", "act:second"]

    after = Checkpoint.objects.using(db_alias).filter(thread_id=cfg["configurable"]["thread_id"])
    assert old_ids < set(after.values_list("checkpoint_id", flat=True))
    # The first branch is still readable at its own checkpoint.
    old_final = history[0]
    assert graph.get_state(old_final.config).values["log"] == ["plan", "ask:first", "act:first"]
    new_branch = [
        row for row in after if row.checkpoint_id not in old_ids and row.checkpoint_ns == ""
    ]
    assert at_ask.config["configurable"]["checkpoint_id"] in {
        row.parent_checkpoint_id for row in new_branch
    }


def test_fork_from_past_checkpoint(saver):
    graph = approval_graph(saver)
    cfg = config()
    graph.invoke({"log": []}, cfg)
    graph.invoke(Command(resume="original"), cfg)
    at_ask = next(s for s in graph.get_state_history(cfg) if s.next == ("ask",))
    fork_cfg = graph.update_state(
        at_ask.config, {"answer": "forked", "log": ["fork"]}, as_node="ask"
    )
    fork = saver.get_tuple(fork_cfg)
    assert (
        fork.parent_config["configurable"]["checkpoint_id"]
        == (at_ask.config["configurable"]["checkpoint_id"])
    )
    assert fork.metadata["source"] == "update"
    result = graph.invoke(None, fork_cfg)
    assert result["log"] == ["plan", "fork", "act:forked"]


def test_subgraph_that_interrupts(saver):
    class Inner(TypedDict, total=False):
        log: Annotated[list[str], operator.add]

    def inner_ask(state: Inner) -> Inner:
        return {"log": [f"inner:{interrupt('inner question')}"]}

    inner = StateGraph(Inner)
    inner.add_node("inner_ask", inner_ask)
    inner.add_edge(START, "inner_ask")
    inner.add_edge("inner_ask", END)

    outer = StateGraph(State)
    outer.add_node("child", inner.compile())
    outer.add_node("done", lambda state: {"log": ["done"]})
    outer.add_edge(START, "child")
    outer.add_edge("child", "done")
    outer.add_edge("done", END)
    graph = outer.compile(checkpointer=saver)

    cfg = config()
    result = graph.invoke({"log": []}, cfg)
    assert result["__interrupt__"][0].value == "inner question"
    state = graph.get_state(cfg, subgraphs=True)
    child_state = state.tasks[0].state
    assert child_state.next == ("inner_ask",)
    assert child_state.config["configurable"]["checkpoint_ns"].startswith("child:")
    namespaces = {tup.config["configurable"]["checkpoint_ns"] for tup in saver.list(cfg)}
    assert "" in namespaces and any(ns.startswith("child:") for ns in namespaces)

    result = graph.invoke(Command(resume="sub-ok"), cfg)
    assert result["log"] == ["inner:sub-ok", "done"]


def test_send_fan_out_pending_writes(saver):
    class Map(TypedDict, total=False):
        items: list[int]
        out: Annotated[list[int], operator.add]

    builder = StateGraph(Map)
    builder.add_node("double", lambda item: {"out": [item["n"] * 2]})
    builder.add_conditional_edges(
        START, lambda state: [Send("double", {"n": n}) for n in state["items"]]
    )
    builder.add_edge("double", END)
    graph = builder.compile(checkpointer=saver)
    result = graph.invoke({"items": [1, 2, 3]}, config())
    assert sorted(result["out"]) == [2, 4, 6]


def test_unchanged_channel_is_stored_once(saver, db_alias):
    graph = approval_graph(saver)
    cfg = config()
    context = "x" * 20_000
    graph.invoke({"log": [], "answer": "", "context": context}, cfg)
    graph.invoke(Command(resume="y"), cfg)
    thread_id = cfg["configurable"]["thread_id"]
    blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id)
    checkpoints = Checkpoint.objects.using(db_alias).filter(thread_id=thread_id)
    assert checkpoints.count() >= 5
    # The large context is written once, by the input step, and never again.
    assert blobs.filter(channel="context").count() == 1
    if connections[db_alias].vendor == "sqlite":
        # A short log is kept in the checkpoint rows (see PACKED_MAX), and so
        # is the run's input, however large: no later checkpoint shares it.
        assert not blobs.filter(channel="log").exists()
        assert not blobs.filter(channel="__start__").exists()
    else:
        # The log is written only at the versions where it changed.
        assert 0 < blobs.filter(channel="log").count() < checkpoints.count()
    # Small primitives stay inline in the checkpoint row.
    assert not blobs.filter(channel="answer").exists()
    assert graph.get_state(cfg).values["context"] == context
    first = list(saver.list(cfg))[-1]
    assert first.metadata["source"] == "input"
    assert first.checkpoint["channel_values"]["__start__"]["context"] == context


def test_delete_thread_removes_every_row(saver, db_alias):
    graph = approval_graph(saver)
    cfg = config()
    graph.invoke({"log": []}, cfg)
    thread_id = cfg["configurable"]["thread_id"]
    assert CheckpointWrite.objects.using(db_alias).filter(thread_id=thread_id).exists()
    saver.delete_thread(thread_id)
    for model in (Thread, Checkpoint, CheckpointBlob, CheckpointWrite):
        assert not model.objects.using(db_alias).filter(thread_id=thread_id).exists()
    assert saver.get_tuple(cfg) is None


def test_corrupt_and_pickled_values_name_thread_and_checkpoint(saver, db_alias):
    graph = approval_graph(saver)
    cfg = config("corrupt-thread")
    # A log too long to be kept in the checkpoint rows, kept unchanged by a
    # later step: its version is a blob.
    graph.invoke({"log": ["x" * 5000]}, cfg)
    graph.update_state(cfg, {"answer": "later"})
    latest = saver.get_tuple(cfg)
    checkpoint_id = latest.config["configurable"]["checkpoint_id"]
    table = CheckpointBlob._meta.db_table
    with connections[db_alias].cursor() as cur:
        cur.execute(f"UPDATE {table} SET type = 'pickle' WHERE thread_id = %s", ["corrupt-thread"])
    with pytest.raises(CheckpointLoadError, match="refusing to unpickle") as excinfo:
        saver.get_tuple(cfg)
    assert "corrupt-thread" in str(excinfo.value) and checkpoint_id in str(excinfo.value)

    with connections[db_alias].cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET type = 'msgpack', blob = %s WHERE thread_id = %s",
            [b"\xc1\xc1 not msgpack", "corrupt-thread"],
        )
    with pytest.raises(CheckpointLoadError, match="cannot decode") as excinfo:
        saver.get_tuple(cfg)
    assert "corrupt-thread" in str(excinfo.value)


def test_list_filters_on_metadata_and_paginates(saver):
    graph = approval_graph(saver)
    cfg = config()
    graph.invoke({"log": []}, cfg)
    graph.invoke(Command(resume="z"), cfg)
    everything = list(saver.list(cfg))
    inputs = list(saver.list(cfg, filter={"source": "input"}))
    assert len(inputs) == 1 and inputs[0].metadata["step"] == -1
    page = list(saver.list(cfg, before=everything[1].config, limit=2))
    assert [t.checkpoint["id"] for t in page] == [t.checkpoint["id"] for t in everything[2:4]]
