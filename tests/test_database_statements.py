"""On PostgreSQL, statements are bound on the server and one run often on a
connection is planned once: planning cost the server more than running most
of them."""

from __future__ import annotations

import pytest
from django.db import connections

from graphs.models import Run
from tests.conftest import _allow_queries, prepared_statements


@pytest.mark.postgres
def test_a_statement_run_often_is_prepared(pg_alias, django_db_blocker):
    connection = connections[pg_alias]

    def runs_prepared(times: int) -> list[str]:
        for _ in range(times):
            list(Run.objects.using(pg_alias).filter(status=Run.Status.QUEUED)[:1])
        return [s for s in prepared_statements(pg_alias) if Run._meta.db_table in s]

    with django_db_blocker.unblock(), _allow_queries(pg_alias):
        connection.close()  # a fresh connection: nothing prepared on it yet
        try:
            assert not runs_prepared(2)
            assert runs_prepared(4)
        finally:
            connection.close()
