"""Django set up for a benchmark: production settings (no per-query logging),
the given database, the in-memory layer unless a Redis URL is given."""

from __future__ import annotations

import os
from pathlib import Path

BENCH_GRAPHS = Path(__file__).resolve().parent / "graphs" / "langgraph.json"


def setup_django(
    database_url: str,
    *,
    redis_url: str | None = None,
    graphs_config: Path | None = None,
    allowed_hosts: str = "testserver",
    migrate: bool = True,
) -> None:
    os.environ["DATABASE_URL"] = database_url
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["ALLOWED_HOSTS"] = allowed_hosts
    if graphs_config:
        os.environ["HITL_GRAPHS_CONFIG"] = str(graphs_config)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_site.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
