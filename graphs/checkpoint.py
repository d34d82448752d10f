"""A LangGraph checkpoint saver whose storage is this project's Django models.

Layout as in LangGraph's Postgres saver (see graphs.models): primitives stay
inline in the checkpoint row, other channel values go to one blob row per
(thread, namespace, channel, version), so a step writes only the channels it
changed. On SQLite, small values, and a larger one in the step that changed
it, are kept serialized in the checkpoint row instead (see PACKED_MAX). The
checkpoint's channel versions live once, in the row's JSON `versions`
column, where the database can join them to the blobs.

Statements are plain SQL on the driver's cursor under Django's connection:
they run unchanged on SQLite and PostgreSQL, inside Django's transactions,
and cost no ORM or per-query wrapping on the hot path of every graph step.
On PostgreSQL the cursor binds parameters on the server, so a value's bytes
travel as binary instead of as escaped text in the statement.

LangGraph saves from short-lived worker threads. Opening a Django connection
in each would cost a connect per step, so each call borrows an idle
connection from a small pool for its length. A caller inside a transaction
uses its own connection: its `atomic()` block then covers the saver's writes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import sys
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import zstandard
from django.db import InterfaceError, OperationalError, connections, transaction
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import Cursor as ServerBindingCursor
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from graphs.models import Checkpoint as CheckpointRow
from graphs.models import CheckpointBlob, CheckpointWrite, Thread
from graphs.serde import strict_serializer

THREADS = Thread._meta.db_table
CHECKPOINTS = CheckpointRow._meta.db_table
BLOBS = CheckpointBlob._meta.db_table
WRITES = CheckpointWrite._meta.db_table

PRUNE_STRATEGIES = ("keep_latest", "delete")
# Checkpoint metadata a DeltaChannel leaves behind: such a thread's latest
# value is rebuilt from older checkpoints, which keep_latest would delete.
DELTA_METADATA_KEYS = ("counters_since_delta_snapshot", "delta_writes_versioned")
# Row-value IN lists and multi-row inserts are sent in chunks to stay under
# SQLite's limit on variables in one statement.
CHUNK = 250
WRITE_ROWS_PER_STATEMENT = 1000

CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"
)
INSERT_BLOBS = (
    f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, type, blob) VALUES"
)
ON_BLOB_CONFLICT = "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
UPSERT_CHECKPOINT = (
    f"INSERT INTO {CHECKPOINTS} ({CHECKPOINT_COLUMNS}, versions)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET"
    " type = excluded.type, checkpoint = excluded.checkpoint, metadata = excluded.metadata,"
    " versions = excluded.versions"
)
# get_tuple in one statement: the checkpoint row (kind 0), the blobs its
# versions point at (kind 1) and its pending writes (kind 2), in columns that
# line up: (kind, a, b, type, data, text, idx, versions).
# CROSS JOIN fixes SQLite's join order: each of the checkpoint's versions looks
# up its blob by primary key. Left to itself, SQLite walked every blob of the
# thread (thousands on a long thread) and matched the versions against each.
GET_TUPLE = """
WITH c AS (
    SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
        metadata, versions
    FROM {checkpoints} WHERE thread_id = %s AND checkpoint_ns = %s {which}
)
SELECT 0, c.checkpoint_id, c.parent_checkpoint_id, c.type, c.checkpoint, {metadata_text},
    CAST(NULL AS integer), {versions_text}
FROM c
UNION ALL
SELECT 1, b.channel, b.version, b.type, b.blob, CAST(NULL AS text), CAST(NULL AS integer),
    CAST(NULL AS text)
FROM c CROSS JOIN {each_version} AS v CROSS JOIN {blobs} b
WHERE b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns
    AND b.channel = v.key AND b.version = v.value
UNION ALL
SELECT 2, w.task_id, w.channel, w.type, w.blob, w.task_path, w.idx, CAST(NULL AS text)
FROM c JOIN {writes} w ON w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
    AND w.checkpoint_id = c.checkpoint_id
"""


@functools.cache
def _get_tuple_sql(vendor: str, *, by_id: bool) -> str:
    return GET_TUPLE.format(
        checkpoints=CHECKPOINTS,
        blobs=BLOBS,
        writes=WRITES,
        which="AND checkpoint_id = %s" if by_id else "ORDER BY checkpoint_id DESC LIMIT 1",
        **GET_TUPLE_PARTS[vendor],
    )


@functools.cache
def _get_head_sql(*, by_id: bool) -> str:
    which = "AND checkpoint_id = %s" if by_id else "ORDER BY checkpoint_id DESC LIMIT 1"
    return (
        "SELECT checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata, versions"
        f" FROM {CHECKPOINTS} WHERE thread_id = %s AND checkpoint_ns = %s {which}"
    )


@functools.lru_cache(maxsize=64)
def _get_rest_sql(blobs: int) -> str:
    """A checkpoint's `blobs` (channel, version) values and its pending
    writes, in get_tuple's columns."""
    writes = (
        "SELECT 2, task_id, channel, type, blob, task_path, idx, NULL"
        f" FROM {WRITES} WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s"
    )
    if not blobs:
        return writes
    # CROSS JOIN: each wanted key is looked up by primary key (see GET_TUPLE).
    return (
        "SELECT 1, b.channel, b.version, b.type, b.blob, NULL, NULL, NULL"
        f" FROM (VALUES {_placeholders(blobs, 2)}) AS v CROSS JOIN {BLOBS} b"
        " WHERE b.thread_id = %s AND b.checkpoint_ns = %s"
        " AND b.channel = v.column1 AND b.version = v.column2 UNION ALL " + writes
    )


GET_TUPLE_PARTS = {
    "postgresql": {
        "metadata_text": "c.metadata::text",
        "versions_text": "c.versions::text",
        "each_version": "jsonb_each_text(c.versions)",
    },
    "sqlite": {
        "metadata_text": "c.metadata",
        "versions_text": "c.versions",
        "each_version": "json_each(c.versions)",
    },
}


# A packed-value cache entry: the value is in the blob table.
_IN_BLOBS = object()


class CheckpointLoadError(RuntimeError):
    """A stored checkpoint, channel value or write that cannot be read back."""


# Digits of a channel version's counter (see get_next_version).
VERSION_DIGITS = 10

# Strings up to this size stay inline in the checkpoint row; longer ones (a
# document, a large context) become blobs so unchanged steps don't copy them.
INLINE_STR_MAX = 256

# On SQLite, other values whose serialized form is at most this many bytes
# (a short message list, a small dict) are kept, serialized, in every
# checkpoint row that has them, not in blobs: a step that changes only such
# values is one INSERT into one table instead of a transaction over two, and
# SQLite's cost is per B-tree touched far more than per byte. Larger values
# (the 20 KB document) stay in blobs, stored once. PostgreSQL keeps them all
# in blobs: there one statement already writes both tables, and a copy per
# row would cost more disk than LangGraph's own saver spends.
PACKED_MAX = {"sqlite": 4096, "postgresql": 0}
# On SQLite a larger value is kept in the row of the step that changed it
# too, and goes to the blobs only when a later step keeps it unchanged: a
# value that changes at nearly every step (a growing message list, a run's
# input) then costs one INSERT per step, never a transaction over two
# tables, and is stored once per version plus once more if it is reused.
# The serialized form of values kept in rows, remembered per thread, channel
# and version, so a step re-serializes only the values it changed and writes
# a reused value's blob from the bytes already made. A stale entry is
# impossible (a version names one value); a missing one costs one
# serialization. Bounded in entries and in the bytes it holds.
PACKED_CACHE_SIZE = 4096
PACKED_CACHE_BYTES = 32 * 1024 * 1024
# The checkpoint key holding those values: channel -> [type, bytes].
PACKED_KEY = "packed_values"

# On PostgreSQL, a value whose serialized form is at least this large is
# compressed with zstd before it is sent, its type marked with ZSTD. Left to
# the server, a row past 2 KB is compressed by TOAST's pglz, at about 1 ms of
# server CPU per 20 KB value against 0.1 ms for zstd's fastest level here,
# which also stores it in a fifth less room. The blobs' column is stored as
# sent (migration 0008); in the writes' column pglz tries a compressed value
# and leaves it as it is. SQLite keeps values as serialized: it does not
# compress, and writing the bytes costs it less than compressing them.
COMPRESS_MIN = {"postgresql": 2048}
ZSTD = "+zstd"
# Pending writes to LangGraph's own channels ("__resume__", "__error__",
# "__pregel_tasks"...) stay as serialized: the worker and the timeline read
# them from the table themselves.
PLAIN_WRITE_PREFIX = "__"


def _is_inline(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= INLINE_STR_MAX
    return value is None or isinstance(value, int | float | bool)


def _dump_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        # What orjson refuses (integers past 64 bits, say), as before.
        return json.dumps(value)


def _placeholders(rows: int, width: int) -> str:
    one = "(" + ", ".join(["%s"] * width) + ")"
    return ", ".join([one] * rows)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@functools.lru_cache(maxsize=64)
def _insert_writes_sql(rows: int, *, replace: bool) -> str:
    conflict = (
        "DO UPDATE SET channel = excluded.channel, type = excluded.type,"
        " blob = excluded.blob, task_path = excluded.task_path"
        if replace
        else "DO NOTHING"
    )
    return (
        f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id,"
        f" task_path, idx, channel, type, blob) VALUES {_placeholders(rows, 9)}"
        f" ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {conflict}"
    )


@functools.lru_cache(maxsize=512)
def _qmark(sql: str) -> str:
    return sql.replace("%s", "?")


class _Cursor:
    """The driver's own cursor on Django's connection: the saver's statements
    skip Django's per-query wrapping on the hot path. Statements are written
    with %s and sent to SQLite with its ? markers. Driver errors still surface
    as django.db errors, and mark the connection so Django (and the pool) can
    tell it broke."""

    __slots__ = ("errors", "fetchall", "fetchone", "keep", "prepare", "qmark", "raw")

    def __init__(
        self,
        raw: Any,
        errors: Any,
        *,
        qmark: bool = False,
        prepare: bool | None = None,
        keep: bool = False,
    ):
        self.raw = raw
        self.errors = errors
        self.qmark = qmark
        self.prepare = prepare
        # Kept open for the connection's next call (see _cursor).
        self.keep = keep
        self.fetchone = raw.fetchone
        self.fetchall = raw.fetchall

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.qmark:
            self.raw.execute(_qmark(sql), params)
        else:
            self.raw.execute(sql, params, prepare=self.prepare)

    def __enter__(self) -> _Cursor:
        # Django's error wrapper does nothing on entry, only on an exception.
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is None and self.keep:
            return
        self.keep = False
        try:
            self.raw.close()
        finally:
            if exc_type is not None:
                self.errors.__exit__(exc_type, exc_value, traceback)


def _where(where: str, kind: str, name: str) -> str:
    return f"{where} {kind} {name!r}" if kind else where


def _bytes(value: Any) -> bytes | None:
    # psycopg hands bytea back as bytes, SQLite as bytes, some drivers as memoryview.
    return bytes(value) if isinstance(value, memoryview) else value


# zstd contexts are not safe to share between threads; making one per call
# costs more than compressing a small value.
_zstd = threading.local()


def _compress(type_: str, data: bytes) -> tuple[str, bytes]:
    try:
        compressor = _zstd.compressor
    except AttributeError:
        compressor = _zstd.compressor = zstandard.ZstdCompressor(level=1)
    compressed = compressor.compress(data)
    # What does not shrink (an encrypting serde's output) is kept as it is.
    if len(compressed) >= len(data):
        return type_, data
    return type_ + ZSTD, compressed


def _decompress(data: bytes) -> bytes:
    try:
        decompressor = _zstd.decompressor
    except AttributeError:
        decompressor = _zstd.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(data)


class _ConnectionPool:
    """Idle Django connections to one database, lent to threads that have none.

    A borrowed connection can be installed as the thread's own for the alias
    while the call runs, so Django's transactions work on it unchanged.
    """

    def __init__(self, alias: str):
        self.alias = alias
        # list.pop and list.append are atomic: no lock of its own.
        self.idle: list[Any] = []
        # SQLite has one writer at a time. Threads of this process queue here
        # and wake at once, instead of polling in SQLite's busy handler.
        self.write_lock = threading.Lock()

    def take(self) -> Any:
        try:
            return self.idle.pop()
        except IndexError:
            pass
        wrapper = connections.create_connection(self.alias)
        wrapper.inc_thread_sharing()
        return wrapper

    def give_back(self, wrapper: Any, error: BaseException | None) -> None:
        # A dropped server connection must not go back to the pool.
        if (
            isinstance(error, InterfaceError | OperationalError)
            and wrapper.connection is not None
            and not wrapper.is_usable()
        ):
            wrapper.close()
        self.idle.append(wrapper)


# The connection lent to this thread for the current saver call, by alias.
_lent = threading.local()


_pools: dict[str, _ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool(alias: str) -> _ConnectionPool:
    with _pools_lock:
        if alias not in _pools:
            _pools[alias] = _ConnectionPool(alias)
        return _pools[alias]


def _thread_connection(alias: str) -> Any:
    """This thread's Django connection for `alias`, if it has made one.

    Django's storage (asgiref's Local) finds it anew on every access: it asks
    asyncio for a running loop, and the RuntimeError raised in every plain
    thread was a seventh of the saver's profile inside graph runs. In a thread
    without a loop that storage is a plain thread-local, read here directly
    (through its dict: LangGraph's threads have no connection, and a missing
    attribute costs an AttributeError too); elsewhere, or if asgiref keeps it
    otherwise, through the Local as before."""
    local = connections._connections
    if asyncio._get_running_loop() is None:
        storage = vars(local).get("_storage")
        if isinstance(storage, threading.local):
            return vars(storage).get(alias)
    return getattr(local, alias, None)


def _own_connection(alias: str) -> Any:
    """The calling thread's Django connection for `alias` if it is inside a
    transaction (atomic, or autocommit turned off); None otherwise.

    Outside a transaction the saver uses its pool even where the caller has a
    connection of its own: on SQLite a connection must reload the pages
    another connection changed, so a graph that read through its caller's
    connection and wrote through a borrowed one paid for cold pages on every
    step (get_tuple 231 against 188 us). Reads Django's per-thread storage
    directly: `connections[alias]` would build a new wrapper in every fresh
    LangGraph thread just to find it unconnected."""
    wrapper = _thread_connection(alias)
    if wrapper is not None and (
        wrapper.in_atomic_block or (wrapper.connection is not None and not wrapper.autocommit)
    ):
        return wrapper
    return None


def _db_call(*, write: bool, atomic: bool = False) -> Callable:
    """Run a saver method on the caller's connection, or a borrowed one (see
    module doc). `atomic` methods use Django's transaction.atomic, so the
    borrowed connection is installed as the thread's own while they run."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            alias = self.using
            own = _own_connection(alias)
            if write and self._is_sqlite and (own is None or not own.in_atomic_block):
                with self._pool.write_lock:
                    return _call(self, own, method, args, kwargs)
            return _call(self, own, method, args, kwargs)

        def _call(self, own, method, args, kwargs):
            alias = self.using
            if own is not None:
                # Noted as lent too: finding it again through
                # `connections[alias]` costs more than the statement.
                setattr(_lent, alias, own)
                try:
                    return method(self, *args, **kwargs)
                finally:
                    delattr(_lent, alias)
            pool = self._pool
            connection = pool.take()
            if atomic:
                # The caller's own connection, if any, is put back after.
                callers = getattr(connections._connections, alias, None)
                connections[alias] = connection
            setattr(_lent, alias, connection)
            error = None
            try:
                return method(self, *args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                delattr(_lent, alias)
                if atomic:
                    if callers is None:
                        del connections[alias]
                    else:
                        connections[alias] = callers
                pool.give_back(connection, error)

        return wrapper

    return decorate


_T = TypeVar("_T")

# The async methods run the sync ones on threads of their own: never on the
# caller's loop (Django's ORM refuses that), and never on asgiref's one
# thread-sensitive thread, which a worker waiting for its graph may hold.
_DB_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="checkpoints")


async def _in_db_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_DB_THREADS, functools.partial(function, *args, **kwargs))


class _Memory:
    """What this process remembers of the values its savers stored on one
    database (serialized, or `_IN_BLOBS`), bounded in entries and bytes.
    Shared by every saver on that database, so a thread deleted, copied over
    or pruned through one saver is forgotten by the one that writes its
    steps. Other processes keep their own: there a value not remembered is
    written again, and copies go to new thread ids."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str, str], Any] = {}
        self.size = 0
        self.lock = threading.Lock()

    @staticmethod
    def _bytes(found: Any) -> int:
        return 0 if found is _IN_BLOBS else len(found[1])

    def remember(self, key: tuple[str, str, str, str], found: Any) -> None:
        with self.lock:
            values = self.values
            size = self._bytes(found)
            old = values.get(key)
            if old is not None:
                self.size -= self._bytes(old)
            if len(values) >= PACKED_CACHE_SIZE or self.size + size > PACKED_CACHE_BYTES:
                values.clear()
                self.size = 0
            values[key] = found
            self.size += size

    def forget(self, thread_ids: set[str]) -> None:
        with self.lock:
            for key in [key for key in self.values if key[0] in thread_ids]:
                self.size -= self._bytes(self.values.pop(key))


_memories: dict[str, _Memory] = {}
_memories_lock = threading.Lock()


def _memory_of(alias: str) -> _Memory:
    with _memories_lock:
        return _memories.setdefault(alias, _Memory())


class DjangoCheckpointSaver(BaseCheckpointSaver[str]):
    """Stores checkpoints in the `graphs` tables of a Django database.

    `DjangoCheckpointSaver()` uses the default database and LangGraph's
    JSON-plus serializer in its strict mode (see graphs.serde): stored data
    rebuilds only LangGraph's safe types and those a graph's schemas name,
    never a callable someone wrote into the tables. Pass `serde=` for another
    serializer (an encrypting one, say) and `using=` for another database
    alias. Pickled values are never loaded.
    """

    def __init__(self, *, serde: SerializerProtocol | None = None, using: str = "default"):
        super().__init__(serde=serde or strict_serializer())
        self.using = using

    @functools.cached_property
    def _vendor_name(self) -> str:
        return connections[self.using].vendor

    @functools.cached_property
    def _is_sqlite(self) -> bool:
        return self._vendor_name == "sqlite"

    @functools.cached_property
    def _pool(self) -> _ConnectionPool:
        return _pool(self.using)

    @functools.cached_property
    def _packed_max(self) -> int:
        return PACKED_MAX.get(self._vendor_name, 0)

    @functools.cached_property
    def _compress_min(self) -> int | None:
        return COMPRESS_MIN.get(self._vendor_name)

    @functools.cached_property
    def _memory(self) -> _Memory:
        return _memory_of(self.using)

    @property
    def _packed_cache(self) -> dict[tuple[str, str, str, str], Any]:
        return self._memory.values

    def _remember(self, key: tuple[str, str, str, str], found: Any) -> None:
        self._memory.remember(key, found)

    def _forget(self, thread_ids: Iterable[str]) -> None:
        """Drop what is remembered of these threads' values: their blobs are
        being deleted or replaced, and a thread made again under the same id
        must not take a value for stored. Again once the caller's transaction
        commits: a step saved earlier in it remembers its values then."""
        ids = set(thread_ids)
        self._memory.forget(ids)
        connection = self._connection
        if connection.in_atomic_block:
            connection.on_commit(functools.partial(self._memory.forget, ids))

    def _in_blobs_once_committed(self, connection: Any, keys: list[tuple[str, ...]]) -> None:
        """Remember values as stored in the blobs once that is durable. A
        step rolled back with its caller's transaction must not leave later
        steps taking a value for stored there: they would point at a value
        that only a row without them holds, or none."""

        def settle() -> None:
            for key in keys:
                self._remember(key, _IN_BLOBS)

        if connection.in_atomic_block:
            connection.on_commit(settle)
        elif connection.autocommit:
            settle()

    # -- helpers --------------------------------------------------------------

    @property
    def _connection(self):
        return getattr(_lent, self.using, None) or connections[self.using]

    def _vendor(self) -> str:
        return self._vendor_name

    def _now(self) -> Any:
        return self._connection.ops.adapt_datetimefield_value(datetime.now(UTC))

    @functools.cached_property
    def _prepare(self) -> bool | None:
        """Whether the hot path's statements are prepared on PostgreSQL.

        Planning costs more than running them: get_tuple's statement plans in
        about 0.5 ms and runs in 0.2. The saver prepares its own few
        statements at once, once per connection, unless OPTIONS turn prepared
        statements off (`prepare_threshold` None, for a connection pooler
        that can't hold them: PgBouncer before 1.21 in transaction mode)."""
        options = connections[self.using].settings_dict.get("OPTIONS") or {}
        return (
            None
            if "prepare_threshold" in options and options["prepare_threshold"] is None
            else True
        )

    def _cursor(self, connection: Any = None, *, hot: bool = False) -> _Cursor:
        """A cursor on the call's connection; `hot` statements, the fixed ones
        of every step, may be prepared (see _prepare)."""
        connection = connection or self._connection
        if connection.connection is None:
            connection.ensure_connection()
        if self._is_sqlite:
            # One cursor per connection, kept between calls: every statement
            # the saver sends is read to its end, so sqlite3 has already reset
            # it and it holds no read snapshot open.
            raw_connection = connection.connection
            cursor = getattr(connection, "_checkpoint_cursor", None)
            if cursor is None or not cursor.keep or cursor.raw.connection is not raw_connection:
                cursor = _Cursor(
                    raw_connection.cursor(), connection.wrap_database_errors, qmark=True, keep=True
                )
                connection._checkpoint_cursor = cursor
            return cursor
        # Django's own cursors bind on the client: every parameter, a 20 KB
        # value too, is escaped into the statement's text and parsed back by
        # the server. This one sends parameters apart, bytes as binary, and
        # reads bytea back as binary.
        raw_connection = connection.connection
        prepare = self._prepare if hot else False
        if prepare and raw_connection.prepare_threshold is None:
            # psycopg prepares nothing while the threshold is None, even when
            # asked; a threshold never reached prepares only what is asked.
            raw_connection.prepare_threshold = sys.maxsize
        raw = ServerBindingCursor(raw_connection)
        raw.format = Format.BINARY
        return _Cursor(raw, connection.wrap_database_errors, prepare=prepare)

    def _loads(self, type_: str, data: Any, where: str, kind: str = "", name: str = "") -> Any:
        """Decode one stored value; errors name the thread and checkpoint
        (`where`) and the channel or write (`kind`, `name`), spelled out only
        when they happen."""
        if "pickle" in type_:
            raise CheckpointLoadError(
                f"{_where(where, kind, name)}: refusing to unpickle a value of type {type_!r}"
            )
        try:
            if type_.endswith(ZSTD):
                return self.serde.loads_typed((type_[: -len(ZSTD)], _decompress(data)))
            return self.serde.loads_typed((type_, _bytes(data) or b""))
        except Exception as exc:
            raise CheckpointLoadError(
                f"{_where(where, kind, name)}: cannot decode value of type {type_!r}: {exc}"
            ) from exc

    def _load_checkpoint(self, type_: str, data: Any, raw_versions: Any, where: str) -> Checkpoint:
        checkpoint = self._loads(type_, data, where)
        if packed := checkpoint.pop(PACKED_KEY, None):
            values = checkpoint.setdefault("channel_values", {})
            for channel, (value_type, value) in packed.items():
                values[channel] = self._loads(value_type, value, where, "channel", channel)
        versions = self._load_json(raw_versions) or {}
        # Versions that are not strings keep their type in the checkpoint
        # itself (rows saved before the versions moved out hold them all).
        if typed := checkpoint.get("channel_versions"):
            versions.update(typed)
        checkpoint["channel_versions"] = versions
        return checkpoint

    def _json_param(self, value: dict[str, Any]) -> Any:
        if self._is_sqlite:
            return _dump_json(value)
        return Jsonb(value)

    _metadata_param = _json_param

    @staticmethod
    def _load_json(raw: Any) -> Any:
        if not isinstance(raw, str | bytes):
            return raw
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            # What orjson refuses and json wrote (NaN, integers past 64 bits).
            return json.loads(raw)

    _load_metadata = _load_json

    def get_next_version(self, current: str | None, channel: None) -> str:
        # A zero-padded counter that sorts as text, and a random tail so
        # versions from two forks of one thread do not collide on the blob
        # key. LangGraph's own savers pad to 32 digits with a 16-digit tail;
        # ten digits (more steps than a database can hold checkpoints for)
        # and 52 random bits in hex take half the room in every row and
        # index that holds a version. A thread saved with the long form
        # keeps it: LangGraph compares versions as text, and all versions of
        # a step come from the largest one.
        if current is None:
            counter, width = 0, VERSION_DIGITS
        elif isinstance(current, int):
            counter, width = current, VERSION_DIGITS
        else:
            head = current.split(".", 1)[0]
            counter, width = int(head), max(len(head), VERSION_DIGITS)
        return f"{counter + 1:0{width}}.{random.getrandbits(52):013x}"

    # -- writing ----------------------------------------------------------------

    @_db_call(write=True)
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        parent_id = configurable.get("checkpoint_id")

        versions = checkpoint["channel_versions"]
        inline: dict[str, Any] = {}
        packed: dict[str, tuple[str, bytes]] = {}
        blob_rows = []
        packed_max = self._packed_max
        compress_min = self._compress_min
        cache = self._packed_cache
        dumps = self.serde.dumps_typed
        for key, value in checkpoint["channel_values"].items():
            if _is_inline(value):
                inline[key] = value
                continue
            version = str(versions.get(key))
            changed = key in new_versions
            cache_key = (thread_id, checkpoint_ns, key, version)
            found = None if changed else cache.get(cache_key)
            if found is None and not changed and not packed_max:
                # Where nothing is packed, an unchanged value is in the blobs.
                found = _IN_BLOBS
            if found is None:
                blob_type, blob = dumps(value)
                if len(blob) <= packed_max or (packed_max and changed):
                    found = (blob_type, blob)
                    self._remember(cache_key, found)
                else:
                    found = _IN_BLOBS
                    if compress_min is not None and len(blob) >= compress_min:
                        blob_type, blob = _compress(blob_type, blob)
                    # An unchanged value not seen before is written again (a
                    # no-op on conflict): the step that changed it may have
                    # kept it in its row only.
                    blob_rows.append((thread_id, checkpoint_ns, key, version, blob_type, blob))
            elif found is not _IN_BLOBS and not changed and len(found[1]) > packed_max:
                # A large value kept in the row of the step that changed it,
                # reused: from now on it is read from the blobs.
                blob_rows.append((thread_id, checkpoint_ns, key, version, *found))
                found = _IN_BLOBS
            if found is not _IN_BLOBS:
                packed[key] = found
        # The versions are stored once, as text in the JSON column (see module
        # doc); only those of another type (ints, say) are kept here as well.
        stored = {
            key: value
            for key, value in checkpoint.items()
            if key != "channel_values" and key != "channel_versions"
        }
        stored["channel_values"] = inline
        if packed:
            stored[PACKED_KEY] = packed
        if typed := {k: v for k, v in versions.items() if not isinstance(v, str)}:
            stored["channel_versions"] = typed
        type_, data = dumps(stored)

        row = (
            thread_id,
            checkpoint_ns,
            checkpoint["id"],
            parent_id,
            type_,
            data,
            self._json_param(get_serializable_checkpoint_metadata(config, metadata)),
            self._json_param({k: str(v) for k, v in versions.items()}),
        )
        # A trigger adds the thread's row.
        connection = self._connection
        with self._cursor(connection, hot=True) as cur:
            if not blob_rows:
                cur.execute(UPSERT_CHECKPOINT, row)
            elif not self._is_sqlite:
                # One statement: atomic, and one round trip.
                cur.execute(
                    f"WITH blobs AS ({INSERT_BLOBS} {_placeholders(len(blob_rows), 6)}"
                    f" {ON_BLOB_CONFLICT}) {UPSERT_CHECKPOINT}",
                    [*(v for r in blob_rows for v in r), *row],
                )
            elif connection.in_atomic_block:
                cur.execute(
                    f"{INSERT_BLOBS} {_placeholders(len(blob_rows), 6)} {ON_BLOB_CONFLICT}",
                    [v for r in blob_rows for v in r],
                )
                cur.execute(UPSERT_CHECKPOINT, row)
            else:
                # One commit for the step instead of one per statement. The
                # process already holds the pool's write lock, so IMMEDIATE
                # only waits for other processes.
                cur.execute("BEGIN IMMEDIATE")
                try:
                    cur.execute(
                        f"{INSERT_BLOBS} {_placeholders(len(blob_rows), 6)} {ON_BLOB_CONFLICT}",
                        [v for r in blob_rows for v in r],
                    )
                    cur.execute(UPSERT_CHECKPOINT, row)
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
        if blob_rows:
            self._in_blobs_once_committed(connection, [row[:4] for row in blob_rows])
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    @_db_call(write=True)
    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        checkpoint_id = configurable["checkpoint_id"]
        params: list[Any] = []
        dumps = self.serde.dumps_typed
        compress_min = self._compress_min
        special = True
        for position, (channel, value) in enumerate(writes):
            type_, blob = dumps(value)
            if (
                compress_min is not None
                and len(blob) >= compress_min
                and not channel.startswith(PLAIN_WRITE_PREFIX)
            ):
                type_, blob = _compress(type_, blob)
            idx = WRITES_IDX_MAP.get(channel)
            if idx is None:
                idx, special = position, False
            params += (
                thread_id,
                checkpoint_ns,
                checkpoint_id,
                task_id,
                task_path,
                idx,
                channel,
                type_,
                blob,
            )
        # Special channels (errors, interrupts, resumes) are replaced when a
        # task writes them again; ordinary writes of a task are kept as first saved.
        rows = len(writes)
        if rows <= WRITE_ROWS_PER_STATEMENT:
            # One multi-row statement is atomic for the task's writes.
            with self._cursor(hot=True) as cur:
                cur.execute(_insert_writes_sql(rows, replace=special), params)
            return
        # A task with very many writes needs a transaction around chunks.
        width = WRITE_ROWS_PER_STATEMENT * 9
        with transaction.atomic(using=self.using), self._cursor(hot=True) as cur:
            for start in range(0, len(params), width):
                batch = params[start : start + width]
                cur.execute(_insert_writes_sql(len(batch) // 9, replace=special), batch)

    # -- reading ----------------------------------------------------------------

    @_db_call(write=False)
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns") or ""
        params: list[Any] = [thread_id, checkpoint_ns]
        if checkpoint_id := get_checkpoint_id(config):
            params.append(checkpoint_id)
        with self._cursor(hot=True) as cur:
            if self._is_sqlite:
                # Two plain statements: the row, then only the blobs it lacks
                # and its writes. Statements cost SQLite little, and this
                # skips the JSON walk the one-statement form needs.
                cur.execute(_get_head_sql(by_id=bool(checkpoint_id)), params)
                head = cur.fetchone()
                if head is None:
                    return None
                found_id, parent_id, type_, data, raw_meta, raw_versions = head
                where = f"thread {thread_id!r} checkpoint {found_id!r}"
                checkpoint = self._load_checkpoint(type_, data, raw_versions, where)
                values = dict(checkpoint.get("channel_values") or {})
                missing = [
                    item
                    for channel, version in checkpoint["channel_versions"].items()
                    if channel not in values
                    for item in (channel, str(version))
                ]
                rest = [thread_id, checkpoint_ns, found_id]
                if missing:
                    rest = [*missing, thread_id, checkpoint_ns, *rest]
                cur.execute(_get_rest_sql(len(missing) // 2), rest)
                rows = cur.fetchall()
            else:
                cur.execute(_get_tuple_sql(self._vendor(), by_id=bool(checkpoint_id)), params)
                rows = cur.fetchall()
                head = next((r for r in rows if r[0] == 0), None)
                if head is None:
                    return None
                _, found_id, parent_id, type_, data, raw_meta, _, raw_versions = head
                where = f"thread {thread_id!r} checkpoint {found_id!r}"
                checkpoint = self._load_checkpoint(type_, data, raw_versions, where)
                values = dict(checkpoint.get("channel_values") or {})
        for kind, channel, _, blob_type, blob, _, _, _ in rows:
            if kind == 1 and channel not in values and blob_type != "empty":
                values[channel] = self._loads(blob_type, blob, where, "channel", channel)
        checkpoint["channel_values"] = values
        writes = sorted(
            (r for r in rows if r[0] == 2), key=lambda r: writes_sort_key(r[5], r[1], r[6])
        )
        return self._tuple(
            thread_id,
            checkpoint_ns,
            found_id,
            parent_id,
            checkpoint,
            raw_meta,
            [
                (task_id, channel, self._loads(t, blob, where, "write", channel))
                for _, task_id, channel, t, blob, _, _, _ in writes
            ],
        )

    def _tuple(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        parent_id: str | None,
        checkpoint: Checkpoint,
        raw_meta: Any,
        pending: list[PendingWrite],
    ) -> CheckpointTuple:
        def config_for(cid: str) -> RunnableConfig:
            return {
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
            }

        return CheckpointTuple(
            config=config_for(checkpoint_id),
            checkpoint=checkpoint,
            metadata=self._load_metadata(raw_meta),
            parent_config=config_for(parent_id) if parent_id else None,
            pending_writes=pending,
        )

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        yield from self._list(config, filter, before, limit)

    @_db_call(write=False)
    def _list(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> list[CheckpointTuple]:
        where, params = self._search_where(config, filter, before)
        sql = (
            f"SELECT {CHECKPOINT_COLUMNS}, versions FROM {CHECKPOINTS}{where}"
            " ORDER BY checkpoint_id DESC"
        )
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        with self._cursor(hot=True) as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
            return self._load_tuples(cur, rows) if rows else []

    def _search_where(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
    ) -> tuple[str, list[Any]]:
        wheres: list[str] = []
        params: list[Any] = []
        if config:
            configurable = config["configurable"]
            wheres.append("thread_id = %s")
            params.append(str(configurable["thread_id"]))
            checkpoint_ns = configurable.get("checkpoint_ns")
            if checkpoint_ns is not None:
                wheres.append("checkpoint_ns = %s")
                params.append(checkpoint_ns)
            if checkpoint_id := get_checkpoint_id(config):
                wheres.append("checkpoint_id = %s")
                params.append(checkpoint_id)
        if filter:
            if self._vendor() == "postgresql":
                # Served by JSONB containment; values compare with JSON types.
                wheres.append("metadata @> %s")
                params.append(self._metadata_param(filter))
            else:
                for key, value in filter.items():
                    path = '$."' + str(key).replace("\\", "\\\\").replace('"', '\\"') + '"'
                    wheres.append(
                        "json_type(metadata, %s) IS NOT NULL"
                        " AND json_extract(metadata, %s) IS json_extract(%s, '$')"
                    )
                    params.extend([path, path, json.dumps(value)])
        if before is not None and (before_id := get_checkpoint_id(before)):
            wheres.append("checkpoint_id < %s")
            params.append(before_id)
        return (" WHERE " + " AND ".join(wheres) if wheres else ""), params

    def _load_tuples(self, cur, rows: Sequence[Sequence[Any]]) -> list[CheckpointTuple]:
        """Turn checkpoint rows into tuples with two more queries in all:
        one for the channel values they reference, one for their pending writes."""
        decoded = []
        wanted: set[tuple[str, str, str, str]] = set()
        for thread_id, ns, checkpoint_id, parent_id, type_, data, raw_meta, versions in rows:
            where = f"thread {thread_id!r} checkpoint {checkpoint_id!r}"
            checkpoint = self._load_checkpoint(type_, data, versions, where)
            inline = checkpoint.get("channel_values") or {}
            for channel, version in checkpoint.get("channel_versions", {}).items():
                if channel not in inline:
                    wanted.add((thread_id, ns, channel, str(version)))
            decoded.append((thread_id, ns, checkpoint_id, parent_id, checkpoint, raw_meta))

        blobs: dict[tuple[str, str, str, str], tuple[str, Any]] = {}
        wanted_list = sorted(wanted)
        for part in _chunks(wanted_list):
            cur.execute(
                f"SELECT thread_id, checkpoint_ns, channel, version, type, blob FROM {BLOBS}"
                f" WHERE (thread_id, checkpoint_ns, channel, version) IN (VALUES {_placeholders(len(part), 4)})",
                [item for key in part for item in key],
            )
            for thread_id, ns, channel, version, type_, blob in cur.fetchall():
                if type_.endswith(ZSTD):
                    # Once per value, however many listed checkpoints share it.
                    try:
                        type_, blob = type_[: -len(ZSTD)], _decompress(blob)
                    except zstandard.ZstdError as exc:
                        raise CheckpointLoadError(
                            f"thread {thread_id!r} channel {channel!r} version {version!r}:"
                            f" cannot decompress value of type {type_!r}: {exc}"
                        ) from exc
                blobs[(thread_id, ns, channel, version)] = (type_, blob)

        writes: dict[tuple[str, str, str], list[tuple[str, str, str, Any, str, int]]] = defaultdict(
            list
        )
        keys = [(t, ns, cid) for t, ns, cid, *_ in decoded]
        for part in _chunks(keys):
            cur.execute(
                f"SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, channel, type, blob,"
                f" task_path, idx FROM {WRITES}"
                f" WHERE (thread_id, checkpoint_ns, checkpoint_id) IN (VALUES {_placeholders(len(part), 3)})",
                [item for key in part for item in key],
            )
            for thread_id, ns, cid, task_id, channel, type_, blob, task_path, idx in cur.fetchall():
                writes[(thread_id, ns, cid)].append((task_id, channel, type_, blob, task_path, idx))

        result = []
        for thread_id, ns, checkpoint_id, parent_id, checkpoint, raw_meta in decoded:
            where = f"thread {thread_id!r} checkpoint {checkpoint_id!r}"
            values = dict(checkpoint.get("channel_values") or {})
            for channel, version in checkpoint.get("channel_versions", {}).items():
                if channel in values:
                    continue
                found = blobs.get((thread_id, ns, channel, str(version)))
                if found is None or found[0] == "empty":
                    continue
                values[channel] = self._loads(found[0], found[1], where, "channel", channel)
            checkpoint["channel_values"] = values
            pending: list[PendingWrite] = [
                (task_id, channel, self._loads(type_, blob, where, "write", channel))
                for task_id, channel, type_, blob, _, _ in sorted(
                    writes.get((thread_id, ns, checkpoint_id), ()),
                    key=lambda w: writes_sort_key(w[4], w[0], w[5]),
                )
            ]
            result.append(
                self._tuple(thread_id, ns, checkpoint_id, parent_id, checkpoint, raw_meta, pending)
            )
        return result

    # -- deleting, copying, pruning ---------------------------------------------

    @_db_call(write=True, atomic=True)
    def delete_thread(self, thread_id: str) -> None:
        thread_id = str(thread_id)
        with transaction.atomic(using=self.using), self._cursor() as cur:
            for table in (WRITES, BLOBS, CHECKPOINTS, THREADS):
                cur.execute(f"DELETE FROM {table} WHERE thread_id = %s", [thread_id])
        self._forget([thread_id])

    @_db_call(write=True, atomic=True)
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source, target = str(source_thread_id), str(target_thread_id)
        self._forget([target])
        with transaction.atomic(using=self.using), self._cursor() as cur:
            cur.execute(f"SELECT 1 FROM {CHECKPOINTS} WHERE thread_id = %s LIMIT 1", [source])
            if cur.fetchone() is None:
                return
            cur.execute(
                f"INSERT INTO {THREADS} (thread_id, graph_name, title, created_at)"
                f" SELECT %s, graph_name, title, %s FROM {THREADS} WHERE thread_id = %s"
                " ON CONFLICT (thread_id) DO NOTHING",
                [target, self._now(), source],
            )
            cur.execute(
                f"INSERT INTO {THREADS} (thread_id, graph_name, title, created_at)"
                " VALUES (%s, '', '', %s) ON CONFLICT (thread_id) DO NOTHING",
                [target, self._now()],
            )
            cur.execute(
                f"INSERT INTO {CHECKPOINTS} ({CHECKPOINT_COLUMNS}, versions)"
                " SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,"
                f" metadata, versions FROM {CHECKPOINTS} WHERE thread_id = %s"
                " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING",
                [target, source],
            )
            cur.execute(
                f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, type, blob)"
                f" SELECT %s, checkpoint_ns, channel, version, type, blob FROM {BLOBS}"
                " WHERE thread_id = %s"
                " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING",
                [target, source],
            )
            cur.execute(
                f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id,"
                " task_path, idx, channel, type, blob)"
                " SELECT %s, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
                f" type, blob FROM {WRITES} WHERE thread_id = %s"
                " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING",
                [target, source],
            )

    @_db_call(write=True, atomic=True)
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`"delete"` removes the threads' checkpoints, writes and values.
        `"keep_latest"` keeps each namespace's latest checkpoint with its
        pending writes and the values it references; the kept checkpoint loses
        its parent link, and a subgraph call's namespace whose root checkpoint
        is gone goes with it. Threads that use a DeltaChannel are refused."""
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in PRUNE_STRATEGIES:
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        ids = [str(t) for t in thread_ids]
        if not ids:
            return
        try:
            with transaction.atomic(using=self.using), self._cursor() as cur:
                if strategy == "delete":
                    for part in _chunks(ids):
                        marks = ", ".join(["%s"] * len(part))
                        for table in (WRITES, BLOBS, CHECKPOINTS):
                            cur.execute(
                                f"DELETE FROM {table} WHERE thread_id IN ({marks})", list(part)
                            )
                    return
                self._refuse_delta_threads(cur, ids)
                for thread_id in ids:
                    self._keep_latest(cur, thread_id)
        finally:
            self._forget(ids)

    def _refuse_delta_threads(self, cur, ids: Sequence[str]) -> None:
        if self._vendor() == "postgresql":
            has_key = " OR ".join(f"metadata ? '{key}'" for key in DELTA_METADATA_KEYS)
        else:
            has_key = " OR ".join(
                f"json_type(metadata, '$.{key}') IS NOT NULL" for key in DELTA_METADATA_KEYS
            )
        found: set[str] = set()
        for part in _chunks(ids):
            marks = ", ".join(["%s"] * len(part))
            cur.execute(
                f"SELECT DISTINCT thread_id FROM {CHECKPOINTS}"
                f" WHERE thread_id IN ({marks}) AND ({has_key})",
                list(part),
            )
            found.update(row[0] for row in cur.fetchall())
        if found:
            raise NotImplementedError(
                f"keep_latest can't prune threads that use a DeltaChannel: {', '.join(sorted(found))}"
            )

    def _keep_latest(self, cur, thread_id: str) -> None:
        cur.execute(
            f"SELECT c.checkpoint_ns, c.checkpoint_id, c.versions, c.metadata"
            f" FROM {CHECKPOINTS} c WHERE c.thread_id = %s AND c.checkpoint_id = ("
            f"SELECT max(m.checkpoint_id) FROM {CHECKPOINTS} m"
            " WHERE m.thread_id = c.thread_id AND m.checkpoint_ns = c.checkpoint_ns)",
            [thread_id],
        )
        heads = {ns: (cid, versions, meta) for ns, cid, versions, meta in cur.fetchall()}
        root = heads.get("", (None,))[0]
        for ns, (checkpoint_id, versions, raw_meta) in heads.items():
            parents = (self._load_metadata(raw_meta) or {}).get("parents") or {}
            call_root = parents.get("")
            # A subgraph call's namespace ("node:task_id") belongs to the root
            # step that made the call; once that step is pruned, so is the call.
            if ":" in ns and call_root and root and call_root != root:
                for table in (WRITES, BLOBS, CHECKPOINTS):
                    cur.execute(
                        f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_ns = %s",
                        [thread_id, ns],
                    )
                continue
            cur.execute(
                f"DELETE FROM {WRITES} WHERE thread_id = %s AND checkpoint_ns = %s"
                " AND checkpoint_id <> %s",
                [thread_id, ns, checkpoint_id],
            )
            cur.execute(
                f"DELETE FROM {CHECKPOINTS} WHERE thread_id = %s AND checkpoint_ns = %s"
                " AND checkpoint_id <> %s",
                [thread_id, ns, checkpoint_id],
            )
            cur.execute(
                f"UPDATE {CHECKPOINTS} SET parent_checkpoint_id = NULL"
                " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
                [thread_id, ns, checkpoint_id],
            )
            self._delete_unreferenced_blobs(cur, thread_id, ns, [versions])

    def _delete_unreferenced_blobs(self, cur, thread_id: str, ns: str, kept: Iterable[Any]) -> None:
        """Delete the namespace's blobs that none of the `kept` checkpoints'
        versions (their `versions` column values) refer to."""
        referenced = {
            (channel, str(version))
            for versions in kept
            for channel, version in (self._load_json(versions) or {}).items()
        }
        cur.execute(
            f"SELECT channel, version FROM {BLOBS} WHERE thread_id = %s AND checkpoint_ns = %s",
            [thread_id, ns],
        )
        garbage = [key for key in cur.fetchall() if (key[0], key[1]) not in referenced]
        for part in _chunks(garbage):
            cur.execute(
                f"DELETE FROM {BLOBS} WHERE thread_id = %s AND checkpoint_ns = %s"
                f" AND (channel, version) IN (VALUES {_placeholders(len(part), 2)})",
                [thread_id, ns, *(item for key in part for item in key)],
            )

    @_db_call(write=True, atomic=True)
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        run_id = (
            "metadata ->> 'run_id'"
            if self._vendor() == "postgresql"
            else ("json_extract(metadata, '$.run_id')")
        )
        with transaction.atomic(using=self.using), self._cursor() as cur:
            doomed: list[tuple[str, str, str]] = []
            for part in _chunks(ids):
                marks = ", ".join(["%s"] * len(part))
                cur.execute(
                    f"SELECT thread_id, checkpoint_ns, checkpoint_id FROM {CHECKPOINTS}"
                    f" WHERE {run_id} IN ({marks})",
                    list(part),
                )
                doomed.extend(cur.fetchall())
            for part in _chunks(doomed):
                values = _placeholders(len(part), 3)
                flat = [item for key in part for item in key]
                for table in (WRITES, CHECKPOINTS):
                    cur.execute(
                        f"DELETE FROM {table} WHERE (thread_id, checkpoint_ns, checkpoint_id)"
                        f" IN (VALUES {values})",
                        flat,
                    )
            for thread_id, ns in sorted({(t, ns) for t, ns, _ in doomed}):
                cur.execute(
                    f"SELECT versions FROM {CHECKPOINTS} WHERE thread_id = %s AND checkpoint_ns = %s",
                    [thread_id, ns],
                )
                kept = [versions for (versions,) in cur.fetchall()]
                self._delete_unreferenced_blobs(cur, thread_id, ns, kept)
        self._forget({thread_id for thread_id, _, _ in doomed})

    # -- async twins ------------------------------------------------------------
    # Django's database layer is synchronous; each call runs on the one thread
    # Django keeps for sync work, so connections are never shared.

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await _in_db_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in await _in_db_thread(self._list, config, filter, before, limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await _in_db_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await _in_db_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await _in_db_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await _in_db_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await _in_db_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await _in_db_thread(self.prune, thread_ids, strategy=strategy)
