"""Fixtures shared by the whole suite.

`db_alias` runs a test once on SQLite (the default database) and once on a
throwaway PostgreSQL cluster added as the `postgres` alias. Rows are really
committed on both: LangGraph saves checkpoints from its own threads, which
cannot see a test's open transaction.
"""

from __future__ import annotations

import dj_database_url
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from graphs.checkpoint import DjangoCheckpointSaver
from tests.servers import create_database, postgres_missing_reason, require, start_postgres

PG_ALIAS = "postgres"
# Tables that migrations fill and tests never touch.
KEEP_TABLES = {"django_migrations", "django_content_type", "auth_permission"}


@pytest.fixture(scope="session")
def postgres_server():
    require(postgres_missing_reason())
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_alias(postgres_server, django_db_setup, django_db_blocker):
    """The `postgres` database alias, migrated, for the whole session."""
    url = create_database(postgres_server.url, "hitl_test")
    config = dj_database_url.parse(url, conn_max_age=0)
    settings.DATABASES[PG_ALIAS] = config
    default = connections.settings["default"]
    connections.settings[PG_ALIAS] = connections.configure_settings(
        {"default": default, PG_ALIAS: config}
    )[PG_ALIAS]
    with django_db_blocker.unblock():
        call_command("migrate", database=PG_ALIAS, verbosity=0)
    yield PG_ALIAS
    connections[PG_ALIAS].close()


def _truncate(alias: str) -> None:
    tables = [
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.db_table not in KEEP_TABLES and model._meta.managed
    ]
    connection = connections[alias]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cur.execute(f"DELETE FROM {table}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_alias(request, django_db_setup, django_db_blocker):
    """A database alias with committed rows, emptied before and after the test.

    Not pytest-django's `db`: its transaction would hold SQLite's write lock
    against the threads LangGraph saves from."""
    alias = "default" if request.param == "sqlite" else request.getfixturevalue("pg_alias")
    with django_db_blocker.unblock():
        _truncate(alias)
        yield alias
        _truncate(alias)


@pytest.fixture
def saver(db_alias) -> DjangoCheckpointSaver:
    return DjangoCheckpointSaver(using=db_alias)
