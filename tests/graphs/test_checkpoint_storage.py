"""Storage behaviour of DjangoCheckpointSaver beyond LangGraph's conformance suite."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any, TypedDict

import pytest
from django.db import transaction
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Checkpoint, CheckpointBlob


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def config(thread_id: str | None = None) -> dict:
    return {"configurable": {"thread_id": thread_id or str(uuid.uuid4()), "checkpoint_ns": ""}}


class TaggingSerializer(JsonPlusSerializer):
    """Marks what it writes, so the test can see it was used both ways."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        type_, data = super().dumps_typed(obj)
        return f"tagged-{type_}", data

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        assert type_.startswith("tagged-"), type_
        return super().loads_typed((type_.removeprefix("tagged-"), payload))


def test_custom_serde_is_used_for_every_value(db_alias):
    saver = DjangoCheckpointSaver(serde=TaggingSerializer(), using=db_alias)
    builder = StateGraph(Log)
    builder.add_node("a", lambda state: {"log": ["a"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    graph = builder.compile(checkpointer=saver)
    cfg = config()
    graph.invoke({"log": ["start"]}, cfg)
    assert graph.get_state(cfg).values == {"log": ["start", "a"]}
    thread_id = cfg["configurable"]["thread_id"]
    types = set(
        Checkpoint.objects.using(db_alias)
        .filter(thread_id=thread_id)
        .values_list("type", flat=True)
    )
    types |= set(
        CheckpointBlob.objects.using(db_alias)
        .filter(thread_id=thread_id)
        .values_list("type", flat=True)
    )
    assert types and all(t.startswith("tagged-") for t in types)


def test_callers_transaction_covers_the_write(saver, db_alias):
    cfg = config()
    checkpoint = empty_checkpoint()
    with pytest.raises(RuntimeError), transaction.atomic(using=db_alias):
        saver.put(cfg, checkpoint, {"source": "update", "step": 0}, {})
        assert saver.get_tuple(cfg) is not None  # visible inside the transaction
        raise RuntimeError("roll back")
    assert saver.get_tuple(cfg) is None
    assert (
        not Checkpoint.objects.using(db_alias)
        .filter(thread_id=cfg["configurable"]["thread_id"])
        .exists()
    )


def test_list_without_config_spans_threads(saver):
    first, second = config(), config()
    for cfg, step in ((first, -1), (second, -1), (second, 0)):
        checkpoint = empty_checkpoint()
        saved = saver.put(
            cfg, checkpoint, {"source": "input" if step < 0 else "loop", "step": step}, {}
        )
        cfg["configurable"]["checkpoint_id"] = saved["configurable"]["checkpoint_id"]
    inputs = list(saver.list(None, filter={"source": "input"}))
    threads = {t.config["configurable"]["thread_id"] for t in inputs}
    assert {first["configurable"]["thread_id"], second["configurable"]["thread_id"]} <= threads
    assert all(t.metadata["source"] == "input" for t in inputs)
    ids = [t.checkpoint["id"] for t in saver.list(None)]
    assert ids == sorted(ids, reverse=True)


def test_prune_keep_latest_on_a_real_thread(saver, db_alias):
    class Inner(TypedDict, total=False):
        log: Annotated[list[str], operator.add]

    inner = StateGraph(Inner)
    inner.add_node("ask", lambda state: {"log": [f"inner:{interrupt('q')}"]})
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)
    outer = StateGraph(Log)
    outer.add_node("child", inner.compile())
    outer.add_node("after", lambda state: {"log": ["after"]})
    outer.add_edge(START, "child")
    outer.add_edge("child", "after")
    outer.add_edge("after", END)
    graph = outer.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": str(uuid.uuid4())}}
    graph.invoke({"log": ["start"]}, cfg)
    graph.invoke(Command(resume="yes"), cfg)
    graph.invoke({"log": ["again"]}, cfg)
    graph.invoke(Command(resume="two"), cfg)
    thread_id = cfg["configurable"]["thread_id"]
    rows = Checkpoint.objects.using(db_alias).filter(thread_id=thread_id)
    assert len({r.checkpoint_ns for r in rows}) == 3  # the root and two subgraph calls
    before = graph.get_state(cfg).values

    saver.prune([thread_id], strategy="keep_latest")

    kept = list(rows.all())
    assert [r.checkpoint_ns for r in kept] == [""]
    assert kept[0].parent_checkpoint_id is None
    assert graph.get_state(cfg).values == before
    assert before["log"][-2:] == ["inner:two", "after"]
    # Only the values the kept checkpoint points at remain.
    versions = saver.get_tuple(cfg).checkpoint["channel_versions"]
    blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id)
    assert blobs.exists()
    assert {(b.channel, b.version) for b in blobs} <= {(c, str(v)) for c, v in versions.items()}


def test_prune_rejects_bad_arguments(saver):
    with pytest.raises(TypeError, match="not a str"):
        saver.prune("thread-1")
    with pytest.raises(ValueError, match="Unknown prune strategy"):
        saver.prune(["thread-1"], strategy="keep_some")
