"""Server CPU per request for each page of the reviewer mix, in this process.

One SQLite database with `--tasks` pending tasks of the `stamped` bench graph
(started and driven to their interrupt by the worker, as on a server), each
on its thread, as bench/load.py's server has them; with `--rule`, one rule
governs them, a team group may see and decide them and `--as reviewer` is in
it, so the rule paths are taken too. Each page is asked through Django's test client, signed
in, in shuffled rounds; the medians are CPU time (time.process_time), which a
busy machine disturbs less than wall time. `--profile PAGE` prints cProfile's
top functions for that page instead, `--queries` each page's SQL. `--asgi` asks through the site's ASGI
handler (as daphne does: the request threads, the crossings between the
event loop and them) instead of the test client; its CPU time counts every
thread of the process.

    python bench/pages.py [--rounds 30] [--tasks 60] [--rule] [--as bench|reviewer] [--asgi]
                          [--profile queue|rows|task|thread|home|count [--sort tottime]]
                          [--queries] [--only PAGE]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.django_env import BENCH_GRAPHS, setup_django  # noqa: E402

# The load bench's mix, without the writes (start, decide): those are the
# worker's and the actions' cost, measured by bench/worker.py.
MIX = {"queue": 35, "task": 15, "thread": 10, "home": 10, "rows": 10, "count": 10}


def build(tasks: int, with_rule: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from graphs.models import Run
    from graphs.worker import new_worker_id, work
    from reviews.models import ReviewRule, ReviewTask

    User = get_user_model()
    User.objects.create_superuser("bench", "", "bench-pw-123")
    team = Group.objects.create(name="team")
    reviewer = User.objects.create_user("reviewer", password="bench-pw-123")
    reviewer.groups.add(team)
    if with_rule:
        rule = ReviewRule.objects.create(name="stamped answers", graph_name="stamped", order=1)
        rule.view_groups.add(team)
        rule.review_groups.add(team)
    for _ in range(tasks):
        Run.enqueue(graph_name="stamped", kind=Run.Kind.START, payload={"question": "go?"})
    work(new_worker_id())
    pending = list(ReviewTask.objects.pending().order_by("pk"))
    assert len(pending) == tasks, f"{len(pending)} tasks pending, {tasks} expected"
    return {"task": pending[len(pending) // 2].pk, "thread": pending[len(pending) // 2].thread_id}


def asgi_pages(session: str, ids: dict) -> dict:
    """The pages asked through the site's ASGI handler, on one event loop
    kept for the bench (its request threads live on between requests)."""
    import asyncio
    import logging

    import httpx

    from hitl_site.asgi import django_asgi_app

    logging.getLogger("httpx").setLevel(logging.WARNING)

    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=django_asgi_app),
        base_url="http://testserver",
        cookies={"sessionid": session},
    )
    rows = {"HX-Request": "true", "HX-Target": "queue-rows"}

    def get(path: str, headers: dict | None = None):
        return lambda: loop.run_until_complete(client.get(path, headers=headers))

    return {
        "queue": get("/queue/"),
        "rows": get("/queue/", rows),
        "task": get(f"/tasks/{ids['task']}/"),
        "thread": get(f"/threads/{ids['thread']}/"),
        "home": get("/"),
        "count": get("/queue/count/"),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--rule", action="store_true", help="one rule governs the tasks")
    parser.add_argument("--as", dest="user", choices=["bench", "reviewer"], default="bench")
    parser.add_argument("--asgi", action="store_true", help="through the ASGI handler")
    parser.add_argument("--profile", choices=sorted(MIX))
    parser.add_argument(
        "--only", choices=sorted(MIX), help="ask only this page (to profile from outside)"
    )
    parser.add_argument("--queries", action="store_true", help="print each page's SQL once")
    parser.add_argument("--sort", default="cumulative", help="cProfile order: cumulative, tottime")
    parser.add_argument("--lines", type=int, default=45, help="functions --profile prints")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hitl-bench-pages-"))
    os.environ["HITL_VAR_DIR"] = str(tmp)
    setup_django(f"sqlite:///{tmp / 'bench.sqlite3'}", graphs_config=BENCH_GRAPHS)
    from django.core.management import call_command

    # As `make run` does: pages name static files from the manifest.
    call_command("collectstatic", interactive=False, verbosity=0)
    from django.test import Client

    ids = build(args.tasks, args.rule)
    client = Client()
    assert client.login(username=args.user, password="bench-pw-123")
    rows = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "queue-rows"}
    pages = {
        "queue": lambda: client.get("/queue/"),
        "rows": lambda: client.get("/queue/", **rows),
        "task": lambda: client.get(f"/tasks/{ids['task']}/"),
        "thread": lambda: client.get(f"/threads/{ids['thread']}/"),
        "home": lambda: client.get("/"),
        "count": lambda: client.get("/queue/count/"),
    }
    if args.asgi:
        pages = asgi_pages(client.cookies["sessionid"].value, ids)
    if args.only:
        pages = {args.only: pages[args.only]}

    def ask(name: str) -> float:
        start = time.process_time()
        response = pages[name]()
        elapsed = time.process_time() - start
        assert response.status_code == 200, (name, response.status_code)
        return elapsed

    for name in pages:
        ask(name)  # warm up: templates, graphs compiled, the connection's caches
    if args.queries:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        for name in pages:
            with CaptureQueriesContext(connection) as captured:
                pages[name]()
            print(f"{name}: {len(captured)} queries")
            for query in captured:
                print(f"    {query['sql'][:300]}")
        return {}
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.rounds):
            pages[args.profile]()
        profile.disable()
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.lines)
        return {}
    samples: dict[str, list[float]] = {name: [] for name in pages}
    order = list(pages)
    rng = random.Random(7)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            samples[name].append(ask(name))
    medians = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    mix = sum(medians.get(name, 0) * weight for name, weight in MIX.items()) / sum(
        weight for name, weight in MIX.items() if name in medians
    )
    ruled = "under one rule" if args.rule else "no rules"
    print(
        f"CPU per request, {args.tasks} pending tasks ({ruled}), as {args.user}, SQLite, "
        f"{'ASGI handler' if args.asgi else 'test client'} (ms, medians)"
    )
    for name in pages:
        print(f"{name:<10}{medians[name]:>8.1f}")
    print(f"{'read mix':<10}{mix:>8.1f}")
    return {**medians, "mix": mix}


if __name__ == "__main__":
    main()
