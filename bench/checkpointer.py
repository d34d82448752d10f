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

    python bench/checkpointer.py [--rounds 20] [--cycles 3] [--history 1000]
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
            )
        )
    return cases


# -- measuring ------------------------------------------------------------------


def interleave(
    cases: dict[Any, Callable[[], None]], rounds: int, per_round: int
) -> dict[Any, list[float]]:
    """Each round runs every case, in a shuffled order; one sample per case and round."""
    times: dict[Any, list[float]] = {key: [] for key in cases}
    order = list(cases)
    rng = random.Random(11)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            start = time.perf_counter()
            for _ in range(per_round):
                cases[key]()
            times[key].append((time.perf_counter() - start) / per_round)
    return times


def run(
    rounds: int, cycles: int, history: int, shapes: list[str], pg_url: str | None
) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    cases = build_cases(tmp, shapes, pg_url)
    empty = {(c.db, c.shape.name, s): c.sizes[s]()[0] for c in cases for s in c.savers}

    def per_checkpoint(case: Case, saver: str) -> float:
        size, count = case.sizes[saver]()
        return (size - empty[(case.db, case.shape.name, saver)]) / max(count, 1) / 1024

    graphs = {
        (c.db, c.shape.name, s): (approval_graph(saver, c.shape), c.shape)
        for c in cases
        for s, saver in c.savers.items()
    }
    for graph, shape in graphs.values():  # warm up connections and code paths
        one_cycle(graph, shape)
    trips = interleave(
        {key: (lambda g=g, s=s: one_cycle(g, s)) for key, (g, s) in graphs.items()},
        rounds,
        cycles,
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
    listed = interleave(lists, rounds, 1)
    disk_all = {(c.db, c.shape.name, s): per_checkpoint(c, s) for c in cases for s in c.savers}

    results = []
    for c in cases:
        key = (c.db, c.shape.name)
        row = {"db": c.db, "shape": c.shape.name}
        for metric, data, scale in (
            ("round trip", trips, 1000),
            ("list", listed, 1000),
            ("disk runs", disk_runs, 1),
            ("disk all", disk_all, 1),
        ):
            ours, theirs = (
                (
                    statistics.median(data[(*key, s)])
                    if metric in ("round trip", "list")
                    else data[(*key, s)]
                )
                * scale
                for s in ("Django", "LangGraph")
            )
            row[metric] = (ours, theirs, theirs / ours)
        results.append(row)
    return results


METRICS = ("round trip", "list", "disk runs", "disk all")


def print_results(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"{args.rounds} rounds x {args.cycles} cycles, list(limit={LIST_LIMIT}) of "
        f"{args.history} checkpoints, durability={DURABILITY!r}"
    )
    print("round trip and list: median ms; disk: KB per checkpoint;")
    print("ratio = LangGraph / Django: above 1 when Django is faster or smaller")
    head = f"{'database':<9} {'shape':<9}"
    for metric in METRICS:
        head += f" | {metric + ' Django':>17} {'LangGraph':>9} {'ratio':>6}"
    print(head)
    for r in results:
        line = f"{r['db']:<9} {r['shape']:<9}"
        for metric in METRICS:
            ours, theirs, ratio = r[metric]
            line += f" | {ours:>17.2f} {theirs:>9.2f} {ratio:>5.2f}x"
        print(line)
    cells = [(r[m][2], f"{r['db']} {r['shape']} {m}") for r in results for m in METRICS]
    worst = min(cells)
    print(f"worst ratio {worst[0]:.2f}x: {worst[1]}")
    speed = [cell for cell in cells if " disk" not in cell[1]]
    disk = [cell for cell in cells if " disk" in cell[1]]
    goal = [
        (r["round trip"][2], f"{r['db']} {r['shape']} round trip")
        for r in results
        if r["shape"] in ("list", "messages")
    ]
    for label, group, floor in (
        ("bar: every time >= 1.00x", speed, 1.0),
        ("goal: list and messages round trip >= 1.20x", goal, 1.2),
        ("disk: every size <= LangGraph's (>= 1.00x)", disk, 1.0),
    ):
        if not group:
            continue
        low = min(group)
        verdict = "met" if low[0] >= floor else "not met"
        print(f"{label}: {verdict} (lowest {low[0]:.2f}x, {low[1]})")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
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
        results = run(
            args.rounds, args.cycles, args.history, shapes, server.url if server else None
        )
    finally:
        if server:
            from django.db import connections

            connections.close_all()
            server.stop()
    print_results(results, args)
    return results


if __name__ == "__main__":
    main()
