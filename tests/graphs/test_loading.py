"""A LangGraph project loaded as the LangGraph CLI loads it, and run as
LangGraph runs it: the author's compiled settings, per-run config and
context, factories of every kind, sibling imports and the env file. Each
graph runs directly with LangGraph and through the worker, to equal states."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Run
from graphs.registry import GraphLoadError, Registry, get_registry
from graphs.worker import work
from reviews.actions import tasks as task_actions
from reviews.models import ReviewTask
from tests.graphs.differential import comparable

PROJECT = Path(__file__).parent / "project" / "langgraph.json"

pytestmark = pytest.mark.usefixtures("project")


@pytest.fixture
def project(transactional_db):
    with override_settings(HITL_GRAPHS_CONFIG=PROJECT):
        yield
    sys.modules.pop("helpers", None)


def direct(name: str, given: Any, answer: Any, *, config=None, context=None) -> Any:
    """LangGraph alone: the project's graph with an in-memory saver."""
    graph = get_registry().get(name).compile(InMemorySaver(), config=config)
    run_config = {**(config or {})}
    run_config["configurable"] = {**run_config.get("configurable", {}), "thread_id": "t"}
    graph.invoke(given, run_config, context=context)
    graph.invoke(Command(resume=answer), run_config, context=context)
    return graph.get_state(run_config).values


def through_the_worker(name: str, given: Any, answer: Any, **fields: Any) -> Any:
    run = Run.enqueue(graph_name=name, kind=Run.Kind.START, payload=given, **fields)
    work("loading")
    run.refresh_from_db()
    assert run.status == Run.Status.INTERRUPTED, run.error
    (task,) = ReviewTask.objects.pending().filter(thread_id=run.thread_id)
    resume = task_actions.decide([task], {task.pk: {"type": "answer", "value": answer}}, user=None)
    # The resume runs under the config and context the thread started with.
    assert (resume.config, resume.context) == (run.config, run.context)
    work("loading")
    graph = get_registry().get(name).compile(DjangoCheckpointSaver(), config=run.config)
    return graph.get_state({"configurable": {"thread_id": run.thread_id}}).values


CASES = {
    "with_config kept": ("configured", {"rounds": 2}, {}, None),
    "per-run configurable over with_config": (
        "configured",
        {"rounds": 2},
        {"configurable": {"greeting": "per-run"}},
        None,
    ),
    "context_schema": ("contextual", {}, {}, {"user_id": "u-7", "language": "pt"}),
    "sync factory": ("made", {}, {}, None),
    "async factory returning a StateGraph": ("made_async", {}, {}, None),
    "factory with config": ("made_with_config", {}, {"configurable": {"team": "finance"}}, None),
    "async context manager factory": ("made_in_context", {}, {}, None),
    "sibling import and env file": ("sibling", {"text": "hi"}, {}, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_final_state_as_langgraph(case):
    name, given, config, context = CASES[case]
    expected = direct(name, given, "yes", config=config, context=context)
    got = through_the_worker(name, given, "yes", config=config, context=context)
    assert comparable(got) == comparable(expected)
    assert got  # something ran


def test_the_values_each_case_checks():
    """What the cases above compare, spelled out once."""
    assert direct("configured", {"rounds": 2}, "ok")["done"] == ["compiled-in 0", "compiled-in 1"]
    per_run = {"configurable": {"greeting": "per-run"}}
    assert direct("configured", {"rounds": 1}, "ok", config=per_run)["done"] == ["per-run 0"]
    context = {"user_id": "u-7", "language": "pt"}
    assert direct("contextual", {}, "ok", context=context)["note"] == "for u-7 in pt"
    team = {"configurable": {"team": "finance"}}
    assert direct("made_with_config", {}, "ok", config=team)["maker"] == "a function for finance"
    assert direct("sibling", {"text": "hi"}, "ok")["said"] == "HI! ok (hello from .env)"


def test_the_authors_recursion_limit_holds_unless_a_run_raises_it():
    with pytest.raises(GraphRecursionError):
        direct("configured", {"rounds": 10}, "ok")
    run = Run.enqueue(graph_name="configured", kind=Run.Kind.START, payload={"rounds": 10})
    work("loading")
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "GraphRecursionError" in run.error
    raised = {"recursion_limit": 30}
    assert len(direct("configured", {"rounds": 10}, "ok", config=raised)["done"]) == 10
    state = through_the_worker("configured", {"rounds": 10}, "ok", config=raised)
    assert len(state["done"]) == 10


def test_a_failed_import_is_told_every_time():
    spec = get_registry().get("half_loaded")
    for _ in range(2):
        with pytest.raises(GraphLoadError, match="a_module_that_is_not_installed"):
            spec.load_object()
    assert "hitl_graphs.half_loaded" not in sys.modules


def test_a_missing_env_file_is_reported(tmp_path):
    config = tmp_path / "langgraph.json"
    config.write_text('{"env": ".env.missing", "graphs": {"x": "./x.py:graph"}}')
    assert any(".env.missing" in error for error in Registry(config).errors)


def test_config_and_context_through_the_api_and_the_start_page(admin_client):
    from django.contrib.auth import get_user_model

    from reviews.models import ApiToken

    _, key = ApiToken.issue(get_user_model().objects.get(username="admin"), "ctx")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = {"graph": "contextual", "input": {}, "context": {"user_id": "u-9"}}
    started = api.post("/api/runs", body, "application/json")
    assert started.status_code == 201, started.content
    run = Run.objects.get(pk=started.json()["id"])
    assert run.context == {"user_id": "u-9"}
    for wrong, expected in (
        ({"context": {"language": "pt"}}, "'user_id' is a required property"),
        ({"context": {"user_id": "u"}, "config": {"thread_id": "x"}}, "config has no 'thread_id'"),
        ({"config": {"recursion_limit": 0}}, "at least 1"),
        ({"config": {"configurable": {"thread_id": "t"}}}, "may not set thread_id"),
        (
            {"config": {"configurable": {"__pregel_resume_map": {"i": "approve"}}}},
            "may not set __pregel_resume_map",
        ),
        (
            {"config": {"configurable": {"langgraph_auth_user_id": "admin"}}},
            "may not set langgraph_auth_user_id",
        ),
    ):
        refused = api.post("/api/runs", {"graph": "contextual", **wrong}, "application/json")
        assert refused.status_code == 422 and expected in refused.json()["errors"]["input"]
    refused = api.post("/api/runs", {"graph": "made", "context": {"x": 1}}, "application/json")
    assert "takes no context" in refused.json()["errors"]["input"]
    page = admin_client.get("/graphs/contextual/start/").content.decode()
    assert 'name="context"' in page and "<code>user_id</code>" in page
    response = admin_client.post(
        "/graphs/contextual/start/",
        {"raw": "{}", "context": '{"user_id": "page"}', "config": '{"tags": ["from-page"]}'},
    )
    assert response.status_code == 302
    latest = Run.objects.latest("pk")
    assert (latest.context, latest.config) == ({"user_id": "page"}, {"tags": ["from-page"]})
    work("loading")
    state = through_the_api_state(latest)
    assert state["note"] == "for page in en"


def through_the_api_state(run: Run) -> Any:
    graph = get_registry().get(run.graph_name).compile(DjangoCheckpointSaver())
    return graph.get_state({"configurable": {"thread_id": run.thread_id}}).values


def test_startrun_takes_config_and_context(capsys):
    from django.core.management import CommandError, call_command

    call_command("startrun", "contextual", "--context", '{"user_id": "cli"}', "--execute")
    run = Run.objects.latest("pk")
    assert run.context == {"user_id": "cli"} and run.status == Run.Status.INTERRUPTED
    with pytest.raises(CommandError, match="required property"):
        call_command("startrun", "contextual", "--context", "{}")
    with pytest.raises(CommandError, match="config has no 'bogus'"):
        call_command("startrun", "made", "--config", '{"bogus": 1}')
