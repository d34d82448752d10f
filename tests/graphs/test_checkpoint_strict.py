"""Checkpoint data never runs code: what a graph's schemas name loads as
itself, anything else as inert data, whoever wrote it into the tables."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import ormsgpack
import pytest
from django.test import override_settings
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphs.checkpoint import PACKED_KEY, DjangoCheckpointSaver
from graphs.models import Checkpoint, CheckpointBlob, CheckpointWrite
from graphs.registry import get_registry

AGENTS = Path(__file__).parent / "agents" / "langgraph.json"


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


@dataclass
class Ticket:
    id: str
    priority: Priority
    opened: datetime


class Customer(BaseModel):
    name: str
    balance: Decimal
    tags: set[str]


class TypedState(TypedDict, total=False):
    ticket: Ticket
    customer: Customer
    messages: Annotated[list[AnyMessage], add_messages]
    seen: set[str]
    note: Any


OPENED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _intake(state: TypedState) -> TypedState:
    return {
        "ticket": Ticket(id="T-1", priority=Priority.HIGH, opened=OPENED),
        "customer": Customer(name="Ada", balance=Decimal("12.50"), tags={"vip"}),
        "messages": [AIMessage("Looking into it", id="m-ai")],
        "seen": {"intake"},
    }


def _review(state: TypedState) -> TypedState:
    return {"note": interrupt({"ticket": state["ticket"].id})}


def _typed_builder() -> StateGraph:
    builder = StateGraph(TypedState)
    builder.add_node("intake", _intake)
    builder.add_node("review", _review)
    builder.add_edge(START, "intake")
    builder.add_edge("intake", "review")
    builder.add_edge("review", END)
    return builder


# Registered by a dotted target below, as a project's own graph module would be.
typed_graph = _typed_builder().compile()


@pytest.fixture
def typed_config(tmp_path):
    config = tmp_path / "langgraph.json"
    config.write_text('{"graphs": {"typed": "tests.graphs.test_checkpoint_strict:typed_graph"}}')
    with override_settings(HITL_GRAPHS_CONFIG=config):
        yield config


def cfg() -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def _stopped_typed_thread(saver) -> tuple[Any, dict]:
    graph = get_registry().get("typed").compile(saver)
    config = cfg()
    graph.invoke({"messages": [HumanMessage("My order is late", id="m-human")]}, config)
    return graph, config


def _ext(code: int, *fields: Any) -> tuple[int, list[Any]]:
    return code, list(fields)


def _payloads(marker: Path) -> dict[str, tuple[int, list[Any]]]:
    """msgpack records that, rebuilt as LangGraph's permissive mode does,
    create `marker`: one per way the serializer calls what a record names."""
    touch = ["touch", str(marker)]
    return {
        "constructor": _ext(0, "os", "system", f"touch {marker}"),
        "positional": _ext(1, "subprocess", "call", [touch]),
        "exec": _ext(1, "builtins", "exec", [f"open({str(marker)!r}, 'w').close()"]),
        "keywords": _ext(2, "subprocess", "run", {"args": touch}),
        "pydantic_v1": _ext(4, "subprocess", "run", {"args": touch}),
        "pydantic_v2": _ext(5, "subprocess", "run", {"args": touch}, "model_validate_json"),
    }


PAYLOADS = list(_payloads(Path("x")))


def _plant(config: dict, db_alias: str, record: tuple[int, list[Any]], permissive) -> None:
    """Write the record into the thread's latest checkpoint three ways: as a
    channel's value (its blob, or on SQLite the serialized value the row
    keeps), as a pending write, and inside the checkpoint row."""
    code, fields = record
    payload = ormsgpack.Ext(code, ormsgpack.packb(fields))
    thread_id = config["configurable"]["thread_id"]
    row = Checkpoint.objects.using(db_alias).filter(thread_id=thread_id).order_by("-checkpoint_id")
    row = row.first()
    packed = ormsgpack.packb(payload)
    checkpoint = permissive.loads_typed((row.type, bytes(row.checkpoint)))
    kept = checkpoint.get(PACKED_KEY) or {}
    if "seen" in kept:
        kept["seen"] = ["msgpack", packed]
    else:
        blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id, channel="seen")
        assert blobs.update(type="msgpack", blob=packed)
    CheckpointWrite.objects.using(db_alias).create(
        thread_id=thread_id,
        checkpoint_ns="",
        checkpoint_id=row.checkpoint_id,
        task_id="planted",
        idx=0,
        channel="note",
        type="msgpack",
        blob=packed,
    )
    checkpoint["channel_values"]["planted"] = payload
    row.checkpoint = ormsgpack.packb(checkpoint, option=ormsgpack.OPT_NON_STR_KEYS)
    row.save(using=db_alias, update_fields=["checkpoint"])


@pytest.mark.parametrize("kind", PAYLOADS)
def test_planted_records_load_inert(kind, saver, db_alias, typed_config, tmp_path):
    graph, config = _stopped_typed_thread(saver)
    marker = tmp_path / "ran"
    payload = _payloads(marker)[kind]
    _plant(config, db_alias, payload, JsonPlusSerializer())

    saved = saver.get_tuple(config)
    state = graph.get_state(config)
    graph.checkpointer.get_tuple(config)
    list(graph.get_state_history(config))

    assert not marker.exists()
    # The records load as their own arguments: data, not the result of a call.
    arguments = payload[1][2]
    assert saved.checkpoint["channel_values"]["seen"] == arguments
    assert saved.checkpoint["channel_values"]["planted"] == arguments
    assert ("planted", "note", arguments) in saved.pending_writes
    assert state.values["seen"] == arguments


@pytest.mark.parametrize("kind", PAYLOADS)
def test_the_planted_records_do_run_under_the_permissive_serializer(
    kind, db_alias, typed_config, tmp_path
):
    """The records above are live: LangGraph's default mode runs them."""
    permissive = DjangoCheckpointSaver(
        serde=JsonPlusSerializer(allowed_msgpack_modules=True), using=db_alias
    )
    _, config = _stopped_typed_thread(permissive)
    marker = tmp_path / "ran"
    _plant(config, db_alias, _payloads(marker)[kind], JsonPlusSerializer())
    permissive.get_tuple(config)
    assert marker.exists()


def test_a_type_no_schema_names_loads_as_data_with_a_warning(saver, caplog):
    # A fresh name each run: LangGraph warns once per type and process.
    stray = dataclasses.make_dataclass(f"Stray{uuid.uuid4().hex}", [("x", int)])
    stray.__module__ = __name__

    builder = StateGraph(TypedState)
    builder.add_node("write", lambda state: {"note": stray(x=1)})
    builder.add_edge(START, "write")
    builder.add_edge("write", END)
    graph = builder.compile(checkpointer=saver)
    config = cfg()
    graph.invoke({}, config)

    with caplog.at_level(logging.WARNING, logger="langgraph.checkpoint.serde.jsonplus"):
        assert graph.get_state(config).values["note"] == {"x": 1}
    assert f"Blocked deserialization of {__name__}.{stray.__name__}" in caplog.text


def _same(a: Any, b: Any, where: str = "") -> None:
    """Equal, and of the same Python type all the way down."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_the_types_a_graph_names_round_trip(saver, typed_config):
    graph, config = _stopped_typed_thread(saver)
    values = graph.get_state(config).values
    assert values["ticket"] == Ticket(id="T-1", priority=Priority.HIGH, opened=OPENED)
    assert type(values["ticket"].priority) is Priority
    assert values["customer"] == Customer(name="Ada", balance=Decimal("12.50"), tags={"vip"})
    assert [type(m) for m in values["messages"]] == [HumanMessage, AIMessage]
    assert values["seen"] == {"intake"}

    graph.invoke(Command(resume=Ticket(id="T-2", priority=Priority.LOW, opened=OPENED)), config)
    assert graph.get_state(config).values["note"] == Ticket("T-2", Priority.LOW, OPENED)


RUNS = [
    ("support", {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}),
    ("tool_agent", {"messages": [{"role": "user", "content": "Book a flight to Porto for 2"}]}),
    ("per_call", {"messages": [{"role": "user", "content": "Book a flight to Porto for 2"}]}),
    ("drafting", {"topic": "refunds"}),
    ("nested", {"text": "  hello "}),
    ("parallel", {}),
    ("echo", {"text": "hi"}),
]


@override_settings(HITL_GRAPHS_CONFIG=AGENTS)
@pytest.mark.parametrize(("name", "given"), RUNS, ids=[name for name, _ in RUNS])
def test_registered_graphs_load_what_they_saved(name, given, saver, db_alias):
    """Every checkpoint of a demo or test graph, subgraphs' included, reads
    back as the permissive serializer reads it: same values, same types."""
    graph = get_registry().get(name).compile(saver)
    config = cfg()
    graph.invoke(given, config)
    permissive = DjangoCheckpointSaver(
        serde=JsonPlusSerializer(allowed_msgpack_modules=True), using=db_alias
    )
    thread = {"configurable": {"thread_id": config["configurable"]["thread_id"]}}
    namespaces = set(
        Checkpoint.objects.using(db_alias)
        .filter(thread_id=thread["configurable"]["thread_id"])
        .values_list("checkpoint_ns", flat=True)
    )
    assert namespaces
    for ns in namespaces:
        scoped = {"configurable": {**thread["configurable"], "checkpoint_ns": ns}}
        strict = list(graph.checkpointer.list(scoped))
        loose = list(permissive.list(scoped))
        assert len(strict) == len(loose) > 0
        for a, b in zip(strict, loose, strict=True):
            _same(a.checkpoint["channel_values"], b.checkpoint["channel_values"], ns)
            _same(a.pending_writes, b.pending_writes, ns)
