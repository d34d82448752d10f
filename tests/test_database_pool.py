"""PostgreSQL connections are pooled per process unless DATABASE_POOL_SIZE=0."""

from __future__ import annotations

from tests.test_settings import check, setting

POSTGRES = "postgres://nobody@127.0.0.1:1/hitl"


def test_postgresql_connections_are_pooled_by_default():
    options = setting("DATABASES['default']['OPTIONS']", DATABASE_URL=POSTGRES)
    assert "'pool': {'min_size': 2, 'max_size': 20}" in options
    sized = setting(
        "DATABASES['default']['OPTIONS']", DATABASE_URL=POSTGRES, DATABASE_POOL_SIZE="5"
    )
    assert "'pool': {'min_size': 2, 'max_size': 5}" in sized
    unpooled = setting(
        "DATABASES['default']['OPTIONS']", DATABASE_URL=POSTGRES, DATABASE_POOL_SIZE="0"
    )
    assert "pool" not in unpooled


def test_a_bad_pool_size_stops_start_up():
    result = check(DATABASE_URL=POSTGRES, DATABASE_POOL_SIZE="lots")
    assert result.returncode != 0
    assert "DATABASE_POOL_SIZE must be an integer" in result.stderr
