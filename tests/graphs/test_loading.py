"""A LangGraph project loaded as the LangGraph CLI loads it, and run as
LangGraph runs it: the author's compiled settings, per-run config and
context, factories of every kind, sibling imports and the env file. Each
graph runs directly with LangGraph and through the worker, to equal states."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.models import Run
from graphs.registry import GraphLoadError, Registry, get_registry
from graphs.worker import work
from reviews.models import ReviewTask
from tests.graphs.test_differential import typed

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
    resume = ReviewTask.decide_together(
        [task], {task.pk: {"type": "answer", "value": answer}}, user=None
    )
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
    assert typed(got) == typed(expected)
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
