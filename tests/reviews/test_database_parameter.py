"""The `database` parameter (tests/reviews/conftest.py) really moves the
reviewer pages, the worker and the saver to the database it names."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection, connections

from graphs.models import Checkpoint
from graphs.worker import work
from tests.reviews.conftest import pending, start

VENDOR = {"sqlite": "sqlite", "postgres": "postgresql"}
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


def vendor() -> str:
    return connections["default"].vendor


def test_pages_and_worker_use_the_database_named(database, as_rita):
    assert connection.vendor == VENDOR[database]
    if database == "postgres":  # as DATABASE_URL configures it, pool and all
        assert "pool" in connection.settings_dict["OPTIONS"]
    thread = start("support", REFUND)
    (task,) = pending(thread)
    assert as_rita.get(f"/tasks/{task.pk}/").status_code == 200
    assert Checkpoint.objects.filter(thread_id=thread).exists()


async def test_async_code_uses_the_database_named(database, transactional_db):
    assert await sync_to_async(vendor)() == VENDOR[database]
    assert await sync_to_async(vendor, thread_sensitive=False)() == VENDOR[database]
    assert await sync_to_async(work, thread_sensitive=False)("w1") == 0
