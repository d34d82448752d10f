"""Fixtures shared by the whole suite.

`db_alias` runs a test once on SQLite (the default database) and once on a
throwaway PostgreSQL cluster added as the `postgres` alias. Rows are really
committed on both: LangGraph saves checkpoints from its own threads, which
cannot see a test's open transaction.
"""

from __future__ import annotations

import contextlib
from functools import cached_property

import pytest
from asgiref.sync import SyncToAsync
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connections
from django.test import TransactionTestCase, override_settings
from django.test.testcases import _DatabaseFailure
from whitenoise.middleware import WhiteNoiseMiddleware

from graphs import checkpoint, worker
from graphs.checkpoint import DjangoCheckpointSaver
from hitl_site.settings import _database
from reviews import webhooks
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
def pg_url(postgres_server) -> str:
    """The session's PostgreSQL test database (the `postgres` alias's)."""
    return create_database(postgres_server.url, "hitl_test")


@pytest.fixture(scope="session")
def pg_alias(pg_url, django_db_setup, django_db_blocker):
    """The `postgres` database alias, migrated, for the whole session."""
    # The product's own options (binding, prepared statements), but for its
    # pool: the suite's threads each hold their connection.
    config = _database(pg_url)
    config["OPTIONS"].pop("pool", None)
    settings.DATABASES[PG_ALIAS] = config
    default = connections.settings["default"]
    connections.settings[PG_ALIAS] = connections.configure_settings(
        {"default": default, PG_ALIAS: config}
    )[PG_ALIAS]
    with django_db_blocker.unblock():
        call_command("migrate", database=PG_ALIAS, verbosity=0)
    yield PG_ALIAS
    connections[PG_ALIAS].close()


def empty_tables(alias: str) -> None:
    """Empty every table a test may have written, in one statement per table
    that holds rows (PostgreSQL's TRUNCATE costs as much on an empty table
    as on a full one); what migrations filled stays."""
    connection = connections[alias]
    name = str(connection.settings_dict["NAME"])
    assert "test" in name, f"refusing to empty {name!r}: not a test database"
    tables = sorted(
        set(connection.introspection.django_table_names(only_existing=True, include_views=False))
        - KEEP_TABLES
    )
    quote = connection.ops.quote_name
    with connection.cursor() as cur:
        cur.execute(
            " UNION ALL ".join(
                f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM {quote(table)})" for table in tables
            )
        )
        full = [row[0] for row in cur.fetchall()]
    connection.ops.execute_sql_flush(
        connection.ops.sql_flush(no_style(), full, reset_sequences=True, allow_cascade=True)
    )


@pytest.fixture(scope="session", autouse=True)
def _quick_passwords():
    with override_settings(PASSWORD_HASHERS=["tests.hashers.QuickPBKDF2PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _static_files_listed_once():
    """Each test client builds the site's middleware anew, and whitenoise's
    lists and stats every static file as it is built (about 14 ms a client,
    a thousand clients in tests/reviews). The files found don't change while
    the tests run: they are listed once, as the first client found them."""
    listed: dict[str, dict] = {}
    list_files = WhiteNoiseMiddleware.add_files_from_finders

    def add_files_from_finders(middleware: WhiteNoiseMiddleware) -> None:
        if middleware.static_prefix not in listed:
            before = dict(middleware.files)
            list_files(middleware)
            listed[middleware.static_prefix] = {
                url: found
                for url, found in middleware.files.items()
                if before.get(url) is not found
            }
        middleware.files.update(listed[middleware.static_prefix])

    WhiteNoiseMiddleware.add_files_from_finders = add_files_from_finders
    yield
    WhiteNoiseMiddleware.add_files_from_finders = list_files


@pytest.fixture(scope="session", autouse=True)
def _empty_rather_than_flush():
    """A transactional test's databases are emptied with empty_tables rather
    than Django's flush: flush also deletes the content types and permissions
    that migrations made and makes them again (post_migrate): most of a short
    test's time went to tables no test writes."""

    def fixture_teardown(case: TransactionTestCase) -> None:
        for alias in case._databases_names(include_mirrors=False):
            empty_tables(alias)

    flush = TransactionTestCase._fixture_teardown
    TransactionTestCase._fixture_teardown = fixture_teardown
    yield
    TransactionTestCase._fixture_teardown = flush


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
        empty_tables(alias)
        yield alias
        empty_tables(alias)


@contextlib.contextmanager
def default_database_on(database: dict):
    """Point the `default` alias at another database for the block.

    The reviewer pages, the worker and the saver they share read and write
    `default`: to run them on PostgreSQL in this process, `default` itself
    must lead there. What holds a `default` connection or a fact about it
    (the worker's saver, the saver's idle connections) is let go on the way
    in and out, and SQLite must come out of the block untouched: a write that
    still reached it fails the test."""
    sqlite_rows = _row_counts("default")
    _forget_default()
    sqlite = settings.DATABASES["default"], connections.settings["default"]
    settings.DATABASES["default"] = database
    connections.settings["default"] = connections.configure_settings({"default": database})[
        "default"
    ]
    try:
        yield
    finally:
        _forget_default()
        settings.DATABASES["default"], connections.settings["default"] = sqlite
    leaked = {t: n for t, n in _row_counts("default").items() if n != sqlite_rows[t]}
    assert not leaked, f"rows written to SQLite while default was elsewhere: {leaked}"


@contextlib.contextmanager
def default_on_postgres(request, django_db_blocker):
    """`default` leads to the session's PostgreSQL for the block, configured
    as from DATABASE_URL (a scaled-out install's settings, read from the
    environment as the block starts), emptied before and after."""
    from hitl_site.settings import _database

    request.getfixturevalue("transactional_db")
    request.getfixturevalue("pg_alias")  # the database, migrated
    on_postgres = _database(request.getfixturevalue("pg_url"))
    with django_db_blocker.unblock(), default_database_on(on_postgres):
        empty_tables("default")
        yield
        empty_tables("default")


def _forget_default() -> None:
    # Django's connections are per thread: this one's, and that of asgiref's
    # thread for thread-sensitive calls, which outlives every async test.
    _forget_default_connection()
    SyncToAsync.single_thread_executor.submit(_forget_default_connection).result()
    with checkpoint._pools_lock:
        pool = checkpoint._pools.pop("default", None)
    for idle in pool.idle if pool else ():
        idle.close()
    # The saver learns its database's vendor once; compiled graphs hold copies.
    cached = [n for n, v in vars(DjangoCheckpointSaver).items() if isinstance(v, cached_property)]
    for name in cached:
        vars(worker._SAVER).pop(name, None)
    worker._compiled.cache_clear()
    # The webhook sender's threads outlive a test, each with its connection.
    webhooks._sender.stop()


def _forget_default_connection() -> None:
    connection = getattr(connections._connections, "default", None)
    if connection is not None:
        connection.close()
        del connections["default"]


def _row_counts(alias: str) -> dict[str, int]:
    tables = [m._meta.db_table for m in apps.get_models() if m._meta.managed]
    with connections[alias].cursor() as cur:
        counts = {}
        for table in tables:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
    return counts


def prepared_statements(alias: str) -> list[str]:
    """The statements PostgreSQL holds prepared for this alias's connection."""
    with connections[alias].cursor() as cur:
        cur.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cur.fetchall()]


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
