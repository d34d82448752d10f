"""A graphs config that names no graph stops the server and the worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]

BAD = {
    "not_json": (b'{"graphs": {"support": ', "cannot be read as JSON"),
    "not_text": (b"\xff\xfe\x00{", "cannot be read as JSON"),
    "no_graphs": (b'{"graphs": {}}', 'no "graphs" mapping'),
    "a_list": (b'["./agent.py:graph"]', 'no "graphs" mapping'),
}


def manage(*args: str, config: Path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environ, "HITL_GRAPHS_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize(
    "command", [["serve", "--port", "1"], ["runworker", "graph-runs"]], ids=["serve", "runworker"]
)
def test_the_server_and_the_worker_refuse_a_config_without_graphs(command, kind, tmp_path):
    content, message = BAD[kind]
    config = tmp_path / "langgraph.json"
    config.write_bytes(content)
    result = manage(*command, config=config)
    assert result.returncode != 0
    assert "graphs.E001" in result.stderr and message in result.stderr
    assert str(config) in result.stderr
    assert "Serving" not in result.stdout


def test_a_missing_config_stops_start_up(tmp_path):
    result = manage("serve", "--port", "1", config=tmp_path / "nowhere.json")
    assert result.returncode != 0 and "HITL_GRAPHS_CONFIG points to" in result.stderr


def test_a_graph_that_fails_to_import_is_not_a_start_up_error(tmp_path):
    (tmp_path / "agent.py").write_text("raise ImportError('a missing dependency')\n")
    config = tmp_path / "langgraph.json"
    config.write_text('{"graphs": {"agent": "./agent.py:graph"}}')
    with override_settings(HITL_GRAPHS_CONFIG=config):
        assert [m for m in run_checks(tags=["graphs"]) if m.id == "graphs.E001"] == []
    result = manage("check", config=config)
    assert result.returncode == 0, result.stderr


def test_the_bundled_config_passes():
    assert [m.id for m in run_checks(tags=["graphs"])] == []
