"""The threads and assistants tests again, served on PostgreSQL: status,
metadata and ordering are SQL of their own on each database."""

from __future__ import annotations

import pytest

from tests.agent_server import test_assistants, test_threads
from tests.agent_server.conftest import serve
from tests.servers import create_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def served(postgres_server, tmp_path_factory):
    url = create_database(postgres_server.url, "agent_server_api")
    yield from serve(tmp_path_factory.mktemp("agent-server-pg"), extra_env={"DATABASE_URL": url})


@pytest.fixture(scope="module")
def api_key(served) -> str:
    return served.key("admin")


# sdk and async_sdk (conftest.py) take this module's served site and key.


test_create_get_update_and_delete = test_threads.test_create_get_update_and_delete
test_an_interrupted_thread_reads_as_agent_inbox_reads_it = (
    test_threads.test_an_interrupted_thread_reads_as_agent_inbox_reads_it
)
test_ignore_ends_the_thread_through_the_state_editor = (
    test_threads.test_ignore_ends_the_thread_through_the_state_editor
)
test_update_state_writes_values_as_a_node_and_forks_from_a_checkpoint = (
    test_threads.test_update_state_writes_values_as_a_node_and_forks_from_a_checkpoint
)
test_copy_and_prune = test_threads.test_copy_and_prune
test_a_key_reads_and_changes_only_what_its_user_may = (
    test_threads.test_a_key_reads_and_changes_only_what_its_user_may
)
test_a_busy_thread_refuses_state_updates = test_threads.test_a_busy_thread_refuses_state_updates
test_a_thread_whose_newest_run_failed_reads_as_error = (
    test_threads.test_a_thread_whose_newest_run_failed_reads_as_error
)
test_an_assistant_made_here_keeps_every_version = (
    test_assistants.test_an_assistant_made_here_keeps_every_version
)


def test_the_server_runs_on_postgresql(served):
    assert served.query("from django.db import connection\nresult = connection.vendor") == (
        "postgresql"
    )
