"""Fixtures shared by the whole suite.

`db_alias` runs a test once on SQLite (the default database) and once on a
throwaway PostgreSQL cluster added as the `postgres` alias. Rows are really
committed on both: LangGraph saves checkpoints from its own threads, which
cannot see a test's open transaction.
"""

from __future__ import annotations

import contextlib

import dj_database_url
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test.testcases import _DatabaseFailure

from graphs.checkpoint import DjangoCheckpointSaver
from tests.servers import create_database, postgres_missing_reason, require, start_postgres

PG_ALIAS = "postgres"
# Tables that migrations fill and tests never touch.
KEEP_TABLES = {"django_migrations", "django_content_type", "auth_permission"}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """A fresh SQLite test database per session, in its own directory: a
    deleted database's -wal and -shm files must never meet its successor."""
    test = settings.DATABASES["default"].setdefault("TEST", {})
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        test["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


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
    name = str(connection.settings_dict["NAME"])
    assert "test" in name, f"refusing to empty {name!r}: not a test database"
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cur.execute(f"DELETE FROM {table}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_alias(request, transactional_db, django_db_blocker):
    """A database alias whose rows are really committed, emptied around the test.

    `transactional_db`, not `db`: a test transaction would hold SQLite's write
    lock against the threads LangGraph saves from. It also makes pytest-django
    create the test database for the default alias."""
    if request.param == "sqlite":
        yield "default"
        return
    alias = request.getfixturevalue("pg_alias")
    with django_db_blocker.unblock(), _allow_queries(alias):
        _truncate(alias)
        yield alias
        _truncate(alias)


@contextlib.contextmanager
def _allow_queries(alias: str):
    """TransactionTestCase guards aliases it was not told about, and this one
    is added at run time; lift its guard for the test, then put it back for
    the teardown that removes it."""
    connection = connections[alias]
    guarded = {}
    for name in ("connect", "temporary_connection", "cursor", "chunked_cursor"):
        attr = getattr(connection, name)
        if isinstance(attr, _DatabaseFailure):
            guarded[name] = attr
            setattr(connection, name, attr.wrapped)
    try:
        yield
    finally:
        for name, attr in guarded.items():
            setattr(connection, name, attr)


@pytest.fixture
def saver(db_alias) -> DjangoCheckpointSaver:
    return DjangoCheckpointSaver(using=db_alias)
