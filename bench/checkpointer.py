"""DjangoCheckpointSaver against LangGraph's own savers, interleaved in one run.

Every saver runs the same graph on the same kind of state: a ~20 KB context
channel that never changes and a message list that grows, through
start -> interrupt -> resume -> end on a new thread per cycle. Then
`list(limit=50)` on a thread with 2,000 checkpoints. Savers take turns round
by round, so machine noise lands on all of them alike; the figures are
medians and the ratios are LangGraph's median over ours (above 1: we are faster).

    python bench/checkpointer.py [--rounds 30] [--cycles 5] [--history 2000]

PostgreSQL: a throwaway cluster (or TEST_DATABASE_URL); both Postgres savers
use databases on the same server. SQLite: files in one temporary directory,
both with WAL and synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class BenchState(TypedDict, total=False):
    context: Any
    messages: Annotated[list[dict[str, str]], lambda left, right: [*left, *right]]
    answer: str
    step: int


def make_context(kind: str) -> Any:
    rng = random.Random(7)
    words = [f"w{rng.randrange(10_000)}" for _ in range(3_500)]
    if kind == "str":
        return " ".join(words)[:20_000]
    return [{"id": i, "text": " ".join(words[i * 35 : (i + 1) * 35])} for i in range(100)]


def message(role: str, n: int) -> dict[str, str]:
    return {"role": role, "content": f"message {n} " + "lorem ipsum dolor sit amet " * 4}


def approval_graph(saver):
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def think(state: BenchState) -> BenchState:
        return {"messages": [message("assistant", len(state["messages"]))]}

    def ask(state: BenchState) -> BenchState:
        return {"answer": interrupt({"question": "approve?"})}

    def act(state: BenchState) -> BenchState:
        return {"messages": [message("tool", len(state["messages"]))]}

    def respond(state: BenchState) -> BenchState:
        return {"messages": [message("assistant", len(state["messages"]))]}

    builder = StateGraph(BenchState)
    for name, fn in (("think", think), ("ask", ask), ("act", act), ("respond", respond)):
        builder.add_node(name, fn)
    builder.add_edge(START, "think")
    builder.add_edge("think", "ask")
    builder.add_edge("ask", "act")
    builder.add_edge("act", "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=saver)


def loop_graph(saver, steps: int):
    from langgraph.graph import END, START, StateGraph

    def tick(state: BenchState) -> BenchState:
        return {"step": state.get("step", 0) + 1}

    builder = StateGraph(BenchState)
    builder.add_node("tick", tick)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: END if s["step"] >= steps else "tick")
    return builder.compile(checkpointer=saver)


def one_cycle(graph, context: Any) -> None:
    from langgraph.types import Command

    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    history = [message("user", i) for i in range(10)]
    graph.invoke({"context": context, "messages": history, "answer": ""}, config)
    graph.invoke(Command(resume="yes"), config)


def setup_django(sqlite_path: Path, pg_url: str | None) -> dict[str, str]:
    os.environ["DATABASE_URL"] = f"sqlite:///{sqlite_path}"
    # Production settings: with DEBUG on, Django records and formats every query.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_site.settings")
    import dj_database_url
    import django
    from django.conf import settings

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    aliases = {"sqlite": "default"}
    call_command("migrate", verbosity=0)
    if pg_url:
        config = dj_database_url.parse(pg_url, conn_max_age=0)
        settings.DATABASES["pg"] = config
        connections.settings["pg"] = connections.configure_settings(
            {"default": connections.settings["default"], "pg": config}
        )["pg"]
        call_command("migrate", database="pg", verbosity=0)
        aliases["postgres"] = "pg"
    return aliases


def build_savers(tmp: Path, pg_server_url: str | None) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    from tests.servers import create_database

    savers: dict[str, Any] = {}
    pg_django_url = pg_lg_url = None
    if pg_server_url:
        pg_django_url = create_database(pg_server_url, "bench_django")
        pg_lg_url = create_database(pg_server_url, "bench_langgraph")
    aliases = setup_django(tmp / "django.sqlite3", pg_django_url)
    from graphs.checkpoint import DjangoCheckpointSaver  # needs Django set up

    conn = sqlite3.connect(str(tmp / "langgraph.sqlite3"), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sqlite_saver = SqliteSaver(conn)
    sqlite_saver.setup()
    savers["sqlite"] = {
        "Django": DjangoCheckpointSaver(using=aliases["sqlite"]),
        "LangGraph": sqlite_saver,
    }

    if pg_lg_url:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        pg_conn = psycopg.connect(
            pg_lg_url, autocommit=True, prepare_threshold=0, row_factory=dict_row
        )
        pg_saver = PostgresSaver(pg_conn)
        pg_saver.setup()
        savers["postgres"] = {
            "Django": DjangoCheckpointSaver(using=aliases["postgres"]),
            "LangGraph": pg_saver,
        }
    return savers


def interleave(
    cases: dict[str, Callable[[], None]], rounds: int, per_round: int
) -> dict[str, list[float]]:
    """Median-friendly timings: each round runs every case once, in a shuffled order."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    rng = random.Random(11)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            for _ in range(per_round):
                cases[name]()
            times[name].append((time.perf_counter() - start) / per_round)
    return times


def run(
    rounds: int, cycles: int, history: int, context_kind: str, pg_server_url: str | None
) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    savers = build_savers(tmp, pg_server_url)
    context = make_context(context_kind)
    results = []
    for db, pair in savers.items():
        graphs = {name: approval_graph(saver) for name, saver in pair.items()}
        for graph in graphs.values():  # warm up connections and code paths
            one_cycle(graph, context)
        times = interleave(
            {name: (lambda g=graph: one_cycle(g, context)) for name, graph in graphs.items()},
            rounds,
            cycles,
        )
        results.append(summary(db, "start->interrupt->resume->end", times))

        lists = {}
        for name, saver in pair.items():
            config = {"configurable": {"thread_id": f"history-{uuid.uuid4()}"}}
            loop_graph(saver, history).invoke(
                {"context": context, "messages": [message("user", 0)], "step": 0},
                {**config, "recursion_limit": history + 10},
            )
            assert len(list(saver.list(config, limit=history + 10))) >= history
            lists[name] = lambda s=saver, c=config: list(s.list(c, limit=50))
        times = interleave(lists, rounds, 1)
        results.append(summary(db, f"list(limit=50) of {history} checkpoints", times))
        results.append(storage(db, pair))
    return results


def storage(db: str, pair: dict[str, Any]) -> dict:
    """Bytes on disk per checkpoint, after the same work on both savers."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    per_checkpoint = {}
    for name, saver in pair.items():
        if isinstance(saver, SqliteSaver):
            cur = saver.conn.execute("SELECT count(*) FROM checkpoints")
            count = cur.fetchone()[0]
            saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = saver.conn.execute(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            ).fetchone()[0]
        elif name == "LangGraph":
            with saver._cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM checkpoints")
                count = cur.fetchone()["n"]
                cur.execute(
                    "SELECT sum(pg_total_relation_size(t)) AS size FROM unnest(ARRAY["
                    "'checkpoints', 'checkpoint_blobs', 'checkpoint_writes']::regclass[]) AS t"
                )
                size = cur.fetchone()["size"]
        else:
            from django.db import connections

            from graphs.models import Checkpoint, CheckpointBlob, CheckpointWrite

            connection = connections[saver.using]
            count = Checkpoint.objects.using(saver.using).count()
            with connection.cursor() as cur:
                if connection.vendor == "sqlite":
                    cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    cur.execute(
                        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
                    )
                else:
                    tables = [
                        m._meta.db_table for m in (Checkpoint, CheckpointBlob, CheckpointWrite)
                    ]
                    cur.execute(
                        "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t",
                        [tables],
                    )
                size = cur.fetchone()[0]
        per_checkpoint[name] = size / max(count, 1)
    return {
        "db": db,
        "case": "disk bytes per checkpoint (KB)",
        "django_ms": per_checkpoint["Django"] / 1024,
        "langgraph_ms": per_checkpoint["LangGraph"] / 1024,
        "ratio": per_checkpoint["LangGraph"] / per_checkpoint["Django"],
    }


def summary(db: str, case: str, times: dict[str, list[float]]) -> dict:
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "db": db,
        "case": case,
        "django_ms": medians["Django"] * 1000,
        "langgraph_ms": medians["LangGraph"] * 1000,
        "ratio": medians["LangGraph"] / medians["Django"],
    }


def print_results(results: list[dict], context_kind: str) -> None:
    print(f"context channel: {context_kind}; medians per operation (ms) or size (KB);")
    print("ratio = LangGraph / Django, above 1 when Django is faster or smaller")
    print(f"{'database':<10} {'case':<40} {'Django':>10} {'LangGraph':>13} {'ratio':>7}")
    for r in results:
        print(
            f"{r['db']:<10} {r['case']:<40} {r['django_ms']:>10.2f} {r['langgraph_ms']:>13.2f} "
            f"{r['ratio']:>6.2f}x"
        )


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=5, help="graph cycles per timed sample")
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--context", choices=["str", "list"], default="str")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)

    from tests.servers import postgres_missing_reason, start_postgres

    server = None
    if not args.no_postgres:
        if reason := postgres_missing_reason():
            print(f"PostgreSQL skipped: {reason}")
        else:
            server = start_postgres()
    try:
        results = run(
            args.rounds, args.cycles, args.history, args.context, server.url if server else None
        )
    finally:
        if server:
            from django.db import connections

            connections.close_all()
            server.stop()
    print_results(results, args.context)
    return results


if __name__ == "__main__":
    main()
