"""Storage behaviour of DjangoCheckpointSaver beyond LangGraph's conformance suite."""

from __future__ import annotations

import operator
import os
import uuid
from typing import Annotated, Any, TypedDict

import pytest
from django.db import connections, transaction
from langgraph.checkpoint.base import RESUME, empty_checkpoint
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from graphs.checkpoint import PACKED_KEY, CheckpointLoadError, DjangoCheckpointSaver
from graphs.models import Checkpoint, CheckpointBlob, CheckpointWrite, Thread

CHECKPOINTS_TABLE = Checkpoint._meta.db_table


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
    # A log too long to be kept in the checkpoint rows: its versions are blobs.
    graph.invoke({"log": ["start " * 1000]}, cfg)
    graph.invoke(Command(resume="yes"), cfg)
    graph.invoke({"log": ["again"]}, cfg)
    graph.invoke(Command(resume="two"), cfg)
    thread_id = cfg["configurable"]["thread_id"]
    rows = Checkpoint.objects.using(db_alias).filter(thread_id=thread_id)
    assert len({r.checkpoint_ns for r in rows}) == 3  # the root and two subgraph calls
    before = graph.get_state(cfg).values
    blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id)
    assert blobs.exists()  # the log's versions that later steps kept

    saver.prune([thread_id], strategy="keep_latest")

    kept = list(rows.all())
    assert [r.checkpoint_ns for r in kept] == [""]
    assert kept[0].parent_checkpoint_id is None
    assert graph.get_state(cfg).values == before
    assert before["log"][-2:] == ["inner:two", "after"]
    # Only the values the kept checkpoint points at remain.
    versions = saver.get_tuple(cfg).checkpoint["channel_versions"]
    assert {(b.channel, b.version) for b in blobs} <= {(c, str(v)) for c, v in versions.items()}


def test_prune_rejects_bad_arguments(saver):
    with pytest.raises(TypeError, match="not a str"):
        saver.prune("thread-1")
    with pytest.raises(ValueError, match="Unknown prune strategy"):
        saver.prune(["thread-1"], strategy="keep_some")


# Too large to be kept in the checkpoint rows: a blob on every database.
BIG = ["y" * 100] * 50


def _checkpoint_with_versions(versions: dict[str, Any]) -> dict:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"a": "x", "big": BIG}
    checkpoint["channel_versions"] = versions
    checkpoint["versions_seen"] = {"node": dict(versions)}
    return checkpoint


def _save_blob(saver, db_alias: str, cfg: dict, channel: str, version: str, value: Any) -> None:
    """Store a channel value as a blob, as older rows that lack it expect."""
    type_, blob = saver.serde.dumps_typed(value)
    CheckpointBlob.objects.using(db_alias).get_or_create(
        thread_id=cfg["configurable"]["thread_id"],
        checkpoint_ns="",
        channel=channel,
        version=version,
        defaults={"type": type_, "blob": blob},
    )


def test_versions_are_stored_once_and_keep_their_type(saver, db_alias):
    cfg = config()
    text = saver.get_next_version(None, None)
    saved = saver.put(
        cfg, _checkpoint_with_versions({"a": text, "big": 7}), {}, {"a": text, "big": 7}
    )
    row = Checkpoint.objects.using(db_alias).get(
        thread_id=cfg["configurable"]["thread_id"],
        checkpoint_id=saved["configurable"]["checkpoint_id"],
    )
    # The row's JSON column has every version as text (the blobs' key);
    # only the int is kept, as an int, in the checkpoint itself.
    assert row.versions == {"a": text, "big": "7"}
    inner = saver.serde.loads_typed((row.type, bytes(row.checkpoint)))
    assert inner["channel_versions"] == {"big": 7}
    loaded = saver.get_tuple(saved).checkpoint
    assert loaded["channel_versions"] == {"a": text, "big": 7}
    assert loaded["channel_values"] == {"a": "x", "big": BIG}
    [listed] = saver.list(saved)
    assert listed.checkpoint["channel_versions"] == {"a": text, "big": 7}


def test_rows_with_versions_inside_the_checkpoint_still_load(saver, db_alias):
    # As saved before the versions moved out: all of them in the checkpoint too.
    cfg = config()
    versions = {"a": 1, "big": 2}
    checkpoint = _checkpoint_with_versions(versions)
    saved = saver.put(cfg, checkpoint, {}, versions)
    row = Checkpoint.objects.using(db_alias).get(
        thread_id=cfg["configurable"]["thread_id"],
        checkpoint_id=saved["configurable"]["checkpoint_id"],
    )
    row.type, row.checkpoint = saver.serde.dumps_typed({**checkpoint, "channel_values": {"a": "x"}})
    row.save(using=db_alias)
    _save_blob(saver, db_alias, cfg, "big", "2", BIG)
    loaded = saver.get_tuple(saved).checkpoint
    assert loaded["channel_versions"] == versions
    assert loaded["channel_values"] == {"a": "x", "big": BIG}


def test_next_version_is_short_sorts_as_text_and_keeps_a_threads_long_form(saver):
    first = saver.get_next_version(None, None)
    counter, tail = first.split(".")
    assert counter == "0000000001" and len(tail) == 13
    assert saver.get_next_version(None, None) != first  # forks don't collide
    later = first
    for _ in range(12):
        following = saver.get_next_version(later, None)
        assert following > later
        later = following
    assert later.startswith("0000000013.")
    # A thread saved with LangGraph's 32-digit form keeps it, so text order holds.
    long_form = f"{41:032}.{0.5:016}"
    following = saver.get_next_version(long_form, None)
    assert following.startswith(f"{42:032}.") and following > long_form
    assert saver.get_next_version(3, None).startswith("0000000004.")


@pytest.mark.postgres
def test_step_statements_are_prepared_unless_options_say_otherwise(pg_alias, django_db_blocker):
    from tests.conftest import _allow_queries, prepared_statements

    connection = connections[pg_alias]

    def prepared() -> list[str]:
        return prepared_statements(pg_alias)

    with django_db_blocker.unblock(), _allow_queries(pg_alias):
        # A fresh connection of this thread's own, which the saver uses
        # inside the thread's transaction.
        connection.close()
        connection.ensure_connection()
        with transaction.atomic(using=pg_alias):
            DjangoCheckpointSaver(using=pg_alias).get_tuple(config())
            assert any(CHECKPOINTS_TABLE in statement for statement in prepared())

        connection.close()
        options = connection.settings_dict.setdefault("OPTIONS", {})
        threshold = options.get("prepare_threshold")
        options["prepare_threshold"] = None
        try:
            connection.ensure_connection()
            with transaction.atomic(using=pg_alias):
                DjangoCheckpointSaver(using=pg_alias).get_tuple(config())
                assert prepared() == []
        finally:
            options["prepare_threshold"] = threshold
            connection.close()


def _blob_channels(db_alias: str, thread_id: str) -> set[str]:
    blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id)
    return {blob.channel for blob in blobs}


def _packed_channels(saver, db_alias: str, saved: dict) -> set[str]:
    row = Checkpoint.objects.using(db_alias).get(
        thread_id=saved["configurable"]["thread_id"],
        checkpoint_id=saved["configurable"]["checkpoint_id"],
    )
    return set(saver.serde.loads_typed((row.type, bytes(row.checkpoint))).get(PACKED_KEY, {}))


def _step(saver, parent: dict, values: dict, versions: dict, changed: dict) -> dict:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = versions
    return saver.put(parent, checkpoint, {}, changed)


def test_values_live_in_the_rows_on_sqlite_and_reused_large_ones_in_blobs(db_alias):
    small, large = ["note"] * 20, ["page " * 100] * 20
    cfg = config()
    thread_id = cfg["configurable"]["thread_id"]
    saver = DjangoCheckpointSaver(using=db_alias)
    versions = {"small": "1", "large": "1"}
    first = _step(saver, cfg, {"small": small, "large": large}, versions, versions)
    sqlite = connections[db_alias].vendor == "sqlite"
    # SQLite: the step that changed the values writes one row in one table,
    # the large value too.
    assert _blob_channels(db_alias, thread_id) == (set() if sqlite else {"small", "large"})
    assert _packed_channels(saver, db_alias, first) == ({"small", "large"} if sqlite else set())

    # A later step keeping the large value unchanged stores it once in the
    # blobs, and its row no longer holds it.
    values = {"small": small, "large": large, "n": ["one"]}
    second = _step(saver, first, values, {**versions, "n": "2"}, {"n": "2"})
    assert _blob_channels(db_alias, thread_id) == ({"large"} if sqlite else {*values})
    assert _packed_channels(saver, db_alias, second) == ({"small", "n"} if sqlite else set())
    # The row that first held it can go (as a discarded run's do): later
    # checkpoints still have it.
    Checkpoint.objects.using(db_alias).filter(
        thread_id=thread_id, checkpoint_id=first["configurable"]["checkpoint_id"]
    ).delete()
    for reader in (saver, DjangoCheckpointSaver(using=db_alias)):
        assert reader.get_tuple(second).checkpoint["channel_values"] == values
        [listed] = reader.list(cfg)
        assert listed.checkpoint["channel_values"] == values

    # A process that did not save the value (a fresh saver has none of it in
    # memory) stores it in the blobs too when its step keeps it.
    other = config()
    _step(saver, other, {"large": large}, {"large": "1"}, {"large": "1"})
    fresh = DjangoCheckpointSaver(using=db_alias)
    later = _step(
        fresh, other, {"large": large, "n": ["one"]}, {"large": "1", "n": "2"}, {"n": "2"}
    )
    other_id = other["configurable"]["thread_id"]
    assert "large" in _blob_channels(db_alias, other_id)
    assert "large" not in _packed_channels(saver, db_alias, later)
    assert fresh.get_tuple(later).checkpoint["channel_values"]["large"] == large

    # Prune keeps what the latest checkpoint reads, from its row or the blobs.
    saver.prune([thread_id, other_id], strategy="keep_latest")
    assert saver.get_tuple(cfg).checkpoint["channel_values"] == values
    assert saver.get_tuple(other).checkpoint["channel_values"]["large"] == large


def test_rows_whose_small_values_are_blobs_still_load(saver, db_alias):
    cfg = config()
    checkpoint = _checkpoint_with_versions({"a": "1", "big": "1"})
    checkpoint["channel_values"]["big"] = ["y"] * 50
    saved = saver.put(cfg, checkpoint, {}, {"a": "1", "big": "1"})
    row = Checkpoint.objects.using(db_alias).get(
        thread_id=cfg["configurable"]["thread_id"],
        checkpoint_id=saved["configurable"]["checkpoint_id"],
    )
    # As saved before small values were kept in rows: "big" only as a blob.
    row.type, row.checkpoint = saver.serde.dumps_typed({**checkpoint, "channel_values": {"a": "x"}})
    row.save(using=db_alias)
    _save_blob(saver, db_alias, cfg, "big", "1", ["y"] * 50)
    assert saver.get_tuple(saved).checkpoint["channel_values"] == {"a": "x", "big": ["y"] * 50}


def test_a_callers_connection_serves_the_saver_only_inside_a_transaction(transactional_db):
    """Outside a transaction the saver reads and writes through its own pooled
    connection, even where the caller has one open: on SQLite, reading through
    one connection what another wrote means reloading pages. The caller's
    connection is left as it was, also by the methods that run atomically."""
    saver = DjangoCheckpointSaver()
    caller = connections["default"]
    caller.ensure_connection()
    seen: list[str] = []
    caller.connection.set_trace_callback(seen.append)
    try:
        cfg = config()
        saved = saver.put(cfg, empty_checkpoint(), {"source": "input", "step": -1}, {})
        assert saver.get_tuple(saved) is not None
        saver.delete_thread(cfg["configurable"]["thread_id"])
        assert connections["default"] is caller
        assert not [sql for sql in seen if CHECKPOINTS_TABLE in sql]

        with transaction.atomic():
            saver.put(cfg, empty_checkpoint(), {"source": "input", "step": -1}, {})
        assert [sql for sql in seen if CHECKPOINTS_TABLE in sql]
    finally:
        caller.connection.set_trace_callback(None)


def test_a_kept_cursor_holds_no_snapshot_between_calls(transactional_db):
    """On SQLite the saver keeps one cursor per connection between calls; a
    statement left unfinished on it would pin its connection to an old
    snapshot, and the next transaction on that connection could not write."""
    saver = DjangoCheckpointSaver()
    cfg = config()
    thread_id = cfg["configurable"]["thread_id"]
    for step in range(3):
        checkpoint = empty_checkpoint()
        cfg = saver.put(cfg, checkpoint, {"source": "loop", "step": step}, {})
    latest = {"configurable": {**cfg["configurable"], "checkpoint_id": None}}
    assert saver.get_tuple(latest).metadata["step"] == 2
    # Another connection writes between the saver's calls.
    Checkpoint.objects.filter(thread_id=thread_id).update(metadata={"step": 7})
    assert saver.get_tuple(latest).metadata == {"step": 7}
    Checkpoint.objects.filter(thread_id=thread_id).update(metadata={"step": 8})
    saver.delete_thread(thread_id)
    assert not Checkpoint.objects.filter(thread_id=thread_id).exists()


def test_a_threads_first_checkpoint_makes_its_row_and_later_steps_leave_it(saver, db_alias):
    cfg = config()
    thread_id = cfg["configurable"]["thread_id"]
    first = _step(saver, cfg, {"a": "x"}, {"a": "1"}, {"a": "1"})
    threads = Thread.objects.using(db_alias).filter(thread_id=thread_id)
    assert threads.get().created_at is not None
    # Steps with a parent don't touch the thread table, not even to find the
    # row their first checkpoint made.
    threads.delete()
    second = _step(saver, first, {"a": "y"}, {"a": "2"}, {"a": "2"})
    assert not threads.exists()
    assert saver.get_tuple(second).checkpoint["channel_values"] == {"a": "y"}
    # A checkpoint without a parent (a subgraph call's first) makes it again.
    _step(saver, {"configurable": {**cfg["configurable"], "checkpoint_ns": "sub:1"}}, {}, {}, {})
    assert threads.exists()


class RolledBack(Exception):
    pass


def test_a_reused_value_written_in_a_rolled_back_transaction_is_written_again(db_alias):
    large = ["page " * 100] * 20
    cfg = config()
    saver = DjangoCheckpointSaver(using=db_alias)
    first = _step(saver, cfg, {"large": large}, {"large": "1"}, {"large": "1"})
    values, versions = {"large": large, "n": ["one"]}, {"large": "1", "n": "2"}
    # The step that first keeps the value unchanged stores it in the blobs,
    # inside a caller's transaction that then fails.
    with pytest.raises(RolledBack), transaction.atomic(using=db_alias):
        _step(saver, first, values, versions, {"n": "2"})
        raise RolledBack
    if connections[db_alias].vendor == "sqlite":
        assert _blob_channels(db_alias, cfg["configurable"]["thread_id"]) == set()
    # Taken again from the same parent, the step still has it.
    again = _step(saver, first, values, versions, {"n": "2"})
    assert saver.get_tuple(again).checkpoint["channel_values"] == values


@pytest.mark.parametrize("admin", ["the same saver", "another saver"])
def test_a_thread_made_again_under_its_id_stores_the_values_its_steps_keep(db_alias, admin):
    """As in the site: steps are saved through the worker's saver, threads
    copied and deleted through a saver of their own."""
    large = ["page " * 100] * 20
    saver = DjangoCheckpointSaver(using=db_alias)
    other = saver if admin == "the same saver" else DjangoCheckpointSaver(using=db_alias)
    source, target = config(), config()
    target_id = target["configurable"]["thread_id"]
    first = _step(saver, source, {"large": large}, {"large": "1"}, {"large": "1"})
    values, versions = {"large": large, "n": ["one"]}, {"large": "1", "n": "2"}
    at = {"configurable": {**first["configurable"], "thread_id": target_id}}
    for _ in range(2):
        # A copy whose next step keeps the value its first step changed.
        other.copy_thread(source["configurable"]["thread_id"], target_id)
        later = _step(saver, at, values, versions, {"n": "2"})
        assert saver.get_tuple(later).checkpoint["channel_values"] == values
        other.delete_thread(target_id)


def test_large_values_are_compressed_on_postgresql_and_load_back(db_alias):
    large, small = ["page " * 100] * 20, ["note"] * 20
    answer = {"text": "yes " * 1000}
    cfg = config()
    thread_id = cfg["configurable"]["thread_id"]
    saver = DjangoCheckpointSaver(using=db_alias)
    versions = {"small": "1", "large": "1"}
    first = _step(saver, cfg, {"small": small, "large": large}, versions, versions)
    second = _step(
        saver,
        first,
        {"small": small, "large": large, "n": ["one"]},
        {**versions, "n": "2"},
        {"n": "2"},
    )
    saver.put_writes(second, [("large", large), ("small", small)], "task-1")
    saver.put_writes(second, [(RESUME, answer)], "task-2")

    postgres = connections[db_alias].vendor == "postgresql"
    plain_large = len(saver.serde.dumps_typed(large)[1])
    stored = {
        row.channel: (row.type, len(bytes(row.blob)))
        for row in CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id)
    }
    writes = {
        row.channel: row
        for row in CheckpointWrite.objects.using(db_alias).filter(thread_id=thread_id)
    }
    if postgres:
        # Sent compressed, marked by their type; small values as they are.
        assert stored["large"][0] == "msgpack+zstd" and stored["large"][1] < plain_large / 4
        assert stored["small"][0] == "msgpack"
        assert writes["large"].type == "msgpack+zstd"
        assert writes["small"].type == "msgpack"
    else:
        assert all(not type_.endswith("+zstd") for type_, _ in stored.values())
        assert all(not row.type.endswith("+zstd") for row in writes.values())
    if postgres:
        # The server stores them as sent, without trying to compress them again.
        with connections[db_alias].cursor() as cur:
            cur.execute(
                "SELECT attstorage FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attname = 'blob'",
                [CheckpointBlob._meta.db_table],
            )
            assert cur.fetchone()[0] == "e"
    # LangGraph's own channels stay readable by the worker and the timeline.
    resume = writes[RESUME]
    assert saver.serde.loads_typed((resume.type, bytes(resume.blob))) == answer

    for reader in (saver, DjangoCheckpointSaver(using=db_alias)):
        loaded = reader.get_tuple(second)
        assert loaded.checkpoint["channel_values"]["large"] == large
        assert sorted(loaded.pending_writes) == [
            ("task-1", "large", large),
            ("task-1", "small", small),
            ("task-2", RESUME, answer),
        ]
        listed = {t.config["configurable"]["checkpoint_id"]: t for t in reader.list(cfg)}
        # Both checkpoints share the one compressed value.
        for saved in (first, second):
            values = listed[saved["configurable"]["checkpoint_id"]].checkpoint["channel_values"]
            assert values["large"] == large

    # What compression would not shrink is stored as serialized.
    noise = os.urandom(8192)
    saver.put_writes(second, [("noise", noise)], "task-3")
    row = CheckpointWrite.objects.using(db_alias).get(thread_id=thread_id, channel="noise")
    assert not row.type.endswith("+zstd")
    assert ("task-3", "noise", noise) in saver.get_tuple(second).pending_writes

    # A compressed value that can't be read back is refused with its place.
    if postgres:
        blob = CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id, channel="large")
        blob.update(blob=b"not zstd")
        fresh = DjangoCheckpointSaver(using=db_alias)
        with pytest.raises(CheckpointLoadError, match="large"):
            fresh.get_tuple(second)
        with pytest.raises(CheckpointLoadError, match="large"):
            list(fresh.list(cfg))

    # A large value stored before compression (uncompressed) still loads.
    CheckpointBlob.objects.using(db_alias).filter(thread_id=thread_id, channel="large").update(
        type="msgpack", blob=saver.serde.dumps_typed(large)[1]
    )
    assert (
        DjangoCheckpointSaver(using=db_alias)
        .get_tuple(second)
        .checkpoint["channel_values"]["large"]
        == large
    )
