"""DjangoCheckpointSaver against LangGraph's own savers, every shape of state, in one run.

Each shape of state runs on each database with both savers: ours and the one
LangGraph users get by default (`SqliteSaver`, `PostgresSaver`). Shapes:

    str       a ~20 KB string that never changes, and a list of message dicts that grows
    list      100 dicts (~20 KB) that never change, and the same message list
    dict      a dict of lists (~20 KB), and the same message list
    messages  langchain messages only: 40 of history, then AI turns with tool calls
              and tool results appended
    pydantic  a pydantic state: 100 pydantic documents and a growing list of notes

Per shape and database:
- round trip: start -> interrupt -> resume -> end on a new thread, with
  durability="sync" as the worker runs graphs;
- list(limit=50) on a thread of `--history` checkpoints;
- disk: bytes the work added to the saver's tables (ours include the thread
  rows the saver creates), per checkpoint, after the round trips ("runs") and
  after the long thread too ("all").

Every case of every shape and database takes its turn in each round, in a
shuffled order, so the noise of a busy machine lands on all alike; figures
are medians. Ratio = LangGraph's median over ours: above 1 we are faster or
smaller. The headline is the worst ratio of the table.

Wall time swings with whatever else the machine runs, so each sample also
takes CPU time: this process's, every thread's, plus on PostgreSQL that of
the server processes serving the case's database (from /proc). A second
table gives, per metric and clock, both savers' medians with their quartiles
and each round's paired ratio (both savers ran in the same round) as a
median with quartiles: a ratio whose quartiles straddle 1 is no verdict.
It also counts the statements each saver sends per round trip (and SQLite's
write commits, each a WAL append, and the pages those append: what SQLite
writes, a whole page for any change to it), and the round trip's CPU with LangGraph's
InMemorySaver: the part of the figures no saver can take away.

    python bench/checkpointer.py [--rounds 40] [--cycles 3] [--history 1000]
        [--shapes str,list,dict,messages,pydantic] [--no-postgres]

PostgreSQL: a throwaway cluster (or TEST_DATABASE_URL), one database per
saver and shape. SQLite: one file per saver and shape, all with WAL and
synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import operator
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPES = ("str", "list", "dict", "messages", "pydantic")
DURABILITY = "sync"
LIST_LIMIT = 50


def _words(n: int) -> list[str]:
    rng = random.Random(7)
    return [f"w{rng.randrange(10_000)}" for _ in range(n)]


LOREM = "lorem ipsum dolor sit amet " * 4


# -- the shapes ---------------------------------------------------------------


class DictState(TypedDict, total=False):
    context: Any
    messages: Annotated[list[dict[str, str]], operator.add]
    answer: str
    step: int


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    answer: str
    step: int


class Doc(BaseModel):
    id: int
    title: str
    text: str
    tags: list[str]


class Note(BaseModel):
    role: str
    content: str


class PydanticState(BaseModel):
    context: list[Doc] = []
    messages: Annotated[list[Note], operator.add] = []
    answer: str = ""
    step: int = 0


def dict_message(role: str, n: int) -> dict[str, str]:
    return {"role": role, "content": f"message {n} {LOREM}"}


def chat_message(role: str, n: int) -> AnyMessage:
    if role == "user":
        return HumanMessage(f"message {n} {LOREM}")
    if role == "call":
        return AIMessage(
            f"message {n}: looking it up",
            tool_calls=[
                {
                    "name": "lookup",
                    "args": {"query": f"order {n}", "limit": 5, "fields": ["status", "total"]},
                    "id": f"call_{n}",
                }
            ],
        )
    if role == "tool":
        return ToolMessage(f"result {n} {LOREM}", tool_call_id=f"call_{n - 1}", name="lookup")
    return AIMessage(f"message {n} {LOREM}")


def note(role: str, n: int) -> Note:
    return Note(role=role, content=f"message {n} {LOREM}")


def _str_context() -> str:
    return " ".join(_words(3_500))[:20_000]


def _list_context() -> list[dict[str, Any]]:
    words = _words(3_500)
    return [{"id": i, "text": " ".join(words[i * 35 : (i + 1) * 35])} for i in range(100)]


def _dict_context() -> dict[str, list[Any]]:
    words = _words(3_500)
    return {
        "documents": [" ".join(words[i * 30 : (i + 1) * 30]) for i in range(60)],
        "scores": [round(i / 7, 4) for i in range(200)],
        "tags": [words[i] for i in range(300)],
        "steps": [{"step": i, "node": f"n{i % 5}", "ok": i % 3 != 0} for i in range(40)],
    }


def _docs() -> list[Doc]:
    words = _words(3_500)
    return [
        Doc(
            id=i,
            title=f"doc {i}",
            text=" ".join(words[i * 30 : (i + 1) * 30]),
            tags=words[i : i + 3],
        )
        for i in range(100)
    ]


@dataclass
class Shape:
    name: str
    schema: type
    initial: Callable[[], Any]
    message: Callable[[str, int], Any]


def _dict_shape(name: str, context: Callable[[], Any]) -> Shape:
    value = context()
    return Shape(
        name,
        DictState,
        lambda: {
            "context": value,
            "messages": [dict_message("user", i) for i in range(10)],
            "answer": "",
        },
        dict_message,
    )


def _chat_history() -> list[AnyMessage]:
    roles = ("user", "call", "tool", "assistant")
    return [chat_message(roles[i % 4], i) for i in range(40)]


def make_shape(name: str) -> Shape:
    if name == "str":
        return _dict_shape(name, _str_context)
    if name == "list":
        return _dict_shape(name, _list_context)
    if name == "dict":
        return _dict_shape(name, _dict_context)
    if name == "messages":
        return Shape(
            name, ChatState, lambda: {"messages": _chat_history(), "answer": ""}, chat_message
        )
    if name == "pydantic":
        docs = _docs()
        return Shape(
            name,
            PydanticState,
            lambda: {"context": docs, "messages": [note("user", i) for i in range(10)]},
            note,
        )
    raise ValueError(name)


def _get(state: Any, key: str, default: Any = None) -> Any:
    if isinstance(state, dict):
        return state.get(key, default)
    return getattr(state, key, default)


# -- the graphs -----------------------------------------------------------------


def approval_graph(saver, shape: Shape):
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def think(state) -> dict:
        return {"messages": [shape.message("call", len(_get(state, "messages")))]}

    def ask(state) -> dict:
        return {"answer": interrupt({"question": "approve?"})}

    def act(state) -> dict:
        return {"messages": [shape.message("tool", len(_get(state, "messages")))]}

    def respond(state) -> dict:
        return {"messages": [shape.message("assistant", len(_get(state, "messages")))]}

    builder = StateGraph(shape.schema)
    for name, fn in (("think", think), ("ask", ask), ("act", act), ("respond", respond)):
        builder.add_node(name, fn)
    builder.add_edge(START, "think")
    builder.add_edge("think", "ask")
    builder.add_edge("ask", "act")
    builder.add_edge("act", "respond")
    builder.add_edge("respond", END)
    return _as_served(builder.compile(checkpointer=saver))


def loop_graph(saver, shape: Shape, steps: int):
    from langgraph.graph import END, START, StateGraph

    def tick(state) -> dict:
        return {"step": (_get(state, "step") or 0) + 1}

    builder = StateGraph(shape.schema)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: END if _get(s, "step") >= steps else "tick")
    return _as_served(builder.compile(checkpointer=saver))


def _as_served(graph):
    """Our saver loads strictly, allowing the types the graph's schemas name,
    as graphs.registry compiles every served graph."""
    from graphs.serde import allow_graph_types

    return allow_graph_types(graph)


def one_cycle(graph, shape: Shape) -> None:
    from langgraph.types import Command

    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    graph.invoke(shape.initial(), config, durability=DURABILITY)
    out = graph.invoke(Command(resume="yes"), config, durability=DURABILITY)
    assert _get(out, "answer") == "yes", out


# -- the databases and savers ---------------------------------------------------


@dataclass
class Case:
    db: str
    shape: Shape
    savers: dict[str, Any]  # "Django" / "LangGraph" -> saver
    sizes: dict[str, Callable[[], tuple[int, int]]]  # -> (bytes, checkpoints)
    databases: dict[str, str | None]  # -> PostgreSQL database name


def _add_alias(alias: str, config: dict) -> None:
    from django.conf import settings
    from django.db import connections

    settings.DATABASES[alias] = config
    connections.settings[alias] = connections.configure_settings(
        {"default": connections.settings["default"], alias: config}
    )[alias]


def _django_tables() -> list[str]:
    from graphs.models import Checkpoint, CheckpointBlob, CheckpointWrite, Thread

    return [m._meta.db_table for m in (Checkpoint, CheckpointBlob, CheckpointWrite, Thread)]


def _sqlite_file_size(conn: Any) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return conn.execute(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    ).fetchone()[0]


def _django_sizer(alias: str) -> Callable[[], tuple[int, int]]:
    from django.db import connections

    from graphs.models import Checkpoint

    def size() -> tuple[int, int]:
        connection = connections[alias]
        with connection.cursor() as cur:
            if connection.vendor == "sqlite":
                total = _sqlite_file_size(cur.connection)
            else:
                cur.execute(
                    "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t",
                    [_django_tables()],
                )
                total = cur.fetchone()[0]
        return int(total), Checkpoint.objects.using(alias).count()

    return size


def build_cases(tmp: Path, shapes: list[str], pg_server_url: str | None) -> list[Case]:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'django-template.sqlite3'}"
    os.environ["DEBUG"] = "false"  # with DEBUG on, Django records every query
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_site.settings")
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", verbosity=0)
    connections["default"].close()

    from langgraph.checkpoint.sqlite import SqliteSaver

    from graphs.checkpoint import DjangoCheckpointSaver

    cases = []
    for name in shapes:
        shape = make_shape(name)
        # SQLite: a copy of the migrated file per shape.
        path = tmp / f"django-{name}.sqlite3"
        shutil.copyfile(tmp / "django-template.sqlite3", path)
        alias = f"sqlite_{name}"
        _add_alias(alias, {**settings.DATABASES["default"], "NAME": str(path)})
        conn = sqlite3.connect(str(tmp / f"langgraph-{name}.sqlite3"), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        lg_saver = SqliteSaver(conn)
        lg_saver.setup()

        def lg_size(saver=lg_saver) -> tuple[int, int]:
            count = saver.conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
            return _sqlite_file_size(saver.conn), count

        cases.append(
            Case(
                "sqlite",
                shape,
                {"Django": DjangoCheckpointSaver(using=alias), "LangGraph": lg_saver},
                {"Django": _django_sizer(alias), "LangGraph": lg_size},
                {"Django": None, "LangGraph": None},
            )
        )

    if pg_server_url:
        cases += _postgres_cases(shapes, pg_server_url)
    return cases


def _postgres_cases(shapes: list[str], server_url: str) -> list[Case]:
    import dj_database_url
    import psycopg
    from django.core.management import call_command
    from django.db import connections
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    from graphs.checkpoint import DjangoCheckpointSaver
    from tests.servers import create_database

    template_url = create_database(server_url, "bench_django_template")
    _add_alias("pg_template", dj_database_url.parse(template_url, conn_max_age=0))
    call_command("migrate", database="pg_template", verbosity=0)
    connections["pg_template"].close()

    cases = []
    for name in shapes:
        alias = f"pg_{name}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "bench_django_{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "bench_django_{name}" TEMPLATE bench_django_template')
        base = server_url.rpartition("/")[0]
        _add_alias(alias, dj_database_url.parse(f"{base}/bench_django_{name}", conn_max_age=0))
        # As LangGraph's documentation sets it up: autocommit, prepared statements.
        lg_conn = psycopg.connect(
            create_database(server_url, f"bench_langgraph_{name}"),
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
        )
        lg_saver = PostgresSaver(lg_conn)
        lg_saver.setup()

        def lg_size(saver=lg_saver) -> tuple[int, int]:
            with saver._cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM checkpoints")
                count = cur.fetchone()["n"]
                cur.execute(
                    "SELECT sum(pg_total_relation_size(t)) AS size FROM unnest(ARRAY["
                    "'checkpoints', 'checkpoint_blobs', 'checkpoint_writes']::regclass[]) AS t"
                )
                return int(cur.fetchone()["size"]), count

        cases.append(
            Case(
                "postgres",
                make_shape(name),
                {"Django": DjangoCheckpointSaver(using=alias), "LangGraph": lg_saver},
                {"Django": _django_sizer(alias), "LangGraph": lg_size},
                {"Django": f"bench_django_{name}", "LangGraph": f"bench_langgraph_{name}"},
            )
        )
    return cases


# -- measuring ------------------------------------------------------------------


class CpuClock:
    """CPU time the work costs: this process's (every thread's) and, on
    PostgreSQL, that of the server processes serving the case's database.
    On a busy machine wall time swings with what else runs; CPU time moves
    far less, so the two together tell a real difference from noise."""

    def __init__(self, server_url: str | None):
        self.monitor = None
        if server_url and Path("/proc/self/sched").exists():
            import psycopg

            self.monitor = psycopg.connect(server_url, autocommit=True)

    @staticmethod
    def _sched_ms(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/sched") as file:
                for line in file:
                    if line.startswith("se.sum_exec_runtime"):
                        return float(line.rsplit(":", 1)[1])
        except OSError:
            pass
        return 0.0

    def server(self, database: str | None) -> dict[int, float]:
        """CPU ms so far of each server process on `database`."""
        if self.monitor is None or database is None:
            return {}
        rows = self.monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
        ).fetchall()
        return {pid: self._sched_ms(pid) for (pid,) in rows}

    @property
    def sees_server(self) -> bool:
        return self.monitor is not None


def interleave(
    cases: dict[Any, Callable[[], None]],
    rounds: int,
    per_round: int,
    clock: CpuClock,
    databases: dict[Any, str | None],
) -> dict[Any, list[tuple[float, float]]]:
    """Each round runs every case, in a shuffled order; one (wall, CPU)
    sample in seconds per case and round."""
    samples: dict[Any, list[tuple[float, float]]] = {key: [] for key in cases}
    order = list(cases)
    rng = random.Random(11)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            server = clock.server(databases[key])
            cpu = time.process_time()
            start = time.perf_counter()
            for _ in range(per_round):
                cases[key]()
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu
            after = clock.server(databases[key])
            cpu += sum(ms - server.get(pid, 0.0) for pid, ms in after.items()) / 1000
            samples[key].append((wall / per_round, cpu / per_round))
    return samples


class StatementCounter:
    """Statements each saver sends for one round trip, and on SQLite the
    transactions that write (each one a commit to the WAL)."""

    def __init__(self):
        self.statements = 0
        self.commits = 0
        self.in_transaction = False
        self.last = ""

    def trace(self, sql: str) -> None:
        # Python reports each statement a trigger runs as its caller's text
        # again, right after it: part of the caller's statement, not another.
        if sql == self.last:
            return
        self.last = sql
        text = sql.lstrip().upper()
        self.statements += 1
        if text.startswith("BEGIN"):
            self.in_transaction = True
        elif text.startswith(("COMMIT", "END")):
            self.in_transaction = False
            self.commits += 1
        elif text.startswith("ROLLBACK"):
            self.in_transaction = False
        elif not self.in_transaction and text.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
            self.commits += 1


def _wal_pages(conn: Any, mode: str) -> int:
    """Pages in the SQLite file's WAL, checkpointed as `mode` says (TRUNCATE
    empties it). Each page a commit writes is appended to the WAL whole."""
    busy, pages, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    if busy:
        raise RuntimeError("a reader kept the WAL from being checkpointed")
    return pages


def count_statements(case: Case, saver_name: str, graph: Any) -> tuple[int, int | None, int | None]:
    """(statements, SQLite commits, SQLite WAL pages written) of one round
    trip of `graph`."""
    counter = StatementCounter()
    saver = case.savers[saver_name]
    if case.db == "sqlite":
        if saver_name == "LangGraph":
            raws = [saver.conn]
        else:
            from django.db import connections

            from graphs.checkpoint import _pool

            wrappers = [*_pool(saver.using).idle, connections[saver.using]]
            raws = [w.connection for w in wrappers if w.connection is not None]
        # From an empty WAL, a round trip's few hundred KB stay far below the
        # automatic checkpoint, so the WAL then holds every page it wrote.
        _wal_pages(raws[0], "TRUNCATE")
        for raw in raws:
            raw.set_trace_callback(counter.trace)
        try:
            one_cycle(graph, case.shape)
        finally:
            for raw in raws:
                raw.set_trace_callback(None)
        return counter.statements, counter.commits, _wal_pages(raws[0], "PASSIVE")
    import psycopg

    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def counted_execute(self, query, params=None, **kwargs):
        counter.statements += 1
        return execute(self, query, params, **kwargs)

    def counted_executemany(self, query, params_seq, **kwargs):
        params_seq = list(params_seq)
        counter.statements += len(params_seq)
        return executemany(self, query, params_seq, **kwargs)

    psycopg.Cursor.execute, psycopg.Cursor.executemany = counted_execute, counted_executemany
    try:
        one_cycle(graph, case.shape)
    finally:
        psycopg.Cursor.execute, psycopg.Cursor.executemany = execute, executemany
    return counter.statements, None, None


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    low, mid, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, mid, high


def _timing(samples: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
    """Medians and spreads of one metric: wall and CPU per saver, and the
    ratio of each round's pair (both savers ran in the same round)."""
    out: dict[str, Any] = {}
    for part, index in (("wall", 0), ("cpu", 1)):
        ours = [sample[index] * 1000 for sample in samples["Django"]]
        theirs = [sample[index] * 1000 for sample in samples["LangGraph"]]
        out[part] = {
            "Django": _quartiles(ours),
            "LangGraph": _quartiles(theirs),
            "ratio": statistics.median(theirs) / statistics.median(ours),
            "paired": _quartiles([t / o for t, o in zip(theirs, ours, strict=True)]),
        }
    return out


def run(
    rounds: int, cycles: int, history: int, shapes: list[str], pg_url: str | None
) -> tuple[list[dict], bool]:
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    cases = build_cases(tmp, shapes, pg_url)
    clock = CpuClock(pg_url)
    empty = {(c.db, c.shape.name, s): c.sizes[s]()[0] for c in cases for s in c.savers}
    databases = {(c.db, c.shape.name, s): c.databases[s] for c in cases for s in c.savers}

    def per_checkpoint(case: Case, saver: str) -> float:
        size, count = case.sizes[saver]()
        return (size - empty[(case.db, case.shape.name, saver)]) / max(count, 1) / 1024

    graphs = {
        (c.db, c.shape.name, s): (approval_graph(saver, c.shape), c.shape)
        for c in cases
        for s, saver in c.savers.items()
    }
    # LangGraph's in-memory saver: what a round trip costs with next to no
    # storage, the floor under both savers' figures.
    from langgraph.checkpoint.memory import InMemorySaver

    for name in shapes:
        shape = next(c.shape for c in cases if c.shape.name == name)
        graphs[("memory", name, "InMemorySaver")] = (approval_graph(InMemorySaver(), shape), shape)
        databases[("memory", name, "InMemorySaver")] = None
    for graph, shape in graphs.values():  # warm up connections and code paths
        one_cycle(graph, shape)
    statements = {
        (c.db, c.shape.name, s): count_statements(c, s, graphs[(c.db, c.shape.name, s)][0])
        for c in cases
        for s in c.savers
    }
    trips = interleave(
        {key: (lambda g=g, s=s: one_cycle(g, s)) for key, (g, s) in graphs.items()},
        rounds,
        cycles,
        clock,
        databases,
    )
    disk_runs = {(c.db, c.shape.name, s): per_checkpoint(c, s) for c in cases for s in c.savers}

    lists = {}
    for c in cases:
        for s, saver in c.savers.items():
            config = {"configurable": {"thread_id": f"history-{uuid.uuid4()}"}}
            graph = loop_graph(saver, c.shape, history)
            # The graph's own saver: ours with the graph's types allowed.
            saver = graph.checkpointer
            graph.invoke(
                {**c.shape.initial(), "step": 0},
                {**config, "recursion_limit": history + 10},
                durability=DURABILITY,
            )
            found = list(saver.list(config, limit=LIST_LIMIT))
            assert len(found) == min(LIST_LIMIT, history + 2), len(found)
            lists[(c.db, c.shape.name, s)] = lambda s=saver, c=config: list(
                s.list(c, limit=LIST_LIMIT)
            )
    listed = interleave(lists, rounds, 1, clock, databases)
    disk_all = {(c.db, c.shape.name, s): per_checkpoint(c, s) for c in cases for s in c.savers}

    results = []
    for c in cases:
        key = (c.db, c.shape.name)
        row: dict[str, Any] = {"db": c.db, "shape": c.shape.name}
        for metric, data in (("round trip", trips), ("list", listed)):
            row[metric] = _timing({s: data[(*key, s)] for s in ("Django", "LangGraph")})
        for metric, data in (("disk runs", disk_runs), ("disk all", disk_all)):
            ours, theirs = (data[(*key, s)] for s in ("Django", "LangGraph"))
            row[metric] = (ours, theirs, theirs / ours)
        row["statements"] = {s: statements[(*key, s)] for s in ("Django", "LangGraph")}
        floor = trips[("memory", c.shape.name, "InMemorySaver")]
        row["floor"] = {
            part: statistics.median(sample[index] for sample in floor) * 1000
            for part, index in (("wall", 0), ("cpu", 1))
        }
        results.append(row)
    return results, clock.sees_server


METRICS = ("round trip", "list", "disk runs", "disk all")
TIMED = ("round trip", "list")


def _summary_cell(row: dict, metric: str) -> tuple[float, float, float]:
    if metric in TIMED:
        wall = row[metric]["wall"]
        return wall["Django"][1], wall["LangGraph"][1], wall["ratio"]
    return row[metric]


def print_results(results: list[dict], args: argparse.Namespace, sees_server: bool) -> None:
    print(
        f"{args.rounds} rounds x {args.cycles} cycles, list(limit={LIST_LIMIT}) of "
        f"{args.history} checkpoints, durability={DURABILITY!r}"
    )
    print("round trip and list: median wall ms; disk: KB per checkpoint;")
    print("ratio = LangGraph / Django: above 1 when Django is faster or smaller")
    head = f"{'database':<9} {'shape':<9}"
    for metric in METRICS:
        head += f" | {metric + ' Django':>17} {'LangGraph':>9} {'ratio':>6}"
    print(head)
    for r in results:
        line = f"{r['db']:<9} {r['shape']:<9}"
        for metric in METRICS:
            ours, theirs, ratio = _summary_cell(r, metric)
            line += f" | {ours:>17.2f} {theirs:>9.2f} {ratio:>5.2f}x"
        print(line)

    print()
    print(
        "Spreads: ms as median [p25-p75] over rounds; 'paired' is each round's"
        " LangGraph/Django ratio, median [p25-p75]."
    )
    print(
        "CPU = this process's CPU time"
        + (" + the PostgreSQL server processes' on the case's database" if sees_server else "")
        + "; statements per round trip (SQLite: and write commits, and pages written to the WAL)."
    )
    head = (
        f"{'database':<9} {'shape':<9} {'metric':<10} {'clock':<5}"
        f" | {'Django ms':>22} | {'LangGraph ms':>22} | {'ratio':>6} {'paired':>22}"
    )
    print(head)
    for r in results:
        for metric in TIMED:
            for part in ("wall", "cpu"):
                cell = r[metric][part]
                d_low, d_mid, d_high = cell["Django"]
                l_low, l_mid, l_high = cell["LangGraph"]
                p_low, p_mid, p_high = cell["paired"]
                print(
                    f"{r['db']:<9} {r['shape']:<9} {metric:<10} {part:<5}"
                    f" | {d_mid:>7.2f} [{d_low:>6.2f}-{d_high:>6.2f}]"
                    f" | {l_mid:>7.2f} [{l_low:>6.2f}-{l_high:>6.2f}]"
                    f" | {cell['ratio']:>5.2f}x {p_mid:>5.2f}x [{p_low:.2f}-{p_high:.2f}]"
                )
        ours, theirs = r["statements"]["Django"], r["statements"]["LangGraph"]
        commits = (
            f", write commits {ours[1]} vs {theirs[1]}, WAL pages written {ours[2]} vs {theirs[2]}"
            if ours[1] is not None
            else ""
        )
        print(
            f"{r['db']:<9} {r['shape']:<9} statements per round trip {ours[0]} vs {theirs[0]}"
            f"{commits}"
        )
        cpu = r["round trip"]["cpu"]
        floor = r["floor"]["cpu"]
        ours_cpu, theirs_cpu = cpu["Django"][1], cpu["LangGraph"][1]
        print(
            f"{r['db']:<9} {r['shape']:<9} round trip CPU with InMemorySaver {floor:.2f} ms:"
            f" storage costs {ours_cpu - floor:.2f} ms here, {theirs_cpu - floor:.2f} ms"
            f" in LangGraph's saver; at no storage cost the ratio would be"
            f" {theirs_cpu / floor:.2f}x"
        )

    print()
    cells = [
        (_summary_cell(r, m)[2], f"{r['db']} {r['shape']} {m}") for r in results for m in METRICS
    ]
    worst = min(cells)
    print(f"worst ratio {worst[0]:.2f}x: {worst[1]}")
    speed = [cell for cell in cells if " disk" not in cell[1]]
    cpu = [
        (r[m]["cpu"]["ratio"], f"{r['db']} {r['shape']} {m} CPU") for r in results for m in TIMED
    ]
    disk = [cell for cell in cells if " disk" in cell[1]]
    goal = [
        (r["round trip"]["wall"]["ratio"], f"{r['db']} {r['shape']} round trip")
        for r in results
        if r["shape"] in ("list", "messages")
    ]
    goal_cpu = [
        (r["round trip"]["cpu"]["ratio"], f"{r['db']} {r['shape']} round trip CPU")
        for r in results
        if r["shape"] in ("list", "messages")
    ]
    for label, group, floor in (
        ("bar: every time >= 1.00x", speed, 1.0),
        ("bar (CPU): every time >= 1.00x", cpu, 1.0),
        ("goal: list and messages round trip >= 1.20x", goal, 1.2),
        ("goal (CPU): list and messages round trip >= 1.20x", goal_cpu, 1.2),
        ("disk: every size <= LangGraph's (>= 1.00x)", disk, 1.0),
    ):
        if not group:
            continue
        low = min(group)
        verdict = "met" if low[0] >= floor else "not met"
        print(f"{label}: {verdict} (lowest {low[0]:.2f}x, {low[1]})")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cycles", type=int, default=3, help="round trips per timed sample")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    shapes = [s for s in args.shapes.split(",") if s]
    if unknown := set(shapes) - set(SHAPES):
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")

    from tests.servers import postgres_missing_reason, start_postgres

    server = None
    if not args.no_postgres:
        if reason := postgres_missing_reason():
            print(f"PostgreSQL skipped: {reason}")
        else:
            server = start_postgres()
    try:
        results, sees_server = run(
            args.rounds, args.cycles, args.history, shapes, server.url if server else None
        )
    finally:
        if server:
            from django.db import connections

            connections.close_all()
            server.stop()
    print_results(results, args, sees_server)
    return results


if __name__ == "__main__":
    main()
